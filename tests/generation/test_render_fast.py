"""The fast render path draws what the reference path draws: layers recoloured from colour-free templates
(generation/chibi/composite.py), the rest as cached skia Pictures, PNG through ISA-L deflate."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from bench import bench_render
from generation.chibi import ChibiEngine, composite, render
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


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """Compare premultiplied: a nearly transparent pixel's straight colour is not defined by its rounding."""
    a = rgba.astype(np.int32)
    return np.concatenate([(a[..., :3] * a[..., 3:] + 127) // 255, a[..., 3:]], axis=-1)


def circle_ring(size: int) -> np.ndarray:
    """The pixels the circle crop covers only in part."""
    cov = composite._circle(size)
    return (cov > 0) & (cov < 255)


@pytest.mark.parametrize("size", [64, 96, 128, 512])
def test_fast_path_matches_the_reference_over_random_specs(size: int) -> None:
    rng = random.Random(size)
    worst = 0
    for i in range(40 if size < 512 else 16):
        spec = random_spec(rng)
        transparent, circle = i % 3 == 1, i % 4 == 2
        fast = ENGINE.render_rgba(spec, size, transparent=transparent, circle=circle)
        ref = reference(spec, size, transparent=transparent, circle=circle)
        assert fast.shape == ref.shape == (size, size, 4) and fast.dtype == np.uint8
        diff = np.abs(premultiplied(fast) - premultiplied(ref)).max(axis=-1)
        if circle:  # the crop's edge: see test_the_circle_edge_is_the_circle_coverage
            diff[circle_ring(size)] = 0
        worst = max(worst, int(diff.max()))
        opaque = (fast[..., 3] == 255) & (ref[..., 3] == 255)
        assert np.abs(fast[opaque].astype(np.int16) - ref[opaque].astype(np.int16)).max(initial=0) <= 12
    # recolouring 8-bit weight planes rounds at anti-aliased edges; nothing moves more than that
    assert worst <= 12, f"the fast path moved a pixel by {worst} levels"


def test_the_circle_edge_is_the_circle_coverage() -> None:
    """The crop multiplies the finished picture by the circle's coverage. (The reference clips every draw,
    so along its 1 px edge each layer blends over the ones below and the alpha builds up.)"""
    size = 128
    spec = random_spec(random.Random(4))
    fast = ENGINE.render_rgba(spec, size, circle=True)
    cov = composite._circle(size)
    assert np.abs(fast[..., 3].astype(np.int16) - cov.astype(np.int16)).max() <= 1
    full = ENGINE.render_rgba(spec, size)
    inside = cov == 255
    assert np.array_equal(fast[inside], full[inside])


def test_templates_recolour_to_the_colours_asked() -> None:
    """Two specs that differ only in colour share the hair's template; each is drawn in its own colours."""
    base = random_spec(random.Random(12))
    red = base.model_copy(update={"hair": base.hair.model_copy(update={"color": "#c0302a"})})
    blue = base.model_copy(update={"hair": base.hair.model_copy(update={"color": "#2a50c0"})})
    layers = {n: {p.name: p.svg for p in render.layers(s)} for n, s in (("red", red), ("blue", blue))}
    t_red, c_red = composite.split(layers["red"]["hair_front"])
    t_blue, c_blue = composite.split(layers["blue"]["hair_front"])
    assert t_red == t_blue and c_red != c_blue
    assert composite.fill(t_red, c_red) == layers["red"]["hair_front"]
    for spec in (red, blue):
        fast = ENGINE.render_rgba(spec, 128)
        ref = reference(spec, 128)
        assert np.abs(fast.astype(np.int16) - ref.astype(np.int16)).max() <= 12


def test_a_layer_with_a_paint_that_is_not_a_hex_colour_is_not_a_template() -> None:
    assert composite.split('<path d="M0,0L9,9" fill="#AABBCC" stroke="#aabbcc"/>') == (
        '<path d="M0,0L9,9" fill="#0~" stroke="#0~"/>',
        ("#aabbcc",),
    )
    for other in ('fill="white"', 'stroke="rgb(1,2,3)"', 'stop-color="#abc"', 'fill="currentColor"'):
        svg = f'<path d="M0,0L9,9" opacity="0.5" {other}/><path d="M1,1" fill="#112233"/>'
        assert composite.split(svg) == (svg, ()), other
    ok = '<g clip-path="url(#c)"><path d="M0,0" fill="none" stroke="#102030"/></g>'
    assert composite.split(ok)[1] == ("#102030",)


def test_the_same_spec_gives_the_same_png_whatever_the_caches_hold() -> None:
    spec = random_spec(random.Random(21))
    composite.PLANES.clear()
    render.clear_picture_cache()
    first = ENGINE.render(spec, 128)  # every template learnt now
    again = ENGINE.render(spec, 128)  # every template from the cache
    composite.PLANES.clear()
    assert first == again == ENGINE.render(spec, 128)


def test_without_numba_the_layers_are_drawn_by_skia(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composite, "AVAILABLE", False)
    spec = random_spec(random.Random(6))
    assert np.array_equal(ENGINE.render_rgba(spec, 96), reference(spec, 96))


def test_layer_cache_hits_draw_the_same_pixels_and_stay_bounded() -> None:
    rng = random.Random(5)
    spec = random_spec(rng)
    render.clear_picture_cache()
    composite.PLANES.clear()
    cold = ENGINE.render_rgba(spec, 128)
    warm = ENGINE.render_rgba(spec, 128)  # every layer from the caches
    assert np.array_equal(cold, warm)
    small = composite.PlaneCache(max_bytes=64 * 1024)
    for _ in range(40):
        for layer in render.layers(random_spec(rng)):
            template, colours = composite.split(layer.svg)
            if colours and len(colours) <= composite.MAX_SLOTS:
                small.get(template, len(colours), 64)
    assert 0 < small.bytes <= small.max_bytes
    for _ in range(render.PICTURE_CACHE_SIZE // 8):
        ENGINE.render_rgba(random_spec(rng), 64)
    assert len(render._pictures) <= render.PICTURE_CACHE_SIZE
    assert composite.PLANES.bytes <= composite.PLANES.max_bytes


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


def test_numba_loads_with_the_first_picture_not_with_the_engine() -> None:
    """Processes that never draw (the bot, a worker for other engines) never pay numba's import."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from generation.chibi import ChibiEngine\n"
        "from generation.spec import AvatarSpec\n"
        "before = 'numba' in sys.modules\n"
        "ChibiEngine().render(AvatarSpec(seed=1), 64)\n"
        "print(before, 'numba' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert run.stdout.split() == ["False", "True"]


def test_the_template_cache_size_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CHIBIFY_RENDER_CACHE_MB", "64")
    assert composite._cache_bytes() == 64 * 1024 * 1024
    monkeypatch.setenv("CHIBIFY_RENDER_CACHE_MB", "0")
    assert composite._cache_bytes() == 0
    for bad in ("lots", "-5", "nan"):
        monkeypatch.setenv("CHIBIFY_RENDER_CACHE_MB", bad)
        caplog.clear()
        assert composite._cache_bytes() == 192 * 1024 * 1024
        assert "CHIBIFY_RENDER_CACHE_MB must be a number of MiB" in caplog.text
    monkeypatch.delenv("CHIBIFY_RENDER_CACHE_MB")
    assert composite._cache_bytes() == 192 * 1024 * 1024


def test_a_cache_of_no_bytes_still_draws_every_picture() -> None:
    spec = random_spec(random.Random(31))
    planes = composite.PLANES
    old = planes.max_bytes
    try:
        planes.max_bytes = 0
        planes.clear()
        fast = ENGINE.render_rgba(spec, 96)
        assert planes.bytes == 0
    finally:
        planes.max_bytes = old
    assert np.abs(premultiplied(fast) - premultiplied(reference(spec, 96))).max() <= 12
