"""``LiveSession``: capture thread -> mailbox -> inference loop -> outputs, with reconnects and limits."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..frames import Percentile16To8, to_gray8
from ..media import VIDEO_EXTENSIONS, check_output
from ..processor import FrameProcessor
from .errors import LiveError
from .mailbox import CapturedFrame, LatestFrame
from .mjpeg import MjpegServer
from .outputs import Output, Recorder, Window, draw_readout
from .sources import FrameReader, open_reader
from .stats import LiveStats


class LiveSession:
    """One live run: ``LiveSession(source, engine, ...).run(max_seconds=..., max_frames=...)`` -> ``LiveStats``.

    ``source``: camera index / device / URL / file path (see ``open_reader``) or a ``FrameReader``;
    ``engine``: an ``Engine`` (or any callable with ``.device``); ``infer_size``: see ``processor.resolve_infer_size``;
    ``grid_period``: the up-sampling grid to filter out of the engine's output (``gridfilter``), None for none.
    Outputs: ``window``; ``output`` (a video path) records what is shown; ``serve`` = (host, port) starts the
    MJPEG server (``server_address`` has the bound port once ``ready`` is set). ``realtime`` paces a file at
    its own timestamps like a camera; without it a file goes as fast as inference and nothing is dropped.
    A live source that stops delivering is reopened ``retries`` times (waits of ``retry_delay`` doubling)
    before the session ends with ``end == "source lost"``. ``on_tick(stats)`` is called about once a second,
    ``on_message(text)`` for events worth a line (reconnects, the server's address).
    """

    def __init__(self, source, engine, *, infer_size=None, grid_period: int | None = None,
                 output: str | os.PathLike | None = None,
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
        self.grid_period = grid_period
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
        outputs: list[Output] = []  # window, MJPEG server, recording
        recorder = None
        capture = None
        slot = LatestFrame(lossless=not reader.live and not self.realtime)
        stats = LiveStats(source=reader.name, engine=self.engine.describe() if hasattr(self.engine, "describe")
                          else type(self.engine).__name__)
        try:
            width, height = reader.size
            frames = FrameProcessor(self.engine, self.infer_size_spec, grid_period=self.grid_period)
            stats.infer_size = frames.size_for(width, height)
            # The first call of an engine sets itself up (allocations, autotuning); not on a live frame's time.
            frames([np.zeros((height, width), np.uint8)])
            if self.window:
                outputs.append(Window())
            if self.serve is not None:
                server = MjpegServer(*self.serve)
                outputs.append(server)
                self.server_address = server.address
                stats.url = server.url + "stream.mjpg"
                self._say(f"serving MJPEG at {stats.url} (viewer page {server.url})")
            if self.output is not None:
                recorder = Recorder(self.output, width, height, reader.fps, overwrite=self.overwrite,
                                    crf=self.crf, preset=self.preset)
                outputs.append(recorder)
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
                    for out in outputs:
                        if not out.write(rgb, frame.captured):
                            self.request_stop()
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
            with contextlib.ExitStack() as closing:  # every output closes, even if another's close fails;
                for out in reversed(outputs):  # the recording last
                    closing.callback(out.close)
        stats.captured, stats.dropped, stats.reconnects = slot.captured, slot.dropped, self.reconnects
        if stats.end == "source lost":
            kept = f"; the recording {self.output} is complete up to then" if recorder and recorder.frames else ""
            self._say(f"{reader.name} lost: no frame after {self.retries} reconnect attempts{kept}")
        return stats
