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

import numpy as np

from .errors import ConfigError
from .flow import FlowAligner

__all__ = ["TemporalFilter"]


class TemporalFilter:
    """Stateful: ``filter(ir, rgb)`` with the (h, w) uint8 IR frame the model saw and its (h, w, 3) uint8
    output returns the filtered (h, w, 3) uint8 output; see the module docstring."""

    def __init__(self, strength: float = 0.6, ir_threshold: float = 12.0):
        if not 0.0 <= strength < 1.0:
            raise ConfigError(f"temporal strength must be in [0, 1), got {strength}")
        self.strength = strength
        self.ir_threshold = ir_threshold
        self.aligner = FlowAligner()
        self.reset()

    def reset(self) -> None:
        self.previous: tuple[np.ndarray, np.ndarray] | None = None  # (IR, filtered output)

    def __call__(self, ir: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        if self.previous is None or self.previous[0].shape != ir.shape or self.strength == 0:
            out = rgb
        else:
            prev_ir, prev_out = self.previous
            al = self.aligner.align(ir, prev_ir)
            same = np.abs(ir.astype(np.float32) - al.warp(prev_ir).astype(np.float32)) < self.ir_threshold
            a = ((al.valid & same).astype(np.float32) * self.strength)[..., None]
            out = (a * al.warp(prev_out).astype(np.float32) + (1 - a) * rgb.astype(np.float32) + 0.5).astype(np.uint8)
        self.previous = (ir, out)
        return out
