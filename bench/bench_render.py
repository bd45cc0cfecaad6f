"""Chibi engine benchmark: 512 px PNG latency on one core, and variety over 10,000 random specs.

    taskset -c 0 .venv/bin/python bench/bench_render.py [--n 200] [--variety 10000]

Prints the figures and writes bench/results/render.json. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from generation import catalog
from generation.chibi import ChibiEngine, render
from generation.chibi.engine import encode_png
from generation.spec import AvatarSpec

ROOT = Path(__file__).resolve().parent.parent


def random_spec(rng: random.Random) -> AvatarSpec:
    """A random spec: open fields left to the seed, plus 0-3 random items that fit together."""
    items: list[str] = []
    for item in rng.sample(catalog.ids("item"), rng.randint(0, 3)):
        try:
            AvatarSpec(items=[*items, item])
        except ValueError:
            continue
        items.append(item)
    return AvatarSpec(
        seed=rng.randrange(2**40), items=items, facial_hair=rng.choice(catalog.ids("facial_hair"))
    )


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--variety", type=int, default=10000)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    engine = ChibiEngine()
    rng = random.Random(1234)
    specs = [random_spec(rng) for _ in range(args.n)]
    for s in specs[:5]:
        engine.render(s)  # warm up
    build, raster, encode, total = [], [], [], []
    for s in specs:
        t0 = time.perf_counter()
        doc = render.document(list(render.layers(s.resolved())))
        t1 = time.perf_counter()
        rgba = render.rasterise(doc, 512)
        t2 = time.perf_counter()
        encode_png(rgba, engine.png_text(s))
        t3 = time.perf_counter()
        build.append((t1 - t0) * 1000)
        raster.append((t2 - t1) * 1000)
        encode.append((t3 - t2) * 1000)
    for s in specs:  # the public call, uncached specs (fresh seeds)
        s2 = s.replace(seed=s.seed + 1)
        t0 = time.perf_counter()
        engine.render(s2)
        total.append((time.perf_counter() - t0) * 1000)

    vrng = random.Random(99)
    hashes = set()
    t0 = time.perf_counter()
    for _ in range(args.variety):
        s = random_spec(vrng)
        rgba = render.rasterise(render.document(list(render.layers(s.resolved()))), 64)
        hashes.add(str(imagehash.phash(Image.fromarray(rgba).convert("RGB"), hash_size=16)))
    variety_s = time.perf_counter() - t0

    out = {
        "machine": f"{platform.processor() or platform.machine()}, 1 core pinned, python {platform.python_version()}",
        "specs": args.n,
        "png_512_ms": {"median": statistics.median(total), "p95": pct(total, 95)},
        "svg_build_ms": {"median": statistics.median(build), "p95": pct(build, 95)},
        "rasterise_512_ms": {"median": statistics.median(raster), "p95": pct(raster, 95)},
        "png_encode_ms": {"median": statistics.median(encode), "p95": pct(encode, 95)},
        "variety": {
            "specs": args.variety,
            "distinct_phash": len(hashes),
            "ratio": len(hashes) / max(1, args.variety),
            "hash": "imagehash.phash(hash_size=16) of a 64 px render",
            "seconds": round(variety_s, 1),
        },
    }
    for k, v in out.items():
        print(f"{k}: {v}")
    if args.variety == 0:  # a timing-only run keeps the last variety figures
        return
    path = ROOT / "bench" / "results" / "render.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    _ = np


if __name__ == "__main__":
    main()
