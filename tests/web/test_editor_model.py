"""The editor's model: every picker option becomes an exact ``/edit`` (the same arguments Save passes to the
studio), nothing else moves, and bad input gets one clear line."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from bot.errors import BadInput
from bot.web import editor
from generation import catalog
from generation.spec import AvatarSpec

PART_FIELDS = [f for f in editor.FIELDS.values() if f.category != "color"]
#: What a change may move besides itself: an open fringe follows the hair style (the style's own fringe).
FOLLOWS = {"hair_style": {"hair_front"}}


@pytest.mark.parametrize("field", PART_FIELDS, ids=lambda f: f.name)
def test_every_option_of_every_part_is_an_exact_edit(field: editor.Field) -> None:
    parent = AvatarSpec(seed=11)
    for entry in catalog.CATEGORIES[field.category]:
        state = editor.EditState(fields={field.name: entry.id})
        result = editor.apply(parent, editor.plan(parent, state))
        assert editor.selections(result.spec)[field.name] == entry.id, entry.id
        assert not editor.check_result(result, state)
        # nothing else moved: every other field resolves as before
        before, after = editor.selections(parent), editor.selections(result.spec)
        moved = {k for k in before if before[k] != after[k]}
        assert moved <= {field.name} | FOLLOWS.get(field.name, set()), entry.id


def test_many_changes_at_once_all_take() -> None:
    rng = random.Random(5)
    for seed in range(25):
        parent = AvatarSpec(seed=seed)
        picked = rng.sample(PART_FIELDS, 6)
        fields = {f.name: rng.choice(catalog.ids(f.category)) for f in picked}
        fields["hair_color"] = rng.choice([c.hex for c in catalog.COLORS if c.hex])
        fields["outfit_color"] = "#123456"
        fields["background_color"] = "#fedcba"
        state = editor.EditState(fields=fields, items=("crown", "freckles"))
        result = editor.apply(parent, editor.plan(parent, state))
        assert editor.check_result(result, state) == [], (seed, fields)
        assert set(result.spec.items) == {"crown", "freckles"}


def test_items_follow_the_list_and_open_choices_stay_open() -> None:
    parent = AvatarSpec(seed=3, items=("cat_ears", "round_glasses"))
    args = editor.plan(parent, editor.EditState(items=("cat_ears", "crown")))
    assert args.add == ("crown",) and args.remove == ("round_glasses",) and args.prompt is None
    result = editor.apply(parent, args)
    assert result.spec.items == ("cat_ears", "crown")
    assert result.spec.hair == parent.hair  # open fields stay open: the seed still decides them


def test_picking_what_it_already_is_changes_nothing() -> None:
    parent = AvatarSpec(seed=9)
    now = editor.selections(parent)
    args = editor.plan(parent, editor.EditState(fields={"hair_style": now["hair_style"]}))
    assert args.empty


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("nope", "not an edit"),
        ({"fields": {"wings": "big"}}, "no part called 'wings'"),
        ({"fields": {"hair_style": "mohawk"}}, "unknown hair style 'mohawk'"),
        ({"fields": {"hair_color": "pinkish"}}, "is not a colour like #ff88cc"),
        ({"items": ["crown", "jetpack"]}, "unknown item 'jetpack'"),
        ({"items": ["crown"] * 13}, "13 items is too many"),
        ({"text": "x" * 201}, "201 characters"),
        ({"text": "nul\x00byte"}, "NUL byte"),
    ],
)
def test_bad_editor_input_is_one_clear_line(raw: object, says: str) -> None:
    with pytest.raises(BadInput) as err:
        editor.EditState.from_json(raw)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_part_thumbnails_are_small_pngs_for_every_entry_and_cached() -> None:
    for field in PART_FIELDS[:3]:
        for entry in catalog.CATEGORIES[field.category]:
            png = editor.part_thumbnail(field.category, entry.id)
            with Image.open(io.BytesIO(png)) as im:
                assert im.size == (editor.THUMB_SIZE, editor.THUMB_SIZE)
    assert editor.part_thumbnail("item", "crown") is editor.part_thumbnail("item", "crown")
