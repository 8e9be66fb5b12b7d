"""The ``bench speed --plot`` chart, drawn with OpenCV so that a PNG needs no plotting library.

A horizontal bar per stage and per end-to-end run, grouped by engine and batch size, the naive loop last, on a
logarithmic frames-per-second axis: stage speeds differ by orders of magnitude (decoding runs at hundreds of
frames/s, a generator on a CPU at a few), and on a linear axis the slow stages, which decide everything,
would be invisible slivers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .speed_report import SpeedReport

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BGR = {"decode": (180, 119, 31), "preprocess": (14, 127, 255), "inference": (44, 160, 44),
        "postprocess": (189, 103, 148), "encode": (75, 86, 140), "end to end": (40, 39, 214),
        "naive loop": (127, 127, 127)}
_LABEL_W, _BAR_W, _VALUE_W, _ROW_H, _TOP, _BOTTOM = 300, 620, 110, 22, 70, 50


def _text(img, s: str, x: int, y: int, scale: float = 0.45, color=(30, 30, 30), thickness: int = 1) -> None:
    cv2.putText(img, s, (x, y), _FONT, scale, color, thickness, cv2.LINE_AA)


def speed_plot_png(report: SpeedReport) -> bytes:
    """The chart as PNG bytes."""
    bars: list[tuple[str, str, float] | str] = []  # (label, colour key, fps) or a group heading
    for r in report.rows:
        bars.append(f"{r.engine}, batch {r.batch_size}")
        bars.extend((s, s, fps) for s, fps in r.stage_fps.items())  # in pipeline order
        bars.append((f"end to end ({r.vs_naive:.2f}x naive)" if r.vs_naive else "end to end", "end to end",
                     r.end_to_end_fps))
    if report.naive:
        bars.append("baseline")
        bars.append(("naive OpenCV loop (fp32, batch 1)", "naive loop", report.naive.fps))
    values = [b[2] for b in bars if isinstance(b, tuple)]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.0001))
    if hi / lo < 10:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def x_of(v: float) -> int:
        return _LABEL_W + round(_BAR_W * (math.log10(max(v, lo)) - math.log10(lo)) / span)

    height = _TOP + _ROW_H * len(bars) + _BOTTOM
    img = np.full((height, _LABEL_W + _BAR_W + _VALUE_W, 3), 255, np.uint8)
    w, h = report.input_size
    _text(img, f"ir2vis-stream bench speed: {report.frames} frames, {w}x{h}, inference at "
               f"{report.infer_size[0]}x{report.infer_size[1]}", 10, 22, 0.55, thickness=1)
    _text(img, f"model: {report.model}"[:120], 10, 42, 0.4, (90, 90, 90))
    load = f", load average {report.load_average} at start" if report.load_average is not None else ""
    _text(img, f"{report.machine}{load}; {report.date}"[:150], 10, 58, 0.35, (90, 90, 90))
    bottom = _TOP + _ROW_H * len(bars)
    decade = lo
    while decade <= hi * 1.0001:  # grid line and label at every power of ten
        x = x_of(decade)
        cv2.line(img, (x, _TOP - 4), (x, bottom), (220, 220, 220), 1)
        _text(img, f"{decade:g}", x - 8, bottom + 16, 0.4)
        decade *= 10
    _text(img, "frames per second (log scale)", _LABEL_W + _BAR_W // 2 - 110, bottom + 36, 0.45)
    y = _TOP
    for b in bars:
        if isinstance(b, str):
            _text(img, b, 10, y + 15, 0.45, thickness=2 if b != "baseline" else 1)
        else:
            label, key, fps = b
            _text(img, label, 30, y + 15, 0.42)
            cv2.rectangle(img, (_LABEL_W, y + 4), (max(x_of(fps), _LABEL_W + 1), y + _ROW_H - 4), _BGR[key], -1)
            _text(img, f"{fps:.1f}", x_of(fps) + 6, y + 15, 0.42)
        y += _ROW_H
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("OpenCV could not encode the plot as PNG")
    return png.tobytes()
