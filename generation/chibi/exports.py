"""Exports: PNG (64-2048 px, transparent, circle), SVG, blink GIF/APNG, and a Discord sticker pack.

Every function returns bytes (or ``dict[name, bytes]``), so a CLI writes files and the bot uploads them.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from generation.chibi.engine import ChibiEngine, check_size, encode_png
from generation.spec import AvatarSpec

STICKER_SIZE = 320
STICKER_MAX_BYTES = 512 * 1024
EMOJI_SIZE = 128
EMOJI_MAX_BYTES = 256 * 1024
STICKER_EXPRESSIONS: tuple[str, ...] = (
    "smile", "laugh", "wink", "love", "surprised", "crying", "angry", "sleepy",
)  # fmt: skip
# Blink: (left, right) eye modes and how long each frame shows, in ms.
BLINK_FRAMES: tuple[tuple[tuple[str, str] | None, int], ...] = (
    (None, 2200),
    (("half", "half"), 50),
    (("closed", "closed"), 90),
    (("half", "half"), 50),
    (None, 1400),
    (("closed", "closed"), 80),
    (None, 60),
)

_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def png(
    spec: AvatarSpec,
    size: int = 512,
    *,
    transparent: bool = False,
    circle: bool = False,
    metadata: dict[str, str] | None = None,
    engine: ChibiEngine | None = None,
) -> bytes:
    """A PNG between 64 and 2048 px; ValueError for any other size."""
    check_size(size)
    return (engine or ChibiEngine()).render(
        spec, size, transparent=transparent, circle=circle, metadata=metadata
    )


def svg(spec: AvatarSpec, *, transparent: bool = False, circle: bool = False) -> str:
    return ChibiEngine().render_svg(spec, transparent=transparent, circle=circle)


def _blink_frames(spec: AvatarSpec, size: int, engine: ChibiEngine) -> list[tuple[np.ndarray, int]]:
    cache: dict[tuple[str, str] | None, np.ndarray] = {}
    out = []
    for eyes, ms in BLINK_FRAMES:
        if eyes not in cache:
            cache[eyes] = engine.render_rgba(spec, size, eyes=eyes)
        out.append((cache[eyes], ms))
    return out


def blink_gif(spec: AvatarSpec, size: int = 256) -> bytes:
    """A looping GIF that blinks (open -> closed -> open)."""
    check_size(size)
    frames = _blink_frames(spec, size, ChibiEngine())
    images = [Image.fromarray(a[:, :, :3], "RGB") for a, _ in frames]
    palette_src = images[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    q = [im.quantize(palette=palette_src, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    q[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=q[1:],
        duration=[ms for _, ms in frames],
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buf.getvalue()


def blink_apng(spec: AvatarSpec, size: int = 256, *, transparent: bool = False) -> bytes:
    """A looping animated PNG that blinks; carries the ``parameters`` chunk like every PNG."""
    check_size(size)
    engine = ChibiEngine()
    frames = []
    for eyes, ms in BLINK_FRAMES:
        frames.append((engine.render_rgba(spec, size, transparent=transparent, eyes=eyes), ms))
    images = [Image.fromarray(a, "RGBA") for a, _ in frames]
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in engine.png_text(spec).items():
        info.add_itxt(k, v) if any(ord(ch) > 255 for ch in v) else info.add_text(k, v)
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="PNG",
        save_all=True,
        append_images=images[1:],
        duration=[ms for _, ms in frames],
        loop=0,
        pnginfo=info,
        compress_level=6,
        default_image=False,
    )
    return buf.getvalue()


def _die_cut(rgba: np.ndarray, border: int) -> np.ndarray:
    """A white sticker border around the figure (like a die-cut vinyl sticker)."""
    from generation.chibi.engine import _dilate

    mask = rgba[:, :, 3] > 16
    grown = _dilate(mask, border)
    out = np.zeros_like(rgba)
    out[grown] = (255, 255, 255, 255)
    a = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * a + out[:, :, :3].astype(np.float32) * (1 - a)
    alpha = np.maximum(rgba[:, :, 3], out[:, :, 3])
    return np.dstack([rgb.round().astype(np.uint8), alpha.astype(np.uint8)])


def _fit(rgba: np.ndarray, size: int) -> np.ndarray:
    im = Image.fromarray(rgba, "RGBA").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im)


def sticker_pack(spec: AvatarSpec, expressions: tuple[str, ...] = STICKER_EXPRESSIONS) -> dict[str, bytes]:
    """The same character in 8 expressions: ``stickers/<expr>.png`` (320x320, < 512 KB, transparent,
    white die-cut border), ``emoji/<expr>.png`` (128x128, < 256 KB) and ``sheet.png`` (all in one)."""
    engine = ChibiEngine()
    base = spec.resolved()
    files: dict[str, bytes] = {}
    stickers = []
    for expr in expressions:
        s = base.replace(expression=expr)
        rgba = engine.render_rgba(s, 640, transparent=True)
        # leave room for the border: scale the figure down a little inside the square
        small = _fit(rgba, 600)
        padded = np.zeros((640, 640, 4), np.uint8)
        padded[20:620, 20:620] = small
        cut = _die_cut(padded, 10)
        sticker = _fit(cut, STICKER_SIZE)
        stickers.append(sticker)
        text = engine.png_text(s, {"expression": expr})
        data = encode_png(sticker, text, compress_level=9)
        assert len(data) < STICKER_MAX_BYTES
        files[f"stickers/{expr}.png"] = data
        emoji = _fit(cut, EMOJI_SIZE)
        edata = encode_png(emoji, text, compress_level=9)
        assert len(edata) < EMOJI_MAX_BYTES
        files[f"emoji/{expr}.png"] = edata
    cols = 4
    rows = (len(stickers) + cols - 1) // cols
    sheet = np.zeros((rows * STICKER_SIZE, cols * STICKER_SIZE, 4), np.uint8)
    for i, st in enumerate(stickers):
        r, c = divmod(i, cols)
        sheet[r * STICKER_SIZE : (r + 1) * STICKER_SIZE, c * STICKER_SIZE : (c + 1) * STICKER_SIZE] = st
    files["sheet.png"] = encode_png(sheet, engine.png_text(base), compress_level=9)
    return files


def to_zip(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of name -> bytes (fixed timestamps, sorted names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    return buf.getvalue()
