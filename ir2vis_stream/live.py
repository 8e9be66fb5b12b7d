"""Live colourisation: a camera (or stream, or a file played like one) -> engine -> window / recording / MJPEG.

A live viewer wants the newest picture, not every picture. The file-to-file ``Pipeline`` queues frames so
that none is lost; here a queue would make the delay grow without bound whenever inference is slower than
the camera. So capture and inference meet in a one-frame mailbox (``LatestFrame``): the capture thread
replaces a frame that inference has not taken yet (counted as dropped), and inference always takes the
newest. Latency then stays near one capture interval + one inference + output, whatever the two rates.

    camera ──capture thread──▶ [LatestFrame: 1 slot] ──inference loop (caller's thread)──▶ window
            timestamps each       newest wins,           grey, resize, engine (batch 1),    recording (VideoSink)
            frame; reconnects     stale ones dropped     colour, readout overlay            MJPEG server (latest frame)

The inference loop runs on the calling thread because GUI toolkits want their window there and Ctrl-C
arrives there. Outputs never hold inference up for long: the recorder only hands frames to x264, which
encodes on its own threads, and the MJPEG server keeps just the latest frame, which the clients' threads
JPEG-encode (once per frame) and send when it changes. Latency is measured per frame from its capture
(``time.monotonic`` when the camera delivered it) to the moment every output has it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from .errors import ConfigError, UserError
from .frames import Percentile16To8, to_gray8
from .media import VIDEO_EXTENSIONS, VideoSink, check_output, open_source
from .processor import FrameProcessor

NO_DISPLAY = "no display available; use --no-window, -o or --serve"
RECORDING_TIME_BASE = Fraction(1, 1000)  # recordings carry each frame's capture time in milliseconds


class LiveError(UserError):
    """A live source or output that cannot be used; the message is one sentence for the user."""


# ---- the mailbox between capture and inference -----------------------------------------------------------
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


# ---- sources -----------------------------------------------------------------------------------------------
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


# ---- outputs -----------------------------------------------------------------------------------------------
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

    def show(self, rgb: np.ndarray) -> bool:
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

    def write(self, rgb: np.ndarray, captured: float) -> None:
        if self._t0 is None:
            self._t0 = captured
        pts = max(round((captured - self._t0) * 1000), self._last_pts + 1)  # strictly increasing, as muxers need
        self.sink.write(rgb, pts, RECORDING_TIME_BASE)
        self._last_pts = pts

    def close(self) -> None:
        """Finalise: flush the encoder and rename the temporary file into place (a complete, playable file)."""
        self.sink.close(keep=True)


def parse_serve_address(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1) -> (host, port); port 0 picks a free one."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{value!r} is not an address like 127.0.0.1:8080") from None
    return host, number


class MjpegServer:
    """``--serve``: the shown frames as MJPEG (``multipart/x-mixed-replace``) at ``http://HOST:PORT/stream.mjpg``,
    with a viewer page at ``/`` and the latest still at ``/frame.jpg``.

    Only the newest frame is kept; each client's thread JPEG-encodes it (once per frame, shared between
    clients) and sends it when it changes, so a slow client skips frames instead of holding anyone up.
    """

    BOUNDARY = "ir2vis-frame"

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, quality: int = 80):
        self.quality = quality
        self.closed = False
        self._rgb: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        try:
            self.httpd = ThreadingHTTPServer((host, port), _MjpegHandler)
        except OSError as exc:
            raise LiveError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.httpd.mjpeg = self
        self.address: tuple[str, int] = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="ir2vis-mjpeg", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    def publish(self, rgb: np.ndarray) -> None:
        """Make ``rgb`` (not modified afterwards) the frame clients get next; returns at once."""
        with self._cond:
            self._rgb = rgb
            self._seq += 1
            self._cond.notify_all()

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of a frame newer than ``after``; None on timeout or shutdown."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.closed or self._seq > after, timeout) or self.closed:
                return None
            seq, rgb = self._seq, self._rgb
        with self._encode_lock:
            if self._jpeg is None or self._jpeg[0] != seq:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                self._jpeg = (seq, buf.tobytes())
            return self._jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


_VIEWER_PAGE = (b"<!doctype html><title>ir2vis-stream live</title>"
                b"<body style='margin:0;background:#111'><img src='/stream.mjpg' style='width:100%'></body>")


class _MjpegHandler(BaseHTTPRequestHandler):
    server_version = "ir2vis-stream"
    timeout = 10  # a client that stops reading is dropped instead of keeping its thread forever

    def do_GET(self):
        hub: MjpegServer = self.server.mjpeg
        path = self.path.split("?", 1)[0]
        try:
            if path == "/":
                self._send(200, "text/html; charset=utf-8", _VIEWER_PAGE)
            elif path == "/frame.jpg":
                got = hub.next_jpeg(0, timeout=5.0)
                if got is None:
                    self._send(503, "text/plain", b"no frame yet\n")
                else:
                    self._send(200, "image/jpeg", got[1])
            elif path == "/stream.mjpg":
                self._stream(hub)
            else:
                self._send(404, "text/plain", b"not found; the stream is at /stream.mjpg\n")
        except OSError:  # the client went away (broken pipe, reset, timeout)
            pass

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, hub: MjpegServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={MjpegServer.BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seq = 0
        while not hub.closed:
            got = hub.next_jpeg(seq, timeout=1.0)
            if got is None:
                continue
            seq, jpeg = got
            head = (f"--{MjpegServer.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
            self.wfile.write(head + jpeg + b"\r\n")

    def log_message(self, format, *args):  # the terminal belongs to the latency readout
        pass


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


# ---- statistics ----------------------------------------------------------------------------------------------
class Reservoir:
    """A uniform random sample of at most ``size`` of the values added (Vitter's algorithm R), kept in the
    order they came: a session that runs for days holds ``size`` numbers, and its percentiles stay those of
    the whole session to within sampling error (about 1 percentile point at the default size)."""

    def __init__(self, size: int = 4096, seed: int = 0):
        import random

        self.size, self.count = size, 0
        self._items: list[tuple[int, float]] = []  # (arrival number, value)
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        if len(self._items) < self.size:
            self._items.append((self.count, value))
        else:
            j = self._rng.randrange(self.count)
            if j < self.size:
                self._items[j] = (self.count, value)

    @property
    def values(self) -> list[float]:
        return [v for _, v in sorted(self._items)]

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class LiveStats:
    """What a session did; ``latencies`` / ``infer_times`` are per shown frame, in order, in seconds: all of them
    for the first 4,096 frames, then a uniform sample of that many (``Reservoir``), so memory stays bounded."""

    source: str = ""
    engine: str = ""
    infer_size: tuple[int, int] | None = None
    output: str | None = None
    url: str | None = None
    shown: int = 0
    captured: int = 0
    dropped: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    end: str = ""  # "source ended", "source lost", "stopped", "interrupted", "time limit", "frame limit"
    _latencies: Reservoir = field(default_factory=Reservoir, repr=False)
    _infer_times: Reservoir = field(default_factory=lambda: Reservoir(seed=1), repr=False)
    _recent: deque = field(default_factory=deque, repr=False)  # (output time, latency) over the last second

    @property
    def latencies(self) -> list[float]:
        return self._latencies.values

    @property
    def infer_times(self) -> list[float]:
        return self._infer_times.values

    def add(self, latency: float, infer_time: float, now: float) -> None:
        self.shown += 1
        self._latencies.add(latency)
        self._infer_times.add(infer_time)
        self._recent.append((now, latency))
        while self._recent and self._recent[0][0] < now - 1.0:
            self._recent.popleft()

    @staticmethod
    def _ms(values, q: float) -> float:
        return float(np.percentile(values, q)) * 1000 if len(values) else float("nan")

    @property
    def p50_ms(self) -> float:
        return self._ms(self.latencies, 50)

    @property
    def p95_ms(self) -> float:
        return self._ms(self.latencies, 95)

    @property
    def fps(self) -> float:
        return self.shown / self.seconds if self.seconds > 0 else 0.0

    def readout(self) -> str:
        """The last second: output rate and latency percentiles, with all drops so far (overlay and terminal)."""
        recent = [lat for _, lat in self._recent]
        if not recent:
            return f"0 fps | dropped {self.dropped}"
        return (f"{len(recent)} fps | latency p50 {self._ms(recent, 50):.0f} ms, p95 {self._ms(recent, 95):.0f} ms"
                f" | dropped {self.dropped}")

    def summary(self) -> str:
        if not self.shown:
            return f"no frames shown from {self.source} ({self.end})"
        size = f", {self.infer_size[0]}x{self.infer_size[1]}" if self.infer_size else ""
        outputs = ", ".join(o for o in (self.output, self.url) if o)
        return (f"{self.shown} frames shown in {self.seconds:.1f} s ({self.fps:.1f} fps) from {self.source}; "
                f"dropped {self.dropped} of {self.captured} captured; latency p50 {self.p50_ms:.0f} ms, "
                f"p95 {self.p95_ms:.0f} ms; inference {self._ms(self.infer_times, 50):.0f} ms"
                f" [{self.engine}{size}]" + (f" -> {outputs}" if outputs else "") + f" ({self.end})")


# ---- the session ---------------------------------------------------------------------------------------------
class LiveSession:
    """One live run: ``LiveSession(source, engine, ...).run(max_seconds=..., max_frames=...)`` -> ``LiveStats``.

    ``source``: camera index / device / URL / file path (see ``open_reader``) or a ``FrameReader``;
    ``engine``: an ``Engine`` (or any callable with ``.device``); ``infer_size``: see ``processor.resolve_infer_size``.
    Outputs: ``window``; ``output`` (a video path) records what is shown; ``serve`` = (host, port) starts the
    MJPEG server (``server_address`` has the bound port once ``ready`` is set). ``realtime`` paces a file at
    its own timestamps like a camera; without it a file goes as fast as inference and nothing is dropped.
    A live source that stops delivering is reopened ``retries`` times (waits of ``retry_delay`` doubling)
    before the session ends with ``end == "source lost"``. ``on_tick(stats)`` is called about once a second,
    ``on_message(text)`` for events worth a line (reconnects, the server's address).
    """

    def __init__(self, source, engine, *, infer_size=None, output: str | os.PathLike | None = None,
                 overwrite: bool = False, serve: tuple[str, int] | None = None, window: bool = False,
                 overlay: bool = True, realtime: bool = False, retries: int = 3, retry_delay: float = 0.5,
                 crf: int = 20, preset: str = "veryfast", on_tick: Callable[[LiveStats], None] | None = None,
                 on_message: Callable[[str], None] | None = None):
        self.output = None
        if output is not None:
            if Path(output).suffix.lower() not in VIDEO_EXTENSIONS:
                raise LiveError(f"a live recording is a video file: give {output} an .mp4, .mkv or .mov name")
            self.output, _ = check_output(output, overwrite)
        self.reader: FrameReader = open_reader(source) if isinstance(source, (str, os.PathLike)) else source
        self.engine = engine
        self.infer_size_spec = infer_size
        self.overwrite, self.crf, self.preset = overwrite, crf, preset
        self.serve, self.window, self.overlay, self.realtime = serve, window, overlay, realtime
        self.retries, self.retry_delay = retries, retry_delay
        self.on_tick, self.on_message = on_tick, on_message
        self.ready = threading.Event()  # set once every output is open and frames flow
        self.server_address: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._stop_reason = "stopped"
        self._capture_end = "source ended"
        self._capture_error: BaseException | None = None
        self.reconnects = 0

    def request_stop(self, reason: str = "stopped") -> None:
        self._stop_reason = reason
        self._stop.set()

    def _say(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)

    # ---- capture thread ----------------------------------------------------------------------------------
    def _capture(self, slot: LatestFrame) -> None:
        reader, index, clock_offset = self.reader, 0, None
        try:
            while not self._stop.is_set():
                got = reader.read()
                if got is None:
                    if not reader.live:
                        self._capture_end = "source ended"
                        break
                    if self._reconnect():
                        continue
                    self._capture_end = "source lost"
                    break
                image, media_time = got
                if self.realtime and media_time is not None:  # deliver each frame when a camera would have
                    if clock_offset is None:
                        clock_offset = time.monotonic() - media_time
                    delay = clock_offset + media_time - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                slot.put(CapturedFrame(index, image, time.monotonic()))
                index += 1
        except BaseException as exc:  # handed to the inference loop, which re-raises it
            self._capture_error = exc
        finally:
            slot.close()

    def _reconnect(self) -> bool:
        for attempt in range(1, self.retries + 1):
            self._say(f"{self.reader.name}: no frame; reconnecting ({attempt}/{self.retries})")
            if self._stop.wait(self.retry_delay * 2 ** (attempt - 1)):
                return False
            if self.reader.open():
                self.reconnects += 1
                self._say(f"{self.reader.name}: reconnected")
                return True
        return False

    # ---- the session ---------------------------------------------------------------------------------------
    def run(self, max_seconds: float | None = None, max_frames: int | None = None) -> LiveStats:
        """Show frames until the source ends or is lost, ``q``/Ctrl-C/``request_stop``, or a limit; the recording
        is finalised whatever the ending. Raises LiveError (or MediaError) when a source or output cannot open."""
        reader = self.reader
        if not reader.open():
            raise LiveError(f"cannot open {reader.name} (unreachable or wrong address)" if getattr(reader, "url", False)
                            else f"cannot open {reader.name} (absent or busy)")
        window = server = recorder = None
        capture = None
        slot = LatestFrame(lossless=not reader.live and not self.realtime)
        stats = LiveStats(source=reader.name, engine=self.engine.describe() if hasattr(self.engine, "describe")
                          else type(self.engine).__name__)
        try:
            width, height = reader.size
            frames = FrameProcessor(self.engine, self.infer_size_spec)
            stats.infer_size = frames.size_for(width, height)
            # The first call of an engine sets itself up (allocations, autotuning); not on a live frame's time.
            frames([np.zeros((height, width), np.uint8)])
            if self.window:
                window = Window()
            if self.serve is not None:
                server = MjpegServer(*self.serve)
                self.server_address = server.address
                stats.url = server.url + "stream.mjpg"
                self._say(f"serving MJPEG at {stats.url} (viewer page {server.url})")
            if self.output is not None:
                recorder = Recorder(self.output, width, height, reader.fps, overwrite=self.overwrite,
                                    crf=self.crf, preset=self.preset)
                stats.output = str(self.output)
            capture = threading.Thread(target=self._capture, args=(slot,), name="ir2vis-capture", daemon=True)
            t_start = time.monotonic()
            next_tick = t_start + 1.0
            capture.start()
            self.ready.set()
            stretch = Percentile16To8()
            try:
                while True:
                    if self._stop.is_set():
                        stats.end = self._stop_reason
                        break
                    if max_seconds is not None and time.monotonic() - t_start >= max_seconds:
                        stats.end = "time limit"
                        break
                    frame = slot.take(timeout=0.05)
                    if frame is None:
                        if slot.finished:
                            if self._capture_error is not None:
                                raise self._capture_error
                            stats.end = self._capture_end
                            break
                        continue
                    t_infer = time.perf_counter()
                    prepared = frames.prepare(to_gray8(frame.image, stretch))
                    rgb = frames.infer([prepared.small])[0]
                    infer_time = time.perf_counter() - t_infer
                    rgb = frames.finish(prepared, rgb)
                    stats.dropped = slot.dropped
                    if self.overlay:
                        draw_readout(rgb, stats.readout())
                    if window is not None and not window.show(rgb):
                        self.request_stop()
                    if recorder is not None:
                        recorder.write(rgb, frame.captured)
                    if server is not None:
                        server.publish(rgb)
                    now = time.monotonic()
                    stats.add(now - frame.captured, infer_time, now)
                    if now >= next_tick:
                        next_tick = now + 1.0
                        if self.on_tick is not None:
                            self.on_tick(stats)
                    if max_frames is not None and stats.shown >= max_frames:
                        stats.end = "frame limit"
                        break
            except KeyboardInterrupt:  # Ctrl-C is the ordinary way to end a live view
                stats.end = "interrupted"
            stats.seconds = time.monotonic() - t_start
        finally:
            self._stop.set()
            slot.close()
            if capture is not None:
                capture.join(timeout=10)  # a stream read gives up after 5 s (CameraReader's read timeout)
            if capture is None or not capture.is_alive():  # never release a capture another thread is reading
                reader.close()
            if window is not None:
                window.close()
            if server is not None:
                server.close()
            if recorder is not None:
                recorder.close()
        stats.captured, stats.dropped, stats.reconnects = slot.captured, slot.dropped, self.reconnects
        if stats.end == "source lost":
            kept = f"; the recording {self.output} is complete up to then" if recorder and recorder.frames else ""
            self._say(f"{reader.name} lost: no frame after {self.retries} reconnect attempts{kept}")
        return stats


__all__ = ["CameraReader", "FileReader", "LatestFrame", "LiveError", "LiveSession", "LiveStats", "MjpegServer",
           "NO_DISPLAY", "display_available", "open_reader", "parse_serve_address"]
