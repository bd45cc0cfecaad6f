"""Spec -> ordered layers -> SVG document -> pixels (skia SVGDOM)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import skia

from generation import catalog
from generation.chibi import face, hair, items, outfit
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
    svg: str


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
        out.append(Layer("background", outfit.background(c)))
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


def rasterise(svg: str, size: int, *, circle: bool = False) -> np.ndarray:
    """SVG text -> straight (unpremultiplied) RGBA uint8 array of size x size."""
    data = svg.encode("utf-8")
    stream = skia.MemoryStream(data)
    dom = skia.SVGDOM.MakeFromStream(stream)
    if dom is None:
        raise RuntimeError("the SVG could not be parsed")
    # Draw straight into a fresh numpy buffer (no snapshot, no copy out). The surface is straight-alpha
    # RGBA, as before: skia blends in premultiplied space and stores unpremultiplied pixels.
    arr = np.zeros((size, size, 4), np.uint8)
    surface = skia.Surface(arr, skia.kRGBA_8888_ColorType, skia.kUnpremul_AlphaType)
    canvas = surface.getCanvas()
    if circle:
        p = skia.Path()
        p.addCircle(size / 2, size / 2, size / 2)
        canvas.clipPath(p, skia.ClipOp.kIntersect, True)
    canvas.scale(size / VIEW, size / VIEW)
    dom.render(canvas)
    del canvas, surface  # the buffer outlives the surface that wraps it
    return arr


def alpha_of(svg_fragment: str, size: int) -> np.ndarray:
    """Coverage (0..1 float32) of one layer alone."""
    doc = document([Layer("x", svg_fragment)])
    return rasterise(doc, size)[:, :, 3].astype(np.float32) / 255.0
