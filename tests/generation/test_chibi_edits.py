"""Edits change only what was asked: pixels outside region_for_change stay identical."""

from __future__ import annotations

import numpy as np
import pytest

from generation.chibi import ChibiEngine
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()
SIZE = 256
OLD = AvatarSpec(
    seed=9,
    hair={"style": "long_wavy", "color": "#4a3128"},
    skin_tone="caramel",
    expression="smile",
    items=["round_glasses", "earrings"],
    outfit={"style": "hoodie", "color": "#8cc8f0"},
    background={"kind": "dots", "color": "#ffd6e7"},
)

EDITS = {
    "add hat": lambda s: s.with_item("beanie"),
    "add cat ears": lambda s: s.with_item("cat_ears"),
    "add wings": lambda s: s.with_item("angel_wings"),
    "remove glasses": lambda s: s.without_item("round_glasses"),
    "swap glasses": lambda s: s.with_item("sunglasses"),
    "expression": lambda s: s.replace(expression="crying"),
    "recolour hair": lambda s: s.replace(hair={"color": "#f49ac1"}),
    "eyes": lambda s: s.replace(eyes={"color": "#3a9a6a", "style": "sparkle"}),
    "outfit": lambda s: s.replace(outfit={"style": "sailor", "color": "#d94452"}),
    "background": lambda s: s.replace(background={"kind": "stars", "color": "#d6ecff"}),
    "beard": lambda s: s.replace(facial_hair="beard"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_pixels_outside_the_region_do_not_change(edit: str) -> None:
    new = EDITS[edit](OLD)
    region = ENGINE.region_for_change(OLD, new, SIZE)
    a = ENGINE.render_rgba(OLD, SIZE)
    b = ENGINE.render_rgba(new, SIZE)
    changed = (a != b).any(axis=-1)
    assert changed.any(), "the edit changed nothing"
    assert not (changed & ~region).any(), (
        f"{int((changed & ~region).sum())} pixels changed outside the region"
    )
    if edit not in ("background", "recolour hair", "outfit"):
        assert region.mean() < 0.5, "a local edit should give a local region"


def test_small_edits_give_small_regions() -> None:
    eyes = ENGINE.region_for_change(OLD, OLD.replace(eyes={"color": "#d9455f"}), SIZE)
    assert 0 < eyes.mean() < 0.08
    assert not ENGINE.region_for_change(OLD, OLD, SIZE).any()


def test_masks_cover_the_named_parts() -> None:
    m = ENGINE.masks(OLD, SIZE)
    for key in ("hair", "head_top", "ears", "eyes", "mouth", "face", "body", "background", "items"):
        assert m[key].shape == (SIZE, SIZE) and m[key].dtype == np.bool_
        assert m[key].any(), key
    assert m["item:round_glasses"].any() and m["item:earrings"].any()
    assert (m["items"] == (m["item:round_glasses"] | m["item:earrings"])).all()
    ys = np.nonzero(m["eyes"])[0]
    yb = np.nonzero(m["body"])[0]
    assert ys.mean() < yb.mean()
