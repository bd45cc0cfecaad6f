"""The attributes a chibi avatar is judged by, as integer labels: what the attribute classifier predicts, what
the GAN is conditioned on, and what "conditional accuracy" checks in generated images.

Single-choice heads: hair colour (the catalog's named colours; none for bald heads), hair style,
expression and skin tone. Items are a multi-label head (any of the catalog's items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from generation import catalog
from generation.spec import AvatarSpec

__all__ = ["HEADS", "IGNORE", "ITEMS", "Labels", "condition_size", "condition_vector", "labels_of"]

IGNORE = -1  # a head with no answer for this avatar (hair colour on a bald head)
# The label set the shipped models (generation/weights) were trained on, frozen: the catalog may grow (a new
# colour, a new item) without invalidating them. A catalog entry that is not listed here has no label (its
# head is IGNORE, its item is left out) until the models are retrained with a longer list; a listed id that
# leaves the catalog is caught by tests/generation/test_training.py.
HEADS: dict[str, tuple[str, ...]] = {
    "hair_color": (
        "black", "dark_brown", "brown", "light_brown", "auburn", "ginger", "blonde", "platinum", "silver",
        "white", "red", "pink", "hot_pink", "pastel_pink", "peach", "orange", "yellow", "cream", "mint", "green",
        "dark_green", "teal", "sky_blue", "blue", "navy", "lavender", "purple", "plum", "grey_blue", "charcoal",
    ),
    "hair_style": (
        "short", "bob", "hime", "long_straight", "long_wavy", "twin_tails", "ponytail", "bun", "spiky",
        "side_swept", "curly", "afro", "braids", "buzz", "bald", "messy",
    ),
    "expression": (
        "smile", "grin", "laugh", "neutral", "wink", "sleepy", "surprised", "angry", "sad", "crying", "shy",
        "smirk", "cat_mouth", "tongue_out", "love", "determined",
    ),
    "skin_tone": (
        "porcelain", "ivory", "fair", "light", "beige", "tan", "caramel", "brown", "deep", "ebony",
    ),
}  # fmt: skip
ITEMS: tuple[str, ...] = (
    "beanie", "witch_hat", "beret", "crown", "cap", "straw_hat", "top_hat", "bandana", "santa_hat", "halo",
    "cat_ears", "fox_ears", "bunny_ears", "bear_ears", "horns", "bow", "flower", "hair_clip", "headphones",
    "round_glasses", "square_glasses", "sunglasses", "eyepatch", "face_mask", "freckles", "fangs", "bandage",
    "beauty_mark", "earrings", "scarf", "bow_tie", "necklace", "hijab", "angel_wings", "bat_wings", "magic_wand",
    "boba_tea",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Labels:
    heads: dict[str, int]  # head -> class index or IGNORE
    items: tuple[int, ...]  # item indices

    def items_multi_hot(self) -> np.ndarray:
        out = np.zeros(len(ITEMS), dtype=np.float32)
        out[list(self.items)] = 1.0
        return out


def _color_id(hex_value: str | None) -> int:
    if not hex_value:
        return IGNORE
    name = catalog.color_name(hex_value)
    entry = catalog.find("color", name)
    return _index("hair_color", entry.id) if entry else IGNORE


def _index(head: str, value: str) -> int:
    names = HEADS[head]
    return names.index(value) if value in names else IGNORE


def labels_of(spec: AvatarSpec | dict[str, Any]) -> Labels:
    if isinstance(spec, dict):
        spec = AvatarSpec.from_json(spec)
    s = spec.resolved()
    style = s.hair.style or "short"
    return Labels(
        heads={
            "hair_color": IGNORE if style == "bald" else _color_id(s.hair.color),
            "hair_style": _index("hair_style", style),
            "expression": _index("expression", s.expression or "smile"),
            "skin_tone": _index("skin_tone", s.skin_tone or "fair"),
        },
        items=tuple(sorted(ITEMS.index(i) for i in s.items if i in ITEMS)),
    )


def condition_size() -> int:
    return sum(len(v) for v in HEADS.values()) + len(ITEMS)


def condition_vector(labels: Labels) -> np.ndarray:
    """One-hot per head (all zeros where IGNORE) followed by the items' multi-hot: the GAN's condition."""
    parts = []
    for head, names in HEADS.items():
        one = np.zeros(len(names), dtype=np.float32)
        if labels.heads[head] != IGNORE:
            one[labels.heads[head]] = 1.0
        parts.append(one)
    parts.append(labels.items_multi_hot())
    return np.concatenate(parts)
