"""The one-frame mailbox between the capture thread and the inference loop (newest wins)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class CapturedFrame:
    index: int  # the source's frame number, counting dropped ones
    image: np.ndarray  # (H, W) or (H, W, 3) RGB, uint8 or uint16
    captured: float  # time.monotonic() when the source delivered it


class LatestFrame:
    """A one-frame mailbox: ``put`` replaces a frame nobody took (counting it as dropped); ``take`` gets the newest.

    ``lossless``: ``put`` waits until the previous frame was taken instead, for a file read as fast as
    inference goes (nothing to be late for, so nothing is dropped).
    """

    def __init__(self, lossless: bool = False):
        self.lossless = lossless
        self.captured = 0
        self.dropped = 0
        self._frame: CapturedFrame | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, frame: CapturedFrame) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: self._frame is None or self._closed)
            if self._closed:
                return
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.captured += 1
            self._cond.notify_all()

    def take(self, timeout: float) -> CapturedFrame | None:
        """The newest frame, waiting up to ``timeout`` s for one; None if there is none (yet, or any more)."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self._cond.notify_all()
            return frame

    def close(self) -> None:
        """No more frames: the capture ended, or the session stops (a waiting ``put`` returns)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._closed and self._frame is None
