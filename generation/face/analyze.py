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
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation import catalog
from generation.face.decode import DecodedPhoto, PhotoError, decode_photo
from generation.face.models import Detection, models
from generation.spec import AvatarSpec

__all__ = [
    "MIN_CONFIDENCE",
    "Attribute",
    "FaceAnalysis",
    "FaceGeometry",
    "analyze",
    "analyze_photo",
    "chibify_spec",
    "locate_face",
]

log = logging.getLogger(__name__)


#: Face width (pixels) at which colours and textures are measured; larger faces are scaled down first.
MEASURE_FACE_W = 200.0

#: Below this, an attribute is not trusted and the spec gets a neutral choice instead.
MIN_CONFIDENCE = 0.55

TIP = "Tip: face the camera in good, even light, with your whole face inside the picture."

# MediaPipe face-mesh landmark indices.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
CHEEKS = (50, 101, 118, 117, 123, 280, 330, 347, 346, 352)
CHIN = (18, 200, 199, 175, 83, 313, 201, 421)
UPPER_LIP = (164, 167, 393, 165, 391, 92, 322)
JAW = (136, 150, 149, 176, 148, 365, 379, 378, 400, 377, 172, 397)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
BROW_R_UP, BROW_R_LO = (70, 63, 105, 66, 107), (46, 53, 52, 65, 55)
BROW_L_UP, BROW_L_LO = (300, 293, 334, 296, 336), (276, 283, 282, 295, 285)
IRIS_R, IRIS_L = (468, 469, 470, 471, 472), (473, 474, 475, 476, 477)

# The hair colours a photo can have, as catalog colour ids, with the coarse name used for evaluation.
HAIR_COLOR_CLASS: dict[str, str] = {
    "black": "black",
    "dark_brown": "brown",
    "brown": "brown",
    "light_brown": "brown",
    "auburn": "red",
    "ginger": "red",
    "blonde": "blonde",
    "platinum": "blonde",
    "silver": "gray_white",
    "white": "gray_white",
}


@dataclass(frozen=True)
class Attribute:
    """One measured attribute: its value and how sure we are (0..1)."""

    value: str | bool | None
    confidence: float

    def trusted(self) -> bool:
        return self.value is not None and self.confidence >= MIN_CONFIDENCE


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
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------------
# colour helpers


def _lab(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """uint8 RGB (any shape ending in 3) -> CIE Lab with L 0..100, a/b signed."""
    flat = rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB)
    return np.asarray(lab.reshape(*rgb.shape[:-1], 3), dtype=np.float32)


def _lab8(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Like :func:`_lab` for a uint8 image, through OpenCV's 8-bit table path (about 5x faster).

    The 8-bit path quantises L* to 100/255 and a*, b* to 1 unit; every measurement is a median or a
    percentile over many pixels, so that is far below what the attribute thresholds can tell apart.
    """
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def _lab_dist2(lab: NDArray[np.float32], ref: NDArray[np.float32], l_weight: float) -> NDArray[np.float32]:
    """Squared Lab distance of every pixel to ``ref``, with L* weighted by ``l_weight``."""
    d_l = (lab[..., 0] - ref[0]) * l_weight
    d_a = lab[..., 1] - ref[1]
    d_b = lab[..., 2] - ref[2]
    return np.asarray(d_l * d_l + d_a * d_a + d_b * d_b, dtype=np.float32)


def _hex_lab(hex_value: str) -> NDArray[np.float32]:
    rgb = np.array([[int(hex_value[i : i + 2], 16) for i in (1, 3, 5)]], dtype=np.uint8)
    return _lab(rgb)[0]


def _lab_hex(lab: NDArray[np.floating[Any]]) -> str:
    px = np.asarray(lab, dtype=np.float32).reshape(1, 1, 3)
    rgb = np.clip(cv2.cvtColor(px, cv2.COLOR_LAB2RGB)[0, 0] * 255 + 0.5, 0, 255).astype(int)
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def _white_balance_gains(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Per-channel gains from gray-world and white-patch on the whole image, tempered and clipped.

    The gains are normalised to keep luminance, and callers take L* from the uncorrected pixels, so the
    correction can shift hue but never makes anyone lighter.
    """
    step = max(1, rgb.shape[1] // 256)  # subsample first: an area average over 2 MP costs ~15 ms
    sub = rgb[::step, ::step]
    small = cv2.resize(
        sub, (128, max(1, round(128 * sub.shape[0] / sub.shape[1]))), interpolation=cv2.INTER_AREA
    )
    px = small.reshape(-1, 3).astype(np.float32)
    px = px[(px.max(axis=1) < 250) & (px.min(axis=1) > 5)]  # drop clipped and black pixels
    if len(px) < 100:
        return np.ones(3, dtype=np.float32)
    mean = px.mean(axis=0)
    gray_world = mean.mean() / np.maximum(mean, 1.0)
    bright = np.percentile(px, 99, axis=0)
    white_patch = bright.max() / np.maximum(bright, 1.0)
    gains = np.sqrt(gray_world * white_patch) ** 0.5  # geometric mean, half strength
    gains = np.clip(gains, 0.85, 1.18)
    luma = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return (gains / float((gains * luma).sum())).astype(np.float32)


def _robust_lab(lab: NDArray[np.float32], lo: float = 15, hi: float = 85) -> NDArray[np.float32] | None:
    """Median Lab of the pixels whose L* lies between two percentiles (drops shadows and shine)."""
    if len(lab) < 12:
        return None
    # Trim by rank, not by value: with quantised L* many pixels tie at a percentile's value.
    order = np.argsort(lab[:, 0], kind="stable")
    keep = lab[order[int(len(lab) * lo / 100) : math.ceil(len(lab) * hi / 100)]]
    if len(keep) < 6:
        keep = lab
    return np.median(keep, axis=0).astype(np.float32)


# --------------------------------------------------------------------------------------------------------
# geometry helpers


def _poly_mask(shape: tuple[int, int], pts: NDArray[np.float64]) -> NDArray[np.bool_]:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pts[:, :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def _disc_mask(shape: tuple[int, int], centres: NDArray[np.float64], radius: float) -> NDArray[np.bool_]:
    mask = np.zeros(shape, dtype=np.uint8)
    for x, y in centres[:, :2]:
        cv2.circle(mask, (round(x), round(y)), max(1, round(radius)), 1, -1)
    return mask.astype(bool)


def _box_outside(det: Detection, w: int, h: int) -> float:
    """Fraction of a detection box that lies outside the image."""
    x0, y0, x1, y1 = det.x, det.y, det.x + det.w, det.y + det.h
    ix = max(0.0, min(x1, w) - max(x0, 0.0))
    iy = max(0.0, min(y1, h) - max(y0, 0.0))
    area = max(det.w * det.h, 1e-6)
    return 1.0 - ix * iy / area


def _crop(rgb: NDArray[np.uint8], x0: int, y0: int, x1: int, y1: int) -> NDArray[np.uint8]:
    """A crop that may reach outside the image; outside is filled by replicating the border."""
    h, w = rgb.shape[:2]
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    inner = rgb[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if any(pad):
        inner = np.asarray(cv2.copyMakeBorder(inner, *pad, cv2.BORDER_REPLICATE), dtype=np.uint8)
    return np.ascontiguousarray(inner)


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
            return d.w * d.h * d.score * centre * (1.0 - _box_outside(d, w, h))

        chosen = max(range(len(faces)), key=lambda i: prominence(faces[i]))
    if _box_outside(faces[chosen], w, h) > 0.12:
        raise PhotoError(
            "partial_face", f"Only part of the face is inside that photo, so I can't see who it is. {TIP}"
        )
    return faces, chosen


def _mesh(rgb: NDArray[np.uint8], det: Detection) -> NDArray[np.float64]:
    """Face mesh on a square crop around the detection, mapped back to image pixels."""
    side = 2.2 * max(det.w, det.h)
    cx, cy = det.cx, det.y + det.h * 0.45
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    crop = _crop(rgb, x0, y0, x0 + round(side), y0 + round(side))
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


def _person_mask(rgb: NDArray[np.uint8], pts: NDArray[np.float64]) -> NDArray[np.float32]:
    """Person probability for the whole working image, computed on a head-and-shoulders crop."""
    h, w = rgb.shape[:2]
    fx0, fx1 = pts[:, 0].min(), pts[:, 0].max()
    fy0, fy1 = pts[:, 1].min(), pts[:, 1].max()
    fw, fh = fx1 - fx0, fy1 - fy0
    x0, x1 = max(0, round(fx0 - 1.6 * fw)), min(w, round(fx1 + 1.6 * fw))
    y0, y1 = max(0, round(fy0 - 1.0 * fh)), min(h, round(fy1 + 2.2 * fh))
    full = np.zeros((h, w), dtype=np.float32)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return full
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    small_side = 384
    sc = min(1.0, small_side / max(crop.shape[:2]))
    small = cv2.resize(crop, (max(8, round(crop.shape[1] * sc)), max(8, round(crop.shape[0] * sc))))
    mask = models().person_mask(np.ascontiguousarray(small, dtype=np.uint8))
    full[y0:y1, x0:x1] = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return full


def _measure(rgb: NDArray[np.uint8], pts: NDArray[np.float64], person: NDArray[np.float32]) -> dict[str, Any]:
    h, w = rgb.shape[:2]
    m: dict[str, Any] = {}
    face_w = float(np.linalg.norm(pts[454, :2] - pts[234, :2]))
    face_h = float(np.linalg.norm(pts[152, :2] - pts[10, :2]))
    m["face_w"], m["face_h"] = face_w, face_h
    # Work on a region around the head only: cheap, and whole-image colour work is not needed.
    x0 = max(0, int(pts[:, 0].min() - 1.2 * face_w))
    x1 = min(w, int(pts[:, 0].max() + 1.2 * face_w))
    y0 = max(0, int(pts[:, 1].min() - 0.9 * face_h))
    y1 = min(h, int(pts[:, 1].max() + 1.6 * face_h))
    region = rgb[y0:y1, x0:x1]
    p = pts[:, :2] - np.array([x0, y0], dtype=np.float64)
    person_region = person[y0:y1, x0:x1]
    # Measure at a fixed face size: bounded time and memory whatever the photo's resolution.
    k = min(1.0, MEASURE_FACE_W / max(face_w, 1.0))
    if k < 1.0:
        size = (max(8, round(region.shape[1] * k)), max(8, round(region.shape[0] * k)))
        region = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        person_region = np.asarray(cv2.resize(person_region, size, interpolation=cv2.INTER_AREA), np.float32)
        p = p * np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])
        face_w = float(np.linalg.norm(p[454] - p[234]))
        face_h = float(np.linalg.norm(p[152] - p[10]))
    shape = region.shape[:2]
    gains = _white_balance_gains(rgb)
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains[None, :], 0, 255)
    corrected = cv2.LUT(region, lut.reshape(256, 1, 3).astype(np.uint8))
    lab_raw = _lab8(region)
    lab = _lab8(np.asarray(corrected, dtype=np.uint8))
    np.minimum(lab[..., 0], lab_raw[..., 0], out=lab[..., 0])  # never lighter than the photo itself
    gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    pmask = person_region > 0.5

    # --- skin: upper cheeks (under the eyes, beside the nose: rarely covered by hair, beard or glasses)
    cheek = _disc_mask(shape, p[list(CHEEKS)], 0.045 * face_w)
    skin = _robust_lab(lab[cheek])
    if skin is None:
        raise PhotoError("no_face", f"The face is too small or too dark to see clearly. {TIP}")
    m["skin_lab"] = skin
    m["cheek_px"] = int(cheek.sum())

    # --- face oval and the hair around it
    oval = _poly_mask(shape, p[list(FACE_OVAL)])
    grow = max(1, round(0.04 * face_w))
    oval_grown = cv2.dilate(oval.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(
        bool
    )
    not_skin = _lab_dist2(lab, skin, 0.6) > 14.0**2
    top_y = float(p[10, 1])
    eye_y = float((p[159, 1] + p[386, 1]) / 2)
    left_x, right_x = float(p[234, 0]), float(p[454, 0])
    yy, xx = np.ogrid[0 : shape[0], 0 : shape[1]]
    head_zone = (yy < eye_y) & (xx > left_x - 0.5 * face_w) & (xx < right_x + 0.5 * face_w)
    hair_cand = pmask & ~oval_grown & head_zone & not_skin
    above = pmask & ~oval_grown & (yy < top_y) & (xx > left_x) & (xx < right_x)
    m["above_px"] = int(above.sum())
    m["hair_above_frac"] = float((above & not_skin).sum() / max(1, above.sum()))
    # Height of the hair above the hairline point, relative to face height (volume).
    cols = (hair_cand & (xx > left_x + 0.2 * face_w) & (xx < right_x - 0.2 * face_w)).any(axis=1)
    hair_rows = np.nonzero(cols)[0]
    m["hair_height"] = float((top_y - hair_rows.min()) / face_h) if len(hair_rows) else 0.0
    # Colour from the darker part of the region and away from the mask's edge (background bleeds in there).
    core = cv2.erode(pmask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    hair_core = hair_cand & core if (hair_cand & core).sum() > 30 else hair_cand
    hair_lab = _robust_lab(lab[hair_core], 20, 80)
    m["hair_px"] = int(hair_cand.sum())
    m["hair_lab"] = hair_lab
    # Width of the hair at forehead level relative to face width (curly/afro hair stands out).
    band = (yy > top_y) & (yy < eye_y) & pmask & not_skin & ~oval_grown
    band_cols = np.nonzero(band.any(axis=0))[0]
    m["hair_width"] = float((band_cols.max() - band_cols.min()) / face_w) if len(band_cols) else 0.0

    # --- hair texture: orientation coherence of the structure tensor inside the hair region
    if hair_lab is not None and hair_cand.sum() > 50:
        sigma = max(0.8, face_w / 120.0)
        win = max(1.5, face_w / 40.0)
        # Only the hair's bounding box (with room for both blurs) is filtered.
        rows, cols_ = np.nonzero(hair_cand)
        margin = int(3 * (sigma + win)) + 2
        ty0, ty1 = max(0, rows.min() - margin), min(shape[0], rows.max() + margin + 1)
        tx0, tx1 = max(0, cols_.min() - margin), min(shape[1], cols_.max() + margin + 1)
        g = cv2.GaussianBlur(gray[ty0:ty1, tx0:tx1], (0, 0), sigma)
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
        jxx = cv2.GaussianBlur(gx * gx, (0, 0), win)
        jyy = cv2.GaussianBlur(gy * gy, (0, 0), win)
        jxy = cv2.GaussianBlur(gx * gy, (0, 0), win)
        root = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
        coherence = root / (jxx + jyy + 1e-3)
        hair_box = hair_cand[ty0:ty1, tx0:tx1]
        inner = cv2.erode(hair_box.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        sel = inner if inner.sum() > 30 else hair_box
        m["hair_coherence"] = float(np.median(coherence[sel]))
        # Hair length: how far hair-coloured person pixels reach down beside the face.
        hairlike = pmask & (_lab_dist2(lab, hair_lab, 0.5) < 16.0**2) & not_skin
        m["hair_bottom"] = _hair_bottom(hairlike, p, face_w, face_h, eye_y)
    else:
        m["hair_coherence"] = None
        m["hair_bottom"] = None

    # --- facial hair: chin, upper lip and jaw against cheek skin
    r = 0.05 * face_w
    lips = _poly_mask(shape, p[list(LIPS_OUTER)])
    for name, idx in (("chin", CHIN), ("lip", UPPER_LIP), ("jaw", JAW)):
        sel = _disc_mask(shape, p[list(idx)], r) & ~lips
        vals = lab[sel]
        med = np.median(vals, axis=0) if len(vals) else skin
        m[f"{name}_dl"] = float(skin[0] - med[0])
        m[f"{name}_dc"] = float(math.hypot(skin[1], skin[2]) - math.hypot(med[1], med[2]))

    # --- glasses: a ring of edges around each eye (frames), dark lenses over the eyes (sunglasses)
    m.update(_glasses_measures(gray, lab_raw, p, face_w, float(skin[0])))

    # --- eyes: iris colour, where the iris is big enough to see
    iris_px = []
    iris_r = 0.0
    for ring in (IRIS_R, IRIS_L):
        c = p[ring[0]]
        rad = float(np.mean(np.linalg.norm(p[list(ring[1:])] - c, axis=1)))
        iris_r += rad / 2
        ix0, iy0 = max(0, int(c[0] - rad) - 1), max(0, int(c[1] - rad) - 1)
        ix1, iy1 = min(shape[1], int(c[0] + rad) + 2), min(shape[0], int(c[1] + rad) + 2)
        dist = np.sqrt((xx[:, ix0:ix1] - c[0]) ** 2 + (yy[iy0:iy1] - c[1]) ** 2)
        ring_sel = (dist > 0.35 * rad) & (dist < 0.85 * rad)
        iris_px.append(lab_raw[iy0:iy1, ix0:ix1][ring_sel])
    m["iris_r"] = iris_r
    all_iris = np.concatenate(iris_px) if iris_px else np.zeros((0, 3), np.float32)
    m["iris_lab"] = _robust_lab(all_iris, 20, 70) if len(all_iris) >= 12 else None
    m["eye_open"] = float(
        (np.linalg.norm(p[159] - p[145]) + np.linalg.norm(p[386] - p[374]))
        / (np.linalg.norm(p[33] - p[133]) + np.linalg.norm(p[362] - p[263]))
    )

    # --- brows: thickness and arch relative to face height, darkness against the skin
    thick = []
    arch = []
    brow_l = []
    for up, lo in ((BROW_R_UP, BROW_R_LO), (BROW_L_UP, BROW_L_LO)):
        thick.append(float(np.mean(np.linalg.norm(p[list(up)] - p[list(lo)], axis=1))) / face_h)
        line = p[list(up)]
        ends = (line[0, 1] + line[-1, 1]) / 2
        arch.append(float(ends - line[1:4, 1].min()) / face_h)
        poly = np.concatenate([p[list(up)], p[list(lo)][::-1]])
        sel = _poly_mask(shape, poly)
        if sel.sum() > 3:
            brow_l.append(float(np.percentile(lab[sel][:, 0], 30)))
    m["brow_thick"] = float(np.mean(thick))
    m["brow_arch"] = float(np.mean(arch))
    m["brow_contrast"] = float(skin[0] - np.mean(brow_l)) if brow_l else 0.0

    # --- mouth and face shape (3-D landmarks: less sensitive to head turn)
    P = pts  # scale-free ratios: full-resolution 3-D landmarks
    mouth_w = float(np.linalg.norm(P[61] - P[291]))
    eye_dist = float(np.linalg.norm(P[33] - P[263]))
    lip_mid_y = float((P[13, 1] + P[14, 1]) / 2)
    corners_y = float((P[61, 1] + P[291, 1]) / 2)
    m["mouth_w"] = mouth_w / eye_dist
    m["corner_lift"] = (lip_mid_y - corners_y) / face_h
    m["mouth_open"] = float(np.linalg.norm(P[13] - P[14])) / face_h
    m["teeth"] = _teeth(region, p)
    m["aspect"] = face_h / face_w
    m["jaw_ratio"] = float(np.linalg.norm(P[172] - P[397]) / face_w)
    m["forehead_ratio"] = float(np.linalg.norm(P[54] - P[284]) / face_w)
    m["chin_ratio"] = float(np.linalg.norm(P[148] - P[377]) / face_w)
    return m


#: Eyes as (outer corner, inner corner, a point on the upper cheek just under the eye) landmark indices.
EYES = ((33, 133, 230), (263, 362, 450))
#: Polar samples per eye for the frame ring (5 degrees apart).
RING_ANGLES = 72
#: Where frame edges are looked for, in half eye widths from the eye's centre: from RING_INNER_H beside the eye
#: and RING_INNER_V above and below it, out to RING_OUTER (a lens is about 1.7 half eye widths across and
#: 1.2 high; a rectangular lens's corners, with the eye off the lens's centre, reach about 2.4).
RING_INNER_H, RING_INNER_V, RING_OUTER = 1.15, 0.85, 2.6


def _luminance(lightness: float) -> float:
    """CIE relative luminance Y (0..1) of an L* value."""
    return ((lightness + 16.0) / 116.0) ** 3 if lightness > 8.0 else lightness / 903.3


def _glasses_measures(
    gray: NDArray[np.float32],
    lab: NDArray[np.float32],
    p: NDArray[np.float64],
    face_w: float,
    skin_l: float,
) -> dict[str, float]:
    """Frame ring and dark-lens measurements around both eyes (see docs/selfie.md, "Glasses").

    Frames: the eye's surroundings are unrolled into a polar image centred between the eye corners; along
    each of :data:`RING_ANGLES` directions we look for the strongest radial edge between :data:`RING_INNER_H`
    (:data:`RING_INNER_V` above and below) and :data:`RING_OUTER` half eye widths out. A frame gives such an edge in almost every direction, at radii that change smoothly
    from one direction to the next (a closed ring); a bare face gives edges only at the brow and in a few
    shadows. ``ring`` is the fraction of directions (both eyes averaged) with an edge that agrees with a
    neighbour; ``ring_lower`` the same for the lower half, where a bare face is smooth cheek.
    Shape: the ring's points, scaled to their bounding box, lie on the unit circle for an elliptic lens and
    out towards the box's corners for a rectangular one; ``rectangularity`` is the median squared radius of
    the points away from the axes (1.0 for an ellipse, up to 2.0 for a sharp-cornered box).
    Sunglasses: the lens covers the eye and the skin just under it; ``lens_ratio`` is the luminance of the
    brighter of the two, against the cheek skin (below ~0.3: both are far darker than the skin).
    """
    h, w = gray.shape
    rings, lowers, rects, lens = [], [], [], []
    angles = np.arange(RING_ANGLES) * (2 * np.pi / RING_ANGLES)
    lower = np.sin(angles) > 0.25  # image y points down
    for outer, inner, under in EYES:
        c = (p[outer] + p[inner]) / 2
        half = max(2.0, float(np.linalg.norm(p[outer] - p[inner])) / 2)
        r1 = RING_OUTER * half
        rad = math.ceil(r1) + 3
        polar = cv2.warpPolar(
            gray,
            (rad, RING_ANGLES),
            (float(c[0]), float(c[1])),
            rad,
            cv2.WARP_POLAR_LINEAR | cv2.INTER_LINEAR,
        )
        polar = cv2.GaussianBlur(polar, (3, 5), 0)  # a little along the ring, less across it
        grad = np.abs(np.diff(polar, axis=1))
        lo, hi = int(RING_INNER_V * half), min(grad.shape[1], math.ceil(r1))
        annulus = grad[:, lo:hi]
        base = float(np.median(annulus)) + 2.0
        # The inner limit follows the eye: 1.15 half widths beside it (past the corners), 0.85 above and
        # below it (past the lids), so a frame's top and bottom rims close to the eye are still seen.
        r0 = half * (RING_INNER_H * np.cos(angles) ** 2 + RING_INNER_V * np.sin(angles) ** 2)
        inside = np.arange(lo, hi)[None, :] >= r0[:, None]
        strong = (annulus >= 4.0 * base) & inside
        has = strong.any(axis=1)
        r_star = np.where(has, lo + np.argmax(np.where(inside, annulus, 0.0), axis=1), np.nan)
        near = np.abs(r_star - np.roll(r_star, 1)) <= 0.12 * r_star
        near |= np.abs(r_star - np.roll(r_star, -1)) <= 0.12 * r_star
        ok = has & near
        rings.append(float(ok.mean()))
        lowers.append(float(ok[lower].mean()))
        if ok.sum() >= RING_ANGLES // 2:
            xs = c[0] + r_star[ok] * np.cos(angles[ok])
            ys = c[1] + r_star[ok] * np.sin(angles[ok])
            # Normalise the ring to its bounding box (u, v in -1..1); points away from the axes lie on
            # u^2 + v^2 = 1 for an ellipse and reach out to u^2 + v^2 = 2 in a rectangle's corners.
            u = (xs - (xs.max() + xs.min()) / 2) / max(1.0, (xs.max() - xs.min()) / 2)
            v = (ys - (ys.max() + ys.min()) / 2) / max(1.0, (ys.max() - ys.min()) / 2)
            diagonal = np.minimum(np.abs(u), np.abs(v)) > 0.45
            if diagonal.sum() >= 4:
                rects.append(float(np.median(u[diagonal] ** 2 + v[diagonal] ** 2)))
        # dark lenses: the eye and the skin under it, against the cheek
        eye_sel = _disc_mask((h, w), c[None], 0.8 * half)
        under_sel = _disc_mask((h, w), p[under][None], 0.35 * half)
        eye_l = float(np.median(lab[eye_sel][:, 0])) if eye_sel.any() else skin_l
        under_l = float(np.median(lab[under_sel][:, 0])) if under_sel.any() else skin_l
        lens.append(_luminance(max(eye_l, under_l)) / max(_luminance(skin_l), 1e-3))
    return {
        "ring": float(np.mean(rings)),
        "ring_lower": float(np.mean(lowers)),
        "rectangularity": float(np.mean(rects)) if len(rects) == 2 else float("nan"),
        "lens_ratio": float(max(lens)),
    }


def _teeth(region: NDArray[np.uint8], p: NDArray[np.float64]) -> float:
    """Fraction of bright, low-saturation pixels inside the inner lips (visible teeth)."""
    inner = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
    sel = _poly_mask(region.shape[:2], p[list(inner)])
    if sel.sum() < 6:
        return 0.0
    hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)[sel]
    return float(((hsv[:, 2] > 140) & (hsv[:, 1] < 90)).mean())


def _hair_bottom(
    hairlike: NDArray[np.bool_], p: NDArray[np.float64], face_w: float, face_h: float, eye_y: float
) -> float:
    """How far down (in face heights below the eyes) hair runs without a break, in bands beside the face.

    A row of a band counts as hair when at least :data:`HAIR_ROW_MIN_W` face widths of it are hair-coloured
    person pixels (an absolute width: hair tied back or tucked behind the ears is a narrow strip, which a
    fraction of the band would miss). The ear interrupts hair that runs behind it, so rows at the ear's height
    (from the eyes to just below the nose) do not break a run that was already seen beside the temple: hair
    that is visible above the ear and again below it is one run.
    """
    h, w = hairlike.shape
    best = 0.0
    left_x, right_x = p[234, 0], p[454, 0]
    ear_top, ear_bottom = eye_y - 0.05 * face_h, float(p[2, 1]) + 0.05 * face_h
    min_px = max(2.0, HAIR_ROW_MIN_W * face_w)
    gap_limit = max(2, int(0.12 * face_h))
    for xa, xb in (
        (left_x - 0.45 * face_w, left_x + 0.02 * face_w),
        (right_x - 0.02 * face_w, right_x + 0.45 * face_w),
    ):
        a, b = max(0, int(xa)), min(w, int(xb))
        if b - a < 2:
            continue
        width = hairlike[:, a:b].sum(axis=1)
        y = int(max(0, eye_y - 0.1 * face_h))
        gap = 0
        last = y
        seen = False  # a hair row at or above the top of the ear
        while y < h:
            if width[y] >= min_px:
                last, gap = y, 0
                seen = seen or y <= ear_top
            elif not (seen and ear_top < y < ear_bottom):
                gap += 1
                if gap > gap_limit:
                    break
            y += 1
        best = max(best, (last - eye_y) / face_h)
    return float(best)


#: Width of hair (in face widths) that makes a row beside the face count as hair for the length measurement.
HAIR_ROW_MIN_W = 0.05


# --------------------------------------------------------------------------------------------------------
# measurements -> attributes


def _skin_attribute(skin: NDArray[np.float32]) -> Attribute:
    """A step of the catalog's 10-step scale from cheek skin (see docs/selfie.md, "Skin tone").

    Two cues, and the darker one wins, so that neither can pull anyone lighter than the other measured:
    lightness (L*, compared with the catalog's mid-tones after one fixed offset for everyone, since photo skin
    carries shading) and, for strongly saturated yellow-orange skin, the hue angle, which exposure does not
    change: a bright, flash-lit portrait of a brown-skinned person stays brown.
    """
    tones = catalog.SKIN_TONES
    scale_l = np.array([_hex_lab(str(t.hex))[0] for t in tones])  # descending
    target_l = float(skin[0]) + SKIN_L_OFFSET
    idx_l = float(np.interp(-target_l, -scale_l, np.arange(len(tones))))
    hue = math.degrees(math.atan2(float(skin[2]), float(skin[1])))
    chroma = math.hypot(float(skin[1]), float(skin[2]))
    idx_h = 0.0
    if chroma >= 24.0 and hue >= 55.0:
        idx_h = min(7.0, 5.0 + (hue - 55.0) / 2.5)  # tan at 55 degrees .. brown from 60 degrees
    idx = max(idx_l, idx_h)
    best = round(idx)
    conf = 0.9 - 0.5 * abs(idx - best)  # near the middle of a step: sure; near a boundary: less
    return Attribute(tones[best].id, conf)


#: Fixed lightness offset between cheek skin measured in a photo and the catalog's illustration mid-tones.
SKIN_L_OFFSET = 8.0


def _hair_color(lab: NDArray[np.float32] | None, skin: NDArray[np.float32]) -> Attribute:
    if lab is None:
        return Attribute(None, 0.0)
    lightness, a, b = (float(v) for v in lab)
    chroma = math.hypot(a, b)
    if a >= 9 and a >= 0.55 * b and chroma >= 15:
        value, conf = ("ginger" if lightness > 48 else "auburn"), 0.75
    elif chroma < 9 and lightness > 52:
        value, conf = ("white" if lightness > 80 else "silver"), 0.8
    elif lightness < 24 or (chroma < 7 and lightness < 50):  # dark and neutral: black (greying in light)
        value, conf = "black", 0.85
    elif lightness > 62 and b > 18:
        value, conf = ("platinum" if chroma < 22 else "blonde"), 0.75
    elif lightness < 32:
        value, conf = "dark_brown" if chroma > 10 else "black", 0.7
    elif lightness < 45:
        value, conf = "brown", 0.65
    else:
        value, conf = "light_brown", 0.6
    return Attribute(value, conf)


def _glasses_attributes(m: Mapping[str, float]) -> dict[str, Attribute]:
    """``glasses`` (worn or not) and ``glasses_kind`` (round, square, sunglasses) from :func:`_glasses_measures`.

    Conservative: a false pair of glasses is worse than a missed one (the user can add them), so anything
    short of a clear ring or clearly dark lenses is "no glasses". A clear ring whose shape is unsure gets
    round glasses (the softer, more common look) with the shape's low confidence.
    """
    lens, ring, lower, rect = m["lens_ratio"], m["ring"], m["ring_lower"], m["rectangularity"]
    if lens < SUNGLASSES_LENS_RATIO:
        conf = min(0.9, 0.6 + (SUNGLASSES_LENS_RATIO - lens) * 1.5)
        return {"glasses": Attribute(True, conf), "glasses_kind": Attribute("sunglasses", conf)}
    frame = min(ring, lower + 0.1)
    if frame < GLASSES_RING:
        no = min(0.9, 0.55 + (GLASSES_RING - frame) * 1.5)
        return {"glasses": Attribute(False, no), "glasses_kind": Attribute("none", no)}
    present = min(0.9, 0.5 + (frame - GLASSES_RING) * 2.0)  # just over the line: not trusted
    if math.isnan(rect):
        return {"glasses": Attribute(True, present), "glasses_kind": Attribute("round", 0.5)}
    kind = "square" if rect >= SQUARE_FILL else "round"
    shape_conf = min(present, 0.45 + abs(rect - SQUARE_FILL) * 2.5)  # trusted 0.04 away from the line
    return {"glasses": Attribute(True, present), "glasses_kind": Attribute(kind, shape_conf)}


#: Glasses thresholds (docs/selfie.md): the fraction of ring directions with a frame edge, the lens luminance
#: against the cheek below which lenses are dark, and the rectangularity between an ellipse (1.0) and a box (2.0).
GLASSES_RING = 0.6
SUNGLASSES_LENS_RATIO = 0.3
SQUARE_FILL = 1.2


def _attributes(m: dict[str, Any]) -> dict[str, Attribute]:
    out: dict[str, Attribute] = {}
    skin = m["skin_lab"]
    out["skin_tone"] = _skin_attribute(skin)
    out["hair_color"] = _hair_color(m["hair_lab"], skin)

    # hair amount and length
    hair_above = m["hair_above_frac"]
    bottom = m["hair_bottom"]
    if hair_above < 0.25 and m["hair_height"] < 0.05:
        length = Attribute("bald", 0.6 + 0.3 * (0.25 - hair_above) / 0.25)
    elif bottom is None:
        length = Attribute(None, 0.0)
    elif bottom > 1.3:
        length = Attribute("long", min(0.9, 0.6 + (bottom - 1.3)))
    elif bottom > 0.55 or m["hair_width"] > 1.45:
        length = Attribute("medium", 0.65)
    else:
        length = Attribute("short", min(0.9, 0.6 + (0.55 - bottom)))
    if length.value == "short" and m["hair_height"] < 0.08 and hair_above < 0.6:
        length = Attribute("buzz", 0.6)
    out["hair_length"] = length

    # hair type: curls break up the orientation field (low coherence) and add volume (width)
    coh = m["hair_coherence"]
    if coh is None:
        hair_type = Attribute(None, 0.0)
    elif length.value in ("bald", "buzz"):
        hair_type = Attribute("straight", 0.5)
    else:
        limit = 0.42 if length.value == "short" else 0.62  # short hair reads rough even when straight
        curly_score = (limit - coh) * 8 + max(0.0, m["hair_width"] - 1.5) * 1.5
        if m["hair_width"] > 2.1 and curly_score > 0.5:
            hair_type = Attribute("afro", min(0.9, 0.55 + curly_score / 4))
        elif curly_score > 0.25:
            hair_type = Attribute("curly", min(0.9, 0.55 + curly_score / 3))
        elif curly_score > 0.0:
            hair_type = Attribute("wavy", 0.5)
        else:
            hair_type = Attribute("straight", min(0.9, 0.6 - curly_score / 2))
    out["hair_type"] = hair_type
    out["curly"] = Attribute(hair_type.value in ("curly", "afro"), hair_type.confidence)

    # facial hair: the upper lip (moustache zone) and chin against cheek skin in the same face
    lip = m["lip_dl"] + 0.5 * m["lip_dc"]
    chin = m["chin_dl"] + 0.5 * m["chin_dc"]
    if lip > 17 and chin > 8:
        facial = Attribute("beard", min(0.95, 0.6 + (lip - 17) / 20))
    elif lip > 17:
        facial = Attribute("moustache", 0.6)
    elif lip > 15.5:
        facial = Attribute("stubble", 0.5)
    else:
        facial = Attribute("none", min(0.95, 0.6 + (15.5 - lip) / 15))
    out["facial_hair"] = facial

    out.update(_glasses_attributes(m))

    # eyes
    iris = m["iris_lab"]
    iris_conf = min(0.9, max(0.0, (m["iris_r"] - 3.0) / 6.0)) * min(1.0, m["eye_open"] / 0.22)
    if iris is None or iris_conf <= 0:
        out["eye_color"] = Attribute(None, 0.0)
    else:
        lightness, a, b = (float(v) for v in iris)
        if lightness < 32 or (a > 4 and b > 8):
            eye = "brown"
        elif b < -2:
            eye = "blue"
        elif a < -2:
            eye = "green"
        else:
            eye = "hazel"
        out["eye_color"] = Attribute(eye, iris_conf)

    # expression
    smile = m["corner_lift"] * 40 + (m["mouth_w"] - 0.78) * 6 + m["teeth"] * 1.5
    if smile > 0.45:
        expr = Attribute(
            "grin" if m["mouth_open"] > 0.04 and m["teeth"] > 0.25 else "smile", min(0.9, 0.55 + smile / 3)
        )
    elif m["mouth_open"] > 0.07:
        expr = Attribute("surprised", 0.6)
    else:
        expr = Attribute("neutral", min(0.9, 0.55 + (0.45 - smile) / 2))
    out["expression"] = expr
    out["smiling"] = Attribute(expr.value in ("smile", "grin", "laugh"), expr.confidence)
    out["mouth_open"] = Attribute(m["mouth_open"] > 0.05, 0.7)

    # face shape
    aspect, jaw_r, fore_r, chin_r = m["aspect"], m["jaw_ratio"], m["forehead_ratio"], m["chin_ratio"]
    if aspect > 1.5:
        shape = Attribute("long", 0.6)
    elif jaw_r > 0.84 and chin_r > 0.4:
        shape = Attribute("square", 0.55)
    elif jaw_r < 0.74 and fore_r > 0.78:
        shape = Attribute("heart", 0.55)
    elif aspect < 1.22:
        shape = Attribute("round", 0.6)
    else:
        shape = Attribute("oval", 0.6)
    out["face_shape"] = shape

    # brows
    if m["brow_thick"] > 0.055 and m["brow_contrast"] > 18:
        brows = Attribute("thick", 0.6)
    elif m["brow_thick"] < 0.035 or m["brow_contrast"] < 8:
        brows = Attribute("thin", 0.55)
    elif m["brow_arch"] < 0.012:
        brows = Attribute("straight", 0.55)
    else:
        brows = Attribute("soft", 0.6)
    out["brows"] = brows
    return out


# --------------------------------------------------------------------------------------------------------
# attributes -> spec

EYE_HEX = {"brown": "#5a3a2a", "blue": "#3b6fd1", "green": "#3a9a6a", "hazel": "#8a6a3a"}
NEUTRAL_EYE = "#5a3a2a"
GLASSES_ITEM = {"round": "round_glasses", "square": "square_glasses", "sunglasses": "sunglasses"}


def _hair_style(length: Attribute, hair_type: Attribute) -> str | None:
    """Catalog hair style for a measured length and type (None: leave it to the seed)."""
    if not length.trusted():
        return None
    kind = hair_type.value if hair_type.trusted() else "straight"
    table: dict[str, str | dict[str, str]] = {
        "bald": "bald",
        "buzz": "buzz",
        "short": {"straight": "short", "wavy": "messy", "curly": "curly", "afro": "afro"},
        "medium": {"straight": "bob", "wavy": "messy", "curly": "curly", "afro": "afro"},
        "long": {"straight": "long_straight", "wavy": "long_wavy", "curly": "long_wavy", "afro": "afro"},
    }
    entry = table[str(length.value)]
    return entry if isinstance(entry, str) else entry.get(str(kind), None)


def _spec(attrs: Mapping[str, Attribute], seed: int) -> AvatarSpec:
    def val(name: str) -> Any:
        a = attrs[name]
        return a.value if a.trusted() else None

    hair_color = val("hair_color")
    style = _hair_style(attrs["hair_length"], attrs["hair_type"])
    hair: dict[str, Any] = {"style": style}
    if hair_color:
        hair["color"] = catalog.get("color", hair_color).hex
    if style in ("bald", "buzz"):
        hair["front"] = "open"
    elif attrs["hair_length"].value in ("short", "medium") and style not in ("bob",):
        hair["front"] = "swept"
    items: tuple[str, ...] = ()
    if val("glasses"):
        kind = attrs["glasses_kind"]
        items = (GLASSES_ITEM[str(kind.value)] if kind.trusted() else "round_glasses",)
    eye = val("eye_color")
    # An analysed face always gets a clean-shaven default and a calm expression rather than a random one.
    return AvatarSpec.model_validate(
        dict(
            seed=seed,
            skin_tone=val("skin_tone"),
            face_shape=val("face_shape") or "oval",
            brows=val("brows") or "soft",
            expression=val("expression") or "smile",
            facial_hair=val("facial_hair") or "none",
            eyes={"color": EYE_HEX.get(str(eye), NEUTRAL_EYE)},
            hair=hair,
            items=items,
            nose="dot",
        )
    )


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
    person = _person_mask(rgb, pts)
    measures = _measure(rgb, pts, person)
    log.debug("face measures: %s", {k: v for k, v in measures.items() if not isinstance(v, np.ndarray)})
    attrs = _attributes(measures)
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
    spec = _spec(attrs, seed)
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
    x, y, w, h = analysis.bbox
    side = max(8, round(2.2 * max(w, h)))
    cx, cy = x + w / 2, y + h / 2 + 0.1 * h
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    square = _crop(photo.rgb, x0, y0, x0 + side, y0 + side)
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
