"""The visual editor's model: the picker's categories, turning a picked state into the same arguments
``/edit`` takes, the live preview, and the part thumbnails.

The page sends the state it wants (``{"fields": {...}, "items": [...], "text": "..."}``); :func:`plan`
turns it into :class:`EditArgs` for :meth:`bot.studio.Studio.submit_edit`. The preview applies exactly those
arguments with :func:`generation.edits.apply_edit`, as the studio does when saving, so what is previewed is
what is saved (same seed, same spec). Fields ``/edit`` has no argument for (hair style, brows, outfit...)
travel as words of the edit's text, chosen per catalog entry by :func:`phrase` and checked to mean exactly
that entry.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BadInput
from bot.studio import check_text
from generation import catalog
from generation.edits import EditResult, apply_edit
from generation.prompt import MAX_PROMPT_CHARS, PromptError
from generation.spec import AvatarSpec, SpecError

PREVIEW_SIZE = 256
THUMB_SIZE = 112
MAX_ITEMS = 12
MAX_TEXT = 200


@dataclass(frozen=True)
class Field:
    """One picker row: which catalog category offers the values and where the value sits in a spec."""

    name: str
    category: str  # a catalog category, or "color"
    path: tuple[str, ...]


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("hair_style", "hair_style", ("hair", "style")),
        Field("hair_front", "hair_front", ("hair", "front")),
        Field("hair_color", "color", ("hair", "color")),
        Field("eye_style", "eye_style", ("eyes", "style")),
        Field("eye_color", "color", ("eyes", "color")),
        Field("brows", "brows", ("brows",)),
        Field("expression", "expression", ("expression",)),
        Field("blush", "blush", ("blush",)),
        Field("nose", "nose", ("nose",)),
        Field("face_shape", "face_shape", ("face_shape",)),
        Field("facial_hair", "facial_hair", ("facial_hair",)),
        Field("skin_tone", "skin_tone", ("skin_tone",)),
        Field("outfit", "outfit", ("outfit", "style")),
        Field("outfit_color", "color", ("outfit", "color")),
        Field("background", "background", ("background", "kind")),
        Field("background_color", "color", ("background", "color")),
    )
}

#: The picker's tabs, in order: (tab id, the fields it shows; "items" is the item grid).
TABS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hair", ("hair_style", "hair_color", "hair_front")),
    ("eyes", ("eye_style", "eye_color")),
    ("brows", ("brows",)),
    ("expression", ("expression",)),
    ("items", ("items",)),
    ("outfit", ("outfit", "outfit_color")),
    ("background", ("background", "background_color")),
    ("skin", ("skin_tone", "face_shape", "blush", "nose", "facial_hair")),
)

#: The bare word a phrase may need so that a name means this category ("wavy" -> "wavy hair").
_CATEGORY_WORDS = {
    "hair_style": "hair",
    "hair_front": "bangs",
    "eye_style": "eyes",
    "brows": "brows",
    "expression": "face",
    "blush": "blush",
    "nose": "nose",
    "face_shape": "face",
    "facial_hair": "beard",
    "skin_tone": "skin",
    "outfit": "outfit",
    "background": "background",
}

_HEX = re.compile(r"^#[0-9a-f]{6}$")


@dataclass(frozen=True)
class EditState:
    """What the page asks for: field values (catalog ids or #rrggbb), the whole item list, free text."""

    fields: dict[str, str] = field(default_factory=dict)
    items: tuple[str, ...] | None = None
    text: str = ""

    @classmethod
    def from_json(cls, data: Any) -> EditState:
        if not isinstance(data, dict):
            raise BadInput("the editor sent something that is not an edit.", "Reload the page.")
        raw_fields = data.get("fields") or {}
        raw_items = data.get("items")
        text = data.get("text") or ""
        if not isinstance(raw_fields, dict) or not isinstance(text, str):
            raise BadInput("the editor sent something that is not an edit.", "Reload the page.")
        fields: dict[str, str] = {}
        for name, value in raw_fields.items():
            spec_field = FIELDS.get(name)
            if spec_field is None or not isinstance(value, str):
                raise BadInput(f"the editor has no part called {str(name)[:40]!r}.", "Reload the page.")
            if spec_field.category == "color":
                value = value.strip().lower()
                if not _HEX.match(value):
                    raise BadInput(f"{value[:20]!r} is not a colour like #ff88cc.", "Pick a colour again.")
            elif value not in catalog.ids(spec_field.category):
                raise BadInput(
                    f"unknown {spec_field.category.replace('_', ' ')} {value[:40]!r}.", "Reload the page."
                )
            fields[name] = value
        items: tuple[str, ...] | None = None
        if raw_items is not None:
            if not isinstance(raw_items, list) or not all(isinstance(i, str) for i in raw_items):
                raise BadInput("the editor sent something that is not an edit.", "Reload the page.")
            if len(raw_items) > MAX_ITEMS:
                raise BadInput(f"{len(raw_items)} items is too many.", f"Wear at most {MAX_ITEMS}.")
            unknown = [i for i in raw_items if i not in catalog.ids("item")]
            if unknown:
                raise BadInput(f"unknown item {unknown[0][:40]!r}.", "Reload the page.")
            items = tuple(dict.fromkeys(raw_items))
        text = text.strip()
        check_text(text)
        if len(text) > MAX_TEXT:
            raise BadInput(f"the change text is {len(text)} characters long.", f"Use at most {MAX_TEXT}.")
        return cls(fields, items, text)


@dataclass(frozen=True)
class EditArgs:
    """Keyword arguments of :meth:`~bot.studio.Studio.submit_edit` (and of ``apply_edit``)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    expression: str | None = None
    hair_color: str | None = None
    eye_color: str | None = None
    background: str | None = None
    prompt: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "add": list(self.add),
            "remove": list(self.remove),
            "expression": self.expression,
            "hair_color": self.hair_color,
            "eye_color": self.eye_color,
            "background": self.background,
            "prompt": self.prompt,
        }

    @property
    def empty(self) -> bool:
        return not any(self.kwargs().values())


def value_at(spec: AvatarSpec, path: tuple[str, ...]) -> Any:
    value: Any = spec.to_json()
    for key in path:
        value = value[key]
    return value


def selections(spec: AvatarSpec) -> dict[str, Any]:
    """Every picker value of ``spec`` with open choices decided (what the picker highlights)."""
    resolved = spec.resolved()
    out: dict[str, Any] = {name: value_at(resolved, f.path) for name, f in FIELDS.items()}
    out["items"] = list(resolved.items)
    return out


@functools.cache
def phrase(category: str, entry_id: str) -> str | None:
    """Words that an edit's text reads as exactly this entry and nothing else, or None if there are none."""
    entry = catalog.get(category, entry_id)
    path = next(f.path for f in FIELDS.values() if f.category == category)
    word = _CATEGORY_WORDS.get(category, "")
    probe = AvatarSpec(seed=1)
    candidates = (
        entry.en,
        entry.zh,
        f"{entry.en} {word}".strip(),
        *entry.synonyms,
        entry.id.replace("_", " "),
    )
    for text in dict.fromkeys(candidates):
        if "," in text or "，" in text:
            continue
        try:
            result = apply_edit(probe, prompt=text)
        except (SpecError, PromptError):
            continue
        changed = {k for k, v in result.spec.to_json().items() if v != probe.to_json()[k]}
        if not result.errors and value_at(result.spec, path) == entry_id and changed == {path[0]}:
            return text
    return None


def plan(parent: AvatarSpec, state: EditState) -> EditArgs:
    """The ``/edit`` arguments that turn ``parent`` into what the page asks for (only what differs)."""
    now = selections(parent)
    words: list[str] = []
    hair_color = eye_color = expression = background = None
    for name, value in state.fields.items():
        if now[name] == value:
            continue
        spec_field = FIELDS[name]
        if name == "hair_color":
            hair_color = value
        elif name == "eye_color":
            eye_color = value
        elif name == "expression":
            expression = value
        elif name == "background":
            background = value
        elif name in ("outfit_color", "background_color"):
            words.append(f"{value} {'outfit' if name == 'outfit_color' else 'background'}")
        else:
            words_for = phrase(spec_field.category, value)
            if words_for is None:  # pragma: no cover - tests check every entry has words
                label = catalog.get(spec_field.category, value).en
                raise BadInput(f"the editor cannot set {label} yet.", "Describe it in the text box instead.")
            words.append(words_for)
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    if state.items is not None:
        current = list(parent.items)
        remove = tuple(i for i in current if i not in state.items)
        add = tuple(i for i in state.items if i not in current)
    if state.text:
        words.append(state.text)
    prompt = ", ".join(words) or None
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise BadInput("that is too many changes at once.", "Save some of them first, then go on.")
    return EditArgs(add, remove, expression, hair_color, eye_color, background, prompt)


def apply(parent: AvatarSpec, args: EditArgs) -> EditResult:
    """What saving ``args`` makes of ``parent`` (the studio runs the same function when saving)."""
    try:
        return apply_edit(parent, **args.kwargs())
    except (SpecError, PromptError) as exc:
        raise BadInput(str(exc)) from None


def check_result(result: EditResult, state: EditState) -> list[str]:
    """The fields the page asked for that the result does not have (empty when all went as asked). With
    free text the words may change any part on purpose, so then nothing is checked."""
    if state.text:
        return []
    got = selections(result.spec)
    return [name for name, value in state.fields.items() if got[name] != value]


# --- pictures --------------------------------------------------------------------------------------


def render_preview(spec: AvatarSpec, size: int = PREVIEW_SIZE) -> bytes:
    """The chibi engine's PNG of ``spec`` (CPU work: call it in a thread)."""
    from generation.chibi import exports

    return exports.png(spec, size)


#: The model every part thumbnail is drawn on (a neutral, friendly face).
THUMB_MODEL: dict[str, Any] = {
    "seed": 7,
    "face_shape": "round",
    "skin_tone": "light",
    "eyes": {"style": "round", "color": "#7a4e34"},
    "brows": "soft",
    "expression": "smile",
    "blush": "soft",
    "nose": "none",
    "facial_hair": "none",
    "hair": {"style": "short", "color": "#4a3128"},
    "outfit": {"style": "tshirt", "color": "#c7b3ec"},
    "background": {"kind": "solid", "color": "#fde6ef"},
}

#: Categories whose thumbnail is a close-up of the face.
_FACE_CROP = frozenset({"eye_style", "brows", "expression", "blush", "nose"})


def thumb_spec(category: str, entry_id: str) -> AvatarSpec:
    """The thumbnail model wearing one catalog entry."""
    base = AvatarSpec.from_json(THUMB_MODEL)
    if category == "item":
        return base.with_item(entry_id)
    path = next(f.path for f in FIELDS.values() if f.category == category)
    if len(path) == 1:
        return base.replace(**{path[0]: entry_id})
    if category == "hair_style" and entry_id in ("bald", "buzz"):
        return base.replace(hair={"style": entry_id, "front": "open"})
    return base.replace(**{path[0]: {path[1]: entry_id}})


@functools.lru_cache(maxsize=512)
def part_thumbnail(category: str, entry_id: str) -> bytes:
    """A small PNG showing one catalog entry (cached: the catalog is the same for everyone)."""
    from PIL import Image

    from generation.chibi import exports

    spec = thumb_spec(category, entry_id)
    if category in _FACE_CROP:
        big = exports.png(spec, THUMB_SIZE * 2, transparent=True)
        with Image.open(io.BytesIO(big)) as im:
            w = im.width
            box = (int(w * 0.24), int(w * 0.34), int(w * 0.76), int(w * 0.86))
            face = im.crop(box).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            face.save(out, format="PNG", optimize=True)
            return out.getvalue()
    return exports.png(spec, THUMB_SIZE, transparent=category != "background")


def picker_entries(category: str) -> Iterable[catalog.Entry]:
    return catalog.CATEGORIES[category]
