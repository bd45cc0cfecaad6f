"""The fast render path (cached per-layer skia Pictures, ISA-L deflate) draws what the reference path draws."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from bench import bench_render
from generation.chibi import ChibiEngine, render
from generation.chibi.engine import deflate, encode_png
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()


def random_spec(rng: random.Random) -> AvatarSpec:
    return bench_render.random_spec(rng).resolved()


def reference(spec: AvatarSpec, size: int, *, transparent: bool = False, circle: bool = False) -> np.ndarray:
    """The path the engine used before: the whole SVG document through skia's SVGDOM."""
    return render.rasterise_reference(
        render.document(render.layers(spec, background=not transparent)), size, circle=circle
    )


@pytest.mark.parametrize("size", [64, 128, 512])
def test_fast_path_matches_the_reference_over_random_specs(size: int) -> None:
    rng = random.Random(size)
    worst = 0
    for i in range(40 if size < 512 else 16):
        spec = random_spec(rng)
        transparent, circle = i % 3 == 1, i % 4 == 2
        fast = ENGINE.render_rgba(spec, size, transparent=transparent, circle=circle)
        ref = reference(spec, size, transparent=transparent, circle=circle)
        assert fast.shape == ref.shape == (size, size, 4) and fast.dtype == np.uint8
        worst = max(worst, int(np.abs(fast.astype(np.int16) - ref.astype(np.int16)).max()))
    assert worst <= 2, f"the fast path moved a pixel by {worst} levels"


def test_layer_cache_hits_draw_the_same_pixels_and_stay_bounded() -> None:
    rng = random.Random(5)
    spec = random_spec(rng)
    render.clear_picture_cache()
    cold = ENGINE.render_rgba(spec, 128)
    warm = ENGINE.render_rgba(spec, 128)  # every layer replayed from the cache
    assert np.array_equal(cold, warm)
    for _ in range(render.PICTURE_CACHE_SIZE // 8):
        ENGINE.render_rgba(random_spec(rng), 64)
    assert len(render._pictures) <= render.PICTURE_CACHE_SIZE


def test_masks_use_the_same_coverage_as_the_reference() -> None:
    spec = random_spec(random.Random(9))
    for layer in render.layers(spec):
        if not layer.svg:
            continue
        doc = render.document([render.Layer("x", layer.svg)])
        ref = render.rasterise_reference(doc, 96)[:, :, 3].astype(np.float32) / 255.0
        assert np.array_equal(render.alpha_of(layer.svg, 96), ref), layer.name


def test_png_decodes_to_the_rendered_pixels_at_every_fast_level() -> None:
    spec = random_spec(random.Random(3))
    rgba = ENGINE.render_rgba(spec, 128, transparent=True)
    for level in (0, 1, 2, 3):
        png = encode_png(rgba, {"parameters": "x"}, compress_level=level)
        im = Image.open(io.BytesIO(png))
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)
    assert deflate(b"abc" * 1000, 1) != b""
