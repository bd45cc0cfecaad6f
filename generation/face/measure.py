"""Measuring a face: colours and proportions from the pixels and the face mesh, into :class:`Measures`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.face.colour import (
    apply_gains,
    exposure_gains,
    grey_world_gains,
    lab8,
    lab_dist2,
    luminance,
    robust_lab,
    white_balance_gains,
)
from generation.face.decode import PhotoError
from generation.face.masks import (
    BROW_L_LO,
    BROW_L_UP,
    BROW_R_LO,
    BROW_R_UP,
    CHEEKS,
    CHIN,
    EYE_L,
    EYE_R,
    EYES,
    FACE_OVAL,
    IRIS_L,
    IRIS_R,
    JAW,
    LIPS_OUTER,
    UPPER_LIP,
    disc_mask,
    poly_mask,
)

#: Face width (pixels) at which colours and textures are measured; larger faces are scaled down first.
MEASURE_FACE_W = 200.0

TIP = "Tip: face the camera in good, even light, with your whole face inside the picture."


@dataclass(frozen=True)
class Measures:
    """Everything measured on one face, in scale-free units (face widths / heights, CIE L*a*b*, fractions).

    Lab values are white-balance corrected (never lighter than the photo); ``*_dl`` are L* darker than the cheek,
    ``*_dc`` chroma below the cheek's, ``*_tex`` fine detail above the cheek's, ``*_dark`` the share of pixels
    clearly darker than the cheek. See :func:`measure` and docs/selfie.md for each.
    """

    face_w: float
    face_h: float
    skin_lab: NDArray[np.float32]
    skin_gw: NDArray[np.float32] | None
    face_clipped: float
    cheek_px: int
    above_px: int
    hair_above_frac: float
    hair_height: float
    hair_px: int
    hair_lab: NDArray[np.float32] | None
    hair_width: float
    hair_coherence: float | None
    hair_bottom: float | None
    chin_dl: float
    chin_dc: float
    chin_tex: float
    chin_dark: float
    lip_dl: float
    lip_dc: float
    lip_tex: float
    lip_dark: float
    jaw_dl: float
    jaw_dc: float
    jaw_tex: float
    jaw_dark: float
    ring: float
    ring_lower: float
    rectangularity: float
    lens_ratio: float
    iris_r: float
    iris_lab: NDArray[np.float32] | None
    eye_open: float
    brow_thick: float
    brow_arch: float
    brow_contrast: float
    brow_px: float
    mouth_w: float
    corner_lift: float
    mouth_open: float
    teeth: float
    aspect: float
    jaw_ratio: float
    forehead_ratio: float
    chin_ratio: float
    sclera_l: float | None
    hair_grey: float
    temple_grey: float
    scalp_skin: float
    torso_px: float
    cloth_lab: NDArray[np.float32] | None
    torso_skin: float
    centre_dl: float
    neck_skin: float
    side_dark: float

    def glasses(self) -> dict[str, float]:
        return {
            "ring": self.ring,
            "ring_lower": self.ring_lower,
            "rectangularity": self.rectangularity,
            "lens_ratio": self.lens_ratio,
        }


def measure(rgb: NDArray[np.uint8], pts: NDArray[np.float64], person: NDArray[np.float32]) -> Measures:
    """Measure the face given by ``pts`` (face-mesh landmarks, image pixels) in ``rgb``."""
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
    # Exposure and colour cast first (white point of the whole photo), then a tempered grey-world balance.
    region_raw = np.ascontiguousarray(region)
    exposure = exposure_gains(rgb)
    region = apply_gains(region_raw, exposure)
    gains = white_balance_gains(rgb)
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains[None, :], 0, 255)
    corrected = cv2.LUT(region, lut.reshape(256, 1, 3).astype(np.uint8))
    lab_raw = lab8(region)
    lab = lab8(np.asarray(corrected, dtype=np.uint8))
    np.minimum(lab[..., 0], lab_raw[..., 0], out=lab[..., 0])  # never lighter than the photo itself
    gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    pmask = person_region > 0.5

    # --- skin: upper cheeks (under the eyes, beside the nose: rarely covered by hair, beard or glasses)
    cheek = disc_mask(shape, p[list(CHEEKS)], 0.045 * face_w)
    skin = robust_lab(lab[cheek])
    if skin is None:
        raise PhotoError("no_face", f"The face is too small or too dark to see clearly. {TIP}")
    m["skin_lab"] = skin
    # the cheek's colour relative to the whole photo (grey world): what a colour cast cannot move
    # (grey world keeps the photo's luminance; the exposure gain, folded in, brings it to the white point)
    luma = float(np.dot(exposure, np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)))
    cheek_raw = np.ascontiguousarray(region_raw[cheek]).reshape(-1, 1, 3)
    gw = lab8(apply_gains(cheek_raw, grey_world_gains(rgb) * luma)).reshape(-1, 3)
    # how much of the face is clipped (an over-exposed photo: skin reads lighter than it is)
    oval_px = region_raw[poly_mask(shape, p[list(FACE_OVAL)])]
    m["face_clipped"] = float((oval_px.max(axis=1) >= 250).mean()) if len(oval_px) else 0.0
    # (clipped pixels carry a false hue: the red channel saturates first and the skin turns yellow)
    unclipped = cheek_raw.reshape(-1, 3).max(axis=1) < 250
    m["skin_gw"] = robust_lab(gw[unclipped]) if unclipped.sum() >= max(12, 0.25 * len(gw)) else None
    m["cheek_px"] = int(cheek.sum())

    # --- face oval and the hair around it
    oval = poly_mask(shape, p[list(FACE_OVAL)])
    grow = max(1, round(0.04 * face_w))
    oval_grown = cv2.dilate(oval.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(
        bool
    )
    not_skin = lab_dist2(lab, skin, 0.6) > 14.0**2
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
    hair_lab = robust_lab(lab[hair_core], 20, 80)
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
        hairlike = pmask & (lab_dist2(lab, hair_lab, 0.5) < 16.0**2) & not_skin
        m["hair_bottom"] = hair_bottom(hairlike, p, face_w, face_h, eye_y)
    else:
        m["hair_coherence"] = None
        m["hair_bottom"] = None

    # --- facial hair: chin, upper lip and jaw against cheek skin (darkness, colour and fine texture:
    # stubble and beard add fine dark detail; a shadow or a smile line darkens without it)
    r = 0.05 * face_w
    detail = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), max(0.8, face_w / 90.0)))
    cheek_tex = _texture(detail, cheek)
    lips = poly_mask(shape, p[list(LIPS_OUTER)])
    for name, idx in (("chin", CHIN), ("lip", UPPER_LIP), ("jaw", JAW)):
        sel = disc_mask(shape, p[list(idx)], r) & ~lips
        vals = lab[sel]
        med = np.median(vals, axis=0) if len(vals) else skin
        m[f"{name}_dl"] = float(skin[0] - med[0])
        m[f"{name}_dc"] = float(math.hypot(skin[1], skin[2]) - math.hypot(med[1], med[2]))
        m[f"{name}_tex"] = _texture(detail, sel) - cheek_tex
        # share of the zone clearly darker than the skin (hair), not just a shade darker (shadow)
        m[f"{name}_dark"] = float((vals[:, 0] < skin[0] - 14).mean()) if len(vals) else 0.0

    # --- glasses: a ring of edges around each eye (frames), dark lenses over the eyes (sunglasses)
    m.update(glasses_measures(gray, lab_raw, p, face_w, float(skin[0])))

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
    m["iris_lab"] = robust_lab(all_iris, 20, 70) if len(all_iris) >= 12 else None
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
        sel = poly_mask(shape, poly)
        if sel.sum() > 3:
            brow_l.append(float(np.percentile(lab[sel][:, 0], 30)))
    m["brow_thick"] = float(np.mean(thick))
    m["brow_arch"] = float(np.mean(arch))
    m["brow_contrast"] = float(skin[0] - np.mean(brow_l)) if brow_l else 0.0
    m["brow_px"] = _brow_weight(lab, p, face_h, float(skin[0]), m["brow_contrast"])

    # --- mouth and face shape (3-D landmarks: less sensitive to head turn)
    P = pts  # scale-free ratios: full-resolution 3-D landmarks, against the face's full-resolution size
    full_w = float(np.linalg.norm(P[454] - P[234]))
    full_h = float(np.linalg.norm(P[152] - P[10]))
    mouth_w = float(np.linalg.norm(P[61] - P[291]))
    eye_dist = float(np.linalg.norm(P[33] - P[263]))
    lip_mid_y = float((P[13, 1] + P[14, 1]) / 2)
    corners_y = float((P[61, 1] + P[291, 1]) / 2)
    m["mouth_w"] = mouth_w / eye_dist
    m["corner_lift"] = (lip_mid_y - corners_y) / full_h
    m["mouth_open"] = float(np.linalg.norm(P[13] - P[14])) / full_h
    m["teeth"] = teeth(region, p)
    m["aspect"] = face_h / face_w
    m["jaw_ratio"] = float(np.linalg.norm(P[172] - P[397]) / full_w)
    m["forehead_ratio"] = float(np.linalg.norm(P[54] - P[284]) / full_w)
    m["chin_ratio"] = float(np.linalg.norm(P[148] - P[377]) / full_w)

    # --- exposure reference: the whites of the eyes (the same for every skin tone)
    m["sclera_l"] = _sclera_l(lab_raw, p, shape)
    m["hair_grey"], m["temple_grey"] = _grey_hair(lab, hair_cand, p, face_w, face_h)
    m["scalp_skin"] = float((above & ~not_skin).sum() / max(1, above.sum()))
    m.update(_clothes(lab, lab_raw, pmask, not_skin, hair_lab, p, face_w, face_h))
    return Measures(**m)


def _brow_weight(
    lab: NDArray[np.float32], p: NDArray[np.float64], face_h: float, skin_l: float, contrast: float
) -> float:
    """How thick the brows look, from the pixels (the mesh draws every brow the same height): per column along
    each brow, the run of pixels darker than halfway between skin and brow, in face heights; the median."""
    if contrast < 6:
        return 0.0
    limit = skin_l - 0.5 * contrast
    h, w = lab.shape[:2]
    runs = []
    for up, lo in ((BROW_R_UP, BROW_R_LO), (BROW_L_UP, BROW_L_LO)):
        for i in range(1, 4):  # the middle of the brow (its ends taper)
            x = round((p[up[i], 0] + p[lo[i], 0]) / 2)
            y0 = max(0, round(min(p[up[i], 1], p[lo[i], 1]) - 0.05 * face_h))
            y1 = min(h, round(max(p[up[i], 1], p[lo[i], 1]) + 0.05 * face_h) + 1)
            if not 0 <= x < w or y1 - y0 < 2:
                continue
            runs.append(float((lab[y0:y1, max(0, x - 1) : x + 2, 0] < limit).mean(axis=1).sum()))
    return float(np.median(runs)) / face_h if runs else 0.0


def _texture(detail: NDArray[np.float32], sel: NDArray[np.bool_]) -> float:
    """Median fine detail (grey levels) inside a mask."""
    return float(np.median(detail[sel])) if sel.any() else 0.0


def _sclera_l(lab_raw: NDArray[np.float32], p: NDArray[np.float64], shape: tuple[int, int]) -> float | None:
    """L* of the whites of the eyes (the brighter half of the eye opening outside the iris), or None."""
    vals = []
    for contour, ring in ((EYE_R, IRIS_R), (EYE_L, IRIS_L)):
        eye = poly_mask(shape, p[list(contour)])
        rad = float(np.mean(np.linalg.norm(p[list(ring[1:])] - p[ring[0]], axis=1)))
        eye &= ~disc_mask(shape, p[ring[0]][None], 1.05 * rad)
        if eye.sum() >= 4:
            vals.append(lab_raw[eye][:, 0])
    if not vals:
        return None
    all_l = np.concatenate(vals)
    if len(all_l) < 8:
        return None
    return float(np.percentile(all_l, 75))


def _grey_hair(
    lab: NDArray[np.float32], hair: NDArray[np.bool_], p: NDArray[np.float64], face_w: float, face_h: float
) -> tuple[float, float]:
    """Share of grey strands (light, colourless) in the hair overall, and at the temples minus on top."""
    if hair.sum() < 30:
        return 0.0, 0.0
    px = lab[hair]
    grey = (px[:, 0] > 50) & (np.hypot(px[:, 1], px[:, 2]) < 9)
    ys, xs = np.nonzero(hair)
    left_x, right_x, top_y = p[234, 0], p[454, 0], p[10, 1]
    side = ((xs < left_x + 0.1 * face_w) | (xs > right_x - 0.1 * face_w)) & (ys > top_y + 0.1 * face_h)
    top = ys < top_y
    side_g = float(grey[side].mean()) if side.sum() >= 10 else 0.0
    top_g = float(grey[top].mean()) if top.sum() >= 10 else 0.0
    return float(grey.mean()), side_g - top_g


def _clothes(
    lab: NDArray[np.float32],
    lab_raw: NDArray[np.float32],
    pmask: NDArray[np.bool_],
    not_skin: NDArray[np.bool_],
    hair_lab: NDArray[np.float32] | None,
    p: NDArray[np.float64],
    face_w: float,
    face_h: float,
) -> dict[str, Any]:
    """The torso under the face: the cloth's colour and the layout cues that tell garments apart.

    ``torso_px``: person pixels measured (in face areas); ``cloth_lab``: robust Lab of the cloth (person, not
    skin); ``torso_skin``: share of bare skin on the chest and shoulders (strapless, one-shoulder); ``centre_dl``:
    lightness of the centre strip (shirt, tie) against the sides (jacket), in L*; ``neck_skin``: bare skin just
    under the chin; ``side_dark``: share of the sides clearly dark (a dark jacket). Long hair falling over the
    shoulders is left out where it differs from the cloth (hair-coloured pixels, unless that is most of the
    torso: then the cloth is the hair's colour and is kept).
    """
    chin_y = float(p[152, 1])
    cx = float((p[234, 0] + p[454, 0]) / 2)
    # only the window under the chin is looked at: crop every array to it first
    h, w = lab.shape[:2]
    y0, y1 = max(0, int(chin_y)), min(h, int(chin_y + 1.4 * face_h) + 2)
    x0, x1 = max(0, int(cx - 1.3 * face_w) - 1), min(w, int(cx + 1.3 * face_w) + 2)
    if y1 - y0 < 2 or x1 - x0 < 2:
        y0, y1, x0, x1 = 0, 1, 0, 1
    lab, lab_raw = lab[y0:y1, x0:x1], lab_raw[y0:y1, x0:x1]
    pmask, not_skin = pmask[y0:y1, x0:x1], not_skin[y0:y1, x0:x1]
    chin_y, cx = chin_y - y0, cx - x0
    shape = lab.shape[:2]
    yy, xx = np.ogrid[0 : shape[0], 0 : shape[1]]
    dx = np.abs(xx - cx) / face_w
    rows = (yy > chin_y + 0.35 * face_h) & (yy < chin_y + 1.4 * face_h)
    torso = rows & (dx < 1.3) & pmask
    out: dict[str, Any] = {
        "torso_px": float(torso.sum() / max(1.0, face_w * face_h)),
        "cloth_lab": None,
        "torso_skin": 0.0,
        "centre_dl": 0.0,
        "neck_skin": 0.0,
        "side_dark": 0.0,
    }
    if torso.sum() < 0.15 * face_w * face_h:
        return out
    out["torso_skin"] = float((torso & ~not_skin).sum() / torso.sum())
    cloth = torso & not_skin
    if hair_lab is not None:
        not_hair = lab_dist2(lab, hair_lab, 0.5) >= 12.0**2
        if (cloth & not_hair).sum() >= 0.4 * cloth.sum():
            cloth &= not_hair
    if cloth.sum() >= 0.1 * face_w * face_h:
        out["cloth_lab"] = robust_lab(lab[cloth], 20, 80)
    centre = rows & (dx < 0.15) & pmask
    sides = rows & (dx > 0.45) & (dx < 1.1) & cloth
    if centre.sum() > 10 and sides.sum() > 10:
        side_l = float(np.median(lab_raw[sides][:, 0]))
        out["centre_dl"] = float(np.median(lab_raw[centre][:, 0])) - side_l
        out["side_dark"] = float((lab_raw[sides][:, 0] < 30).mean())
    neck = (yy > chin_y + 0.05 * face_h) & (yy < chin_y + 0.3 * face_h) & (dx < 0.3) & pmask
    if neck.sum() > 10:
        out["neck_skin"] = float((neck & ~not_skin).sum() / neck.sum())
    return out


#: Polar samples per eye for the frame ring (5 degrees apart).
RING_ANGLES = 72
#: Where frame edges are looked for, in half eye widths from the eye's centre: from RING_INNER_H beside the eye
#: and RING_INNER_V above and below it, out to RING_OUTER (a lens is about 1.7 half eye widths across and
#: 1.2 high; a rectangular lens's corners, with the eye off the lens's centre, reach about 2.4).
RING_INNER_H, RING_INNER_V, RING_OUTER = 1.15, 0.85, 2.6


def glasses_measures(
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
        eye_sel = disc_mask((h, w), c[None], 0.8 * half)
        under_sel = disc_mask((h, w), p[under][None], 0.35 * half)
        eye_l = float(np.median(lab[eye_sel][:, 0])) if eye_sel.any() else skin_l
        under_l = float(np.median(lab[under_sel][:, 0])) if under_sel.any() else skin_l
        lens.append(luminance(max(eye_l, under_l)) / max(luminance(skin_l), 1e-3))
    return {
        "ring": float(np.mean(rings)),
        "ring_lower": float(np.mean(lowers)),
        "rectangularity": float(np.mean(rects)) if len(rects) == 2 else float("nan"),
        "lens_ratio": float(max(lens)),
    }


def teeth(region: NDArray[np.uint8], p: NDArray[np.float64]) -> float:
    """Fraction of bright, low-saturation pixels inside the inner lips (visible teeth)."""
    inner = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
    sel = poly_mask(region.shape[:2], p[list(inner)])
    if sel.sum() < 6:
        return 0.0
    hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)[sel]
    return float(((hsv[:, 2] > 140) & (hsv[:, 1] < 90)).mean())


def hair_bottom(
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
