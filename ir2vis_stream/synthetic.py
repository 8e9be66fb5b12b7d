"""A thermal-looking clip made on the spot, so nothing needs a download: ``make demo``'s input and ``bench
speed``'s (and the GPU check's) when no clip is given."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["synthetic_thermal_clip"]


def synthetic_thermal_clip(path: Path, frames: int = 48, width: int = 320, height: int = 240, fps: int = 12) -> Path:
    """A grey clip with the look of LWIR: warm (bright) walkers and a warm road on a cool background."""
    import cv2

    from .media import VideoSink

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    background = 60 + 25 * (yy / height) + cv2.GaussianBlur(rng.normal(0, 8, (height, width)), (0, 0), 6)
    background[int(height * 0.65):] += 35  # the road keeps the day's heat
    time_base = Fraction(1, fps)
    sink = VideoSink(Path(path), width, height, Fraction(fps), time_base, overwrite=True)
    try:
        for i in range(frames):
            img = background.copy()
            for k, (x0, speed) in enumerate([(30, 3.0), (250, -2.0), (140, 1.2)]):
                cx = (x0 + speed * i) % width
                cy = height * 0.62 - 6 * k
                body = np.exp(-(((xx - cx) / 7) ** 2 + ((yy - cy) / 22) ** 2))
                head = np.exp(-(((xx - cx) / 5) ** 2 + ((yy - (cy - 28)) / 5) ** 2))
                img += 150 * body + 160 * head
            img += rng.normal(0, 2, img.shape)  # sensor noise
            grey = np.clip(img, 0, 255).astype(np.uint8)
            sink.write(np.repeat(grey[:, :, None], 3, axis=2), i, time_base)
    except BaseException:
        sink.close(keep=False)
        raise
    sink.close()
    return path
