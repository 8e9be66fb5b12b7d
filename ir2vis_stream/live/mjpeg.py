"""``--serve``: the live frames as MJPEG over HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from ..errors import ConfigError
from .errors import LiveError


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

    def write(self, rgb: np.ndarray, captured: float | None = None) -> bool:
        """Make ``rgb`` (not modified afterwards) the frame clients get next; returns at once."""
        with self._cond:
            self._rgb = rgb
            self._seq += 1
            self._cond.notify_all()
        return True

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
