"""svgkit's number and attribute strings: the memo must print exactly what formatting would."""

from __future__ import annotations

import random

import numpy as np

from generation.chibi import svgkit
from generation.chibi.svgkit import attrs, f


def _plain(x: float) -> str:
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def test_numbers_print_the_same_from_the_memo_as_fresh() -> None:
    rng = random.Random(5)
    xs = [rng.uniform(-600, 600) for _ in range(3000)] + [0.04, -0.04, 2.25, 3.0, -3.0, 12, 1e-9]
    for x in xs + xs:  # the second pass is served from the memo
        assert f(x) == _plain(x), x


def test_zero_and_negative_zero_keep_their_signs_in_any_order() -> None:
    assert (f(0.0), f(-0.0), f(0.0), f(-0.0)) == ("0", "-0", "0", "-0")
    assert f(-0.01) == "-0"


def test_numpy_floats_print_as_plain_numbers() -> None:
    assert f(np.float64(1.25)) == "1.2"
    assert attrs(cx=np.float64(10.0), fill="#ffffff") == 'cx="10" fill="#ffffff"'


def test_the_memo_is_bounded() -> None:
    for i in range(svgkit._F_MEMO_MAX + 10):
        f(i + 0.5)
    assert len(svgkit._F_MEMO) <= svgkit._F_MEMO_MAX


def test_attribute_names_and_skipped_values() -> None:
    assert attrs(stroke_width=2.0, fill_opacity=0.5, class_="a", d=None) == (
        'stroke-width="2" fill-opacity="0.5" class="a"'
    )
    assert attrs() == ""
