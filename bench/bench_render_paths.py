"""Render paths not taken (issue 16): the measurements behind docs/renderer.md, "Where the time goes".

    .venv/bin/python -m bench.bench_render_paths [--specs 3000] [--draws 120]

On one pinned core, in one run:
- ``surface``: the layers of the same avatars drawn into a straight-alpha surface (what the engine does) and
  into a premultiplied one, alternating; and how far the pixels move.
- ``strokes``: the app's own stroked outlines drawn as strokes, and as fills of their outline computed once
  (what caching stroke geometry would save).
- ``templates``: per layer, how many distinct texts and how many distinct texts with every colour replaced
  by one token (colour-free "templates") over many random specs: what a cache of colour-free layer pixels
  would have to hold.
- ``slot_planes``: a layer's pixels as weight planes, one per colour it uses (each colour of the layer drawn
  as a basis colour, three at a time), recoloured by blitting each plane with its colour: how close that is
  to the real draw, and what the blits cost per pixel in skia (RGBA premultiplied image, A8 mask with a
  paint colour, RGBA image through a colour-matrix filter).

Prints the figures and writes bench/results/render_paths.json. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import skia

from bench.bench_render import random_spec
from generation.chibi import ChibiEngine, pathops, render
from generation.chibi.geometry import VIEW

ROOT = Path(__file__).resolve().parent.parent
COLOUR = re.compile(r"#[0-9a-fA-F]{6}\b")
BASIS = ("#ff0000", "#00ff00", "#0000ff")
# an absolute path of M/L/C/Q/Z only, and its stroke, as the art modules write them
STROKED = re.compile(r'<path d="([MLCQZ\d., -]+)"[^>]*stroke="#[0-9a-f]{6}"[^>]*stroke-width="([\d.]+)"')


def _surface(size: int, alpha: skia.AlphaType) -> tuple[np.ndarray, skia.Surface, skia.Canvas]:
    arr = np.zeros((size, size, 4), np.uint8)
    surface = skia.Surface(arr, skia.kRGBA_8888_ColorType, alpha)
    canvas = surface.getCanvas()
    canvas.scale(size / VIEW, size / VIEW)
    return arr, surface, canvas


def _draw(pictures: list[skia.Picture], alpha: skia.AlphaType, size: int = 512) -> np.ndarray:
    arr, surface, canvas = _surface(size, alpha)
    for pic in pictures:
        canvas.drawPicture(pic)
    del canvas, surface
    return arr


def surface(engine: ChibiEngine, rng: random.Random, n: int) -> dict[str, object]:
    avatars = [
        [render.layer_picture(p.svg) for p in engine.layers(random_spec(rng)) if p.svg] for _ in range(n)
    ]
    straight, premul, worst, means = [], [], 0, []
    for rep in range(3):
        for pics in avatars:
            t0 = time.perf_counter()
            a = _draw(pics, skia.kUnpremul_AlphaType)
            t1 = time.perf_counter()
            b = _draw(pics, skia.kPremul_AlphaType)
            t2 = time.perf_counter()
            straight.append((t1 - t0) * 1000)
            premul.append((t2 - t1) * 1000)
            if rep == 0:
                d = np.abs(a.astype(np.int16) - b.astype(np.int16))
                worst = max(worst, int(d.max()))
                means.append(float(d.mean()))
    return {
        "straight_alpha_ms": round(statistics.median(straight), 3),
        "premultiplied_ms": round(statistics.median(premul), 3),
        "max_abs_diff": worst,
        "mean_abs_diff": round(float(np.mean(means)), 4),
    }


def strokes(engine: ChibiEngine, rng: random.Random, limit: int = 400) -> dict[str, object]:
    found: list[tuple[str, float]] = []
    while len(found) < limit:
        for p in engine.layers(random_spec(rng)):
            found += [(m.group(1), float(m.group(2))) for m in STROKED.finditer(p.svg)]
    stroke_paints, outlines = [], []
    fill = skia.Paint(AntiAlias=True, Color=0xFF884422)
    parsed = [(path, width) for d, width in found[:limit] if (path := pathops.parse(d)) is not None]
    paths = [path for path, _ in parsed]
    for path, width in parsed:
        paint = skia.Paint(
            AntiAlias=True, Style=skia.Paint.kStroke_Style, StrokeWidth=width, Color=0xFF884422
        )
        paint.setStrokeCap(skia.Paint.kRound_Cap)
        paint.setStrokeJoin(skia.Paint.kRound_Join)
        out = skia.Path()
        paint.getFillPath(path, out, None, 1.0)
        stroke_paints.append(paint)
        outlines.append(out)
    _arr, surf, canvas = _surface(512, skia.kUnpremul_AlphaType)
    as_stroke, as_fill = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        for path, paint in zip(paths, stroke_paints, strict=True):
            canvas.drawPath(path, paint)
        t1 = time.perf_counter()
        for out in outlines:
            canvas.drawPath(out, fill)
        t2 = time.perf_counter()
        as_stroke.append((t1 - t0) * 1e6 / len(paths))
        as_fill.append((t2 - t1) * 1e6 / len(paths))
    del canvas, surf
    return {
        "paths": len(paths),
        "stroke_us_per_path": round(statistics.median(as_stroke), 2),
        "fill_of_cached_outline_us_per_path": round(statistics.median(as_fill), 2),
    }


def templates(engine: ChibiEngine, rng: random.Random, n: int) -> dict[str, dict[str, int]]:
    texts: dict[str, set[str]] = defaultdict(set)
    tmpl: dict[str, set[str]] = defaultdict(set)
    for _ in range(n):
        for p in engine.layers(random_spec(rng)):
            if p.svg:
                key = "items" if p.name.startswith("item:") else p.name
                texts[key].add(p.svg)
                tmpl[key].add(COLOUR.sub("#C", p.svg))
    return {k: {"texts": len(texts[k]), "templates": len(tmpl[k])} for k in texts}


def _planes(svg: str, size: int) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """The layer's colours, its alpha, and one premultiplied weight plane per colour."""
    colours = list(dict.fromkeys(COLOUR.findall(svg)))
    alpha: np.ndarray | None = None
    planes: list[np.ndarray] = []
    for start in range(0, max(1, len(colours)), 3):
        group = colours[start : start + 3]
        basis = {c: BASIS[group.index(c)] if c in group else "#000000" for c in colours}
        text = COLOUR.sub(lambda m, basis=basis: basis[m.group(0)], svg)
        arr, surf, canvas = _surface(size, skia.kPremul_AlphaType)
        canvas.drawPicture(render.layer_picture(text))
        del canvas, surf
        alpha = arr[:, :, 3].copy() if alpha is None else alpha
        planes += [arr[:, :, i].copy() for i in range(len(group))]
    assert alpha is not None
    return colours, alpha, planes


def _a8(plane: np.ndarray) -> tuple[skia.Image, float, float] | None:
    ys, xs = np.nonzero(plane.any(1))[0], np.nonzero(plane.any(0))[0]
    if not len(ys):
        return None
    sub = np.ascontiguousarray(plane[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1])
    return skia.Image.fromarray(sub, colorType=skia.kAlpha_8_ColorType), float(xs[0]), float(ys[0])


def _blit(canvas: skia.Canvas, image: skia.Image, x: float, y: float, paint: skia.Paint | None) -> None:
    canvas.drawImage(image, x, y, skia.SamplingOptions(), paint)


def slot_planes(engine: ChibiEngine, rng: random.Random, n: int) -> dict[str, object]:
    """Recolour every layer (background excepted) from its weight planes: dst-out by its alpha, then each
    plane added (kPlus) in its colour. Compared with the real draw of the same layers on the same surface."""
    worst, means, pixels = 0, [], []
    for _ in range(n):
        parts = [p for p in engine.layers(random_spec(rng)) if p.svg]
        truth, surf_t, canvas_t = _surface(512, skia.kPremul_AlphaType)
        got, surf_g, canvas_g = _surface(512, skia.kPremul_AlphaType)
        canvas_g.resetMatrix()
        area = 0
        for p in parts:
            canvas_t.drawPicture(render.layer_picture(p.svg))
            if p.name == "background":
                canvas_g.save()
                canvas_g.scale(512 / VIEW, 512 / VIEW)
                canvas_g.drawPicture(render.layer_picture(p.svg))
                canvas_g.restore()
                continue
            colours, alpha, planes = _planes(p.svg, 512)
            a = _a8(alpha)
            if a is None:
                continue
            out = skia.Paint()
            out.setBlendMode(skia.BlendMode.kDstOut)
            _blit(canvas_g, *a, out)
            for plane, c in zip(planes, colours, strict=True):
                img = _a8(plane)
                if img is None:
                    continue
                area += img[0].width() * img[0].height()
                paint = skia.Paint(Color=skia.Color(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)))
                paint.setBlendMode(skia.BlendMode.kPlus)
                _blit(canvas_g, *img, paint)
        del canvas_t, surf_t, canvas_g, surf_g
        d = np.abs(got.astype(np.int16) - truth.astype(np.int16))
        worst = max(worst, int(d.max()))
        means.append(float(d.mean()))
        pixels.append(area)
    return {
        "avatars": n,
        "max_abs_diff_vs_draw": worst,
        "mean_abs_diff_vs_draw": round(float(np.mean(means)), 4),
        "plane_pixels_per_avatar_median": int(statistics.median(pixels)),
        "blit_ns_per_pixel": _blit_costs(),
    }


def _blit_costs() -> dict[str, float]:
    rng = np.random.default_rng(1)
    a8 = rng.integers(0, 256, (300, 300), dtype=np.uint8)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = a8
    img_a8 = skia.Image.fromarray(a8, colorType=skia.kAlpha_8_ColorType)
    img_rgba = skia.Image.fromarray(
        rgba, colorType=skia.kRGBA_8888_ColorType, alphaType=skia.kPremul_AlphaType
    )
    coloured = skia.Paint(Color=0xFF3366AA)
    plus = skia.Paint(Color=0xFF3366AA)
    plus.setBlendMode(skia.BlendMode.kPlus)
    matrix = skia.Paint()
    matrix.setColorFilter(skia.ColorFilters.Matrix([0.2, 0.3, 0.1, 0, 0] * 3 + [0, 0, 0, 1, 0]))
    cases = {
        "rgba_premultiplied_image": (img_rgba, None),
        "a8_mask_with_paint_colour": (img_a8, coloured),
        "a8_mask_plus": (img_a8, plus),
        "rgba_image_colour_matrix": (img_rgba, matrix),
    }
    out = {}
    for name, (img, paint) in cases.items():
        _arr, surf, canvas = _surface(512, skia.kPremul_AlphaType)
        canvas.resetMatrix()
        t0 = time.perf_counter()
        for _ in range(50):
            _blit(canvas, img, 10.0, 10.0, paint)
        out[name] = round((time.perf_counter() - t0) / 50 / (300 * 300) * 1e9, 2)
        del canvas, surf
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", type=int, default=3000, help="random specs for the template count")
    ap.add_argument("--draws", type=int, default=120, help="avatars for the surface comparison")
    ap.add_argument("--cpu", type=int, default=None)
    args = ap.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    engine = ChibiEngine()
    out = {
        "command": f".venv/bin/python -m bench.bench_render_paths --specs {args.specs} --draws {args.draws}",
        "surface": surface(engine, random.Random(8), args.draws),
        "strokes": strokes(engine, random.Random(9)),
        "templates": templates(engine, random.Random(11), args.specs),
        "slot_planes": slot_planes(engine, random.Random(3), 20),
    }
    print(json.dumps(out, indent=2))
    path = ROOT / "bench" / "results" / "render_paths.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
