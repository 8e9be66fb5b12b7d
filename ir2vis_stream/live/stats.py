"""Live statistics: latency percentiles from a bounded sample, rates, drops, the one-line readout."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


RECENT_MIN = 3  # frames the readout's window keeps however slow the output is


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
    _recent: deque = field(default_factory=deque, repr=False)  # (output time, latency): the readout's window

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
        # the last second, but never fewer than the last RECENT_MIN frames: below 1 fps a second holds none
        while len(self._recent) > RECENT_MIN and self._recent[0][0] < now - 1.0:
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
        """The last second (at least the last few frames): output rate and latency percentiles, with all drops so
        far (overlay and terminal). The rate is frames over the time they span, so a slow model reads 0.3 fps,
        not 0 or 1."""
        recent = [lat for _, lat in self._recent]
        if not recent:
            return f"0 fps | dropped {self.dropped}"
        span = self._recent[-1][0] - self._recent[0][0]
        fps = (len(recent) - 1) / span if span > 0 else None  # one frame shown so far: no rate yet
        rate = "-" if fps is None else f"{fps:.2f}" if fps < 1 else f"{fps:.1f}" if fps < 10 else f"{fps:.0f}"
        return (f"{rate} fps | latency p50 {self._ms(recent, 50):.0f} ms, p95 {self._ms(recent, 95):.0f} ms"
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
