"""The compiled passes of ``composite`` (numba). Imported on the first picture drawn, so a process that
never draws (the bot, a worker for other engines) never loads numba."""

from __future__ import annotations

import numba
import numpy as np

_njit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_njit
def paint(
    dst8: np.ndarray,
    dst32: np.ndarray,
    run_start: np.ndarray,
    run_len: np.ndarray,
    run_mix: np.ndarray,
    mix_alpha: np.ndarray,
    mix_slot: np.ndarray,
    mix_weight: np.ndarray,
    edge_at: np.ndarray,
    edge_alpha: np.ndarray,
    edge_ptr: np.ndarray,
    edge_slot: np.ndarray,
    edge_weight: np.ndarray,
    rgb: np.ndarray,
) -> None:
    """Source-over one recoloured template onto a premultiplied RGBA buffer (``dst8`` its bytes,
    ``dst32`` the same memory one uint32 a pixel). Every pixel is
    ``(sum_k W_k * colour_k + dst * (255 - alpha)) / 255``, rounded, in unsigned integers; a run's sum
    is computed once, and an opaque run is written as whole pixels."""
    one = np.uint32(1)
    eight = np.uint32(8)
    top = np.uint32(255)
    half = np.uint32(128)
    mixes = mix_alpha.shape[0]
    sums = np.empty((mixes, 3), np.uint32)
    solid = np.empty(mixes, np.uint32)
    for m in range(mixes):
        k1 = mix_slot[m, 0]
        k2 = mix_slot[m, 1]
        v1 = np.uint32(mix_weight[m, 0])
        v2 = np.uint32(mix_weight[m, 1])
        for c in range(3):
            sums[m, c] = half + v1 * rgb[k1, c] + v2 * rgb[k2, c]
        r = (sums[m, 0] + (sums[m, 0] >> eight)) >> eight
        g = (sums[m, 1] + (sums[m, 1] >> eight)) >> eight
        b = (sums[m, 2] + (sums[m, 2] >> eight)) >> eight
        solid[m] = (
            min(r, top) | (min(g, top) << eight) | (min(b, top) << np.uint32(16)) | (top << np.uint32(24))
        )
    for i in range(run_start.shape[0]):
        m = run_mix[i]
        s = run_start[i]
        a = np.uint32(mix_alpha[m])
        if a == top:
            dst32[s : s + run_len[i]] = solid[m]
            continue
        inv = top - a
        sr, sg, sb = sums[m, 0], sums[m, 1], sums[m, 2]
        sa = half + a * top
        for p in range(s, s + run_len[i]):
            q = np.uint32(p) * np.uint32(4)
            r = sr + np.uint32(dst8[q]) * inv
            g = sg + np.uint32(dst8[q + one]) * inv
            b = sb + np.uint32(dst8[q + 2 * one]) * inv
            al = sa + np.uint32(dst8[q + 3 * one]) * inv
            dst8[q] = min((r + (r >> eight)) >> eight, top)
            dst8[q + one] = min((g + (g >> eight)) >> eight, top)
            dst8[q + 2 * one] = min((b + (b >> eight)) >> eight, top)
            dst8[q + 3 * one] = min((al + (al >> eight)) >> eight, top)
    for i in range(edge_at.shape[0]):
        q = np.uint32(edge_at[i]) * np.uint32(4)
        a = np.uint32(edge_alpha[i])
        inv = top - a
        r = half + np.uint32(dst8[q]) * inv
        g = half + np.uint32(dst8[q + one]) * inv
        b = half + np.uint32(dst8[q + 2 * one]) * inv
        al = half + a * top + np.uint32(dst8[q + 3 * one]) * inv
        for j in range(np.uint32(edge_ptr[i]), np.uint32(edge_ptr[i + 1])):
            k = np.uint32(edge_slot[j])
            w = np.uint32(edge_weight[j])
            r += w * rgb[k, 0]
            g += w * rgb[k, 1]
            b += w * rgb[k, 2]
        # x / 255 rounded, for x < 65536 (128 already added): (x + (x >> 8)) >> 8
        dst8[q] = min((r + (r >> eight)) >> eight, top)
        dst8[q + one] = min((g + (g >> eight)) >> eight, top)
        dst8[q + 2 * one] = min((b + (b >> eight)) >> eight, top)
        dst8[q + 3 * one] = min((al + (al >> eight)) >> eight, top)


@_njit
def unpremultiply(buf: np.ndarray) -> None:
    h, w, _ = buf.shape
    for y in range(h):
        for x in range(w):
            a = np.int32(buf[y, x, 3])
            if a == 255:
                continue
            if a == 0:
                buf[y, x, 0] = 0
                buf[y, x, 1] = 0
                buf[y, x, 2] = 0
                continue
            for c in range(3):
                buf[y, x, c] = min(255, (np.int32(buf[y, x, c]) * 255 + a // 2) // a)


@_njit
def mask(buf: np.ndarray, coverage: np.ndarray) -> None:
    """Premultiplied pixels times a coverage mask (the circle crop)."""
    h, w, _ = buf.shape
    for y in range(h):
        for x in range(w):
            m = np.int32(coverage[y, x])
            if m == 255:
                continue
            for c in range(4):
                buf[y, x, c] = (np.int32(buf[y, x, c]) * m + 127) // 255
