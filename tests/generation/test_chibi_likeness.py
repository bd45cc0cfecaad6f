"""Issue 15's art: hair never merges with clothes, buzz cuts and afros read as hair, shy looks shy, grey hair,
elf ears, flower crowns and the blossom background draw (checked on the rendered layers)."""

from __future__ import annotations

import numpy as np
import pytest

from generation.chibi import ChibiEngine, color, render
from generation.chibi.context import EXPRESSIONS, Ctx
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()
SIZE = 256
BASE = AvatarSpec(
    seed=3,
    face_shape="round",
    skin_tone="light",
    expression="smile",
    hair={"style": "long_straight", "color": "#2b2630"},
    outfit={"style": "hoodie", "color": "#2b2630"},
    background={"kind": "solid", "color": "#eadcff"},
)


def _layer(spec: AvatarSpec, name: str) -> np.ndarray:
    by = {p.name: p.svg for p in ENGINE.layers(spec)}
    return render.alpha_of(by[name], SIZE) > 0.5


def _mean_rgb(img: np.ndarray, mask: np.ndarray) -> str:
    r, g, b = (img[..., :3][mask].mean(axis=0)).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


@pytest.mark.parametrize(
    ("hair", "outfit"),
    [
        ("#2b2630", "hoodie"),
        ("#7a4e34", "hoodie"),
        ("#f49ac1", "sweater"),
        ("#4b4f58", "tshirt"),
        ("#f7f6f2", "hoodie"),
    ],
)
def test_hair_and_clothes_of_one_colour_are_drawn_apart(hair: str, outfit: str) -> None:
    spec = BASE.replace(hair={"color": hair}, outfit={"style": outfit, "color": hair})
    img = ENGINE.render_rgba(spec, SIZE)
    vis = ENGINE.masks(spec, SIZE)
    hair_rgb = _mean_rgb(img, vis["hair"])
    body_rgb = _mean_rgb(img, vis["body"])
    # near-white hair keeps a light outfit (a light grey one): a smaller step, the outlines do the rest
    need = 8 if color.lab(hair)[0] > 85 else 15
    assert color.delta_e(hair_rgb, body_rgb) > need, (hair, hair_rgb, body_rgb)
    # the spec keeps the colour that was asked for; only the drawing moves the outfit's lightness
    assert spec.outfit.color == hair


def test_outfit_colour_untouched_when_it_already_differs_from_the_hair() -> None:
    for hair, outfit in (("#2b2630", "#8cc8f0"), ("#f2cf6f", "#4a7fd9"), ("#f49ac1", "#2c3b6b")):
        c = Ctx.of(BASE.replace(hair={"color": hair}, outfit={"color": outfit}))
        assert c.outfit.base == outfit
    # short hair never touches the clothes: a black suit under short black hair stays black
    c = Ctx.of(BASE.replace(hair={"style": "short"}, outfit={"style": "suit", "color": "#2b2630"}))
    assert c.outfit.base == "#2b2630"


def test_shy_has_raised_worried_brows_blush_and_no_angry_marks() -> None:
    shy = EXPRESSIONS["shy"]
    assert shy.brow_inner < 0 <= shy.brow_outer  # inner ends raised: worried, never furrowed
    assert shy.extra_blush and not shy.anger_mark and not shy.sweat
    assert shy.left not in ("angry", "half") and shy.right not in ("angry", "half")
    smile = BASE.replace(expression="smile")
    shy_spec = BASE.replace(expression="shy")
    # the eyes look aside: the iris sits off the eye's centre, unlike the smile's
    eyes_s, eyes_y = _layer(smile, "eyes"), _layer(shy_spec, "eyes")
    assert (eyes_s ^ eyes_y).sum() > 20
    assert _layer(shy_spec, "blush").sum() > _layer(smile, "blush").sum()


def test_buzz_cut_shows_a_hairline_and_skin_near_it() -> None:
    spec = BASE.replace(hair={"style": "buzz", "color": "#2b2630"}, outfit={"color": "#8cc8f0"})
    vis = ENGINE.masks(spec, SIZE)
    hair = vis["hair"]
    ys, xs = np.nonzero(hair)
    # the hairline is lower at the temples than at the middle of the forehead (a cap has a straight rim)
    mid = SIZE // 2
    lowest = {x: ys[xs == x].max() for x in (mid, int(mid - 0.21 * SIZE), int(mid + 0.21 * SIZE))}
    assert (
        lowest[int(mid - 0.21 * SIZE)] > lowest[mid] + 5 and lowest[int(mid + 0.21 * SIZE)] > lowest[mid] + 5
    )
    # the hair lightens toward the hairline (skin shows through), not a flat dark band with a line
    img = ENGINE.render_rgba(spec, SIZE).astype(float)
    lum = img[..., :3].mean(axis=2)
    top = lum[hair & (np.arange(SIZE)[:, None] < ys.min() + 12)].mean()
    edge_rows = np.zeros_like(hair)
    for x in range(int(mid - 0.1 * SIZE), int(mid + 0.1 * SIZE)):
        col = np.nonzero(hair[:, x])[0]
        if len(col):
            edge_rows[col.max() - 2 : col.max() + 1, x] = True
    assert lum[edge_rows & hair].mean() > top + 10


def test_afro_has_a_low_coily_hairline_on_the_forehead() -> None:
    afro = BASE.replace(
        hair={"style": "afro", "color": "#2b2630"}, skin_tone="deep", outfit={"color": "#8cc8f0"}
    )
    short = afro.replace(hair={"style": "short", "front": "open"})
    a, s = ENGINE.masks(afro, SIZE)["hair"], ENGINE.masks(short, SIZE)["hair"]
    mid = SIZE // 2
    assert np.nonzero(a[:, mid])[0].max() > np.nonzero(s[:, mid])[0].max()  # lower at the forehead


@pytest.mark.parametrize("grey", ["temples", "salt_pepper"])
@pytest.mark.parametrize("style", ["short", "buzz", "long_straight", "afro", "bob"])
def test_grey_hair_draws_on_every_style(grey: str, style: str) -> None:
    plain = BASE.replace(hair={"style": style, "color": "#2b2630"}, outfit={"color": "#8cc8f0"})
    greyed = plain.replace(hair={"grey": grey})
    a = ENGINE.render_rgba(plain, SIZE).astype(int)
    b = ENGINE.render_rgba(greyed, SIZE).astype(int)
    hair = ENGINE.masks(greyed, SIZE)["hair"]
    changed = (np.abs(a - b).sum(axis=2) > 40) & hair
    assert changed.sum() > 60, (style, grey, changed.sum())
    assert (np.abs(a - b).sum(axis=2) > 40)[~hair].sum() < 0.02 * SIZE * SIZE  # only the hair changes
    if grey == "temples":  # at the sides, not on the crown
        xs = np.nonzero(changed)[1]
        assert (np.abs(xs - SIZE / 2) > SIZE * 0.2).mean() > 0.8


def test_new_items_and_blossoms_render_and_change_the_picture() -> None:
    plain = BASE.replace(outfit={"color": "#8cc8f0"})
    for spec in (
        plain.replace(items=["elf_ears"]),
        plain.replace(items=["flower_crown"]),
        plain.replace(items=["elf_ears", "flower_crown"]),
        plain.replace(background={"kind": "blossoms"}),
    ):
        assert not np.array_equal(ENGINE.render_rgba(spec, 64), ENGINE.render_rgba(plain, 64))
    with pytest.raises(ValueError):
        AvatarSpec(items=["elf_ears", "headphones"])
    with pytest.raises(ValueError):
        AvatarSpec(items=["elf_ears", "cat_ears"])
