"""The chibi engine renders every catalog value, deterministically, with the right PNG metadata."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from generation import catalog
from generation.chibi import ChibiEngine
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()
BASE = AvatarSpec(seed=42, hair={"style": "short"}, expression="smile", items=["round_glasses"])


def _chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        out.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return out


def test_same_spec_and_seed_give_byte_identical_pngs() -> None:
    specs = [AvatarSpec(seed=s) for s in (0, 1, 99, 2**40)] + [BASE]
    for spec in specs:
        a = ENGINE.render(spec, 256)
        b = ChibiEngine().render(spec, 256)
        assert a == b
    assert ENGINE.render_svg(specs[0]) == ChibiEngine().render_svg(specs[0])


def test_different_seeds_give_different_avatars() -> None:
    imgs = {ENGINE.render(AvatarSpec(seed=s), 128) for s in range(12)}
    assert len(imgs) == 12


CATEGORY_FIELDS = {
    "hair_style": lambda v: {"hair": {"style": v}},
    "hair_front": lambda v: {"hair": {"style": "bob", "front": v}},
    "expression": lambda v: {"expression": v},
    "eye_style": lambda v: {"eyes": {"style": v}},
    "brows": lambda v: {"brows": v},
    "nose": lambda v: {"nose": v},
    "face_shape": lambda v: {"face_shape": v},
    "blush": lambda v: {"blush": v},
    "skin_tone": lambda v: {"skin_tone": v},
    "facial_hair": lambda v: {"facial_hair": v},
    "item": lambda v: {"items": [v]},
    "outfit": lambda v: {"outfit": {"style": v}},
    "background": lambda v: {"background": {"kind": v}},
}


@pytest.mark.parametrize("category", sorted(CATEGORY_FIELDS))
def test_every_catalog_value_renders_and_changes_the_picture(category: str) -> None:
    base = AvatarSpec(
        seed=3, hair={"style": "short"}, expression="smile", face_shape="round", skin_tone="tan"
    )
    seen = set()
    for value in catalog.ids(category):
        spec = base.replace(**CATEGORY_FIELDS[category](value))
        rgba = ENGINE.render_rgba(spec, 128)
        assert rgba.shape == (128, 128, 4) and rgba.dtype == np.uint8
        assert rgba[:, :, 3].min() == 255  # opaque with a background
        seen.add(rgba.tobytes())
    # every value looks different from every other value of its category
    assert len(seen) == len(catalog.ids(category))


def test_png_carries_parameters_and_metadata_only() -> None:
    png = ENGINE.render(BASE, 256, metadata={"prompt": "a cat girl 猫耳", "avatar_id": "abc"})
    im = Image.open(io.BytesIO(png))
    assert im.size == (256, 256)
    params = im.text["parameters"]
    assert params.startswith("a cat girl 猫耳\n")
    assert "Seed: 42" in params
    spec_json = json.loads(params.split("Spec: ", 1)[1])
    assert AvatarSpec.from_json(spec_json) == BASE.resolved()
    assert im.text["avatar_id"] == "abc"
    assert "exif" not in im.info
    kinds = set(_chunks(png))
    assert kinds <= {b"IHDR", b"tEXt", b"iTXt", b"IDAT", b"IEND"}


def test_default_prompt_describes_the_spec() -> None:
    params = Image.open(io.BytesIO(ENGINE.render(BASE, 64))).text["parameters"]
    assert "round glasses" in params and "short hair" in params


@pytest.mark.parametrize("size", [0, 63, 2049, 4096, -5])
def test_png_sizes_out_of_bounds_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="between 64 and 2048"):
        ENGINE.render(BASE, size)


def test_png_size_bounds_are_accepted() -> None:
    for size in (64, 2048):
        assert Image.open(io.BytesIO(ENGINE.render(BASE, size))).size == (size, size)


def test_transparent_and_circle() -> None:
    t = ENGINE.render_rgba(BASE, 128, transparent=True)
    assert t[0, 0, 3] == 0 and t[64, 64, 3] == 255
    c = np.asarray(Image.open(io.BytesIO(ENGINE.render(BASE, 128, circle=True))))
    assert c[0, 0, 3] == 0 and c[2, 64, 3] > 0 and c[64, 64, 3] == 255


@pytest.mark.parametrize("tone", ["porcelain", "tan", "deep", "ebony"])
def test_readable_at_48_px(tone: str) -> None:
    """Downscaled like Discord shows it, the eyes still stand out from the face."""
    spec = BASE.replace(skin_tone=tone, items=[])
    big = ENGINE.render_rgba(spec, 512)
    small = np.asarray(Image.fromarray(big).resize((48, 48), Image.Resampling.LANCZOS)).astype(float)
    masks = ENGINE.masks(spec, 48)
    eyes = small[masks["eyes"]][:, :3].mean(0)
    face_only = masks["face"] & ~masks["eyes"] & ~masks["mouth"]
    face = small[face_only][:, :3].mean(0)
    assert masks["eyes"].sum() >= 6
    assert np.abs(eyes - face).sum() > 60
