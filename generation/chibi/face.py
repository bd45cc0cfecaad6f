"""Head, neck and every face feature: eyes, brows, nose, mouth, blush, facial hair and face marks."""

from __future__ import annotations

import math
from functools import lru_cache

from generation.chibi import color
from generation.chibi.context import Ctx
from generation.chibi.geometry import (
    BROW_Y,
    CHEEK_DX,
    CHEEK_Y,
    COLLAR_Y,
    CX,
    EAR_Y,
    EYE_RX,
    EYE_RY,
    LINE,
    MOUTH_Y,
    NOSE_Y,
    face_path,
    jaw_points,
    smooth,
)
from generation.chibi.svgkit import circle, clip, defs, ellipse, f, group, linear, path, radial

# Eye styles: (half width, half height, outer-corner drop, iris scale, lid cover at the top).
EYE_STYLES: dict[str, tuple[float, float, float, float, float]] = {
    "round": (EYE_RX, EYE_RY, 0.0, 1.0, 0.0),
    "sparkle": (EYE_RX + 1, EYE_RY + 1, 0.0, 1.02, 0.0),
    "gentle": (EYE_RX, EYE_RY - 3, 3.0, 0.98, 9.0),
    "sharp": (EYE_RX + 2, EYE_RY - 9, -9.0, 0.86, 0.0),
    "droopy": (EYE_RX, EYE_RY - 2, 9.0, 1.0, 4.0),
    "dot": (10.0, 13.0, 0.0, 1.0, 0.0),
}


# --- head and neck ----------------------------------------------------------------------------------


def head(c: Ctx) -> str:
    sk = c.skin
    parts = []
    if not c.geo.hijab:
        for s in (-1, 1):
            x = CX + s * (c.geo.face_x(EAR_Y) - 2)
            parts.append(ellipse(x, EAR_Y, 19, 25, fill=sk.base, stroke=sk.line, stroke_width=LINE * 0.8))
            parts.append(
                path(
                    f"M{f(x + s * 8)},{f(EAR_Y - 12)}Q{f(x + s * 2)},{f(EAR_Y)} {f(x + s * 8)},{f(EAR_Y + 12)}",
                    fill="none",
                    stroke=sk.shade,
                    stroke_width=4,
                    stroke_linecap="round",
                )
            )
    fp = face_path(c.geo.face_shape)
    parts.append(path(fp, fill=sk.base, stroke=sk.line, stroke_width=LINE, stroke_linejoin="round"))
    # a soft light on the upper face: stacked translucent ellipses, all inside the face on every shape
    # (a radial gradient over the whole face costs skia about 1 ms; these steps are a level or two each)
    for k in range(5):
        r = 1.0 - k * 0.17
        parts.append(ellipse(CX - 26, 262, 108 * r, 96 * r, fill=sk.light, opacity="0.055"))
    return group(parts)


def neck(c: Ctx) -> str:
    sk = c.skin
    y0, y1 = c.geo.chin_y - 40, COLLAR_Y + 14
    d = (
        f"M{f(CX - 30)},{f(y0)}L{f(CX - 31)},{f(y1 - 10)}Q{f(CX)},{f(y1 + 6)} {f(CX + 31)},{f(y1 - 10)}"
        f"L{f(CX + 30)},{f(y0)}Z"
    )
    shade_d = (
        f"M{f(CX - 34)},{f(y0)}L{f(CX + 34)},{f(y0)}L{f(CX + 34)},{f(c.geo.chin_y + 4)}"
        f"Q{f(CX)},{f(c.geo.chin_y + 26)} {f(CX - 34)},{f(c.geo.chin_y + 4)}Z"
    )
    return group(
        [
            defs(clip("neck-clip", path(d))),
            path(d, fill=sk.base, stroke=sk.line, stroke_width=LINE * 0.8),
            group([path(shade_d, fill=sk.shade)], clip_path="url(#neck-clip)"),
        ]
    )


# --- eyes -------------------------------------------------------------------------------------------


def _opening(ex: float, ey: float, s: int, rx: float, ry: float, drop: float) -> str:
    ix, iy = ex - s * rx, ey + 3
    ox, oy = ex + s * rx, ey + 3 + drop
    tx, ty = ex + s * 2, ey - ry
    bx, by = ex, ey + ry
    return (
        f"M{f(ix)},{f(iy)}C{f(ix)},{f(iy - ry * 0.85)} {f(tx - s * rx * 0.62)},{f(ty)} {f(tx)},{f(ty)}"
        f"C{f(tx + s * rx * 0.62)},{f(ty)} {f(ox)},{f(oy - ry * 0.85)} {f(ox)},{f(oy)}"
        f"C{f(ox)},{f(oy + ry * 0.75)} {f(bx + s * rx * 0.6)},{f(by)} {f(bx)},{f(by)}"
        f"C{f(bx - s * rx * 0.6)},{f(by)} {f(ix)},{f(iy + ry * 0.75)} {f(ix)},{f(iy)}Z"
    )


def _lash(ex: float, ey: float, s: int, rx: float, ry: float, drop: float, top_y: float) -> str:
    """The upper lash line: a tapered filled crescent with a little wing at the outer corner."""
    ix, iy = ex - s * (rx + 1), ey + 2
    ox, oy = ex + s * (rx + 3), ey + drop
    tx = ex + s * 2
    outer = (
        f"M{f(ix)},{f(iy)}C{f(ix - s * 1)},{f(top_y - 2)} {f(tx - s * rx * 0.5)},{f(top_y - 4)} {f(tx)},{f(top_y - 4)}"
        f"C{f(tx + s * rx * 0.65)},{f(top_y - 4)} {f(ox + s * 4)},{f(top_y + 6)} {f(ox + s * 9)},{f(oy - 4)}"
        f"L{f(ox + s * 2)},{f(oy + 2)}"
        f"C{f(ox - s * 2)},{f(top_y + 12)} {f(tx + s * rx * 0.5)},{f(top_y + 3)} {f(tx)},{f(top_y + 3)}"
        f"C{f(tx - s * rx * 0.5)},{f(top_y + 3)} {f(ix + s * 3)},{f(top_y + 10)} {f(ix + s * 2)},{f(iy)}Z"
    )
    return outer


def _eye_open(c: Ctx, idx: int, ex: float, ey: float, s: int, mode: str) -> list[str]:
    style = c.spec.eyes.style or "round"
    rx, ry, drop, iscale, cover = EYE_STYLES[style]
    if mode == "wide":
        ry += 4
    iris = c.eye
    deep = color.shade(iris, 0.5)
    lit = color.light(iris, 0.45)
    pid = f"eye{idx}"
    out: list[str] = []
    if style == "dot":
        h = ry * (0.55 if mode in ("half", "angry", "sad") else 1.0)
        out.append(ellipse(ex, ey + 6, rx, h, fill=c.lash))
        if c.spec.eyes.catchlights:
            out.append(circle(ex - 3, ey + 6 - h * 0.45, 3.2, fill="#ffffff"))
        return out
    opening = _opening(ex, ey, s, rx, ry, drop)
    irx, iry = 23.0 * iscale * (rx / EYE_RX) ** 0.3, 30.0 * iscale * (ry / EYE_RY) ** 0.4
    if mode == "wide":
        irx, iry = irx * 0.72, iry * 0.72
    icy = ey + 4 if mode != "wide" else ey + 2
    # "glance" (shy): both irises look aside and a little down, under a softly lowered, curved lid
    gx = -irx * 0.3 if mode == "glance" else 0.0
    if mode == "glance":
        icy += 3
        cover = max(cover, ry * 0.3)
    out.append(
        defs(
            clip(f"{pid}-clip", path(opening)),
            linear(
                f"{pid}-iris",
                0,
                icy - iry,
                0,
                icy + iry,
                [(0, deep, 1), (0.45, iris, 1), (1, lit, 1)],
            ),
        )
    )
    inner = [
        path(opening, fill="#fffdfb"),
        path(
            f"M{f(ex - 40)},{f(ey - ry - 4)}L{f(ex + 40)},{f(ey - ry - 4)}L{f(ex + 40)},{f(ey - ry + 12)}"
            f"Q{f(ex)},{f(ey - ry + 20)} {f(ex - 40)},{f(ey - ry + 12)}Z",
            fill=color.mix(c.skin.shade, "#b9b4d6", 0.5),
            opacity="0.55",
        ),
        ellipse(ex + s * 1 + gx, icy, irx, iry, fill=f"url(#{pid}-iris)", stroke=deep, stroke_width=2.5),
        ellipse(ex + s * 1 + gx, icy + 1, irx * 0.45, iry * 0.5, fill=color.shade(iris, 0.7)),
        path(
            f"M{f(ex + gx - irx * 0.7)},{f(icy + iry * 0.45)}Q{f(ex + gx)},{f(icy + iry * 0.95)} {f(ex + gx + irx * 0.7)},{f(icy + iry * 0.45)}",
            fill="none",
            stroke=color.light(iris, 0.7),
            stroke_width=3,
            stroke_linecap="round",
            opacity="0.8",
        ),
    ]
    if c.spec.eyes.catchlights:
        inner.append(ellipse(ex + gx - irx * 0.38, icy - iry * 0.38, irx * 0.36, iry * 0.3, fill="#ffffff"))
        inner.append(
            circle(ex + gx + irx * 0.42, icy + iry * 0.42, irx * 0.16, fill="#ffffff", opacity="0.95")
        )
        if style == "sparkle":
            inner.append(_star(ex + irx * 0.3, icy - iry * 0.45, irx * 0.32, "#ffffff"))
            inner.append(circle(ex - irx * 0.45, icy + iry * 0.35, 2.2, fill="#ffffff"))
    lid = {"half": (ry * 0.85, ry * 0.85), "angry": (ry * 1.0, ry * 0.42), "sad": (ry * 0.42, ry * 0.95)}
    top_y = ey - ry + cover
    if mode in lid:
        cin, cout = lid[mode]
        iy, oy = ey - ry + cin, ey - ry + cout + drop * 0.5
        ix, ox = ex - s * (rx + 10), ex + s * (rx + 10)
        lid_d = f"M{f(ix)},{f(iy)}L{f(ox)},{f(oy)}L{f(ox)},{f(ey + ry + 20)}L{f(ix)},{f(ey + ry + 20)}Z"
        out.append(defs(clip(f"{pid}-lid", path(lid_d))))
        out.append(group([group(inner, clip_path=f"url(#{pid}-clip)")], clip_path=f"url(#{pid}-lid)"))
        lx0, lx1 = ex - s * (rx + 2), ex + s * (rx + 6)
        ly0 = iy + (oy - iy) * ((lx0 - ix) / (ox - ix))
        ly1 = iy + (oy - iy) * ((lx1 - ix) / (ox - ix))
        out.append(
            path(
                f"M{f(lx0)},{f(ly0 + 1)}L{f(lx1)},{f(ly1 - 1)}L{f(lx1 + s * 6)},{f(ly1 - 5)}",
                fill="none",
                stroke=c.lash,
                stroke_width=6.5,
                stroke_linecap="round",
                stroke_linejoin="round",
            )
        )
    else:
        if cover > 0:
            cov = f"M{f(ex - 44)},{f(top_y)}Q{f(ex)},{f(top_y - 6)} {f(ex + 44)},{f(top_y)}L{f(ex + 44)},{f(ey + ry + 20)}L{f(ex - 44)},{f(ey + ry + 20)}Z"
            out.append(defs(clip(f"{pid}-lid", path(cov))))
            out.append(group([group(inner, clip_path=f"url(#{pid}-clip)")], clip_path=f"url(#{pid}-lid)"))
        else:
            out.append(group(inner, clip_path=f"url(#{pid}-clip)"))
        out.append(path(_lash(ex, ey, s, rx, ry, drop, top_y), fill=c.lash))
    # lower lash hint
    out.append(
        path(
            f"M{f(ex + s * rx * 0.2)},{f(ey + ry + 1)}Q{f(ex + s * rx * 0.8)},{f(ey + ry - 2)} {f(ex + s * (rx + 1))},{f(ey + ry * 0.55 + drop)}",
            fill="none",
            stroke=c.lash,
            stroke_width=2.4,
            stroke_linecap="round",
            opacity="0.8",
        )
    )
    return out


def _star(x: float, y: float, r: float, fill: str) -> str:
    k = r * 0.28
    return path(
        f"M{f(x)},{f(y - r)}Q{f(x + k)},{f(y - k)} {f(x + r)},{f(y)}Q{f(x + k)},{f(y + k)} {f(x)},{f(y + r)}"
        f"Q{f(x - k)},{f(y + k)} {f(x - r)},{f(y)}Q{f(x - k)},{f(y - k)} {f(x)},{f(y - r)}Z",
        fill=fill,
    )


@lru_cache(maxsize=256)
def heart_path(x: float, y: float, w: float) -> str:
    """A heart centred at (x, y), ``w`` wide."""
    h = w * 0.9
    top = y - h * 0.35
    return (
        f"M{f(x)},{f(y + h * 0.5)}C{f(x - w * 0.2)},{f(y + h * 0.3)} {f(x - w * 0.5)},{f(y + h * 0.05)} {f(x - w * 0.5)},{f(top)}"
        f"C{f(x - w * 0.5)},{f(top - h * 0.3)} {f(x - w * 0.1)},{f(top - h * 0.35)} {f(x)},{f(top)}"
        f"C{f(x + w * 0.1)},{f(top - h * 0.35)} {f(x + w * 0.5)},{f(top - h * 0.3)} {f(x + w * 0.5)},{f(top)}"
        f"C{f(x + w * 0.5)},{f(y + h * 0.05)} {f(x + w * 0.2)},{f(y + h * 0.3)} {f(x)},{f(y + h * 0.5)}Z"
    )


def eyes(c: Ctx) -> str:
    out: list[str] = []
    style = c.spec.eyes.style or "round"
    rx, ry, _drop, _, _ = EYE_STYLES[style]
    for idx, ((ex, ey), mode) in enumerate(zip(c.geo.eyes, (c.expr.left, c.expr.right), strict=True)):
        s = -1 if idx == 0 else 1
        if mode == "happy":
            w = max(rx, 22)
            out.append(
                path(
                    f"M{f(ex - w)},{f(ey + 10)}Q{f(ex)},{f(ey - 22)} {f(ex + w)},{f(ey + 10)}",
                    fill="none",
                    stroke=c.lash,
                    stroke_width=7,
                    stroke_linecap="round",
                )
            )
        elif mode == "closed":
            w = max(rx, 24)
            out.append(
                path(
                    f"M{f(ex - w)},{f(ey + 4)}Q{f(ex)},{f(ey + 20)} {f(ex + w)},{f(ey + 4)}",
                    fill="none",
                    stroke=c.lash,
                    stroke_width=6,
                    stroke_linecap="round",
                )
            )
            ox = ex + s * w
            out.append(
                path(
                    f"M{f(ox - s * 4)},{f(ey + 8)}L{f(ox + s * 5)},{f(ey + 14)}",
                    stroke=c.lash,
                    stroke_width=3.5,
                    stroke_linecap="round",
                )
            )
        elif mode == "heart":
            out.append(
                defs(linear(f"heart{idx}", 0, ey - 26, 0, ey + 26, [(0, "#ff7aa2", 1), (1, "#e8385f", 1)]))
            )
            out.append(
                path(
                    heart_path(ex, ey + 4, 58),
                    fill=f"url(#heart{idx})",
                    stroke="#a3203f",
                    stroke_width=3.5,
                    stroke_linejoin="round",
                )
            )
            out.append(ellipse(ex - 12, ey - 6, 7, 5, fill="#ffffff", opacity="0.9"))
        else:
            out.extend(_eye_open(c, idx, ex, ey, s, mode))
        if c.expr.tears:
            tx = ex + s * 6
            tear = "#8fd3ff"
            out.append(
                path(
                    f"M{f(ex - 22)},{f(ey + ry - 2)}Q{f(ex)},{f(ey + ry + 8)} {f(ex + 22)},{f(ey + ry - 2)}"
                    f"Q{f(ex)},{f(ey + ry + 2)} {f(ex - 22)},{f(ey + ry - 2)}Z",
                    fill=tear,
                    stroke="#4aa3e0",
                    stroke_width=2,
                )
            )
            out.append(
                path(
                    f"M{f(tx - 7)},{f(ey + ry + 2)}Q{f(tx - 9)},{f(ey + ry + 34)} {f(tx + s * 2)},{f(ey + ry + 52)}"
                    f"Q{f(tx + 12)},{f(ey + ry + 40)} {f(tx + 7)},{f(ey + ry + 2)}Z",
                    fill=tear,
                    stroke="#4aa3e0",
                    stroke_width=2.2,
                    opacity="0.92",
                )
            )
    return group(out)


def brows(c: Ctx) -> str:
    style = c.spec.brows or "soft"
    width = {"soft": 5.5, "straight": 6.0, "thick": 9.5, "thin": 3.2}[style]
    arch = {"soft": -5.0, "straight": -1.0, "thick": -3.0, "thin": -8.0}[style]
    e = c.expr
    out = []
    for idx, (ex, _) in enumerate(c.geo.eyes):
        s = -1 if idx == 0 else 1
        y = BROW_Y + e.brow_lift
        ix, iy = ex - s * 18, y + e.brow_inner
        ox, oy = ex + s * 22, y + e.brow_outer + 2
        mx, my = (ix + ox) / 2, (iy + oy) / 2 + arch
        out.append(
            path(
                f"M{f(ix)},{f(iy)}Q{f(mx)},{f(my)} {f(ox)},{f(oy)}",
                fill="none",
                stroke=c.brow,
                stroke_width=width,
                stroke_linecap="round",
            )
        )
    return group(out)


def nose(c: Ctx) -> str:
    kind = c.spec.nose or "dot"
    if kind == "none":
        return ""
    if kind == "dot":
        return ellipse(CX + 2, NOSE_Y, 3.2, 2.4, fill=c.skin.line, opacity="0.55")
    return path(
        f"M{f(CX + 2)},{f(NOSE_Y - 9)}Q{f(CX + 7)},{f(NOSE_Y)} {f(CX - 1)},{f(NOSE_Y + 2)}",
        fill="none",
        stroke=c.skin.line,
        stroke_width=3,
        stroke_linecap="round",
        opacity="0.65",
    )


MOUTH_HALF_WIDTH: dict[str, float] = {
    "smile": 20, "smile_open": 20, "grin": 27, "laugh": 28, "flat": 12, "small_o": 7, "o": 11, "frown": 16,
    "cry": 20, "wavy": 14, "smirk": 17, "cat": 22, "tongue": 18, "determined": 14,
}  # fmt: skip


def mouth(c: Ctx) -> str:
    sk = c.skin
    line = color.mix(sk.line, "#5a1624", 0.35)
    inside = sk.mouth
    tongue = "#f27a8c"
    y = MOUTH_Y
    kind = c.expr.mouth
    st = {
        "fill": "none",
        "stroke": line,
        "stroke_width": 4.2,
        "stroke_linecap": "round",
        "stroke_linejoin": "round",
    }
    if kind == "smile":
        return path(f"M{f(CX - 20)},{f(y - 4)}Q{f(CX)},{f(y + 14)} {f(CX + 20)},{f(y - 4)}", **st)
    if kind == "flat":
        return path(f"M{f(CX - 12)},{f(y + 2)}Q{f(CX)},{f(y + 5)} {f(CX + 12)},{f(y + 2)}", **st)
    if kind == "determined":
        return path(f"M{f(CX - 14)},{f(y + 4)}Q{f(CX)},{f(y)} {f(CX + 14)},{f(y + 4)}", **st)
    if kind == "frown":
        return path(f"M{f(CX - 16)},{f(y + 8)}Q{f(CX)},{f(y - 6)} {f(CX + 16)},{f(y + 8)}", **st)
    if kind == "smirk":
        return path(f"M{f(CX - 16)},{f(y + 4)}Q{f(CX + 4)},{f(y + 8)} {f(CX + 17)},{f(y - 6)}", **st)
    if kind == "wavy":
        return path(
            f"M{f(CX - 14)},{f(y + 3)}Q{f(CX - 10)},{f(y - 3)} {f(CX - 5)},{f(y + 2)}Q{f(CX)},{f(y + 7)} {f(CX + 5)},{f(y + 2)}"
            f"Q{f(CX + 10)},{f(y - 3)} {f(CX + 14)},{f(y + 3)}",
            **{**st, "stroke_width": 3.6},
        )
    if kind == "cat":
        return path(
            f"M{f(CX - 22)},{f(y - 6)}C{f(CX - 22)},{f(y + 10)} {f(CX - 2)},{f(y + 10)} {f(CX)},{f(y - 2)}"
            f"C{f(CX + 2)},{f(y + 10)} {f(CX + 22)},{f(y + 10)} {f(CX + 22)},{f(y - 6)}",
            **st,
        )
    if kind in ("small_o", "o"):
        rx, ry = (6, 5) if kind == "small_o" else (10, 13)
        return ellipse(CX, y + 4, rx, ry, fill=inside, stroke=line, stroke_width=3.5)
    if kind == "tongue":
        d = f"M{f(CX - 18)},{f(y - 4)}Q{f(CX)},{f(y + 12)} {f(CX + 18)},{f(y - 4)}"
        t = (
            f"M{f(CX - 2)},{f(y + 3)}L{f(CX - 2)},{f(y + 12)}Q{f(CX + 7)},{f(y + 26)} {f(CX + 16)},{f(y + 12)}"
            f"L{f(CX + 15)},{f(y + 1)}Z"
        )
        return group(
            [
                path(t, fill=tongue, stroke=line, stroke_width=3.2, stroke_linejoin="round"),
                path(f"M{f(CX + 7)},{f(y + 6)}L{f(CX + 7)},{f(y + 13)}", stroke="#d4566c", stroke_width=2),
                path(d, **st),
            ]
        )
    if kind in ("smile_open", "grin", "laugh", "cry"):
        if kind == "smile_open":
            d = f"M{f(CX - 19)},{f(y - 5)}Q{f(CX)},{f(y - 1)} {f(CX + 19)},{f(y - 5)}Q{f(CX + 14)},{f(y + 18)} {f(CX)},{f(y + 18)}Q{f(CX - 14)},{f(y + 18)} {f(CX - 19)},{f(y - 5)}Z"
        elif kind == "grin":
            d = f"M{f(CX - 27)},{f(y - 7)}Q{f(CX)},{f(y - 3)} {f(CX + 27)},{f(y - 7)}Q{f(CX + 20)},{f(y + 22)} {f(CX)},{f(y + 22)}Q{f(CX - 20)},{f(y + 22)} {f(CX - 27)},{f(y - 7)}Z"
        elif kind == "laugh":
            d = f"M{f(CX - 28)},{f(y - 8)}Q{f(CX)},{f(y - 4)} {f(CX + 28)},{f(y - 8)}Q{f(CX + 26)},{f(y + 30)} {f(CX)},{f(y + 30)}Q{f(CX - 26)},{f(y + 30)} {f(CX - 28)},{f(y - 8)}Z"
        else:
            d = f"M{f(CX - 20)},{f(y + 12)}Q{f(CX - 12)},{f(y - 8)} {f(CX)},{f(y - 6)}Q{f(CX + 12)},{f(y - 8)} {f(CX + 20)},{f(y + 12)}Q{f(CX)},{f(y + 6)} {f(CX - 20)},{f(y + 12)}Z"
        parts = [defs(clip("mouth-clip", path(d))), path(d, fill=inside)]
        inner = [ellipse(CX, y + 30 if kind != "cry" else y + 16, 20, 14, fill=tongue)]
        if kind == "grin":
            inner.append(
                path(
                    f"M{f(CX - 30)},{f(y - 10)}L{f(CX + 30)},{f(y - 10)}L{f(CX + 30)},{f(y + 2)}Q{f(CX)},{f(y + 6)} {f(CX - 30)},{f(y + 2)}Z",
                    fill="#ffffff",
                )
            )
        if kind == "laugh":
            inner.append(
                path(
                    f"M{f(CX - 30)},{f(y - 10)}L{f(CX + 30)},{f(y - 10)}L{f(CX + 30)},{f(y - 3)}Q{f(CX)},{f(y + 1)} {f(CX - 30)},{f(y - 3)}Z",
                    fill="#ffffff",
                )
            )
        parts.append(group(inner, clip_path="url(#mouth-clip)"))
        parts.append(path(d, fill="none", stroke=line, stroke_width=3.8, stroke_linejoin="round"))
        return group(parts)
    return ""


def blush(c: Ctx) -> str:
    level = c.spec.blush or "soft"
    if c.expr.extra_blush:
        level = "strong"
    if level == "none":
        return ""
    strong = level == "strong"
    b = c.skin.blush
    rx, ry = (34, 19) if strong else (28, 15)
    alpha = 0.62 if strong else 0.45
    out = [
        defs(
            *(
                radial(
                    f"blush{i}",
                    CX + s * CHEEK_DX,
                    CHEEK_Y,
                    rx,
                    [(0, b, alpha), (0.6, b, alpha * 0.6), (1, b, 0)],
                )
                for i, s in enumerate((-1, 1))
            )
        )
    ]
    for i, s in enumerate((-1, 1)):
        x = CX + s * CHEEK_DX
        out.append(ellipse(x, CHEEK_Y, rx, ry, fill=f"url(#blush{i})"))
        if strong:
            for k in (-1, 0, 1):
                out.append(
                    path(
                        f"M{f(x + k * 10 + 3)},{f(CHEEK_Y - 6)}L{f(x + k * 10 - 3)},{f(CHEEK_Y + 6)}",
                        stroke=color.shade(b, 0.2),
                        stroke_width=2.4,
                        stroke_linecap="round",
                        opacity="0.7",
                    )
                )
    return group(out)


def fx(c: Ctx) -> str:
    """Comic marks drawn over the hair: anger vein, sweat drop."""
    out = []
    if c.expr.anger_mark:
        x, y = CX + 104, 190
        red = "#e23a4e"
        for a in range(4):
            ang = math.pi / 4 + a * math.pi / 2
            px, py = x + math.cos(ang) * 12, y + math.sin(ang) * 12
            out.append(
                path(
                    f"M{f(px + math.cos(ang + 1.2) * 8)},{f(py + math.sin(ang + 1.2) * 8)}Q{f(x)},{f(y)} {f(px + math.cos(ang - 1.2) * 8)},{f(py + math.sin(ang - 1.2) * 8)}",
                    fill="none",
                    stroke=red,
                    stroke_width=4.5,
                    stroke_linecap="round",
                )
            )
    if c.expr.sweat:
        x, y = CX + 128, 222
        out.append(
            path(
                f"M{f(x)},{f(y - 16)}Q{f(x + 12)},{f(y + 2)} {f(x + 8)},{f(y + 8)}Q{f(x)},{f(y + 14)} {f(x - 8)},{f(y + 8)}Q{f(x - 12)},{f(y + 2)} {f(x)},{f(y - 16)}Z",
                fill="#bfe6ff",
                stroke="#4aa3e0",
                stroke_width=2.5,
            )
        )
    if c.spec.expression == "sleepy":
        x, y = CX + 150, 150
        out.append(
            path(
                f"M{f(x)},{f(y)}L{f(x + 16)},{f(y)}L{f(x)},{f(y + 16)}L{f(x + 16)},{f(y + 16)}"
                f"M{f(x + 24)},{f(y - 22)}L{f(x + 34)},{f(y - 22)}L{f(x + 24)},{f(y - 12)}L{f(x + 34)},{f(y - 12)}",
                fill="none",
                stroke="#6b7bd6",
                stroke_width=3.5,
                stroke_linecap="round",
                stroke_linejoin="round",
            )
        )
    if c.spec.expression == "love":
        out.append(path(heart_path(CX + 150, 170, 26), fill="#ff6f96", stroke="#b8284e", stroke_width=2.5))
        out.append(path(heart_path(CX - 156, 200, 18), fill="#ff9ab6", stroke="#b8284e", stroke_width=2))
    return group(out) if out else ""


# --- facial hair ---------------------------------------------------------------------------------------

# Per mouth: (half width, top, bottom) relative to (CX, MOUTH_Y): the beard leaves this much skin free.
MOUTH_BOX: dict[str, tuple[float, float, float]] = {
    "smile": (20, -6, 6), "smile_open": (19, -5, 18), "grin": (27, -7, 22), "laugh": (28, -8, 30),
    "flat": (12, 1, 5), "small_o": (6, -1, 9), "o": (10, -9, 17), "frown": (16, -2, 11), "cry": (20, -7, 12),
    "wavy": (14, -5, 7), "smirk": (17, -8, 8), "cat": (22, -8, 7), "tongue": (18, -6, 26),
    "determined": (14, 1, 5),
}  # fmt: skip

SIDEBURN_Y = 258.0  # where sideburns start (under the hair at the temples)
CHIN_BULGE = 14.0  # how far a full beard may hang below the chin


def _beard_outline(c: Ctx, grow: float, bulge: float, top: float = SIDEBURN_Y) -> list[tuple[float, float]]:
    """The face contour from the sideburns round the chin, grown a little, with a soft bulge at the chin."""
    pts = jaw_points(c.geo.face_shape, top, grow)
    half = max(c.geo.chin_w + 46.0, 70.0)
    out = []
    for x, y in pts:
        k = max(0.0, 1.0 - abs(x - CX) / half)
        out.append((x, y + bulge * k * k * (3 - 2 * k)))
    return out


def _beard_inner(
    c: Ctx, mw: float, bottom: float, top: float = SIDEBURN_Y, band: float = 22.0
) -> list[tuple[float, float]]:
    """The beard's inner edge, right sideburn down to the mouth corner, under the mouth, up the left side."""
    g = c.geo
    right = [
        (CX + g.face_x(top) - band, top),
        (CX + g.face_x(300.0) - band - 2, 300.0),
        (CX + g.face_x(NOSE_Y + 4) - band - 8, NOSE_Y + 4),
        (CX + mw + 12, MOUTH_Y + 2),
        (CX + mw + 6, bottom - 6),
        (CX + mw * 0.5, bottom),
    ]
    left = [(2 * CX - x, y) for x, y in reversed(right)]
    return [*right, (CX, bottom + 2), *left]


def _moustache(t: color.Tone, mw: float, mtop: float, stroke: str) -> str:
    w = max(22.0, min(mw + 6, 32.0))
    y0 = NOSE_Y + 3  # upper edge, clear of the nose
    y1 = max(y0 + 8, mtop - 1)  # lower edge, just over the mouth
    # two plump lobes; their tips curl down beside the mouth corners, not over the mouth
    d = (
        f"M{f(CX)},{f(y0 + 2)}C{f(CX + 6)},{f(y0 - 2)} {f(CX + w - 2)},{f(y0 - 2)} {f(CX + w + 4)},{f(y1 + 4)}"
        f"C{f(CX + w - 3)},{f(y1 - 2)} {f(CX + 8)},{f(y1)} {f(CX)},{f(y1 - 2)}"
        f"C{f(CX - 8)},{f(y1)} {f(CX - w + 3)},{f(y1 - 2)} {f(CX - w - 4)},{f(y1 + 4)}"
        f"C{f(CX - w + 2)},{f(y0 - 2)} {f(CX - 6)},{f(y0 - 2)} {f(CX)},{f(y0 + 2)}Z"
    )
    return group(
        [
            path(d, fill=t.base, stroke=stroke, stroke_width=2.6, stroke_linejoin="round"),
            path(
                f"M{f(CX - w * 0.7)},{f(y0 + 4)}Q{f(CX - w * 0.35)},{f(y0 + 1)} {f(CX - 5)},{f(y0 + 4)}"
                f"M{f(CX + 5)},{f(y0 + 4)}Q{f(CX + w * 0.35)},{f(y0 + 1)} {f(CX + w * 0.7)},{f(y0 + 4)}",
                fill="none",
                stroke=t.light,
                stroke_width=2,
                stroke_linecap="round",
                opacity="0.7",
            ),
        ]
    )


def beard_tone(hair: str, skin: str) -> tuple[color.Tone, str]:
    """The beard's colours: the hair colour, taken a shade deeper when it is about as light as the skin
    (brown hair on ebony skin, blond on fair) so the beard reads at 48 px; dark on dark also gets a light
    rim instead of an outline. Returns the tone and the outline colour."""
    fill = hair
    for amount in (0.2, 0.35, 0.5, 0.62):
        if abs(color.luminance(fill) - color.luminance(skin)) >= 0.12:
            break
        fill = color.shade(hair, amount)
    t = color.Tone.of(fill)
    dark_on_dark = color.luminance(skin) < 0.35 and color.luminance(fill) < 0.3
    return t, color.light(hair, 0.3) if dark_on_dark else t.line


def facial_hair(c: Ctx) -> str:
    """Beards frame the jaw: sideburns, cheeks along the face contour, round the chin under the mouth.

    The mouth always stays free (the beard's inner edge goes round it); nothing of the beard sits above the
    nose except the sideburns at the face's edge, and it leaves the face outline only as a soft chin bulge.
    """
    kind = c.spec.facial_hair or "none"
    if kind == "none":
        return ""
    mw, mtop, mbot = MOUTH_BOX.get(c.expr.mouth, (18, -5, 8))
    mtop, mbot = MOUTH_Y + mtop, MOUTH_Y + mbot
    # on a face of about the hair's lightness (dark skin, dark hair) the outline turns into a light rim
    # salt-and-pepper hair goes with a greying beard (temples alone leave the beard its colour)
    beard_hair = color.mix(c.hair.base, "#c8cbd2", 0.45) if c.spec.hair.grey == "salt_pepper" else c.hair.base
    t, stroke = beard_tone(beard_hair, c.skin.base)
    out: list[str] = []
    if kind == "beard":
        bottom = mbot + 6
        outer = _beard_outline(c, 3.0, CHIN_BULGE)
        inner = _beard_inner(c, mw, bottom)
        d = smooth(outer) + "L" + smooth(inner)[1:] + "Z"
        out.append(path(d, fill=t.base, stroke=stroke, stroke_width=LINE * 0.8, stroke_linejoin="round"))
        # a light sheen round the chin and a few curls of shade: it reads as hair, not as a mask
        chin = c.geo.chin_y + CHIN_BULGE
        sheen = [(CX + dx, chin - 9 - 0.0008 * dx * dx * 6) for dx in range(-30, 31, 10)]
        out.append(
            path(
                smooth(sheen),
                fill="none",
                stroke=t.light,
                stroke_width=3,
                stroke_linecap="round",
                opacity="0.55",
            )
        )
        for s in (-1, 1):
            fx0 = CX + s * (c.geo.face_x(312.0) - 10)
            out.append(
                path(
                    f"M{f(fx0)},{f(296)}Q{f(fx0 - s * 4)},{f(314)} {f(fx0 - s * 2)},{f(328)}",
                    fill="none",
                    stroke=t.shade if stroke == t.line else t.light,
                    stroke_width=2.6,
                    stroke_linecap="round",
                    opacity="0.8",
                )
            )
            for k in (0.35, 0.7):
                x = CX + s * (mw + 4 + (c.geo.jaw_w - mw - 12) * k)
                y0 = bottom + 4 + (c.geo.jaw_y - bottom) * k * 0.2
                out.append(
                    path(
                        f"M{f(x)},{f(y0)}Q{f(x + s * 3)},{f(y0 + 8)} {f(x + s * 1)},{f(y0 + 14)}",
                        fill="none",
                        stroke=t.shade if stroke == t.line else t.light,
                        stroke_width=2.4,
                        stroke_linecap="round",
                        opacity="0.7",
                    )
                )
        out.append(_moustache(t, mw, mtop, t.line))
    elif kind == "stubble":
        outer = _beard_outline(c, -1.0, 0.0, 276.0)
        inner = _beard_inner(c, mw, mbot + 5, 276.0, 18.0)
        d = smooth(outer) + "L" + smooth(inner)[1:] + "Z"
        tint = color.mix(t.base, t.deep, 0.5)
        dots = []
        for i in range(110):
            a = (i * 0.6180339) % 1.0
            b = (i * 0.7548776) % 1.0
            x = CX + (a - 0.5) * 2 * (c.geo.jaw_w + 10)
            y = 280 + b * (c.geo.chin_y - 276)
            dots.append(circle(x, y, 2.2, fill=color.shade(t.base, 0.45), opacity="0.75"))
        out.append(defs(clip("stubble-clip", path(d))))
        # lighter on fair skin (it shows anyway), stronger on deep skin so it still reads at 48 px
        strength = 0.36 + 0.28 * (1 - color.luminance(c.skin.base))
        out.append(path(d, fill=tint, opacity=f"{strength:.2f}"))
        out.append(group(dots, clip_path="url(#stubble-clip)"))
        # upper lip shadow
        out.append(ellipse(CX, (NOSE_Y + mtop) / 2 + 3, max(16.0, mw - 2), 6, fill=tint, opacity="0.28"))
    elif kind == "moustache":
        out.append(_moustache(t, mw, mtop, t.line))
    elif kind == "goatee":
        out.append(_moustache(t, mw, mtop, t.line))
        top = max(mbot + 4, c.geo.chin_y - 34)
        w = max(22.0, min(30.0, mw + 6))
        # the chin patch follows the chin's contour (grown a little, with a small tuft) under the mouth
        rim = [(x, y) for x, y in _beard_outline(c, 3.0, 9.0, MOUTH_Y) if abs(x - CX) <= w]
        rim = [(x, y + 5 * max(0.0, 1 - abs(x - CX) / 12)) for x, y in rim]
        lid = [(CX + w, rim[-1][1] - 4), (CX + w * 0.5, top + 1), (CX, top - 1), (CX - w * 0.5, top + 1)]
        lid.append((CX - w, rim[0][1] - 4))
        d = smooth(rim) + "L" + smooth(lid)[1:] + "Z"
        out.append(path(d, fill=t.base, stroke=t.line, stroke_width=2.8, stroke_linejoin="round"))
        cy = max(y for _, y in rim)
        for dx in (-9, 0, 9):
            out.append(
                path(
                    f"M{f(CX + dx)},{f(top + 7)}Q{f(CX + dx * 1.3 + 2)},{f((top + cy) / 2 + 2)} {f(CX + dx * 0.8)},{f(cy - 6)}",
                    fill="none",
                    stroke=t.shade if stroke == t.line else t.light,
                    stroke_width=2.2,
                    stroke_linecap="round",
                    opacity="0.7",
                )
            )
    return group(out)


# --- face marks (items in the "face" slot) -------------------------------------------------------------


def face_item(c: Ctx, item: str) -> str:
    sk = c.skin
    if item == "freckles":
        dots = []
        for s in (-1, 1):
            for dx, dy in ((-14, -4), (0, -8), (12, -2), (-6, 6), (8, 8)):
                dots.append(
                    circle(
                        CX + s * (CHEEK_DX - 6) + dx,
                        CHEEK_Y - 10 + dy,
                        2.3,
                        fill=color.shade(sk.base, 0.35),
                        opacity="0.8",
                    )
                )
        return group(dots)
    if item == "beauty_mark":
        ex, ey = c.geo.eyes[1]
        return circle(ex + 26, ey + 42, 3.2, fill=color.mix(sk.line, "#2a1a14", 0.5))
    if item == "fangs":
        w = MOUTH_HALF_WIDTH.get(c.expr.mouth, 18)
        x, y = CX - w * 0.55, MOUTH_Y + (2 if c.expr.mouth in ("smile", "cat", "tongue") else -3)
        return path(
            f"M{f(x - 5)},{f(y)}L{f(x + 5)},{f(y)}L{f(x)},{f(y + 10)}Z",
            fill="#ffffff",
            stroke=color.mix(sk.line, "#5a1624", 0.35),
            stroke_width=2,
            stroke_linejoin="round",
        )
    if item == "bandage":
        x, y = CX + CHEEK_DX + 6, CHEEK_Y - 16
        tape = "#f3d2a8"
        return group(
            [
                f'<rect x="{f(x - 22)}" y="{f(y - 8)}" width="44" height="16" rx="7" fill="{tape}" stroke="{color.outline(tape)}" stroke-width="2.5"/>',
                f'<rect x="{f(x - 8)}" y="{f(y - 8)}" width="16" height="16" fill="{color.shade(tape, 0.1)}"/>',
                circle(x - 3, y - 3, 1.2, fill=color.outline(tape)),
                circle(x + 3, y + 3, 1.2, fill=color.outline(tape)),
            ],
            transform=f"rotate(-20 {f(x)} {f(y)})",
        )
    return ""
