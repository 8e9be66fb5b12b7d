"""``bench speed``: how fast each stage is alone, how fast the whole job is, and how long one frame takes.

All figures come from one process, one measurement after another, on the same frames of the same clip, so
their ratios are comparable. Absolute figures need an otherwise idle machine: the report records the load
average at the start. On a machine shared with other work, run with ``OMP_WAIT_POLICY=PASSIVE``: torch's
OpenMP threads otherwise busy-wait for descheduled partners (measured on 2 cores beside a training run: a
small generator at 1.3 s per frame instead of 25 ms), and the figures mean nothing. Per engine and batch size:

- stage figures, frames per second of that stage alone, each timed on frames held in memory:
  ``decode`` (PyAV/FFmpeg, threaded, to raw frames), ``preprocess`` (to 8-bit grey, resize to the inference
  size, batch, copy to the device), ``inference`` (the engine on batches already on the device, synchronised
  on CUDA; one untimed warm-up batch first), ``postprocess`` (to 8-bit RGB on the host, resize back to the
  video's size), ``encode`` (x264 with ``run``'s crf and preset, on the model's own outputs);
- ``startup``: seconds to build the engine and run its first batch, as a user's ``run`` would (an ONNX export
  or TensorRT plan build, or their cache load; the compiled engine answers at once, running eager while its
  package builds in the background). With ``cold=True`` the engine starts on an empty cache, as on a new
  machine; otherwise on the cache as found. ``full_speed``: seconds until the engine runs at its steady speed
  (the compiled engine's package built and swapped in; the same as ``startup`` for the others: every
  figure after it is measured at full speed); ``warm``: a second engine of the same kind started after
  that, on the cache the first one filled. Paid once per process, not per frame, so reported apart;
- ``end_to_end``: the ``Pipeline`` that ``run`` uses, with that same warm engine, video in and H.264 out, the
  stages overlapping in their threads; ``efficiency`` is end to end over inference alone (how much of the
  engine's speed survives the rest of the job);
- per-frame latency (p50/p95/p99): from the frame leaving the decoder to it being written. On a file the
  decoder runs ahead, so this includes the time a frame waits in the pipeline's bounded queues;
- peak GPU memory (CUDA only) during the end-to-end run;
- the flicker ratio of the model's outputs against the input (``metrics.FlickerMeter``).

The naive loop is what a user would write first, on the same clip, model and device: OpenCV reads a frame,
the model (fp32, one frame per call, ``torch.no_grad``) colourises it, OpenCV writes it (its default mp4v
codec, MPEG-4 Part 2). Each row's ``vs_naive`` is its end-to-end fps over the naive loop's.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn

from ..checkpoint import default_checkpoint_path, load_checkpoint
from ..engines import ENGINES, create_engine
from ..frames import Percentile16To8, resize, to_gray8
from ..hardware import resolve_device
from ..media import MediaError, VideoSink, VideoSource
from ..metrics import FlickerMeter, flicker_ratio
from ..pipeline import Pipeline
from ..processor import FrameProcessor, resolve_infer_size
from ..files import atomic_write
from .report import BenchError, check_report_path, load_average, machine_description, now_iso

STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")
RANDOM_MODEL = "default configuration, random weights (costs what the trained model costs)"


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
    rows: list[SpeedRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for row, rd in zip(self.rows, d["rows"]):
            rd["efficiency"] = row.efficiency
        return d


# ---- the measurements ------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decode_frames(source: VideoSource, frames: int) -> tuple[float, list[np.ndarray], list[int | None]]:
    """Decode the first ``frames`` frames of ``source`` into memory and close it: (fps, raw frames, their pts)."""
    raws, pts = [], []
    try:
        t = time.perf_counter()
        for f in source:
            if f.index >= frames:
                break
            raws.append(f.image)
            pts.append(f.pts)
        seconds = time.perf_counter() - t
    finally:
        source.close()
    if not raws:
        raise MediaError(f"no frames could be decoded from {source.path}")
    return len(raws) / seconds, raws, pts


def start_engine(name: str, model: nn.Module, device: torch.device, precision: str, raws: list[np.ndarray],
                 size: tuple[int, int], batch_size: int, log: Callable[[str], None]):
    """Build engine ``name`` for this batch and size and run one batch: (engine, seconds it took)."""
    t = time.perf_counter()
    engine = create_engine(name, model, device, precision, batch=batch_size, infer_hw=(size[1], size[0]), log=log)
    # first call: compilation, kernel selection, allocator growth, lazy initialisation
    FrameProcessor(engine, size).infer([resize(to_gray8(r), *size) for r in raws[:batch_size]])
    _sync(device)
    return engine, time.perf_counter() - t


def timed_start(name: str, model: nn.Module, device: torch.device, precision: str, raws: list[np.ndarray],
                size: tuple[int, int], batch_size: int, log: Callable[[str], None], cold: bool):
    """(engine at full speed, startup s, full-speed s, warm startup s): ``start_engine`` (on an empty cache
    when ``cold``), then waiting for a compiled engine's package, then a second start on the filled cache."""
    t = time.perf_counter()
    with _cache_at(tempfile.mkdtemp(prefix="ir2vis-cold-cache-") if cold else None) as filled:
        engine, startup = start_engine(name, model, device, precision, raws, size, batch_size, log)
        if hasattr(engine, "wait_ready"):
            engine.wait_ready()
        full_speed = time.perf_counter() - t
        _, warm = start_engine(name, model, device, precision, raws, size, batch_size, log)
    if filled is not None:
        import shutil

        shutil.rmtree(filled, ignore_errors=True)
    return engine, startup, max(full_speed, startup), warm


class _cache_at:
    """The package's cache (``IR2VIS_STREAM_CACHE``) and inductor's (``TORCHINDUCTOR_CACHE_DIR``, what
    compile on CUDA uses) pointed into ``path`` inside the block; nothing changes for None."""

    VARIABLES = {"IR2VIS_STREAM_CACHE": "", "TORCHINDUCTOR_CACHE_DIR": "inductor"}

    def __init__(self, path: str | None):
        self.path = path
        self.before = {k: os.environ.get(k) for k in self.VARIABLES}

    def __enter__(self):
        if self.path is not None:
            for k, sub in self.VARIABLES.items():
                os.environ[k] = str(Path(self.path) / sub)
        return self.path

    def __exit__(self, *exc):
        if self.path is None:
            return
        for k, value in self.before.items():
            if value is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = value


def process_stages(engine, raws: list[np.ndarray], size: tuple[int, int], batch_size: int,
                   on_batch: Callable[[int], None] | None = None) -> tuple[dict[str, float], list[np.ndarray]]:
    """The ``FrameProcessor``'s three steps timed apart, batch by batch, on a warm engine: (fps per stage,
    full-size RGB outputs). preprocess: grey + resize to the inference size; inference: upload, engine,
    download; postprocess: resize back."""
    frames = FrameProcessor(engine, size)
    stretch = Percentile16To8()  # temporal, as the pipeline's decode stage uses it
    spent = dict.fromkeys(("preprocess", "inference", "postprocess"), 0.0)
    outputs: list[np.ndarray] = []
    for start in range(0, len(raws), batch_size):
        chunk = raws[start:start + batch_size]
        t0 = time.perf_counter()
        prepared = [frames.prepare(to_gray8(r, stretch)) for r in chunk]
        t1 = time.perf_counter()
        rgb = frames.infer([p.small for p in prepared])  # ends on the host: no separate sync needed
        t2 = time.perf_counter()
        outputs.extend(frames.finish(p, out) for p, out in zip(prepared, rgb))
        t3 = time.perf_counter()
        spent["preprocess"] += t1 - t0
        spent["inference"] += t2 - t1
        spent["postprocess"] += t3 - t2
        if on_batch is not None:
            on_batch(len(chunk))
    return {k: len(raws) / v for k, v in spent.items()}, outputs


def encode_frames(outputs: list[np.ndarray], pts: list[int | None], info, crf: int, preset: str, folder: Path) -> float:
    """x264-encode ``outputs`` as ``run`` does (flush included); frames per second."""
    height, width = outputs[0].shape[:2]
    sink = VideoSink(folder / "encode_only.mp4", width, height, info.fps, info.time_base, crf=crf, preset=preset)
    t = time.perf_counter()
    complete = False
    try:
        for i, (rgb, p) in enumerate(zip(outputs, pts)):
            sink.write(rgb, p if p is not None else i, info.time_base)
        complete = True
    finally:
        sink.close(keep=complete)  # keeping flushes the encoder's look-ahead: part of the encoding cost
    return len(outputs) / (time.perf_counter() - t)


def end_to_end(engine, clip: Path, size: tuple[int, int], batch_size: int, frames: int, crf: int, preset: str,
               folder: Path, on_tick: Callable[[int], None] | None = None):
    """The threaded ``Pipeline`` (as ``run`` builds it) from the video to H.264, with per-frame latency."""
    source = VideoSource(clip)
    info = source.info
    sink = VideoSink(folder / "end_to_end.mp4", info.width, info.height, info.fps, info.time_base, crf=crf,
                     preset=preset)
    complete = False
    try:
        result = Pipeline(engine, infer_size=size, batch_size=batch_size, max_frames=frames,
                          record_latency=True).run(source, sink, on_tick=on_tick)
        complete = True
    finally:
        sink.close(keep=complete)
        source.close()
    return result


def naive_loop(path: Path, model: nn.Module, device: torch.device, size: tuple[int, int], frames: int,
               folder: Path, on_frame: Callable[[], None] | None = None) -> NaiveResult:
    """The loop a user writes first (see the module docstring), timed from first read to last write."""

    def open_capture() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise MediaError(f"OpenCV cannot open {path} for the naive loop")
        return cap

    model = model.to(device).eval()
    cap = open_capture()
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise MediaError(f"OpenCV cannot decode {path} for the naive loop")
    height, width = bgr.shape[:2]

    def colourise(bgr: np.ndarray) -> np.ndarray:
        grey = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), size)
        x = torch.from_numpy(grey).float().div(127.5).sub(1.0)[None, None].to(device)
        y = model(x)[0].permute(1, 2, 0)
        rgb = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
        return cv2.cvtColor(cv2.resize(rgb, (width, height)), cv2.COLOR_RGB2BGR)

    with torch.no_grad():
        colourise(bgr)  # warm-up, as the other measurements have
    cap = open_capture()
    out = folder / "naive.mp4"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS) or 30.0,
                             (width, height))
    if not writer.isOpened():
        cap.release()
        raise MediaError("OpenCV cannot write mp4v video on this machine, so the naive loop cannot run")
    latencies = []
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            while len(latencies) < frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                t_read = time.perf_counter()
                writer.write(colourise(bgr))
                latencies.append(time.perf_counter() - t_read)
                if on_frame is not None:
                    on_frame()
            seconds = time.perf_counter() - t0
    finally:
        cap.release()
        writer.release()
        out.unlink(missing_ok=True)
    if not latencies:
        raise MediaError(f"OpenCV decoded no frames of {path} for the naive loop")
    return NaiveResult(fps=len(latencies) / seconds, latency_ms=Latency.of(latencies))


def speed_model(checkpoint: str | os.PathLike | None) -> tuple[nn.Module, object, str]:
    """(model, training size, name): the checkpoint, else the bundled model, else the default configuration with
    random weights — speed does not depend on the weights."""
    from ..model import MultiScaleGenerator

    path = Path(checkpoint) if checkpoint else default_checkpoint_path()
    if checkpoint or path.is_file():
        ckpt = load_checkpoint(path)
        return ckpt.model, ckpt.train_size, str(path)
    return MultiScaleGenerator().eval(), {"short_side": 256}, RANDOM_MODEL


# ---- the benchmark ---------------------------------------------------------------------------------------------
def speed_benchmark(input: str | os.PathLike | None = None, *, checkpoint: str | os.PathLike | None = None,
                    model: nn.Module | None = None, engines=("auto",), batch_sizes=(4,), frames: int = 100,
                    device: str = "auto", precision: str = "auto", infer_size=None, crf: int = 18,
                    preset: str = "veryfast", naive: bool = True, json_path=None, plot_path=None,
                    on_start: Callable[[int], None] | None = None, on_tick: Callable[[int], None] | None = None,
                    log: Callable[[str], None] | None = None, cold: bool = False) -> SpeedReport:
    """Measure ``input`` (a video; None: a generated 640x480 thermal-looking clip of ``frames`` frames).

    ``model`` (an nn.Module) overrides ``checkpoint`` (see ``speed_model``); ``engines`` are names for
    ``create_engine``; ``infer_size``: None (the checkpoint's training size), ``"native"`` or ``(W, H)``.
    Writes ``json_path`` / ``plot_path`` (PNG) when given, each complete or not at all. ``on_start(total)`` and
    ``on_tick(done)`` count frames processed over all measurements, for a progress bar; ``log`` receives
    engines' build messages (TensorRT, the compiled engine's package). ``cold``: each engine's first start on
    an empty cache (see the module docstring: startup, full speed, warm).
    """
    json_path = check_report_path(json_path, ".json", "--json")
    plot_path = check_report_path(plot_path, ".png", "--plot")
    log = log or (lambda message: None)
    if frames < 1:
        raise BenchError("frames must be at least 1")
    if not engines or not batch_sizes:
        raise BenchError("give at least one engine and one batch size")
    if min(batch_sizes) < 1:
        raise BenchError("batch sizes must be at least 1")
    for name in engines:
        if name not in ("auto", *ENGINES):
            raise BenchError(f"unknown engine {name!r}; choose from auto, {', '.join(ENGINES)}")
    if input is not None:
        if Path(input).is_dir():
            raise BenchError(f"{input} is a folder; bench speed measures a video file (the naive loop reads it with OpenCV)")
        if not Path(input).exists():
            raise MediaError(f"input not found: {input}")
    dev = resolve_device(device)
    if model is not None:
        size_spec, model_name = "native", type(model).__name__
    else:
        model, size_spec, model_name = speed_model(checkpoint)
    if infer_size is not None:
        size_spec = infer_size

    load = load_average()  # before our own work raises it

    with tempfile.TemporaryDirectory(prefix="ir2vis-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if input is None:
            from ..demo import synthetic_thermal_clip

            clip = synthetic_thermal_clip(tmp / "generated_thermal.mp4", frames=frames, width=640, height=480)
        else:
            clip = Path(input)
        source = VideoSource(clip)
        info = source.info
        n_expected = min(frames, info.frames) if info.frames else frames
        total = n_expected * (2 + int(naive) + 2 * len(engines) * len(batch_sizes))
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if on_tick is not None:
                on_tick(done)

        if on_start is not None:
            on_start(total)
        decode_fps, raws, pts = decode_frames(source, frames)
        n = len(raws)
        tick(n)
        size = resolve_infer_size(size_spec, info.width, info.height)
        report = SpeedReport(input=str(input) if input is not None else f"generated clip, {info.width}x{info.height}",
                             input_size=(info.width, info.height), infer_size=size, frames=n, model=model_name,
                             device=str(dev), machine=machine_description(dev), date=now_iso(), crf=crf, preset=preset,
                             naive=None, load_average=load, cold_cache=cold)
        # Before any engine touches the model (engines may convert it in place, e.g. to channels_last).
        if naive:
            report.naive = naive_loop(clip, model, dev, size, n, tmp, on_frame=lambda: tick(1))

        stretch = Percentile16To8()
        input_flicker = FlickerMeter()
        for raw in raws:
            input_flicker.add(torch.from_numpy(to_gray8(raw, stretch))[None])
        encode_fps = None
        for name in engines:
            for batch in batch_sizes:  # an engine per batch size: TensorRT plans are built for one batch
                engine, startup, full_speed, warm = timed_start(name, model, dev, precision, raws, size, batch, log,
                                                                cold)
                stage_fps, outputs = process_stages(engine, raws, size, batch, on_batch=tick)
                if encode_fps is None:  # the encoder's cost depends on the frames, not on the engine
                    encode_fps = encode_frames(outputs, pts, info, crf, preset, tmp)
                    tick(n)
                output_flicker = FlickerMeter()
                for rgb in outputs:
                    output_flicker.add(torch.from_numpy(rgb).permute(2, 0, 1))
                del outputs
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                base = done

                def tick_run(frames_done: int) -> None:
                    if on_tick is not None:
                        on_tick(base + frames_done)

                result = end_to_end(engine, clip, size, batch, n, crf, preset, tmp, on_tick=tick_run)
                tick(result.frames)
                peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
                report.rows.append(SpeedRow(
                    engine=engine.describe(), batch_size=batch, startup_s=startup, full_speed_s=full_speed,
                    warm_startup_s=warm,
                    stage_fps={"decode": decode_fps, **stage_fps, "encode": encode_fps},
                    end_to_end_fps=result.fps, latency_ms=Latency.of(result.latencies),
                    stage_busy=dict(result.busy), peak_gpu_mib=peak,
                    flicker_ratio=flicker_ratio(output_flicker, input_flicker),
                    vs_naive=result.fps / report.naive.fps if report.naive else None,
                    engine_reason=getattr(engine, "reason", "") if name == "auto" else ""))

    if json_path is not None:
        import json

        atomic_write(json_path, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    if plot_path is not None:
        from .plot import speed_plot_png

        atomic_write(plot_path, speed_plot_png(report))
    return report


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
