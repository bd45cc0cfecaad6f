"""Measures -> attributes (catalog values with a confidence) -> :class:`~generation.spec.AvatarSpec`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from generation import catalog
from generation.face.colour import hex_lab
from generation.face.measure import Measures
from generation.face.reading import EYE_HEX, GLASSES_ITEM, Reading
from generation.spec import AvatarSpec, HairSpec

#: Below this, an attribute is not trusted and the spec gets a neutral choice instead.
MIN_CONFIDENCE = 0.55


# The hair colours a photo can have, as catalog colour ids, with the coarse name used for evaluation.
HAIR_COLOR_CLASS: dict[str, str] = {
    "black": "black",
    "dark_brown": "brown",
    "brown": "brown",
    "light_brown": "brown",
    "auburn": "red",
    "ginger": "red",
    "blonde": "blonde",
    "platinum": "blonde",
    "silver": "gray_white",
    "white": "gray_white",
}


@dataclass(frozen=True)
class Attribute:
    """One measured attribute: its value and how sure we are (0..1)."""

    value: str | bool | None
    confidence: float

    def trusted(self) -> bool:
        return self.value is not None and self.confidence >= MIN_CONFIDENCE


def skin_attribute(
    skin: NDArray[np.float32], relative: NDArray[np.float32] | None = None, clipped: float = 0.0
) -> Attribute:
    """A step of the catalog's 10-step scale from cheek skin (see docs/selfie.md, "Skin tone").

    ``skin`` is the cheek's Lab after the photo's exposure was brought to its white point (so a dim photo reads
    like a well-lit one) and a tempered white balance; ``relative`` the same cheek after a full grey-world balance
    (the skin's colour against the whole photo, which a colour cast over the photo cannot move).
    Two cues, and the darker one wins, so that neither can pull anyone lighter than the other measured:
    lightness (L*, compared with the catalog's mid-tones after one fixed offset for everyone, since photo skin
    carries shading) and, for skin that is strongly yellow against the photo around it, that hue, which
    exposure and a colour cast do not change: a bright, flash-lit portrait of a brown-skinned person stays brown.
    ``clipped`` is the share of the face at the top of the range: an over-exposed face (more than
    :data:`CLIP_NORMAL` of it clipped) is read darker, by :data:`CLIP_L` L* per unit of clipped share, since
    its true lightness is lost (docs/selfie.md).
    """
    tones = catalog.SKIN_TONES
    scale_l = np.array([hex_lab(str(t.hex))[0] for t in tones])  # descending
    lightness = float(skin[0]) - CLIP_L * max(0.0, clipped - CLIP_NORMAL)
    target_l = lightness + SKIN_L_OFFSET
    idx_l = float(np.interp(-target_l, -scale_l, np.arange(len(tones))))
    idx_h = 0.0
    if relative is not None and lightness < SKIN_HUE_MAX_L:
        hue = math.degrees(math.atan2(float(relative[2]), float(relative[1])))
        chroma = math.hypot(float(relative[1]), float(relative[2]))
        if chroma >= SKIN_HUE_MIN_CHROMA and hue >= SKIN_HUE_MIN:
            idx_h = min(7.0, 5.0 + (hue - SKIN_HUE_MIN) / 4.0)  # tan at the threshold .. brown 8 degrees on
    idx = max(idx_l, idx_h)
    best = round(idx)
    conf = 0.9 - 0.5 * abs(idx - best)  # near the middle of a step: sure; near a boundary: less
    return Attribute(tones[best].id, conf)


#: The hue cue (docs/selfie.md): cheek hue against the photo (grey world) at or above this angle, with at least
#: this chroma, on a cheek darker than SKIN_HUE_MAX_L (near-white skin in a bright photo carries no hue cue).
SKIN_HUE_MIN = 85.0
SKIN_HUE_MIN_CHROMA = 18.0
SKIN_HUE_MAX_L = 80.0
#: Over-exposure: the share of a face that is normally clipped at most, and L* taken off per unit above it.
CLIP_NORMAL = 0.1
CLIP_L = 25.0


#: Fixed lightness offset between cheek skin measured in a photo and the catalog's illustration mid-tones.
SKIN_L_OFFSET = 8.0


def hair_color(lab: NDArray[np.float32] | None, skin: NDArray[np.float32]) -> Attribute:
    """A catalog hair colour from the hair's Lab (after the photo's exposure and white balance).

    Black and dark brown are told apart by warmth, not by lightness, which the light decides: brown hair keeps
    a warm cast (b* or a* clearly positive) even when it is dark in the photo; black hair stays neutral
    however bright its shine.
    """
    if lab is None:
        return Attribute(None, 0.0)
    lightness, a, b = (float(v) for v in lab)
    chroma = math.hypot(a, b)
    warm = b >= 6 or a >= 4
    rel = lightness / max(float(skin[0]), 1.0)  # hair against the same face's skin, in the photo's own light
    if a >= 9 and a >= 0.62 * b and chroma >= 15:
        value, conf = ("ginger" if lightness > 48 else "auburn"), 0.75
    elif chroma < 9 and lightness > 52:
        value, conf = ("white" if lightness > 80 else "silver"), 0.8
    elif (lightness < 10 and chroma < 5) or (not warm and lightness < 50):
        value, conf = "black", 0.8 if chroma < 4 else 0.65
    elif (lightness > 62 and b > 18) or (lightness > 50 and b > 12) or (rel >= BLONDE_REL and b >= 8):
        value, conf = ("platinum" if chroma < 22 and lightness > 70 else "blonde"), 0.7
    elif lightness < 25:
        value, conf = "dark_brown", 0.65
    elif lightness < 40:
        value, conf = "brown", 0.65
    else:
        value, conf = "light_brown", 0.6
    return Attribute(value, conf)


#: Hair at least this light against the cheek (L* ratio), and warm, is blonde even when the light is dim.
BLONDE_REL = 0.55


def hair_grey(m: Measures, color: Attribute) -> Attribute:
    """None (no grey), "temples" or "salt_pepper" (catalog category ``hair_grey``) for coloured hair."""
    if color.value in (None, "silver", "white") or m.hair_px < 30:
        return Attribute(None, 0.6)
    if SALT_PEPPER <= m.hair_grey < 0.6:
        return Attribute("salt_pepper", 0.6)
    if m.temple_grey >= GREY_TEMPLES:
        return Attribute("temples", 0.55)
    return Attribute(None, 0.6)


#: Share of the scalp above the forehead that is skin-coloured on a bald head.
BALD_SCALP = 0.8
#: Grey thresholds: share of grey strands in the hair for salt-and-pepper, and how much greyer the temples are.
SALT_PEPPER = 0.2
GREY_TEMPLES = 0.12


def clothes(m: Measures) -> dict[str, Attribute]:
    """``outfit`` (catalog outfit id), ``outfit_color`` (catalog colour id) and ``outfit_tone`` (dark, mid,
    light) from the torso under the face (docs/selfie.md, "Clothes").

    Bare shoulders and chest: a dress (the catalog's one bare-shouldered garment). A light centre (shirt, tie,
    open collar) between dark sides: a suit or a blazer. Otherwise a sweater when the collar hides the neck,
    a t-shirt when the neck shows.
    """
    if m.torso_px < MIN_TORSO:
        none = Attribute(None, 0.0)
        return {"outfit": none, "outfit_color": none, "outfit_tone": none}
    if m.torso_skin >= BARE_TORSO or m.cloth_lab is None:
        kind = Attribute("dress", 0.6 if m.torso_skin >= BARE_TORSO else 0.45)
    elif m.torso_skin < 0.25 and (
        (m.centre_dl >= SUIT_CENTRE_DL and m.side_dark >= 0.6) or m.centre_dl >= 2 * SUIT_CENTRE_DL
    ):
        kind = Attribute("suit", min(0.9, 0.6 + (m.centre_dl - SUIT_CENTRE_DL) / 60))
    elif m.neck_skin < 0.3:
        kind = Attribute("sweater", 0.55)
    else:
        kind = Attribute("tshirt", 0.55)
    if m.cloth_lab is None:
        return {"outfit": kind, "outfit_color": Attribute(None, 0.0), "outfit_tone": Attribute(None, 0.0)}
    lightness = float(m.cloth_lab[0])
    tone = "dark" if lightness < DARK_CLOTH_L else "light" if lightness > LIGHT_CLOTH_L else "mid"
    return {
        "outfit": kind,
        "outfit_color": Attribute(nearest_color(m.cloth_lab, CLOTH_COLORS), 0.7),
        "outfit_tone": Attribute(tone, 0.7),
    }


#: Clothes thresholds: torso seen (face areas), share of bare skin for a dress, centre-over-sides lightness
#: (L*) for a suit, and the L* limits of the dark, mid and light tones.
MIN_TORSO = 0.3
BARE_TORSO = 0.35
SUIT_CENTRE_DL = 12.0
DARK_CLOTH_L, LIGHT_CLOTH_L = 33.0, 70.0
#: The catalog colours clothes are drawn in.
CLOTH_COLORS = ("black", "charcoal", "white", "cream", "brown", "dark_brown", "light_brown", "red", "plum",
                "pink", "pastel_pink", "peach", "orange", "yellow", "mint", "green", "dark_green", "teal",
                "sky_blue", "blue", "navy", "grey_blue", "lavender", "purple", "silver")  # fmt: skip


def nearest_color(lab: NDArray[np.float32], ids: tuple[str, ...]) -> str:
    """The catalog colour among ``ids`` nearest to a measured Lab colour (chroma counts double: a photo's
    colours are duller than the illustration's, and a navy suit must not become charcoal)."""

    def dist(entry_id: str) -> float:
        ref = hex_lab(str(catalog.get("color", entry_id).hex))
        d_l = float(lab[0] - ref[0])
        return d_l * d_l + 2.0 * float((lab[1] - ref[1]) ** 2 + (lab[2] - ref[2]) ** 2)

    return min(ids, key=dist)


def facial_hair(m: Measures) -> Attribute:
    """none, stubble, moustache or beard from the chin and upper-lip zones against the cheek (docs/selfie.md).

    Hair is darker than the skin *and* adds fine texture; a shadow, a smile line or a dimple only darkens, and
    lipstick shifts the lip zone's colour towards red (a negative ``lip_dc``), which hair never does. So every
    rule needs texture as well as darkness, and the lip rules need a lip zone that is not redder than the cheek.
    """
    lip = m.lip_dl + 0.5 * m.lip_dc
    chin = m.chin_dl + 0.5 * m.chin_dc
    lip_hairy = m.lip_dc > LIPSTICK_DC and m.lip_tex > 1.2
    chin_beard = m.chin_tex > BEARD_TEX and m.chin_dl > 6.0
    if chin_beard or (lip > 17 and lip_hairy and chin > 8):
        return Attribute("beard", min(0.95, 0.6 + max(m.chin_tex - BEARD_TEX, (lip - 17) / 10) / 4))
    if lip > 17 and lip_hairy and m.lip_tex > 2.0 and m.lip_dark > 0.6:
        return Attribute("moustache", 0.6)
    stubble = m.lip_tex + m.chin_tex
    if m.lip_dc > LIPSTICK_DC and m.chin_tex > 0.9 and stubble > STUBBLE_TEX:
        return Attribute("stubble", min(0.85, 0.55 + (stubble - STUBBLE_TEX) / 4))
    return Attribute("none", min(0.95, 0.6 + max(0.0, STUBBLE_TEX - stubble) / 6))


def eye_color(m: Measures) -> Attribute:
    """brown, hazel, green, blue or grey from the iris ring (mesh iris landmarks), read against the sclera.

    A brown iris is warm (a* and b* both positive) and dark against the whites of the same eyes; blue, grey and
    green irises are neutral or cool and lighter. In a dim photo the whole eye is dark, so darkness alone is
    compared with the sclera, never with a fixed value, unless the sclera cannot be seen.
    """
    iris = m.iris_lab
    conf = min(0.9, max(0.0, (m.iris_r - 3.0) / 6.0)) * min(1.0, m.eye_open / 0.22)
    if iris is None or conf <= 0:
        return Attribute(None, 0.0)
    lightness, a, b = (float(v) for v in iris)
    ratio = lightness / m.sclera_l if m.sclera_l and m.sclera_l > 20 else lightness / 70.0
    warm = a >= 4 and b >= 4
    if warm and (ratio < 0.55 or lightness < 30):
        return Attribute("brown", conf)
    if ratio < DARK_IRIS_RATIO and not (b < -2 or a < -2):  # neutral but very dark against the sclera
        return Attribute("brown", conf * 0.8)
    if warm:
        return Attribute("hazel", conf * 0.9)
    if b < -2:
        return Attribute("blue", conf)
    if a < -2:
        return Attribute("green", conf)
    if lightness < 12:  # too dark to see a colour: the common case
        return Attribute("brown", conf * 0.7)
    return Attribute("grey", conf * 0.9)


#: Smile score (corner lift, mouth width against the eyes, visible teeth) above which the face smiles; the
#: ratios are taken against the full-resolution face (before, a large face's were inflated by its scale-down).
SMILE_SCORE = -0.1

#: An iris this dark against the sclera (L* ratio) with no cool cast reads brown.
DARK_IRIS_RATIO = 0.3

#: Facial-hair thresholds (grey levels of fine detail above the cheek's; chroma units).
BEARD_TEX = 2.0
STUBBLE_TEX = 2.5
LIPSTICK_DC = -1.0


def glasses_attributes(m: Mapping[str, float]) -> dict[str, Attribute]:
    """``glasses`` (worn or not) and ``glasses_kind`` (round, square, sunglasses) from :func:`glasses_measures`.

    Conservative: a false pair of glasses is worse than a missed one (the user can add them), so anything
    short of a clear ring or clearly dark lenses is "no glasses". A clear ring whose shape is unsure gets
    round glasses (the softer, more common look) with the shape's low confidence.
    """
    lens, ring, lower, rect = m["lens_ratio"], m["ring"], m["ring_lower"], m["rectangularity"]
    if lens < SUNGLASSES_LENS_RATIO:
        conf = min(0.9, 0.6 + (SUNGLASSES_LENS_RATIO - lens) * 1.5)
        return {"glasses": Attribute(True, conf), "glasses_kind": Attribute("sunglasses", conf)}
    frame = min(ring, lower + 0.1)
    if frame < GLASSES_RING:
        no = min(0.9, 0.55 + (GLASSES_RING - frame) * 1.5)
        return {"glasses": Attribute(False, no), "glasses_kind": Attribute("none", no)}
    present = min(0.9, 0.5 + (frame - GLASSES_RING) * 2.0)  # just over the line: not trusted
    if math.isnan(rect):
        return {"glasses": Attribute(True, present), "glasses_kind": Attribute("round", 0.5)}
    kind = "square" if rect >= SQUARE_FILL else "round"
    shape_conf = min(present, 0.45 + abs(rect - SQUARE_FILL) * 2.5)  # trusted 0.04 away from the line
    return {"glasses": Attribute(True, present), "glasses_kind": Attribute(kind, shape_conf)}


#: Glasses thresholds (docs/selfie.md): the fraction of ring directions with a frame edge, the lens luminance
#: against the cheek below which lenses are dark, and the rectangularity between an ellipse (1.0) and a box (2.0).
GLASSES_RING = 0.6
SUNGLASSES_LENS_RATIO = 0.3
SQUARE_FILL = 1.2


def attributes(m: Measures) -> dict[str, Attribute]:
    out: dict[str, Attribute] = {}
    skin = m.skin_lab
    out["skin_tone"] = skin_attribute(skin, m.skin_gw, m.face_clipped)
    out["hair_color"] = hair_color(m.hair_lab, skin)
    out["hair_grey"] = hair_grey(m, out["hair_color"])

    # hair amount and length
    hair_above = m.hair_above_frac
    bottom = m.hair_bottom
    if (hair_above < 0.25 and m.hair_height < 0.05) or m.scalp_skin >= BALD_SCALP:
        length = Attribute("bald", 0.6 + 0.3 * (0.25 - hair_above) / 0.25)
    elif bottom is None:
        length = Attribute(None, 0.0)
    elif bottom > 1.3:
        length = Attribute("long", min(0.9, 0.6 + (bottom - 1.3)))
    elif bottom > 0.55 or m.hair_width > 1.45:
        length = Attribute("medium", 0.65)
    else:
        length = Attribute("short", min(0.9, 0.6 + (0.55 - bottom)))
    if length.value == "short" and m.hair_height < 0.08 and hair_above < 0.6:
        length = Attribute("buzz", 0.6)
    out["hair_length"] = length

    # hair type: curls break up the orientation field (low coherence) and add volume (width)
    coh = m.hair_coherence
    if coh is None:
        hair_type = Attribute(None, 0.0)
    elif length.value in ("bald", "buzz"):
        hair_type = Attribute("straight", 0.5)
    else:
        limit = 0.42 if length.value == "short" else 0.62  # short hair reads rough even when straight
        curly_score = (limit - coh) * 8 + max(0.0, m.hair_width - 1.5) * 1.5
        if m.hair_width > 2.1 and curly_score > 0.5:
            hair_type = Attribute("afro", min(0.9, 0.55 + curly_score / 4))
        elif curly_score > 0.25:
            hair_type = Attribute("curly", min(0.9, 0.55 + curly_score / 3))
        elif curly_score > 0.0:
            hair_type = Attribute("wavy", 0.5)
        else:
            hair_type = Attribute("straight", min(0.9, 0.6 - curly_score / 2))
    out["hair_type"] = hair_type
    out["curly"] = Attribute(hair_type.value in ("curly", "afro"), hair_type.confidence)

    out["facial_hair"] = facial_hair(m)
    out.update(clothes(m))

    out.update(glasses_attributes(m.glasses()))

    out["eye_color"] = eye_color(m)

    # expression
    smile = m.corner_lift * 40 + (m.mouth_w - 0.78) * 6 + m.teeth * 1.5
    if smile > SMILE_SCORE:
        expr = Attribute(
            "grin" if m.mouth_open > 0.04 and m.teeth > 0.25 else "smile", min(0.9, 0.55 + smile / 3)
        )
    elif m.mouth_open > 0.07:
        expr = Attribute("surprised", 0.6)
    else:
        expr = Attribute("neutral", min(0.9, 0.55 + (SMILE_SCORE - smile) / 2))
    out["expression"] = expr
    out["smiling"] = Attribute(expr.value in ("smile", "grin", "laugh"), expr.confidence)
    out["mouth_open"] = Attribute(m.mouth_open > 0.05, 0.7)

    # face shape
    aspect, jaw_r, fore_r, chin_r = m.aspect, m.jaw_ratio, m.forehead_ratio, m.chin_ratio
    if aspect > 1.5:
        shape = Attribute("long", 0.6)
    elif jaw_r > 0.84 and chin_r > 0.4:
        shape = Attribute("square", 0.55)
    elif jaw_r < 0.74 and fore_r > 0.78:
        shape = Attribute("heart", 0.55)
    elif aspect < 1.22:
        shape = Attribute("round", 0.6)
    else:
        shape = Attribute("oval", 0.6)
    out["face_shape"] = shape

    # brows: weight from the pixels (the mesh draws every brow the same height) and the contrast with the skin
    if m.brow_px >= 0.065 and m.brow_contrast >= 38:
        brows = Attribute("thick", 0.6)
    elif m.brow_px < 0.045 or m.brow_contrast < 20:
        brows = Attribute("thin", 0.55)
    elif m.brow_arch < 0.03:
        brows = Attribute("straight", 0.55)
    else:
        brows = Attribute("soft", 0.6)
    out["brows"] = brows
    return out


# --------------------------------------------------------------------------------------------------------
# attributes -> spec

NEUTRAL_EYE = "#5a3a2a"


def hair_style(length: Attribute, hair_type: Attribute) -> str | None:
    """Catalog hair style for a measured length and type (None: leave it to the seed)."""
    if not length.trusted():
        return None
    kind = hair_type.value if hair_type.trusted() else "straight"
    table: dict[str, str | dict[str, str]] = {
        "bald": "bald",
        "buzz": "buzz",
        "short": {"straight": "short", "wavy": "messy", "curly": "curly", "afro": "afro"},
        "medium": {"straight": "bob", "wavy": "messy", "curly": "curly", "afro": "afro"},
        "long": {"straight": "long_straight", "wavy": "long_wavy", "curly": "long_wavy", "afro": "afro"},
    }
    entry = table[str(length.value)]
    return entry if isinstance(entry, str) else entry.get(str(kind), None)


def build_spec(attrs: Mapping[str, Attribute], seed: int) -> AvatarSpec:
    def val(name: str) -> Any:
        a = attrs[name]
        return a.value if a.trusted() else None

    hair_color = val("hair_color")
    style = hair_style(attrs["hair_length"], attrs["hair_type"])
    hair: dict[str, Any] = {"style": style}
    if hair_color:
        hair["color"] = catalog.get("color", hair_color).hex
    if style in ("bald", "buzz"):
        hair["front"] = "open"
    elif attrs["hair_length"].value in ("short", "medium") and style not in ("bob",):
        hair["front"] = "swept"
    items: tuple[str, ...] = ()
    if val("glasses"):
        kind = attrs["glasses_kind"]
        items = (GLASSES_ITEM[str(kind.value)] if kind.trusted() else "round_glasses",)
    if val("hair_grey") and "grey" in HairSpec.model_fields and style != "bald":
        hair["grey"] = val("hair_grey")
    outfit: dict[str, Any] = {}
    if val("outfit"):
        outfit["style"] = val("outfit")
    if val("outfit_color"):
        outfit["color"] = catalog.get("color", val("outfit_color")).hex
    eye = val("eye_color")
    # An analysed face always gets a clean-shaven default and a calm expression rather than a random one.
    return AvatarSpec.model_validate(
        dict(
            outfit=outfit,
            seed=seed,
            skin_tone=val("skin_tone"),
            face_shape=val("face_shape") or "oval",
            brows=val("brows") or "soft",
            expression=val("expression") or "smile",
            facial_hair=val("facial_hair") or "none",
            eyes={"color": EYE_HEX.get(str(eye), NEUTRAL_EYE)},
            hair=hair,
            items=items,
            nose="dot",
        )
    )


def reading_of(spec: AvatarSpec, attrs: Mapping[str, Attribute]) -> Reading:
    """The reading behind a freshly analysed spec (only the trusted attributes, as the spec has them)."""

    def val(name: str) -> str | None:
        a = attrs.get(name)
        return str(a.value) if a is not None and a.trusted() else None

    glasses = next((i for i in spec.items if i in GLASSES_ITEM.values()), None)
    return Reading(
        hair_style=spec.hair.style,
        hair_color=val("hair_color") if spec.hair.style != "bald" else None,
        hair_grey=getattr(spec.hair, "grey", None),
        facial_hair=val("facial_hair"),
        eyes=val("eye_color"),
        glasses=glasses,
        outfit=spec.outfit.style,
        outfit_color=val("outfit_color") if spec.outfit.color else None,
        skin_tone=spec.skin_tone,
        face_shape=val("face_shape"),
        brows=val("brows"),
    )
