"""Colour helpers: every shade, light and outline colour is derived from a fill, never hard-coded black."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache


def rgb(hex_value: str) -> tuple[float, float, float]:
    h = hex_value.lstrip("#")
    return int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255


def to_hex(r: float, g: float, b: float) -> str:
    return "#" + "".join(f"{round(min(1.0, max(0.0, c)) * 255):02x}" for c in (r, g, b))


_RGB: dict[str, tuple[float, float, float]] = {}


@lru_cache(maxsize=8192)
def mix(a: str, b: str, t: float) -> str:
    """Linear mix of two colours: t=0 gives a, t=1 gives b (``to_hex`` of the channels' mix, unrolled:
    a mix with a fresh ``t`` runs a dozen times per avatar)."""
    ra = _RGB.get(a) or _remember_rgb(a)
    rb = _RGB.get(b) or _remember_rgb(b)
    r = round(min(1.0, max(0.0, ra[0] + (rb[0] - ra[0]) * t)) * 255)
    g = round(min(1.0, max(0.0, ra[1] + (rb[1] - ra[1]) * t)) * 255)
    bl = round(min(1.0, max(0.0, ra[2] + (rb[2] - ra[2]) * t)) * 255)
    return f"#{r:02x}{g:02x}{bl:02x}"


def _remember_rgb(hex_value: str) -> tuple[float, float, float]:
    if len(_RGB) >= 4096:
        _RGB.clear()
    v = _RGB[hex_value] = rgb(hex_value)
    return v


def luminance(hex_value: str) -> float:
    r, g, b = rgb(hex_value)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@lru_cache(maxsize=2048)
def shift(hex_value: str, value: float = 1.0, sat: float = 1.0, hue: float = 0.0) -> str:
    """Scale HSV value and saturation and rotate the hue (in turns) toward warm/cool."""
    h, s, v = colorsys.rgb_to_hsv(*rgb(hex_value))
    return to_hex(*colorsys.hsv_to_rgb((h + hue) % 1.0, min(1.0, s * sat), min(1.0, v * value)))


@lru_cache(maxsize=2048)
def shade(hex_value: str, amount: float = 0.18) -> str:
    """A cel-shading shade: darker, a touch more saturated, hue pulled toward red/violet (never grey)."""
    h, s, v = colorsys.rgb_to_hsv(*rgb(hex_value))
    warm = 0.0 if s < 0.05 else (-0.02 if h < 0.5 else 0.02)
    s2 = min(1.0, s * (1.0 + amount * 1.2) + 0.04)
    return to_hex(*colorsys.hsv_to_rgb((h + warm) % 1.0, s2, v * (1.0 - amount)))


@lru_cache(maxsize=2048)
def outline(hex_value: str) -> str:
    """The line colour for a fill: a deep, saturated version of it (coloured lines, not black)."""
    h, s, v = colorsys.rgb_to_hsv(*rgb(hex_value))
    warm = 0.0 if s < 0.05 else (-0.025 if h < 0.5 else 0.02)
    target_v = 0.34 + 0.12 * v if v > 0.35 else v * 0.62
    s2 = min(1.0, max(s * 1.25, 0.25 if s > 0.05 else s) + 0.1)
    if s < 0.05:  # greys and whites: a cool slate line
        return to_hex(*colorsys.hsv_to_rgb(0.68, 0.18, target_v))
    return to_hex(*colorsys.hsv_to_rgb((h + warm) % 1.0, s2, target_v))


def light(hex_value: str, t: float = 0.4) -> str:
    return mix(hex_value, "#ffffff", t)


@dataclass(frozen=True)
class Tone:
    """A fill with its derived shade, deep shade, light and outline colours."""

    base: str
    shade: str
    deep: str
    light: str
    line: str

    @classmethod
    def of(cls, hex_value: str) -> Tone:
        return _tone(hex_value)


@lru_cache(maxsize=1024)
def _tone(hex_value: str) -> Tone:
    return Tone(
        base=hex_value,
        shade=shade(hex_value, 0.16),
        deep=shade(hex_value, 0.32),
        light=light(hex_value, 0.45),
        line=outline(hex_value),
    )


@dataclass(frozen=True)
class Skin:
    base: str
    shade: str
    light: str
    line: str
    blush: str
    mouth: str
    lip: str


@lru_cache(maxsize=64)
def skin(hex_value: str) -> Skin:
    """Skin colours for one tone: warm shades on every tone, deep tones get a golden light, berry blush."""
    h, s, v = colorsys.rgb_to_hsv(*rgb(hex_value))
    deep = v < 0.6
    shade_c = to_hex(*colorsys.hsv_to_rgb((h - 0.018) % 1.0, min(1.0, s * 1.18 + 0.05), v * 0.86))
    line_v = v * 0.5 if deep else 0.42 + 0.1 * v
    line = to_hex(*colorsys.hsv_to_rgb((h - 0.025) % 1.0, min(1.0, s * 1.15 + 0.2), line_v))
    light_c = mix(hex_value, "#ffe3c4" if deep else "#fff6ef", 0.28 if deep else 0.5)
    blush = "#c8344f" if deep else ("#ff7f8f" if v > 0.85 else "#f0606e")
    mouth = to_hex(*colorsys.hsv_to_rgb(0.985, 0.62, 0.42 if deep else 0.55))
    lip = mix(line, "#a8324a", 0.35)
    return Skin(hex_value, shade_c, light_c, line, blush, mouth, lip)


def _lin(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _unlin(c: float) -> float:
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


@lru_cache(maxsize=1024)
def lab(hex_value: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    r, g, b = (_lin(x) for x in rgb(hex_value))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def fn(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = fn(x), fn(y), fn(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def from_lab(l_star: float, a: float, b: float) -> str:
    fy = (l_star + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def inv(t: float) -> float:
        return t**3 if t**3 > 0.008856 else (t - 16 / 116) / 7.787

    x, y, z = inv(fx) * 0.95047, inv(fy), inv(fz) * 1.08883
    r = 3.2406 * x - 1.5372 * y - 0.4986 * z
    g = -0.9689 * x + 1.8758 * y + 0.0415 * z
    bl = 0.0557 * x - 0.2040 * y + 1.0570 * z
    return to_hex(*(_unlin(min(1.0, max(0.0, v))) for v in (r, g, bl)))


def delta_e(a: str, b: str) -> float:
    """CIE76 colour difference."""
    la, lb = lab(a), lab(b)
    return sum((x - y) ** 2 for x, y in zip(la, lb, strict=True)) ** 0.5


# Hair and clothes closer than this (CIE76) read as one shape (long hair + hoodie = a hood).
MIN_HAIR_OUTFIT_DE = 24.0


@lru_cache(maxsize=1024)
def apart_from(fill: str, other: str, min_de: float = MIN_HAIR_OUTFIT_DE) -> str:
    """``fill`` with its lightness moved away from ``other`` until they differ by ``min_de``; hue and chroma
    stay, so a black hoodie under black hair becomes a charcoal one, a pink sweater under pink hair a deeper
    pink. Returns ``fill`` itself when the two already differ enough."""
    if delta_e(fill, other) >= min_de:
        return fill
    l1, a1, b1 = lab(fill)
    l2 = lab(other)[0]
    if l2 > 85:
        min_de = min(min_de, 16.0)  # near-white hair: a light grey-tinted outfit is enough, not a dark one
    # move away from the other colour's lightness: keep the side it is already on, else the side with room
    up = l1 > l2 if abs(l1 - l2) > 3 and 15 < l2 < 85 else l2 < 50
    for step in range(1, 41):
        cand = from_lab(min(98.0, max(4.0, l1 + (step * 2.0 if up else -step * 2.0))), a1, b1)
        if delta_e(cand, other) >= min_de:
            return cand
    return from_lab(85.0 if up else 20.0, a1, b1)
