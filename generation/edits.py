"""Structured edits for ``/edit`` and the CLI: change named parts of a spec, keep everything else and the seed.

Every argument takes catalog ids or English/Chinese names and synonyms ("cat ears", "猫耳", "cat_ears");
colours take names or hex codes. Unknown names raise :class:`~generation.spec.SpecError` with close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from generation import catalog
from generation.prompt import FIELD_LABELS, GENERIC_SLOT_WORDS, PromptError, parse_edit, phrase_key
from generation.spec import AvatarSpec, SpecError

MAX_SUGGESTIONS = 25  # Discord shows at most 25 autocomplete choices

_CATEGORY_WORDS = {
    "item": "item", "expression": "expression", "skin_tone": "skin tone", "color": "colour",
    "background": "background", "hair_style": "hair style", "outfit": "outfit", "hair_grey": "grey in the hair",
}  # fmt: skip


@dataclass(frozen=True)
class EditResult:
    spec: AvatarSpec
    changes: list[str]  # what changed, in plain English ("added cat ears", "hair colour: pink")
    errors: list[str] = field(default_factory=list)  # non-fatal: words of a free-text edit not understood


def resolve(category: str, name: str) -> catalog.Entry:
    """The catalog entry for an id, English or Chinese name or synonym; SpecError with suggestions if none."""
    text = name.strip()
    entry = catalog.find(category, text)
    if entry is None:
        key = phrase_key(text)
        entry = catalog.find(category, key) or _by_key(category, key)
    if entry is not None:
        return entry
    what = _CATEGORY_WORDS.get(category, category.replace("_", " "))
    close = close_matches(category, text)
    hint = f" — did you mean: {', '.join(close)}?" if close else ""
    raise SpecError(f"unknown {what} {text!r}{hint}")


def _by_key(category: str, key: str) -> catalog.Entry | None:
    for entry in catalog.CATEGORIES[category]:
        if any(phrase_key(n) == key for n in entry.names()):
            return entry
    if key.endswith("s") and len(key) > 3:
        return catalog.find(category, key[:-1])
    return None


def close_matches(category: str, text: str, n: int = 3) -> list[str]:
    """Display names of entries whose names look like ``text`` (difflib), best first, no repeats."""
    names: dict[str, catalog.Entry] = {}
    for entry in catalog.CATEGORIES[category]:
        for name in entry.names():
            names.setdefault(name, entry)
    query = catalog.normalise(text)
    out: list[str] = []
    for match in difflib.get_close_matches(query, list(names), n=n * 3, cutoff=0.6):
        entry = names[match]
        label = entry.zh if _is_chinese(query) else entry.en
        if label not in out:
            out.append(label)
    if not out:  # a word inside a longer phrase: "cat ear hat" -> cat ears
        for word in query.split():
            for match in difflib.get_close_matches(word, list(names), n=n, cutoff=0.75):
                label = names[match].en
                if label not in out:
                    out.append(label)
    return out[:n]


def _is_chinese(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def resolve_color(value: str) -> str:
    """A colour name (English/Chinese) or hex code -> '#rrggbb'; SpecError with suggestions otherwise."""
    hex_value = catalog.parse_color(value) or catalog.parse_color(phrase_key(value))
    if hex_value:
        return hex_value
    close = close_matches("color", value)
    hint = (
        f" — did you mean: {', '.join(close)}?"
        if close
        else " (use a colour name or a hex code like #ff88cc)"
    )
    raise SpecError(f"unknown colour {value.strip()!r}{hint}")


def apply_edit(
    spec: AvatarSpec,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    expression: str | None = None,
    hair_color: str | None = None,
    eye_color: str | None = None,
    skin_tone: str | None = None,
    outfit_color: str | None = None,
    background: str | None = None,
    hair_style: str | None = None,
    hair_grey: str | None = None,
    prompt: str | None = None,
) -> EditResult:
    """Apply the asked changes to ``spec``; everything not asked stays exactly as it was, seed included."""
    if isinstance(add, str):
        add = [add]
    if isinstance(remove, str):
        remove = [remove]
    new = spec
    notes: list[str] = []
    replaced: set[str] = set()
    errors: list[str] = []
    if prompt:
        try:
            parsed = parse_edit(prompt, new)
        except PromptError as exc:
            raise SpecError(str(exc)) from None
        new = parsed.spec
        notes.extend(n for n in parsed.notes if n.startswith("this avatar has no"))
        for note in parsed.notes:
            if " replaced " in note and not note.endswith("wins"):
                notes.append(note)
                new_en, lost_en = note.split(" replaced ", 1)
                replaced.update((f"added {new_en}", f"removed {lost_en}"))
        if parsed.ignored:
            errors.append("not understood: " + ", ".join(parsed.ignored))
        if not parsed.understood and not parsed.removed:
            raise SpecError(f"nothing in {prompt!r} could be understood as a change")
    for name in remove:
        new = _remove(new, name)
    for name in add:
        item = resolve("item", name).id
        before = set(new.items)
        new = new.with_item(item)
        for lost in sorted(before - set(new.items)):
            notes.append(f"{catalog.get('item', item).en} replaced {catalog.get('item', lost).en}")
            replaced.update(
                (f"added {catalog.get('item', item).en}", f"removed {catalog.get('item', lost).en}")
            )
    fields: dict[str, Any] = {}
    if expression is not None:
        fields["expression"] = resolve("expression", expression).id
    if skin_tone is not None:
        fields["skin_tone"] = resolve("skin_tone", skin_tone).id
    if hair_style is not None:
        fields["hair"] = {"style": resolve("hair_style", hair_style).id}
    if hair_grey is not None:
        none = catalog.normalise(hair_grey) in ("none", "no grey", "no gray", "无", "没有")
        fields.setdefault("hair", {})["grey"] = None if none else resolve("hair_grey", hair_grey).id
    if hair_color is not None:
        fields.setdefault("hair", {}).update(color=resolve_color(hair_color), highlight=None)
    if eye_color is not None:
        fields["eyes"] = {"color": resolve_color(eye_color)}
    if outfit_color is not None:
        fields["outfit"] = {"color": resolve_color(outfit_color)}
    if background is not None:
        fields["background"] = _background(background)
    if fields:
        new = new.replace(**fields)
    changes = [c for c in describe_changes(spec, new) if c not in replaced]
    return EditResult(new, notes + changes, errors)


def _remove(spec: AvatarSpec, name: str) -> AvatarSpec:
    key = phrase_key(name)
    slot = GENERIC_SLOT_WORDS.get(key)
    if slot is not None:
        held = [i for i in spec.items if catalog.item_slot(i) == slot]
        if not held:
            raise SpecError(f"this avatar has no {name.strip()} to remove")
        for item in held:
            spec = spec.without_item(item)
        return spec
    entry = resolve("item", name)
    if entry.id not in spec.items:
        has = ", ".join(catalog.get("item", i).en for i in spec.items) or "no items"
        raise SpecError(f"this avatar has no {entry.en} to remove (it has: {has})")
    return spec.without_item(entry.id)


def _background(value: str) -> dict[str, str | None]:
    """'stars', 'pink', '#ffccdd' or 'pink stars' / '粉色星空' -> background changes."""
    text = value.strip()
    entry = catalog.find("background", text) or _by_key("background", phrase_key(text))
    if entry:
        return {"kind": entry.id}
    color = catalog.parse_color(text) or catalog.parse_color(phrase_key(text))
    if color:
        return {"color": color, "color2": None}
    parsed = parse_edit(text, AvatarSpec()).spec.background
    if parsed.kind or parsed.color:
        out: dict[str, str | None] = {}
        if parsed.kind:
            out["kind"] = parsed.kind
        if parsed.color:
            out.update(color=parsed.color, color2=None)
        return out
    close = close_matches("background", text) + close_matches("color", text)
    hint = f" — did you mean: {', '.join(close[:3])}?" if close else ""
    raise SpecError(f"unknown background {text!r}{hint} (use a kind such as stars, or a colour)")


def variation(spec: AvatarSpec, new_seed: int) -> AvatarSpec:
    """The same spec with a new seed: open fields are decided again, fixed fields stay."""
    return spec.replace(seed=new_seed)


def describe_changes(old: AvatarSpec, new: AvatarSpec) -> list[str]:
    """Plain-English list of what differs between two specs (items first, then fields)."""
    out = []
    for item in old.items:
        if item not in new.items:
            out.append(f"removed {catalog.get('item', item).en}")
    for item in new.items:
        if item not in old.items:
            out.append(f"added {catalog.get('item', item).en}")
    a, b = old.to_json(), new.to_json()
    for key in b:
        if key in ("items", "version"):
            continue
        if isinstance(b[key], dict):
            for sub in b[key]:
                if a[key].get(sub) != b[key][sub] and not (
                    sub in ("highlight", "color2") and b[key][sub] is None
                ):
                    out.append(f"{_field_label(f'{key}.{sub}')}: {_value_label(f'{key}.{sub}', b[key][sub])}")
        elif a[key] != b[key]:
            out.append(f"{_field_label(key)}: {_value_label(key, b[key])}")
    return out


def _field_label(fld: str) -> str:
    return FIELD_LABELS.get(fld, (fld.replace("_", " "), ""))[0]


_FIELD_CATEGORY = {
    "hair.style": "hair_style", "hair.front": "hair_front", "hair.grey": "hair_grey", "eyes.style": "eye_style", "expression": "expression",
    "outfit.style": "outfit", "background.kind": "background", "skin_tone": "skin_tone",
    "face_shape": "face_shape", "facial_hair": "facial_hair", "brows": "brows", "blush": "blush", "nose": "nose",
}  # fmt: skip


def _value_label(fld: str, value: Any) -> str:
    if value is None:
        return "none" if fld == "hair.grey" else "open (the seed decides)"
    if isinstance(value, str) and value.startswith("#"):
        return f"{catalog.color_name(value)} ({value})"
    cat = _FIELD_CATEGORY.get(fld)
    if cat and isinstance(value, str):
        return catalog.get(cat, value).en
    return str(value)


def suggest(
    category: str, partial: str, language: str = "en", *, within: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Autocomplete: (id, label) pairs whose names start with (then contain) ``partial``; at most 25.

    ``language`` is "en" or "zh" (Discord locales such as "zh-CN" work too); labels are in that language and
    Chinese input matches Chinese names whatever the language. ``within`` limits to these ids (for "remove").
    """
    if category not in catalog.CATEGORIES:
        raise SpecError(f"unknown category {category!r} (allowed: {', '.join(catalog.CATEGORIES)})")
    zh = language.lower().startswith("zh")
    query = catalog.normalise(partial)
    allowed = set(within) if within is not None else None
    scored: list[tuple[int, int, str, str]] = []
    for order, entry in enumerate(catalog.CATEGORIES[category]):
        if allowed is not None and entry.id not in allowed:
            continue
        label = entry.zh if zh else entry.en
        if not query:
            scored.append((0, order, entry.id, label))
            continue
        names = [catalog.normalise(label), *entry.names()]
        if names[0].startswith(query):
            rank = 0
        elif any(n.startswith(query) for n in names):
            rank = 1
        elif any(query in n for n in names):
            rank = 2
        else:
            continue
        scored.append((rank, order, entry.id, label))
    scored.sort()
    return [(entry_id, label) for _r, _o, entry_id, label in scored[:MAX_SUGGESTIONS]]
