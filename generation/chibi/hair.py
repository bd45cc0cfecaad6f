"""Hair: a back mass (behind the body and head) and a front mass (cap, fringe, side locks).

The front mass is one silhouette per style, clipped by a *face window*: the face contour below the
fringe line. The fringe kind only decides the window's top edge, so every fringe works on every style.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from generation.chibi import color, pathops
from generation.chibi.context import Ctx
from generation.chibi.geometry import (
    CRANIUM_CY,
    CRANIUM_RY,
    CX,
    LINE,
    OPEN_HATS,
    Point,
    face_contour,
    face_path,
    smooth,
)
from generation.chibi.svgkit import circle, clip, defs, ellipse, f, group, path

# style: (volume beyond the skull, side lock bottom y, lock inset over the cheeks)
FRONT: dict[str, tuple[float, float, float]] = {
    "short": (16, 282, 10),
    "bob": (20, 336, 16),
    "hime": (16, 372, 20),
    "long_straight": (16, 390, 16),
    "long_wavy": (22, 384, 16),
    "twin_tails": (16, 300, 12),
    "ponytail": (14, 292, 10),
    "bun": (12, 284, 10),
    "spiky": (22, 292, 10),
    "side_swept": (18, 300, 12),
    "curly": (30, 330, 10),
    "afro": (0, 0, 0),
    "braids": (10, 262, 6),
    "buzz": (4, 262, 0),
    "bald": (0, 0, 0),
    "messy": (24, 304, 12),
}

FIXED_FRONT = {"buzz": "open", "bald": "open", "afro": "open"}

# Grey in the hair (HairSpec.grey): the grey itself and the lighter strands drawn over it.
GREY = "#c8cbd2"
GREY_LIGHT = "#eef0f4"
GREY_DARK = "#a3a8b3"


def _p(pts: list[Point]) -> str:
    return "M" + "L".join(f"{f(x)},{f(y)}" for x, y in pts)


# --- the face window --------------------------------------------------------------------------------


@lru_cache(maxsize=8192)  # pure; the same heights recur for every spec with the same face shape
def _head_x(y: float, shape: str, crx: float) -> float:
    if y <= CRANIUM_CY:
        t = (CRANIUM_CY - y) / CRANIUM_RY
        return crx * math.sqrt(max(0.0, 1 - t * t))
    best = 0.0
    pts = face_contour(shape)
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if (y0 - y) * (y1 - y) <= 0 and y0 != y1:
            best = max(best, x0 + (x1 - x0) * (y - y0) / (y1 - y0) - CX)
    return best


@dataclass(frozen=True)
class _UnderFace:
    """True for points at least ``margin`` inside the head outline and lower than ``below``: what the face
    (opaque skin, drawn above back hair; the window in the front hair) always hides there. A value (equal
    and hashable), so the texture it filters can be cached."""

    shape: str
    crx: float
    chin: float
    margin: float
    below: float

    def __call__(self, x: float, y: float) -> bool:
        if y < self.below or y > self.chin - self.margin:
            return False
        return abs(x - CX) < _head_x(y, self.shape, self.crx) - self.margin


def _under_face(c: Ctx, margin: float, below: float) -> _UnderFace:
    return _UnderFace(c.geo.face_shape, c.geo.crx, c.geo.chin_y, margin, below)


def fringe_edge(c: Ctx) -> list[Point]:
    """The fringe's bottom edge, left to right, as a polyline with strand tips (temple to temple)."""
    style = c.geo.hair_style
    front = FIXED_FRONT.get(style) or c.spec.hair.front or "bangs"
    crx = c.geo.crx
    pts: list[Point] = []
    if style in HAIRLINES or (style == "curly" and front == "open"):
        return _hairline(c, "afro" if style == "curly" else style)
    if front == "open":
        top = 150.0 if style not in ("buzz", "braids") else 144.0
        for i in range(13):
            t = i / 12
            x = CX + (t - 0.5) * 2 * (crx - 10)
            y = 222 - (222 - top) * math.sin(math.pi * t) ** 0.7
            pts.append((x, y))
        return pts
    if front == "bangs":
        n = 7
        for i in range(n):
            x0 = CX - crx + 8 + i * (2 * crx - 16) / n
            x1 = x0 + (2 * crx - 16) / n
            notch = 200 - 14 * math.sin(math.pi * (i + 0.5) / n)
            tip_y = 224 + (6 if i in (0, n - 1) else 0) - (4 if i % 2 else 0)
            pts += [(x0, notch + (14 if i == 0 else 0)), (x0 + (x1 - x0) * 0.55, tip_y)]
        pts.append((CX + crx - 8, 214))
        return pts
    if front == "swept":
        n = 6
        for i in range(n):
            t = i / n
            x0 = CX - crx + 10 + t * (2 * crx - 20)
            w = (2 * crx - 20) / n
            base = 150 + 80 * t
            pts += [(x0, base - 6), (x0 + w * 0.7, base + 36 - 8 * t)]
        pts.append((CX + crx - 10, 236))
        return pts
    if front == "parted":
        pts = [(CX - crx + 8, 236), (CX - crx + 30, 196), (CX - 70, 160), (CX - 22, 140), (CX - 2, 132)]
        pts += [(CX + 2, 132), (CX + 22, 140), (CX + 70, 160), (CX + crx - 30, 196), (CX + crx - 8, 236)]
        return pts
    # wispy: thin see-through strands
    n = 6
    for i in range(n):
        x0 = CX - crx + 20 + i * (2 * crx - 40) / n
        w = (2 * crx - 40) / n
        pts += [(x0, 176), (x0 + w * 0.3, 218), (x0 + w * 0.45, 180), (x0 + w * 0.75, 206 + (i % 2) * 10)]
    pts.append((CX + crx - 20, 190))
    return pts


# A natural hairline (left sideburn -> temple recess -> forehead -> right), as (dx from the head side or from
# the centre, y): ("side", dx, y) points are measured in from the cranium edge, ("mid", dx, y) from CX.
HAIRLINES: dict[str, tuple[tuple[str, float, float], ...]] = {
    # buzz: sideburns down to the ear top, a small recess at the temples, a gently curved forehead line
    "buzz": (
        ("side", 5, 266), ("side", 8, 236), ("side", 16, 208), ("side", 34, 190), ("mid", -70, 174),
        ("mid", -40, 165), ("mid", 0, 162),
    ),
    # afro and coils: lower and rounder, the volume starts right at the forehead
    "afro": (
        ("side", 3, 262), ("side", 8, 230), ("side", 20, 200), ("side", 40, 182), ("mid", -64, 170),
        ("mid", -32, 164), ("mid", 0, 162),
    ),
}  # fmt: skip


def _hairline(c: Ctx, style: str) -> list[Point]:
    crx = c.geo.crx
    half = [(CX - crx + dx if where == "side" else CX + dx, y) for where, dx, y in HAIRLINES[style]]
    return half + [(2 * CX - x, y) for x, y in reversed(half[:-1])]


def _scallop_path(pts: list[Point], amp: float, step: float = 15.0) -> str:
    """A coily edge through the polyline: small bumps that bulge toward the face (downward)."""
    dense: list[Point] = [pts[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        n = max(1, round(math.hypot(x1 - x0, y1 - y0) / step))
        dense += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
    d = [f"{f(dense[0][0])},{f(dense[0][1])}"]
    for (x0, y0), (x1, y1) in itertools.pairwise(dense):
        dx, dy = x1 - x0, y1 - y0
        ln = math.hypot(dx, dy) or 1.0
        mx, my = (x0 + x1) / 2 - dy / ln * amp, (y0 + y1) / 2 + dx / ln * amp
        d.append(f"Q{f(mx)},{f(my)} {f(x1)},{f(y1)}")
    return "".join(d)


def _edge_path(pts: list[Point], pointy: bool) -> str:
    """Strand-like curve through the fringe polyline: concave strands between tips."""
    if not pointy:
        return smooth(pts)[1:]
    d = [f"{f(pts[0][0])},{f(pts[0][1])}"]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y1 > y0:  # going down to a tip: bulge outward
            cxp, cyp = x0 + (x1 - x0) * 0.15, y0 + (y1 - y0) * 0.85
        else:
            cxp, cyp = x0 + (x1 - x0) * 0.7, y0 + (y1 - y0) * 0.2
        d.append(f"Q{f(cxp)},{f(cyp)} {f(x1)},{f(y1)}")
    return "".join(d)


def face_window(c: Ctx, lock_y: float, inset: float) -> tuple[str, str]:
    """(window path, fringe edge path) for the front hair's clip."""
    style = c.geo.hair_style
    front = FIXED_FRONT.get(style) or c.spec.hair.front or "bangs"
    pts = fringe_edge(c)
    shape = c.geo.face_shape
    crx = c.geo.crx
    if style == "afro" or (style == "curly" and front == "open"):
        edge = _scallop_path(pts, 6.0)
    else:
        edge = _edge_path(pts, pointy=front not in ("open", "parted"))
    # right side: from the last fringe point down the face, inset over the cheeks until the lock ends
    right: list[Point] = []
    y = pts[-1][1]
    chin = c.geo.chin_y + 10
    while y < chin:
        ins = inset if y < lock_y - 10 else inset * max(0.0, 1 - (y - lock_y + 10) / 30)
        right.append((CX + _head_x(y, shape, crx) - ins + 2, y))
        y += 8
    right.append((CX, chin + 10))
    left = [(2 * CX - x, yy) for x, yy in reversed(right[:-1])]
    ring = right + left
    window = f"M{edge}" + "".join(f"L{f(x)},{f(yy)}" for x, yy in ring) + "Z"
    return window, f"M{edge}"


# --- silhouettes ------------------------------------------------------------------------------------


def _cap(c: Ctx, vol: float, lock_y: float, bumps: str = "") -> str:
    """Front hair silhouette: a dome over the skull with side locks down to lock_y."""
    rx = c.geo.crx + vol
    top = max(c.geo.hair_top, 84.0) if c.geo.hair_style == "bun" else c.geo.hair_top
    cy = CRANIUM_CY - 4
    hatted = c.geo.hat is not None and top >= 90
    if bumps and not hatted:
        return _bumpy_dome(c, rx, top, cy, lock_y, bumps)
    k = 0.56
    d = (
        f"M{f(CX - rx + 16)},{f(lock_y + 10)}"
        f"Q{f(CX - rx - 2)},{f(lock_y - 30)} {f(CX - rx)},{f(cy)}"
        f"C{f(CX - rx)},{f(cy - (cy - top) * k)} {f(CX - rx * k)},{f(top)} {f(CX)},{f(top)}"
        f"C{f(CX + rx * k)},{f(top)} {f(CX + rx)},{f(cy - (cy - top) * k)} {f(CX + rx)},{f(cy)}"
        f"Q{f(CX + rx + 2)},{f(lock_y - 30)} {f(CX + rx - 16)},{f(lock_y + 10)}"
        f"L{f(CX + c.geo.crx - 40)},{f(lock_y - 20)}L{f(CX - c.geo.crx + 40)},{f(lock_y - 20)}Z"
    )
    return d


def _bumpy_dome(c: Ctx, rx: float, top: float, cy: float, lock_y: float, kind: str) -> str:
    """A dome whose outline is made of bumps (curly), spikes (spiky) or tufts (messy)."""
    ry = cy - top
    pts: list[Point] = []
    n = {"curly": 15, "spiky": 9, "messy": 11}[kind]
    # from the left lock bottom, up over the top, down to the right lock bottom
    start = (CX - rx + 12, lock_y + 8)
    d = [f"M{f(start[0])},{f(start[1])}", f"Q{f(CX - rx - 4)},{f(lock_y - 20)} {f(CX - rx)},{f(cy)}"]
    for i in range(n + 1):
        a = math.pi + math.pi * i / n
        pts.append((CX + rx * math.cos(a), cy + ry * math.sin(a)))
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        nx, ny = mx - CX, my - cy
        nl = math.hypot(nx, ny) or 1
        if kind == "curly":
            out = 16
            d.append(f"Q{f(mx + nx / nl * out)},{f(my + ny / nl * out)} {f(x1)},{f(y1)}")
        elif kind == "spiky":
            out = 46 if 0 < i < n - 1 else 24
            tx, ty = mx + nx / nl * out + (ny / nl) * 14, my + ny / nl * out - (nx / nl) * 14
            d.append(f"Q{f(x0 + (tx - x0) * 0.4)},{f(y0 + (ty - y0) * 0.6)} {f(tx)},{f(ty)}")
            d.append(f"Q{f(x1 + (tx - x1) * 0.2)},{f(y1 + (ty - y1) * 0.5)} {f(x1)},{f(y1)}")
        else:
            out = 22 if i % 3 == 1 else 12
            tx, ty = mx + nx / nl * out + (ny / nl) * 10 * (1 if i % 2 else -1), my + ny / nl * out
            d.append(f"Q{f(x0 + (tx - x0) * 0.5)},{f(y0 + (ty - y0) * 0.8)} {f(tx)},{f(ty)}")
            d.append(f"Q{f(x1 + (tx - x1) * 0.3)},{f(y1 + (ty - y1) * 0.4)} {f(x1)},{f(y1)}")
    if kind == "curly":
        # bumpy locks down the sides
        d.append(f"Q{f(CX + rx + 16)},{f(cy + 30)} {f(CX + rx)},{f(cy + 50)}")
        y = cy + 50
        while y < lock_y:
            d.append(f"Q{f(CX + rx + 16)},{f(y + 18)} {f(CX + rx - 4)},{f(y + 34)}")
            y += 34
    else:
        d.append(f"Q{f(CX + rx + 4)},{f(lock_y - 20)} {f(CX + rx - 12)},{f(lock_y + 8)}")
    d.append(f"L{f(CX + c.geo.crx - 40)},{f(lock_y - 20)}L{f(CX - c.geo.crx + 40)},{f(lock_y - 20)}Z")
    if kind == "curly":
        # mirror the right side's bumps on the left by building it symmetric: simple approach, redo left
        pass
    return "".join(d)


def _afro_path(c: Ctx, scale: float = 1.0) -> str:
    cy = 196.0
    r = 196.0 * scale
    ry = 186.0 * scale
    top = c.geo.hair_top
    n = 26
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n - math.pi / 2
        pts.append(
            (
                CX + r * math.cos(a),
                cy + (cy - top) / 174 * ry * math.sin(a) * (1 if math.sin(a) < 0 else 0.95),
            )
        )
    d = [f"M{f(pts[0][0])},{f(pts[0][1])}"]
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        nx, ny = mx - CX, my - cy
        nl = math.hypot(nx, ny) or 1
        out = 14
        d.append(f"Q{f(mx + nx / nl * out)},{f(my + ny / nl * out)} {f(x1)},{f(y1)}")
    return "".join(d) + "Z"


def _coils(
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    step: float,
    r: float,
    stroke: str,
    width: float,
    phase: int,
    hidden: _UnderFace | None = None,
) -> str:
    """A deterministic field of small open coils (textured curly/afro hair). ``hidden(x, y)`` says where a
    coil could never show (under the face, outside the clip): those are not drawn at all, which saves the
    rasteriser the strokes (coil fields are the most expensive thing in a picture)."""
    d = _coils_d(x0, y0, x1, y1, step, r, phase, hidden)
    return path(d, fill="none", stroke=stroke, stroke_width=width, stroke_linecap="round")


@lru_cache(maxsize=256)
def _coils_d(
    x0: float, y0: float, x1: float, y1: float, step: float, r: float, phase: int, hidden: _UnderFace | None
) -> str:
    """The coils' path: geometry only, so every colour of the same head shares it."""
    out = []
    row = 0
    y = y0
    while y < y1:
        x = x0 + (step / 2 if row % 2 else 0)
        col = 0
        while x < x1:
            k = (row * 7 + col * 3 + phase) % 5
            if hidden is not None and hidden(x, y):
                x += step
                col += 1
                continue
            a0 = k * 1.2
            sx, sy = x + r * math.cos(a0), y + r * math.sin(a0)
            ex, ey = x + r * math.cos(a0 + 4.4), y + r * math.sin(a0 + 4.4)
            out.append(f"M{f(sx)},{f(sy)}A{f(r)},{f(r)} 0 1,1 {f(ex)},{f(ey)}")
            x += step
            col += 1
        y += step * 0.82
        row += 1
    return "".join(out)


# --- back hair --------------------------------------------------------------------------------------


def _braid(
    x: float, y0: float, y1: float, w: float, fill: str, line: str, shade_c: str, sway: float = 0.0
) -> str:
    """A box braid: a chain of plump slanted segments."""
    segments, creases, tip = _braid_d(x, y0, y1, w, sway)
    out = []
    for d, crease in zip(segments, creases, strict=True):
        out.append(path(d, fill=fill, stroke=line, stroke_width=2.2, stroke_linejoin="round"))
        out.append(path(crease, fill="none", stroke=shade_c, stroke_width=1.8))
    out.append(path(tip, fill=fill, stroke=line, stroke_width=2))
    return "".join(out)


@lru_cache(maxsize=512)
def _braid_d(
    x: float, y0: float, y1: float, w: float, sway: float
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """A braid's paths (segments, their creases, the tip): geometry only, shared by every colour."""
    segments, creases = [], []
    seg = w * 1.1
    y = y0
    i = 0
    while y < y1:
        xx = x + math.sin(i * 0.35) * sway
        segments.append(
            f"M{f(xx - w / 2)},{f(y)}Q{f(xx - w / 2 - 2)},{f(y + seg * 0.6)} {f(xx)},{f(y + seg)}"
            f"Q{f(xx + w / 2 + 2)},{f(y + seg * 0.6)} {f(xx + w / 2)},{f(y)}Q{f(xx)},{f(y + seg * 0.35)} {f(xx - w / 2)},{f(y)}Z"
        )
        creases.append(
            f"M{f(xx - w * 0.25)},{f(y + seg * 0.3)}Q{f(xx)},{f(y + seg * 0.7)} {f(xx + w * 0.1)},{f(y + seg * 0.8)}"
        )
        y += seg * 0.72
        i += 1
    tip = f"M{f(x - w * 0.3)},{f(y + 2)}L{f(x)},{f(y + seg * 0.8)}L{f(x + w * 0.3)},{f(y + 2)}Z"
    return tuple(segments), tuple(creases), tip


def hair_back(c: Ctx) -> str:
    style = c.geo.hair_style
    if c.geo.hijab or style in ("bald", "buzz"):
        return ""
    t = c.hair
    back = t.shade
    hatted = c.geo.hat is not None
    st = {"fill": back, "stroke": t.line, "stroke_width": LINE, "stroke_linejoin": "round"}
    out: list[str] = []
    rx = c.geo.crx + 18
    top = c.geo.hair_top + 6
    if style in ("short", "side_swept", "spiky", "messy", "twin_tails", "ponytail", "bun", "braids"):
        bottom = 318.0
        out.append(
            path(
                f"M{f(CX - rx)},{f(CRANIUM_CY)}C{f(CX - rx)},{f(top - 10)} {f(CX + rx)},{f(top - 10)} {f(CX + rx)},{f(CRANIUM_CY)}"
                f"Q{f(CX + rx - 6)},{f(bottom)} {f(CX + 60)},{f(bottom + 10)}L{f(CX - 60)},{f(bottom + 10)}"
                f"Q{f(CX - rx + 6)},{f(bottom)} {f(CX - rx)},{f(CRANIUM_CY)}Z",
                **st,
            )
        )
    if style == "spiky" and not hatted:
        spikes = []
        for i in range(7):
            a = math.pi * (1.08 + 0.84 * i / 6)
            bx, by = CX + (rx - 10) * math.cos(a), CRANIUM_CY - 10 + (CRANIUM_CY - top) * math.sin(a)
            tx, ty = (
                CX + (rx + 40) * math.cos(a - 0.08),
                CRANIUM_CY - 10 + (CRANIUM_CY - top + 40) * math.sin(a - 0.08),
            )
            spikes.append(
                path(f"M{f(bx - 20)},{f(by + 10)}L{f(tx)},{f(ty)}L{f(bx + 20)},{f(by + 10)}Z", **st)
            )
        out.extend(spikes)
    if style == "bob":
        b = 376.0
        w = rx + 10
        out.append(
            path(
                f"M{f(CX - w)},{f(CRANIUM_CY)}C{f(CX - w)},{f(top - 14)} {f(CX + w)},{f(top - 14)} {f(CX + w)},{f(CRANIUM_CY)}"
                f"C{f(CX + w + 4)},{f(b - 60)} {f(CX + w)},{f(b - 10)} {f(CX + w - 24)},{f(b)}"
                f"Q{f(CX + 60)},{f(b + 8)} {f(CX)},{f(b)}Q{f(CX - 60)},{f(b + 8)} {f(CX - w + 24)},{f(b)}"
                f"C{f(CX - w)},{f(b - 10)} {f(CX - w - 4)},{f(b - 60)} {f(CX - w)},{f(CRANIUM_CY)}Z",
                **st,
            )
        )
    if style in ("hime", "long_straight", "long_wavy"):
        b = 500.0
        w = rx + (14 if style != "long_wavy" else 26)
        if style == "long_wavy":
            side_r: list[Point] = []
            for i in range(9):
                yy = CRANIUM_CY + i * (b - CRANIUM_CY) / 8
                side_r.append((CX + w + 6 + 10 * math.sin(i * 1.4), yy))
            bottom_pts: list[Point] = [
                (CX + w - 20, b + 4),
                (CX + 70, b - 6),
                (CX, b + 2),
                (CX - 70, b - 6),
                (CX - w + 20, b + 4),
            ]
            side_l = [(2 * CX - x, y) for x, y in reversed(side_r)]
            d = (
                f"M{f(CX - w)},{f(CRANIUM_CY)}C{f(CX - w)},{f(top - 14)} {f(CX + w)},{f(top - 14)} {f(CX + w)},{f(CRANIUM_CY)}"
                + "L"
                + smooth(side_r + bottom_pts + side_l)[1:]
                + "Z"
            )
            out.append(path(d, **st))
        else:
            flare = 10 if style == "long_straight" else 0
            tips = ""
            if style == "long_straight":
                n = 6
                for i in range(n):
                    x0 = CX + w + flare - i * 2 * (w + flare) / n
                    x1 = x0 - 2 * (w + flare) / n
                    tips += f"L{f((x0 + x1) / 2)},{f(b + 8)}L{f(x1)},{f(b - 8)}"
            else:
                tips = f"L{f(CX - w - flare)},{f(b)}"
            out.append(
                path(
                    f"M{f(CX - w)},{f(CRANIUM_CY)}C{f(CX - w)},{f(top - 14)} {f(CX + w)},{f(top - 14)} {f(CX + w)},{f(CRANIUM_CY)}"
                    f"L{f(CX + w + flare)},{f(b - 8)}{tips}Z",
                    **st,
                )
            )
    if style == "twin_tails":
        for s in (-1, 1):
            bx, by = CX + s * 140, 168.0 if not hatted else 200.0
            d = (
                f"M{f(bx)},{f(by - 20)}C{f(bx + s * 90)},{f(by - 30)} {f(bx + s * 110)},{f(by + 120)} {f(bx + s * 70)},{f(by + 230)}"
                f"Q{f(bx + s * 60)},{f(by + 280)} {f(bx + s * 36)},{f(by + 300)}"
                f"Q{f(bx + s * 48)},{f(by + 250)} {f(bx + s * 30)},{f(by + 200)}"
                f"C{f(bx + s * 10)},{f(by + 120)} {f(bx + s * 10)},{f(by + 40)} {f(bx - s * 4)},{f(by + 20)}Z"
            )
            out.append(path(d, **st))
            out.append(
                path(
                    f"M{f(bx + s * 30)},{f(by + 20)}C{f(bx + s * 80)},{f(by + 80)} {f(bx + s * 70)},{f(by + 170)} {f(bx + s * 52)},{f(by + 240)}",
                    fill="none",
                    stroke=t.deep,
                    stroke_width=3,
                    stroke_linecap="round",
                )
            )
    if style == "ponytail":
        bx, by = CX + 100, (120.0 if not hatted else 160.0)
        d = (
            f"M{f(bx - 10)},{f(by)}C{f(bx + 90)},{f(by - 40)} {f(bx + 150)},{f(by + 90)} {f(bx + 110)},{f(by + 220)}"
            f"Q{f(bx + 96)},{f(by + 270)} {f(bx + 70)},{f(by + 300)}Q{f(bx + 84)},{f(by + 240)} {f(bx + 60)},{f(by + 180)}"
            f"C{f(bx + 40)},{f(by + 120)} {f(bx + 30)},{f(by + 60)} {f(bx - 10)},{f(by + 40)}Z"
        )
        out.append(path(d, **st))
        out.append(
            path(
                f"M{f(bx + 30)},{f(by + 10)}C{f(bx + 100)},{f(by + 40)} {f(bx + 110)},{f(by + 140)} {f(bx + 86)},{f(by + 240)}",
                fill="none",
                stroke=t.deep,
                stroke_width=3,
                stroke_linecap="round",
            )
        )
    if style == "bun" and not (hatted and c.geo.hat not in OPEN_HATS):
        by = c.geo.hair_top + 44
        out.append(ellipse(CX, by, 50, 44, fill=t.base, stroke=t.line, stroke_width=LINE))
        out.append(
            path(
                f"M{f(CX - 30)},{f(by - 16)}Q{f(CX)},{f(by - 40)} {f(CX + 30)},{f(by - 16)}M{f(CX - 36)},{f(by + 4)}Q{f(CX)},{f(by - 22)} {f(CX + 36)},{f(by + 2)}",
                fill="none",
                stroke=t.shade,
                stroke_width=3.5,
                stroke_linecap="round",
            )
        )
        out.append(ellipse(CX - 18, by - 22, 12, 6, fill=c.hair_light, opacity="0.7"))
    if style == "curly":
        out.append(path(_curly_back(c), **st))
        out.append(defs(clip("hb-curly", path(_curly_back(c)))))
        out.append(
            group(
                [_coils(CX - 220, 120, CX + 220, 400, 30, 9, t.deep, 3.2, 1, _under_face(c, 14, 0))],
                clip_path="url(#hb-curly)",
            )
        )
    if style == "afro":
        d = _afro_path(c)
        out.append(path(d, **st))
        out.append(defs(clip("hb-afro", path(d))))
        out.append(
            group(
                [_coils(CX - 230, 0, CX + 230, 420, 24, 7.5, t.deep, 3.0, 0, _under_face(c, 12, 0))],
                clip_path="url(#hb-afro)",
            )
        )
    if style == "braids":
        for s in (-1, 1):
            for k in range(5):
                x = CX + s * (118 + k * 14)
                out.append(_braid(x, 250 + k * 6, 470 - k * 12, 18, t.shade, t.line, t.deep))
    if c.spec.hair.grey == "salt_pepper" and style in ("bob", "hime", "long_straight", "long_wavy") and out:
        # grey strands down the long back mass too (its outline is the first shape drawn for these styles)
        m = re.search(r' d="([^"]+)"', out[0])
        if m:
            out.append(defs(clip("hb-grey", path(m.group(1)))))
            out.append(
                group(
                    _grey_strands(c, style, _under_face(c, 10, 0), 236, 500, down=True),
                    clip_path="url(#hb-grey)",
                )
            )
    return group(out)


def _curly_back(c: Ctx) -> str:
    rx = c.geo.crx + 40
    top = c.geo.hair_top + 4
    pts: list[Point] = []
    n = 18
    for i in range(n + 1):
        a = math.pi * 0.92 + math.pi * 1.16 * i / n
        pts.append(
            (
                CX + rx * math.cos(a),
                CRANIUM_CY - 10 + (CRANIUM_CY - top) * math.sin(a) * 1.0 + (40 if math.sin(a) > 0 else 0),
            )
        )
    # bottom edge
    d = [f"M{f(CX - rx + 10)},{f(372)}"]
    prev = (CX - rx + 10, 372.0)
    seq = [
        (CX - rx - 6, 320.0),
        (CX - rx - 10, 260.0),
        *pts[2:-2],
        (CX + rx + 10, 260.0),
        (CX + rx + 6, 320.0),
        (CX + rx - 10, 372.0),
        (CX + 80, 384.0),
        (CX, 388.0),
        (CX - 80, 384.0),
        (CX - rx + 10, 372.0),
    ]
    for x1, y1 in seq:
        x0, y0 = prev
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        nx, ny = mx - CX, my - (CRANIUM_CY + 20)
        nl = math.hypot(nx, ny) or 1
        d.append(f"Q{f(mx + nx / nl * 16)},{f(my + ny / nl * 16)} {f(x1)},{f(y1)}")
        prev = (x1, y1)
    return "".join(d) + "Z"


# --- front hair -------------------------------------------------------------------------------------


def hair_front(c: Ctx) -> str:
    style = c.geo.hair_style
    if c.geo.hijab or style == "bald":
        return ""
    t = c.hair
    vol, lock_y, inset = FRONT[style]
    hatted = c.geo.hat is not None
    if style == "afro":
        sil = _afro_path(c)
        lock_y, inset = 300.0, 0.0
    elif style in ("curly", "spiky", "messy"):
        sil = _cap(c, vol, lock_y, bumps=style)
    else:
        sil = _cap(c, vol, lock_y)
    window, edge = face_window(c, lock_y, inset)
    fp = face_path(c.geo.face_shape)
    out: list[str] = []
    notwin = f"M-10,-10H522V522H-10Z{window}"
    # The window as geometry (pathops): the clipped fills become plain paths, which skia draws without
    # building anti-aliased clip masks, and the strokes need two clips instead of four (docs/renderer.md,
    # issue 16); None (a path pathops cannot read): the clip-paths as before.
    geo = _front_geometry(sil, window, edge, fp, style)
    out.append(
        defs(
            clip("hf-face", path(fp)) if geo is None else "",
            clip("hf-notwin", f'<path clip-rule="evenodd" d="{notwin}"/>'),
            clip("hf-sil", path(sil))
            if geo is None
            else clip("hf-hair", _rule_path(geo["hair"], rule="clip_rule")),
        )
    )
    # fringe shadow on the forehead (cel shade), clipped to the face
    if style != "buzz":  # a buzz cut is too short to cast a shadow on the forehead
        if geo is not None:
            out.append(_rule_path(geo["shadow"], fill=c.skin.shade))
        else:
            out.append(
                group(
                    [
                        group(
                            [path(sil, fill=c.skin.shade)],
                            transform="translate(0 11)",
                            clip_path="url(#hf-notwin)",
                        )
                    ],
                    clip_path="url(#hf-face)",
                )
            )
    base_fill = color.mix(t.base, c.skin.base, 0.3) if style == "buzz" else t.base
    inner: list[str] = [path(sil, fill=base_fill) if geo is None else _rule_path(geo["hair"], fill=base_fill)]
    tex: list[str] = []
    top = c.geo.hair_top
    # coils inside the face window (below the lowest fringe point, well inside the face) never show
    in_window = _under_face(c, inset + 16, max(y for _, y in fringe_edge(c)) + 14)
    if style in ("curly",):
        tex.append(_coils(CX - 200, top - 20, CX + 200, 360, 30, 9, t.shade, 3.2, 2, in_window))
        tex.append(_coils(CX - 170, top + 6, CX + 40, 170, 60, 7, c.hair_light, 2.6, 3))
    elif style == "afro":
        tex.append(_coils(CX - 230, 0, CX + 230, 420, 24, 7.5, t.shade, 3.0, 1, in_window))
        tex.append(_coils(CX - 150, top + 20, CX + 20, 150, 36, 6, c.hair_light, 2.4, 4))
    elif style == "buzz":
        tex.extend(_buzz_texture(c, edge, in_window))
    else:
        # strand lines and the anime "angel ring" highlight
        strands = []
        for k in range(-3, 4):
            x = CX + k * 34
            strands.append(
                f"M{f(x * 0.3 + CX * 0.7)},{f(top + 14)}Q{f(x + k * 4)},{f(top + 60)} {f(x + k * 8)},{f(210)}"
            )
        tex.append(
            path(
                "".join(strands),
                fill="none",
                stroke=t.shade,
                stroke_width=3,
                stroke_linecap="round",
                opacity="0.8",
            )
        )
        hy = top + 44 if not hatted else c.geo.hat_rim_y + 22
        ring = (
            f"M{f(CX - 110)},{f(hy + 26)}Q{f(CX)},{f(hy - 34)} {f(CX + 110)},{f(hy + 26)}"
            f"L{f(CX + 96)},{f(hy + 30)}L{f(CX + 84)},{f(hy + 20)}L{f(CX + 64)},{f(hy + 26)}L{f(CX + 44)},{f(hy + 12)}"
            f"L{f(CX + 22)},{f(hy + 18)}L{f(CX)},{f(hy + 6)}L{f(CX - 22)},{f(hy + 18)}L{f(CX - 44)},{f(hy + 12)}"
            f"L{f(CX - 64)},{f(hy + 26)}L{f(CX - 84)},{f(hy + 20)}L{f(CX - 96)},{f(hy + 30)}Z"
        )
        tex.append(path(ring, fill=c.hair_light, opacity="0.75"))
        if style == "braids":
            rows = []
            for k in range(-4, 5):
                rows.append(
                    f"M{f(CX + k * 26)},{f(150)}Q{f(CX + k * 30)},{f(top + 10)} {f(CX + k * 8)},{f(top)}"
                )
            tex.append(
                path("".join(rows), fill="none", stroke=t.deep, stroke_width=3, stroke_linecap="round")
            )
    if style == "afro" or (style == "curly" and (c.spec.hair.front or "") == "open"):
        # depth where the volume meets the forehead: the hair sits on the head, not over it like a wig
        tex.append(path(edge, fill="none", stroke=t.deep, stroke_width=30, opacity="0.45"))
    tex.extend(_grey(c, style, in_window))
    if geo is None:
        inner.append(group(tex, clip_path="url(#hf-sil)"))
    edge_stroke = path(
        edge,
        fill="none",
        stroke=t.line,
        stroke_width=LINE * (0.6 if style == "afro" else 0.8),
        stroke_linejoin="round",
        stroke_linecap="round",
    )
    if style == "buzz":
        # a thinner outline with a fuzz of short hairs, no line at the hairline: it reads as hair, not a cap
        inner.append(path(sil, fill="none", stroke=t.line, stroke_width=LINE * 0.7, stroke_linejoin="round"))
        inner.append(_fuzz(c, t.line))
    elif geo is not None:
        # the texture and the fringe edge through one clip (the hair minus the window), the outline through
        # the window's: two clip masks instead of four. The edge now comes before the outline; both are
        # opaque and the same colour, so the order does not matter beyond rounding.
        inner.append(group([*tex, edge_stroke], clip_path="url(#hf-hair)"))
        outline = path(sil, fill="none", stroke=t.line, stroke_width=LINE, stroke_linejoin="round")
        inner.append(group([outline], clip_path="url(#hf-notwin)"))
    else:
        inner.append(path(sil, fill="none", stroke=t.line, stroke_width=LINE, stroke_linejoin="round"))
        inner.append(group([edge_stroke], clip_path="url(#hf-sil)"))
    if geo is None:
        out.append(group(inner, clip_path="url(#hf-notwin)"))
    elif style == "buzz":  # the texture through the hair's clip; the thin outline and fuzz the window's
        out.append(group([inner[0], group(tex, clip_path="url(#hf-hair)")]))
        out.append(group(inner[1:], clip_path="url(#hf-notwin)"))
    else:
        out.append(group(inner))
    # pieces drawn on top: ties, braids in front, ahoge
    if style == "twin_tails":
        for s in (-1, 1):
            y = 168.0 if not hatted else 200.0
            out.append(
                circle(
                    CX + s * 146,
                    y,
                    11,
                    fill=color.light(c.outfit.base, 0.1),
                    stroke=c.outfit.line,
                    stroke_width=3,
                )
            )
    if style == "ponytail":
        y = 120.0 if not hatted else 160.0
        out.append(
            ellipse(
                CX + 96,
                y + 16,
                9,
                13,
                fill=c.outfit.base,
                stroke=c.outfit.line,
                stroke_width=3,
                transform=f"rotate(-30 {f(CX + 96)} {f(y + 16)})",
            )
        )
    if style == "braids":
        for s in (-1, 1):
            for k in range(2):
                out.append(
                    _braid(CX + s * (c.geo.crx + 2 + k * 16), 262, 440 - k * 20, 17, t.base, t.line, t.shade)
                )
    if style in ("short", "messy", "side_swept") and not hatted:
        x, y = CX + 10, c.geo.hair_top + 2
        out.append(
            path(
                f"M{f(x - 8)},{f(y + 4)}C{f(x - 10)},{f(y - 30)} {f(x + 30)},{f(y - 40)} {f(x + 34)},{f(y - 22)}C{f(x + 18)},{f(y - 28)} {f(x + 4)},{f(y - 18)} {f(x + 8)},{f(y + 4)}Z",
                fill=t.base,
                stroke=t.line,
                stroke_width=3.5,
                stroke_linejoin="round",
            )
        )
    return group(out)


def _rule_path(geo: tuple[str, str], rule: str = "fill_rule", **kw: object) -> str:
    """A pathops result as a path element; ``rule``: the attribute for its even-odd rule (clip_rule in a
    clipPath)."""
    d, fill_rule = geo
    if fill_rule == "evenodd":
        kw[rule] = "evenodd"
    return path(d, **kw)


@lru_cache(maxsize=2048)
def _front_geometry(
    sil: str, window: str, edge: str, fp: str, style: str
) -> dict[str, tuple[str, str]] | None:
    """The front hair's clipped shapes as plain paths: "hair" (silhouette minus the face window), "shadow"
    (the silhouette and window moved down 11, within the face). Strokes keep clip-paths: path ops on a
    stroke's outline were not exact enough in a quick test (up to 30 levels along the outline)."""
    notwin = f"evenodd:M-10,-10H522V522H-10Z{window}"
    hair = pathops.combine(sil, ("and", notwin))
    shadow = pathops.combine(
        pathops.translated(sil, 0, 11),
        ("and", "evenodd:M-10,-10H522V533H-10Z" + pathops.translated(window, 0, 11)),
        ("and", fp),
    )
    if hair is None or shadow is None:
        return None
    return {"hair": hair, "shadow": shadow}


# --- buzz cut and grey ------------------------------------------------------------------------------


def _golden_points(n: int, x0: float, x1: float, y0: float, y1: float) -> list[Point]:
    """n well-spread deterministic points in a box (two irrational strides)."""
    return [
        (x0 + (x1 - x0) * ((i * 0.61803) % 1.0), y0 + (y1 - y0) * ((i * 0.41421 + 0.17) % 1.0))
        for i in range(n)
    ]


def _buzz_texture(c: Ctx, edge: str, hidden: _UnderFace) -> list[str]:
    """Short hairs growing out from the crown, skin showing through at the hairline."""
    t = c.hair
    top = c.geo.hair_top
    dark, lit = _buzz_strokes(c.geo.crx, top, hidden)
    return [
        # the hairline: hair thins out into skin (wide soft strokes of skin colour along the edge)
        path(edge, fill="none", stroke=c.skin.base, stroke_width=22, opacity="0.35", stroke_linecap="round"),
        path(edge, fill="none", stroke=c.skin.base, stroke_width=10, opacity="0.35", stroke_linecap="round"),
        path(dark, stroke=t.shade, stroke_width=2.2, stroke_linecap="round"),
        path(lit, stroke=c.hair_light, stroke_width=2.0, stroke_linecap="round", opacity="0.8"),
        # a soft sheen on the crown
        ellipse(CX - 30, top + 40, 54, 22, fill=c.hair_light, opacity="0.12"),
    ]


@lru_cache(maxsize=64)
def _buzz_strokes(crx: float, top: float, hidden: _UnderFace) -> tuple[str, str]:
    """The buzz cut's short hairs (dark, lit) as two paths: geometry only, shared by every colour."""
    crown = (CX + 18, top + 30)
    dark: list[str] = []
    lit: list[str] = []
    for i, (x, y) in enumerate(_golden_points(420, CX - crx - 6, CX + crx + 6, top - 4, 272)):
        if hidden(x, y):
            continue
        dx, dy = x - crown[0], y - crown[1]
        ln = math.hypot(dx, dy) or 1.0
        ux, uy = dx / ln * 5.0, dy / ln * 5.0
        seg = f"M{f(x)},{f(y)}l{f(ux)},{f(uy)}"
        (lit if i % 4 == 0 and y < top + 90 else dark).append(seg)
    return "".join(dark), "".join(lit)


def _fuzz(c: Ctx, line: str) -> str:
    """Short hairs standing out of the buzz cut's outline, over the top of the head."""
    rx = c.geo.crx + FRONT["buzz"][0]
    top = c.geo.hair_top
    cy = CRANIUM_CY - 4
    ry = cy - top
    ticks = []
    n = 46
    for i in range(n + 1):
        a = math.pi * (1.04 + 0.92 * i / n)
        x, y = CX + rx * math.cos(a), cy + ry * math.sin(a)
        nx, ny = math.cos(a) * ry, math.sin(a) * rx
        ln = math.hypot(nx, ny) or 1.0
        k = 3.0 + (i % 3) * 1.2
        ticks.append(f"M{f(x)},{f(y)}l{f(nx / ln * k)},{f(ny / ln * k)}")
    return path("".join(ticks), stroke=line, stroke_width=2.2, stroke_linecap="round")


def _grey(c: Ctx, style: str, hidden: _UnderFace) -> list[str]:
    """Grey at the temples, or salt-and-pepper strands, over the front hair (clipped to it by the caller)."""
    kind = c.spec.hair.grey
    if not kind:
        return []
    crx = c.geo.crx
    top = c.geo.hair_top
    grey = color.mix(GREY, c.hair.base, 0.12)
    out: list[str] = []
    if kind == "temples":
        for s in (-1, 1):
            x = CX + s * (crx - 10)
            for k, (rx, ry, op) in enumerate(((46, 70, 0.35), (36, 58, 0.45), (26, 46, 0.6))):
                out.append(ellipse(x + s * 4, 236 + k * 4, rx, ry, fill=grey, opacity=f"{op}"))
            strands = "".join(
                f"M{f(x + s * (j * 7 - 14))},{f(196 + j * 6)}q{f(s * 6)},{f(24)} {f(s * 2)},{f(52)}"
                for j in range(5)
            )
            out.append(
                path(strands, fill="none", stroke=GREY_LIGHT, stroke_width=2.4, stroke_linecap="round")
            )
        return out
    # salt and pepper: fine grey and white strands all over, following the hair's flow from the crown
    if style in ("afro", "curly"):
        return [_coils(CX - 220, top, CX + 220, 420, 44, 6.5, GREY_LIGHT, 2.6, 3, hidden)]
    return _grey_strands(c, style, hidden, top, 400)


def _grey_strands(
    c: Ctx, style: str, hidden: _UnderFace, y0: float, y1: float, down: bool = False
) -> list[str]:
    """Fine grey and white strands in a band of rows, along the flow from the crown (or straight down)."""
    crx = c.geo.crx
    crown = (CX + 10, c.geo.hair_top + 24)
    light: list[str] = []
    mid: list[str] = []
    out: list[str] = []
    half_w = crx + (40 if down else 20)
    for i, (x, y) in enumerate(_golden_points(150 if not down else 110, CX - half_w, CX + half_w, y0, y1)):
        if hidden(x, y):
            continue
        dx, dy = (0.0, 1.0) if down else (x - crown[0], y - crown[1])
        ln = math.hypot(dx, dy) or 1.0
        length = 10.0 if style == "buzz" else (30.0 if down else 20.0)
        ux, uy = dx / ln * length, dy / ln * length
        seg = f"M{f(x)},{f(y)}q{f(ux * 0.5 + uy * 0.15)},{f(uy * 0.5 - ux * 0.15)} {f(ux)},{f(uy)}"
        (light if i % 2 else mid).append(seg)
    width = 2.0 if style == "buzz" else 2.4
    out.append(path("".join(mid), fill="none", stroke=GREY_DARK, stroke_width=width, stroke_linecap="round"))
    out.append(
        path("".join(light), fill="none", stroke=GREY_LIGHT, stroke_width=width, stroke_linecap="round")
    )
    return out
