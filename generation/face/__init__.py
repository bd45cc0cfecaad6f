"""Selfie analysis -> AvatarSpec, and the photo "toon" style. Offline, in memory (see docs/selfie.md)."""

from generation.face.analyze import (
    Attribute,
    FaceAnalysis,
    analyze,
    analyze_photo,
    chibify_spec,
    head_crop,
)
from generation.face.decode import DecodedPhoto, PhotoError, decode_photo
from generation.face.toon import toon, toon_photo

__all__ = [
    "Attribute",
    "DecodedPhoto",
    "FaceAnalysis",
    "PhotoError",
    "analyze",
    "analyze_photo",
    "chibify_spec",
    "decode_photo",
    "head_crop",
    "toon",
    "toon_photo",
]
