"""One geometry for every part: the head, the face contour per shape, and the anchors items use.

The canvas is a 512 x 512 view box. Everything that sits on the head (hats, ears, glasses, earrings, hijab)
reads its position from :class:`Geometry`, so all items agree on where the head top, eyes and ears are.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from generation import catalog

Point = tuple[float, float]

VIEW = 512
CX = 256.0
# The cranium: an ellipse; the face contour below the cranium's equator depends on the face shape.
CRANIUM_CY = 236.0
CRANIUM_RX = 140.0
CRANIUM_RY = 136.0
HEAD_TOP = CRANIUM_CY - CRANIUM_RY  # skin top (100)
EYE_Y = 288.0
EYE_DX = 66.0
EYE_RX = 29.0
EYE_RY = 35.0
BROW_Y = EYE_Y - EYE_RY - 16.0
NOSE_Y = 322.0
MOUTH_Y = 342.0
CHEEK_Y = 322.0
CHEEK_DX = 104.0
EAR_Y = 296.0
SHOULDER_Y = 420.0
COLLAR_Y = 398.0
LINE = 5.0  # main outline width at 512 px

# Face shapes: (cranium half width, jaw half width, jaw y, chin half width, chin y).
# round: wide soft cheeks, short; oval: a little longer and narrower; heart: wide temples, narrow pointed chin;
# square: broad jaw with corners; long: narrow and tall.
FACE_SHAPES: dict[str, tuple[float, float, float, float, float]] = {
    "round": (146.0, 136.0, 326.0, 80.0, 370.0),
    "oval": (134.0, 112.0, 344.0, 44.0, 390.0),
    "heart": (148.0, 100.0, 338.0, 6.0, 394.0),
    "square": (140.0, 134.0, 350.0, 90.0, 378.0),
    "long": (124.0, 106.0, 362.0, 42.0, 404.0),
}

# How each shape's curves bend: (side bulge 0..1, jaw corner 0..1 (0 = soft, 1 = sharp), chin point 0..1).
FACE_CURVES: dict[str, tuple[float, float, float]] = {
    "round": (0.62, 0.0, 0.0),
    "oval": (0.5, 0.1, 0.0),
    "heart": (0.42, 0.2, 0.9),
    "square": (0.7, 0.8, 0.0),
    "long": (0.5, 0.35, 0.0),
}

# Hair styles with volume above the head: (top of the hair volume, hat rim y, hat half width at the rim).
# ``None`` rim means a hat rests on the normal head (rim just above the brows).
HAIR_VOLUME: dict[str, tuple[float, float | None, float]] = {
    "short": (84.0, None, 162.0),
    "bob": (82.0, None, 164.0),
    "hime": (82.0, None, 162.0),
    "long_straight": (82.0, None, 162.0),
    "long_wavy": (78.0, None, 166.0),
    "twin_tails": (84.0, None, 162.0),
    "ponytail": (82.0, None, 162.0),
    "bun": (18.0, None, 162.0),
    "spiky": (44.0, None, 166.0),
    "side_swept": (80.0, None, 162.0),
    "curly": (58.0, None, 178.0),
    "afro": (40.0, 104.0, 176.0),
    "braids": (84.0, None, 164.0),
    "buzz": (96.0, None, 154.0),
    "bald": (100.0, None, 150.0),
    "messy": (62.0, None, 170.0),
}

HIJAB_TOP = HEAD_TOP - 16.0  # the top of the wrapped fabric

COVERING_HATS = frozenset({"beanie", "witch_hat", "beret", "cap", "straw_hat", "top_hat", "santa_hat"})
# Head-top items that sit on the hair without hiding it (hair accessories and headphones still show).
OPEN_HATS = frozenset({"crown", "halo", "flower_crown"})


@dataclass(frozen=True)
class Geometry:
    face_shape: str
    hair_style: str
    hat: str | None
    hijab: bool
    crx: float
    jaw_w: float
    jaw_y: float
    chin_w: float
    chin_y: float
    hair_top: float  # top of the visible hair (after a hat compressed it)
    hat_rim_y: float  # where a hat's brim sits
    hat_half_w: float  # half width of the hat at its brim
    hat_cover_top: float  # a covering hat must reach at least this high (bun, afro)

    # --- anchors ---------------------------------------------------------------------------------
    @property
    def eyes(self) -> tuple[Point, Point]:
        return (CX - EYE_DX, EYE_Y), (CX + EYE_DX, EYE_Y)

    @property
    def ears(self) -> tuple[Point, Point]:
        """Centres of the (human) ears; earrings hang below these."""
        x = self.face_x(EAR_Y)
        return (CX - x - 4, EAR_Y), (CX + x + 4, EAR_Y)

    @property
    def head_top(self) -> Point:
        return CX, self.hair_top

    def animal_ear_bases(self) -> tuple[Point, Point]:
        """Where animal ears come out of the hair: on the hair's outline, about 40 degrees off the top."""
        rx = self.hat_half_w - 6
        top = self.hair_top if self.hair_style != "bun" else 78.0
        cy = CRANIUM_CY - 6
        ry = cy - top
        a = math.radians(42)
        dx, dy = rx * math.sin(a), ry * math.cos(a)
        return (CX - dx, cy - dy + 8), (CX + dx, cy - dy + 8)

    def face_x(self, y: float) -> float:
        """Half width of the face contour at height y (for beards, earrings and hijab openings)."""
        pts = face_contour(self.face_shape)
        best = 0.0
        for (x0, y0), (x1, y1) in itertools.pairwise(pts):
            if x0 < CX or x1 < CX:
                continue
            if (y0 - y) * (y1 - y) <= 0 and y0 != y1:
                t = (y - y0) / (y1 - y0)
                best = max(best, x0 + (x1 - x0) * t - CX)
        return best


def geometry(face_shape: str, hair_style: str, items: tuple[str, ...]) -> Geometry:
    return _geometry(face_shape, hair_style, items)


@lru_cache(maxsize=512)
def _geometry(face_shape: str, hair_style: str, items: tuple[str, ...]) -> Geometry:
    crx, jaw_w, jaw_y, chin_w, chin_y = FACE_SHAPES[face_shape]
    hijab = "hijab" in items
    hat = next((i for i in items if catalog.item_slot(i) == "head_top"), None)
    # under a hijab the hair is wrapped flat: hats sit on the wrapped skull whatever the hair style
    top, rim, half_w = HAIR_VOLUME[hair_style] if not hijab else (HIJAB_TOP, None, 162.0)
    covering = hat in COVERING_HATS
    cover_top = top
    if covering and rim is None:
        # A hat compresses ordinary hair to the skull; tall styles (bun) make the hat reach higher.
        cover_top = min(top + 20, 100.0) if hair_style == "bun" else 96.0
        top = min(max(top, 92.0), 96.0) if hair_style != "bun" else top
    if covering and rim is not None:
        cover_top = top - 16  # big hair: the hat sits on the hair and reaches over its bumps
    rim_y = rim if rim is not None else 156.0
    if hat == "bandana":
        rim_y = 172.0 if rim is None else rim + 40
    return Geometry(
        face_shape=face_shape,
        hair_style=hair_style,
        hat=hat,
        hijab=hijab,
        crx=crx,
        jaw_w=jaw_w,
        jaw_y=jaw_y,
        chin_w=chin_w,
        chin_y=chin_y,
        hair_top=top,
        hat_rim_y=rim_y,
        hat_half_w=half_w,
        hat_cover_top=cover_top,
    )


def _lower_right(face_shape: str, grow: float = 0.0) -> tuple[tuple[Point, Point, Point, Point], ...]:
    """The right half of the face below the cranium's equator: cheek curve (equator to jaw) and jaw curve
    (jaw to chin), as cubic Bézier control points. The one definition both the outline and anchors use."""
    crx, jaw_w, jaw_y, chin_w, chin_y = FACE_SHAPES[face_shape]
    side, corner, point = FACE_CURVES[face_shape]
    g = grow
    cy = CRANIUM_CY
    rx = crx + g
    jw, jy, cw, chy = jaw_w + g, jaw_y + g * 0.4, chin_w + g * 0.5, chin_y + g
    cheek = (
        (CX + rx, cy),
        (CX + rx, cy + (jy - cy) * side),
        (CX + jw + (rx - jw) * (0.25 - 0.2 * corner), jy - (jy - cy) * (0.25 - 0.17 * corner)),
        (CX + jw, jy),
    )
    jaw = (
        (CX + jw, jy),
        (CX + jw - (jw - cw) * (0.3 - 0.26 * corner), jy + (chy - jy) * (0.75 - 0.15 * corner)),
        (CX + cw + 6 + 10 * corner, chy - 10 * point),
        (CX, chy),
    )
    return cheek, jaw


def face_path(face_shape: str, grow: float = 0.0) -> str:
    """The head outline (cranium + cheeks + chin) as a closed SVG path, optionally grown outward."""
    rx, ry = FACE_SHAPES[face_shape][0] + grow, CRANIUM_RY + grow
    cy = CRANIUM_CY
    k = 0.5523 * rx
    kr = 0.5523 * ry
    top = cy - ry
    cheek, jaw = _lower_right(face_shape, grow)

    def pt(p: Point, mirror: bool = False) -> str:
        return f"{2 * CX - p[0] if mirror else p[0]:.1f},{p[1]:.1f}"

    d = [
        f"M{CX - rx:.1f},{cy:.1f}",
        f"C{CX - rx:.1f},{cy - kr:.1f} {CX - k:.1f},{top:.1f} {CX:.1f},{top:.1f}",
        f"C{CX + k:.1f},{top:.1f} {CX + rx:.1f},{cy - kr:.1f} {CX + rx:.1f},{cy:.1f}",
        f"C{pt(cheek[1])} {pt(cheek[2])} {pt(cheek[3])}",
        f"C{pt(jaw[1])} {pt(jaw[2])} {pt(jaw[3])}",
        f"C{pt(jaw[2], True)} {pt(jaw[1], True)} {pt(jaw[0], True)}",
        f"C{pt(cheek[2], True)} {pt(cheek[1], True)} {pt(cheek[0], True)}Z",
    ]
    return "".join(d)


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, n: int) -> list[Point]:
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t**3
        out.append(
            (a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1])
        )
    return out


@lru_cache(maxsize=16)
def face_contour(face_shape: str) -> tuple[Point, ...]:
    """The right half of the face below the cranium's equator, sampled from the face path's curves."""
    cheek, jaw = _lower_right(face_shape)
    return tuple(_bezier(*cheek, 24) + _bezier(*jaw, 24)[1:])


def jaw_points(face_shape: str, y_from: float, grow: float) -> list[Point]:
    """The face contour from height ``y_from`` on the left, round the chin, up to ``y_from`` on the right,
    pushed outward by ``grow`` (beards follow this)."""
    right = [p for p in face_contour(face_shape) if p[1] >= y_from]
    cy = (y_from + FACE_SHAPES[face_shape][4]) / 2

    def push(p: Point) -> Point:
        dx, dy = p[0] - CX, p[1] - cy
        n = math.hypot(dx, dy) or 1.0
        return p[0] + dx / n * grow, p[1] + dy / n * grow

    right_g = [push(p) for p in right]  # top of the right side down to the chin
    left_g = [(2 * CX - x, y) for x, y in right_g]  # top of the left side down to the chin
    return left_g + right_g[::-1][1:]


def smooth(points: Sequence[Point], closed: bool = False) -> str:
    """A smooth path through points (Catmull-Rom turned into cubic Béziers). Memoised: the same outlines
    (a face shape's jaw, a beard) recur in every picture with that shape."""
    return _smooth(tuple(points), closed)


@lru_cache(maxsize=4096)
def _smooth(points: tuple[Point, ...], closed: bool) -> str:
    n = len(points)
    if n < 2:
        return ""
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    rng = range(n) if closed else range(n - 1)
    for i in rng:
        p0 = points[(i - 1) % n] if (closed or i > 0) else points[i]
        p1 = points[i]
        p2 = points[(i + 1) % n]
        p3 = points[(i + 2) % n] if (closed or i + 2 < n) else p2
        c1 = (p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6)
        c2 = (p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6)
        d.append(f"C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {p2[0]:.1f},{p2[1]:.1f}")
    if closed:
        d.append("Z")
    return "".join(d)
