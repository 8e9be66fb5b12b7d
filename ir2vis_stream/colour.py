"""The colour standard of an encoded video, and RGB -> YUV with it, in one place.

A video's RGB is stored as YUV converted with some matrix, and the stream's tags tell a player which (without
tags players guess, and BT.601 vs 709 guessed wrong shifts every hue). Limited range, as H.264 players expect:
Y = 16 + 219 Y', Cb/Cr = 128 + 224 (B' - Y') / (2 (1 - Kb)) and (R' - Y') / (2 (1 - Kr)), Y' = Kr R' + Kg G' +
Kb B' on [0, 1] RGB.

Two converters use the same ``ColourStandard``: on the host, FFmpeg's swscale (through PyAV, by the matrix's
swscale name); on a GPU, ``rgb_to_i420`` (torch, any device), so frames leave the GPU as YUV planes and the CPU
only encodes them. The sink tags its stream with the standard's FFmpeg number. The two agree to within one
level of Y and two of chroma (``tests/test_colour.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["BT601", "BT709", "ColourStandard", "VideoFormat", "colour_standard", "rgb_to_i420"]


@dataclass(frozen=True)
class ColourStandard:
    name: str
    swscale: str  # the matrix's name for swscale (PyAV's ``dst_colorspace``)
    tag: int  # FFmpeg's number for matrix, primaries and transfer: 1 = BT.709; 6 = SMPTE 170M (BT.601)
    kr: float
    kb: float


BT709 = ColourStandard("BT.709", "ITU709", 1, 0.2126, 0.0722)
BT601 = ColourStandard("BT.601 (SMPTE 170M)", "ITU601", 6, 0.299, 0.114)


def colour_standard(width: int, height: int) -> ColourStandard:
    """BT.709 for HD (720 lines or 1280 columns and up), BT.601 below, as broadcast and players assume."""
    return BT709 if height >= 720 or width >= 1280 else BT601


def rgb_to_i420(rgb: torch.Tensor, standard: ColourStandard) -> torch.Tensor:
    """(N, 3, H, W) RGB on [0, 255] (any float or uint8 dtype, any device) -> (N, 3H/2, W) uint8 I420 frames.

    Each frame is its Y plane (H, W) followed by its Cb and Cr planes (H/2, W/2 each, every 2x2 block
    averaged), flattened into rows of W: the layout PyAV's ``VideoFrame.from_ndarray(..., format="yuv420p")``
    reads. H and W must be even."""
    n, _, h, w = rgb.shape
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs even sides, got {w}x{h}")
    x = rgb.float() * (1 / 255)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    kr, kb = standard.kr, standard.kb
    y = kr * r + (1 - kr - kb) * g + kb * b
    chroma = torch.stack([(b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))], dim=1)
    chroma = F.avg_pool2d(chroma, 2)
    luma = (y * 219 + 16).round_().clamp_(0, 255).to(torch.uint8)
    chroma = (chroma * 224 + 128).round_().clamp_(0, 255).to(torch.uint8)
    return torch.cat([luma.reshape(n, -1), chroma.reshape(n, -1)], dim=1).reshape(n, h * 3 // 2, w)


@dataclass(frozen=True)
class VideoFormat:
    """What a video sink encodes: its pixel format (``yuv420p``; ``yuv444p`` for odd sides) and colour standard."""

    pix_fmt: str
    standard: ColourStandard

    @property
    def i420(self) -> bool:
        """Whether frames in this format can be handed over as ``rgb_to_i420`` planes."""
        return self.pix_fmt == "yuv420p"

    def frame_from_rgb(self, rgb: np.ndarray):
        """(H, W, 3) uint8 RGB -> a PyAV frame in this format, converted on the host by swscale."""
        import av

        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=self.pix_fmt, dst_colorspace=self.standard.swscale, src_color_range="JPEG", dst_color_range="MPEG")

    def frame_from_i420(self, planes: np.ndarray):
        """(3H/2, W) uint8 from ``rgb_to_i420`` with this standard -> a PyAV frame (one copy, no conversion)."""
        import av

        if not self.i420:
            raise ValueError(f"I420 planes given to a {self.pix_fmt} sink")
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")
