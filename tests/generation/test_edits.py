"""Structured edits (/edit and the CLI), variations and autocomplete."""

from __future__ import annotations

from typing import Any

import pytest

from generation import catalog
from generation.edits import MAX_SUGGESTIONS, apply_edit, suggest, variation
from generation.spec import AvatarSpec, SpecError

BASE = AvatarSpec(
    seed=77,
    items=("beanie", "round_glasses", "freckles"),
    expression="smile",
    hair={"style": "bob", "color": "#2b2630"},
    outfit={"style": "hoodie"},
)


def changed_keys(a: AvatarSpec, b: AvatarSpec) -> dict[str, Any]:
    ja, jb = a.to_json(), b.to_json()
    return {k: jb[k] for k in jb if ja[k] != jb[k]}


@pytest.mark.parametrize(
    ("kwargs", "key", "check"),
    [
        ({"expression": "sad"}, "expression", lambda s: s.expression == "sad"),
        ({"expression": "害羞"}, "expression", lambda s: s.expression == "shy"),
        ({"hair_color": "pink"}, "hair", lambda s: s.hair.color == "#f49ac1" and s.hair.style == "bob"),
        ({"hair_color": "#ABCDEF"}, "hair", lambda s: s.hair.color == "#abcdef"),
        ({"eye_color": "蓝色"}, "eyes", lambda s: s.eyes.color == "#4a7fd9"),
        ({"skin_tone": "dark skin"}, "skin_tone", lambda s: s.skin_tone == "deep"),
        ({"skin_tone": "小麦色"}, "skin_tone", lambda s: s.skin_tone == "tan"),
        (
            {"outfit_color": "red"},
            "outfit",
            lambda s: s.outfit.color == "#d94452" and s.outfit.style == "hoodie",
        ),
        ({"background": "stars"}, "background", lambda s: s.background.kind == "stars"),
        ({"background": "#ffccdd"}, "background", lambda s: s.background.color == "#ffccdd"),
        ({"background": "星空"}, "background", lambda s: s.background.kind == "stars"),
        ({"hair_style": "twin-tails"}, "hair", lambda s: s.hair.style == "twin_tails"),
        ({"hair_style": "丸子头"}, "hair", lambda s: s.hair.style == "bun"),
        ({"add": ["cat ears"]}, "items", lambda s: "cat_ears" in s.items),
        ({"add": ["猫耳"]}, "items", lambda s: "cat_ears" in s.items),
        ({"add": ["cat_ears"]}, "items", lambda s: "cat_ears" in s.items),
        ({"remove": ["freckles"]}, "items", lambda s: "freckles" not in s.items),
        ({"remove": ["眼镜"]}, "items", lambda s: "round_glasses" not in s.items),
    ],
)
def test_each_structured_edit_changes_only_its_field(kwargs: dict[str, Any], key: str, check: Any) -> None:
    result = apply_edit(BASE, **kwargs)
    assert list(changed_keys(BASE, result.spec)) == [key]
    assert check(result.spec)
    assert result.spec.seed == BASE.seed
    assert result.changes


def test_adding_to_an_occupied_slot_replaces_and_reports_it() -> None:
    result = apply_edit(BASE, add=["crown"])
    assert "crown" in result.spec.items and "beanie" not in result.spec.items
    assert "crown replaced beanie" in result.changes


def test_removing_an_item_the_avatar_lacks_is_an_error() -> None:
    with pytest.raises(SpecError, match="no sunglasses"):
        apply_edit(BASE, remove=["sunglasses"])
    with pytest.raises(SpecError, match="no wings"):
        apply_edit(BASE, remove=["wings"])


def test_unknown_names_list_close_matches() -> None:
    with pytest.raises(SpecError, match=r"unknown item 'cat ear hat' — did you mean: cat ears"):
        apply_edit(BASE, add=["cat ear hat"])
    with pytest.raises(SpecError, match="did you mean: pink"):
        apply_edit(BASE, hair_color="pinkk")
    with pytest.raises(SpecError, match="unknown expression"):
        apply_edit(BASE, expression="flabbergasted")


def test_prompt_edit_through_apply_edit() -> None:
    result = apply_edit(BASE, prompt="make her sad and add a crown")
    assert result.spec.expression == "sad" and "crown" in result.spec.items
    assert result.spec.seed == BASE.seed
    assert "crown replaced beanie" in result.changes
    assert "expression: sad" in result.changes
    result = apply_edit(BASE, prompt="去掉眼镜，换成蓝色眼睛")
    assert "round_glasses" not in result.spec.items and result.spec.eyes.color == "#4a7fd9"
    with pytest.raises(SpecError):
        apply_edit(BASE, prompt="blorp zorp")


def test_variation_keeps_spec_changes_seed() -> None:
    new = variation(BASE, 99)
    assert new.seed == 99
    assert new.replace(seed=BASE.seed) == BASE


def test_suggest_english_and_chinese() -> None:
    assert suggest("item", "cat", "en")[0] == ("cat_ears", "cat ears")
    assert ("cat_ears", "猫耳") in suggest("item", "猫", "zh")
    assert ("cat_ears", "猫耳") in suggest("item", "cat", "zh-CN")
    assert suggest("color", "pin", "en")[0] == ("pink", "pink")
    assert len(suggest("item", "", "en")) == MAX_SUGGESTIONS
    assert len(suggest("color", "", "zh")) <= MAX_SUGGESTIONS
    assert suggest("item", "", "en", within=["crown", "scarf"]) == [("crown", "crown"), ("scarf", "scarf")]
    assert suggest("expression", "zzzz", "en") == []
    assert all(i in catalog.ids("hair_style") for i, _ in suggest("hair_style", "", "zh"))


def test_grey_hair_edits_change_only_the_grey() -> None:
    temples = apply_edit(BASE, hair_grey="grey temples")
    assert temples.spec.hair.grey == "temples"
    assert changed_keys(BASE, temples.spec) == {"hair": {**BASE.to_json()["hair"], "grey": "temples"}}
    assert temples.changes == ["grey in the hair: grey at the temples"]
    pepper = apply_edit(temples.spec, hair_grey="花白")
    assert pepper.spec.hair.grey == "salt_pepper" and pepper.spec.hair.color == BASE.hair.color
    cleared = apply_edit(pepper.spec, hair_grey="none")
    assert cleared.spec.hair.grey is None and cleared.changes == ["grey in the hair: none"]
    free = apply_edit(BASE, prompt="add grey temples")
    assert free.spec.hair.grey == "temples" and free.spec.items == BASE.items
    with pytest.raises(SpecError):
        apply_edit(BASE, hair_grey="polka")


def test_new_items_and_blossoms_in_edits() -> None:
    elf = apply_edit(BASE, add=["pointy ears", "花环"])
    assert {"elf_ears", "flower_crown"} <= set(elf.spec.items) and "beanie" not in elf.spec.items
    assert apply_edit(BASE, background="樱花").spec.background.kind == "blossoms"
    assert apply_edit(BASE, background="pink sakura").spec.background.kind == "blossoms"
    assert suggest("item", "elf")[0] == ("elf_ears", "elf ears")
