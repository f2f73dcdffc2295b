"""A dependency-free heat-map PNG writer (for ``labelsift noise-matrix --plot``)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

# A perceptually ordered dark-blue -> green -> yellow ramp (viridis-like control points).
_RAMP = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)


def _colours(v: np.ndarray) -> np.ndarray:
    x = np.clip(v, 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(x.astype(int), len(_RAMP) - 2)
    f = (x - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).round().astype(np.uint8)


def heatmap_png(matrix, *, max_side: int = 800, gamma: float = 0.5) -> bytes:
    """PNG bytes of a square matrix with values in [0, 1] (sqrt scale shows small rates)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError("heatmap_png needs a 2-D matrix")
    cell = max(1, max_side // max(m.shape))
    img = _colours(np.power(np.clip(m, 0, 1), gamma))
    img = np.repeat(np.repeat(img, cell, axis=0), cell, axis=1)
    h, w = img.shape[:2]
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
