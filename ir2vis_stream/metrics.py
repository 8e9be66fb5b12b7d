"""Image-quality metrics, defined once for training validation and ``bench``.

Conventions (those of the paper's table and of scikit-image):

- Inputs are batches ``(N, C, H, W)`` on the 8-bit scale, values 0..255 (float or uint8 tensors).
- Each metric is computed per image, returning a tensor of shape (N,); callers average over images.
- RMSE = sqrt(mean((a - b)^2)) over all pixels and channels.
- PSNR = 10 log10(255^2 / MSE) in dB (MSE floored at 1e-10, so identical images give about 148 dB).
- SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, population
  (not sample) covariances, the SSIM map averaged over the window positions that lie wholly inside the
  image, then over channels. This equals ``skimage.metrics.structural_similarity(a, b, data_range=255,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=...)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["rmse", "psnr", "ssim", "flicker", "image_metrics"]

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # skimage: int(truncate(3.5) * sigma + 0.5)


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) batches, got shape {tuple(a.shape)}")
    return a.double(), b.double()


def rmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = _pair(a, b)
    return (a - b).pow(2).mean(dim=(1, 2, 3)).sqrt()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = _pair(a, b)
    mse = (a - b).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return 10.0 * torch.log10(255.0**2 / mse)


def _gaussian_window(device) -> torch.Tensor:
    x = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(x**2) / (2 * _SSIM_SIGMA**2))
    g = g / g.sum()
    return g


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = _pair(a, b)
    n, c, h, w = a.shape
    size = 2 * _SSIM_RADIUS + 1
    if h < size or w < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size}, got {w}x{h}")
    g = _gaussian_window(a.device)
    gx, gy = g.view(1, 1, 1, size), g.view(1, 1, size, 1)

    def blur(t):  # separable Gaussian, 'valid' region only
        t = t.reshape(n * c, 1, *t.shape[-2:])
        return F.conv2d(F.conv2d(t, gx), gy)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.reshape(n, c, -1).mean(dim=2).mean(dim=1)


def image_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """RMSE, PSNR and SSIM per image, as a dict of (N,) tensors."""
    return {"rmse": rmse(output, target), "psnr": psnr(output, target), "ssim": ssim(output, target)}


def flicker(frames: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames (8-bit scale) of a (T, C, H, W) sequence.

    The flicker ratio of a colourised video is ``flicker(output) / flicker(input)``: 1 means the output
    changes as much as the input does from frame to frame, above 1 means it adds temporal noise.
    """
    if frames.shape[0] < 2:
        return math.nan
    f = frames.double()
    return (f[1:] - f[:-1]).abs().mean().item()
