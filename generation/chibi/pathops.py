"""Clip paths turned into plain geometry (skia path ops), for layers drawn many times.

A ``clip-path`` makes skia build an anti-aliased clip mask and draw through it, which cost the front hair
about 1 ms a 512 px render (docs/renderer.md, issue 16). Intersecting or subtracting the paths once gives a
plain path that draws the same shape: the pixels differ only by anti-aliasing rounding along the clip edge
(the clip's coverage times the shape's, against the exact coverage of their intersection).

Only the commands the art modules write are parsed (absolute M, L, H, V, Q, C, Z); anything else makes
``parse`` return None and the caller keeps its clip-path.
"""

from __future__ import annotations

import re
from functools import lru_cache

import skia

_TOKEN = re.compile(r"[MLHVQCZmlhvqcz]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARITY = {"M": 2, "L": 2, "H": 1, "V": 1, "Q": 4, "C": 6, "Z": 0}


def parse(d: str) -> skia.Path | None:
    """An SVG path string (absolute M/L/H/V/Q/C/Z only) as a skia Path, or None for anything else; an
    ``evenodd:`` prefix gives the path the even-odd fill rule."""
    evenodd = d.startswith("evenodd:")
    if evenodd:
        d = d[8:]
    tokens = _TOKEN.findall(d)
    if "".join(tokens) != re.sub(r"[\s,]+", "", d):
        return None
    p = skia.Path()
    i, n = 0, len(tokens)
    cmd = ""
    x = y = 0.0
    while i < n:
        t = tokens[i]
        if t[0].isalpha():
            cmd = t
            i += 1
            if cmd not in _ARITY:
                return None
            if cmd == "Z":
                p.close()
                continue
        elif not cmd or cmd == "Z":
            return None
        k = _ARITY[cmd]
        if i + k > n:
            return None
        try:
            v = [float(s) for s in tokens[i : i + k]]
        except ValueError:
            return None
        i += k
        if cmd == "M":
            x, y = v
            p.moveTo(x, y)
            cmd = "L"  # further pairs after M are line-tos
        elif cmd == "L":
            x, y = v
            p.lineTo(x, y)
        elif cmd == "H":
            x = v[0]
            p.lineTo(x, y)
        elif cmd == "V":
            y = v[0]
            p.lineTo(x, y)
        elif cmd == "Q":
            p.quadTo(v[0], v[1], v[2], v[3])
            x, y = v[2], v[3]
        else:
            p.cubicTo(v[0], v[1], v[2], v[3], v[4], v[5])
            x, y = v[4], v[5]
    if evenodd:
        p.setFillType(skia.PathFillType.kEvenOdd)
    return p


def _n(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def to_d(p: skia.Path) -> str:
    """A skia Path as SVG path data, to 0.01 units (0.01 px at 512 px): conics become quadratics."""
    out: list[str] = []
    it = skia.Path.Iter(p, False)
    while True:
        verb, pts = it.next()
        if verb == skia.Path.Verb.kDone_Verb:
            break
        if verb == skia.Path.Verb.kMove_Verb:
            out.append(f"M{_n(pts[0].x())},{_n(pts[0].y())}")
        elif verb == skia.Path.Verb.kLine_Verb:
            out.append(f"L{_n(pts[1].x())},{_n(pts[1].y())}")
        elif verb == skia.Path.Verb.kQuad_Verb:
            out.append(f"Q{_n(pts[1].x())},{_n(pts[1].y())} {_n(pts[2].x())},{_n(pts[2].y())}")
        elif verb == skia.Path.Verb.kConic_Verb:
            quads = skia.Path.ConvertConicToQuads(pts[0], pts[1], pts[2], it.conicWeight(), 4)
            for j in range(1, len(quads) - 1, 2):
                a, b = quads[j], quads[j + 1]
                out.append(f"Q{_n(a.x())},{_n(a.y())} {_n(b.x())},{_n(b.y())}")
        elif verb == skia.Path.Verb.kCubic_Verb:
            out.append(
                f"C{_n(pts[1].x())},{_n(pts[1].y())} {_n(pts[2].x())},{_n(pts[2].y())} "
                f"{_n(pts[3].x())},{_n(pts[3].y())}"
            )
        elif verb == skia.Path.Verb.kClose_Verb:
            out.append("Z")
    return "".join(out)


_OPS = {
    "and": skia.PathOp.kIntersect_PathOp,
    "minus": skia.PathOp.kDifference_PathOp,
}


@lru_cache(maxsize=4096)
def combine(d: str, *ops: tuple[str, str]) -> tuple[str, str] | None:
    """``d`` then each (op, other d) in turn ("and": intersect, "minus": subtract), as (path data, fill rule);
    None when a path cannot be parsed or an op fails (the caller then keeps its clip-paths)."""
    acc = parse(d)
    if acc is None:
        return None
    for op, other in ops:
        q = parse(other)
        if q is None:
            return None
        try:
            acc = skia.Op(acc, q, _OPS[op])
        except RuntimeError:
            return None
    return to_d(acc), "evenodd" if acc.getFillType() == skia.PathFillType.kEvenOdd else "nonzero"


def translated(d: str, dx: float, dy: float) -> str:
    p = parse(d)
    if p is None:
        return d
    p.offset(dx, dy)
    return to_d(p)
