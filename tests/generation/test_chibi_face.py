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


def _layer(spec: AvatarSpec, name: str) -> np.ndarray:
    svg = {p.name: p.svg for p in ENGINE.layers(spec)}[name]
    return render.alpha_of(svg, SIZE)


@pytest.mark.parametrize("kind", ["beard", "stubble", "moustache", "goatee"])
def test_facial_hair_stays_on_the_jaw(kind: str) -> None:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    ys = (ys + 0.5) / K
    xs = (xs + 0.5) / K
    for shape, expression in itertools.product(SHAPES, MOUTHS):
        spec = AvatarSpec(seed=5, face_shape=shape, facial_hair=kind, expression=expression)
        where = f"{kind} on {shape}/{expression}"
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
