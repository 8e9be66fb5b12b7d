"""``run()``: the product's main job as one library call (the CLI's ``run`` command and the tests use it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, NamedTuple

from torch import nn

from .checkpoint import CheckpointError, default_checkpoint_path, default_infer_size, load_checkpoint
from .engines import create_engine
from .engines.base import Engine
from .gridfilter import grid_period
from .hardware import resolve_device
from .media import FolderSink, MediaError, VideoSink, check_output, open_source
from .pipeline import Pipeline, RunResult


def load_default_model(checkpoint: str | os.PathLike | None):
    """(model, train_size) from ``checkpoint`` or the bundled model; CheckpointError if there is none."""
    path = Path(checkpoint) if checkpoint else default_checkpoint_path()
    if checkpoint is None and not path.is_file():
        raise CheckpointError(f"no bundled model at {path}; pass --checkpoint PATH (see README: training)")
    ckpt = load_checkpoint(path)
    return ckpt.model, ckpt.train_size


class LoadedEngine(NamedTuple):
    """What a ``FrameProcessor`` needs besides its options: the engine, the inference size spec, and the period of
    the up-sampling grid to filter out of its output (None for none)."""

    engine: Engine
    infer_size: object
    grid_period: int | None


def load_engine(checkpoint=None, model: nn.Module | None = None, engine: str = "auto", device: str = "auto",
                precision: str = "auto", infer_size=None, grid_filter: bool = True, **engine_options) -> LoadedEngine:
    """``model`` overrides ``checkpoint``; without an ``infer_size``, a checkpoint's model runs at its training size
    and a given model at the frame's own size; ``grid_filter``: filter out the grid of a model that leaves one
    (``gridfilter.grid_period``)."""
    dev = resolve_device(device)
    if model is None:
        model, train_size = load_default_model(checkpoint)
        spec = infer_size if infer_size is not None else default_infer_size(train_size, dev)
    else:
        spec = infer_size if infer_size is not None else "native"
    period = grid_period(model, grid_filter)
    return LoadedEngine(create_engine(engine, model, dev, precision, **engine_options), spec, period)


def run(input: str | os.PathLike, output: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
        model: nn.Module | None = None, engine: str = "auto", device: str = "auto", precision: str = "auto",
        batch_size: int = 4, infer_size=None, fps: float | None = None, crf: int = 18, preset: str = "veryfast",
        side_by_side: bool = False, overwrite: bool = False, max_frames: int | None = None, rebuild: bool = False,
        background_build: bool | None = None,
        temporal: float | str | None = "auto", grid_filter: bool = True,
        on_start: Callable[[object], None] | None = None, on_tick: Callable[[int], None] | None = None,
        pipeline_hook: Callable[[Pipeline], None] | None = None) -> RunResult:
    """Colourise ``input`` (video file or frame folder) into ``output`` (.mp4/.mkv/.mov or a PNG folder).

    ``model`` (an nn.Module mapping (N,1,H,W) -> (N,3,H,W) in [-1, 1]) overrides ``checkpoint``;
    ``infer_size``: None (the checkpoint's training size), ``"native"``, or ``(W, H)``; ``temporal``: strength of
    the flow-guided temporal filter (``ir2vis_stream.temporal``; 0.6 is ``run --temporal``), None for none, ``"auto"``
    (the default) on where post-processing runs on the host (``processor.resolve_temporal``);
    ``grid_filter``: take the up-sampling grid out of a model that leaves one (``ir2vis_stream.gridfilter``);
    ``background_build``: whether the compile engine may start its package build in a process that outlives the
    call (None: unless ``$IR2VIS_STREAM_NO_BACKGROUND_BUILD`` is set).
    Raises MediaError,
    CheckpointError or DeviceError with a one-line message; never leaves a partial output behind.
    ``on_start(source_info, expected_frames)`` and ``on_tick(frames_done)`` feed a progress display; ``pipeline_hook``
    receives the Pipeline before it starts (for ``request_stop``).
    """
    out_path, kind = check_output(output, overwrite)
    if Path(input).resolve() == out_path.resolve():
        raise MediaError("input and output are the same path")
    resolve_device(device)  # a missing GPU is reported before anything slow happens
    source = open_source(input, fps, mixed_sizes=kind == "folder")
    try:
        eng, size_spec, period = load_engine(checkpoint, model, engine, device, precision, infer_size, grid_filter,
                                             rebuild=rebuild, batch=batch_size, background_build=background_build,
                                             log=lambda msg: print(msg, file=sys.stderr))
        pipe = Pipeline(eng, infer_size=size_spec, batch_size=batch_size, side_by_side=side_by_side,
                        max_frames=max_frames, temporal=temporal, grid_period=period)
        info = source.info
        out_w, out_h = pipe.output_size(info.width, info.height)
        if kind == "video":
            audio = Path(input) if info.audio else None
            sink = VideoSink(out_path, out_w, out_h, info.fps, info.time_base, crf=crf, preset=preset,
                             audio_from=audio, overwrite=overwrite)
        else:
            sink = FolderSink(out_path, overwrite=overwrite)
        if on_start is not None:
            on_start(info, min(info.frames, max_frames) if info.frames and max_frames else info.frames)
        if pipeline_hook is not None:
            pipeline_hook(pipe)
        keep = False
        try:
            result = pipe.run(source, sink, on_tick=on_tick)
            if result.frames == 0:
                raise MediaError(f"no frames could be decoded from {input}")
            keep = True
        finally:
            # a stopped job or a preview (--max-frames) keeps only the audio under its frames
            whole = keep and not result.interrupted and (max_frames is None or result.frames < max_frames)
            sink.close(keep=keep, audio_until_end=whole)
    finally:
        source.close()
    result.output = str(out_path)
    return result


__all__ = ["run", "RunResult", "LoadedEngine", "load_default_model", "load_engine"]
