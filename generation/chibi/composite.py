"""Layers drawn from colour-free templates: rasterise a layer's geometry once, recolour it per avatar.

A layer is a sequence of SVG drawing operations whose colours are all ``#rrggbb`` tokens. Everything the
rasteriser does with a colour is linear in it (source-over blending, gradients between colours, group
opacity, clipping), so the layer's premultiplied pixels are ``sum_k W_k * colour_k`` with weight planes
``W_k`` that depend only on the geometry, and its alpha is the same whatever the colours. Fresh avatars
mostly differ in colour: over 3,000 random specs the front hair has 2,496 distinct texts but 266
templates, the eyes 2,177 texts and 13 templates (``bench/bench_render_paths.py``).

So a layer's text is split into a *template* (every distinct colour replaced by its slot number) and its
colours. The first time a template is seen at a size it is drawn with its colours replaced by basis
colours, three slots at a time (red, green, blue; the other slots black, so they still cover what lies
under them), which gives one weight plane per slot and the alpha plane, cropped to where the layer draws.
After that, drawing the layer is one pass over its pixels (``_recolour.paint``, compiled with numba): the colour
``sum_k W_k * colour_k`` source-over onto the picture. The result is the rasteriser's to within rounding
(planes are 8-bit): at most a few levels along anti-aliased edges (``tests/generation/test_render_fast.py``,
``docs/contact_sheets/render_speed_diff.png``).

The background (its patterns are seeded, so its template never comes back), layers with many colours and
layers with a colour written any other way (``white``, ``rgb(...)``) are drawn by skia into the same
buffer. The cache of planes is an LRU bounded in bytes
(``CHIBIFY_RENDER_CACHE_MB``, default 192).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import skia

from generation.chibi.geometry import VIEW

if TYPE_CHECKING:
    from generation.chibi.backdrop import Backdrop

log = logging.getLogger(__name__)

_BASIS = ("#ff0000", "#00ff00", "#0000ff")
# A template with more colours than this is drawn directly (each 3 colours cost one more draw to learn).
MAX_SLOTS = 12
# Layers always drawn by skia: the background's patterns are seeded, so its template never comes back.
DRAWN = frozenset({"background"})


def _cache_bytes(default_mib: float = 192.0) -> int:
    """``CHIBIFY_RENDER_CACHE_MB`` in bytes (a number of MiB, 0 or more); a bad value is logged and the
    default used, so a typo never stops a worker."""
    raw = os.environ.get("CHIBIFY_RENDER_CACHE_MB", "").strip()
    try:
        mib = float(raw) if raw else default_mib
        if not mib >= 0:
            raise ValueError
    except ValueError:
        log.warning(
            "CHIBIFY_RENDER_CACHE_MB must be a number of MiB (0 or more), not %r: using %g", raw, default_mib
        )
        mib = default_mib
    return int(mib * 1024 * 1024)


CACHE_BYTES = _cache_bytes()

# numba is a declared dependency; without it every layer is drawn by skia (render.rasterise_layers)
AVAILABLE = importlib.util.find_spec("numba") is not None


_HEX = frozenset("0123456789abcdefABCDEF")
_SPLITS: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
_SPLITS_MAX = 2048
_splits_lock = threading.Lock()


def split(svg: str) -> tuple[str, tuple[str, ...]]:
    """A layer's text -> (template, colours): each distinct colour (always written as a whole attribute
    value, ``fill="#aabbcc"``) replaced by ``#<slot>~`` in order of first appearance, colours lower-case.
    ``fill(template, colours)`` gives the text back (with lower-case colours). A layer with a paint written
    any other way gives (svg, ()): it is not a template. LRU-cached by text."""
    with _splits_lock:
        hit = _SPLITS.get(svg)
        if hit is not None:
            _SPLITS.move_to_end(svg)
            return hit
    pieces = svg.split('="#')
    slots: dict[str, int] = {}
    out = [pieces[0]]
    for piece in pieces[1:]:
        c = piece[:6]
        if piece[6:7] == '"' and _HEX.issuperset(c):
            c = c.lower()
            slot = slots.get(c)
            if slot is None:
                slot = slots[c] = len(slots)
            out.append(f'="#{slot}~{piece[6:]}')
        else:  # a reference such as href="#id"
            out.append('="#' + piece)
    template = "".join(out)
    result = (template, tuple("#" + c for c in slots)) if not _OTHER_PAINT.search(template) else (svg, ())
    with _splits_lock:
        _SPLITS[svg] = result
        while len(_SPLITS) > _SPLITS_MAX:
            _SPLITS.popitem(last=False)
    return result


_SLOT = re.compile(r"#(\d+)~")
# a paint that is not a slot, "none" or a reference: the layer cannot be recoloured (drawn by skia)
_OTHER_PAINT = re.compile(
    r'(?:fill|stroke|stop-color|flood-color|lighting-color|color)="(?!#\d+~"|none"|url\()'
)


def fill(template: str, colours: Sequence[str]) -> str:
    return _SLOT.sub(lambda m: colours[int(m.group(1))], template)


@dataclass(frozen=True)
class Planes:
    """One template at one size, as a recolour pass needs it (indices into the flat size x size buffer).

    A covered pixel made of at most two colours is described by a *mix*: its alpha and up to two (slot,
    weight) pairs. Along rows, pixels with the same mix form runs (a one-colour opaque interior is one
    long run; so is a band of translucent shading over a fill), and a run costs one colour computation.
    Pixels of three or more colours are *edges*, blended one by one with all their weights."""

    size: int
    run_start: np.ndarray  # int32, flat pixel index where a run starts
    run_len: np.ndarray  # int32
    run_mix: np.ndarray  # int32, index into the mix table
    mix_alpha: np.ndarray  # uint8
    mix_slot: np.ndarray  # uint8, mixes x 2
    mix_weight: np.ndarray  # uint8, mixes x 2 (premultiplied; the second is 0 for one colour)
    edge_at: np.ndarray  # int32, flat pixel index of each edge pixel
    edge_alpha: np.ndarray  # uint8
    edge_ptr: np.ndarray  # int32, edge i's weights are edge_slot/edge_weight[edge_ptr[i]:edge_ptr[i + 1]]
    edge_slot: np.ndarray  # uint8
    edge_weight: np.ndarray  # uint8, premultiplied weights

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f).nbytes for f in self.__dataclass_fields__ if f != "size"))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.run_start,
            self.run_len,
            self.run_mix,
            self.mix_alpha,
            self.mix_slot,
            self.mix_weight,
            self.edge_at,
            self.edge_alpha,
            self.edge_ptr,
            self.edge_slot,
            self.edge_weight,
        )


def _empty(size: int) -> Planes:
    i32, u8, pairs = np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros((0, 2), np.uint8)
    return Planes(size, i32, i32, i32, u8, pairs, pairs, i32, u8, np.zeros(1, np.int32), u8, u8)


def _record(svg_fragment: str) -> skia.Picture:
    from generation.chibi import render

    return render.layer_picture(svg_fragment)


def learn(template: str, slots: int, size: int) -> Planes:
    """Draw the template with basis colours, three slots at a time, into premultiplied buffers, then
    describe its pixels as runs of mixes and edge pixels."""
    alpha: np.ndarray | None = None
    weights: list[np.ndarray] = []
    for start in range(0, max(1, slots), 3):
        colours = ["#000000"] * slots
        for i in range(start, min(slots, start + 3)):
            colours[i] = _BASIS[i - start]
        buf = np.zeros((size, size, 4), np.uint8)
        surface = skia.Surface(buf, skia.kRGBA_8888_ColorType, skia.kPremul_AlphaType)
        canvas = surface.getCanvas()
        canvas.scale(size / VIEW, size / VIEW)
        canvas.drawPicture(_picture_uncached(fill(template, colours)))
        del canvas, surface
        if alpha is None:
            alpha = buf[:, :, 3].copy()
        weights += [buf[:, :, i] for i in range(min(slots, start + 3) - start)]
    assert alpha is not None
    rows = np.flatnonzero(alpha.any(axis=1))
    if not len(rows):
        return _empty(size)
    cols = np.flatnonzero(alpha.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    h, w = y1 - y0, x1 - x0
    n = h * w
    a = alpha[y0:y1, x0:x1].reshape(-1)
    box = [np.ascontiguousarray(p[y0:y1, x0:x1]).reshape(-1) for p in weights]
    # per pixel, plane by plane (numpy is slow along a short axis): the two largest weights, their slots
    # and how many slots have a weight
    w1 = box[0].copy()
    s1 = np.zeros(n, np.int64)
    w2 = np.zeros(n, np.uint8)
    s2 = np.zeros(n, np.int64)
    count = (box[0] > 0).astype(np.int32)
    for k in range(1, slots):
        wk = box[k]
        count += wk > 0
        first = wk > w1
        second = ~first & (wk > w2)
        w2 = np.where(first, w1, np.where(second, wk, w2))
        s2 = np.where(first, s1, np.where(second, k, s2))
        w1 = np.where(first, wk, w1)
        s1 = np.where(first, k, s1)
    w2 = np.where(w2 > 0, w2, 0).astype(np.uint8)
    s2 = np.where(w2 > 0, s2, 0)
    covered = a > 0
    mixed = covered & (count <= 2)
    # a mix as one number: alpha, weights and slots (slots < 16)
    key = np.where(
        mixed,
        a.astype(np.int64)
        | (w1.astype(np.int64) << 8)
        | (w2.astype(np.int64) << 16)
        | (s1 << 24)
        | (s2 << 28),
        -1,
    )
    change = np.ones(n, bool)
    change[1:] = key[1:] != key[:-1]
    change[::w] = True
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, n))
    keep = key[starts] >= 0
    starts, lengths = starts[keep], lengths[keep]
    table, mix_of_run = np.unique(key[starts], return_inverse=True)
    edges = np.flatnonzero(covered & (count > 2))

    def to_flat(i: np.ndarray) -> np.ndarray:  # box index -> index in the size x size buffer
        return ((i // w + y0) * size + i % w + x0).astype(np.int32)

    ew = np.stack([p[edges] for p in box], axis=-1) if len(edges) else np.zeros((0, slots), np.uint8)
    nonzero = ew > 0
    ptr = np.zeros(len(edges) + 1, np.int32)
    np.cumsum(nonzero.sum(axis=1), out=ptr[1:])
    return Planes(
        size,
        to_flat(starts),
        lengths.astype(np.int32),
        mix_of_run.astype(np.int32).reshape(-1),
        (table & 0xFF).astype(np.uint8),
        np.stack([(table >> 24) & 0xF, (table >> 28) & 0xF], axis=-1).astype(np.uint8),
        np.stack([(table >> 8) & 0xFF, (table >> 16) & 0xFF], axis=-1).astype(np.uint8),
        to_flat(edges),
        np.ascontiguousarray(a[edges]),
        ptr,
        np.nonzero(nonzero)[1].astype(np.uint8),
        np.ascontiguousarray(ew[nonzero]),
    )


def _picture_uncached(svg_fragment: str) -> skia.Picture:
    """Basis-coloured drawings are used once: parse them without filling the layer picture cache."""
    from generation.chibi import render

    return render.record_fragment(svg_fragment)


class PlaneCache:
    """LRU of ``Planes`` keyed by (template, size), bounded in bytes; thread-safe."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int], Planes] = OrderedDict()

    def get(self, template: str, slots: int, size: int) -> Planes:
        key = (template, size)
        with self._lock:
            planes = self._items.get(key)
            if planes is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return planes
            self.misses += 1
        planes = learn(template, slots, size)
        with self._lock:
            if key not in self._items:
                self._items[key] = planes
                self.bytes += planes.nbytes
            while self.bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self.bytes -= old.nbytes
        return planes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


PLANES = PlaneCache()


_COLOURS: dict[tuple[str, ...], np.ndarray] = {}
_COLOURS_MAX = 4096


def _colours(colours: tuple[str, ...]) -> np.ndarray:
    """The slots' colours as uint32 rows (r, g, b); memoised, palettes repeat."""
    hit = _COLOURS.get(colours)
    if hit is None:
        hit = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours], np.uint32)
        if len(_COLOURS) >= _COLOURS_MAX:
            _COLOURS.clear()
        _COLOURS[colours] = hit
    return hit


_circles: dict[int, np.ndarray] = {}


def _circle(size: int) -> np.ndarray:
    cov = _circles.get(size)
    if cov is None:
        arr = np.zeros((size, size), np.uint8)
        surface = skia.Surface(arr, skia.kAlpha_8_ColorType, skia.kPremul_AlphaType)
        canvas = surface.getCanvas()
        canvas.drawCircle(size / 2, size / 2, size / 2, skia.Paint(AntiAlias=True))
        del canvas, surface
        cov = _circles[size] = arr
    return cov


def rasterise(layers: Sequence[tuple[str, str | Backdrop]], size: int, *, circle: bool = False) -> np.ndarray:
    """Layers as (name, SVG fragment or Backdrop), back to front -> straight-alpha RGBA uint8, size x size.

    Which layers are recoloured depends only on the layer (its name, how many colours), never on what the
    caches hold, so the same spec always gives the same pixels. A Backdrop draws itself with skia."""
    from generation.chibi import _recolour  # numba, loaded on the first picture

    buf = np.zeros((size, size, 4), np.uint8)
    flat8 = buf.reshape(-1)
    flat32 = buf.view(np.uint32).reshape(-1)
    surface: skia.Surface | None = None
    canvas: skia.Canvas | None = None
    for i, (name, svg) in enumerate(layers):
        if isinstance(svg, str):
            template, colours = split(svg) if name not in DRAWN else (svg, ())
        else:
            if i == 0:  # nothing below: the base is written straight into the buffer
                svg.fill(buf)
                if not svg.marked:
                    continue
            template, colours = "", ()  # drawn by skia
        if not 0 < len(colours) <= MAX_SLOTS:
            if canvas is None:
                surface = skia.Surface(buf, skia.kRGBA_8888_ColorType, skia.kPremul_AlphaType)
                canvas = surface.getCanvas()
                canvas.scale(size / VIEW, size / VIEW)
            if isinstance(svg, str):
                canvas.drawPicture(_record(svg))
            elif i == 0:
                svg.draw_marks(canvas)
            else:
                svg.draw(canvas)
            continue
        planes = PLANES.get(template, len(colours), size)
        _recolour.paint(flat8, flat32, *planes.arrays(), _colours(colours))  # type: ignore[call-arg]
    del canvas, surface
    if circle:
        _recolour.mask(buf, _circle(size))
    _recolour.unpremultiply(buf)  # opaque pixels are skipped
    return buf
