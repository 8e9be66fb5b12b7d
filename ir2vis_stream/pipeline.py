"""The streaming job: decode -> batched inference -> encode, each stage in its own thread.

    source ──decode thread──▶ [bounded queue] ──inference thread──▶ [bounded queue] ──encode thread──▶ sink
              grey, stretch,                     batch, submit (to device,            to the sink's frame:
              prepare                            engine, to uint8), result            finish; encode

The three steps in the middle are one ``FrameProcessor``'s (``processor.py``): the same path ``live`` and
``bench`` colourise with.

The queues are bounded, so a slow stage makes the others wait (back-pressure) instead of filling memory;
FFmpeg decode/encode and the engine release the GIL, so the stages overlap. There is exactly one thread
per stage and FIFO queues between them, so frames leave in the order they came.

Failure: the first exception in any stage aborts all stages and is re-raised from ``Pipeline.run``.
Interruption: ``request_stop()`` (and a first Ctrl-C) stops decoding; the frames already in flight are
finished and the output is finalised with them. A second Ctrl-C aborts (KeyboardInterrupt propagates). The pipeline knows the engine only
through its ``FrameProcessor``.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from .engines.base import Engine
from .errors import ConfigError
from .frames import Percentile16To8, to_gray8
from .hardware import release_torch_workers
from .media import SourceFrame
from .processor import Batch, FrameProcessor, Prepared, resolve_infer_size

__all__ = ["Pipeline", "PipelineAborted", "RunResult", "resolve_infer_size"]

_END = object()


class PipelineAborted(Exception):
    pass


@dataclass
class StageClock:
    """Time a stage spends working (not waiting on its queues): ``with clock.timed(): ...``. One clock per
    stage thread, so the span's start can live on the clock."""

    busy: float = 0.0
    _start: float = 0.0

    def timed(self) -> StageClock:
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.busy += time.perf_counter() - self._start


@dataclass
class RunResult:
    frames: int
    seconds: float
    busy: dict[str, float]  # stage -> fraction of wall time spent working
    interrupted: bool = False
    truncated: bool = False
    decode_error: str | None = None
    infer_size: tuple[int, int] | None = None
    engine: str = ""
    engine_reason: str = ""
    output: str = ""
    expected_frames: int | None = None
    expected_frames_exact: bool = False
    latencies: list[float] | None = None  # per frame, seconds from decoded to written (``record_latency``)

    @property
    def ended_early(self) -> bool:
        """The input broke off: a decode error, or fewer frames than the container's index promised."""
        short = self.expected_frames_exact and self.expected_frames and self.frames < self.expected_frames
        return self.truncated or (bool(short) and not self.interrupted)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        busy = ", ".join(f"{k} {v:.0%}" for k, v in self.busy.items())
        return (f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps) -> {self.output}"
                f" [{self.engine}, {self.infer_size[0]}x{self.infer_size[1]}; busy: {busy}]"
                if self.infer_size else f"{self.frames} frames in {self.seconds:.1f} s")


@dataclass
class _Work:
    index: int
    pts: int | None
    time_base: Fraction
    frame: Prepared  # what the processor takes (see ``Prepared``)
    decoded_at: float  # perf_counter() when the decoder handed the frame over, for per-frame latency


def _same_shape_runs(batch: list[_Work]) -> list[list[_Work]]:
    """``batch`` cut into runs of consecutive frames of one inference size, in order."""
    runs: list[list[_Work]] = []
    for w in batch:
        if runs and runs[-1][0].frame.small.shape == w.frame.small.shape:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


class Pipeline:
    """One colourisation job over a source and a sink; reusable, not re-entrant.

    ``engine``: an ``Engine`` (or any callable with ``.device``); ``infer_size``: see ``resolve_infer_size``;
    ``batch_size``: frames per engine call; ``queue_frames``: capacity of each queue in frames;
    ``max_frames``: stop after this many frames (a preview of a long video); ``record_latency``: keep each
    frame's time from decoded to written in ``RunResult.latencies`` (off by default: a live stream runs for hours);
    ``temporal``: the strength of the flow-guided temporal filter (``ir2vis_stream.temporal``), None for none,
    ``"auto"`` for ``processor.resolve_temporal``'s rule;
    ``grid_period``: the up-sampling grid to filter out of the engine's output (``gridfilter``), None for none;
    ``on_device``: pre- and post-processing on the engine's device (``FrameProcessor``; default: on CUDA).
    """

    def __init__(self, engine: Engine, *, infer_size=None, batch_size: int = 4, side_by_side: bool = False,
                 queue_frames: int | None = None, max_frames: int | None = None, record_latency: bool = False,
                 temporal: float | None = None, grid_period: int | None = None, on_device: bool | None = None):
        if batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        self.engine = engine
        self.infer_size_spec = infer_size
        self.batch_size = batch_size
        self.side_by_side = side_by_side
        self.queue_frames = queue_frames or 2 * batch_size + 2
        self.max_frames = max_frames
        self.record_latency = record_latency
        self.frames = FrameProcessor(engine, infer_size, side_by_side=side_by_side, temporal=temporal,
                                     grid_period=grid_period, on_device=on_device)
        self._stop = threading.Event()  # graceful: stop reading input, finish what is in flight
        self._abort = threading.Event()  # hard: drop everything
        self._errors: list[BaseException] = []
        self.done = 0  # frames written, for progress display

    def request_stop(self) -> None:
        """Stop the job in progress gracefully (no more input; what is in flight is finished); the next
        ``run`` starts afresh."""
        self._stop.set()

    def abort(self) -> None:
        self._abort.set()

    # ---- queue helpers that give up when the job is aborted ----------------------------------------------
    def _put(self, q: queue.Queue, item) -> None:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise PipelineAborted

    def _get(self, q: queue.Queue):
        while not self._abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        raise PipelineAborted

    def _stage(self, name: str, fn: Callable, *args) -> threading.Thread:
        def body():
            try:
                fn(*args)
            except PipelineAborted:
                pass
            except BaseException as exc:  # any failure stops every stage
                self._errors.append(exc)
                self._abort.set()

        return threading.Thread(target=body, name=f"ir2vis-{name}", daemon=True)

    # ---- stages ----------------------------------------------------------------------------------------------
    def _decode(self, source, q_out: queue.Queue, frames: FrameProcessor, clock: StageClock) -> None:
        stretch = Percentile16To8()
        it = iter(source)
        while not self._stop.is_set():
            with clock.timed():
                frame: SourceFrame | None = next(it, None)
                if frame is None or (self.max_frames is not None and frame.index >= self.max_frames):
                    break
                decoded_at = time.perf_counter()
                work = _Work(frame.index, frame.pts, frame.time_base, frames.prepare(to_gray8(frame.image, stretch)),
                             decoded_at)
            self._put(q_out, work)
        self._put(q_out, _END)

    def _infer(self, q_in: queue.Queue, q_out: queue.Queue, frames: FrameProcessor, clock: StageClock) -> None:
        # Up to ``frames.in_flight`` engine calls at once: on a GPU batch k+1 is submitted (uploaded, queued)
        # before batch k is waited for, so copies and compute overlap; on the host ``in_flight`` is 1.
        pending: deque[tuple[list[_Work], Batch]] = deque()

        def hand_on() -> None:
            group, batch = pending.popleft()
            with clock.timed():
                results = batch.result()
            for w, out in zip(group, results):
                self._put(q_out, (w, out))

        ended = False
        while not ended:
            batch: list[_Work] = []
            while len(batch) < self.batch_size:
                if pending and q_in.empty():  # no next batch yet (a live source): do not hold results back
                    while pending:
                        hand_on()
                item = self._get(q_in)
                if item is _END:
                    ended = True
                    break
                batch.append(item)
            for group in _same_shape_runs(batch):  # one engine call per run of equally sized frames
                with clock.timed():
                    pending.append((group, frames.submit([w.frame.small for w in group])))
                while len(pending) >= frames.in_flight:
                    hand_on()
        while pending:
            hand_on()
        self._put(q_out, _END)

    def _encode(self, q_in: queue.Queue, sink, frames: FrameProcessor, clock: StageClock,
                latencies: list[float] | None) -> None:
        # frames arrive here in order: the temporal filter (in ``finish``) runs here, off the busy inference thread
        while True:
            item = self._get(q_in)
            if item is _END:
                return
            w, rgb = item
            with clock.timed():
                sink.write(frames.finish(w.frame, rgb), w.pts, w.time_base)
            if latencies is not None:
                latencies.append(time.perf_counter() - w.decoded_at)
            self.done += 1

    # ---- the job ---------------------------------------------------------------------------------------------
    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Size of the frames the sink receives for a (width x height) input."""
        return self.frames.output_size(width, height)

    def run(self, source, sink, on_tick: Callable[[int], None] | None = None) -> RunResult:
        """Process all of ``source`` into ``sink`` (which the caller opens and closes); returns counts and timing."""
        info = source.info
        frames = self.frames
        frames.reset()  # a new job is a new sequence for the temporal filter
        frames.output = getattr(sink, "format", None)  # a video sink's YUV: the processor converts to it
        size = frames.size_for(info.width, info.height)
        clocks = {"decode": StageClock(), "infer": StageClock(), "encode": StageClock()}
        q_frames: queue.Queue = queue.Queue(maxsize=self.queue_frames)
        q_results: queue.Queue = queue.Queue(maxsize=self.queue_frames)
        latencies: list[float] | None = [] if self.record_latency else None
        threads = [
            self._stage("decode", self._decode, source, q_frames, frames, clocks["decode"]),
            self._stage("infer", self._infer, q_frames, q_results, frames, clocks["infer"]),
            self._stage("encode", self._encode, q_results, sink, frames, clocks["encode"], latencies),
        ]
        # a new job: a stop, an abort or an error of the last run on this Pipeline does not carry over
        self._stop.clear()
        self._abort.clear()
        self._errors.clear()
        self.done = 0
        # this thread only waits from here: its OpenMP workers (from loading the model, say) beside the inference
        # thread's would make every parallel region of the model wait for a wake-up (measured: docs/performance.md)
        release_torch_workers()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        interrupts = 0
        while any(t.is_alive() for t in threads):
            try:
                for t in threads:
                    t.join(timeout=0.1)
                if on_tick is not None:
                    on_tick(self.done)
            except KeyboardInterrupt:  # first Ctrl-C: finish what is in flight; second: drop everything
                interrupts += 1
                self.request_stop()
                if interrupts > 1:
                    self._abort.set()
                    # The decode and encode threads hold the source's and sink's FFmpeg objects, which the
                    # caller closes as soon as this returns: wait for them (they notice the abort within a
                    # queue timeout, or when the call in hand returns). The inference thread holds neither;
                    # an engine call cannot be interrupted, so it is left to end on its own (a daemon).
                    decode, infer, encode = threads
                    for t in (decode, encode):
                        while t.is_alive():
                            t.join(timeout=0.1)
                    infer.join(timeout=1)
                    raise
        seconds = time.perf_counter() - t0
        if self._errors:
            raise self._errors[0]
        if self._abort.is_set():
            raise PipelineAborted("aborted")
        return RunResult(
            frames=self.done, seconds=seconds,
            busy={k: min(1.0, c.busy / seconds) if seconds else 0.0 for k, c in clocks.items()},
            interrupted=self._stop.is_set(), truncated=bool(getattr(source, "truncated", False)),
            decode_error=getattr(source, "decode_error", None), infer_size=size,
            engine=frames.describe(),
            engine_reason=getattr(self.engine, "reason", ""),
            expected_frames=min(info.frames, self.max_frames or info.frames) if info.frames else self.max_frames,
            expected_frames_exact=info.frames_exact, latencies=latencies,
        )
