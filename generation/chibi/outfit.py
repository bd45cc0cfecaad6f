"""The small chibi body: shoulders and outfit, plus the background."""

from __future__ import annotations

import math
import random

from generation.chibi import color
from generation.chibi.backdrop import backdrop, pattern_colour
from generation.chibi.backdrop import star5 as _star5
from generation.chibi.context import Ctx
from generation.chibi.face import heart_path
from generation.chibi.geometry import COLLAR_Y, CX, LINE, VIEW
from generation.chibi.svgkit import circle, clip, defs, ellipse, f, group, linear, path, rect

BODY = (
    f"M{f(CX - 44)},{f(COLLAR_Y - 6)}C{f(CX - 104)},{f(COLLAR_Y - 2)} {f(CX - 150)},{f(COLLAR_Y + 14)} {f(CX - 160)},{f(COLLAR_Y + 66)}"
    f"L{f(CX - 168)},{f(VIEW + 20)}L{f(CX + 168)},{f(VIEW + 20)}L{f(CX + 160)},{f(COLLAR_Y + 66)}"
    f"C{f(CX + 150)},{f(COLLAR_Y + 14)} {f(CX + 104)},{f(COLLAR_Y - 2)} {f(CX + 44)},{f(COLLAR_Y - 6)}Z"
)
Y = COLLAR_Y


def _sleeves(line: str) -> str:
    return path(
        f"M{f(CX - 120)},{f(Y + 30)}Q{f(CX - 112)},{f(Y + 70)} {f(CX - 118)},{f(VIEW + 4)}"
        f"M{f(CX + 120)},{f(Y + 30)}Q{f(CX + 112)},{f(Y + 70)} {f(CX + 118)},{f(VIEW + 4)}",
        fill="none",
        stroke=line,
        stroke_width=3.5,
        stroke_linecap="round",
    )


def _body(fill: str, line: str) -> str:
    return path(BODY, fill=fill, stroke=line, stroke_width=LINE, stroke_linejoin="round")


def _shade_body(t: color.Tone) -> str:
    # cel shade along the lower sides
    return group(
        [
            path(
                f"M{f(CX - 170)},{f(Y + 40)}Q{f(CX - 130)},{f(Y + 80)} {f(CX - 140)},{f(VIEW + 10)}L{f(CX - 170)},{f(VIEW + 10)}Z",
                fill=t.shade,
            ),
            path(
                f"M{f(CX + 170)},{f(Y + 40)}Q{f(CX + 130)},{f(Y + 80)} {f(CX + 140)},{f(VIEW + 10)}L{f(CX + 170)},{f(VIEW + 10)}Z",
                fill=t.shade,
            ),
            path(
                f"M{f(CX - 60)},{f(Y - 4)}Q{f(CX)},{f(Y + 34)} {f(CX + 60)},{f(Y - 4)}L{f(CX + 60)},{f(Y + 4)}Q{f(CX)},{f(Y + 44)} {f(CX - 60)},{f(Y + 4)}Z",
                fill=t.shade,
                opacity="0.7",
            ),
        ],
        clip_path="url(#body-clip)",
    )


def body(c: Ctx) -> str:
    style = c.spec.outfit.style or "tshirt"
    t = c.outfit
    white = "#fbfaf7"
    wt = color.Tone.of("#f1eef0")
    sk = c.skin
    out = [defs(clip("body-clip", path(BODY)))]
    base_fill = {"sailor": white, "spacesuit": "#f4f5f8"}.get(style, t.base)
    if style == "hoodie":
        hood = f"M{f(CX - 110)},{f(Y + 10)}C{f(CX - 120)},{f(Y - 50)} {f(CX + 120)},{f(Y - 50)} {f(CX + 110)},{f(Y + 10)}Z"
        out.append(path(hood, fill=t.shade, stroke=t.line, stroke_width=LINE))
    if style == "cape":
        collar = f"M{f(CX - 60)},{f(Y + 10)}L{f(CX - 100)},{f(Y - 70)}L{f(CX - 40)},{f(Y - 20)}L{f(CX + 40)},{f(Y - 20)}L{f(CX + 100)},{f(Y - 70)}L{f(CX + 60)},{f(Y + 10)}Z"
        out.append(
            path(
                collar,
                fill=color.mix(t.base, "#c0243a", 0.5),
                stroke=t.line,
                stroke_width=LINE,
                stroke_linejoin="round",
            )
        )
    out.append(_body(base_fill, color.outline(base_fill) if base_fill != t.base else t.line))
    tone = color.Tone.of(base_fill)
    out.append(_shade_body(tone))
    if style not in ("cape", "armor", "robe", "kimono"):
        out.append(_sleeves(tone.shade))
    if style == "tshirt":
        out.append(
            path(
                f"M{f(CX - 44)},{f(Y - 6)}Q{f(CX)},{f(Y + 30)} {f(CX + 44)},{f(Y - 6)}",
                fill="none",
                stroke=t.line,
                stroke_width=LINE,
            )
        )
        out.append(
            path(
                f"M{f(CX - 38)},{f(Y - 2)}Q{f(CX)},{f(Y + 24)} {f(CX + 38)},{f(Y - 2)}",
                fill="none",
                stroke=t.deep,
                stroke_width=5,
            )
        )
        out.append(path(heart_path(CX + 62, Y + 60, 22), fill=t.light, stroke=t.line, stroke_width=2.5))
    elif style == "hoodie":
        out.append(
            path(
                f"M{f(CX - 50)},{f(Y - 4)}Q{f(CX)},{f(Y + 34)} {f(CX + 50)},{f(Y - 4)}",
                fill="none",
                stroke=t.line,
                stroke_width=LINE,
            )
        )
        for s in (-1, 1):
            x = CX + s * 22
            out.append(
                path(
                    f"M{f(x)},{f(Y + 12)}Q{f(x + s * 4)},{f(Y + 50)} {f(x)},{f(Y + 70)}",
                    fill="none",
                    stroke=color.light(t.base, 0.7),
                    stroke_width=4,
                    stroke_linecap="round",
                )
            )
            out.append(
                rect(x - 3.5, Y + 66, 7, 12, fill=color.light(t.base, 0.8), stroke=t.line, stroke_width=2)
            )
        out.append(
            path(
                f"M{f(CX - 70)},{f(VIEW + 4)}L{f(CX - 56)},{f(Y + 88)}L{f(CX + 56)},{f(Y + 88)}L{f(CX + 70)},{f(VIEW + 4)}",
                fill="none",
                stroke=t.shade,
                stroke_width=4,
            )
        )
    elif style == "sweater":
        out.append(
            path(
                f"M{f(CX - 50)},{f(Y - 8)}Q{f(CX)},{f(Y + 22)} {f(CX + 50)},{f(Y - 8)}L{f(CX + 54)},{f(Y + 8)}Q{f(CX)},{f(Y + 40)} {f(CX - 54)},{f(Y + 8)}Z",
                fill=t.shade,
                stroke=t.line,
                stroke_width=4,
            )
        )
        ribs = "".join(
            f"M{f(CX + k * 9)},{f(Y + 6 + abs(k) * 0.2)}L{f(CX + k * 9.6)},{f(Y + 24 - abs(k) * 1.2)}"
            for k in range(-5, 6)
        )
        out.append(path(ribs, stroke=t.deep, stroke_width=2, opacity="0.7"))
        for k in (-1, 0, 1):
            x = CX + k * 44
            cable = "".join(
                f"M{f(x - 6)},{f(y)}Q{f(x + 8)},{f(y + 8)} {f(x - 6)},{f(y + 16)}"
                for y in range(int(Y + 40), VIEW, 16)
            )
            out.append(path(cable, fill="none", stroke=t.shade, stroke_width=4, stroke_linecap="round"))
    elif style == "sailor":
        col = t.base
        d = f"M{f(CX - 48)},{f(Y - 6)}L{f(CX)},{f(Y + 62)}L{f(CX + 48)},{f(Y - 6)}L{f(CX + 130)},{f(Y + 8)}L{f(CX + 110)},{f(Y + 44)}L{f(CX + 20)},{f(Y + 84)}L{f(CX - 20)},{f(Y + 84)}L{f(CX - 110)},{f(Y + 44)}L{f(CX - 130)},{f(Y + 8)}Z"
        out.append(
            group(
                [path(d, fill=col, stroke=t.line, stroke_width=4, stroke_linejoin="round")],
                clip_path="url(#body-clip)",
            )
        )
        out.append(
            path(
                f"M{f(CX - 40)},{f(Y + 8)}L{f(CX)},{f(Y + 66)}L{f(CX + 40)},{f(Y + 8)}",
                fill="none",
                stroke=white,
                stroke_width=3.5,
            )
        )
        red = "#e0455a"  # the sailor bow is always red
        out.append(
            path(
                f"M{f(CX)},{f(Y + 74)}L{f(CX - 30)},{f(Y + 62)}L{f(CX - 30)},{f(Y + 92)}Z M{f(CX)},{f(Y + 74)}L{f(CX + 30)},{f(Y + 62)}L{f(CX + 30)},{f(Y + 92)}Z",
                fill=red,
                stroke=color.outline(red),
                stroke_width=3,
                stroke_linejoin="round",
            )
        )
        out.append(
            path(
                f"M{f(CX - 8)},{f(Y + 78)}L{f(CX - 20)},{f(Y + 112)}L{f(CX - 4)},{f(Y + 106)}Z M{f(CX + 8)},{f(Y + 78)}L{f(CX + 20)},{f(Y + 112)}L{f(CX + 4)},{f(Y + 106)}Z",
                fill=red,
                stroke=color.outline(red),
                stroke_width=3,
                stroke_linejoin="round",
            )
        )
        out.append(circle(CX, Y + 74, 7, fill=red, stroke=color.outline(red), stroke_width=3))
    elif style in ("blazer", "suit"):
        shirt = white
        v = f"M{f(CX - 44)},{f(Y - 6)}L{f(CX)},{f(Y + 110)}L{f(CX + 44)},{f(Y - 6)}Z"
        out.append(path(v, fill=shirt, stroke=wt.line, stroke_width=3))
        out.append(
            path(
                f"M{f(CX - 40)},{f(Y - 4)}L{f(CX - 10)},{f(Y + 16)}L{f(CX - 26)},{f(Y + 30)}Z M{f(CX + 40)},{f(Y - 4)}L{f(CX + 10)},{f(Y + 16)}L{f(CX + 26)},{f(Y + 30)}Z",
                fill=shirt,
                stroke=wt.line,
                stroke_width=2.5,
                stroke_linejoin="round",
            )
        )
        tie = "#d94452" if style == "suit" else color.mix(t.base, "#d94452", 0.6)
        if style == "suit":
            out.append(
                path(
                    f"M{f(CX - 9)},{f(Y + 12)}L{f(CX + 9)},{f(Y + 12)}L{f(CX + 6)},{f(Y + 22)}L{f(CX + 13)},{f(Y + 80)}L{f(CX)},{f(Y + 94)}L{f(CX - 13)},{f(Y + 80)}L{f(CX - 6)},{f(Y + 22)}Z",
                    fill=tie,
                    stroke=color.outline(tie),
                    stroke_width=2.5,
                    stroke_linejoin="round",
                )
            )
        else:
            out.append(
                path(
                    f"M{f(CX)},{f(Y + 18)}L{f(CX - 24)},{f(Y + 8)}L{f(CX - 24)},{f(Y + 30)}Z M{f(CX)},{f(Y + 18)}L{f(CX + 24)},{f(Y + 8)}L{f(CX + 24)},{f(Y + 30)}Z",
                    fill=tie,
                    stroke=color.outline(tie),
                    stroke_width=2.5,
                    stroke_linejoin="round",
                )
            )
            out.append(circle(CX, Y + 18, 5, fill=tie, stroke=color.outline(tie), stroke_width=2.5))
        lap = f"M{f(CX - 46)},{f(Y - 6)}L{f(CX - 64)},{f(Y + 40)}L{f(CX - 44)},{f(Y + 50)}L{f(CX - 4)},{f(Y + 116)}L{f(CX - 30)},{f(VIEW + 10)}L{f(CX - 100)},{f(VIEW + 10)}L{f(CX - 100)},{f(Y + 10)}Z"
        lap_r = f"M{f(CX + 46)},{f(Y - 6)}L{f(CX + 64)},{f(Y + 40)}L{f(CX + 44)},{f(Y + 50)}L{f(CX + 4)},{f(Y + 116)}L{f(CX + 30)},{f(VIEW + 10)}L{f(CX + 100)},{f(VIEW + 10)}L{f(CX + 100)},{f(Y + 10)}Z"
        out.append(
            group(
                [
                    path(lap, fill=t.base, stroke=t.line, stroke_width=4, stroke_linejoin="round"),
                    path(lap_r, fill=t.base, stroke=t.line, stroke_width=4, stroke_linejoin="round"),
                ],
                clip_path="url(#body-clip)",
            )
        )
        out.append(circle(CX - 14, Y + 96, 4.5, fill=t.deep))
        if style == "blazer":
            out.append(
                path(
                    f"M{f(CX + 70)},{f(Y + 66)}L{f(CX + 104)},{f(Y + 66)}L{f(CX + 104)},{f(Y + 92)}Q{f(CX + 87)},{f(Y + 100)} {f(CX + 70)},{f(Y + 92)}Z",
                    fill=t.light,
                    stroke=t.line,
                    stroke_width=2.5,
                )
            )
    elif style == "kimono":
        inner = white
        out.append(
            path(
                f"M{f(CX - 44)},{f(Y - 6)}L{f(CX + 40)},{f(Y + 100)}L{f(CX + 60)},{f(Y + 80)}L{f(CX + 44)},{f(Y - 6)}Z",
                fill=inner,
                stroke=wt.line,
                stroke_width=3,
            )
        )
        out.append(
            path(
                f"M{f(CX + 44)},{f(Y - 6)}L{f(CX - 40)},{f(Y + 104)}",
                fill="none",
                stroke=t.deep,
                stroke_width=12,
            )
        )
        out.append(
            path(
                f"M{f(CX - 44)},{f(Y - 6)}L{f(CX + 40)},{f(Y + 100)}",
                fill="none",
                stroke=t.deep,
                stroke_width=12,
            )
        )
        obi = color.mix(t.base, "#f2c14e", 0.7)
        out.append(
            group(
                [rect(CX - 170, Y + 100, 340, 40, fill=obi, stroke=color.outline(obi), stroke_width=4)],
                clip_path="url(#body-clip)",
            )
        )
        rng = random.Random(7)
        flowers = []
        for _ in range(8):
            x, y = CX + rng.uniform(-150, 150), Y + rng.uniform(20, 96)
            if abs(x - CX) < 56:
                continue
            flowers.append(_flower(x, y, 8, t.light, t.shade))
        out.append(group(flowers, clip_path="url(#body-clip)"))
    elif style == "dress":
        frill = "".join(
            f"Q{f(CX + math.cos(math.pi * (k + 0.5) / 8) * -76)},{f(Y + 34 + math.sin(math.pi * (k + 0.5) / 8) * 30)} {f(CX + math.cos(math.pi * (k + 1) / 8) * -70)},{f(Y + 14 + math.sin(math.pi * (k + 1) / 8) * 26)}"
            for k in range(8)
        )
        out.append(
            path(
                f"M{f(CX - 70)},{f(Y + 14)}{frill}L{f(CX + 50)},{f(Y - 6)}L{f(CX - 50)},{f(Y - 6)}Z",
                fill=white,
                stroke=wt.line,
                stroke_width=3,
                stroke_linejoin="round",
            )
        )
        bow = color.mix(t.base, "#e0455a", 0.45)
        out.append(
            path(
                f"M{f(CX)},{f(Y + 22)}L{f(CX - 26)},{f(Y + 8)}L{f(CX - 26)},{f(Y + 36)}Z M{f(CX)},{f(Y + 22)}L{f(CX + 26)},{f(Y + 8)}L{f(CX + 26)},{f(Y + 36)}Z",
                fill=bow,
                stroke=color.outline(bow),
                stroke_width=3,
                stroke_linejoin="round",
            )
        )
        out.append(circle(CX, Y + 22, 6, fill=bow, stroke=color.outline(bow), stroke_width=3))
        out.append(
            path(
                f"M{f(CX - 150)},{f(Y + 56)}Q{f(CX - 128)},{f(Y + 86)} {f(CX - 150)},{f(Y + 100)}M{f(CX + 150)},{f(Y + 56)}Q{f(CX + 128)},{f(Y + 86)} {f(CX + 150)},{f(Y + 100)}",
                fill="none",
                stroke=t.line,
                stroke_width=3,
            )
        )
    elif style == "armor":
        metal = color.mix(t.base, "#c8ccd6", 0.55)
        mt = color.Tone.of(metal)
        out.append(
            defs(linear("armor-g", 0, Y, 0, VIEW, [(0, mt.light, 1), (0.5, metal, 1), (1, mt.shade, 1)]))
        )
        out.append(_body("url(#armor-g)", mt.line))
        out.append(
            path(
                f"M{f(CX - 70)},{f(Y + 20)}Q{f(CX)},{f(Y + 50)} {f(CX + 70)},{f(Y + 20)}L{f(CX + 60)},{f(VIEW + 4)}L{f(CX - 60)},{f(VIEW + 4)}Z",
                fill="none",
                stroke=mt.line,
                stroke_width=3.5,
            )
        )
        out.append(path(f"M{f(CX)},{f(Y + 46)}L{f(CX)},{f(VIEW)}", stroke=mt.shade, stroke_width=4))
        for s in (-1, 1):
            px = CX + s * 128
            out.append(
                path(
                    f"M{f(px - 52)},{f(Y + 46)}Q{f(px)},{f(Y - 20)} {f(px + 52)},{f(Y + 46)}Q{f(px)},{f(Y + 30)} {f(px - 52)},{f(Y + 46)}Z",
                    fill=metal,
                    stroke=mt.line,
                    stroke_width=4,
                    stroke_linejoin="round",
                )
            )
            out.append(
                path(
                    f"M{f(px - 34)},{f(Y + 30)}Q{f(px)},{f(Y - 4)} {f(px + 34)},{f(Y + 30)}",
                    fill="none",
                    stroke=mt.light,
                    stroke_width=4,
                    stroke_linecap="round",
                )
            )
            for k in (-1, 1):
                out.append(circle(px + k * 30, Y + 36, 3.5, fill=mt.deep))
        out.append(
            path(
                f"M{f(CX - 56)},{f(Y - 4)}Q{f(CX)},{f(Y + 22)} {f(CX + 56)},{f(Y - 4)}L{f(CX + 50)},{f(Y - 14)}Q{f(CX)},{f(Y + 10)} {f(CX - 50)},{f(Y - 14)}Z",
                fill=t.base,
                stroke=t.line,
                stroke_width=3,
            )
        )
    elif style == "spacesuit":
        ring = "#c9ced8"
        out.append(
            path(
                f"M{f(CX - 62)},{f(Y - 10)}Q{f(CX)},{f(Y + 24)} {f(CX + 62)},{f(Y - 10)}L{f(CX + 66)},{f(Y + 6)}Q{f(CX)},{f(Y + 44)} {f(CX - 66)},{f(Y + 6)}Z",
                fill=ring,
                stroke=color.outline(ring),
                stroke_width=4,
            )
        )
        out.append(
            f'<rect x="{f(CX - 44)}" y="{f(Y + 52)}" width="88" height="60" rx="10" fill="{t.base}" stroke="{t.line}" stroke-width="4"/>'
        )
        for k, col in enumerate(("#ff6b6b", "#ffd166", "#06d6a0")):
            out.append(
                circle(CX - 24 + k * 24, Y + 72, 7, fill=col, stroke=color.outline(col), stroke_width=2.5)
            )
        out.append(rect(CX - 30, Y + 90, 60, 8, fill=t.light))
        for s in (-1, 1):
            out.append(
                path(
                    f"M{f(CX + s * 150)},{f(Y + 70)}L{f(CX + s * 116)},{f(Y + 70)}",
                    stroke=t.base,
                    stroke_width=10,
                )
            )
    elif style == "cape":
        clasp = "#f2c14e"
        out.append(
            path(
                f"M{f(CX - 40)},{f(Y - 6)}Q{f(CX - 20)},{f(Y + 60)} {f(CX - 10)},{f(VIEW + 10)}M{f(CX + 40)},{f(Y - 6)}Q{f(CX + 20)},{f(Y + 60)} {f(CX + 10)},{f(VIEW + 10)}",
                fill="none",
                stroke=t.line,
                stroke_width=4,
            )
        )
        out.append(
            path(
                f"M{f(CX - 12)},{f(Y + 30)}L{f(CX)},{f(Y + 14)}L{f(CX + 12)},{f(Y + 30)}L{f(CX)},{f(Y + 46)}Z",
                fill=clasp,
                stroke=color.outline(clasp),
                stroke_width=3,
                stroke_linejoin="round",
            )
        )
        out.append(
            path(
                f"M{f(CX - 70)},{f(Y + 26)}L{f(CX - 12)},{f(Y + 30)}M{f(CX + 70)},{f(Y + 26)}L{f(CX + 12)},{f(Y + 30)}",
                stroke=clasp,
                stroke_width=3,
            )
        )
    elif style == "robe":
        gold = "#f2c14e"
        out.append(
            path(
                f"M{f(CX - 46)},{f(Y - 6)}L{f(CX)},{f(Y + 80)}L{f(CX + 46)},{f(Y - 6)}Z",
                fill=color.shade(t.base, 0.35),
                stroke=t.line,
                stroke_width=3,
            )
        )
        out.append(
            path(
                f"M{f(CX - 46)},{f(Y - 6)}L{f(CX)},{f(Y + 80)}L{f(CX + 46)},{f(Y - 6)}M{f(CX)},{f(Y + 80)}L{f(CX)},{f(VIEW + 4)}",
                fill="none",
                stroke=gold,
                stroke_width=7,
                stroke_linejoin="round",
            )
        )
        out.append(_star5(CX + 76, Y + 62, 14, gold))
        out.append(_star5(CX - 90, Y + 86, 9, gold))
        out.append(
            path(
                f"M{f(CX - 120)},{f(Y + 30)}Q{f(CX - 112)},{f(Y + 70)} {f(CX - 126)},{f(VIEW + 4)}M{f(CX + 120)},{f(Y + 30)}Q{f(CX + 112)},{f(Y + 70)} {f(CX + 126)},{f(VIEW + 4)}",
                fill="none",
                stroke=t.shade,
                stroke_width=4,
            )
        )
    del sk
    return group(out)


def _flower(x: float, y: float, r: float, fill: str, center: str) -> str:
    petals = [
        circle(
            x + r * 0.7 * math.cos(a * 2 * math.pi / 5),
            y + r * 0.7 * math.sin(a * 2 * math.pi / 5),
            r * 0.55,
            fill=fill,
        )
        for a in range(5)
    ]
    return group([*petals, circle(x, y, r * 0.35, fill=center)])


def background(c: Ctx) -> str:
    """The background's SVG text (the seeded kinds are described by ``backdrop.Backdrop``)."""
    bd = backdrop(c)
    if bd is not None:
        return bd.svg
    bg = c.spec.background
    a, b = bg.color or "#ffd6e7", bg.color2 or "#ffffff"
    rng = random.Random(f"chibify-bg:{c.spec.seed}")
    out = [rect(0, 0, VIEW, VIEW, fill=a)]
    if bg.kind == "stripes":
        w = 36 + rng.randint(0, 3) * 4
        d = "".join(
            f"M{f(x)},-20L{f(x + w)},-20L{f(x + w - 560)},540L{f(x - 560)},540Z"
            for x in range(0, 1200, int(w * 2))
        )
        out.append(path(d, fill=pattern_colour(a, b), opacity="0.9"))
    elif bg.kind == "blossoms":
        out.append(_blossoms(a, rng))
    return group(out)


def _sakura(x: float, y: float, r: float, rot: float, petal: str, line: str, centre: str) -> str:
    """A cherry blossom: five notched petals around a small centre."""
    petals = []
    for k in range(5):
        a = math.radians(rot + k * 72)
        px, py = x + r * 0.55 * math.cos(a), y + r * 0.55 * math.sin(a)
        tx, ty = x + r * math.cos(a), y + r * math.sin(a)
        nx, ny = -math.sin(a), math.cos(a)
        w = r * 0.42
        petals.append(
            f"M{f(x)},{f(y)}Q{f(px + nx * w * 1.3)},{f(py + ny * w * 1.3)} {f(tx + nx * w * 0.5)},{f(ty + ny * w * 0.5)}"
            f"L{f(x + r * 0.85 * math.cos(a))},{f(y + r * 0.85 * math.sin(a))}"
            f"L{f(tx - nx * w * 0.5)},{f(ty - ny * w * 0.5)}Q{f(px - nx * w * 1.3)},{f(py - ny * w * 1.3)} {f(x)},{f(y)}Z"
        )
    return group(
        [
            path(
                "".join(petals),
                fill=petal,
                stroke=line,
                stroke_width=max(1.5, r * 0.09),
                stroke_linejoin="round",
            ),
            circle(x, y, r * 0.2, fill=centre),
        ]
    )


def _blossoms(a: str, rng: random.Random) -> str:
    """Cherry blossoms: branches reaching in from the sides, flowers on them, petals drifting down."""
    petal = "#ffe4ee"
    if color.delta_e(petal, a) < 12:
        petal = "#fff8fb"
    line = "#e0739a"
    centre = "#d94f7c"
    bark = "#7a4e3d"
    out = []
    # branches from the left and right edges (the avatar covers the middle)
    for s, y0 in ((-1, 128.0), (1, 70.0)):
        x0 = CX + s * 270
        d = (
            f"M{f(x0)},{f(y0 - 30)}Q{f(CX + s * 210)},{f(y0 - 6)} {f(CX + s * 170)},{f(y0 + 40)}"
            f"M{f(CX + s * 214)},{f(y0)}Q{f(CX + s * 206)},{f(y0 - 40)} {f(CX + s * 176)},{f(y0 - 62)}"
            f"M{f(CX + s * 196)},{f(y0 + 14)}Q{f(CX + s * 224)},{f(y0 + 50)} {f(CX + s * 214)},{f(y0 + 86)}"
        )
        out.append(path(d, fill="none", stroke=bark, stroke_width=10, stroke_linecap="round"))
        for k, (dx, dy, r) in enumerate(
            ((236, -18, 28), (176, 40, 24), (182, -60, 22), (214, 84, 22), (206, 8, 18), (250, 36, 17))
        ):
            out.append(_sakura(CX + s * dx, y0 + dy, r, rng.uniform(0, 72) + k * 9, petal, line, centre))
    # drifting petals
    for _ in range(22):
        x, y = rng.uniform(8, 504), rng.uniform(150, 505)
        if abs(x - CX) < 160 and y < 440:
            x = CX + (1 if x >= CX else -1) * rng.uniform(176, 248)
        pr = rng.uniform(8, 13)
        ang = rng.uniform(0, 180)
        out.append(
            ellipse(
                x,
                y,
                pr,
                pr * 0.6,
                fill=petal,
                stroke=line,
                stroke_width=2,
                transform=f"rotate({f(ang)} {f(x)} {f(y)})",
            )
        )
    return group(out)
