"""Everything a part needs to draw itself: the resolved spec, the geometry and the derived palette."""

from __future__ import annotations

from dataclasses import dataclass

from generation import catalog
from generation.chibi import color
from generation.chibi.geometry import Geometry, geometry
from generation.spec import AvatarSpec


@dataclass(frozen=True)
class Expr:
    """How one expression draws: eye mode per side, brow tilt, mouth, extras."""

    left: str  # open | happy | closed | wide | heart | angry | sad | half | glance
    right: str
    brow_inner: float  # +down / -up at the inner end
    brow_outer: float
    brow_lift: float
    mouth: str
    tears: bool = False
    extra_blush: bool = False
    anger_mark: bool = False
    sweat: bool = False


EXPRESSIONS: dict[str, Expr] = {
    "smile": Expr("open", "open", 0, 0, 0, "smile"),
    "grin": Expr("open", "open", 0, -1, -2, "grin"),
    "laugh": Expr("happy", "happy", -2, 0, -5, "laugh"),
    "neutral": Expr("open", "open", 0, 0, 0, "flat"),
    "wink": Expr("open", "happy", 0, 0, -2, "smile_open"),
    "sleepy": Expr("closed", "closed", -3, 3, 3, "small_o", sweat=False),
    "surprised": Expr("wide", "wide", -2, 0, -10, "o"),
    "angry": Expr("angry", "angry", 9, -5, 2, "frown", anger_mark=True),
    "sad": Expr("sad", "sad", -8, 4, 0, "frown"),
    "crying": Expr("sad", "sad", -9, 5, 0, "cry", tears=True),
    # shy: worried brows raised in the middle, eyes glancing aside under soft lids, blush, a small wavy smile
    "shy": Expr("glance", "glance", -8, 3, -4, "wavy", extra_blush=True),
    "smirk": Expr("half", "half", 2, -3, 0, "smirk"),
    "cat_mouth": Expr("open", "open", 0, 0, -2, "cat"),
    "tongue_out": Expr("open", "happy", 0, 0, -2, "tongue"),
    "love": Expr("heart", "heart", -3, 1, -3, "smile_open", extra_blush=True),
    "determined": Expr("angry", "angry", 6, -3, 0, "determined"),
}


# Hair styles whose mass reaches the collar and shoulders (and the hoodie's hood).
SHOULDER_HAIR = frozenset(
    {"bob", "hime", "long_straight", "long_wavy", "twin_tails", "ponytail", "curly", "afro", "braids"}
)


@dataclass(frozen=True)
class Ctx:
    spec: AvatarSpec  # resolved
    geo: Geometry
    skin: color.Skin
    hair: color.Tone
    hair_light: str
    eye: str
    outfit: color.Tone
    expr: Expr
    lash: str
    brow: str
    items: frozenset[str]
    slots: dict[str, str]

    @classmethod
    def of(cls, spec: AvatarSpec) -> Ctx:
        s = spec if spec.is_resolved() else spec.resolved()
        assert s.face_shape and s.skin_tone and s.hair.style and s.hair.color and s.hair.highlight
        assert s.eyes.color and s.outfit.color and s.expression
        geo = geometry(s.face_shape, s.hair.style, tuple(s.items))
        skin_hex = catalog.get("skin_tone", s.skin_tone).hex or "#f5d0b5"
        hair = color.Tone.of(s.hair.color)
        lum = color.luminance(s.hair.color)
        lash = color.mix(hair.line, "#2a1620", 0.55 if lum > 0.3 else 0.25)
        skin_lum = color.luminance(skin_hex)
        if skin_lum < 0.4 and color.luminance(lash) > skin_lum * 0.45:
            # deep skin: lash lines (and the closed/happy eye arcs) a near-black so they read at 48 px
            lash = color.mix(lash, "#140a0c", 0.65)
        brow = color.mix(s.hair.color, hair.line, 0.55 if lum > 0.45 else 0.3)
        if s.hair.style == "bald":
            brow = color.mix(color.skin(skin_hex).line, "#3a2418", 0.4)
        return cls(
            spec=s,
            geo=geo,
            skin=color.skin(skin_hex),
            hair=hair,
            hair_light=s.hair.highlight,
            eye=s.eyes.color,
            # hair that reaches the shoulders never merges with clothes of its colour (long hair + a hoodie
            # of the same colour read as a hood); short hair never touches them, so a dark suit stays dark
            outfit=color.Tone.of(
                color.apart_from(s.outfit.color, s.hair.color)
                if s.hair.style in SHOULDER_HAIR
                else s.outfit.color
            ),
            expr=EXPRESSIONS[s.expression],
            lash=lash,
            brow=brow,
            items=frozenset(s.items),
            slots={catalog.item_slot(i): i for i in s.items},
        )
