"""The one frame normaliser: any thermal frame (8/16-bit, grey/RGB) to 8-bit grey, and 8-bit <-> model range.

16-bit (radiometric) frames are mapped to 8-bit with a robust percentile stretch: the 0.5th and 99.5th
percentiles of the frame's values become 0 and 255, values outside are clipped. A few hot or dead pixels
therefore do not wash out the picture. On video, ``Percentile16To8`` smooths the two bounds over time
(exponential moving average, ``momentum`` 0.9 by default), so the brightness does not pump from frame to
frame; a single image uses its own percentiles.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ConfigError

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class Percentile16To8:
    """Robust 16-bit -> 8-bit stretch with optional temporal smoothing of the bounds (see module docstring)."""

    def __init__(self, momentum: float = 0.9):
        self.momentum = momentum
        self.bounds: tuple[float, float] | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        sample = frame[::4, ::4] if frame.size > 1 << 18 else frame  # percentiles of a subsample are enough
        lo, hi = np.percentile(sample, (LOW_PERCENTILE, HIGH_PERCENTILE))
        if self.bounds is not None and self.momentum > 0:
            m = self.momentum
            lo, hi = m * self.bounds[0] + (1 - m) * lo, m * self.bounds[1] + (1 - m) * hi
        self.bounds = (float(lo), float(hi))
        scale = 255.0 / max(hi - lo, 1.0)
        out = (frame.astype(np.float32) - lo) * scale
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def to_gray8(frame: np.ndarray, stretch: Percentile16To8 | None = None) -> np.ndarray:
    """Any decoded frame -> (H, W) uint8 grey.

    Accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of uint8 or uint16. Colour frames are
    converted with the Rec. 601 luma weights (a thermal video stored as RGB is grey in all channels, so
    this returns that grey). 16-bit frames go through ``stretch`` (a fresh per-image one if None).
    """
    if frame.ndim == 3:
        if frame.shape[2] == 1:
            frame = frame[:, :, 0]
        elif frame.shape[2] in (3, 4):
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
        else:
            raise ConfigError(f"unsupported frame with {frame.shape[2]} channels")
    elif frame.ndim != 2:
        raise ConfigError(f"unsupported frame shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (stretch or Percentile16To8(momentum=0))(frame)
    raise ConfigError(f"unsupported frame dtype {frame.dtype}; expected 8- or 16-bit")


def read_image(path: str | Path, color: bool = False) -> np.ndarray:
    """Read an image file: (H, W) uint8/uint16 grey if ``color`` is False, else (H, W, 3) uint8 RGB."""
    flags = cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ConfigError(f"cannot read image {path}")
    if color:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3:  # a grey image stored as colour: convert through the normaliser's rule
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def gray8_to_model(gray: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W) -> float in [-1, 1] with a channel axis: (N, H, W) -> (N, 1, H, W)."""
    return gray.unsqueeze(-3).float().div_(127.5).sub_(1.0)


def model_to_rgb8(y: torch.Tensor) -> torch.Tensor:
    """Generator output (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), rounded and clipped."""
    return y.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def rgb8_to_model(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float (3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear when enlarging."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def natural_key(s: str):
    """Sort key that orders embedded numbers by value: ``f2.png`` before ``f10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def short_side_size(width: int, height: int, short_side: int, multiple: int = 8) -> tuple[int, int]:
    """(W, H) scaled so the short side is ``short_side``, aspect kept, both rounded to ``multiple``."""
    s = short_side / min(width, height)
    return (max(multiple, round(width * s / multiple) * multiple), max(multiple, round(height * s / multiple) * multiple))
