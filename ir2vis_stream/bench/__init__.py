"""``ir2vis-stream bench``: every number the project quotes, one command away.

``speed``: frames per second of each stage alone and end to end, per-frame latency and peak GPU memory, per
engine and batch size, beside a naive OpenCV loop. ``quality``: RMSE, PSNR, SSIM, LPIPS and flicker of one or
more checkpoints on paired data or a registered video pair, beside the IR image itself as grey.
"""

from .quality import QualityReport, quality_on_pairs, quality_on_video
from .report import BenchError
from .speed import SpeedReport, speed_benchmark

__all__ = ["BenchError", "QualityReport", "SpeedReport", "quality_on_pairs", "quality_on_video", "speed_benchmark"]
