"""The seeded backgrounds as data (generation/chibi/backdrop.py) and the spec resolution shortcuts that
came with them: the same text as before, the same pixels as that text, the same resolved specs."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from bench import bench_render
from generation.chibi import backdrop as backdrop_module
from generation.chibi import color, composite, outfit, render
from generation.chibi.backdrop import KINDS, Backdrop, backdrop
from generation.chibi.context import Ctx
from generation.spec import AvatarSpec

# sha256 of outfit.background's text for AvatarSpec(seed=2026, background={"kind": k, "color": "#cfe8ff"}),
# written by the code before backgrounds became Backdrops: a spec keeps its pattern, to the byte.
BEFORE = {
    "solid": "58f33cb9f44d4a96",
    "gradient": "935e7cb685534c00",
    "dots": "327346448d676037",
    "stars": "14aebb54eb53a3cc",
    "hearts": "c45c93337469390f",
    "stripes": "b35903f814aa2b78",
    "blossoms": "911b5ed355e8a3bd",
}


def spec_with(kind: str, seed: int = 2026, colour: str = "#cfe8ff") -> AvatarSpec:
    return AvatarSpec(seed=seed, background={"kind": kind, "color": colour}).resolved()


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_every_background_writes_the_text_it_always_wrote(kind: str) -> None:
    text = outfit.background(Ctx.of(spec_with(kind)))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == BEFORE[kind]


def test_the_seeded_kinds_are_backdrops_and_the_hand_picked_ones_text() -> None:
    for kind in BEFORE:
        bd = backdrop(Ctx.of(spec_with(kind)))
        layer = render.layers(spec_with(kind))[0]
        assert layer.name == "background"
        if kind in KINDS:
            assert isinstance(bd, Backdrop) and layer.source == bd and layer.svg == bd.svg
        else:
            assert bd is None and isinstance(layer.source, str)


def test_drawing_a_backdrop_gives_the_pixels_of_its_text() -> None:
    """Backdrop.draw and skia parsing Backdrop.svg, on the same canvas: pixel for pixel."""
    rng = random.Random(5)
    kinds = sorted(KINDS)
    for i in range(40):
        kind = kinds[i % len(kinds)]
        colour = "#" + "".join(f"{rng.randrange(256):02x}" for _ in range(3))
        bd = backdrop(Ctx.of(spec_with(kind, rng.randrange(2**40), colour)))
        assert bd is not None
        for size in (64, 128, 512) if i < 10 else (128,):
            drawn = composite.rasterise([("background", bd)], size)
            parsed = composite.rasterise([("background", bd.svg)], size)
            assert np.array_equal(drawn, parsed), (kind, size, i)


def test_a_backdrop_over_other_layers_is_drawn_whole() -> None:
    """Not the first layer: the base is drawn, not written into the buffer."""
    for kind in sorted(KINDS):
        bd = backdrop(Ctx.of(spec_with(kind, 11)))
        assert bd is not None
        under = '<rect x="0" y="0" width="512" height="512" fill="#123456"/>'
        drawn = composite.rasterise([("background", under), ("background", bd)], 128)
        parsed = composite.rasterise([("background", under), ("background", bd.svg)], 128)
        assert np.array_equal(drawn, parsed), kind


def test_paths_are_read_from_bytes_and_equal_paths_built_call_by_call() -> None:
    """skia does not promise its path format: if it changes, this fails (and drawing falls back)."""
    assert backdrop_module._SERIAL_OK
    rng = np.random.default_rng(3)
    for outline in (backdrop_module._STAR, backdrop_module._HEART):
        points = np.round(rng.uniform(0, 512, (5, *outline.points.shape)), 1)
        for one, p in zip(points, outline.paths(points), strict=True):
            single = backdrop_module._called(one.tolist(), outline.verbs)
            assert bytes(p.serialize()) == bytes(single.serialize())


def test_a_backdrop_is_drawn_the_same_each_time_and_at_every_size() -> None:
    bd = backdrop(Ctx.of(spec_with("stars", 7)))
    assert bd is not None
    first = composite.rasterise([("background", bd)], 96)
    composite.rasterise([("background", bd)], 512)
    assert np.array_equal(composite.rasterise([("background", bd)], 96), first)


# --- resolution ---------------------------------------------------------------------------------------

OPEN_FIELDS = [
    ("face_shape",),
    ("skin_tone",),
    ("eyes", "style"),
    ("eyes", "color"),
    ("eyes", "catchlights"),
    ("brows",),
    ("expression",),
    ("blush",),
    ("nose",),
    ("hair", "style"),
    ("hair", "front"),
    ("hair", "color"),
    ("hair", "highlight"),
    ("facial_hair",),
    ("outfit", "style"),
    ("outfit", "color"),
    ("background", "kind"),
    ("background", "color"),
    ("background", "color2"),
]


def opened(spec: AvatarSpec, field: tuple[str, ...]) -> AvatarSpec:
    data = spec.to_json()
    *parents, leaf = field
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = None
    return AvatarSpec.from_json(data)


def test_resolving_is_what_validation_would_give_and_is_idempotent() -> None:
    rng = random.Random(9)
    for _ in range(150):
        spec = bench_render.random_spec(rng)
        r = spec.resolved()
        assert r.is_resolved() and r.resolved() is r
        assert r == AvatarSpec.from_json(r.to_json())
        assert r.to_text() == AvatarSpec.from_json(r.to_json()).to_text()


def test_any_open_field_makes_a_spec_unresolved_and_resolves_back() -> None:
    rng = random.Random(10)
    for _ in range(20):
        r = bench_render.random_spec(rng).resolved()
        for field in OPEN_FIELDS:
            spec = opened(r, field)
            assert not spec.is_resolved(), field
            again = spec.resolved()
            assert again.is_resolved() and again != spec, field
            if field != ("facial_hair",):  # an open facial_hair is "none"; the rest are the seed's picks
                assert again == r, field


def test_mix_is_to_hex_of_the_channels_mix() -> None:
    """color.mix is unrolled for speed; it must give the strings the plain definition gives."""
    rng = random.Random(12)
    for _ in range(5000):
        a, b = (f"#{rng.randrange(1 << 24):06x}" for _ in range(2))
        t = rng.choice([rng.random(), rng.uniform(-0.5, 1.5), rng.randrange(101) / 100])
        plain = color.to_hex(*(x + (y - x) * t for x, y in zip(color.rgb(a), color.rgb(b), strict=True)))
        assert color.mix(a, b, t) == plain, (a, b, t)
