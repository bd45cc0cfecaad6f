"""What a selfie analysis read, as catalog ids, and that reading in words (English or Chinese).

Imports only the catalog and the spec (no OpenCV, no MediaPipe), so the bot process can describe a selfie's
spec without loading the analysis: :func:`reading_from_spec` for a stored spec, :func:`describe` for words.
"""

from __future__ import annotations

from dataclasses import dataclass

from generation import catalog
from generation.spec import AvatarSpec

__all__ = ["EYE_HEX", "EYE_NAMES", "GLASSES_ITEM", "Reading", "describe", "reading_from_spec"]

#: Eye colours as the spec stores them (hex), by name.
EYE_HEX = {"brown": "#5a3a2a", "blue": "#3b6fd1", "green": "#3a9a6a", "hazel": "#8a6a3a", "grey": "#7d8da0"}
#: Glasses kinds as catalog items.
GLASSES_ITEM = {"round": "round_glasses", "square": "square_glasses", "sunglasses": "sunglasses"}


@dataclass(frozen=True)
class Reading:
    """What was read from the photo and went into the spec, as catalog ids (None: not read, left open).

    ``hair_style``: catalog ``hair_style``; ``hair_color`` and ``outfit_color``: catalog ``color``; ``hair_grey``:
    catalog ``hair_grey``; ``facial_hair``, ``outfit``, ``face_shape``, ``brows``, ``skin_tone``: their catalog
    categories; ``eyes``: one of :data:`EYE_NAMES`; ``glasses``: a catalog item id.
    """

    hair_style: str | None = None
    hair_color: str | None = None
    hair_grey: str | None = None
    facial_hair: str | None = None
    eyes: str | None = None
    glasses: str | None = None
    outfit: str | None = None
    outfit_color: str | None = None
    skin_tone: str | None = None
    face_shape: str | None = None
    brows: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return dict(self.__dict__)


#: Eye colour names (the spec stores a hex colour, the reading a name): English and Chinese.
EYE_NAMES: dict[str, tuple[str, str]] = {
    "brown": ("brown eyes", "棕色眼睛"),
    "hazel": ("hazel eyes", "榛色眼睛"),
    "green": ("green eyes", "绿色眼睛"),
    "blue": ("blue eyes", "蓝色眼睛"),
    "grey": ("grey eyes", "灰色眼睛"),
}


def reading_from_spec(spec: AvatarSpec) -> Reading:
    """The reading of a selfie's spec as it was stored (a prompt merged over it shows too): colours as the
    nearest catalog colour, eye colour by name when it is one the analysis sets."""
    eyes = next(
        (name for name, hx in EYE_HEX.items() if spec.eyes.color and hx == spec.eyes.color.lower()), None
    )
    return Reading(
        hair_style=spec.hair.style,
        hair_color=_color_id(spec.hair.color) if spec.hair.style != "bald" else None,
        hair_grey=getattr(spec.hair, "grey", None),
        facial_hair=spec.facial_hair,
        eyes=eyes,
        glasses=next((i for i in spec.items if i in GLASSES_ITEM.values()), None),
        outfit=spec.outfit.style,
        outfit_color=_color_id(spec.outfit.color),
        skin_tone=spec.skin_tone,
        face_shape=spec.face_shape,
        brows=spec.brows,
    )


def _color_id(hex_value: str | None) -> str | None:
    if not hex_value:
        return None
    exact = next((e.id for e in catalog.COLORS if e.hex and e.hex.lower() == hex_value.lower()), None)
    if exact:
        return exact
    name = catalog.color_name(hex_value)
    return next((e.id for e in catalog.COLORS if e.en == name), None)


def describe(reading: Reading, lang: str = "en") -> str:
    """A short phrase for what was read, e.g. "short black hair, beard, brown eyes, black suit and tie", in
    English (``"en"``) or Chinese (``"zh"``), from the catalog entries' own names. Skin tone is not said."""
    zh = lang.lower().startswith("zh")

    def name(category: str, entry_id: str | None) -> str:
        if not entry_id:
            return ""
        entry = catalog.get(category, entry_id)
        return entry.zh if zh else entry.en

    parts: list[str] = []
    colour = name("color", reading.hair_color)
    style = reading.hair_style
    if style == "bald":
        parts.append(name("hair_style", "bald"))
    elif style or colour:
        style_name = name("hair_style", style)
        if zh:
            parts.append(colour + (style_name or "头发"))
        elif style_name.endswith(" hair"):
            parts.append(f"{style_name[:-5]} {colour} hair".replace("  ", " ").strip())
        else:
            parts.append(f"{colour} {style_name or 'hair'}".strip())
    if reading.hair_grey:
        parts.append(name("hair_grey", reading.hair_grey))
    if reading.facial_hair and reading.facial_hair != "none":
        parts.append(name("facial_hair", reading.facial_hair))
    if reading.eyes in EYE_NAMES:
        parts.append(EYE_NAMES[reading.eyes][1 if zh else 0])
    if reading.glasses:
        parts.append(name("item", reading.glasses))
    if reading.outfit:
        cloth = name("color", reading.outfit_color)
        outfit = name("outfit", reading.outfit)
        parts.append((cloth + outfit) if zh else f"{cloth} {outfit}".strip())
    return ("，" if zh else ", ").join(p for p in parts if p)
