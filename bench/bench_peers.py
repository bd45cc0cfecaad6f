"""Render latency, ours vs peer avatar generators on PyPI: 512 px PNG, one core, one thread.

    .venv/bin/python -m pip install py-avataaars==1.1.2 python-avatars==1.4.1 multiavatar==1.0.3
    taskset -c 0 .venv/bin/python bench/bench_peers.py [--n 200] [--seed 4321]

The peers are bench-only (not in pyproject.toml). Each generator renders ``--n`` different avatars
(random parts/strings from a fixed seed); we time each one end to end, spec -> 512 px PNG bytes:

- ours: the public ``ChibiEngine().render(spec, 512)``, fresh specs (no cache hits); our PNG also
  carries the ``parameters`` text chunk (prompt + spec JSON), which is part of our cost;
- peers (all three produce SVG): their SVG call, then the same rasteriser as ours (skia-python
  ``SVGDOM`` drawn into a 512 px straight-alpha RGBA surface, scaled uniformly to fit and centred),
  then the same PNG encoding as ours (filter type 0, one deflate stream at level 1 through
  ``generation.chibi.engine.deflate``: ISA-L when installed, as ours), re-implemented here.
  py-avataaars quotes its mask IRIs (``url('#id')``), which skia ignores; they are unquoted with one
  regex substitution before rasterising (counted in its PNG time). A peer whose first renders come out
  as one flat colour is recorded as failed rather than timed.

SVG generation alone is timed separately too (ours on another set of fresh specs). py-avataaars also
ships its own PNG path (cairosvg); it is timed as an extra row. The network is cut for the whole run
(``socket.connect`` raises), so a peer that needs it is recorded as failed with the reason.

Prints a table and writes bench/results/peers.json. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import platform
import random
import re
import socket
import statistics
import struct
import subprocess
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skia

from generation.chibi import ChibiEngine
from generation.chibi.engine import deflate

try:  # the same inputs and percentile as bench_render.py
    from bench.bench_render import pct, random_spec
except ImportError:  # run as a script: bench/ itself is on sys.path
    from bench_render import pct, random_spec  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
SIZE = 512
PIP_LINE = ".venv/bin/python -m pip install py-avataaars==1.1.2 python-avatars==1.4.1 multiavatar==1.0.3"


# --- the same rasteriser and PNG encoding as ours (re-implemented, no private imports) ---------------


def rasterise(svg: str, size: int = SIZE) -> np.ndarray:
    """SVG text -> straight-alpha RGBA uint8 (size x size), skia SVGDOM, drawn scaled to fit, centred."""
    data = svg.encode("utf-8")
    stream = skia.MemoryStream(data)
    dom = skia.SVGDOM.MakeFromStream(stream)
    if dom is None:
        raise RuntimeError("skia could not parse the SVG")
    arr = np.zeros((size, size, 4), np.uint8)
    surface = skia.Surface(arr, skia.kRGBA_8888_ColorType, skia.kUnpremul_AlphaType)
    canvas = surface.getCanvas()
    box = dom.containerSize()
    if box.width() <= 0 or box.height() <= 0:  # no width/height: the view box fills the container
        dom.setContainerSize(skia.Size(size, size))
    else:
        k = size / max(box.width(), box.height())
        canvas.translate((size - k * box.width()) / 2, (size - k * box.height()) / 2)
        canvas.scale(k, k)
    dom.render(canvas)
    del canvas, surface
    return arr


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgba: np.ndarray) -> bytes:
    """8-bit RGBA PNG, filter type 0 on every row, one deflate stream at level 1 (as our engine does)."""
    h, w, _ = rgba.shape
    rows = np.empty((h, w * 4 + 1), np.uint8)
    rows[:, 0] = 0
    rows[:, 1:] = rgba.reshape(h, w * 4)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", deflate(rows.data, 1)),
            _chunk(b"IEND", b""),
        ]
    )


# --- inputs ------------------------------------------------------------------------------------------


def stats(xs: list[float]) -> dict[str, float | int]:
    return {"median": round(statistics.median(xs), 3), "p95": round(pct(xs, 95), 3), "n": len(xs)}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def dominant_share(rgba: np.ndarray) -> float:
    """Share of pixels with the most common colour: near 1.0 means a blank or broken render."""
    _, counts = np.unique(rgba.reshape(-1, 4).view(np.uint32), return_counts=True)
    return float(counts.max() / counts.sum())


def time_svg_peer(
    makers: list[Callable[[], str]], fix: Callable[[str], str] = lambda s: s
) -> dict[str, object]:
    """Per avatar: SVG call, then (fix +) rasterise + encode; svg and end-to-end PNG timings (ms)."""
    share = max(dominant_share(rasterise(fix(make()))) for make in makers[:5])  # also warms up
    if share > 0.95:
        raise RuntimeError(f"skia renders this peer's SVG as one flat colour ({share:.0%} of pixels)")
    svg_ms, png_ms, sizes = [], [], []
    for make in makers:
        t0 = time.perf_counter()
        svg = make()
        t1 = time.perf_counter()
        png = encode_png(rasterise(fix(svg)))
        t2 = time.perf_counter()
        svg_ms.append((t1 - t0) * 1000)
        png_ms.append((t2 - t0) * 1000)
        sizes.append(len(png))
    return {
        "png_512_ms": stats(png_ms),
        "svg_ms": stats(svg_ms),
        "png_bytes_median": int(statistics.median(sizes)),
        "max_dominant_colour_share_first5": round(share, 3),
    }


# --- generators --------------------------------------------------------------------------------------


def bench_ours(n: int, seed: int) -> dict[str, object]:
    engine = ChibiEngine()
    rng = random.Random(seed)
    specs = [random_spec(rng) for _ in range(n)]
    for s in specs[:5]:
        engine.render(s.replace(seed=s.seed + 7), SIZE)  # warm up, other seeds
    png_ms, sizes = [], []
    for s in specs:
        t0 = time.perf_counter()
        png = engine.render(s, SIZE)
        png_ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(png))
    # SVG alone on fresh seeds (render() caches layers per spec)
    svg_ms = [timed(lambda s=s: engine.render_svg(s.replace(seed=s.seed + 1))) for s in specs]
    return {
        "package": "chibify (generation.chibi)",
        "call": "ChibiEngine().render(spec, 512)",
        "png_512_ms": stats(png_ms),
        "svg_ms": stats(svg_ms),
        "png_bytes_median": int(statistics.median(sizes)),
    }


def enum_values(enum_cls: type) -> list[object]:
    return list(enum_cls)  # type: ignore[call-overload]


QUOTED_URL = re.compile(r"url\('(#[^']*)'\)")


def unquote_urls(svg: str) -> str:
    """py-avataaars writes mask="url('#id')"; skia's SVGDOM ignores quoted IRIs (every mask is lost and
    the picture comes out as one brown rectangle), so they are unquoted: url(#id). Counted in PNG time."""
    return QUOTED_URL.sub(r"url(\1)", svg)


def bench_py_avataaars(n: int, seed: int) -> dict[str, object]:
    import py_avataaars as pa

    rng = random.Random(seed)
    fields = {
        "style": pa.AvatarStyle,
        "background_color": pa.Color,
        "skin_color": pa.SkinColor,
        "hair_color": pa.HairColor,
        "facial_hair_type": pa.FacialHairType,
        "facial_hair_color": pa.HairColor,
        "top_type": pa.TopType,
        "hat_color": pa.Color,
        "mouth_type": pa.MouthType,
        "eye_type": pa.EyesType,
        "eyebrow_type": pa.EyebrowType,
        "accessories_type": pa.AccessoriesType,
        "clothe_type": pa.ClotheType,
        "clothe_color": pa.Color,
        "clothe_graphic_type": pa.ClotheGraphicType,
    }
    avatars = [pa.PyAvataaar(**{k: rng.choice(enum_values(e)) for k, e in fields.items()}) for _ in range(n)]
    sink = io.StringIO()  # it prints a warning for SVGs with duplicate ids
    with contextlib.redirect_stdout(sink):
        out = time_svg_peer([a.render_svg for a in avatars], unquote_urls)
        try:  # its own PNG path: cairosvg at the SVG's own size (280 px), not 512
            for a in avatars[:3]:
                a.render_png()
            native = [timed(a.render_png) for a in avatars]
            out["native_png_ms"] = {
                **stats(native),
                "note": "PyAvataaar.render_png() (cairosvg, 280 px intrinsic size, not 512)",
            }
        except Exception as e:  # cairo missing is a result, not a crash
            out["native_png_ms"] = {"error": f"{type(e).__name__}: {e}"}
    out["duplicate_id_warnings"] = sink.getvalue().count("WARING")
    return {"package": "py-avataaars", "call": "PyAvataaar(random enums).render_svg()", **out}


def bench_python_avatars(n: int, seed: int) -> dict[str, object]:
    import python_avatars as pa

    random.seed(seed)  # Avatar.random() draws from the global random module
    avatars = [pa.Avatar.random() for _ in range(n)]
    out = time_svg_peer([a.render for a in avatars])
    return {"package": "python-avatars", "call": "Avatar.random().render()", **out}


def bench_multiavatar(n: int, seed: int) -> dict[str, object]:
    from multiavatar.multiavatar import multiavatar

    rng = random.Random(seed)
    names = [f"user-{rng.randrange(2**48):012x}" for _ in range(n)]
    out = time_svg_peer([lambda s=s: multiavatar(s, None, None) for s in names])
    return {"package": "multiavatar", "call": "multiavatar(random string, None, None)", **out}


PEERS = {
    "py-avataaars": bench_py_avataaars,
    "python-avatars": bench_python_avatars,
    "multiavatar": bench_multiavatar,
}


def chibi_tree() -> str:
    """Which chibi code was measured: HEAD, and whether generation/chibi/ had uncommitted edits."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "generation/chibi"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        return f"unknown ({e})"
    files = [f for f in dirty if f.startswith("generation/")]
    return f"{head}" + (f" + uncommitted edits in {', '.join(files)}" if files else " (clean)")


def no_network(*_args: object, **_kwargs: object) -> None:
    raise OSError("network disabled by bench_peers (the peers must run offline)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if args.n < 5:
        ap.error("--n must be at least 5")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    socket.socket.connect = no_network  # type: ignore[method-assign]
    socket.socket.connect_ex = no_network  # type: ignore[method-assign]
    socket.create_connection = no_network  # type: ignore[assignment]

    results: dict[str, dict[str, object]] = {"ours": bench_ours(args.n, args.seed)}
    for name, fn in PEERS.items():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            results[name] = {"package": name, "error": f"not installed; install with: {PIP_LINE}"}
            continue
        try:
            results[name] = {"version": version, **fn(args.n, args.seed)}
        except Exception as e:  # a failing peer is recorded, not fatal
            results[name] = {
                "package": name,
                "version": version,
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=3),
            }

    ours_png = results["ours"]["png_512_ms"]["median"]  # type: ignore[index]
    ours_svg = results["ours"]["svg_ms"]["median"]  # type: ignore[index]
    for name in PEERS:
        r = results[name]
        if "error" not in r:
            r["ratio_ours_over_theirs_png_median"] = round(ours_png / r["png_512_ms"]["median"], 2)  # type: ignore[index]
            r["ratio_ours_over_theirs_svg_median"] = round(ours_svg / r["svg_ms"]["median"], 2)  # type: ignore[index]

    print(f"512 px PNG on one core (cpu 0), {args.n} avatars each, ms")
    head = f"{'generator':<16}{'PNG med':>9}{'PNG p95':>9}{'SVG med':>9}{'SVG p95':>9}{'ours/them':>11}"
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<16}  failed: {r['error']}")
            continue
        png, svg = r["png_512_ms"], r["svg_ms"]
        ratio = r.get("ratio_ours_over_theirs_png_median", "-")
        print(
            f"{name:<16}{png['median']:>9.2f}{png['p95']:>9.2f}{svg['median']:>9.2f}{svg['p95']:>9.2f}"  # type: ignore[index]
            f"{ratio!s:>11}"
        )
        native = r.get("native_png_ms")
        if isinstance(native, dict) and "median" in native:
            print(f"{'  (own cairosvg PNG, 280 px)':<32}{native['median']:>9.2f}{native['p95']:>9.2f}")

    out = {
        "machine": (
            f"{platform.processor() or platform.machine()}, pinned to cpu 0, python {platform.python_version()}, "
            f"skia-python {skia.__version__}, load average at end {os.getloadavg()[0]:.2f}"
        ),
        "command": f"taskset -c 0 .venv/bin/python bench/bench_peers.py --n {args.n} --seed {args.seed}",
        "pip": PIP_LINE,
        "method": (
            "per avatar, end to end: spec/options -> 512 px PNG bytes. Peers: their SVG call, then skia "
            "SVGDOM into a 512 px straight-alpha RGBA surface (uniform scale to fit, centred), then PNG "
            "with filter 0 + deflate level 1 (engine.deflate: ISA-L), as ours. Ours: ChibiEngine().render(spec, 512), which also "
            "writes the parameters text chunk. svg_ms: the SVG call alone. ratio = ours / theirs "
            "(medians; > 1 means ours is slower). Network cut during the run."
        ),
        "chibi_code": chibi_tree(),
        "n": args.n,
        "seed": args.seed,
        "results": results,
    }
    if not args.no_save:
        path = ROOT / "bench" / "results" / "peers.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
