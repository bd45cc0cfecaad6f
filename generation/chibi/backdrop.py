"""The seeded backgrounds (solid, gradient, dots, stars, hearts) as data.

A background's pattern is placed by its seed, so its text never repeats and the renderer cannot recolour
a learnt template of it (``composite``): it used to build about 8 KB of SVG text for a starry sky and have
skia parse it back, about 0.6 ms of every fresh avatar (docs/renderer.md, "Where the time goes"). A
``Backdrop`` is the one description of such a background:

- ``Backdrop.svg`` writes the SVG text, exactly as before (exports, masks, the reference rasteriser);
- ``Backdrop.fill`` and ``Backdrop.draw`` draw it for the renderer with no text to build or parse: the
  base written straight into the buffer (a flat colour, or one cached column of the bands), the marks as
  skia paths from the same coordinates, rounded to 0.1 unit as the text rounds them, so the pixels are
  those of the text (tests/generation/test_backdrop.py).

Stripes and blossoms (chosen by hand, never by a seed) stay SVG text, drawn by skia from the text.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import skia

from generation.chibi import color
from generation.chibi.context import Ctx
from generation.chibi.face import heart_path
from generation.chibi.geometry import VIEW
from generation.chibi.svgkit import BANDS, bands, circle, f, group, path, rect

# The kinds a Backdrop describes; the others are drawn from their SVG text (outfit.background).
KINDS = frozenset({"solid", "gradient", "dots", "stars", "hearts"})
DOT_R = 9
_DOT_SHIFT = np.array([DOT_R, 0])  # the text starts each dot at its left edge
SPARKLE_OPACITY = 0.8
SPARKLE = round(SPARKLE_OPACITY * 255) << 24 | 0xFFFFFF  # white at that opacity, ARGB


# A five-pointed star's ten corners from the top clockwise: (radius as a share of the outer one, cos, sin).
_STAR_CORNERS = tuple(
    (1.0 if i % 2 == 0 else 0.45, math.cos(a), math.sin(a))
    for i in range(10)
    for a in (-math.pi / 2 + i * math.pi / 5,)
)


def star5(x: float, y: float, r: float, fill: str, stroke: str | None = None) -> str:
    """A five-pointed star centred at (x, y) with outer radius ``r`` (an outline of ``fill``'s line colour
    unless ``stroke`` is given)."""
    pts = [f"{f(x + r * k * cos)},{f(y + r * k * sin)}" for k, cos, sin in _STAR_CORNERS]
    return path(
        "M" + "L".join(pts) + "Z",
        fill=fill,
        stroke=stroke or color.outline(fill),
        stroke_width=max(1.5, r * 0.16),
        stroke_linejoin="round",
    )


def pattern_colour(a: str, b: str) -> str:
    """The colour of a pattern's marks over the base colour ``a``, from the second colour ``b``."""
    mark = color.mix(a, b, 0.55) if color.luminance(b) > color.luminance(a) else b
    return color.mix(a, "#ffffff", 0.6) if abs(color.luminance(mark) - color.luminance(a)) < 0.03 else mark


@dataclass(frozen=True)
class Backdrop:
    """A flat ``base`` fill (or bands from ``top`` down to ``base``) and the marks on it, back to front."""

    base: str
    top: str | None = None
    mark: str = ""
    dots: tuple[tuple[float, float], ...] = ()  # centres; radius DOT_R, colour ``mark``
    stars: tuple[tuple[float, float, float, str], ...] = ()  # x, y, outer radius, colour; no outline
    sparkles: tuple[tuple[float, float, float], ...] = ()  # white dots: x, y, radius
    hearts: tuple[tuple[float, float, float], ...] = ()  # x, y, width; colour ``mark``

    @cached_property
    def svg(self) -> str:
        out = [
            bands(0, 0, VIEW, VIEW, self.top, self.base)
            if self.top
            else rect(0, 0, VIEW, VIEW, fill=self.base)
        ]
        if self.dots:
            d = "".join(
                f"M{f(x - DOT_R)},{f(y)}a{DOT_R},{DOT_R} 0 1,0 {2 * DOT_R},0a{DOT_R},{DOT_R} 0 1,0 {-2 * DOT_R},0"
                for x, y in self.dots
            )
            out.append(path(d, fill=self.mark))
        out += [star5(x, y, r, c, "none") for x, y, r, c in self.stars]
        out += [circle(x, y, r, fill="#ffffff", opacity=str(SPARKLE_OPACITY)) for x, y, r in self.sparkles]
        if self.hearts:
            out.append(group(path(heart_path(x, y, w), fill=self.mark) for x, y, w in self.hearts))
        return group(out)

    def draw(self, canvas: skia.Canvas) -> None:
        """Draw onto ``canvas`` in view-box units, as skia draws ``svg``: the same shapes from the same
        coordinates, rounded to 0.1 unit as the text rounds them."""
        if self.top:
            canvas.drawPicture(_bands(self.top, self.base))
        else:
            canvas.drawColor(_argb(self.base))
        self.draw_marks(canvas)

    def fill(self, buf: np.ndarray) -> None:
        """Write the base (flat or banded) into an empty size x size RGBA buffer: the pixels ``draw``
        gives there, without rasterising (the bands are full-width, so every column is the same)."""
        pixels = buf.view(np.uint32).reshape(buf.shape[:2])
        if self.top:
            pixels[:] = _band_column(self.top, self.base, buf.shape[0])[:, None]
        else:
            pixels[:] = _rgba32(self.base)

    @property
    def marked(self) -> bool:
        return bool(self.dots or self.stars or self.sparkles or self.hearts)

    def draw_marks(self, canvas: skia.Canvas) -> None:
        """The marks over the base, back to front."""
        paint = skia.Paint(AntiAlias=True)
        for colour, shape in self._shapes:
            paint.setColor(colour)
            canvas.drawPath(shape, paint)
        if self.sparkles:  # drawn as circles, as SVGDOM draws <circle> (its edges differ from a path's)
            paint.setColor(SPARKLE)
            for x, y, r in self._sparkles:
                canvas.drawCircle(x, y, r, paint)

    @cached_property
    def _shapes(self) -> list[tuple[int, skia.Path]]:
        """The marks as (ARGB, path), back to front, one path per element of the text (each is
        anti-aliased on its own); built once per Backdrop (a spec is often drawn at several sizes)."""
        out = []
        if self.dots:
            edges = np.round(np.array(self.dots) - _DOT_SHIFT, 1)
            out.append((_argb(self.mark), _dot_path(edges.tolist())))
        if self.stars:
            xyr = np.array([s[:3] for s in self.stars])
            corners = np.round(xyr[:, None, :2] + xyr[:, None, 2:] * _STAR.points, 1)
            out += [(_argb(s[3]), p) for s, p in zip(self.stars, _STAR.paths(corners), strict=True)]
        if self.hearts:
            xyw = np.array(self.hearts)
            mark = _argb(self.mark)
            points = np.round(xyw[:, None, :2] + xyw[:, None, 2:] * _HEART.points, 1)
            out += [(mark, p) for p in _HEART.paths(points)]
        return out

    @cached_property
    def _sparkles(self) -> list[list[float]]:
        return np.round(np.array(self.sparkles), 1).tolist() if self.sparkles else []


def _argb(hex_value: str) -> int:
    return 0xFF000000 | int(hex_value[1:], 16)


def _rgba32(hex_value: str) -> np.uint32:
    """An opaque colour as one RGBA pixel read as a native uint32."""
    v = int(hex_value[1:], 16)
    return np.frombuffer(bytes((v >> 16, (v >> 8) & 0xFF, v & 0xFF, 0xFF)), np.uint32)[0]


@lru_cache(maxsize=512)  # a few bytes each: the colours come from small palettes, sizes are few
def _band_column(top: str, bottom: str, size: int) -> np.ndarray:
    """One column of the bands drawn at ``size`` px: RGBA pixels read as native uint32s, opaque."""
    col = np.zeros((size, 1, 4), np.uint8)
    surface = skia.Surface(col, skia.kRGBA_8888_ColorType, skia.kPremul_AlphaType)
    canvas = surface.getCanvas()
    canvas.scale(size / VIEW, size / VIEW)
    canvas.drawPicture(_bands(top, bottom))
    del canvas, surface
    pixels = col.view(np.uint32).reshape(size)
    pixels.setflags(write=False)
    return pixels


@lru_cache(maxsize=256)  # bands depend only on the two colours, which come from small palettes
def _bands(top: str, bottom: str) -> skia.Picture:
    """The bands ``svgkit.bands`` writes over the whole view box, recorded once (64 rectangles drawn from
    Python cost more than the rest of a background)."""
    step = VIEW / BANDS
    recorder = skia.PictureRecorder()
    canvas = recorder.beginRecording(skia.Rect.MakeWH(VIEW, VIEW))
    paint = skia.Paint(AntiAlias=True)
    for i in range(BANDS):
        paint.setColor(_argb(color.mix(top, bottom, i / (BANDS - 1))))
        canvas.drawRect(skia.Rect.MakeXYWH(0, float(f(i * step)), VIEW, float(f(step + 1))), paint)
    return recorder.finishRecordingAsPicture()


# SkPath's serialised form (SkPath::writeToMemory): a version, the counts of points, conic weights and
# verbs, then those arrays (float32 points, float32 weights, one byte per verb), padded to 4 bytes.
# Building a path from Python costs about a microsecond a point; reading it from bytes costs one call.
# skia does not promise the format, so it is checked against skia's own output at import (and by a
# test); if it ever differs, the paths are built call by call, with the same result.
_PATH_VERSION = 5
_MOVE, _LINE, _CUBIC, _CLOSE = 0, 1, 4, 5  # skia's verb codes (stars and hearts use no others)
_POINTS_PER_VERB = {_MOVE: 1, _LINE: 1, _CUBIC: 3, _CLOSE: 0}


def _serialised(points: bytes, n_points: int, verbs: bytes) -> bytes:
    """A path with no conics in skia's serialised form, from its float32 points and its verbs."""
    data = struct.pack("<4i", _PATH_VERSION, n_points, 0, len(verbs)) + points + verbs
    return data + bytes(-len(data) % 4)


def _called(points: list[list[float]], verbs: bytes) -> skia.Path:
    """The same path built call by call."""
    p = skia.Path()
    i = 0
    for v in verbs:
        if v == _MOVE:
            p.moveTo(*points[i])
        elif v == _LINE:
            p.lineTo(*points[i])
        elif v == _CUBIC:
            p.cubicTo(*points[i], *points[i + 1], *points[i + 2])
        else:
            p.close()
        i += _POINTS_PER_VERB[v]
    return p


def _serial_ok() -> bool:
    """Whether skia reads and writes paths in the form ``_serialised`` writes."""
    points = [[1.5, -2.0], [3.25, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.5]]
    verbs = bytes((_MOVE, _LINE, _CUBIC, _CLOSE))
    data = _serialised(np.array(points, "<f4").tobytes(), len(points), verbs)
    p = skia.Path()
    return p.readFromMemory(data) == len(data) and bytes(p.serialize()) == bytes(
        _called(points, verbs).serialize()
    )


_SERIAL_OK = _serial_ok()


@dataclass(frozen=True)
class _Outline:
    """One shape's verbs, and its points for a unit size at the origin."""

    points: np.ndarray  # (k, 2)
    verbs: bytes

    def paths(self, points: np.ndarray) -> list[skia.Path]:
        """A path for each copy of the outline at ``points`` (n, k, 2)."""
        if not _SERIAL_OK:
            return [_called(p, self.verbs) for p in points.tolist()]
        k = len(self.points)
        blob = points.astype("<f4").tobytes()
        out = []
        for i in range(0, len(blob), 8 * k):
            data = _serialised(blob[i : i + 8 * k], k, self.verbs)
            p = skia.Path()
            if p.readFromMemory(data) != len(data):
                raise RuntimeError("skia rejected a serialised path")
            out.append(p)
        return out


def _star_outline() -> _Outline:
    """A star's ten corners for outer radius 1, from the top clockwise (``star5``'s points)."""
    corners = [(k * cos, k * sin) for k, cos, sin in _STAR_CORNERS]
    return _Outline(np.array(corners), bytes((_MOVE, *[_LINE] * 9, _CLOSE)))


def _heart_outline() -> _Outline:
    """``face.heart_path``'s 13 points (a start and four cubics) for width 1: 0.9 high, top at -0.35 of it."""
    h, top = 0.9, -0.9 * 0.35
    pts = [
        (0, h * 0.5),
        (-0.2, h * 0.3),
        (-0.5, h * 0.05),
        (-0.5, top),
        (-0.5, top - h * 0.3),
        (-0.1, top - h * 0.35),
        (0, top),
        (0.1, top - h * 0.35),
        (0.5, top - h * 0.3),
        (0.5, top),
        (0.5, h * 0.05),
        (0.2, h * 0.3),
        (0, h * 0.5),
    ]
    return _Outline(np.array(pts), bytes((_MOVE, _CUBIC, _CUBIC, _CUBIC, _CUBIC, _CLOSE)))


def _dot_path(edges: list[list[float]]) -> skia.Path:
    """Dots as the text has them: from each dot's left edge, two relative half-circle arcs. Built call
    by call: skia computes each arc's conics from where it starts, with float error (up to 0.02 unit)
    that a translated unit dot does not share, and at 64 px a dot's edge pixels show it."""
    p = skia.Path()
    large, ccw = skia.Path.ArcSize.kLarge_ArcSize, skia.PathDirection.kCCW
    for x, y in edges:
        p.moveTo(x, y)
        p.rArcTo(DOT_R, DOT_R, 0, large, ccw, 2 * DOT_R, 0)
        p.rArcTo(DOT_R, DOT_R, 0, large, ccw, -2 * DOT_R, 0)
    return p


_STAR = _star_outline()
_HEART = _heart_outline()


def backdrop(c: Ctx) -> Backdrop | None:
    """The spec's background as a Backdrop, or None for a kind drawn from its SVG text (stripes,
    blossoms). The seed's random stream is drawn in the same order as it always was, so a spec keeps its
    pattern."""
    bg = c.spec.background
    kind = bg.kind or "solid"
    if kind not in KINDS:
        return None
    a, b = bg.color or "#ffd6e7", bg.color2 or "#ffffff"
    if kind == "gradient":
        return Backdrop(a, top=b)
    if kind == "solid":
        return Backdrop(a)
    rng = random.Random(f"chibify-bg:{c.spec.seed}")
    mark = pattern_colour(a, b)
    if kind == "dots":
        step = 64
        dots = []
        for row in range(10):
            for col in range(10):
                x = col * step + (step / 2 if row % 2 else 0) + rng.uniform(-6, 6)
                y = row * step * 0.86 + rng.uniform(-6, 6)
                dots.append((x, y))
        return Backdrop(a, mark=mark, dots=tuple(dots))
    if kind == "stars":
        stars = []
        for _ in range(16):
            x, y, r = rng.uniform(10, 502), rng.uniform(10, 502), rng.uniform(7, 16)
            stars.append((x, y, r, color.mix("#ffffff", "#ffe27a", rng.random() * 0.8)))
        sparkles = [(rng.uniform(0, 512), rng.uniform(0, 512), rng.uniform(1.5, 3)) for _ in range(20)]
        return Backdrop(a, top=color.mix(a, "#5b4bb0", 0.25), stars=tuple(stars), sparkles=tuple(sparkles))
    hearts = []
    for row in range(6):
        for col in range(6):
            x = col * 96 + (48 if row % 2 else 0) + rng.uniform(-10, 10)
            y = row * 96 + rng.uniform(-10, 10)
            hearts.append((x, y, rng.uniform(22, 34)))
    return Backdrop(a, mark=mark, hearts=tuple(hearts))
