"""Where live frames come from: a camera, a stream URL, or a file played like a camera (``open_reader``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..media import open_source
from .errors import LiveError


class FrameReader(Protocol):
    """What the capture thread reads from. ``live``: a source that keeps going without us (a camera), so a
    failed read means a disconnect worth reconnecting, not the end; ``size`` (W, H) and ``fps`` are known
    after ``open()``."""

    name: str
    live: bool
    size: tuple[int, int] | None
    fps: float | None

    def open(self) -> bool: ...

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """(image, media time in seconds or None), or None when no frame came."""
        ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _opencv_quiet():
    """OpenCV logs every failed camera probe on stderr; our one-line error says it better."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


class CameraReader:
    """A camera index (``0``), a device (``/dev/video0``) or a stream URL (``rtsp://...``) through OpenCV."""

    live = True

    def __init__(self, spec: str):
        self.spec = spec
        self.url = "://" in spec
        self.name = f"stream {spec}" if self.url else f"camera {spec}"
        self.cap = None
        self.size = None
        self.fps = None

    def open(self) -> bool:
        self.close()
        target = int(self.spec) if self.spec.isdigit() else self.spec
        if self.url:  # FFmpeg's own log lines (connection refused, packet loss) would break the one-line
            os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # messages and the readout; set it to see them
        with _opencv_quiet():
            if self.url:  # without timeouts a dead stream blocks a read for ~30 s before failing
                cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
            else:
                cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            return False
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # frames the driver holds are latency; ignored where unsupported
        self.cap = cap
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if not (w and h):  # some backends only know the size once a frame has come
            got = self.read()
            if got is None:
                self.close()
                return False
            h, w = got[0].shape[:2]
        self.size = (w, h)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 1000 else None
        return True

    def read(self) -> tuple[np.ndarray, None] | None:
        ok, image = self.cap.read() if self.cap is not None else (False, None)
        if not ok or image is None:
            return None
        if image.ndim == 3:  # OpenCV delivers BGR; the frame normaliser expects RGB
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
        return image, None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class FileReader:
    """A video file or frame folder (``media.open_source``: exact timestamps, 16-bit kept) standing in for a camera."""

    live = False

    def __init__(self, path: str | os.PathLike):
        self.source = open_source(path)
        self.name = Path(path).name
        info = self.source.info
        self.size = (info.width, info.height)
        self.fps = float(info.fps) if info.fps else None
        self._frames = iter(self.source)

    def open(self) -> bool:
        return True

    def read(self) -> tuple[np.ndarray, float] | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        if frame.pts is None:
            return frame.image, frame.index / (self.fps or 30.0)
        return frame.image, float(frame.pts * frame.time_base)

    def close(self) -> None:
        self.source.close()


def open_reader(source: str) -> FrameReader:
    """A camera index, ``/dev/...`` device or URL -> CameraReader (opened later); an existing path -> FileReader."""
    spec = str(source).strip()
    if spec.isdigit() or spec.startswith("/dev/") or "://" in spec:
        return CameraReader(spec)
    if not Path(spec).exists():
        raise LiveError(f"source not found: {spec} (expected a camera index like 0, /dev/videoN, a stream URL "
                        f"or a video file)")
    return FileReader(spec)
