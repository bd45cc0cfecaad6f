"""Landmark indices, masks and crops for selfie analysis (pixels in, boolean masks out)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.face.models import Detection, models

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

#: Eyes as (outer corner, inner corner, a point on the upper cheek just under the eye) landmark indices.
EYES = ((33, 133, 230), (263, 362, 450))
#: Eye openings (lid contours) of the face mesh, right and left.
EYE_R = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_L = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)


def poly_mask(shape: tuple[int, int], pts: NDArray[np.float64]) -> NDArray[np.bool_]:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pts[:, :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def disc_mask(shape: tuple[int, int], centres: NDArray[np.float64], radius: float) -> NDArray[np.bool_]:
    mask = np.zeros(shape, dtype=np.uint8)
    for x, y in centres[:, :2]:
        cv2.circle(mask, (round(x), round(y)), max(1, round(radius)), 1, -1)
    return mask.astype(bool)


def box_outside(det: Detection, w: int, h: int) -> float:
    """Fraction of a detection box that lies outside the image."""
    x0, y0, x1, y1 = det.x, det.y, det.x + det.w, det.y + det.h
    ix = max(0.0, min(x1, w) - max(x0, 0.0))
    iy = max(0.0, min(y1, h) - max(y0, 0.0))
    area = max(det.w * det.h, 1e-6)
    return 1.0 - ix * iy / area


def crop_region(rgb: NDArray[np.uint8], x0: int, y0: int, x1: int, y1: int) -> NDArray[np.uint8]:
    """A crop that may reach outside the image; outside is filled by replicating the border."""
    h, w = rgb.shape[:2]
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    inner = rgb[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if any(pad):
        inner = np.asarray(cv2.copyMakeBorder(inner, *pad, cv2.BORDER_REPLICATE), dtype=np.uint8)
    return np.ascontiguousarray(inner)


def person_mask(rgb: NDArray[np.uint8], pts: NDArray[np.float64]) -> NDArray[np.float32]:
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
