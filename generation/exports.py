"""Exports of a stored avatar: every format the console, the bot and the web offer, drawn from its spec.

``export_files(spec, fmt, size, name, params)`` returns ``{suggested file name: bytes}``. The chibi engine
draws every format (it is CPU work: callers run it in a thread). Formats:

- ``png``, ``transparent``, ``circle``: one PNG of ``size`` px (64-2048);
- ``svg``: the vector drawing;
- ``gif``, ``apng``: a blinking loop (at most 512 px);
- ``stickers``: 8 expressions as Discord stickers and emoji, and a sheet;
- ``pngtuber``: a PNGTuber set, see :func:`pngtuber_set`.
"""

from __future__ import annotations

from generation.chibi import exports as chibi_exports
from generation.chibi.engine import ChibiEngine, encode_png
from generation.spec import AvatarSpec

FORMATS: tuple[str, ...] = ("png", "transparent", "circle", "svg", "gif", "apng", "stickers", "pngtuber")
#: Formats that come as several files (zipped by adapters that send one file).
SETS: frozenset[str] = frozenset({"stickers", "pngtuber"})
#: Formats whose size is fixed by the format itself (the size argument does not apply).
FIXED_SIZE: frozenset[str] = frozenset({"svg", "stickers"})
ANIMATION_MAX = 512
SIZE_RANGE = (64, 2048)

# The PNGTuber set: five states, each with the mouth closed and open (talking), eyes open and closed
# (blinking). (state name, chibi expression, its quiet mouth, its talking mouth.)
PNGTUBER_STATES: tuple[tuple[str, str, str, str], ...] = (
    ("neutral", "neutral", "flat", "small_o"),
    ("happy", "smile", "smile", "smile_open"),
    ("sad", "sad", "frown", "cry"),
    ("angry", "angry", "frown", "grin"),
    ("surprised", "surprised", "small_o", "o"),
)
# The four images of a state, in the order veadotube mini lists them (closed mouth, open mouth, blinking
# closed mouth, blinking open mouth), with the names PNGTuber Plus and asset packs use for them.
PNGTUBER_FRAMES: tuple[tuple[str, bool, bool], ...] = (
    ("idle", False, False),
    ("talk", True, False),
    ("idle_blink", False, True),
    ("talk_blink", True, True),
)

PNGTUBER_README = """PNGTuber set made by Chibify: {name}

Five states (neutral, happy, sad, angry, surprised), four images each, {size}x{size} px, transparent:

  <state>/<state>_idle.png         eyes open,   mouth closed   (not talking)
  <state>/<state>_talk.png         eyes open,   mouth open     (talking)
  <state>/<state>_idle_blink.png   eyes closed, mouth closed   (blink while quiet)
  <state>/<state>_talk_blink.png   eyes closed, mouth open     (blink while talking)

veadotube mini: make one state per folder and drop the four images into its slots in this order
(closed mouth, open mouth, blinking closed mouth, blinking open mouth).
PNGTuber Plus and similar tools: use <state>_idle as the "mouth closed" sprite, <state>_talk as the
"mouth open" sprite, and the _blink images for the blink frames.
"""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def pngtuber_set(spec: AvatarSpec, size: int = 512, *, name: str = "chibify") -> dict[str, bytes]:
    """5 states x eyes open/closed x mouth closed/open = 20 transparent PNGs, one folder per state, and a
    README saying which image goes where (see :data:`PNGTUBER_README`)."""
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ValueError(f"size must be between {SIZE_RANGE[0]} and {SIZE_RANGE[1]} pixels (got {size})")
    engine = ChibiEngine()
    base = spec.resolved()
    files: dict[str, bytes] = {}
    for state, expression, quiet_mouth, talking_mouth in PNGTUBER_STATES:
        s = base.replace(expression=expression)
        text = engine.png_text(s, {"pngtuber": state})
        for frame, talking, blinking in PNGTUBER_FRAMES:
            rgba = engine.render_rgba(
                s,
                size,
                transparent=True,
                eyes=("closed", "closed") if blinking else None,
                mouth=talking_mouth if talking else quiet_mouth,
            )
            files[f"{state}/{state}_{frame}.png"] = encode_png(rgba, text, compress_level=6)
    files["README.txt"] = PNGTUBER_README.format(name=name, size=size).encode("utf-8")
    return files


def export_files(
    spec: AvatarSpec, fmt: str, size: int, name: str, params: dict[str, str] | None = None
) -> dict[str, bytes]:
    """Draw ``spec`` as ``fmt`` at ``size`` px; file names start with ``name`` (the avatar id)."""
    check_format(fmt)
    meta = dict(params or {})
    if fmt == "png":
        return {f"{name}.png": chibi_exports.png(spec, size, metadata=meta)}
    if fmt == "transparent":
        return {f"{name}-transparent.png": chibi_exports.png(spec, size, transparent=True, metadata=meta)}
    if fmt == "circle":
        return {
            f"{name}-circle.png": chibi_exports.png(spec, size, transparent=True, circle=True, metadata=meta)
        }
    if fmt == "svg":
        return {f"{name}.svg": chibi_exports.svg(spec).encode("utf-8")}
    if fmt == "gif":
        return {f"{name}-blink.gif": chibi_exports.blink_gif(spec, min(size, ANIMATION_MAX))}
    if fmt == "apng":
        return {f"{name}-blink.png": chibi_exports.blink_apng(spec, min(size, ANIMATION_MAX))}
    if fmt == "stickers":
        return {f"{name}/{path}": data for path, data in chibi_exports.sticker_pack(spec).items()}
    return {f"{name}-pngtuber/{path}": data for path, data in pngtuber_set(spec, size, name=name).items()}


def to_zip(files: dict[str, bytes]) -> bytes:
    """A deterministic zip (fixed timestamps, sorted names)."""
    return chibi_exports.to_zip(files)
