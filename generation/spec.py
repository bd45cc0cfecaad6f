"""AvatarSpec: the one structured, versioned description of an avatar.

A spec may leave fields open (``None``): :meth:`AvatarSpec.resolved` fills every open field from the spec's
seed. Each field draws from its own random stream (seeded by ``seed`` and the field's name), so fixing or
changing one field never reshuffles another. That is what makes edits exact (same seed, one field changed)
and variations easy (same spec, new seed).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from generation import catalog

SPEC_VERSION = 1
MAX_SEED = 2**63 - 1


class SpecError(ValueError):
    """A spec or a change to it is not allowed; the message says what and why, in plain words."""

    user_facing = True  # the worker passes the message on as it is


def _check_id(category: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value not in catalog.ids(category):
        allowed = ", ".join(catalog.ids(category))
        raise ValueError(f"unknown {category.replace('_', ' ')} {value!r} (allowed: {allowed})")
    return value


def _check_color(value: str | None) -> str | None:
    if value is None:
        return None
    hex_value = catalog.parse_color(value)
    if hex_value is None:
        raise ValueError(f"{value!r} is not a colour name or #rrggbb hex code")
    return hex_value


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HairSpec(_Part):
    style: str | None = None
    front: str | None = None  # fringe; None = the style's own
    color: str | None = None
    highlight: str | None = None
    # grey in the hair: "temples" (grey at the temples) or "salt_pepper" (grey strands all over); None = none.
    # Optional and new in the same spec version: older stored specs simply have no grey.
    grey: str | None = None

    _style = field_validator("style")(lambda v: _check_id("hair_style", v))
    _front = field_validator("front")(lambda v: _check_id("hair_front", v))
    _grey = field_validator("grey")(lambda v: _check_id("hair_grey", v))
    _colors = field_validator("color", "highlight")(lambda v: _check_color(v))


class EyesSpec(_Part):
    style: str | None = None
    color: str | None = None
    catchlights: bool | None = None

    _style = field_validator("style")(lambda v: _check_id("eye_style", v))
    _color = field_validator("color")(lambda v: _check_color(v))


class OutfitSpec(_Part):
    style: str | None = None
    color: str | None = None

    _style = field_validator("style")(lambda v: _check_id("outfit", v))
    _color = field_validator("color")(lambda v: _check_color(v))


class BackgroundSpec(_Part):
    kind: str | None = None
    color: str | None = None
    color2: str | None = None

    _kind = field_validator("kind")(lambda v: _check_id("background", v))
    _colors = field_validator("color", "color2")(lambda v: _check_color(v))


class AvatarSpec(_Part):
    """Everything that decides how an avatar looks. ``None`` fields are open: the seed decides them."""

    version: int = SPEC_VERSION
    seed: int = 0
    face_shape: str | None = None
    skin_tone: str | None = None
    eyes: EyesSpec = EyesSpec()
    brows: str | None = None
    expression: str | None = None
    blush: str | None = None
    nose: str | None = None
    hair: HairSpec = HairSpec()
    facial_hair: str | None = None
    items: tuple[str, ...] = ()
    outfit: OutfitSpec = OutfitSpec()
    background: BackgroundSpec = BackgroundSpec()

    _face = field_validator("face_shape")(lambda v: _check_id("face_shape", v))
    _skin = field_validator("skin_tone")(lambda v: _check_id("skin_tone", v))
    _brows = field_validator("brows")(lambda v: _check_id("brows", v))
    _expr = field_validator("expression")(lambda v: _check_id("expression", v))
    _blush = field_validator("blush")(lambda v: _check_id("blush", v))
    _nose = field_validator("nose")(lambda v: _check_id("nose", v))
    _beard = field_validator("facial_hair")(lambda v: _check_id("facial_hair", v))

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SPEC_VERSION:
            raise ValueError(f"spec version {v} is not supported (this build reads version {SPEC_VERSION})")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if not 0 <= v <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}")
        return v

    @field_validator("items", mode="before")
    @classmethod
    def _items_in(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @model_validator(mode="after")
    def _items(self) -> AvatarSpec:
        check_items(self.items)
        return self

    # --- construction and serialisation -------------------------------------------------------------

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AvatarSpec:
        """Validate stored/received JSON; raises SpecError with a readable message."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(_readable(exc)) from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_text(self) -> str:
        """Compact JSON with sorted keys: the ``Spec:`` field of every engine's PNG ``parameters`` chunk."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def replace(self, **changes: Any) -> AvatarSpec:
        """A copy with changes; nested parts may be given as dicts of their changed fields."""
        data = self.to_json()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            elif isinstance(value, BaseModel):
                data[key] = value.model_dump(mode="json")
            else:
                data[key] = list(value) if isinstance(value, tuple) else value
        return AvatarSpec.from_json(data)

    # --- items ---------------------------------------------------------------------------------------

    def with_item(self, item_id: str) -> AvatarSpec:
        """Add an item; it replaces whatever held the same single slot or conflicts with it."""
        catalog.get("item", item_id)
        new = catalog.get("item", item_id)
        kept = [i for i in self.items if i != item_id and not _clash(catalog.get("item", i), new)]
        return self.replace(items=(*kept, item_id))

    def without_item(self, item_id: str) -> AvatarSpec:
        if item_id not in self.items:
            raise SpecError(f"this avatar has no {catalog.get('item', item_id).en}")
        return self.replace(items=tuple(i for i in self.items if i != item_id))

    # --- resolution ----------------------------------------------------------------------------------

    def resolved(self) -> AvatarSpec:
        """The same spec with every open field decided by the seed (deterministic, field by field).

        The picks are valid by construction (catalog ids and ``#rrggbb`` colours), so the copy is made
        without validating again: the result equals ``AvatarSpec.from_json`` of it (tested)."""
        if self.is_resolved():
            return self
        r = _Resolver(self.seed)
        style = self.hair.style or r.pick("hair.style", catalog.ids("hair_style"))
        hair_color = self.hair.color or r.pick("hair.color", HAIR_PALETTE)
        bg_color = self.background.color or r.pick("background.color", BACKGROUND_PALETTE)
        return self.model_copy(
            update={
                "face_shape": self.face_shape
                or r.pick("face_shape", ("round", "round", "oval", "heart", "oval")),
                "skin_tone": self.skin_tone or r.pick("skin_tone", catalog.ids("skin_tone")),
                "eyes": self.eyes.model_copy(
                    update={
                        "style": self.eyes.style
                        or r.pick("eyes.style", ("round", "sparkle", "gentle", "round", "sharp", "droopy")),
                        "color": self.eyes.color or r.pick("eyes.color", EYE_PALETTE),
                        "catchlights": True if self.eyes.catchlights is None else self.eyes.catchlights,
                    }
                ),
                "brows": self.brows or r.pick("brows", ("soft", "soft", "straight", "thin", "thick")),
                "expression": self.expression
                or r.pick("expression", ("smile", "smile", "grin", "cat_mouth", "laugh", "shy")),
                "blush": self.blush or r.pick("blush", ("soft", "soft", "strong", "none")),
                "nose": self.nose or r.pick("nose", ("dot", "dot", "small", "none")),
                "hair": self.hair.model_copy(
                    update={
                        "style": style,
                        "front": self.hair.front
                        or DEFAULT_FRONT.get(style)
                        or r.pick("hair.front", ("bangs", "swept", "wispy")),
                        "color": hair_color,
                        "highlight": self.hair.highlight or _highlight(hair_color),
                    }
                ),
                "facial_hair": self.facial_hair or "none",
                "outfit": self.outfit.model_copy(
                    update={
                        "style": self.outfit.style
                        or r.pick("outfit.style", ("tshirt", "hoodie", "sweater", "sailor", "blazer")),
                        "color": self.outfit.color or r.pick("outfit.color", OUTFIT_PALETTE),
                    }
                ),
                "background": self.background.model_copy(
                    update={
                        "kind": self.background.kind
                        or r.pick("background.kind", ("gradient", "solid", "dots", "stars", "hearts")),
                        "color": bg_color,
                        "color2": self.background.color2 or _lighter(bg_color),
                    }
                ),
            }
        )

    def is_resolved(self) -> bool:
        """No field is left open (``resolved()`` would change nothing; tested against it)."""
        e, h, o, b = self.eyes, self.hair, self.outfit, self.background
        return None not in (
            self.face_shape,
            self.skin_tone,
            e.style,
            e.color,
            e.catchlights,
            self.brows,
            self.expression,
            self.blush,
            self.nose,
            h.style,
            h.front,
            h.color,
            h.highlight,
            self.facial_hair,
            o.style,
            o.color,
            b.kind,
            b.color,
            b.color2,
        )


def check_items(items: Sequence[str]) -> None:
    """Every item exists, appears once, single slots hold one item and no two items conflict."""
    seen: dict[str, str] = {}
    entries = []
    for item in items:
        try:
            entry = catalog.get("item", item)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        if item in seen.values():
            raise ValueError(f"{entry.en} is listed twice")
        slot = entry.slot or ""
        if slot not in catalog.MULTI_SLOTS and slot in seen:
            other = catalog.get("item", seen[slot]).en
            raise ValueError(
                f"{entry.en} and {other} cannot be worn together (both go in the {slot.replace('_', ' ')} slot)"
            )
        seen.setdefault(slot, item)
        entries.append(entry)
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            if _clash(a, b) and a.slot != b.slot:
                raise ValueError(f"{a.en} and {b.en} cannot be worn together")


def _clash(a: catalog.Entry, b: catalog.Entry) -> bool:
    if a.slot == b.slot and a.slot not in catalog.MULTI_SLOTS:
        return True
    return bool({b.id, b.slot} & set(a.conflicts) or {a.id, a.slot} & set(b.conflicts))


def _readable(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


_rngs = threading.local()


class _Resolver:
    """Each open field is picked by its own stream, seeded by the spec's seed and the field's name (so a
    field's pick never depends on the others). One generator per thread is re-seeded for each pick: the
    same stream as ``random.Random(name)``, without allocating one (a fresh spec makes about 17 picks)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def pick(self, field: str, choices: Sequence[str]) -> str:
        rng = getattr(_rngs, "rng", None)
        if rng is None:
            rng = _rngs.rng = random.Random()
        rng.seed(f"chibify:{self.seed}:{field}")
        return rng.choice(choices)


def _mix(hex_value: str, other: str, t: float) -> str:
    a = [int(hex_value[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _highlight(hair_hex: str) -> str:
    return _mix(hair_hex, "#ffffff", 0.45)


def _lighter(hex_value: str) -> str:
    return _mix(hex_value, "#ffffff", 0.55)


DEFAULT_FRONT: dict[str, str] = {
    "hime": "bangs",
    "bob": "bangs",
    "twin_tails": "bangs",
    "side_swept": "swept",
    "long_wavy": "parted",
    "buzz": "open",
    "bald": "open",
    "afro": "open",
    "spiky": "swept",
}

HAIR_PALETTE: tuple[str, ...] = (
    "#2b2630", "#4a3128", "#7a4e34", "#a8764f", "#f2cf6f", "#d8723a", "#f49ac1", "#c7b3ec",
    "#8cc8f0", "#c3c7d1", "#9a4a2c", "#3fb6b2", "#f9c9dc",
)  # fmt: skip
EYE_PALETTE: tuple[str, ...] = (
    "#5a3a2a", "#3b6fd1", "#3a9a6a", "#8a5cc7", "#d9455f", "#c58b2a", "#2f2f3a", "#3fb6b2",
)  # fmt: skip
OUTFIT_PALETTE: tuple[str, ...] = (
    "#f49ac1", "#8cc8f0", "#a6e3c8", "#f7d84a", "#c7b3ec", "#ffbf9b", "#4a7fd9", "#f5ead0", "#d94452", "#4b4f58",
)  # fmt: skip
BACKGROUND_PALETTE: tuple[str, ...] = (
    "#ffd6e7", "#d6ecff", "#dff7e9", "#fff1c9", "#eadcff", "#ffe1d0", "#d9f4f4", "#f3e6ff",
)  # fmt: skip
