"""Selfie analysis -> AvatarSpec, and the photo "toon" style. Offline, in memory (see docs/selfie.md).

Modules: ``decode`` (safe decoding, Pillow only), ``colour`` (colour maths), ``masks`` (landmark indices,
masks, crops), ``measure`` (pixels -> :class:`~generation.face.measure.Measures`), ``mapping`` (measures ->
attributes -> spec, and the reading in words), ``analyze`` (the pipeline), ``toon`` (the photo style).

Names are imported lazily: ``from generation.face.decode import decode_photo`` (what the bot process does to
validate an upload) must not import OpenCV or MediaPipe, which only the worker needs.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generation.face.analyze import (
        Attribute,
        FaceAnalysis,
        analyze,
        analyze_photo,
        chibify_spec,
        head_crop,
    )
    from generation.face.decode import DecodedPhoto, PhotoError, decode_photo
    from generation.face.reading import Reading, describe, reading_from_spec
    from generation.face.toon import toon, toon_photo

__all__ = [
    "Attribute",
    "DecodedPhoto",
    "FaceAnalysis",
    "PhotoError",
    "Reading",
    "analyze",
    "analyze_photo",
    "chibify_spec",
    "decode_photo",
    "describe",
    "head_crop",
    "reading_from_spec",
    "toon",
    "toon_photo",
]

_HOME = {
    "DecodedPhoto": "decode",
    "PhotoError": "decode",
    "decode_photo": "decode",
    "toon": "toon",
    "Reading": "reading",
    "describe": "reading",
    "reading_from_spec": "reading",
    "toon_photo": "toon",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"generation.face.{_HOME.get(name, 'analyze')}")
    value = getattr(module, name)
    setattr(sys.modules[__name__], name, value)
    return value


class _Package(types.ModuleType):
    """``generation.face.analyze`` and ``generation.face.toon`` are both submodules and the functions of those
    names. Importing a submodule binds it on the package; here the package keeps the function instead (as it
    did when this file imported everything eagerly). ``from generation.face.analyze import ...`` still reads
    the submodule from ``sys.modules``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("analyze", "toon") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
