"""``bench speed``'s report: its rows, its JSON form and its table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")


@dataclass
class Latency:
    """Per-frame latency percentiles in milliseconds."""

    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        p50, p95, p99 = np.percentile(np.asarray(seconds) * 1000.0, (50, 95, 99))
        return cls(float(p50), float(p95), float(p99))


@dataclass
class NaiveResult:
    fps: float
    latency_ms: Latency
    description: str = "OpenCV read -> model (fp32, 1 frame per call) -> OpenCV write (mp4v)"


@dataclass
class SpeedRow:
    """One engine at one batch size."""

    engine: str  # Engine.describe(), e.g. "torch cpu fp32"
    batch_size: int
    startup_s: float  # engine build + first batch (on an empty cache with cold=True)
    stage_fps: dict[str, float]
    end_to_end_fps: float
    latency_ms: Latency
    stage_busy: dict[str, float]  # fraction of the end-to-end wall time each pipeline thread worked
    peak_gpu_mib: float | None
    flicker_ratio: float | None  # None for an input that does not change
    vs_naive: float | None
    engine_reason: str = ""  # why ``auto`` picked it (empty when the engine was named)
    full_speed_s: float | None = None  # until the steady engine runs (a compiled package built and swapped in)
    warm_startup_s: float | None = None  # a second engine of the same kind, on the cache the first one filled

    @property
    def efficiency(self) -> float:
        return self.end_to_end_fps / self.stage_fps["inference"]


@dataclass
class SpeedReport:
    input: str
    input_size: tuple[int, int]
    infer_size: tuple[int, int]
    frames: int
    model: str
    device: str
    machine: str
    date: str
    crf: int
    preset: str
    naive: NaiveResult | None
    load_average: float | None = None  # 1-minute load average when the benchmark started
    cold_cache: bool = False  # whether each engine's first start found an empty cache
    grid_period: int | None = None  # the grid filter in the frame path (as run has it; not in the naive loop)
    rows: list[SpeedRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for row, rd in zip(self.rows, d["rows"]):
            rd["efficiency"] = row.efficiency
        return d


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def speed_table(report: SpeedReport):
    """The summary as one rich Table: a row per engine and batch size, the naive loop last."""
    from rich.table import Table

    w, h = report.input_size
    load = f"; load average {report.load_average} at start" if report.load_average is not None else ""
    table = Table(title=f"bench speed: {report.frames} frames of {report.input} ({w}x{h}, inference at "
                        f"{report.infer_size[0]}x{report.infer_size[1]}), model: {report.model}",
                  caption=f"frames/s of each stage alone and end to end; start: engine build + first batch "
                          f"({'empty cache' if report.cold_cache else 'cache as found'}), full: until steady speed, "
                          f"warm: start on the filled cache; latency: decoded -> written, per frame; "
                          f"flicker: output / input frame-to-frame change. {report.machine}{load}; {report.date}"
                          + "".join(f"\nauto picked {r.engine}: {r.engine_reason}"
                                    for r in report.rows if r.engine_reason))
    for col in ("engine", "batch", "start s", "full s", "warm s", "decode", "preproc", "infer", "postproc", "encode", "end to end", "x naive",
                "p50 ms", "p95 ms", "p99 ms", "GPU MiB", "flicker"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in report.rows:
        table.add_row(r.engine, str(r.batch_size), f"{r.startup_s:.1f}", _seconds(r.full_speed_s),
                      _seconds(r.warm_startup_s), *(f"{r.stage_fps[s]:.1f}" for s in STAGES),
                      f"[bold]{r.end_to_end_fps:.1f}[/bold]", f"{r.vs_naive:.2f}" if r.vs_naive else "-",
                      f"{r.latency_ms.p50:.0f}", f"{r.latency_ms.p95:.0f}", f"{r.latency_ms.p99:.0f}",
                      f"{r.peak_gpu_mib:.0f}" if r.peak_gpu_mib is not None else "-",
                      f"{r.flicker_ratio:.2f}" if r.flicker_ratio is not None else "-")
    if report.naive:
        nv = report.naive
        table.add_row("naive OpenCV loop (fp32)", "1", "-", "-", "-", *("-" * 5), f"{nv.fps:.1f}", "1.00", f"{nv.latency_ms.p50:.0f}",
                      f"{nv.latency_ms.p95:.0f}", f"{nv.latency_ms.p99:.0f}", "-", "-")
    return table
