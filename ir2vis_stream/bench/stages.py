"""``bench speed``'s measurements, one stage at a time: decode, engine start, the processor's steps, encode,
and the whole ``Pipeline`` end to end."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..engines import create_engine
from ..frames import Percentile16To8, to_gray8
from ..media import MediaError, VideoSink, VideoSource
from ..pipeline import Pipeline
from ..processor import FrameProcessor


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
                 size: tuple[int, int], batch_size: int, log: Callable[[str], None], grid_period: int | None = None):
    """Build engine ``name`` for this batch and size and run one batch through the frame path (with the grid
    filter of ``grid_period``): (engine, seconds it took)."""
    t = time.perf_counter()
    engine = create_engine(name, model, device, precision, batch=batch_size, infer_hw=(size[1], size[0]), log=log)
    # first call: compilation, kernel selection, allocator growth, lazy initialisation
    FrameProcessor(engine, size, grid_period=grid_period)([to_gray8(r) for r in raws[:batch_size]])
    _sync(device)
    return engine, time.perf_counter() - t


def timed_start(name: str, model: nn.Module, device: torch.device, precision: str, raws: list[np.ndarray],
                size: tuple[int, int], batch_size: int, log: Callable[[str], None], cold: bool,
                grid_period: int | None = None):
    """(engine at full speed, startup s, full-speed s, warm startup s): ``start_engine`` (on an empty cache
    when ``cold``), then waiting for a compiled engine's package, then a second start on the filled cache."""
    t = time.perf_counter()
    with _cache_at(tempfile.mkdtemp(prefix="ir2vis-cold-cache-") if cold else None) as filled:
        engine, startup = start_engine(name, model, device, precision, raws, size, batch_size, log, grid_period)
        if hasattr(engine, "wait_ready"):
            engine.wait_ready()
        full_speed = time.perf_counter() - t
        _, warm = start_engine(name, model, device, precision, raws, size, batch_size, log, grid_period)
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
                   on_batch: Callable[[int], None] | None = None,
                   grid_period: int | None = None) -> tuple[dict[str, float], list[np.ndarray]]:
    """The ``FrameProcessor``'s three steps timed apart, batch by batch, on a warm engine: (fps per stage,
    full-size RGB outputs). preprocess: grey + resize to the inference size; inference: upload, engine,
    download (and the grid filter, ``grid_period``, as ``run`` has it); postprocess: resize back. On a GPU
    (``FrameProcessor.on_device``) the resizes run there, inside inference, and pre/postprocess are the host's
    share: grey, and handing the frame on."""
    frames = FrameProcessor(engine, size, grid_period=grid_period)
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
               folder: Path, on_tick: Callable[[int], None] | None = None, grid_period: int | None = None):
    """The threaded ``Pipeline`` (as ``run`` builds it) from the video to H.264, with per-frame latency."""
    source = VideoSource(clip)
    info = source.info
    sink = VideoSink(folder / "end_to_end.mp4", info.width, info.height, info.fps, info.time_base, crf=crf,
                     preset=preset)
    complete = False
    try:
        result = Pipeline(engine, infer_size=size, batch_size=batch_size, max_frames=frames,
                          record_latency=True, grid_period=grid_period).run(source, sink, on_tick=on_tick)
        complete = True
    finally:
        sink.close(keep=complete)
        source.close()
    return result
