"""generation/exports.py: every export format from a spec, and the PNGTuber set (5 states x eyes x mouth)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.chibi.engine import ChibiEngine
from generation.exports import FORMATS, PNGTUBER_STATES, export_files, pngtuber_set
from generation.prompt import parse_prompt

SPEC = parse_prompt("short brown hair, round glasses", seed=5).spec


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGBA")).astype(np.int16)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_exports_named_files(fmt: str) -> None:
    files = export_files(SPEC, fmt, 128, "abc")
    assert files and all(name.startswith("abc") for name in files)
    assert all(data for data in files.values())


def test_unknown_format_and_bad_size_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export_files(SPEC, "bmp", 128, "abc")
    with pytest.raises(ValueError, match="between 64 and 2048"):
        pngtuber_set(SPEC, 32)


def test_pngtuber_frames_change_only_the_eyes_or_the_mouth() -> None:
    files = pngtuber_set(SPEC, 256, name="abc")
    assert sorted(files) == sorted(
        [
            f"{s}/{s}_{f}.png"
            for s, *_ in PNGTUBER_STATES
            for f in ("idle", "talk", "idle_blink", "talk_blink")
        ]
        + ["README.txt"]
    )
    for state, expression, *_ in PNGTUBER_STATES:
        masks = ChibiEngine().masks(SPEC.resolved().replace(expression=expression), 256, visible=False)
        idle, talk = pixels(files[f"{state}/{state}_idle.png"]), pixels(files[f"{state}/{state}_talk.png"])
        blink = pixels(files[f"{state}/{state}_idle_blink.png"])
        assert idle[:, :, 3][0, 0] == 0  # transparent
        talking = np.abs(idle - talk).max(axis=2) > 24
        blinking = np.abs(idle - blink).max(axis=2) > 24
        assert talking.any() and blinking.any(), state
        assert not (talking & ~near(masks["mouth"])).any(), state  # the mouth moves, nothing else
        assert not (blinking & ~near(masks["eyes"])).any(), state  # the eyes close, nothing else


def near(mask: np.ndarray, margin: int = 12) -> np.ndarray:
    """The mask's bounding box grown by ``margin`` pixels (a talking mouth may open wider than it)."""
    rows, cols = np.nonzero(mask)
    out = np.zeros_like(mask)
    out[
        max(rows.min() - margin, 0) : rows.max() + margin + 1,
        max(cols.min() - margin, 0) : cols.max() + margin + 1,
    ] = True
    return out
