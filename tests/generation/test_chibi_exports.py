"""Exports: PNG bounds, SVG, blink GIF/APNG, and a sticker pack within Discord's limits."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from generation.chibi import exports
from generation.spec import AvatarSpec

SPEC = AvatarSpec(seed=21, hair={"style": "twin_tails"}, items=["cat_ears"], expression="smile")


def test_png_export_sizes_and_errors() -> None:
    for size in (64, 512):
        im = Image.open(io.BytesIO(exports.png(SPEC, size, transparent=True)))
        assert im.size == (size, size) and im.mode == "RGBA"
        assert "parameters" in im.text
    with pytest.raises(ValueError, match="between 64 and 2048"):
        exports.png(SPEC, 32)
    with pytest.raises(ValueError):
        exports.png(SPEC, 3000)


def test_svg_export_is_clean_svg_text() -> None:
    text = exports.svg(SPEC)
    assert text.startswith("<svg") and text.endswith("</svg>")
    assert "<script" not in text and "<image" not in text
    assert "clip-path" in exports.svg(SPEC, circle=True)


def test_blink_gif_and_apng_loop_and_close_the_eyes() -> None:
    gif = Image.open(io.BytesIO(exports.blink_gif(SPEC, 128)))
    assert gif.format == "GIF" and gif.n_frames >= 3 and gif.info.get("loop") == 0
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(gif.convert("RGB").tobytes())
    assert len(set(frames)) >= 2  # open and closed differ
    apng_bytes = exports.blink_apng(SPEC, 128)
    apng = Image.open(io.BytesIO(apng_bytes))
    assert apng.format == "PNG" and getattr(apng, "n_frames", 1) >= 3
    assert len(apng_bytes) < 512 * 1024
    assert exports.blink_gif(SPEC, 128) == exports.blink_gif(SPEC, 128)


def test_sticker_pack_fits_discord_limits() -> None:
    files = exports.sticker_pack(SPEC)
    stickers = [n for n in files if n.startswith("stickers/")]
    emoji = [n for n in files if n.startswith("emoji/")]
    assert len(stickers) == 8 and len(emoji) == 8 and "sheet.png" in files
    for n in stickers:
        im = Image.open(io.BytesIO(files[n]))
        assert im.size == (320, 320) and len(files[n]) < 512 * 1024
        assert im.getpixel((0, 0))[3] == 0  # transparent around the die-cut border
    for n in emoji:
        assert Image.open(io.BytesIO(files[n])).size == (128, 128) and len(files[n]) < 256 * 1024
    z = zipfile.ZipFile(io.BytesIO(exports.to_zip(files)))
    assert sorted(z.namelist()) == sorted(files)
    assert exports.to_zip(files) == exports.to_zip(files)
