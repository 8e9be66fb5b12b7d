"""``bench speed``: how fast each stage is alone, how fast the whole job is, and how long one frame takes.

All figures come from one process, one measurement after another, on the same frames of the same clip, so
their ratios are comparable. Absolute figures need an otherwise idle machine: the report records the load
average at the start. On a machine shared with other work, run with ``OMP_WAIT_POLICY=PASSIVE``: torch's
OpenMP threads otherwise busy-wait for descheduled partners (beside a training run, a small generator became
many times slower; measured: docs/performance.md), and the figures mean nothing. Per engine and batch size:

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
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoint import default_checkpoint_path, default_infer_size, load_checkpoint
from ..engines import ENGINES
from ..frames import Percentile16To8, to_gray8
from ..hardware import resolve_device
from ..gridfilter import grid_period
from ..media import MediaError, VideoSource
from ..metrics import FlickerMeter, flicker_ratio
from ..processor import resolve_infer_size
from ..files import atomic_write
from .report import BenchError, check_report_path, load_average, machine_description, now_iso

from .naive import naive_loop
from .speed_report import STAGES, Latency, NaiveResult, SpeedReport, SpeedRow, speed_table
from .stages import decode_frames, encode_frames, end_to_end, process_stages, start_engine, timed_start

RANDOM_MODEL = "default configuration, random weights (costs what the trained model costs)"


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
                    log: Callable[[str], None] | None = None, cold: bool = False,
                    grid_filter: bool = True) -> SpeedReport:
    """Measure ``input`` (a video; None: a generated 640x480 thermal-looking clip of ``frames`` frames).

    ``model`` (an nn.Module) overrides ``checkpoint`` (see ``speed_model``); ``engines`` are names for
    ``create_engine``; ``infer_size``: None (the checkpoint's training size), ``"native"`` or ``(W, H)``.
    Writes ``json_path`` / ``plot_path`` (PNG) when given, each complete or not at all. ``on_start(total)`` and
    ``on_tick(done)`` count frames processed over all measurements, for a progress bar; ``log`` receives
    engines' build messages (TensorRT, the compiled engine's package). ``cold``: each engine's first start on
    an empty cache (see the module docstring: startup, full speed, warm). ``grid_filter``: with ``run``'s grid
    filter where the model leaves a grid (``gridfilter``), as ``run`` runs it.
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
        model, train_size, model_name = speed_model(checkpoint)
        size_spec = default_infer_size(train_size, dev)
    if infer_size is not None:
        size_spec = infer_size
    period = grid_period(model, grid_filter)

    load = load_average()  # before our own work raises it

    with tempfile.TemporaryDirectory(prefix="ir2vis-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if input is None:
            from ..synthetic import synthetic_thermal_clip

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
                             naive=None, load_average=load, cold_cache=cold, grid_period=period)
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
                                                                cold, period)
                stage_fps, outputs = process_stages(engine, raws, size, batch, on_batch=tick, grid_period=period)
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

                result = end_to_end(engine, clip, size, batch, n, crf, preset, tmp, on_tick=tick_run,
                                    grid_period=period)
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


__all__ = ["STAGES", "Latency", "NaiveResult", "SpeedReport", "SpeedRow", "decode_frames", "encode_frames", "end_to_end",
           "naive_loop", "process_stages", "speed_benchmark", "speed_model", "speed_table", "start_engine", "timed_start"]
