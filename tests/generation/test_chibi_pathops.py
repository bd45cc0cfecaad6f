"""The front hair's clip-paths as plain geometry (generation/chibi/pathops.py)."""

from __future__ import annotations

import numpy as np

from generation.chibi import pathops, render
from generation.chibi.svgkit import path


def _px(svg: str, size: int = 128) -> np.ndarray:
    return render.rasterise_reference(render.document([render.Layer("x", svg)]), size).astype(int)


def test_parse_round_trip_draws_the_same() -> None:
    d = "M10,10L100,12Q140,60 100,110C80,130 40,130 20,100Z"
    p = pathops.parse(d)
    assert p is not None
    assert np.array_equal(_px(path(d, fill="#000")), _px(path(pathops.to_d(p), fill="#000")))


def test_parse_refuses_what_it_does_not_know() -> None:
    assert pathops.parse("M0,0A10,10 0 1,1 20,0Z") is None
    assert pathops.combine("M0,0a1,1 0 1,1 2,0", ("and", "M0,0H5V5Z")) is None


def test_difference_matches_an_even_odd_clip_within_rounding() -> None:
    shape = "M100,100L400,100L400,400L100,400Z"
    window = "M200,200L300,200L300,300L200,300Z"
    notwin = f"M-10,-10H522V522H-10Z{window}"
    clipped = (
        f'<defs><clipPath id="c"><path clip-rule="evenodd" d="{notwin}"/></clipPath></defs>'
        f'<g clip-path="url(#c)">{path(shape, fill="#336699")}</g>'
    )
    geo = pathops.combine(shape, ("and", "evenodd:" + notwin))
    assert geo is not None
    d, rule = geo
    plain = path(d, fill="#336699", fill_rule="evenodd") if rule == "evenodd" else path(d, fill="#336699")
    diff = np.abs(_px(clipped, 512) - _px(plain, 512))
    assert diff.max() <= 2
