"""The one frame-to-frame alignment of this package: optical flow between two IR frames, and where it holds.

Used by the temporal filter (``run --temporal``) and by the warping-error metric, so what the filter trusts
is what the metric scores. OpenCV's DIS flow (Kroeger et al. 2016; medium preset): fast on a CPU and no learned
weights to download. A pixel's flow is trusted where the forward and backward flows agree (Sundaram et al.
2010's test: ``|b + f(x + b)|^2 < 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``) and it does not point outside the frame;
occlusions and the border the camera uncovers fail it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Alignment:
    """Where each pixel of the current frame was in the previous one (``map_x``, ``map_y``: float32 (h, w)),
    and whether that can be trusted (``valid``: bool (h, w))."""

    map_x: np.ndarray
    map_y: np.ndarray
    valid: np.ndarray

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """``previous`` (h, w[, c]) moved onto the current frame (edge pixels repeated where it points outside)."""
        return cv2.remap(previous, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FlowAligner:
    """``align(ir, prev_ir)`` for (h, w) uint8 IR frames -> ``Alignment``; one DIS instance, reused."""

    def __init__(self):
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def align(self, ir: np.ndarray, prev_ir: np.ndarray) -> Alignment:
        if ir.shape != prev_ir.shape:
            raise ValueError(f"frame of shape {ir.shape} follows one of {prev_ir.shape}")
        h, w = ir.shape
        if self._grid is None or self._grid[0].shape != (h, w):
            self._grid = tuple(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        gx, gy = self._grid
        # OpenCV 5 refuses frames that are views into a larger array (a crop, a channel): DIS asserts on them
        ir, prev_ir = np.ascontiguousarray(ir), np.ascontiguousarray(prev_ir)
        back = self.flow.calc(ir, prev_ir, None)  # for each pixel of this frame, where it was in the last
        fwd = self.flow.calc(prev_ir, ir, None)
        mx, my = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        gap = ((back + fwd_at) ** 2).sum(axis=2)
        mag = (back**2).sum(axis=2) + (fwd_at**2).sum(axis=2)
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        return Alignment(mx, my, inside & (gap < 0.01 * mag + 0.5))
