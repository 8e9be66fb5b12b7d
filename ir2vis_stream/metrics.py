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
- LPIPS (Zhang et al. 2018), ``LPIPSMetric``: the ``lpips`` package's v0.1 metric, AlexNet trunk by default
  (``net="vgg"`` for VGG16), on the images mapped to [-1, 1], spatially averaged; lower is closer. Its
  linear layers ship in the ``lpips`` wheel, but the ImageNet trunk is torchvision's, read from
  ``$TORCH_HOME/hub/checkpoints/``; without that file ``LPIPSUnavailable`` says which file to put where,
  and nothing is downloaded.
- Flicker (temporal stability): mean absolute change between consecutive frames on the 8-bit scale;
  ``flicker(output) / flicker(input)`` is the flicker ratio. ``FlickerMeter`` computes it frame by frame,
  so a long video never has to be held in memory.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

__all__ = ["rmse", "psnr", "ssim", "flicker", "flicker_ratio", "image_metrics", "FlickerMeter", "LPIPSMetric", "LPIPSUnavailable",
           "lpips_backbone_file"]

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
    g = _gaussian_window(a.device).tolist()

    # Separable Gaussian over the 'valid' region, as weighted sums of shifted views accumulated in place:
    # in float64 this is about 5x faster than conv2d, which has no fast float64 path on the CPU.
    def blur(t):
        for dim, length in ((-2, h - size + 1), (-1, w - size + 1)):
            out = t.narrow(dim, 0, length) * g[0]
            for k in range(1, size):
                out.add_(t.narrow(dim, k, length), alpha=g[k])
            t = out
        return t

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b, e_aa, e_bb, e_ab = blur(torch.stack([a, b, a * a, b * b, a * b]))
    var_a = e_aa - mu_a**2
    var_b = e_bb - mu_b**2
    cov = e_ab - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.reshape(n, c, -1).mean(dim=2).mean(dim=1)


def image_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """RMSE, PSNR and SSIM per image, as a dict of (N,) tensors."""
    return {"rmse": rmse(output, target), "psnr": psnr(output, target), "ssim": ssim(output, target)}


class FlickerMeter:
    """``flicker`` computed one frame at a time, over one or several sequences.

    ``add(frame)`` takes a (C, H, W) frame (8-bit scale); ``new_sequence()`` makes the next frame start a new
    sequence, so no change is counted across the cut. ``value`` is the mean absolute change over every pixel
    of every pair of consecutive frames (NaN before the first pair).
    """

    def __init__(self):
        self.previous: torch.Tensor | None = None
        self.total = 0.0  # sum of |change| over all pixels of all pairs
        self.count = 0  # number of pixel values summed

    def add(self, frame: torch.Tensor) -> None:
        f = frame.double()
        if self.previous is not None:
            if f.shape != self.previous.shape:
                raise ValueError(f"frame of shape {tuple(f.shape)} follows one of {tuple(self.previous.shape)}")
            self.total += (f - self.previous).abs().sum().item()
            self.count += f.numel()
        self.previous = f

    def new_sequence(self) -> None:
        self.previous = None

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else math.nan


def flicker_ratio(output: FlickerMeter, input: FlickerMeter) -> float | None:
    """``output.value / input.value``; None when the input never changes (or had fewer than two frames)."""
    return output.value / input.value if input.count and input.total > 0 else None


def flicker(frames: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames (8-bit scale) of a (T, C, H, W) sequence.

    The flicker ratio of a colourised video is ``flicker(output) / flicker(input)``: 1 means the output
    changes as much as the input does from frame to frame, above 1 means it adds temporal noise.
    """
    meter = FlickerMeter()
    for frame in frames:
        meter.add(frame)
    return meter.value


# ---- LPIPS ---------------------------------------------------------------------------------------------------
LPIPS_NETS = ("alex", "vgg")


class LPIPSUnavailable(Exception):
    """LPIPS cannot be computed offline; the message names the file that fixes it and where it goes."""


def _backbone_url(net: str) -> str:
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    if net not in LPIPS_NETS:
        raise ValueError(f"unknown LPIPS network {net!r}; use {' or '.join(LPIPS_NETS)}")
    return (AlexNet_Weights if net == "alex" else VGG16_Weights).IMAGENET1K_V1.url


def lpips_backbone_file(net: str = "alex") -> Path:
    """Where torchvision reads the ImageNet trunk LPIPS ``net`` needs: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    url = _backbone_url(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


class LPIPSMetric:
    """LPIPS per image: ``metric(a, b)`` on (N, C, H, W) batches on the 8-bit scale (C = 3, or 1 for grey) -> (N,).

    ``random_backbone=True`` uses a randomly initialised trunk with the real linear layers: numbers that
    mean nothing, for tests on machines without the ImageNet file. Constructing never downloads anything:
    with a pretrained trunk it first checks ``lpips_backbone_file(net)`` and raises ``LPIPSUnavailable``.
    """

    def __init__(self, net: str = "alex", device: str | torch.device = "cpu", random_backbone: bool = False):
        backbone = lpips_backbone_file(net)
        if not random_backbone and not backbone.is_file():
            raise LPIPSUnavailable(f"LPIPS ({net}) needs torchvision's ImageNet weights {backbone.name} in "
                                   f"{backbone.parent}/ (get it from {_backbone_url(net)}, or set TORCH_HOME)")
        import lpips

        with warnings.catch_warnings():  # lpips uses torchvision's deprecated ``pretrained=`` argument
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=random_backbone, verbose=False)
        self.net = net
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.dim() != 4:
            raise ValueError(f"expected two (N, C, H, W) batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        a, b = (t.to(self.device, torch.float32).div(127.5).sub(1.0).expand(-1, 3, -1, -1) for t in (a, b))
        return self.model(a, b).flatten().double().cpu()
