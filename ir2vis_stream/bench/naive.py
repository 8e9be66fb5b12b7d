"""The naive loop ``bench speed`` compares against: what a user would write first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn

from ..media import MediaError

from .speed_report import Latency, NaiveResult


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
