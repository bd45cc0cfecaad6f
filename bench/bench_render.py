"""Chibi engine render benchmark: PNG latency on one core, side by side with DiceBear in the same run.

    (cd bench/dicebear && npm ci)          # once: pinned @dicebear/core, @dicebear/collection, @resvg/resvg-js
    .venv/bin/python bench/bench_render.py [--n 200] [--rounds 3] [--warm 3000] [--memory 10000] [--variety 10000]
    (--memory 0 / --variety 0 skip those checks and keep their last figures in the JSON)

Pins itself (and the node child it starts) to one core. First a cold round: every renderer cache emptied,
200 fresh specs at 512 px (what a worker that just started draws). Then ``--warm`` renders of other random
specs at 512 and 128 px (a worker that has been serving: the colour-free layer templates it has learnt,
generation/chibi/composite.py), then alternating rounds of: ours at 512 px, ours at 128 px, DiceBear
"adventurer" at 512 px (node + resvg-js, timed per render inside node). Every round draws fresh random
specs (new seeds and colours, so no per-spec cache hits; templates and layers that repeat hit their caches,
as they would in service). Also in the same run: the stage breakdown (SVG text, rasterise, encode), the
reference path it replaced (whole-document SVGDOM into a straight-alpha surface + zlib), a PNG encoder
comparison with file sizes, and RSS over many renders.

Prints the figures and writes bench/results/render.json. Not part of the test run.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import statistics
import subprocess
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skia
from PIL import Image

from generation import catalog
from generation.chibi import ChibiEngine, composite, render
from generation.chibi.engine import _chunk, encode_png
from generation.spec import AvatarSpec

ROOT = Path(__file__).resolve().parent.parent
DICEBEAR = ROOT / "bench" / "dicebear"


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


def stats(xs: list[float]) -> dict[str, float | int]:
    return {"median": round(statistics.median(xs), 3), "p95": round(pct(xs, 95), 3), "n": len(xs)}


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the path this replaced, kept here to measure it in the same run --------------------------------


def png_zlib(
    rgba: np.ndarray, level: int = 1, filt: int = 0, lib: Callable[..., bytes] = zlib.compress
) -> bytes:
    """The previous writer: one filter type on every row, one deflate stream (no text chunks)."""
    h, w, _ = rgba.shape
    flat = rgba.reshape(h, w * 4)
    rows = np.empty((h, w * 4 + 1), np.uint8)
    rows[:, 0] = filt
    if filt == 0:
        rows[:, 1:] = flat
    elif filt == 1:  # sub
        rows[:, 1:5] = flat[:, :4]
        np.subtract(flat[:, 4:], flat[:, :-4], out=rows[:, 5:])
    else:  # up
        rows[0, 1:] = flat[0]
        np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    import struct

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", lib(rows.data, level)),
            _chunk(b"IEND", b""),
        ]
    )


def encoders() -> dict[str, Callable[[np.ndarray], bytes]]:
    out: dict[str, Callable[[np.ndarray], bytes]] = {
        "zlib L1, filter none (previous writer)": lambda a: png_zlib(a, 1),
        "zlib L6, filter none": lambda a: png_zlib(a, 6),
        "encode_png (now: isal L1, filter none)": lambda a: encode_png(a, {}),
    }
    try:
        from isal import isal_zlib

        for lvl in (0, 1, 2):
            out[f"isal L{lvl}, filter none"] = lambda a, lvl=lvl: png_zlib(a, lvl, 0, isal_zlib.compress)
        out["isal L1, filter sub"] = lambda a: png_zlib(a, 1, 1, isal_zlib.compress)
        out["isal L1, filter up"] = lambda a: png_zlib(a, 1, 2, isal_zlib.compress)
    except ImportError:
        pass
    try:  # bench-only: pip install zlib-ng
        from zlib_ng import zlib_ng

        out["zlib-ng L1, filter none"] = lambda a: png_zlib(a, 1, 0, zlib_ng.compress)
        out["zlib-ng L2, filter none"] = lambda a: png_zlib(a, 2, 0, zlib_ng.compress)
    except ImportError:
        pass

    def pillow(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a, "RGBA").save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def skia_png(a: np.ndarray) -> bytes:
        img = skia.Image.fromarray(a, skia.kRGBA_8888_ColorType)
        return bytes(img.encodeToData(skia.kPNG, 100))

    out["Pillow L1 (adaptive filters)"] = pillow
    out["skia Image.encodeToData(kPNG)"] = skia_png
    return out


# --- DiceBear through node ---------------------------------------------------------------------------


def dicebear_round(n: int, prefix: str, size: int = 512) -> dict[str, object]:
    script = DICEBEAR / "render.mjs"
    if not (DICEBEAR / "node_modules" / "@dicebear" / "core").is_dir():
        return {"error": "node packages missing: run (cd bench/dicebear && npm ci)"}
    try:
        proc = subprocess.run(
            ["node", str(script), str(n), prefix, str(size), "10"],
            cwd=DICEBEAR,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    data = json.loads(proc.stdout)
    return {"png_ms": data["pngMs"], "svg_ms": data["svgMs"], "bytes": data["bytes"], "node": data["node"]}


def package_versions() -> dict[str, str]:
    lock = DICEBEAR / "package.json"
    return json.loads(lock.read_text())["dependencies"] if lock.exists() else {}


# --- ours ---------------------------------------------------------------------------------------------


def ours_round(engine: ChibiEngine, specs: list[AvatarSpec], size: int) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for s in specs:
        t0 = time.perf_counter()
        png = engine.render(s, size)
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(png))
    return times, sizes


def stages(engine: ChibiEngine, specs: list[AvatarSpec]) -> dict[str, object]:
    """Per spec, in one loop: SVG text (layers), the fast rasteriser, the encoder; and the reference path
    (whole document through SVGDOM into a straight-alpha surface, then zlib level 1) on the same layers."""
    names = ["svg_text", "rasterise", "encode", "ref_document", "ref_rasterise", "ref_encode_zlib1"]
    t: dict[str, list[float]] = {k: [] for k in names}
    for s in specs:
        r = s.resolved()
        t0 = time.perf_counter()
        parts = render.layers(r)
        t1 = time.perf_counter()
        rgba = render.rasterise_layers(parts, 512)
        t2 = time.perf_counter()
        encode_png(rgba, engine.png_text(r))
        t3 = time.perf_counter()
        doc = render.document(parts)
        t4 = time.perf_counter()
        ref = render.rasterise_reference(doc, 512)
        t5 = time.perf_counter()
        png_zlib(ref, 1)
        t6 = time.perf_counter()
        for k, a, b in zip(names, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6), strict=True):
            t[k].append((b - a) * 1000)
    return {k: stats(v) for k, v in t.items()}


def _premultiplied(rgba: np.ndarray) -> np.ndarray:
    a = rgba.astype(np.int32)
    return np.concatenate([(a[..., :3] * a[..., 3:] + 127) // 255, a[..., 3:]], axis=-1)


def same_look(engine: ChibiEngine, n_random: int = 24, size: int = 256) -> dict[str, object]:
    """Before (the whole document through SVGDOM, as the engine drew before) and after (the engine's PNG,
    decoded) for the gallery specs, random specs, and transparent / circle variants; writes
    docs/contact_sheets/render_speed_diff.png: the before row, the after row, and |after - before| x 32."""
    try:
        from bench.make_sheets import gallery_specs
    except ImportError:  # run as a script: bench/ itself is on sys.path
        from make_sheets import gallery_specs  # type: ignore[no-redef]

    rng = random.Random(2024)
    cases = [(s, False, False) for s in gallery_specs()]
    cases += [(random_spec(rng), i % 3 == 1, i % 4 == 2) for i in range(n_random)]
    before, after, diffs = [], [], []
    worst, total, count, differing, over2, ring_worst = 0, 0.0, 0, 0, 0, 0
    for spec, transparent, circle in cases:
        r = spec.resolved()
        ref = render.rasterise_reference(
            render.document(render.layers(r, background=not transparent)), size, circle=circle
        )
        png = engine.render(r, size, transparent=transparent, circle=circle)
        got = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
        # premultiplied: a nearly transparent pixel's straight colour is only its rounding; and outside
        # the circle crop's 1 px edge (the reference clips every draw there, so its alpha builds up)
        d = np.abs(_premultiplied(got) - _premultiplied(ref))
        if circle:
            ring = composite._circle(size)
            edge = (ring > 0) & (ring < 255)
            ring_worst = max(ring_worst, int(d[edge].max()))
            d[edge] = 0
        worst = max(worst, int(d.max()))
        total += float(d.sum())
        count += d.size
        differing += int((d.max(axis=-1) > 0).sum())
        over2 += int((d.max(axis=-1) > 2).sum())
        before.append(ref)
        after.append(got)
        diffs.append(np.clip(d * 32, 0, 255).astype(np.uint8))
    cols = 12
    tile = 128

    def strip(imgs: list[np.ndarray], bg: tuple[int, int, int]) -> list[Image.Image]:
        out = []
        for a in imgs:
            im = Image.fromarray(a, "RGBA").resize((tile, tile), Image.Resampling.NEAREST)
            base = Image.new("RGB", (tile, tile), bg)
            base.paste(im, (0, 0), im)
            out.append(base)
        return out

    rows = []
    for start in range(0, len(cases), cols):
        rows.append(strip(before[start : start + cols], (255, 255, 255)))
        rows.append(strip(after[start : start + cols], (255, 255, 255)))
        rows.append(
            [
                Image.fromarray(np.ascontiguousarray(d[:, :, :3]), "RGB").resize((tile, tile))
                for d in diffs[start : start + cols]
            ]
        )
    sheet = Image.new("RGB", (cols * tile, len(rows) * tile), (0, 0, 0))
    for y, row in enumerate(rows):
        for x, im in enumerate(row):
            sheet.paste(im, (x * tile, y * tile))
    path = ROOT / "docs" / "contact_sheets" / "render_speed_diff.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return {
        "image": str(path.relative_to(ROOT)),
        "layout": "per block of 12: before (reference SVGDOM path), after (engine PNG decoded), |diff| x 32",
        "renders": len(cases),
        "size": size,
        "compared": "premultiplied RGBA; the circle crop's partly covered edge pixels apart",
        "max_abs_diff": worst,
        "mean_abs_diff": round(total / max(1, count), 6),
        "pixels_differing": differing,
        "pixels_differing_by_more_than_2": over2,
        "pixels_total": count // 4,
        "circle_edge_max_abs_diff": ring_worst,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="avatars per round and generator")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=int, default=3000, help="renders at each size before the timed rounds")
    ap.add_argument("--memory", type=int, default=10000, help="renders for the RSS check (0: skip)")
    ap.add_argument("--variety", type=int, default=10000, help="specs for the variety check (0: skip)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # the node child inherits it
    engine = ChibiEngine()
    rng = random.Random(1234)
    engine.render(random_spec(rng), 512)  # imports, the compiled recolour pass
    composite.PLANES.clear()
    render.clear_picture_cache()
    cold, _ = ours_round(engine, [random_spec(rng) for _ in range(args.n)], 512)
    print(f"cold caches, 512 px: {stats(cold)}")
    t_warm = time.perf_counter()
    for _ in range(args.warm):
        spec = random_spec(rng)
        engine.render(spec, 512)
        engine.render(random_spec(rng), 128)
    warm_s = time.perf_counter() - t_warm
    planes = composite.PLANES
    planes.hits = planes.misses = 0

    ours512: list[float] = []
    ours128: list[float] = []
    same128: list[float] = []
    sizes512: list[int] = []
    sizes128: list[int] = []
    dice: list[float] = []
    dice_svg: list[float] = []
    dice_bytes: list[int] = []
    dice_info: dict[str, object] = {}
    per_round: list[dict[str, object]] = []
    for r in range(args.rounds):
        order = ["ours", "dicebear"] if r % 2 == 0 else ["dicebear", "ours"]
        row: dict[str, object] = {"round": r + 1, "order": order}
        for who in order:
            if who == "ours":
                specs = [random_spec(rng) for _ in range(args.n)]
                t512, s512 = ours_round(engine, specs, 512)
                # Discord's avatar size, for the same specs just drawn at 512 (their layers are cached)...
                t_same, _ = ours_round(engine, specs, 128)
                # ...and for fresh specs
                t128, s128 = ours_round(engine, [random_spec(rng) for _ in range(args.n)], 128)
                ours512 += t512
                ours128 += t128
                same128 += t_same
                sizes512 += s512
                sizes128 += s128
                row["ours_512_median"] = round(statistics.median(t512), 3)
                row["ours_128_median"] = round(statistics.median(t128), 3)
            else:
                res = dicebear_round(args.n, f"round{r}")
                if "error" in res:
                    dice_info = res
                    row["dicebear"] = res["error"]
                    continue
                dice += res["png_ms"]  # type: ignore[arg-type]
                dice_svg += res["svg_ms"]  # type: ignore[arg-type]
                dice_bytes += res["bytes"]  # type: ignore[arg-type]
                dice_info = {"node": res["node"]}
                row["dicebear_512_median"] = round(statistics.median(res["png_ms"]), 3)  # type: ignore[arg-type]
        per_round.append(row)
        print(f"round {r + 1}: {row}")

    template_cache = {
        "warm_renders_per_size": args.warm,
        "warm_seconds": round(warm_s, 1),
        "bytes_mib": round(planes.bytes / 2**20, 1),
        "entries": len(planes._items),
        "during_timed_rounds": {"hits": planes.hits, "learnt": planes.misses},
    }
    stage_specs = [random_spec(rng) for _ in range(args.n)]
    breakdown = stages(engine, stage_specs)
    imgs = [engine.render_rgba(random_spec(rng), 512) for _ in range(min(60, args.n))]
    enc: dict[str, dict[str, float]] = {}
    for name, fn in encoders().items():
        ts, bs = [], []
        for a in imgs:
            t0 = time.perf_counter()
            data = fn(a)
            ts.append((time.perf_counter() - t0) * 1000)
            bs.append(len(data))
        enc[name] = {
            "median_ms": round(statistics.median(ts), 3),
            "median_kib": round(statistics.median(bs) / 1024, 1),
        }

    look = same_look(engine)
    print(f"same look: {look}")

    memory: dict[str, object] = {}
    if args.memory:
        mrng = random.Random(7)
        gc.collect()
        before = rss_mib()
        marks = []
        for i in range(args.memory):
            engine.render(random_spec(mrng), 512)
            if (i + 1) % max(1, args.memory // 5) == 0:
                marks.append(round(rss_mib(), 1))
        gc.collect()
        memory = {
            "renders": args.memory,
            "size": 512,
            "rss_mib_before": round(before, 1),
            "rss_mib_after": round(rss_mib(), 1),
            "rss_mib_every_fifth": marks,
            "note": "RSS after warm-up and the timed rounds; caches are bounded LRUs (layers 256 specs, "
            f"pictures {render.PICTURE_CACHE_SIZE} layers)",
        }

    variety: dict[str, object] = {}
    if args.variety:
        import imagehash

        vrng = random.Random(99)
        hashes = set()
        t0 = time.perf_counter()
        for _ in range(args.variety):
            rgba = engine.render_rgba(random_spec(vrng), 64)
            hashes.add(str(imagehash.phash(Image.fromarray(rgba).convert("RGB"), hash_size=16)))
        variety = {
            "specs": args.variety,
            "distinct_phash": len(hashes),
            "ratio": len(hashes) / max(1, args.variety),
            "hash": "imagehash.phash(hash_size=16) of a 64 px render",
            "seconds": round(time.perf_counter() - t0, 1),
        }

    ours_med = statistics.median(ours512)
    out: dict[str, object] = {
        "machine": (
            f"{platform.processor() or platform.machine()}, pinned to cpu {cpu}, python "
            f"{platform.python_version()}, skia-python {skia.__version__}, "
            f"load average at end {os.getloadavg()[0]:.2f}"
        ),
        "command": "(cd bench/dicebear && npm ci) && .venv/bin/python bench/bench_render.py "
        f"--n {args.n} --rounds {args.rounds} --warm {args.warm} --memory {args.memory} --variety {args.variety}",
        "method": (
            f"a cold round ({args.n} specs, caches emptied), {args.warm} warm-up renders per size, then "
            f"{args.rounds} alternating rounds of {args.n} fresh random specs each; ours: "
            "ChibiEngine().render(spec, size) end to end (spec -> PNG bytes with the parameters text chunk); "
            "DiceBear: createAvatar(adventurer, {seed}).toString() -> new Resvg(svg, fitTo width 512)"
            ".render().asPng(), timed per render inside node (after 10 warm-up renders per round)"
        ),
        "png_512_ms": stats(ours512),
        "png_512_cold_caches_ms": stats(cold),
        "template_cache": template_cache,
        "png_128_ms": stats(ours128),
        "png_128_after_512_same_spec_ms": stats(same128),
        "png_512_bytes_median": int(statistics.median(sizes512)),
        "png_128_bytes_median": int(statistics.median(sizes128)),
        "stages_512_ms": breakdown,
        "encoders_512": enc,
        "same_look": look,
        "rounds": per_round,
        "memory": memory,
    }
    if dice:
        out["dicebear_adventurer_512"] = {
            "versions": package_versions(),
            **dice_info,
            "png_ms": stats(dice),
            "svg_ms": stats(dice_svg),
            "png_bytes_median": int(statistics.median(dice_bytes)),
        }
        out["speedup_vs_dicebear_median"] = round(statistics.median(dice) / ours_med, 2)
    else:
        out["dicebear_adventurer_512"] = dice_info or {"error": "not run"}
    if variety:
        out["variety"] = variety

    print(f"ours 512 px PNG: {out['png_512_ms']} (cold caches: {out['png_512_cold_caches_ms']})")
    print(f"templates: {template_cache}")
    print(
        f"ours 128 px PNG: fresh {out['png_128_ms']}, same spec after 512 {out['png_128_after_512_same_spec_ms']}"
    )
    print(f"DiceBear adventurer 512 px PNG: {out['dicebear_adventurer_512']}")
    print(f"speed-up vs DiceBear (medians): {out.get('speedup_vs_dicebear_median')}")
    print("stages (512 px, ms):")
    for k, v in breakdown.items():
        print(f"  {k:<18} {v}")
    print("encoders (512 px):")
    for k, v in enc.items():
        print(f"  {k:<40} {v['median_ms']:>7.3f} ms {v['median_kib']:>7.1f} KiB")
    print(f"memory: {memory}")
    if variety:
        print(f"variety: {variety}")
    if args.no_save:
        return
    path = ROOT / "bench" / "results" / "render.json"
    if path.exists():  # a run that skips them keeps the last variety and memory figures
        old = json.loads(path.read_text())
        if not variety and "variety" in old:
            out["variety"] = old["variety"]
        if not memory and old.get("memory"):
            out["memory"] = old["memory"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
