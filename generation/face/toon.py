"""The "toon" style: the photo itself, stylised into a chibi with classical image processing.

Steps, all deterministic: a head-and-shoulders crop around the analysed face; a landmark-driven chibi warp
(bigger eyes and head, smaller chin, a shorter body) as one smooth displacement field applied with
``cv2.remap``; edge-preserving smoothing (bilateral); colour quantisation (k-means on a downscaled copy, seeded);
clean dark outlines; soft blush; and the person composited on a pastel gradient. In memory only.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from generation.face.analyze import FaceAnalysis, analyze_photo
from generation.face.decode import DecodedPhoto, decode_photo

__all__ = ["toon", "toon_photo"]

_EYES = ((33, 133, 159, 145), (362, 263, 386, 374))  # corners and lids of each eye


def _radial(
    xs: NDArray[np.float32], ys: NDArray[np.float32], cx: float, cy: float, radius: float, strength: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Inverse-map displacement of a smooth bulge: inside ``radius`` content grows by up to 1/(1-strength)."""
    dx, dy = xs - cx, ys - cy
    r2 = (dx * dx + dy * dy) / (radius * radius)
    w = np.clip(1.0 - r2, 0.0, 1.0) ** 2
    return (-dx * strength * w).astype(np.float32), (-dy * strength * w).astype(np.float32)


def _gradient(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> NDArray[np.float32]:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    row = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    bg = np.repeat(row, size, axis=1)
    # a few soft round "bokeh" dots, at fixed places
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for fx, fy, fr in ((0.12, 0.18, 0.05), (0.86, 0.12, 0.035), (0.9, 0.62, 0.045), (0.08, 0.7, 0.03)):
        d = np.sqrt((xx - fx * size) ** 2 + (yy - fy * size) ** 2) / (fr * size)
        glow = np.clip(1.2 - d, 0, 1)[..., None] * 0.55
        bg = bg * (1 - glow) + 255 * glow
    return bg


def toon_photo(
    photo: DecodedPhoto, analysis: FaceAnalysis | None = None, *, size: int = 640, colors: int = 14
) -> NDArray[np.uint8]:
    """The toon image (size x size x 3 uint8) of the analysed face in ``photo``."""
    if analysis is None:
        analysis = analyze_photo(photo)
    geo = analysis.geometry
    assert geo is not None, "the analysis must come from analyze()/analyze_photo() in this process"
    pts = geo.landmarks[:, :2]
    face_h = float(np.linalg.norm(pts[152] - pts[10]))
    cx = float((pts[234, 0] + pts[454, 0]) / 2)
    cy = float((pts[10, 1] + pts[152, 1]) / 2) + 0.35 * face_h
    side = 3.0 * face_h
    x0, y0 = cx - side / 2, cy - side / 2
    scale = size / side
    # crop + resize in one affine warp (outside the photo: replicate the border; the mask hides it anyway)
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float32)
    img = cv2.warpAffine(
        photo.rgb, affine, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    mask = cv2.warpAffine(geo.person_mask, affine, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    p = (pts - np.array([x0, y0])) * scale
    fh = face_h * scale

    # --- chibi warp: one inverse displacement field, sum of smooth local terms
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    map_dx = np.zeros((size, size), np.float32)
    map_dy = np.zeros((size, size), np.float32)
    centre = p[[10, 152, 234, 454]].mean(axis=0)
    head_c = (float(centre[0]), float(centre[1] - 0.1 * fh))
    for dx, dy in (
        _radial(xx, yy, head_c[0], head_c[1], 1.05 * fh, 0.22),  # bigger head
        *(
            _radial(
                xx,
                yy,
                float(p[[a, b, c, d]].mean(axis=0)[0]),
                float(p[[a, b, c, d]].mean(axis=0)[1]),
                1.1 * float(np.linalg.norm(p[a] - p[b])),
                0.33,
            )
            for a, b, c, d in _EYES
        ),  # bigger eyes
    ):
        map_dx += dx
        map_dy += dy
    chin = p[152]
    g = np.exp(-(((xx - chin[0]) / (0.45 * fh)) ** 2 + ((yy - chin[1]) / (0.35 * fh)) ** 2))
    map_dy += 0.12 * fh * g  # smaller chin: the chin samples from further down, so it moves up
    below = np.clip((yy - chin[1]) / fh, 0.0, None)
    map_dy += 0.22 * fh * np.clip(below, 0, 1)  # shorter neck and body under the chin
    map_x, map_y = xx + map_dx, yy + map_dy
    img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)

    # --- edge-preserving smoothing
    smooth = cv2.bilateralFilter(img, 9, 40, 7)
    smooth = cv2.bilateralFilter(smooth, 9, 30, 5)

    # --- colour quantisation: k-means in Lab on a small copy, then every pixel to its nearest centre
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float32)
    sample = cv2.resize(lab, (96, 96), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    cv2.setRNGSeed(1234)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(sample, colors, None, criteria, 1, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    centres = centres[np.lexsort(centres.T[::-1])]  # order-independent of k-means internals
    flat = lab.reshape(-1, 3)
    d2 = (flat * flat).sum(1)[:, None] - 2 * flat @ centres.T + (centres * centres).sum(1)[None, :]
    quant = centres[np.argmin(d2, axis=1)].reshape(size, size, 3)
    mixed = (0.65 * quant + 0.35 * lab).astype(np.uint8)
    out = cv2.cvtColor(mixed, cv2.COLOR_LAB2RGB).astype(np.float32)

    # --- blush on the (warped) cheeks: find where the cheek landmarks went by inverting the field locally
    blush = np.zeros((size, size), np.float32)
    for idx in (205, 425):
        bx, by = _forward(p[idx], map_x, map_y)
        cv2.ellipse(blush, (round(bx), round(by)), (round(0.13 * fh), round(0.07 * fh)), 0, 0, 360, 1.0, -1)
    blush = cv2.GaussianBlur(blush, (0, 0), 0.05 * fh + 1)[..., None] * 0.35
    out = out * (1 - blush) + np.array([255, 120, 140], np.float32) * blush

    # --- outlines: dark lines from the smoothed luminance, plus the silhouette
    gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (0, 0), 1.2), 40, 100)
    soft_mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
    sil = cv2.morphologyEx((soft_mask > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8))
    lines = cv2.GaussianBlur(np.maximum(edges / 255.0, sil).astype(np.float32), (0, 0), 0.7)
    lines = np.clip(lines * 1.6, 0, 1)[..., None] * 0.85
    out = out * (1 - lines) + np.array([70, 45, 50], np.float32) * lines

    # --- cute background
    bg = _gradient(size, (255, 214, 231), (214, 236, 255))
    alpha = np.clip((soft_mask - 0.3) / 0.4, 0, 1)[..., None]
    final = out * alpha + bg * (1 - alpha)
    return np.clip(final + 0.5, 0, 255).astype(np.uint8)


def _forward(
    point: NDArray[np.float64], map_x: NDArray[np.float32], map_y: NDArray[np.float32]
) -> tuple[float, float]:
    """Where a source point lands under an inverse map (the output pixel whose source is nearest)."""
    size = map_x.shape[0]
    x, y = float(point[0]), float(point[1])
    r = 40
    x0, x1 = max(0, int(x) - r), min(size, int(x) + r)
    y0, y1 = max(0, int(y) - r), min(size, int(y) + r)
    if x1 <= x0 or y1 <= y0:
        return x, y
    d = (map_x[y0:y1, x0:x1] - x) ** 2 + (map_y[y0:y1, x0:x1] - y) ** 2
    iy, ix = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(x0 + ix), float(y0 + iy)


def toon(
    image_bytes: bytes,
    *,
    face_index: int | None = None,
    size: int = 640,
    analysis: FaceAnalysis | None = None,
) -> bytes:
    """A selfie's toon portrait as PNG bytes. Raises PhotoError like :func:`~generation.face.analyze.analyze`."""
    photo = decode_photo(image_bytes)
    if analysis is None or analysis.geometry is None:
        analysis = analyze_photo(photo, face_index=face_index)
    rgb = toon_photo(photo, analysis, size=size)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
