"""The prompt policy. Test terms live in prompts_table.json (slurs ROT13-encoded), not in test names."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from generation.policy import check_prompt

POLICY = json.loads((Path(__file__).parent / "prompts_table.json").read_text(encoding="utf-8"))["policy"]


def _decode(text: str) -> str:
    return codecs.decode(text, "rot13") if text.isascii() else text


def test_sexual_content_refused_in_both_languages() -> None:
    for text in POLICY["refused_standard"]:
        result = check_prompt(text)
        assert not result.allowed, text
        assert result.category == "sexual"
        assert result.reason and result.reason_zh
    assert any(not t.isascii() for t in POLICY["refused_standard"])


def test_slurs_refused_without_echoing_them() -> None:
    reasons = set()
    for i, encoded in enumerate(POLICY["refused_standard_slurs_rot13"]):
        result = check_prompt(_decode(encoded))
        assert not result.allowed and result.category == "slur", f"slur row {i}"
        reasons.add((result.reason, result.reason_zh))
    assert len(reasons) == 1  # one fixed message: the matched word is never repeated back


def test_strict_also_refuses_violence() -> None:
    for text in POLICY["refused_strict_only"]:
        assert check_prompt(text, "standard").allowed, text
        result = check_prompt(text, "strict")
        assert not result.allowed, text
        assert result.category in ("violence", "suggestive")


def test_no_false_positives_on_innocent_prompts() -> None:
    for text in POLICY["innocent"]:
        result = check_prompt(text, "strict")
        assert result.allowed, (text, result)


def test_off_allows_everything() -> None:
    for text in POLICY["refused_standard"] + POLICY["refused_strict_only"]:
        assert check_prompt(text, "off").allowed


def test_empty_prompt_allowed_and_unknown_level_rejected() -> None:
    assert check_prompt("").allowed
    with pytest.raises(ValueError, match="unknown policy level"):
        check_prompt("hi", "lenient")


def test_reason_is_short_and_not_preachy() -> None:
    result = check_prompt(POLICY["refused_standard"][0])
    assert len(result.reason) < 200
    assert "Try" in result.reason
