"""The attributes a chibi avatar is judged by, as integer labels: what the attribute classifier predicts, what
the GAN is conditioned on, and what "conditional accuracy" checks in generated images.

Single-choice heads: hair colour (the catalog's 30 named colours; none for bald heads), hair style,
expression and skin tone. Items are a multi-label head (any of the catalog's 37).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from generation import catalog
from generation.spec import AvatarSpec

__all__ = ["HEADS", "IGNORE", "ITEMS", "Labels", "condition_size", "condition_vector", "labels_of"]

IGNORE = -1  # a head with no answer for this avatar (hair colour on a bald head)
HEADS: dict[str, tuple[str, ...]] = {
    "hair_color": catalog.ids("color"),
    "hair_style": catalog.ids("hair_style"),
    "expression": catalog.ids("expression"),
    "skin_tone": catalog.ids("skin_tone"),
}
ITEMS: tuple[str, ...] = catalog.ids("item")


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
    return HEADS["hair_color"].index(entry.id) if entry else IGNORE


def labels_of(spec: AvatarSpec | dict[str, Any]) -> Labels:
    if isinstance(spec, dict):
        spec = AvatarSpec.from_json(spec)
    s = spec.resolved()
    style = s.hair.style or "short"
    return Labels(
        heads={
            "hair_color": IGNORE if style == "bald" else _color_id(s.hair.color),
            "hair_style": HEADS["hair_style"].index(style),
            "expression": HEADS["expression"].index(s.expression or "smile"),
            "skin_tone": HEADS["skin_tone"].index(s.skin_tone or "fair"),
        },
        items=tuple(sorted(ITEMS.index(i) for i in s.items)),
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
