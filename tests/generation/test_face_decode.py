"""Untrusted uploads: every bad input gets a PhotoError with a category, never a crash or a huge allocation."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from generation.face.decode import MAX_PIXELS_NO_DRAFT, WORK_SIDE, PhotoError, decode_photo


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(w: int = 64, h: int = 48) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = 120
    return Image.fromarray(arr)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_photo_format_decodes_to_rgb(fmt: str) -> None:
    out = decode_photo(_encode(_photo(), fmt))
    assert out.rgb.shape == (48, 64, 3) and out.rgb.dtype == np.uint8
    assert out.format == fmt


def test_modes_are_normalised() -> None:
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 0))  # fully transparent -> white
    assert decode_photo(_encode(rgba, "PNG")).rgb[0, 0].tolist() == [255, 255, 255]
    cmyk = Image.new("CMYK", (20, 10), (0, 255, 255, 0))
    assert decode_photo(_encode(cmyk, "JPEG")).rgb[5, 5, 0] > 200
    pal = _photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert decode_photo(_encode(pal, "PNG")).rgb.shape == (48, 64, 3)
    sixteen = Image.fromarray(np.full((10, 20), 65535, np.uint16))
    assert decode_photo(_encode(sixteen, "PNG")).rgb.min() == 255  # white stays white, not clipped garbage
    assert decode_photo(_encode(Image.new("1", (8, 8), 1), "PNG")).rgb.max() == 255


def test_exif_orientation_is_honoured() -> None:
    im = _photo(64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_photo(_encode(im, "JPEG", exif=exif.tobytes()))
    assert out.rgb.shape[:2] == (64, 32)


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert decode_photo(buf.getvalue()).rgb[8, 8, 0] > 200


@pytest.mark.parametrize(
    ("data", "category"),
    [
        (b"hello, this is a text file, not a picture at all", "not_an_image"),
        (b"%PDF-1.7\n" + b"0" * 100, "not_an_image"),
        (b"", "not_an_image"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, "unsupported_format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "unsupported_format"),
    ],
)
def test_not_images(data: bytes, category: str) -> None:
    with pytest.raises(PhotoError) as err:
        decode_photo(data)
    assert err.value.category == category
    assert "JPEG" in str(err.value)


def test_unsupported_but_real_image_format() -> None:
    with pytest.raises(PhotoError) as err:
        decode_photo(_encode(_photo(), "ICO"))
    assert err.value.category == "unsupported_format"


def test_truncated_jpeg_is_damaged() -> None:
    data = _encode(_photo(256, 256), "JPEG", quality=90)
    with pytest.raises(PhotoError) as err:
        decode_photo(data[: len(data) // 2])
    assert err.value.category == "damaged"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_pixel_bomb_header_is_refused_before_decoding() -> None:
    # A tiny file that claims to be 100000 x 100000 pixels (about 30 GB decoded).
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    tracemalloc.start()
    with pytest.raises(PhotoError) as err:
        decode_photo(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.value.category == "too_large"
    assert peak < 20 * 2**20


def test_large_png_over_limit_and_byte_limit() -> None:
    side = int(MAX_PIXELS_NO_DRAFT**0.5) + 50
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    with pytest.raises(PhotoError) as err:
        decode_photo(data)
    assert err.value.category == "too_large"
    with pytest.raises(PhotoError) as err2:
        decode_photo(b"\xff\xd8" + b"\x00" * 100, max_bytes=50)
    assert err2.value.category == "too_large"


def test_huge_jpeg_is_downscaled_cheaply() -> None:
    big = _encode(Image.new("RGB", (6000, 4000), (120, 80, 60)), "JPEG", quality=50)
    tracemalloc.start()
    out = decode_photo(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert max(out.size) == WORK_SIDE
    assert out.original_size == (6000, 4000)
    assert peak < 120 * 2**20  # draft mode: far below the 72 MB of a full-size RGB decode plus copies


def test_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode_photo("photo.jpg")  # type: ignore[arg-type]


def test_errors_pickle_across_processes() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(PhotoError("damaged", "broken")))
    assert err.category == "damaged" and str(err) == "broken"
