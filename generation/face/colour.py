"""Colour maths for selfie analysis: CIE Lab conversions, robust medians and white-balance gains."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "apply_gains",
    "exposure_gains",
    "grey_world_gains",
    "hex_lab",
    "lab",
    "lab8",
    "lab_dist2",
    "lab_hex",
    "luminance",
    "robust_lab",
    "white_balance_gains",
]


def lab(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """uint8 RGB (any shape ending in 3) -> CIE Lab with L 0..100, a/b signed."""
    flat = rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB)
    return np.asarray(lab.reshape(*rgb.shape[:-1], 3), dtype=np.float32)


def lab8(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Like :func:`lab` for a uint8 image, through OpenCV's 8-bit table path (about 5x faster).

    The 8-bit path quantises L* to 100/255 and a*, b* to 1 unit; every measurement is a median or a
    percentile over many pixels, so that is far below what the attribute thresholds can tell apart.
    """
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def lab_dist2(lab: NDArray[np.float32], ref: NDArray[np.float32], l_weight: float) -> NDArray[np.float32]:
    """Squared Lab distance of every pixel to ``ref``, with L* weighted by ``l_weight``."""
    d_l = (lab[..., 0] - ref[0]) * l_weight
    d_a = lab[..., 1] - ref[1]
    d_b = lab[..., 2] - ref[2]
    return np.asarray(d_l * d_l + d_a * d_a + d_b * d_b, dtype=np.float32)


def hex_lab(hex_value: str) -> NDArray[np.float32]:
    rgb = np.array([[int(hex_value[i : i + 2], 16) for i in (1, 3, 5)]], dtype=np.uint8)
    return lab(rgb)[0]


def lab_hex(lab: NDArray[np.floating[Any]]) -> str:
    px = np.asarray(lab, dtype=np.float32).reshape(1, 1, 3)
    rgb = np.clip(cv2.cvtColor(px, cv2.COLOR_LAB2RGB)[0, 0] * 255 + 0.5, 0, 255).astype(int)
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def white_balance_gains(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
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


def grey_world_gains(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Full-strength grey-world gains (luminance kept): a colour cast over the whole photo cancels exactly.

    Too strong for the colours themselves (a photo full of one colour goes the opposite way), so only the skin's
    hue *relative to the photo* is read with it (see :func:`~generation.face.mapping.skin_attribute`).
    """
    step = max(1, max(rgb.shape[:2]) // 384)
    px = rgb[::step, ::step].reshape(-1, 3).astype(np.float32)
    px = px[(px.max(axis=1) < 250) & (px.min(axis=1) > 5)]
    if len(px) < 100:
        return np.ones(3, dtype=np.float32)
    mean = px.mean(axis=0)
    gains = np.clip(mean.mean() / np.maximum(mean, 1.0), 0.5, 2.0)
    luma = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return (gains / float((gains * luma).sum())).astype(np.float32)


def robust_lab(lab: NDArray[np.float32], lo: float = 15, hi: float = 85) -> NDArray[np.float32] | None:
    """Median Lab of the pixels whose L* lies between two percentiles (drops shadows and shine)."""
    if len(lab) < 12:
        return None
    # Trim by rank, not by value: with quantised L* many pixels tie at a percentile's value.
    order = np.argsort(lab[:, 0], kind="stable")
    keep = lab[order[int(len(lab) * lo / 100) : math.ceil(len(lab) * hi / 100)]]
    if len(keep) < 6:
        keep = lab
    return np.median(keep, axis=0).astype(np.float32)


def luminance(lightness: float) -> float:
    """CIE relative luminance Y (0..1) of an L* value."""
    return ((lightness + 16.0) / 116.0) ** 3 if lightness > 8.0 else lightness / 903.3


#: The level (0..255) that the brightest part of a photo is stretched to, per channel, by :func:`exposure_gains`.
WHITE_LEVEL = 235.0
#: The most any channel is stretched: a photo that is dark everywhere stays fairly dark.
MAX_EXPOSURE_GAIN = 1.8


def exposure_gains(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Per-channel gains (>= 1) that bring the photo's white point (its 99.5th percentile per channel: sclera,
    teeth, a shirt, a window, the sky) up to :data:`WHITE_LEVEL`.

    This undoes a dim exposure and a colour cast that pulls a channel down (warm light lacks blue, cool light
    lacks red) before any colour is measured, the same way for every face whatever its skin: the reference is
    the brightest part of the photo, never the skin itself, so a dark-skinned face in a well-exposed photo is
    not lightened. Only gains above 1 are used: a clipped, over-bright photo cannot be undone this way.
    """
    step = max(1, max(rgb.shape[:2]) // 384)
    px = rgb[::step, ::step].reshape(-1, 3).astype(np.float32)
    if len(px) < 100:
        return np.ones(3, dtype=np.float32)
    white = np.percentile(px, 99.5, axis=0)
    return np.clip(WHITE_LEVEL / np.maximum(white, 1.0), 1.0, MAX_EXPOSURE_GAIN).astype(np.float32)


def apply_gains(rgb: NDArray[np.uint8], gains: NDArray[np.float32]) -> NDArray[np.uint8]:
    """``rgb`` with each channel multiplied by its gain (clipped to 0..255), through a lookup table."""
    if np.allclose(gains, 1.0):
        return rgb
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains[None, :] + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(np.ascontiguousarray(rgb), lut.reshape(256, 1, 3)), dtype=np.uint8)
