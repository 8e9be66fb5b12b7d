"""Where live frames go: a window, a recording, and the readout drawn on them. Every output (these and
``mjpeg.MjpegServer``) is ``write(rgb, captured) -> keep going?`` and ``close()``."""

from __future__ import annotations

import contextlib
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..media import VideoSink
from .errors import NO_DISPLAY, LiveError


RECORDING_TIME_BASE = Fraction(1, 1000)  # recordings carry each frame's capture time in milliseconds


class Output(Protocol):
    """A place live frames go, in the inference loop: ``write`` must return quickly (hand work to other threads)."""

    def write(self, rgb: np.ndarray, captured: float) -> bool:
        """Take a shown frame (``captured``: its ``time.monotonic()`` capture time); False asks the session to stop."""
        ...

    def close(self) -> None: ...


def display_available() -> bool:
    """Whether a window can open: OpenCV built with a GUI (opencv-python-headless has none) and, on Linux, a display."""
    framework = getattr(cv2, "currentUIFramework", lambda: "unknown")()
    if not framework:
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False  # some GUI backends abort the whole process when they find no display, so do not try
    return True


class Window:
    """The on-screen view (OpenCV HighGUI); ``q``, Esc or closing the window ends the session."""

    def __init__(self, title: str = "ir2vis-stream live"):
        self.title = title
        if not display_available():
            raise LiveError(NO_DISPLAY)
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise LiveError(NO_DISPLAY) from None

    def write(self, rgb: np.ndarray, captured: float) -> bool:
        """Show a frame; False when the user asked to stop."""
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # the user closed the window
            return False

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


class Recorder:
    """``-o``: what was shown, as H.264 with real timestamps (each frame's capture time, in ms: variable rate)."""

    def __init__(self, path: Path, width: int, height: int, fps: float | None, overwrite: bool = False,
                 crf: int = 20, preset: str = "veryfast"):
        # The header rate only guides x264's rate control; the timestamps carry the real timing.
        rate = Fraction(fps or 30).limit_denominator(1001)
        self.sink = VideoSink(path, width, height, rate, RECORDING_TIME_BASE, crf=crf, preset=preset,
                              overwrite=overwrite)
        self.path = path
        self._t0: float | None = None
        self._last_pts = -1

    @property
    def frames(self) -> int:
        return self.sink.frames

    def write(self, rgb: np.ndarray, captured: float) -> bool:
        if self._t0 is None:
            self._t0 = captured
        pts = max(round((captured - self._t0) * 1000), self._last_pts + 1)  # strictly increasing, as muxers need
        self.sink.write(rgb, pts, RECORDING_TIME_BASE)
        self._last_pts = pts
        return True

    def close(self) -> None:
        """Finalise: flush the encoder and rename the temporary file into place (a complete, playable file)."""
        self.sink.close(keep=True)


def draw_readout(rgb: np.ndarray, text: str) -> None:
    """Write ``text`` small at the top left of ``rgb`` (in place), white on a dark band to read on any picture.

    A band rather than a thick dark outline: OpenCV 5 widens glyphs with thickness, so an outline drifts.
    """
    scale = max(0.4, rgb.shape[1] / 1000)
    thickness = 1 if scale < 0.8 else 2
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, h // 3)
    cv2.rectangle(rgb, (0, 0), (w + 2 * pad, h + baseline + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(rgb, text, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
