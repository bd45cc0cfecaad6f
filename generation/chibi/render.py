"""Spec -> ordered layers -> SVG document -> pixels (skia SVGDOM; known layer templates recoloured by
``composite``)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import skia

from generation import catalog
from generation.chibi import composite, face, hair, items, outfit
from generation.chibi.backdrop import Backdrop, backdrop
from generation.chibi.context import Ctx
from generation.chibi.geometry import VIEW
from generation.spec import AvatarSpec

# Item slots in drawing order, relative to the body parts (see docs/renderer.md).
BACK_SLOTS = ("back",)
NECK_SLOTS = ("neck",)
FACE_SLOTS = ("face",)
MOUTH_SLOTS = ("mouth",)
# The hijab goes over glasses' arms and under headphones and hats (a hat may sit on top of it).
FRONT_SLOTS = ("eyes", "ear_jewelry", "ears", "head_wrap", "hair_accessory", "headphones", "head_top", "held")

# Which mask each body layer belongs to.
LAYER_PART: dict[str, str] = {
    "background": "background",
    "hair_back": "hair",
    "body": "body",
    "neck": "body",
    "head": "face",
    "blush": "face",
    "nose": "face",
    "eyes": "eyes",
    "brows": "eyes",
    "mouth": "mouth",
    "facial_hair": "face",
    "hair_front": "hair",
    "fx": "face",
}


@dataclass(frozen=True)
class Layer:
    name: str  # "eyes", "item:cat_ears", ...
    source: str | Backdrop  # SVG text, or a background the renderer draws without text

    @property
    def svg(self) -> str:
        """The layer's SVG fragment ("" for nothing to draw)."""
        return self.source if isinstance(self.source, str) else self.source.svg


def layers(
    spec: AvatarSpec,
    *,
    background: bool = True,
    eyes: tuple[str, str] | None = None,
    mouth: str | None = None,
) -> list[Layer]:
    """The avatar as named layers, back to front. Each layer's SVG is self-contained (own defs).

    ``eyes`` overrides the expression's eye modes (left, right), e.g. ("closed", "closed") for a blink;
    ``mouth`` its mouth shape (e.g. "smile_open" for a talking frame; see ``face.MOUTH_HALF_WIDTH``).
    """
    c = Ctx.of(spec)
    if eyes is not None:
        c = dataclasses.replace(c, expr=dataclasses.replace(c.expr, left=eyes[0], right=eyes[1]))
    if mouth is not None:
        if mouth not in face.MOUTH_HALF_WIDTH:
            raise ValueError(f"unknown mouth {mouth!r}")
        c = dataclasses.replace(c, expr=dataclasses.replace(c.expr, mouth=mouth))
    by_slot: dict[str, list[str]] = {}
    for item in c.spec.items:
        by_slot.setdefault(catalog.item_slot(item), []).append(item)

    def item_layers(slots: tuple[str, ...]) -> list[Layer]:
        out = []
        for slot in slots:
            for item in by_slot.get(slot, []):
                out.append(Layer(f"item:{item}", items.item_svg(c, item, slot)))
        return out

    out: list[Layer] = []
    if background:
        out.append(Layer("background", backdrop(c) or outfit.background(c)))
    out += item_layers(BACK_SLOTS)
    out.append(Layer("hair_back", hair.hair_back(c)))
    out.append(Layer("body", outfit.body(c)))
    out.append(Layer("neck", face.neck(c)))
    out += item_layers(NECK_SLOTS)
    out.append(Layer("head", face.head(c)))
    out.append(Layer("blush", face.blush(c)))
    out.append(Layer("nose", face.nose(c)))
    out.append(Layer("mouth", face.mouth(c)))
    out.append(Layer("eyes", face.eyes(c)))
    out += item_layers(FACE_SLOTS)
    out.append(Layer("facial_hair", face.facial_hair(c)))
    out += item_layers(MOUTH_SLOTS)
    out.append(Layer("hair_front", hair.hair_front(c)))
    out.append(Layer("brows", face.brows(c)))
    out.append(Layer("fx", face.fx(c)))
    out += item_layers(FRONT_SLOTS)
    return out


def document(parts: list[Layer], *, circle: bool = False) -> str:
    body = "".join(f'<g id="{p.name.replace(":", "-")}">{p.svg}</g>' for p in parts if p.svg)
    if circle:
        body = (
            f'<defs><clipPath id="crop"><circle cx="{VIEW / 2}" cy="{VIEW / 2}" r="{VIEW / 2}"/></clipPath></defs>'
            f'<g clip-path="url(#crop)">{body}</g>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {VIEW} {VIEW}" width="{VIEW}" height="{VIEW}">'
        f"{body}</svg>"
    )


def rasterise_reference(svg: str, size: int, *, circle: bool = False) -> np.ndarray:
    """The reference rasteriser: the whole document parsed by skia's SVGDOM and drawn into a straight-alpha
    surface. The fast path (``rasterise_layers``) is tested against it (tests/generation/test_render_fast.py)."""
    data = svg.encode("utf-8")
    stream = skia.MemoryStream(data)
    dom = skia.SVGDOM.MakeFromStream(stream)
    if dom is None:
        raise RuntimeError("the SVG could not be parsed")
    return _draw(dom.render, size, circle)


# Parsed layers, recorded as skia Pictures and keyed by their SVG text: a layer's pixels depend only on its
# own text (each layer carries its own defs), and layers repeat across renders (the same head, body, nose;
# every layer of a spec drawn again at another size, for masks, or after an edit that changed one part).
# Replaying a Picture issues the same draw calls SVGDOM.render would, so the pixels are the same.
PICTURE_CACHE_SIZE = 2048  # about 2 KB each
_picture_lock = threading.Lock()
_pictures: OrderedDict[str, skia.Picture] = OrderedDict()
_CULL = skia.Rect.MakeWH(VIEW, VIEW)


def _record(svg: str) -> skia.Picture:
    data = svg.encode("utf-8")
    dom = skia.SVGDOM.MakeFromStream(skia.MemoryStream(data))
    if dom is None:
        raise RuntimeError("the SVG could not be parsed")
    recorder = skia.PictureRecorder()
    dom.render(recorder.beginRecording(_CULL))
    return recorder.finishRecordingAsPicture()


def record_fragment(fragment: str) -> skia.Picture:
    """One layer's SVG fragment as a skia Picture, not cached (``layer_picture`` caches)."""
    return _record(document([Layer("x", fragment)]))


def layer_picture(fragment: str) -> skia.Picture:
    """One layer's SVG fragment as a recorded skia Picture in view-box units (LRU-cached by its text)."""
    with _picture_lock:
        pic = _pictures.get(fragment)
        if pic is not None:
            _pictures.move_to_end(fragment)
            return pic
    pic = _record(document([Layer("x", fragment)]))
    with _picture_lock:
        _pictures[fragment] = pic
        while len(_pictures) > PICTURE_CACHE_SIZE:
            _pictures.popitem(last=False)
    return pic


def clear_picture_cache() -> None:
    with _picture_lock:
        _pictures.clear()


def _draw_pictures(pictures: list[skia.Picture], size: int, circle: bool) -> np.ndarray:
    """Replay pictures into a fresh straight-alpha RGBA buffer, exactly as ``rasterise_reference`` draws.

    The surface stays unpremultiplied: skia then blends in its float pipeline, and the pixels are the
    reference's to the bit. A premultiplied surface was only 2% faster and moved translucent pixels by up
    to 7 levels (its 8-bit pipeline rounds differently), so it is not used."""

    def replay(canvas: skia.Canvas) -> None:
        for pic in pictures:
            canvas.drawPicture(pic)

    return _draw(replay, size, circle)


def _draw(paint: Callable[[skia.Canvas], None], size: int, circle: bool) -> np.ndarray:
    """A fresh straight-alpha RGBA buffer of size x size, painted in the VIEW coordinate system (circle:
    clipped to the inscribed circle)."""
    arr = np.zeros((size, size, 4), np.uint8)
    surface = skia.Surface(arr, skia.kRGBA_8888_ColorType, skia.kUnpremul_AlphaType)
    canvas = surface.getCanvas()
    if circle:
        p = skia.Path()
        p.addCircle(size / 2, size / 2, size / 2)
        canvas.clipPath(p, skia.ClipOp.kIntersect, True)
    canvas.scale(size / VIEW, size / VIEW)
    paint(canvas)
    del canvas, surface  # the buffer outlives the surface that wraps it
    return arr


def rasterise_layers(
    parts: list[Layer] | tuple[Layer, ...], size: int, *, circle: bool = False
) -> np.ndarray:
    """Layers -> straight (unpremultiplied) RGBA uint8 array of size x size: the fast path.

    Layers whose colour-free template is known are recoloured from cached weights (``composite``: the
    reference's pixels to within rounding); the rest are parsed once (``layer_picture``) and replayed.
    Without numba every layer is replayed: the same draw calls, so the same pixels as
    ``rasterise_reference(document(parts), size)`` (tests/generation/test_render_fast.py)."""
    if composite.AVAILABLE:
        return composite.rasterise([(p.name, p.source) for p in parts if p.source], size, circle=circle)
    return _draw_pictures([layer_picture(p.svg) for p in parts if p.svg], size, circle)


def rasterise(svg: str, size: int, *, circle: bool = False) -> np.ndarray:
    """SVG text -> straight (unpremultiplied) RGBA uint8 array of size x size (any document; engines
    with layers use ``rasterise_layers``, which caches each layer)."""
    return rasterise_reference(svg, size, circle=circle)


def alpha_of(svg_fragment: str, size: int) -> np.ndarray:
    """Coverage (0..1 float32) of one layer alone."""
    return _draw_pictures([layer_picture(svg_fragment)], size, False)[:, :, 3].astype(np.float32) / 255.0
