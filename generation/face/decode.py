"""Safe decoding of untrusted photo uploads into an RGB array, in memory only.

Every upload is untrusted. Before any pixel is decoded we check the byte size, restrict Pillow to real photo
formats, and read the dimensions from the header to refuse decompression bombs with our own limit (Pillow's
global ``Image.MAX_IMAGE_PIXELS`` is never relied on or changed). JPEGs are decoded at a reduced scale (draft
mode) when they are larger than we need; everything else is downscaled right after decoding. EXIF orientation is
honoured and every mode (RGBA, LA, P, CMYK, 16-bit, float, 1-bit) ends up as 8-bit sRGB-ish RGB.

All failures raise :class:`PhotoError` with a ``category`` and a kind message that can be shown to the user.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_PIXELS_NO_DRAFT",
    "WORK_SIDE",
    "DecodedPhoto",
    "PhotoError",
    "decode_photo",
]

Category = Literal[
    "not_an_image",
    "unsupported_format",
    "too_large",
    "damaged",
    "no_face",
    "partial_face",
    "bad_face_index",
]

#: Largest upload accepted, in bytes (Discord's own attachment limit is in the same range).
MAX_BYTES = 25 * 1024 * 1024
#: Largest image accepted, in pixels, for JPEG (decoded at reduced scale through draft mode).
MAX_PIXELS = 64_000_000
#: Largest image accepted for formats that must be decoded at full size (PNG, WebP, TIFF, ...).
MAX_PIXELS_NO_DRAFT = 24_000_000
#: Longest side of the working copy handed to analysis and the toon style.
WORK_SIDE = 2048
#: Photo formats accepted (Pillow format names). MPO is the multi-picture JPEG that many phones write.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")

_TIP_FORMAT = "Please send a JPEG, PNG or WebP photo."

# Leading bytes of image formats that exist but that we do not read: a precise message beats "not an image".
_KNOWN_OTHER: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"8BPS", "Photoshop"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"<svg", "SVG"),
    (0, b"<?xml", "SVG"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (0, b"qoif", "QOI"),
    (0, b"DDS ", "DDS"),
)


class PhotoError(ValueError):
    """A photo could not be used. ``category`` says why; ``str(error)`` is a kind message for the user."""

    user_facing = True  # the worker passes the message on as it is

    def __init__(self, category: Category, message: str) -> None:
        super().__init__(message)
        self.category: Category = category
        self.message = message

    def __reduce__(self) -> tuple[type[PhotoError], tuple[Category, str]]:  # picklable across processes
        return (PhotoError, (self.category, self.message))


@dataclass(frozen=True)
class DecodedPhoto:
    """The working copy of an upload: ``rgb`` is HxWx3 uint8, upright, at most WORK_SIDE on its longest side."""

    rgb: NDArray[np.uint8]
    format: str
    original_size: tuple[int, int]  # (width, height) as stored in the file, before orientation
    scale: float  # working size / upright original size

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))


def _sniff_other(data: bytes) -> str | None:
    head = data[:64].lstrip() if data[:1] in (b" ", b"\n", b"\r", b"\t") else data[:64]
    for offset, magic, name in _KNOWN_OTHER:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparency is flattened onto white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float32)
        top = float(arr.max()) if arr.size else 0.0
        if mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif top > 255.0:
            arr = arr / (257.0 if top <= 65535.0 else top / 255.0)
        gray = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), "RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode == "P":
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or im.mode == "RGBA":
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def decode_photo(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_pixels_no_draft: int = MAX_PIXELS_NO_DRAFT,
    work_side: int = WORK_SIDE,
) -> DecodedPhoto:
    """Decode an uploaded photo safely. Raises :class:`PhotoError` (never anything else for bad bytes)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_photo wants the file's bytes, not {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise PhotoError(
            "too_large",
            f"That file is {len(raw) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
            "A normal phone photo is fine.",
        )
    if len(raw) < 8:
        raise PhotoError("not_an_image", f"That file is not a picture. {_TIP_FORMAT}")
    with warnings.catch_warnings():
        # Our own limits are stricter than Pillow's warning threshold; keep its warning out of the logs.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            Image.init()  # registers every plugin once, so that each allowed format is known
            formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
            im = Image.open(io.BytesIO(raw), formats=formats)
        except UnidentifiedImageError:
            other = _sniff_other(raw)
            if other:
                raise PhotoError(
                    "unsupported_format", f"{other} pictures are not supported yet. {_TIP_FORMAT}"
                ) from None
            raise PhotoError("not_an_image", f"That file is not a picture. {_TIP_FORMAT}") from None
        except Image.DecompressionBombError:
            raise PhotoError("too_large", "That picture is far too large to process.") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as exc:
            raise PhotoError(
                "damaged", f"That picture seems damaged and could not be read ({type(exc).__name__})."
            ) from None
        try:
            return _decode_opened(im, max_pixels, max_pixels_no_draft, work_side)
        finally:
            im.close()


def _decode_opened(im: Image.Image, max_pixels: int, max_no_draft: int, work_side: int) -> DecodedPhoto:
    fmt = str(im.format or "unknown")
    width, height = im.size
    limit = max_pixels if fmt in ("JPEG", "MPO") else max_no_draft
    if width <= 0 or height <= 0:
        raise PhotoError("damaged", "That picture has no pixels.")
    if width * height > limit or max(width, height) > 30_000:
        raise PhotoError(
            "too_large",
            f"That picture is {width}×{height} pixels; the limit is {limit / 1e6:.0f} megapixels. "
            "Please send a smaller copy.",
        )
    try:
        if fmt in ("JPEG", "MPO") and max(width, height) > work_side:
            # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT: a fraction of the memory and time.
            im.draft("RGB", (max(1, width * work_side // max(width, height)), 1))
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        upright = ImageOps.exif_transpose(im)
        rgb = _to_rgb(upright)
        scale_side = max(rgb.size)
        if scale_side > work_side:
            factor = work_side / scale_side
            new_size = (max(1, round(rgb.size[0] * factor)), max(1, round(rgb.size[1] * factor)))
            rgb = rgb.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        arr = np.array(rgb, dtype=np.uint8)
    except PhotoError:
        raise
    except MemoryError:
        raise PhotoError("too_large", "That picture is too large to process.") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a damaged file
        raise PhotoError(
            "damaged",
            f"That picture seems damaged or cut short and could not be read ({type(exc).__name__}).",
        ) from None
    upright_long = max(width, height)
    return DecodedPhoto(
        rgb=arr, format=fmt, original_size=(width, height), scale=max(arr.shape[:2]) / upright_long
    )
