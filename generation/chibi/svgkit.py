"""Tiny SVG string helpers (no third-party code): numbers, attributes, gradients, groups."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# f() runs about 2,000 times per avatar, and formatting a float costs about 300 ns; most numbers recur
# (the same geometry across specs), so a bounded memo of the strings saves about 0.4 ms per avatar.
_F_MEMO: dict[float, str] = {}
_F_MEMO_MAX = 1 << 15


def f(x: float) -> str:
    """A compact number: one decimal, no trailing zeros."""
    s = _F_MEMO.get(x)
    if s is not None:
        return s
    s = f"{x:.1f}"
    s = s[:-2] if s.endswith(".0") else s
    if x != 0:  # 0.0 and -0.0 are equal keys but print differently ("0", "-0")
        if len(_F_MEMO) >= _F_MEMO_MAX:
            _F_MEMO.clear()
        _F_MEMO[x] = s
    return s


_ATTR_NAMES: dict[str, str] = {}


def attrs(**kw: object) -> str:
    parts = []
    for k, v in kw.items():
        if v is None:
            continue
        name = _ATTR_NAMES.get(k)
        if name is None:
            name = _ATTR_NAMES[k] = k.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{f(v) if isinstance(v, float) else v}"')
    return " ".join(parts)


# a path of separate straight two-point segments ("M..L.." repeated) encloses no area: nothing to fill
_SEGMENTS = re.compile(r"(?:M[-\d.]+,[-\d.]+L[-\d.]+,[-\d.]+)+")


def _paint_opacity(kw: dict[str, object], d: str | None = None) -> dict[str, object]:
    """``opacity`` on one shape makes the rasteriser draw it into an offscreen layer and blend that back,
    which costs a full-size pass; when the shape only fills or only strokes, fill-/stroke-opacity gives the
    same pixels without the layer."""
    if "opacity" not in kw:
        return kw
    stroked = kw.get("stroke") not in (None, "none")
    filled = kw.get("fill") != "none" and not (d is not None and _SEGMENTS.fullmatch(d))
    if stroked and filled:
        return kw
    out = dict(kw)
    out["stroke_opacity" if stroked else "fill_opacity"] = out.pop("opacity")
    return out


def path(d: str, **kw: object) -> str:
    return f'<path d="{d}" {attrs(**_paint_opacity(kw, d))}/>'


def ellipse(cx: float, cy: float, rx: float, ry: float, **kw: object) -> str:
    return f'<ellipse cx="{f(cx)}" cy="{f(cy)}" rx="{f(rx)}" ry="{f(ry)}" {attrs(**_paint_opacity(kw))}/>'


def circle(cx: float, cy: float, r: float, **kw: object) -> str:
    return f'<circle cx="{f(cx)}" cy="{f(cy)}" r="{f(r)}" {attrs(**_paint_opacity(kw))}/>'


def rect(x: float, y: float, w: float, h: float, **kw: object) -> str:
    return f'<rect x="{f(x)}" y="{f(y)}" width="{f(w)}" height="{f(h)}" {attrs(**_paint_opacity(kw))}/>'


def group(children: Iterable[str], **kw: object) -> str:
    a = attrs(**kw)
    return f"<g{' ' + a if a else ''}>{''.join(children)}</g>"


def linear(
    gid: str, x1: float, y1: float, x2: float, y2: float, stops: list[tuple[float, str, float]]
) -> str:
    """A linear gradient in user space (object-bounding-box gradients are not reliable in every rasteriser)."""
    s = _stops(stops)
    return (
        f'<linearGradient id="{gid}" gradientUnits="userSpaceOnUse" x1="{f(x1)}" y1="{f(y1)}" '
        f'x2="{f(x2)}" y2="{f(y2)}">{s}</linearGradient>'
    )


def radial(gid: str, cx: float, cy: float, r: float, stops: list[tuple[float, str, float]]) -> str:
    s = _stops(stops)
    return f'<radialGradient id="{gid}" gradientUnits="userSpaceOnUse" cx="{f(cx)}" cy="{f(cy)}" r="{f(r)}">{s}</radialGradient>'


def clip(cid: str, inner: str) -> str:
    return f'<clipPath id="{cid}">{inner}</clipPath>'


def defs(*items: str) -> str:
    return f"<defs>{''.join(items)}</defs>" if items else ""


def _stops(stops: list[tuple[float, str, float]]) -> str:
    out = []
    for o, c, a in stops:
        op = "" if a >= 1 else f' stop-opacity="{a:.2f}"'
        out.append(f'<stop offset="{f(o)}" stop-color="{c}"{op}/>')
    return "".join(out)


def rrect(x: float, y: float, w: float, h: float, r: float, **kw: object) -> str:
    return f'<rect x="{f(x)}" y="{f(y)}" width="{f(w)}" height="{f(h)}" rx="{f(r)}" {attrs(**_paint_opacity(kw))}/>'


BANDS = 64  # steps in a two-colour gradient (bands)


@lru_cache(maxsize=256)  # the same colours give the same 64 bands (a pure function of its arguments)
def bands(x: float, y: float, w: float, h: float, top: str, bottom: str, n: int = BANDS) -> str:
    """A vertical two-colour gradient as ``n`` solid bands (each overlapping the next, so no seams).

    Gradient shaders cost skia about 11 ns a pixel (3 ms for a 512 px background); solid bands cost almost
    nothing, and at 64 steps between two pastel colours each step is one or two levels: invisible."""
    from generation.chibi.color import mix

    step = h / n
    out = []
    for i in range(n):
        col = mix(top, bottom, i / (n - 1))
        out.append(
            f'<rect x="{f(x)}" y="{f(y + i * step)}" width="{f(w)}" height="{f(step + 1)}" fill="{col}"/>'
        )
    return "".join(out)
