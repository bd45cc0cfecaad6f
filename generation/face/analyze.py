"""Selfie -> face attributes -> :class:`~generation.spec.AvatarSpec`, offline and in memory.

Pipeline: :func:`~generation.face.decode.decode_photo` (safe decode) -> MediaPipe face detection (all faces,
ordered left to right) -> face mesh with iris on a crop around the chosen face -> selfie segmentation on a
head-and-shoulders crop -> colour and geometry measurements -> catalog values, each with a confidence.
Attributes whose confidence is below :data:`MIN_CONFIDENCE` fall back to neutral choices.

Privacy: the photo lives only in memory for the length of the call; nothing is written anywhere and nothing
derived from the photo is logged above DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.face.decode import DecodedPhoto, PhotoError, decode_photo
from generation.face.mapping import (
    GLASSES_RING,
    HAIR_COLOR_CLASS,
    MIN_CONFIDENCE,
    SQUARE_FILL,
    Attribute,
    attributes,
    build_spec,
    glasses_attributes,
    reading_of,
)
from generation.face.masks import box_outside, crop_region, person_mask
from generation.face.measure import TIP, Measures, measure
from generation.face.models import Detection, models
from generation.face.reading import Reading, describe
from generation.spec import AvatarSpec

__all__ = [
    "GLASSES_RING",
    "HAIR_COLOR_CLASS",
    "MIN_CONFIDENCE",
    "SQUARE_FILL",
    "Attribute",
    "FaceAnalysis",
    "FaceGeometry",
    "Measures",
    "Reading",
    "analyze",
    "analyze_photo",
    "chibify_spec",
    "describe",
    "glasses_attributes",
    "head_crop",
    "head_crop_box",
    "locate_face",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceGeometry:
    """Where the chosen face is in the working image (pixels), for the toon style."""

    landmarks: NDArray[np.float64]  # 478 x 3
    person_mask: NDArray[np.float32]  # H x W, 0..1, whole working image

    def point(self, index: int) -> tuple[float, float]:
        return float(self.landmarks[index, 0]), float(self.landmarks[index, 1])


@dataclass(frozen=True)
class FaceAnalysis:
    """What a selfie shows. ``bbox`` is (x, y, w, h) in the working image; faces are numbered left to right."""

    faces_found: int
    chosen: int
    bbox: tuple[int, int, int, int]
    face_boxes: tuple[tuple[int, int, int, int], ...]
    image_size: tuple[int, int]
    attributes: Mapping[str, Attribute]
    spec: AvatarSpec
    notes: tuple[str, ...] = ()
    geometry: FaceGeometry | None = field(default=None, repr=False, compare=False)
    measures: Measures | None = field(default=None, repr=False, compare=False)
    reading: Reading = field(default_factory=Reading)

    def describe(self, lang: str = "en") -> str:
        """What was read from the photo, in words (see :func:`~generation.face.mapping.describe`)."""
        return describe(self.reading, lang)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (no pixels): what `chibify selfie --json` prints."""
        return {
            "faces_found": self.faces_found,
            "chosen": self.chosen,
            "bbox": list(self.bbox),
            "face_boxes": [list(b) for b in self.face_boxes],
            "attributes": {
                k: {"value": a.value, "confidence": round(a.confidence, 2)}
                for k, a in self.attributes.items()
            },
            "spec": self.spec.to_json(),
            "reading": self.reading.to_json(),
            "read": self.describe("en"),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------------
# the analysis


def locate_face(photo: DecodedPhoto, face_index: int | None = None) -> tuple[list[Detection], int]:
    """All faces left to right and the index of the one to use (the most prominent unless asked)."""
    rgb = photo.rgb
    h, w = rgb.shape[:2]
    faces = sorted(models().detect(rgb), key=lambda d: d.cx)
    if not faces:
        raise PhotoError("no_face", f"I couldn't find a face in that photo. {TIP}")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise PhotoError(
                "bad_face_index",
                f"That photo has {len(faces)} face{'s' if len(faces) != 1 else ''}; "
                f"pick a number from 1 to {len(faces)} (left to right).",
            )
        chosen = face_index
    else:
        # Prominence: size first, then how sure the detector is and how central the face sits.
        def prominence(d: Detection) -> float:
            centre = 1.0 - 0.3 * abs(d.cx / w - 0.5)
            return d.w * d.h * d.score * centre * (1.0 - box_outside(d, w, h))

        chosen = max(range(len(faces)), key=lambda i: prominence(faces[i]))
    if box_outside(faces[chosen], w, h) > 0.12:
        raise PhotoError(
            "partial_face", f"Only part of the face is inside that photo, so I can't see who it is. {TIP}"
        )
    return faces, chosen


def _mesh(rgb: NDArray[np.uint8], det: Detection) -> NDArray[np.float64]:
    """Face mesh on a square crop around the detection, mapped back to image pixels."""
    side = 2.2 * max(det.w, det.h)
    cx, cy = det.cx, det.y + det.h * 0.45
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    crop = crop_region(rgb, x0, y0, x0 + round(side), y0 + round(side))
    scale = 1.0
    if crop.shape[0] > 512:
        scale = 512 / crop.shape[0]
        crop = np.asarray(cv2.resize(crop, (512, 512), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    elif crop.shape[0] < 256:
        scale = 256 / crop.shape[0]
        crop = np.asarray(cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    pts = models().landmarks(crop)
    if pts is None:
        raise PhotoError("no_face", f"I found a face but couldn't make out its features. {TIP}")
    pts = pts / scale
    pts[:, 0] += x0
    pts[:, 1] += y0
    return pts


def analyze_photo(photo: DecodedPhoto, *, face_index: int | None = None, seed: int = 0) -> FaceAnalysis:
    """Analyse an already decoded photo (see :func:`analyze`)."""
    rgb = photo.rgb
    h, w = rgb.shape[:2]
    faces, chosen = locate_face(photo, face_index)
    det = faces[chosen]
    pts = _mesh(rgb, det)
    outside = ((pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)).mean()
    if outside > 0.08:
        raise PhotoError(
            "partial_face", f"Only part of the face is inside that photo, so I can't see who it is. {TIP}"
        )
    person = person_mask(rgb, pts)
    measures = measure(rgb, pts, person)
    log.debug("face measures: %s", measures)
    attrs = attributes(measures)
    notes: list[str] = []
    if len(faces) > 1:
        notes.append(
            f"I found {len(faces)} faces and used face {chosen + 1} (counting from the left); "
            "choose another with its number."
        )
    if det.w < 80:
        notes.append("The face is small in this photo; a closer selfie gives a better likeness.")
    unsure = [k for k, a in attrs.items() if not a.trusted() and k not in ("mouth_open",)]
    if unsure:
        notes.append(
            "Not sure about: " + ", ".join(k.replace("_", " ") for k in unsure) + " (neutral choices used)."
        )
    spec = build_spec(attrs, seed)
    boxes = tuple((round(f.x), round(f.y), round(f.w), round(f.h)) for f in faces)
    return FaceAnalysis(
        faces_found=len(faces),
        chosen=chosen,
        bbox=boxes[chosen],
        face_boxes=boxes,
        image_size=(w, h),
        attributes=MappingProxyType(attrs),
        spec=spec,
        notes=tuple(notes),
        geometry=FaceGeometry(landmarks=pts, person_mask=person),
        measures=measures,
        reading=reading_of(spec, attrs),
    )


def analyze(image_bytes: bytes, *, face_index: int | None = None, seed: int = 0) -> FaceAnalysis:
    """Decode an uploaded selfie in memory and describe the chosen face as attributes and an AvatarSpec.

    ``face_index`` picks a face counting from 0 on the left; by default the most prominent face is used.
    Raises :class:`~generation.face.decode.PhotoError` with a ``category`` and a kind message.
    """
    return analyze_photo(decode_photo(image_bytes), face_index=face_index, seed=seed)


def head_crop(photo: DecodedPhoto, analysis: FaceAnalysis, size: int) -> NDArray[np.uint8]:
    """The chosen face with its hair and a little of the shoulders, as a ``size`` x ``size`` square (the face
    box grown 2.2 times, a little below centre; beyond the photo's edge its border is repeated): the start
    of the diffusion engine's selfie img2img and the picture an IP-Adapter reads."""
    return head_crop_box(photo, analysis.bbox, size)


def head_crop_box(photo: DecodedPhoto, bbox: tuple[int, int, int, int], size: int) -> NDArray[np.uint8]:
    """:func:`head_crop` for a face box ``(x, y, w, h)`` found earlier (the worker analyses a selfie once)."""
    x, y, w, h = bbox
    side = max(8, round(2.2 * max(w, h)))
    cx, cy = x + w / 2, y + h / 2 + 0.1 * h
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    square = crop_region(photo.rgb, x0, y0, x0 + side, y0 + side)
    return np.asarray(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def chibify_spec(analysis: FaceAnalysis, prompt: str = "") -> AvatarSpec:
    """The analysed spec with the user's optional prompt merged over it ("add cat ears", "pink hair")."""
    spec = analysis.spec
    if not prompt.strip():
        return spec
    from generation import prompt as prompt_module  # lazy: written by another team, may not exist yet

    parse_edit = prompt_module.parse_edit
    result = parse_edit(prompt, spec)
    return result if isinstance(result, AvatarSpec) else result.spec
