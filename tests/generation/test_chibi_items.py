"""Every item sits right on every hair style and face shape (checked with the layer coverage)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from generation import catalog
from generation.chibi import ChibiEngine, render
from generation.chibi.context import Ctx
from generation.chibi.geometry import BROW_Y, EYE_RY, EYE_Y, VIEW
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()
SIZE = 128
K = SIZE / VIEW
STYLES = catalog.ids("hair_style")
SHAPES = catalog.ids("face_shape")
ITEMS = catalog.ids("item")


def only_when_asked(request: pytest.FixtureRequest) -> None:
    """Exhaustive tests run with ``-m slow`` only, so the default suite stays fast."""
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("exhaustive: run with -m slow")


def _cov(spec: AvatarSpec, *names: str) -> np.ndarray:
    by = {p.name: p.svg for p in ENGINE.layers(spec)}
    out = np.zeros((SIZE, SIZE), bool)
    for n in names:
        if by.get(n):
            out |= render.alpha_of(by[n], SIZE) > 0.5
    return out


def _bbox(m: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(m)
    assert len(ys), "empty mask"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def check_item(item: str, style: str, shape: str) -> None:
    spec = AvatarSpec(seed=1, items=[item], hair={"style": style}, face_shape=shape, expression="smile")
    c = Ctx.of(spec)
    slot = catalog.item_slot(item)
    it = _cov(spec, f"item:{item}")
    x0, y0, x1, y1 = _bbox(it)
    eyes_top = (EYE_Y - EYE_RY) * K
    where = f"{item} on {style}/{shape}"
    if slot == "head_top":
        assert y1 < eyes_top, f"{where}: hat reaches the eyes"
        if item in ("crown", "halo"):
            assert abs(y1 - c.geo.hair_top * K) < 40 * K, f"{where}: not on top of the hair"
        elif item == "flower_crown":
            # a wreath around the head: on the hair, above the brows, wider than it is tall
            hair = _cov(spec, "hair_back", "hair_front", "head")
            assert (it & hair).any(), f"{where}: wreath floats off the head"
            assert y1 < BROW_Y * K, f"{where}: wreath reaches the brows"
            assert x1 - x0 > 2 * (y1 - y0), f"{where}: not a ring around the head"
        else:
            assert abs(y1 - c.geo.hat_rim_y * K) < 44 * K, f"{where}: brim not at the head-top anchor"
            hair = _cov(spec, "hair_back", "hair_front")
            assert item == "bandana" or not hair[: max(0, y0 - 1)].any(), (
                f"{where}: hair pokes out above the hat"
            )
    elif item == "elf_ears":
        # long pointed ears at the sides of the head, where the human ears are, reaching past the hair
        head = _cov(spec, "head")
        assert (it & head).any(), f"{where}: elf ears float off the head"
        (lx, ly), (rx, _ry) = c.geo.ears
        assert x0 < (lx - 40) * K and x1 > (rx + 40) * K, f"{where}: elf ears do not reach out sideways"
        assert y0 < (ly - 50) * K, f"{where}: elf ears do not point up"
        assert y1 < c.geo.chin_y * K, f"{where}: elf ears hang below the chin"
        vis = ENGINE.masks(spec, SIZE)
        assert vis["item:elf_ears"].sum() > 0.8 * it.sum(), f"{where}: elf ears hidden"
    elif slot == "ears":
        hair_head = _cov(spec, "hair_front", "hair_back", "head")
        assert (it & hair_head).any(), f"{where}: ears float off the head"
        skull_top = max(c.geo.hair_top, 84.0) if style == "bun" else c.geo.hair_top
        assert y0 < skull_top * K + 6, f"{where}: ears do not rise above the head"
        assert y1 < eyes_top, f"{where}: ears too low"
    elif slot == "eyes":
        eyes = _cov(spec, "eyes")
        box = np.zeros_like(it)
        box[y0 : y1 + 1, x0 : x1 + 1] = True
        assert (it & eyes).any(), f"{where}: glasses do not touch the eyes"
        if item != "eyepatch":
            assert (box & eyes).sum() > 0.8 * eyes.sum(), f"{where}: glasses not on the eyes"
    elif slot == "mouth":
        assert (it & _cov(spec, "mouth")).any(), f"{where}: mask misses the mouth"
    elif slot == "ear_jewelry":
        for ex, ey in c.geo.ears:
            near = it[int((ey) * K) : int((ey + 60) * K), max(0, int((ex - 30) * K)) : int((ex + 30) * K)]
            assert near.any(), f"{where}: no earring under the ear"
    elif slot == "head_wrap":
        vis = ENGINE.masks(spec, SIZE)
        assert not vis["hair"].any(), f"{where}: hair shows under the hijab"
        neck = _cov(spec, "neck")
        assert (neck & ~it).sum() <= 0.25 * neck.sum() + 2 or not (
            _cov(spec, "neck") & ~it & vis["body"]
        ).any()
    elif slot == "hair_accessory":
        assert y1 < EYE_Y * K, f"{where}: accessory below the eyes"
    elif slot == "headphones":
        for _ex, ey in c.geo.ears:
            assert it[int(ey * K), :].any(), f"{where}: no ear cup at the ear line"
    elif slot in ("neck",):
        assert y0 > (c.geo.chin_y - 60) * K, f"{where}: neckwear above the chin"
    elif slot in ("back", "held"):
        assert y1 > VIEW * K * 0.6, f"{where}: not at the body"


def test_every_item_on_every_hair_style() -> None:
    """Default run: every item on every hair style (face shapes cycled)."""
    for i, (item, style) in enumerate(itertools.product(ITEMS, STYLES)):
        check_item(item, style, SHAPES[i % len(SHAPES)])


def test_every_hat_and_ear_item_on_every_face_shape_with_big_hair() -> None:
    head = [i for i in ITEMS if catalog.item_slot(i) in ("head_top", "ears", "eyes", "ear_jewelry")]
    for item, style, shape in itertools.product(head, ("afro", "bun", "curly", "spiky"), SHAPES):
        check_item(item, style, shape)


@pytest.mark.slow
def test_every_item_on_every_hair_style_and_face_shape(request: pytest.FixtureRequest) -> None:
    only_when_asked(request)
    for item, style, shape in itertools.product(ITEMS, STYLES, SHAPES):
        check_item(item, style, shape)


def test_items_in_one_slot_cannot_coexist() -> None:
    with pytest.raises(ValueError):
        AvatarSpec(items=["beanie", "cap"])
    with pytest.raises(ValueError):
        AvatarSpec(items=["hijab", "cat_ears"])
    s = AvatarSpec(items=["beanie"]).with_item("crown")
    assert s.items == ("crown",)
    # several face marks are allowed together and all render
    multi = AvatarSpec(seed=2, items=["freckles", "bandage", "beauty_mark", "fangs"])
    m = ENGINE.masks(multi, SIZE, visible=False)
    assert all(m[f"item:{i}"].any() for i in multi.items)


def test_hat_sits_on_big_hair_not_inside_it() -> None:
    afro = AvatarSpec(seed=1, items=["beanie"], hair={"style": "afro"})
    short = AvatarSpec(seed=1, items=["beanie"], hair={"style": "short"})
    assert _bbox(_cov(afro, "item:beanie"))[3] < _bbox(_cov(short, "item:beanie"))[3]
    # the afro still shows around and below the hat
    vis = ENGINE.masks(afro, SIZE)
    assert vis["hair"].sum() > 0.1 * SIZE * SIZE


def test_hijab_frames_the_face_under_hats_and_over_glasses_arms() -> None:
    """A hijab covers hair, ears and neck, keeps the eyes and mouth free, and a hat or headphones sit on
    top of it on every face shape (whatever hair style is under it)."""
    hats = [i for i in ITEMS if catalog.item_slot(i) == "head_top" and i != "bandana"]
    for k, (shape, extra) in enumerate(itertools.product(SHAPES, [*hats, "headphones", "round_glasses"])):
        style = STYLES[k % len(STYLES)]
        spec = AvatarSpec(seed=4, items=["hijab", extra], face_shape=shape, hair={"style": style})
        where = f"hijab + {extra} on {shape}/{style}"
        vis = ENGINE.masks(spec, SIZE)
        full = ENGINE.masks(spec, SIZE, visible=False)
        assert not vis["hair"].any(), f"{where}: hair shows"
        assert vis[f"item:{extra}"].sum() >= 0.6 * full[f"item:{extra}"].sum(), (
            f"{where}: hidden by the hijab"
        )
        wrap = full["item:hijab"]
        for part in ("eyes", "mouth"):
            assert (full[part] & wrap).sum() <= 0.03 * full[part].sum(), (
                f"{where}: the hijab covers the {part}"
            )
        neck = _cov(spec, "neck")
        bare = neck & ~full["item:hijab"] & ~_cov(spec, "head")
        assert bare.sum() <= 0.02 * neck.sum(), f"{where}: neck not covered"
