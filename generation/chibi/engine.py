"""ChibiEngine: the embedded default engine. Spec -> SVG -> pixels, PNG, masks and edit regions."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

try:  # Intel's ISA-L deflate: about 4x faster than zlib at level 1 on our pictures, and a little smaller
    from isal import isal_zlib

    _isal_compress: Callable[[bytes | memoryview, int], bytes] | None = isal_zlib.compress
except ImportError:  # pragma: no cover - the wheel is a declared dependency; zlib still makes valid PNGs
    _isal_compress = None

from generation import catalog
from generation.chibi import render
from generation.chibi.context import Ctx
from generation.chibi.geometry import CX, EAR_Y, VIEW
from generation.chibi.render import Layer
from generation.chibi.svgkit import circle as svg_circle
from generation.chibi.svgkit import ellipse, rrect
from generation.spec import AvatarSpec

MIN_SIZE = 64
MAX_SIZE = 2048
MASK_KEYS = ("hair", "head_top", "ears", "eyes", "mouth", "face", "body", "background", "items")


def check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"size must be a whole number of pixels, not {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})")
    return size


@lru_cache(maxsize=1024)
def _resolve(spec: AvatarSpec) -> AvatarSpec:
    """``spec.resolved()`` once per spec: ``render()`` needs it for the layers and again for the text chunk
    (about 0.13 ms each time)."""
    return spec.resolved()


# The nearest colour name (a search over the named colours) for the prompt; palettes repeat.
_color_name = lru_cache(maxsize=1024)(catalog.color_name)


def describe(spec: AvatarSpec) -> str:
    """A plain English prompt for a resolved spec (what Stable Diffusion tools show as the prompt)."""
    s = _resolve(spec)
    assert s.hair.style and s.hair.color and s.eyes.color and s.outfit.style and s.outfit.color
    words = [
        "chibi avatar, super-deformed, cute",
        f"{catalog.get('skin_tone', s.skin_tone or 'fair').en} skin",
        f"{catalog.get('face_shape', s.face_shape or 'round').en}",
        f"{_color_name(s.hair.color)} {catalog.get('hair_style', s.hair.style).en}",
        f"{_color_name(s.eyes.color)} {catalog.get('eye_style', s.eyes.style or 'round').en}",
        catalog.get("expression", s.expression or "smile").en,
    ]
    if s.facial_hair and s.facial_hair != "none":
        words.append(catalog.get("facial_hair", s.facial_hair).en)
    words += [catalog.get("item", i).en for i in s.items]
    words.append(f"{_color_name(s.outfit.color)} {catalog.get('outfit', s.outfit.style).en}")
    words.append(f"{catalog.get('background', s.background.kind or 'solid').en} background")
    return ", ".join(words)


def parameters_text(spec: AvatarSpec, prompt: str | None = None) -> str:
    s = _resolve(spec)
    return f"{prompt or describe(s)}\nSeed: {s.seed}, Engine: chibi, Size: 512x512, Spec: {s.to_text()}"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)))


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when the value is Latin-1, else an uncompressed iTXt (UTF-8), as Pillow writes them."""
    k = key.encode("latin-1", "replace")[:79]
    try:
        return _chunk(b"tEXt", k + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", k + b"\0\0\0\0\0" + value.encode("utf-8"))


def deflate(data: bytes | memoryview, level: int) -> bytes:
    """One zlib stream: ISA-L for levels 0-2 (its levels; 4-5x faster than zlib's level 1 on flat cartoons,
    a little smaller), zlib for 3 and up (or when isal is missing)."""
    if _isal_compress is not None and level <= 2:
        return _isal_compress(data, level)
    return zlib.compress(data, level)


def encode_png(rgba: np.ndarray, text: dict[str, str], compress_level: int = 1) -> bytes:
    """PNG with only the given text chunks (no EXIF, no time); deterministic for the same pixels.

    Fast levels (<= 3) are written here: filter type 0 (none) on every row and one zlib stream (``deflate``).
    Flat-coloured cartoons compress well without per-row filtering (sub/up filters made them 10-20% bigger,
    see docs/renderer.md), and it skips the filter search Pillow does. Higher levels (stickers) go through
    Pillow's adaptive filters for size.
    """
    if compress_level > 3:
        info = PngInfo()
        for key, value in text.items():
            if all(ord(ch) < 256 for ch in value):
                info.add_text(key, value)
            else:
                info.add_itxt(key, value)
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
        return buf.getvalue()
    h, w, channels = rgba.shape
    if channels != 4 or rgba.dtype != np.uint8:
        raise ValueError("encode_png wants an H x W x 4 uint8 array")
    rows = np.empty((h, w * 4 + 1), np.uint8)
    rows[:, 0] = 0  # filter type: none
    rows[:, 1:] = rgba.reshape(h, w * 4)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8 bit RGBA, no interlace
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            *(_text_chunk(k, v) for k, v in text.items()),
            _chunk(b"IDAT", deflate(rows.data, compress_level)),
            _chunk(b"IEND", b""),
        ]
    )


@lru_cache(maxsize=256)
def _layers(
    spec: AvatarSpec, background: bool, eyes: tuple[str, str] | None, mouth: str | None = None
) -> tuple[Layer, ...]:
    return tuple(render.layers(spec, background=background, eyes=eyes, mouth=mouth))


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    if r <= 0:
        return out
    _h, _w = mask.shape
    # separable square max filter
    tmp = out.copy()
    for d in range(1, r + 1):
        tmp[:, d:] |= out[:, :-d]
        tmp[:, :-d] |= out[:, d:]
    out = tmp.copy()
    for d in range(1, r + 1):
        out[d:, :] |= tmp[:-d, :]
        out[:-d, :] |= tmp[d:, :]
    return out


class ChibiEngine:
    """The built-in vector chibi engine. Cheap to create; safe to share between threads."""

    name = "chibi"

    # --- pictures ------------------------------------------------------------------------------------

    def layers(
        self,
        spec: AvatarSpec,
        *,
        background: bool = True,
        eyes: tuple[str, str] | None = None,
        mouth: str | None = None,
    ) -> tuple[Layer, ...]:
        return _layers(_resolve(spec), background, eyes, mouth)

    def render_svg(self, spec: AvatarSpec, *, transparent: bool = False, circle: bool = False) -> str:
        return render.document(list(self.layers(spec, background=not transparent)), circle=circle)

    def render_rgba(
        self,
        spec: AvatarSpec,
        size: int = 512,
        *,
        transparent: bool = False,
        circle: bool = False,
        eyes: tuple[str, str] | None = None,
        mouth: str | None = None,
    ) -> np.ndarray:
        if not isinstance(size, int) or not 16 <= size <= 4096:
            raise ValueError(f"size must be between 16 and 4096 pixels (got {size!r})")
        parts = self.layers(spec, background=not transparent, eyes=eyes, mouth=mouth)
        return render.rasterise_layers(parts, size, circle=circle)

    def render(
        self,
        spec: AvatarSpec,
        size: int = 512,
        *,
        transparent: bool = False,
        circle: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> bytes:
        """A PNG with a ``parameters`` text chunk (prompt, seed, spec JSON) plus ``metadata``."""
        check_size(size)
        rgba = self.render_rgba(spec, size, transparent=transparent, circle=circle)
        return encode_png(rgba, self.png_text(spec, metadata))

    def png_text(self, spec: AvatarSpec, metadata: dict[str, str] | None = None) -> dict[str, str]:
        meta = dict(metadata or {})
        text = {"parameters": parameters_text(spec, meta.get("prompt"))}
        for k, v in sorted(meta.items()):
            if k != "parameters":
                text[str(k)] = str(v)
        return text

    # --- masks ---------------------------------------------------------------------------------------

    def _contributions(self, parts: tuple[Layer, ...], size: int) -> list[np.ndarray]:
        """How much each layer shows in the final picture: its alpha times what lies above lets through."""
        alphas = [
            render.alpha_of(p.svg, size) if p.svg else np.zeros((size, size), np.float32) for p in parts
        ]
        through: np.ndarray = np.ones((size, size), np.float32)
        contrib: list[np.ndarray] = [through] * len(parts)
        for i in range(len(parts) - 1, -1, -1):
            contrib[i] = alphas[i] * through
            through = through * (1.0 - alphas[i])
        return contrib

    def masks(self, spec: AvatarSpec, size: int = 512, *, visible: bool = True) -> dict[str, np.ndarray]:
        """Boolean region masks. ``visible`` masks leave out what is hidden behind parts drawn on top;
        ``visible=False`` gives each part's full coverage. Keys: hair, head_top, ears, eyes, mouth, face,
        body, background, items, one ``item:<id>`` per item, and ``slot:<slot>`` for every item slot."""
        s = spec.resolved()
        parts = self.layers(s)
        if visible:
            amounts = self._contributions(parts, size)
        else:
            amounts = [
                render.alpha_of(p.svg, size) if p.svg else np.zeros((size, size), np.float32) for p in parts
            ]
        out: dict[str, np.ndarray] = {k: np.zeros((size, size), bool) for k in MASK_KEYS}
        for p, a in zip(parts, amounts, strict=True):
            m = a > 0.5
            if p.name.startswith("item:"):
                out[p.name] = m
                out["items"] |= m
                slot = catalog.item_slot(p.name[5:])
                if slot in ("head_top", "ears"):
                    out[slot] |= m
            else:
                key = render.LAYER_PART.get(p.name, "face")
                out[key] |= m
        zones = self._zones(s, size)
        for slot, zone in zones.items():
            out[f"slot:{slot}"] = zone | out.get(f"slot:{slot}", zone)
        out["head_top"] |= zones["head_top"] & ~out["background"] if visible else zones["head_top"]
        out["ears"] |= zones["ears"]
        return out

    def _zones(self, s: AvatarSpec, size: int) -> dict[str, np.ndarray]:
        """Where an item of each slot goes (for inpainting a new item), from the shared geometry."""
        c = Ctx.of(s)
        g = c.geo
        (lx, ly), (rx, ry) = g.animal_ear_bases()
        (elx, ely), (erx, _ery) = g.eyes
        top = max(0.0, g.hair_top - 90)
        shapes = {
            "head_top": rrect(CX - g.hat_half_w - 24, top, 2 * g.hat_half_w + 48, g.hat_rim_y + 18 - top, 40),
            "ears": svg_circle(lx, ly - 50, 62)
            + svg_circle(rx, ry - 50, 62)
            + "".join(ellipse(x, y, 30, 36) for x, y in g.ears),
            "hair_accessory": svg_circle(rx + 6, ry + 24, 56) + svg_circle(2 * CX - rx - 6, ly + 24, 56),
            "headphones": rrect(
                CX - g.hat_half_w - 40, g.hair_top - 50, 2 * g.hat_half_w + 80, EAR_Y + 60 - g.hair_top, 60
            ),
            "eyes": rrect(elx - 56, ely - 50, erx - elx + 112, 100, 30),
            "mouth": ellipse(CX, 350, 86, 54),
            "face": ellipse(CX, 300, 130, 90),
            "ear_jewelry": "".join(ellipse(x, y + 30, 22, 34) for x, y in g.ears),
            "neck": rrect(CX - 100, 350, 200, 120, 40),
            "head_wrap": rrect(CX - 190, 40, 380, VIEW - 40, 120),
            "back": rrect(CX - 260, 240, 520, 260, 60),
            "held": rrect(CX - 200, 330, 400, 182, 40),
        }
        return {k: render.alpha_of(v, size) > 0.5 for k, v in shapes.items()}

    def region_for_change(
        self, old: AvatarSpec, new: AvatarSpec, size: int = 512, *, grow: int | None = None
    ) -> np.ndarray:
        """Pixels that may differ between the two renders: every changed layer where it shows, in either
        picture, grown by a few pixels for outlines. Outside this mask the two renders are identical."""
        a, b = self.layers(old), self.layers(new)
        sa, sb = {p.name: p.svg for p in a}, {p.name: p.svg for p in b}
        changed = {n for n in sa.keys() | sb.keys() if sa.get(n) != sb.get(n)}
        region = np.zeros((size, size), bool)
        if not changed:
            return region
        for parts in (a, b):
            for p, amount in zip(parts, self._contributions(parts, size), strict=True):
                if p.name in changed:
                    region |= amount > 0
        return _dilate(region, grow if grow is not None else max(2, round(size / 128)))
