"""Facial hair frames the jaw on every face shape; face shapes are visibly different."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from generation import catalog
from generation.chibi import ChibiEngine, render
from generation.chibi.face import CHIN_BULGE, SIDEBURN_Y
from generation.chibi.geometry import CX, EYE_DX, FACE_SHAPES, NOSE_Y, VIEW, face_path
from generation.chibi.svgkit import path
from generation.spec import AvatarSpec

ENGINE = ChibiEngine()
SIZE = 128
K = SIZE / VIEW
SHAPES = catalog.ids("face_shape")
MOUTHS = ("smile", "laugh", "surprised", "grin")


def only_when_asked(request: pytest.FixtureRequest) -> None:
    """Exhaustive tests run with ``-m slow`` only, so the default suite stays fast."""
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("exhaustive: run with -m slow")


def _layer(spec: AvatarSpec, name: str) -> np.ndarray:
    svg = {p.name: p.svg for p in ENGINE.layers(spec)}[name]
    return render.alpha_of(svg, SIZE)


def check_facial_hair(kind: str, shape: str, expression: str, tone: str = "tan") -> None:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    ys = (ys + 0.5) / K
    xs = (xs + 0.5) / K
    if True:
        spec = AvatarSpec(seed=5, face_shape=shape, facial_hair=kind, expression=expression, skin_tone=tone)
        where = f"{kind} on {shape}/{expression}/{tone}"
        hair = _layer(spec, "facial_hair") > 0.3
        assert hair.any(), where
        # never over the eyes or the nose: in the middle of the face only below the nose
        middle = np.abs(xs - CX) < EYE_DX + 10
        assert not (hair & middle & (ys < NOSE_Y + 3)).any(), f"{where}: facial hair above the nose"
        assert not (hair & (ys < SIDEBURN_Y - 4)).any(), f"{where}: above the sideburns"
        # inside the face outline, except a soft bulge under the chin
        face = render.alpha_of(path(face_path(shape, grow=6)), SIZE) > 0.1
        chin_y = FACE_SHAPES[shape][4]
        outside = hair & ~face
        assert not (outside & (ys < chin_y - 30)).any(), f"{where}: pokes out past the cheeks"
        assert not (hair & (ys > chin_y + CHIN_BULGE + 8)).any(), f"{where}: hangs too low"
        # the mouth stays visible
        vis = ENGINE.masks(spec, SIZE, visible=False)
        mouth = vis["mouth"]
        covered = (mouth & hair).sum()
        assert covered <= 0.1 * mouth.sum(), f"{where}: the beard covers the mouth"
        # it reads: most facial-hair pixels stand apart from the skin around them (fill or rim)
        rgba = ENGINE.render_rgba(spec, SIZE).astype(float)
        skin = rgba[(_layer(spec, "head") > 0.9) & ~hair & (ys > NOSE_Y) & (ys < chin_y - 10)][:, :3].mean(0)
        mark = rgba[_layer(spec, "facial_hair") > 0.25][:, :3]
        apart = (np.abs(mark - skin).sum(axis=1) > 40).mean()
        assert apart > (0.25 if kind == "stubble" else 0.5), (
            f"{where}: facial hair does not read on this skin ({apart:.0%} apart)"
        )


@pytest.mark.parametrize("kind", ["beard", "stubble", "moustache", "goatee"])
def test_facial_hair_stays_on_the_jaw(kind: str) -> None:
    for shape, expression in itertools.product(SHAPES, MOUTHS):
        check_facial_hair(kind, shape, expression)


@pytest.mark.slow
def test_facial_hair_on_every_shape_expression_and_skin_tone(request: pytest.FixtureRequest) -> None:
    only_when_asked(request)
    kinds = ("beard", "stubble", "moustache", "goatee")
    tones = catalog.ids("skin_tone")
    for i, (kind, shape, expression) in enumerate(
        itertools.product(kinds, SHAPES, catalog.ids("expression"))
    ):
        check_facial_hair(kind, shape, expression, tones[i % len(tones)])


@pytest.mark.parametrize("shape", SHAPES)
def test_a_beard_frames_the_jaw(shape: str) -> None:
    spec = AvatarSpec(seed=5, face_shape=shape, facial_hair="beard")
    hair = _layer(spec, "facial_hair") > 0.5
    ys, xs = np.nonzero(hair)
    chin_y = FACE_SHAPES[shape][4]
    # both cheeks and the chin are covered
    assert (xs < (CX - 100) * K).any() and (xs > (CX + 100) * K).any()
    assert ys.max() >= (chin_y - 4) * K


def test_face_shapes_are_visibly_different() -> None:
    """Each pair of face outlines differs in at least 6 % of their joint area (it was 3 % before)."""
    masks = {s: render.alpha_of(path(face_path(s)), SIZE) > 0.5 for s in SHAPES}
    for a, b in itertools.combinations(SHAPES, 2):
        diff = (masks[a] ^ masks[b]).sum() / (masks[a] | masks[b]).sum()
        assert diff > 0.06, f"{a} and {b} look alike ({diff:.1%})"
    width = {s: masks[s].sum(axis=1).max() for s in SHAPES}
    height = {s: masks[s].any(axis=1).sum() for s in SHAPES}
    assert height["long"] > height["oval"] > height["round"]
    assert width["round"] > width["oval"] > width["long"]
    jaw_row = round(352 * K)
    assert masks["square"][jaw_row].sum() > masks["heart"][jaw_row].sum() + 6
