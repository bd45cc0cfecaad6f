"""Every catalog item, drawn at the anchors of :mod:`generation.chibi.geometry`."""

from __future__ import annotations

import math

from generation.chibi import color
from generation.chibi.context import Ctx
from generation.chibi.face import heart_path
from generation.chibi.geometry import (
    CHEEK_Y,
    COLLAR_Y,
    CRANIUM_CY,
    CRANIUM_RY,
    CX,
    EAR_Y,
    LINE,
    MOUTH_Y,
    OPEN_HATS,
    VIEW,
    Geometry,
    smooth,
)
from generation.chibi.outfit import _flower, _star5
from generation.chibi.svgkit import circle, clip, defs, ellipse, f, group, linear, path, rect, rrect

GOLD = "#f2c14e"


def _st(fill: str, w: float = LINE) -> dict[str, object]:
    return {"fill": fill, "stroke": color.outline(fill), "stroke_width": w, "stroke_linejoin": "round"}


def _dome(rim: float, hw: float, top: float, cx: float = CX) -> str:
    k = 0.56
    return (
        f"M{f(cx - hw)},{f(rim)}C{f(cx - hw)},{f(rim - (rim - top) * k)} {f(cx - hw * k)},{f(top)} {f(cx)},{f(top)}"
        f"C{f(cx + hw * k)},{f(top)} {f(cx + hw)},{f(rim - (rim - top) * k)} {f(cx + hw)},{f(rim)}Z"
    )


def hat(c: Ctx, item: str) -> str:
    g = c.geo
    rim, hw, cover = g.hat_rim_y, g.hat_half_w, g.hat_cover_top
    col = {
        "beanie": c.outfit.base if item == "beanie" else "",
        "witch_hat": "#4b3a78",
        "beret": "#d94452",
        "cap": c.outfit.base,
        "straw_hat": "#f2d48a",
        "top_hat": "#3a3346",
        "bandana": "#d94452",
        "santa_hat": "#e03a48",
    }.get(item, GOLD)
    t = color.Tone.of(col)
    out: list[str] = []
    if item == "beanie":
        top = min(rim - 80, cover - 8)
        out.append(path(_dome(rim, hw + 2, top), **_st(col)))
        ribs = "".join(
            f"M{f(CX + k * 22)},{f(rim - 10)}Q{f(CX + k * 18)},{f(top + 40)} {f(CX + k * 10)},{f(top + 12)}"
            for k in range(-6, 7)
        )
        out.append(defs(clip("beanie-c", path(_dome(rim, hw + 2, top)))))
        out.append(
            group([path(ribs, fill="none", stroke=t.shade, stroke_width=3)], clip_path="url(#beanie-c)")
        )
        out.append(
            f'<rect x="{f(CX - hw - 8)}" y="{f(rim - 26)}" width="{f(2 * hw + 16)}" height="38" rx="18" fill="{t.shade}" stroke="{t.line}" stroke-width="{LINE}"/>'
        )
        out.append(
            path(
                "".join(
                    f"M{f(CX + k * 14)},{f(rim - 20)}L{f(CX + k * 14)},{f(rim + 6)}" for k in range(-11, 12)
                ),
                stroke=t.deep,
                stroke_width=2.5,
                opacity="0.6",
            )
        )
        out.append(circle(CX, max(top - 8, 22.0), 22, **_st(color.light(col, 0.55))))
    elif item == "cap":
        top = min(rim - 92, cover - 6)
        out.append(path(_dome(rim, hw, top), **_st(col)))
        out.append(
            path(
                f"M{f(CX)},{f(top)}L{f(CX)},{f(rim - 4)}M{f(CX - hw * 0.55)},{f(top + 30)}Q{f(CX - 40)},{f(rim - 40)} {f(CX - 40)},{f(rim - 4)}M{f(CX + hw * 0.55)},{f(top + 30)}Q{f(CX + 40)},{f(rim - 40)} {f(CX + 40)},{f(rim - 4)}",
                fill="none",
                stroke=t.shade,
                stroke_width=3,
            )
        )
        out.append(
            path(
                f"M{f(CX - hw - 6)},{f(rim + 2)}Q{f(CX)},{f(rim - 26)} {f(CX + hw + 6)},{f(rim + 2)}Q{f(CX + hw * 0.7)},{f(rim + 38)} {f(CX)},{f(rim + 36)}Q{f(CX - hw * 0.7)},{f(rim + 38)} {f(CX - hw - 6)},{f(rim + 2)}Z",
                **_st(t.shade),
            )
        )
        out.append(circle(CX, top + 2, 8, **_st(t.shade, 3)))
        out.append(path(heart_path(CX, rim - 40, 30), fill="#ffffff", stroke=t.line, stroke_width=2.5))
    elif item == "witch_hat":
        tip_y = min(rim - 190, cover - 60)
        out.append(ellipse(CX, rim, hw + 56, 26, **_st(col)))
        cone = f"M{f(CX - hw + 24)},{f(rim - 4)}Q{f(CX - 60)},{f(rim - 80)} {f(CX - 10)},{f(tip_y + 60)}Q{f(CX + 30)},{f(tip_y + 10)} {f(CX + 90)},{f(tip_y)}Q{f(CX + 40)},{f(tip_y + 60)} {f(CX + 60)},{f(rim - 80)}Q{f(CX + hw - 40)},{f(rim - 40)} {f(CX + hw - 24)},{f(rim - 4)}Z"
        out.append(path(cone, **_st(col)))
        out.append(
            path(
                f"M{f(CX - hw + 30)},{f(rim - 14)}Q{f(CX)},{f(rim + 4)} {f(CX + hw - 30)},{f(rim - 14)}L{f(CX + hw - 40)},{f(rim - 44)}Q{f(CX)},{f(rim - 28)} {f(CX - hw + 44)},{f(rim - 44)}Z",
                **_st("#9b6ad6", 3.5),
            )
        )
        out.append(_star5(CX + 30, rim - 28, 12, GOLD))
    elif item == "beret":
        cx = CX + 18
        out.append(
            ellipse(cx, rim - 32, hw + 14, 46, **_st(col), transform=f"rotate(-8 {f(cx)} {f(rim - 32)})")
        )
        out.append(
            path(
                f"M{f(cx - hw + 10)},{f(rim - 10)}Q{f(cx)},{f(rim + 12)} {f(cx + hw - 10)},{f(rim - 30)}",
                fill="none",
                stroke=t.shade,
                stroke_width=6,
                stroke_linecap="round",
            )
        )
        out.append(
            path(
                f"M{f(cx - 4)},{f(rim - 78)}L{f(cx + 2)},{f(rim - 96)}",
                stroke=t.line,
                stroke_width=7,
                stroke_linecap="round",
            )
        )
        out.append(
            ellipse(
                cx - 50,
                rim - 50,
                40,
                14,
                fill=t.light,
                opacity="0.6",
                transform=f"rotate(-10 {f(cx - 50)} {f(rim - 50)})",
            )
        )
    elif item == "straw_hat":
        top = min(rim - 76, cover - 6)
        out.append(ellipse(CX, rim, hw + 76, 30, **_st(col)))
        out.append(ellipse(CX, rim - 6, hw + 50, 16, fill=t.shade, opacity="0.6"))
        out.append(path(_dome(rim - 6, hw - 26, top), **_st(col)))
        out.append(
            path(
                f"M{f(CX - hw + 26)},{f(rim - 12)}Q{f(CX)},{f(rim + 2)} {f(CX + hw - 26)},{f(rim - 12)}L{f(CX + hw - 30)},{f(rim - 36)}Q{f(CX)},{f(rim - 22)} {f(CX - hw + 30)},{f(rim - 36)}Z",
                **_st("#d94452", 3.5),
            )
        )
        weave = "".join(
            f"M{f(CX + k * 30)},{f(rim - 4)}L{f(CX + k * 36)},{f(rim + 20)}" for k in range(-6, 7)
        )
        out.append(path(weave, stroke=t.shade, stroke_width=2.5))
    elif item == "top_hat":
        top = min(rim - 150, cover - 40)
        w = hw * 0.62
        out.append(ellipse(CX, rim - 4, hw + 16, 20, **_st(col)))
        out.append(
            path(
                f"M{f(CX - w)},{f(rim - 8)}L{f(CX - w - 8)},{f(top)}Q{f(CX)},{f(top - 14)} {f(CX + w + 8)},{f(top)}L{f(CX + w)},{f(rim - 8)}Q{f(CX)},{f(rim + 6)} {f(CX - w)},{f(rim - 8)}Z",
                **_st(col),
            )
        )
        out.append(
            path(
                f"M{f(CX - w - 2)},{f(rim - 30)}Q{f(CX)},{f(rim - 16)} {f(CX + w + 2)},{f(rim - 30)}L{f(CX + w + 4)},{f(rim - 52)}Q{f(CX)},{f(rim - 38)} {f(CX - w - 4)},{f(rim - 52)}Z",
                **_st("#b0374f", 3.5),
            )
        )
        out.append(
            path(
                f"M{f(CX - w + 14)},{f(top + 16)}L{f(CX - w + 10)},{f(rim - 60)}",
                stroke=t.light,
                stroke_width=6,
                stroke_linecap="round",
                opacity="0.6",
            )
        )
    elif item == "santa_hat":
        top = min(rim - 100, cover - 10)
        d = f"M{f(CX - hw)},{f(rim)}C{f(CX - hw)},{f(top - 10)} {f(CX + 80)},{f(top - 30)} {f(CX + hw + 40)},{f(rim - 10)}L{f(CX + hw)},{f(rim)}Z"
        out.append(path(d, **_st(col)))
        out.append(
            f'<rect x="{f(CX - hw - 10)}" y="{f(rim - 22)}" width="{f(2 * hw + 20)}" height="38" rx="19" fill="#fbfaf7" stroke="{color.outline("#e8e4ea")}" stroke-width="{LINE}"/>'
        )
        out.append(
            circle(
                CX + hw + 40, rim - 4, 24, fill="#fbfaf7", stroke=color.outline("#e8e4ea"), stroke_width=LINE
            )
        )
    elif item == "bandana":
        y = rim
        band = f"M{f(CX - hw + 2)},{f(y + 10)}Q{f(CX)},{f(y - 50)} {f(CX + hw - 2)},{f(y + 10)}L{f(CX + hw - 6)},{f(y - 22)}Q{f(CX)},{f(y - 84)} {f(CX - hw + 6)},{f(y - 22)}Z"
        out.append(path(band, **_st(col)))
        out.append(defs(clip("bandana-c", path(band))))
        dots = "".join(
            f"M{f(CX + k * 30 - 4)},{f(y - 30 - 10 * math.cos(k / 5))}a4,4 0 1,0 8,0a4,4 0 1,0 -8,0"
            for k in range(-5, 6)
        )
        out.append(group([path(dots, fill="#ffffff")], clip_path="url(#bandana-c)"))
        kx = CX + hw - 4
        out.append(
            path(
                f"M{f(kx)},{f(y - 6)}L{f(kx + 40)},{f(y + 20)}L{f(kx + 22)},{f(y + 34)}Z M{f(kx)},{f(y - 6)}L{f(kx + 44)},{f(y - 16)}L{f(kx + 40)},{f(y + 4)}Z",
                **_st(col, 3.5),
            )
        )
    elif item == "crown":
        base = g.hair_top + 26
        w = 62
        d = f"M{f(CX - w)},{f(base)}L{f(CX - w - 6)},{f(base - 56)}L{f(CX - w / 2)},{f(base - 30)}L{f(CX)},{f(base - 70)}L{f(CX + w / 2)},{f(base - 30)}L{f(CX + w + 6)},{f(base - 56)}L{f(CX + w)},{f(base)}Q{f(CX)},{f(base + 8)} {f(CX - w)},{f(base)}Z"
        out.append(defs(linear("crown-g", 0, base - 70, 0, base, [(0, "#ffe58a", 1), (1, "#e8a93a", 1)])))
        out.append(
            path(d, fill="url(#crown-g)", stroke=color.outline(GOLD), stroke_width=4, stroke_linejoin="round")
        )
        for x, y, gc in (
            (CX, base - 16, "#e0455a"),
            (CX - 36, base - 12, "#4a7fd9"),
            (CX + 36, base - 12, "#3fb67a"),
        ):
            out.append(circle(x, y, 7, **_st(gc, 2.5)))
        for x, y in ((CX - w - 6, base - 56), (CX, base - 70), (CX + w + 6, base - 56)):
            out.append(circle(x, y, 6, **_st("#fff3c4", 2.5)))
    elif item == "flower_crown":
        out.append(flower_crown(c))
    elif item == "halo":
        y = g.hair_top - 26
        out.append(ellipse(CX, y, 84, 20, fill="none", stroke=color.outline(GOLD), stroke_width=15))
        out.append(ellipse(CX, y, 84, 20, fill="none", stroke="#ffe58a", stroke_width=9))
    return group(out)


def elf_ears(c: Ctx) -> str:
    """Long pointed ears in place of the human ones, reaching out and up past the hair at the sides."""
    sk = c.skin
    g = c.geo
    out: list[str] = []
    long_hair = g.hair_style in ("bob", "hime", "long_straight", "long_wavy")
    for s in (-1, 1):
        x = CX + s * (g.face_x(EAR_Y) - 4)
        y = EAR_Y + 6
        tip = (x + s * 82, y - 74)
        d = (
            f"M{f(x)},{f(y - 26)}"
            f"C{f(x + s * 26)},{f(y - 40)} {f(tip[0] - s * 30)},{f(tip[1] + 18)} {f(tip[0])},{f(tip[1])}"
            f"C{f(tip[0] - s * 14)},{f(tip[1] + 40)} {f(x + s * 40)},{f(y + 26)} {f(x + s * 6)},{f(y + 30)}"
            f"Q{f(x - s * 6)},{f(y + 4)} {f(x)},{f(y - 26)}Z"
        )
        inner = (
            f"M{f(x + s * 8)},{f(y - 14)}"
            f"C{f(x + s * 26)},{f(y - 26)} {f(tip[0] - s * 34)},{f(tip[1] + 26)} {f(tip[0] - s * 12)},{f(tip[1] + 14)}"
            f"C{f(tip[0] - s * 28)},{f(tip[1] + 40)} {f(x + s * 32)},{f(y + 12)} {f(x + s * 10)},{f(y + 16)}Z"
        )
        out.append(path(d, fill=sk.base, stroke=sk.line, stroke_width=LINE * 0.8, stroke_linejoin="round"))
        out.append(path(inner, fill=sk.shade))
        out.append(
            path(
                f"M{f(x + s * 16)},{f(y - 14)}Q{f(x + s * 40)},{f(y - 30)} {f(tip[0] - s * 22)},{f(tip[1] + 20)}",
                fill="none",
                stroke=sk.light,
                stroke_width=3,
                stroke_linecap="round",
                opacity="0.8",
            )
        )
        if long_hair:
            # a lock of hair falls over the ear's root, so the ear comes out through the hair
            lx = x - s * 2
            lock = (
                f"M{f(lx - s * 16)},{f(y - 46)}Q{f(lx + s * 22)},{f(y - 20)} {f(lx + s * 10)},{f(y + 40)}"
                f"Q{f(lx - s * 4)},{f(y + 10)} {f(lx - s * 20)},{f(y - 20)}Z"
            )
            out.append(
                path(lock, fill=c.hair.base, stroke=c.hair.line, stroke_width=3.5, stroke_linejoin="round")
            )
    return group(out)


FLOWER_COLORS = (
    ("#ffb3c9", "#f2c14e"),
    ("#fff7fa", "#f2c14e"),
    ("#ffd866", "#e8903a"),
    ("#c9b5ff", "#fff3c4"),
)


def flower_crown(c: Ctx) -> str:
    """A wreath of small flowers and leaves around the head, seen a little from above."""
    g = c.geo
    rx = g.hat_half_w - 14 if g.hair_style != "afro" else g.hat_half_w - 30
    top = max(g.hair_top, 84.0) if g.hair_style == "bun" else g.hair_top
    cy = top + (52 if g.hair_style != "afro" else 60)
    ry = 26.0
    leaf = "#6bbf72"
    lt = color.Tone.of(leaf)
    out: list[str] = []
    # the far side of the wreath: a vine with leaves, behind the flowers
    back = f"M{f(CX - rx)},{f(cy)}C{f(CX - rx)},{f(cy - ry * 1.3)} {f(CX + rx)},{f(cy - ry * 1.3)} {f(CX + rx)},{f(cy)}"
    out.append(path(back, fill="none", stroke=lt.line, stroke_width=9, stroke_linecap="round"))
    out.append(path(back, fill="none", stroke=lt.shade, stroke_width=5, stroke_linecap="round"))
    n = 9
    spots = []
    for i in range(n):
        a = math.pi * (1.0 - i / (n - 1))
        spots.append((CX + rx * math.cos(a), cy + ry * math.sin(a) * 0.9))
    for i, (x, y) in enumerate(spots[:-1]):
        nx_, ny_ = spots[i + 1]
        mx, my = (x + nx_) / 2, (y + ny_) / 2 + 8
        ang = math.degrees(math.atan2(ny_ - y, nx_ - x))
        out.append(
            ellipse(mx, my, 15, 7, transform=f"rotate({f(ang + 25)} {f(mx)} {f(my)})", **_st(leaf, 2.5))
        )
    for i, (x, y) in enumerate(spots):
        petal, centre = FLOWER_COLORS[i % len(FLOWER_COLORS)]
        r = 14.0 if i % 2 == 0 else 11.0
        petals = [
            circle(
                x + r * 0.75 * math.cos(k * 2 * math.pi / 5 + i),
                y + r * 0.75 * math.sin(k * 2 * math.pi / 5 + i),
                r * 0.62,
                **_st(petal, 2.2),
            )
            for k in range(5)
        ]
        out.extend(petals)
        out.append(circle(x, y, r * 0.4, **_st(centre, 2)))
    return group(out)


def animal_ears(c: Ctx, item: str) -> str:
    if item == "elf_ears":
        return elf_ears(c)
    (lx, ly), (rx, ry) = c.geo.animal_ear_bases()
    fur = c.spec.hair.color or "#7a4e34"
    if c.geo.hair_style == "bald":
        fur = "#f2c9a0" if item != "bunny_ears" else fur
    if item == "bunny_ears":
        fur = "#fbfaf7"
    ft = color.Tone.of(fur)
    inner = "#ffb3c6"
    out: list[str] = []
    for s, (bx, by) in ((-1, (lx, ly)), (1, (rx, ry))):
        tilt = s * 18
        tr = f"rotate({tilt} {f(bx)} {f(by)})"
        if item in ("cat_ears", "fox_ears"):
            h, w = (78, 40) if item == "cat_ears" else (96, 46)
            d = f"M{f(bx - w)},{f(by + 10)}Q{f(bx - w * 0.6)},{f(by - h * 0.6)} {f(bx - 4)},{f(by - h)}Q{f(bx + w * 0.7)},{f(by - h * 0.5)} {f(bx + w)},{f(by + 10)}Z"
            di = f"M{f(bx - w * 0.55)},{f(by + 4)}Q{f(bx - w * 0.35)},{f(by - h * 0.45)} {f(bx - 4)},{f(by - h * 0.72)}Q{f(bx + w * 0.4)},{f(by - h * 0.4)} {f(bx + w * 0.55)},{f(by + 4)}Z"
            out.append(
                group(
                    [path(d, **_st(fur)), path(di, fill=inner if item == "cat_ears" else "#fbfaf7")],
                    transform=tr,
                )
            )
            if item == "fox_ears":
                out.append(
                    group(
                        [
                            path(
                                f"M{f(bx - 14)},{f(by - h * 0.78)}Q{f(bx - 4)},{f(by - h - 2)} {f(bx + 8)},{f(by - h * 0.8)}Z",
                                fill="#3a2a2a",
                            )
                        ],
                        transform=tr,
                    )
                )
        elif item == "bunny_ears":
            d = f"M{f(bx - 20)},{f(by + 10)}C{f(bx - 36)},{f(by - 90)} {f(bx - 24)},{f(by - 150)} {f(bx)},{f(by - 150)}C{f(bx + 24)},{f(by - 150)} {f(bx + 34)},{f(by - 90)} {f(bx + 20)},{f(by + 10)}Z"
            di = f"M{f(bx - 9)},{f(by)}C{f(bx - 20)},{f(by - 80)} {f(bx - 12)},{f(by - 128)} {f(bx)},{f(by - 128)}C{f(bx + 12)},{f(by - 128)} {f(bx + 18)},{f(by - 80)} {f(bx + 9)},{f(by)}Z"
            out.append(
                group(
                    [path(d, **_st(fur)), path(di, fill=inner)], transform=f"rotate({s * 12} {f(bx)} {f(by)})"
                )
            )
        elif item == "bear_ears":
            out.append(circle(bx, by - 22, 34, **_st(fur)))
            out.append(circle(bx, by - 20, 18, fill=color.mix(fur, inner, 0.5)))
        elif item == "horns":
            hc = "#7d2e4f"
            d = f"M{f(bx - 16)},{f(by + 6)}Q{f(bx - 14)},{f(by - 40)} {f(bx + s * 30)},{f(by - 70)}Q{f(bx + s * 4)},{f(by - 34)} {f(bx + 16)},{f(by + 6)}Z"
            out.append(path(d, **_st(hc, 4)))
            out.append(
                path(
                    f"M{f(bx - 8)},{f(by - 16)}Q{f(bx + s * 6)},{f(by - 24)} {f(bx + 10)},{f(by - 18)}",
                    fill="none",
                    stroke=color.light(hc, 0.4),
                    stroke_width=3,
                )
            )
        if item != "horns" and c.geo.hair_style not in ("bald", "buzz"):
            # a tuft of hair over the ear's base so it grows out of the hair
            tuft = f"M{f(bx - 44)},{f(by + 16)}Q{f(bx - 20)},{f(by - 6)} {f(bx)},{f(by + 4)}Q{f(bx + 20)},{f(by - 8)} {f(bx + 44)},{f(by + 14)}Q{f(bx)},{f(by + 30)} {f(bx - 44)},{f(by + 16)}Z"
            out.append(
                path(
                    tuft,
                    fill=c.hair.base,
                    stroke=c.hair.line,
                    stroke_width=3,
                    stroke_linejoin="round",
                    transform=tr,
                )
            )
    del ft
    return group(out)


def hair_accessory(c: Ctx, item: str) -> str:
    g = c.geo
    (_lx, _ly), (rx, ry) = g.animal_ear_bases()
    if g.hat is None or g.hat in OPEN_HATS:
        x, y = rx + 6, ry + 24
    else:
        x, y = CX + g.hat_half_w - 10, g.hat_rim_y + 30
    if item == "bow":
        col = "#ff6f96"
        d = f"M{f(x)},{f(y)}C{f(x - 30)},{f(y - 40)} {f(x - 54)},{f(y - 10)} {f(x - 40)},{f(y + 16)}C{f(x - 30)},{f(y + 26)} {f(x - 10)},{f(y + 10)} {f(x)},{f(y)}Z M{f(x)},{f(y)}C{f(x + 30)},{f(y - 40)} {f(x + 54)},{f(y - 10)} {f(x + 40)},{f(y + 16)}C{f(x + 30)},{f(y + 26)} {f(x + 10)},{f(y + 10)} {f(x)},{f(y)}Z"
        return group(
            [path(d, **_st(col, 4)), circle(x, y, 9, **_st(color.shade(col, 0.1), 3.5))],
            transform=f"rotate(20 {f(x)} {f(y)})",
        )
    if item == "flower":
        x = 2 * CX - x
        petals = [
            circle(
                x + 16 * math.cos(a * 2 * math.pi / 5 - 1.57),
                y + 16 * math.sin(a * 2 * math.pi / 5 - 1.57),
                13,
                **_st("#ffd1e1", 3),
            )
            for a in range(5)
        ]
        return group([*petals, circle(x, y, 9, **_st(GOLD, 3))])
    if item == "hair_clip":
        cx_, cy_ = CX + 92, 186.0
        col = "#8fd3ff"
        return group(
            [
                f'<rect x="{f(cx_ - 24)}" y="{f(cy_ - 7)}" width="48" height="14" rx="7" fill="{col}" stroke="{color.outline(col)}" stroke-width="3.5"/>',
                _star5(cx_ + 22, cy_ - 2, 12, GOLD),
            ],
            transform=f"rotate(-28 {f(cx_)} {f(cy_)})",
        )
    return ""


def headphones(c: Ctx) -> str:
    g = c.geo
    _, (rx_, _ry) = g.ears
    col = "#5b6cff"
    t = color.Tone.of(col)
    top = g.hair_top - 6 if g.hat is None else (g.hat_cover_top if g.hat in OPEN_HATS else g.hair_top)
    w = max(abs(rx_ - CX) + 26, g.hat_half_w + 14) if g.hair_style != "afro" else g.hat_half_w + 30
    out = []
    band = f"M{f(CX - w + 10)},{f(EAR_Y - 20)}C{f(CX - w)},{f(top - 40)} {f(CX + w)},{f(top - 40)} {f(CX + w - 10)},{f(EAR_Y - 20)}"
    if g.hat is None or g.hat in OPEN_HATS:
        out.append(path(band, fill="none", stroke=t.line, stroke_width=18, stroke_linecap="round"))
        out.append(path(band, fill="none", stroke=col, stroke_width=11, stroke_linecap="round"))
    for s in (-1, 1):
        x = CX + s * (w - 8)
        out.append(rrect(x - 22, EAR_Y - 44, 44, 84, 20, **_st(col)))
        out.append(
            f'<rect x="{f(x - 10)}" y="{f(EAR_Y - 30)}" width="20" height="56" rx="10" fill="{t.light}"/>'
        )
    return group(out)


def glasses(c: Ctx, item: str) -> str:
    (lx, ly), (rx, _ry) = c.geo.eyes
    frame = "#4a3a5a" if item != "round_glasses" else "#8a5a3a"
    out: list[str] = []
    if item == "eyepatch":
        band = f"M{f(CX - 160)},{f(ly - 60)}L{f(CX + 150)},{f(ly - 110)}"
        out.append(path(band, stroke="#2b2630", stroke_width=7, stroke_linecap="round"))
        out.append(
            path(
                f"M{f(lx - 34)},{f(ly - 26)}Q{f(lx)},{f(ly - 40)} {f(lx + 34)},{f(ly - 26)}Q{f(lx + 36)},{f(ly + 30)} {f(lx)},{f(ly + 40)}Q{f(lx - 36)},{f(ly + 30)} {f(lx - 34)},{f(ly - 26)}Z",
                **_st("#2b2630", 4),
            )
        )
        out.append(
            path(
                f"M{f(lx - 14)},{f(ly - 20)}Q{f(lx)},{f(ly - 26)} {f(lx + 14)},{f(ly - 20)}",
                fill="none",
                stroke="#5a5066",
                stroke_width=3,
            )
        )
        return group(out)
    lens_fill = "none"
    if item == "sunglasses":
        out.append(defs(linear("sun-g", 0, ly - 30, 0, ly + 30, [(0, "#3a3550", 1), (1, "#6a5a8a", 1)])))
        lens_fill = "url(#sun-g)"
    for x in (lx, rx):
        if item == "round_glasses":
            out.append(circle(x, ly + 2, 40, fill="#ffffff", opacity="0.18"))
            out.append(circle(x, ly + 2, 40, fill="none", stroke=frame, stroke_width=5.5))
        else:
            rx_ = 44
            h = 32 if item == "square_glasses" else 30
            out.append(
                f'<rect x="{f(x - rx_)}" y="{f(ly - h + 2)}" width="{f(2 * rx_)}" height="{f(2 * h)}" rx="{14 if item == "square_glasses" else 20}" fill="{lens_fill if item == "sunglasses" else "#ffffff"}" fill-opacity="{1 if item == "sunglasses" else 0.18}" stroke="{frame if item != "sunglasses" else "#2b2630"}" stroke-width="5.5"/>'
            )
            if item == "sunglasses":
                out.append(
                    path(
                        f"M{f(x - 28)},{f(ly - 12)}L{f(x - 12)},{f(ly - 24)}M{f(x - 30)},{f(ly + 2)}L{f(x - 2)},{f(ly - 22)}",
                        stroke="#ffffff",
                        stroke_width=4,
                        stroke_linecap="round",
                        opacity="0.55",
                    )
                )
    gap = 40 if item == "round_glasses" else 44
    out.append(
        path(
            f"M{f(lx + gap)},{f(ly - 4)}Q{f(CX)},{f(ly - 16)} {f(rx - gap)},{f(ly - 4)}",
            fill="none",
            stroke=frame if item != "sunglasses" else "#2b2630",
            stroke_width=5,
            stroke_linecap="round",
        )
    )
    hx = c.geo.face_x(ly) - 2
    out.append(
        path(
            f"M{f(lx - gap)},{f(ly - 6)}L{f(CX - hx)},{f(ly - 12)}M{f(rx + gap)},{f(ly - 6)}L{f(CX + hx)},{f(ly - 12)}",
            stroke=frame if item != "sunglasses" else "#2b2630",
            stroke_width=5,
            stroke_linecap="round",
        )
    )
    return group(out)


def face_mask(c: Ctx) -> str:
    y0 = CHEEK_Y - 8
    hx = c.geo.face_x(y0 + 20) - 6
    chin = c.geo.chin_y
    d = f"M{f(CX - hx)},{f(y0 + 8)}Q{f(CX)},{f(y0 - 16)} {f(CX + hx)},{f(y0 + 8)}Q{f(CX + hx - 4)},{f(chin - 10)} {f(CX)},{f(chin - 2)}Q{f(CX - hx + 4)},{f(chin - 10)} {f(CX - hx)},{f(y0 + 8)}Z"
    col = "#eef4fb"
    t = color.Tone.of(col)
    pleats = "".join(
        f"M{f(CX - hx + 14)},{f(y0 + 22 + k * 14)}Q{f(CX)},{f(y0 + 14 + k * 14)} {f(CX + hx - 14)},{f(y0 + 22 + k * 14)}"
        for k in range(3)
    )
    return group(
        [
            path(
                f"M{f(CX - hx)},{f(y0 + 12)}L{f(CX - hx - 20)},{f(EAR_Y)}M{f(CX + hx)},{f(y0 + 12)}L{f(CX + hx + 20)},{f(EAR_Y)}",
                stroke="#dfe6ef",
                stroke_width=4,
            ),
            path(d, fill=col, stroke=color.outline("#c8d2e0"), stroke_width=4, stroke_linejoin="round"),
            path(pleats, fill="none", stroke=t.shade, stroke_width=2.5),
        ]
    )


def earrings(c: Ctx) -> str:
    out = []
    for x, y in c.geo.ears:
        out.append(
            path(f"M{f(x)},{f(y + 20)}L{f(x)},{f(y + 30)}", stroke=color.outline(GOLD), stroke_width=2.5)
        )
        out.append(circle(x, y + 38, 8, fill="none", stroke=color.outline(GOLD), stroke_width=6))
        out.append(circle(x, y + 38, 8, fill="none", stroke=GOLD, stroke_width=3))
        out.append(circle(x, y + 21, 4, **_st("#8fe0ff", 2)))
    return group(out)


def neckwear(c: Ctx, item: str) -> str:
    y = COLLAR_Y
    if item == "scarf":
        col = color.mix(c.outfit.base, "#d94452", 0.6) if c.spec.outfit.color != "#d94452" else "#f2c14e"
        t = color.Tone.of(col)
        band = f"M{f(CX - 70)},{f(y - 30)}Q{f(CX)},{f(y - 6)} {f(CX + 70)},{f(y - 30)}L{f(CX + 78)},{f(y + 4)}Q{f(CX)},{f(y + 34)} {f(CX - 78)},{f(y + 4)}Z"
        tail = f"M{f(CX + 30)},{f(y + 4)}L{f(CX + 66)},{f(y + 4)}L{f(CX + 70)},{f(y + 96)}L{f(CX + 34)},{f(y + 100)}Z"
        stripes = "".join(
            f"M{f(CX + 32 + k * 0.4)},{f(y + 30 + k * 22)}L{f(CX + 68)},{f(y + 30 + k * 22)}"
            for k in range(3)
        )
        return group(
            [
                path(tail, **_st(col, 4)),
                path(stripes, stroke=t.light, stroke_width=6),
                path(band, **_st(col, 4)),
                path(
                    f"M{f(CX - 60)},{f(y - 14)}Q{f(CX)},{f(y + 12)} {f(CX + 60)},{f(y - 14)}",
                    fill="none",
                    stroke=t.shade,
                    stroke_width=4,
                ),
            ]
        )
    if item == "bow_tie":
        col = "#d94452" if c.outfit.base != "#d94452" else "#2c3b6b"
        d = f"M{f(CX)},{f(y + 8)}L{f(CX - 30)},{f(y - 8)}L{f(CX - 30)},{f(y + 24)}Z M{f(CX)},{f(y + 8)}L{f(CX + 30)},{f(y - 8)}L{f(CX + 30)},{f(y + 24)}Z"
        return group([path(d, **_st(col, 3.5)), circle(CX, y + 8, 7, **_st(color.shade(col, 0.1), 3))])
    if item == "necklace":
        return group(
            [
                path(
                    f"M{f(CX - 34)},{f(y - 16)}Q{f(CX)},{f(y + 30)} {f(CX + 34)},{f(y - 16)}",
                    fill="none",
                    stroke=GOLD,
                    stroke_width=3,
                ),
                path(heart_path(CX, y + 18, 18), **_st("#ff6f96", 2.5)),
            ]
        )
    return ""


HIJAB_GROW = 16.0  # how far the wrapped fabric stands off the skull


def _hijab_head_x(g: Geometry, y: float) -> float:
    """Half width of the head (cranium above the equator, face contour below) at height y."""
    if y > CRANIUM_CY:
        return g.face_x(y)
    return g.crx * math.sqrt(max(0.0, 1 - ((CRANIUM_CY - y) / CRANIUM_RY) ** 2))


def hijab(c: Ctx) -> str:
    """A soft wrap: snug over the skull (hair and ears covered), framing the face in an oval opening that
    closes under the chin, then draping over the neck onto the shoulders, with a gentle fold line."""
    g = c.geo
    # the scarf matches the outfit but stands apart from it: lighter on a dark/mid outfit, deeper on a pale one
    ob = c.outfit.base
    col = color.light(ob, 0.5) if color.luminance(ob) < 0.62 else color.shade(ob, 0.2)
    t = color.Tone.of(col)
    grow = HIJAB_GROW
    rx = g.crx + grow
    top = CRANIUM_CY - CRANIUM_RY - grow
    k, kr = 0.5523 * rx, 0.5523 * (CRANIUM_RY + grow)
    jx = g.face_x(g.jaw_y) + grow + 4
    # outer silhouette: dome over the skull, down the cheeks, flaring over the shoulders to a rounded hem
    outer = (
        f"M{f(CX)},{f(top)}"
        f"C{f(CX + k)},{f(top)} {f(CX + rx)},{f(CRANIUM_CY - kr)} {f(CX + rx)},{f(CRANIUM_CY)}"
        f"C{f(CX + rx)},{f(CRANIUM_CY + 50)} {f(CX + jx + 4)},{f(g.jaw_y - 30)} {f(CX + jx)},{f(g.jaw_y + 10)}"
        f"C{f(CX + jx - 4)},{f(COLLAR_Y - 14)} {f(CX + 136)},{f(COLLAR_Y + 2)} {f(CX + 148)},{f(COLLAR_Y + 32)}"
        f"C{f(CX + 146)},{f(COLLAR_Y + 54)} {f(CX + 72)},{f(COLLAR_Y + 66)} {f(CX)},{f(COLLAR_Y + 64)}"
        f"C{f(CX - 72)},{f(COLLAR_Y + 66)} {f(CX - 146)},{f(COLLAR_Y + 54)} {f(CX - 148)},{f(COLLAR_Y + 32)}"
        f"C{f(CX - 136)},{f(COLLAR_Y + 2)} {f(CX - jx + 4)},{f(COLLAR_Y - 14)} {f(CX - jx)},{f(g.jaw_y + 10)}"
        f"C{f(CX - jx - 4)},{f(g.jaw_y - 30)} {f(CX - rx)},{f(CRANIUM_CY + 50)} {f(CX - rx)},{f(CRANIUM_CY)}"
        f"C{f(CX - rx)},{f(CRANIUM_CY - kr)} {f(CX - k)},{f(top)} {f(CX)},{f(top)}Z"
    )
    # the face opening: a soft arc over the forehead (hairline covered), down the cheeks just inside the
    # face outline (ears covered), closing under the chin
    fy, bottom = 170.0, g.chin_y + 3
    right = []
    for i in range(0, 25):
        a = math.pi * i / 24
        y = fy + (bottom - fy) * (1 - math.cos(a)) / 2
        hx = max(0.0, _hijab_head_x(g, y) - 7)
        right.append((CX + hx * math.sin(a) ** 0.5, y))
    ring = right + [(2 * CX - x, y) for x, y in reversed(right[1:-1])]
    hole = smooth(ring, closed=True)
    band = smooth([(2 * CX - x, y) for x, y in right[9::-1]] + right[1:10])
    # the wrap: one side crosses under the chin and over the other shoulder; a soft shade under the chin
    fold = (
        f"M{f(CX - jx + 10)},{f(g.jaw_y + 16)}C{f(CX - 60)},{f(bottom + 34)} {f(CX + 40)},{f(COLLAR_Y + 12)}"
        f" {f(CX + 112)},{f(COLLAR_Y + 44)}"
    )
    fold2 = f"M{f(CX + jx - 6)},{f(g.jaw_y + 30)}Q{f(CX + 100)},{f(COLLAR_Y + 4)} {f(CX + 132)},{f(COLLAR_Y + 22)}"
    under_chin = (
        f"M{f(CX - 60)},{f(bottom + 2)}Q{f(CX)},{f(bottom + 26)} {f(CX + 60)},{f(bottom + 2)}"
        f"Q{f(CX)},{f(bottom + 12)} {f(CX - 60)},{f(bottom + 2)}Z"
    )
    return group(
        [
            path(
                outer + hole,
                fill=col,
                stroke=t.line,
                stroke_width=LINE,
                fill_rule="evenodd",
                stroke_linejoin="round",
            ),
            path(band, fill="none", stroke=t.light, stroke_width=5, stroke_linecap="round", opacity="0.8"),
            path(under_chin, fill=t.shade),
            path(fold, fill="none", stroke=t.shade, stroke_width=5, stroke_linecap="round"),
            path(fold2, fill="none", stroke=t.shade, stroke_width=4, stroke_linecap="round", opacity="0.8"),
            path(
                f"M{f(CX - rx + 22)},{f(CRANIUM_CY - 40)}Q{f(CX - rx + 14)},{f(CRANIUM_CY + 30)} {f(CX - jx + 14)},{f(g.jaw_y)}",
                fill="none",
                stroke=t.light,
                stroke_width=4,
                stroke_linecap="round",
                opacity="0.6",
            ),
            circle(CX + jx - 12, g.jaw_y + 22, 5.5, **_st("#f2c14e", 2.2)),
        ]
    )


def wings(c: Ctx, item: str) -> str:
    out = []
    for s in (-1, 1):
        bx, by = CX + s * 110, 420.0
        if item == "angel_wings":
            col = "#fbfaf7"
            d = (
                f"M{f(bx)},{f(by)}C{f(bx + s * 40)},{f(by - 110)} {f(bx + s * 110)},{f(by - 150)} {f(bx + s * 140)},{f(by - 130)}"
                f"Q{f(bx + s * 150)},{f(by - 100)} {f(bx + s * 120)},{f(by - 80)}Q{f(bx + s * 148)},{f(by - 60)} {f(bx + s * 112)},{f(by - 36)}"
                f"Q{f(bx + s * 130)},{f(by - 10)} {f(bx + s * 90)},{f(by - 2)}Q{f(bx + s * 96)},{f(by + 26)} {f(bx + s * 50)},{f(by + 20)}Z"
            )
            out.append(
                path(d, fill=col, stroke=color.outline("#d8d4e8"), stroke_width=LINE, stroke_linejoin="round")
            )
            out.append(
                path(
                    f"M{f(bx + s * 30)},{f(by - 50)}Q{f(bx + s * 70)},{f(by - 90)} {f(bx + s * 110)},{f(by - 104)}M{f(bx + s * 30)},{f(by - 20)}Q{f(bx + s * 70)},{f(by - 50)} {f(bx + s * 100)},{f(by - 60)}",
                    fill="none",
                    stroke="#d8d4e8",
                    stroke_width=3.5,
                    stroke_linecap="round",
                )
            )
        else:
            col = "#5a3d7a"
            d = (
                f"M{f(bx)},{f(by)}L{f(bx + s * 60)},{f(by - 120)}L{f(bx + s * 150)},{f(by - 140)}"
                f"Q{f(bx + s * 130)},{f(by - 90)} {f(bx + s * 150)},{f(by - 50)}Q{f(bx + s * 116)},{f(by - 60)} {f(bx + s * 106)},{f(by - 20)}"
                f"Q{f(bx + s * 80)},{f(by - 40)} {f(bx + s * 60)},{f(by + 6)}Z"
            )
            out.append(path(d, **_st(col)))
            out.append(
                path(
                    f"M{f(bx + s * 60)},{f(by - 118)}L{f(bx + s * 102)},{f(by - 22)}M{f(bx + s * 60)},{f(by - 118)}L{f(bx + s * 146)},{f(by - 54)}",
                    stroke=color.light(col, 0.35),
                    stroke_width=3,
                )
            )
    return group(out)


def held(c: Ctx, item: str) -> str:
    sk = c.skin
    out = []
    if item == "magic_wand":
        x0, y0, x1, y1 = CX + 110, VIEW - 10, CX + 150, 360.0
        out.append(
            path(
                f"M{f(x0)},{f(y0)}L{f(x1)},{f(y1)}",
                stroke=color.outline("#f7d84a"),
                stroke_width=12,
                stroke_linecap="round",
            )
        )
        out.append(
            path(
                f"M{f(x0)},{f(y0)}L{f(x1)},{f(y1)}", stroke="#ffffff", stroke_width=6, stroke_linecap="round"
            )
        )
        out.append(_star5(x1 + 4, y1 - 22, 34, "#ffd84a"))
        out.append(circle(x1 - 30, y1 - 50, 4, fill="#ffffff"))
        out.append(_star5(x1 + 44, y1 + 6, 8, "#ff9ab6"))
        out.append(ellipse(x0 + 10, y0 - 40, 26, 22, fill=sk.base, stroke=sk.line, stroke_width=4))
    elif item == "boba_tea":
        x, y = CX - 120, 440.0
        cup = f"M{f(x - 40)},{f(y - 60)}L{f(x + 40)},{f(y - 60)}L{f(x + 32)},{f(y + 60)}Q{f(x)},{f(y + 70)} {f(x - 32)},{f(y + 60)}Z"
        tea = "#e9c9a3"
        out.append(
            path(
                f"M{f(x + 6)},{f(y - 60)}L{f(x + 24)},{f(y - 110)}",
                stroke="#ff6f96",
                stroke_width=10,
                stroke_linecap="round",
            )
        )
        out.append(path(cup, fill=tea, stroke=color.outline(tea), stroke_width=LINE, stroke_linejoin="round"))
        out.append(
            ellipse(x, y - 60, 40, 10, fill=color.light(tea, 0.4), stroke=color.outline(tea), stroke_width=4)
        )
        for k in range(8):
            out.append(circle(x - 24 + (k % 4) * 16, y + 34 + (k // 4) * 12, 7, fill="#4a2c20"))
        out.append(
            path(
                f"M{f(x - 34)},{f(y - 20)}L{f(x + 34)},{f(y - 20)}",
                stroke="#ffffff",
                stroke_width=4,
                opacity="0.6",
            )
        )
        out.append(ellipse(x + 36, y + 10, 22, 26, fill=sk.base, stroke=sk.line, stroke_width=4))
    return group(out)


def item_svg(c: Ctx, item: str, slot: str) -> str:
    from generation.chibi.face import face_item

    if slot == "head_top":
        return hat(c, item)
    if slot == "ears":
        return animal_ears(c, item)
    if slot == "hair_accessory":
        return hair_accessory(c, item)
    if slot == "headphones":
        return headphones(c)
    if slot == "eyes":
        return glasses(c, item)
    if slot == "mouth":
        return face_mask(c)
    if slot == "face":
        return face_item(c, item)
    if slot == "ear_jewelry":
        return earrings(c)
    if slot == "neck":
        return neckwear(c, item)
    if slot == "head_wrap":
        return hijab(c)
    if slot == "back":
        return wings(c, item)
    if slot == "held":
        return held(c, item)
    return ""


_ = (rect, MOUTH_Y, _flower)
