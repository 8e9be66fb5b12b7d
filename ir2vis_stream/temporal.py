"""Flow-guided temporal filtering of colourised video (``run --temporal``): steadier colour, the same motion.

A generator run frame by frame answers each frame anew, so colours the IR does not pin down (a wall, the
sky) can change from frame to frame although the scene does not. This filter carries the last output
along the scene's motion and blends it into the new one:

    y_t = a * warp(y_{t-1}) + (1 - a) * g_t      where the warp can be trusted, else y_t = g_t

``g_t`` is the generator's output, ``warp`` moves the previous *filtered* output by the optical flow between
the two IR frames (OpenCV's DIS flow, on the IR at inference size; no learned weights), so along a motion
trajectory colours are smoothed exponentially (``a`` = ``strength``, 0.6 by default: about 2.5 frames of
memory). The blend is off where the flow is not trusted: where forward and backward flows disagree
(occlusions, the border the camera uncovers; Sundaram et al. 2010's test) and where the IR itself changed
along the flow by more than ``ir_threshold`` grey levels (a light switched on, a person appearing), so real
changes show at once instead of fading in. Cost: two DIS flows and two remaps at inference size per frame.

Frames must arrive in order; ``reset()`` starts a new sequence (a cut, a new size).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["TemporalFilter"]


class TemporalFilter:
    """Stateful: ``filter(ir, rgb)`` with the (h, w) uint8 IR frame the model saw and its (h, w, 3) uint8
    output returns the filtered (h, w, 3) uint8 output; see the module docstring."""

    def __init__(self, strength: float = 0.6, ir_threshold: float = 12.0):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {strength}")
        self.strength = strength
        self.ir_threshold = ir_threshold
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self.reset()

    def reset(self) -> None:
        self.previous: tuple[np.ndarray, np.ndarray] | None = None  # (IR, filtered output)

    def _coords(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if self._grid is None or self._grid[0].shape != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = (gx, gy)
        return self._grid

    def weight(self, ir: np.ndarray, prev_ir: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(blend weight (h, w) float32, map x, map y): where each pixel of ``ir`` was in ``prev_ir``."""
        h, w = ir.shape
        back = self.flow.calc(ir, prev_ir, None)
        fwd = self.flow.calc(prev_ir, ir, None)
        gx, gy = self._coords(h, w)
        mx, my = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        gap = ((back + fwd_at) ** 2).sum(axis=2)
        mag = (back**2).sum(axis=2) + (fwd_at**2).sum(axis=2)
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        prev_ir_warped = cv2.remap(prev_ir, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        same = np.abs(ir.astype(np.float32) - prev_ir_warped.astype(np.float32)) < self.ir_threshold
        trusted = inside & (gap < 0.01 * mag + 0.5) & same
        return trusted.astype(np.float32) * self.strength, mx, my

    def __call__(self, ir: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        if self.previous is None or self.previous[0].shape != ir.shape or self.strength == 0:
            out = rgb
        else:
            prev_ir, prev_out = self.previous
            a, mx, my = self.weight(ir, prev_ir)
            warped = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a = a[..., None]
            out = (a * warped.astype(np.float32) + (1 - a) * rgb.astype(np.float32) + 0.5).astype(np.uint8)
        self.previous = (ir, out)
        return out
