"""Selfie analysis and toon figures: time for a 2 MP photo, peak memory for the largest allowed photo.

    .venv/bin/python -m bench.bench_face [--photos ../shared/photos]

Prints a table and saves bench/results/face.json. Timing claims live here, never in tests.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from generation.face import analyze_photo, decode_photo, toon_photo
from generation.face.decode import MAX_PIXELS, MAX_PIXELS_NO_DRAFT


def _jpeg_of(photo_bytes: bytes, pixels: int) -> bytes:
    im = Image.open(io.BytesIO(photo_bytes)).convert("RGB")
    k = (pixels / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_of(photo_bytes: bytes, pixels: int) -> bytes:
    im = Image.open(io.BytesIO(photo_bytes)).convert("RGB")
    k = (pixels / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _peak(fn: Any) -> tuple[float, float]:
    """(tracemalloc peak MiB, process max RSS MiB after the call)."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak / 2**20, rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, default=Path("../shared/photos"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results/face.json"))
    args = parser.parse_args(argv)
    source = (args.photos / "obama.jpg").read_bytes()
    two_mp = _jpeg_of(source, 2_000_000)
    photo = decode_photo(two_mp)
    t = time.perf_counter()
    analysis = analyze_photo(photo)  # first call builds the models
    first_ms = (time.perf_counter() - t) * 1000
    figures: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "photo": f"obama.jpg resized to {photo.original_size[0]}x{photo.original_size[1]} JPEG",
        "first_call_ms_incl_model_load": round(first_ms, 1),
        "decode_ms": round(_median_ms(lambda: decode_photo(two_mp), args.repeat), 1),
        "analyze_ms": round(_median_ms(lambda: analyze_photo(decode_photo(two_mp)), args.repeat), 1),
        "toon_ms_after_analysis": round(_median_ms(lambda: toon_photo(photo, analysis), args.repeat), 1),
        "toon_ms_total": round(
            _median_ms(lambda: toon_photo(p := decode_photo(two_mp), analyze_photo(p)), args.repeat), 1
        ),
    }
    side = int((MAX_PIXELS * 0.98) ** 0.5)
    biggest_jpeg = _jpeg_of(source, side * side)
    tm, rss = _peak(lambda: analyze_photo(decode_photo(biggest_jpeg)))
    figures["largest_jpeg"] = {
        "megapixels": round(side * side / 1e6, 1),
        "tracemalloc_peak_mib": round(tm, 1),
    }
    figures["largest_jpeg"]["max_rss_mib"] = round(rss, 1)
    biggest_png = _png_of(source, int(MAX_PIXELS_NO_DRAFT * 0.98))
    tm, rss = _peak(lambda: analyze_photo(decode_photo(biggest_png)))
    figures["largest_png"] = {
        "megapixels": round(MAX_PIXELS_NO_DRAFT * 0.98 / 1e6, 1),
        "tracemalloc_peak_mib": round(tm, 1),
        "max_rss_mib": round(rss, 1),
    }
    figures["largest_png"]["analyze_ms"] = round(
        _median_ms(lambda: analyze_photo(decode_photo(biggest_png)), 1), 1
    )
    figures["numpy"] = np.__version__
    for k, v in figures.items():
        print(f"{k:32s} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
