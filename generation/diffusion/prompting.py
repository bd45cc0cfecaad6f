"""AvatarSpec -> prompt and negative prompt, in the tag language anime checkpoints were trained on.

The order is what CLIP's 77-token window keeps first: quality and style preset, then the spec's parts (hair,
eyes, expression, items, outfit, background), then the user's own words (only their Latin-script part: the
spec already carries what the parser understood from Chinese), then ``extra_prompt``. The same spec always
gives the same prompt. No torch here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generation import catalog
from generation.spec import AvatarSpec

__all__ = ["NEGATIVE", "STYLE_PRESETS", "PromptPair", "build_prompt", "spec_tags"]

STYLE_PRESETS: dict[str, tuple[str, str]] = {
    # style -> (positive preset, extra negative)
    "chibi": (
        "masterpiece, best quality, chibi, super deformed, cute, big head, small body, solo, looking at viewer",
        "realistic proportions, tall",
    ),
    "flat": (
        "masterpiece, best quality, chibi, super deformed, cute, solo, flat color, clean lineart, looking at viewer",
        "gradient shading, realistic",
    ),
    "painted": (
        "masterpiece, best quality, chibi, super deformed, cute, solo, soft painting, watercolor, looking at viewer",
        "flat color",
    ),
    "none": ("", ""),
}

NEGATIVE = (
    "nsfw, lowres, bad anatomy, bad hands, extra digits, fewer digits, cropped, worst quality, low quality, "
    "normal quality, jpeg artifacts, signature, watermark, username, text, blurry, photo, realistic, 3d"
)

HAIR_STYLE_TAGS: dict[str, str] = {
    "short": "short hair",
    "bob": "bob cut",
    "hime": "hime cut, long hair",
    "long_straight": "long hair, straight hair",
    "long_wavy": "long hair, wavy hair",
    "twin_tails": "twintails",
    "ponytail": "ponytail",
    "bun": "hair bun",
    "spiky": "spiky hair",
    "side_swept": "side-swept hair",
    "curly": "curly hair",
    "afro": "afro",
    "braids": "braid",
    "buzz": "very short hair, buzz cut",
    "bald": "bald",
    "messy": "messy hair",
}
HAIR_FRONT_TAGS: dict[str, str] = {
    "bangs": "blunt bangs",
    "swept": "swept bangs",
    "parted": "parted bangs",
    "wispy": "wispy bangs",
    "open": "forehead",
}
EYE_STYLE_TAGS: dict[str, str] = {
    "round": "round eyes",
    "sparkle": "sparkling eyes",
    "gentle": "gentle eyes",
    "sharp": "tsurime",
    "droopy": "tareme",
    "dot": "dot eyes",
}
EXPRESSION_TAGS: dict[str, str] = {
    "smile": "smile",
    "grin": "grin",
    "laugh": "laughing, open mouth",
    "neutral": "closed mouth, expressionless",
    "wink": "one eye closed, wink",
    "sleepy": "sleepy, half-closed eyes",
    "surprised": "surprised, open mouth",
    "angry": "angry, pout",
    "sad": "sad",
    "crying": "crying, tears",
    "shy": "embarrassed",
    "smirk": "smirk, smug",
    "cat_mouth": ":3",
    "tongue_out": "tongue out",
    "love": "heart-shaped pupils",
    "determined": "determined",
}
SKIN_TAGS: dict[str, str] = {
    "porcelain": "pale skin",
    "ivory": "pale skin",
    "fair": "fair skin",
    "light": "fair skin",
    "beige": "",
    "tan": "tan",
    "caramel": "tan, brown skin",
    "brown": "dark skin",
    "deep": "dark skin",
    "ebony": "dark skin, very dark skin",
}
BLUSH_TAGS: dict[str, str] = {"none": "", "soft": "blush", "strong": "blush, full-face blush"}
BROW_TAGS: dict[str, str] = {"thick": "thick eyebrows"}
FACIAL_HAIR_TAGS: dict[str, str] = {
    "none": "",
    "stubble": "stubble",
    "moustache": "mustache",
    "beard": "beard",
    "goatee": "goatee",
}
ITEM_TAGS: dict[str, str] = {
    "round_glasses": "round eyewear, glasses",
    "square_glasses": "glasses",
    "bow": "hair bow",
    "flower": "hair flower",
    "hair_clip": "hairclip",
    "face_mask": "mouth mask",
    "fangs": "fang",
    "bandage": "bandaid on face",
    "beauty_mark": "mole under eye",
    "angel_wings": "angel wings",
    "bat_wings": "bat wings",
    "magic_wand": "holding wand",
    "boba_tea": "holding bubble tea",
    "elf_ears": "pointy ears",
    "flower_crown": "head wreath, flower crown",
}
HAIR_GREY_TAGS: dict[str, str] = {
    "temples": "grey hair at temples",
    "salt_pepper": "multicolored hair, grey hair",
}
OUTFIT_TAGS: dict[str, str] = {
    "tshirt": "t-shirt",
    "hoodie": "hoodie",
    "sweater": "sweater",
    "sailor": "serafuku, sailor collar",
    "blazer": "school uniform, blazer",
    "suit": "suit, necktie",
    "kimono": "kimono",
    "dress": "frilled dress",
    "armor": "armor",
    "spacesuit": "spacesuit",
    "cape": "high collar, cape",
    "robe": "robe",
}
BACKGROUND_TAGS: dict[str, str] = {
    "solid": "simple background, {c} background",
    "gradient": "gradient background, {c} background",
    "dots": "polka dot background, {c} background",
    "stripes": "striped background, {c} background",
    "stars": "starry background, {c} background",
    "hearts": "heart background, {c} background",
    "blossoms": "cherry blossoms, petals, {c} background",
}


@dataclass(frozen=True, slots=True)
class PromptPair:
    prompt: str
    negative: str


def _color(hex_value: str | None) -> str:
    return catalog.color_name(hex_value) if hex_value else ""


def spec_tags(spec: AvatarSpec) -> list[str]:
    """The resolved spec as tags, in a fixed order (no duplicates)."""
    s = spec.resolved()
    tags: list[str] = []
    hair_style = s.hair.style or "short"
    if hair_style != "bald":
        tags.append(f"{_color(s.hair.color)} hair")
    tags.append(HAIR_STYLE_TAGS.get(hair_style, catalog.get("hair_style", hair_style).en))
    if s.hair.grey and hair_style != "bald":
        tags.append(HAIR_GREY_TAGS.get(s.hair.grey, ""))
    if s.hair.front and hair_style not in ("bald", "buzz"):
        tags.append(HAIR_FRONT_TAGS.get(s.hair.front, ""))
    tags.append(f"{_color(s.eyes.color)} eyes")
    tags.append(EYE_STYLE_TAGS.get(s.eyes.style or "", ""))
    tags.append(EXPRESSION_TAGS.get(s.expression or "", ""))
    tags.append(BLUSH_TAGS.get(s.blush or "", ""))
    tags.append(BROW_TAGS.get(s.brows or "", ""))
    tags.append(SKIN_TAGS.get(s.skin_tone or "", ""))
    tags.append(FACIAL_HAIR_TAGS.get(s.facial_hair or "none", ""))
    for item in s.items:
        tags.append(ITEM_TAGS.get(item, catalog.get("item", item).en))
    if s.outfit.style:
        tags.append(
            f"{_color(s.outfit.color)} {OUTFIT_TAGS.get(s.outfit.style, catalog.get('outfit', s.outfit.style).en)}"
        )
    if s.background.kind:
        tags.append(
            BACKGROUND_TAGS.get(s.background.kind, "simple background").format(c=_color(s.background.color))
        )
    out: list[str] = []
    for group in tags:
        for tag in group.split(","):
            tag = tag.strip()
            if tag and tag not in out:
                out.append(tag)
    return out


_LATIN = re.compile(r"[^\x20-\x7e]+")
_SPACES = re.compile(r"\s+")


def user_words(text: str) -> str:
    """The Latin-script part of the user's prompt, tidied (Chinese and emoji dropped; CLIP reads English)."""
    kept = _LATIN.sub(" ", text)
    kept = kept.replace("|", ",")
    kept = _SPACES.sub(" ", kept)
    kept = re.sub(r"\s*,[\s,]*", ", ", kept).strip(" ,;")
    return kept[:300]


def build_prompt(
    spec: AvatarSpec | dict[str, Any],
    user_text: str = "",
    *,
    style: str = "chibi",
    extra_prompt: str = "",
    extra_negative: str = "",
) -> PromptPair:
    """The prompt and negative prompt for a spec. Deterministic: same inputs, same strings."""
    if isinstance(spec, dict):
        spec = AvatarSpec.from_json(spec)
    preset, preset_negative = STYLE_PRESETS[style]
    parts = [preset, ", ".join(spec_tags(spec)), user_words(user_text), extra_prompt.strip()]
    prompt = ", ".join(p for p in parts if p)
    negative = ", ".join(p for p in (NEGATIVE, preset_negative, extra_negative.strip()) if p)
    return PromptPair(prompt=prompt, negative=negative)
