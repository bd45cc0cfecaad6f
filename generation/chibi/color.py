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


def mix(a: str, b: str, t: float) -> str:
    """Linear mix of two colours: t=0 gives a, t=1 gives b."""
    ra, rb = rgb(a), rgb(b)
    return to_hex(*(x + (y - x) * t for x, y in zip(ra, rb, strict=True)))


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
