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
- GMSD (Xue et al. 2014, "Gradient magnitude similarity deviation"): structure, lower is better, 0 for
  identical images. On luma (BT.601 weights, 8-bit scale): 2x2 average and keep every 2nd pixel, Prewitt
  gradients (``[1, 0, -1] / 3`` over 3 rows), magnitudes m_r, m_d, similarity map
  ``(2 m_r m_d + 170) / (m_r^2 + m_d^2 + 170)``, GMSD = its standard deviation (population). Unlike the
  authors' MATLAB code, borders are padded by replication, not zeros, so a flat image has no gradient at its
  edges (on a 640x480 image the two agree to within a few thousandths). Its blind spot: it compares gradient
  magnitudes only, so texture added where the reference has texture raises the similarity whatever it is; a
  random 8-pixel tile added to a soft output lowered GMSD as much as the model's own grid did
  (docs/pictures.md, the grid filter). Read it beside the grid measure and the picture.
- Grid (checkerboard) measure, ``grid_energy``: a generator that enlarges images 2x three times (levels at
  1/8, 1/4, 1/2 of its inference size W x H) leaves artefacts periodic in 8 inference pixels; in the DFT of
  the output (at whatever size it was resized to) they sit exactly at the bins (a W/8, b H/8). The measure
  is the power there (3x3 bins each) over the local background (9 x the median power of the surrounding
  9x9 bins), averaged over all those bins (each bin counts alike, so the high frequencies, where a real
  image has little power and a grid shows, are not drowned by the low ones), for the luma under a Hann window; ``grid_ratio(out, ref)`` divides
  the output's by the reference's (the real visible image): 1.0 means no more periodic energy than a real
  image has, above 1 a visible grid.
- IR edges kept, ``edges_kept(output, ir)``: Xydeas & Petrovic's edge-preservation measure Q^AB/F (2000) with the
  IR as the only source: how much of the IR's edge strength and orientation the output's luma keeps, 0 (none)
  to about 1 (all; the sigmoids make it 0.975 for an identical image). Sobel
  gradients (replicated borders) give strength g = |grad| and orientation a = arctan(gy / gx) per pixel;
  relative strength G = min(g_A, g_F) / max(g_A, g_F) (0 where both are flat), relative orientation
  A = ||a_A - a_F| - pi / 2| / (pi / 2) (1 for parallel edges, 0 for perpendicular ones); Q_g = 0.9994 / (1 + exp(-15 (G - 0.5))), Q_a = 0.9879 / (1 + exp(-22 (A - 0.8))),
  and Q = sum(Q_g Q_a g_A) / sum(g_A): the IR's edges weighted by their strength (L = 1). An edge that the
  output keeps at another contrast or polarity counts at its strength ratio, and an edge the output draws
  where the IR has none counts nothing (it has no weight): this measures what of the thermal scene survives,
  not whether the colour is right. The real visible image's own value is the reference beside it.
- Colourfulness, ``colourfulness(rgb)``: Hasler & Suesstrunk (2003), M = sqrt(sd(rg)^2 + sd(yb)^2) +
  0.3 sqrt(mean(rg)^2 + mean(yb)^2) with rg = R - G, yb = (R + G) / 2 - B on the 8-bit scale (0 for grey; about
  15-30 for moderately colourful photographs, over 100 for extremely colourful ones). The colourfulness ratio of
  ``bench quality`` is the output's over the visible image's: 1 is as colourful as the real scene, a beige
  output sits far below.
- Warping error (temporal consistency, as Lai et al. 2018): consecutive outputs aligned with optical flow
  computed on the *IR* frames (OpenCV's DIS flow, medium preset; no learned weights), mean absolute
  difference over the pixels whose forward and backward flows agree (occlusions and the uncovered border
  masked, Sundaram et al. 2010's test), 8-bit scale. ``WarpMeter`` runs it frame by frame; a video that
  moves exactly as its IR does scores 0, flicker that the scene's motion does not explain scores high.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, UserError

__all__ = ["rmse", "psnr", "ssim", "gmsd", "grid_energy", "grid_ratio", "luma", "flicker", "flicker_ratio",
           "image_metrics", "edges_kept", "colourfulness", "FlickerMeter", "WarpMeter", "LPIPSMetric", "LPIPSUnavailable", "lpips_backbone_file"]

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
        raise ConfigError(f"SSIM needs images of at least {size}x{size}, got {w}x{h}")
    g = _gaussian_window(a.device).tolist()

    # Separable Gaussian over the 'valid' region, as weighted sums of shifted views accumulated in place:
    # in float64 this is faster than conv2d, which has no fast float64 path on the CPU.
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


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB or (N, 1, H, W) grey -> (N, 1, H, W) BT.601 luma, float64, same scale."""
    if x.shape[1] == 1:
        return x.double()
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return (x.double() * w).sum(dim=1, keepdim=True)


GMSD_C = 170.0  # the authors' constant for 8-bit images


def gmsd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GMSD of distorted ``a`` against reference ``b`` per image, (N,); see the module docstring."""
    a, b = _pair(a, b)
    if min(a.shape[-2:]) < 4:
        raise ConfigError(f"GMSD needs images of at least 4x4, got {a.shape[-1]}x{a.shape[-2]}")
    y = F.avg_pool2d(luma(torch.cat([a, b])), 2)  # the 2x2 average, every 2nd pixel
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64, device=y.device) / 3.0
    kernels = torch.stack([prewitt, prewitt.t()])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernels)
    m = g.pow(2).sum(dim=1).sqrt()  # (2N, H', W')
    m_a, m_b = m[: a.shape[0]], m[a.shape[0]:]
    gms = (2 * m_a * m_b + GMSD_C) / (m_a**2 + m_b**2 + GMSD_C)
    return gms.flatten(1).std(dim=1, unbiased=False)


GRID_PERIOD = 8  # inference pixels: three 2x enlargements (1/8 -> 1/1)


def grid_energy(x: torch.Tensor, infer_size: tuple[int, int], period: int = GRID_PERIOD) -> torch.Tensor:
    """Periodic energy at the up-sampling grid of a model run at ``infer_size`` (W, H), per image, (N,).

    ``x``: (N, C, H, W) on any scale, at any size (the grid's DFT bins do not depend on it); see the
    module docstring. Bins too close to DC for a background ring (within 5 bins) are skipped.
    """
    y = luma(x)[:, 0]
    n, h, w = y.shape
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64, device=y.device),
                         torch.hann_window(w, periodic=False, dtype=torch.float64, device=y.device))
    y = (y - y.mean(dim=(1, 2), keepdim=True)) * window
    power = torch.fft.fft2(y).abs().pow(2)
    step_x, step_y = infer_size[0] / period, infer_size[1] / period
    ring_mask = torch.ones(9, 9, dtype=torch.bool, device=y.device)  # the 9x9 neighbourhood less its 3x3 centre
    ring_mask[3:6, 3:6] = False
    ratios = []
    for by in range(0, int(h / 2 / step_y) + 1):
        for bx in range(0, int(w / 2 / step_x) + 1):
            v, u = round(by * step_y), round(bx * step_x)
            if (bx, by) == (0, 0) or max(v, u) < 5 or v + 4 > h // 2 or u + 4 > w // 2:
                continue
            for su in ((u,) if u == 0 else (u, w - u)):  # both halves of the (Hermitian) spectrum
                rows = torch.arange(v - 4, v + 5, device=y.device) % h
                cols = torch.arange(su - 4, su + 5, device=y.device) % w
                patch = power[:, rows][:, :, cols]  # (N, 9, 9)
                centre = patch[:, 3:6, 3:6].flatten(1)
                ring = patch[:, ring_mask]
                ratios.append(centre.sum(dim=1) / (9 * ring.median(dim=1).values).clamp_min(1e-12))
    if not ratios:
        raise ConfigError(f"a {w}x{h} image holds no grid bins of a model run at {infer_size[0]}x{infer_size[1]}")
    return torch.stack(ratios).mean(dim=0)


def grid_ratio(output: torch.Tensor, reference: torch.Tensor, infer_size: tuple[int, int]) -> torch.Tensor:
    """``grid_energy(output) / grid_energy(reference)`` per image: 1.0 = no more grid than the real image."""
    return grid_energy(output, infer_size) / grid_energy(reference, infer_size).clamp_min(1e-12)


# Xydeas & Petrovic's sigmoid constants: (ceiling, slope, midpoint) for strength and orientation
_QG = (0.9994, -15.0, 0.5)
_QA = (0.9879, -22.0, 0.8)


def _sobel(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gx, gy) of (N, 1, H, W) float64 images, borders replicated."""
    k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=torch.float64, device=y.device)
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), torch.stack([k, k.t()])[:, None])
    return g[:, 0], g[:, 1]


def _line_angle(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """atan(gy / gx) in (-pi/2, pi/2]: the orientation of the edge line, whichever way its gradient points."""
    a = torch.atan2(gy, gx)
    return torch.where(a > math.pi / 2, a - math.pi, torch.where(a <= -math.pi / 2, a + math.pi, a))


def edges_kept(output: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """Q^A/F of ``output`` (N, 3 or 1, H, W) against the source ``ir`` (N, 1 or 3, H, W), per image, (N,); see
    the module docstring. An IR image without any gradient scores 1 (there was nothing to keep)."""
    if output.shape[-2:] != ir.shape[-2:] or output.shape[0] != ir.shape[0]:
        raise ConfigError(f"edges_kept: output {tuple(output.shape)} and IR {tuple(ir.shape)} differ in size")
    ax, ay = _sobel(luma(ir))
    fx, fy = _sobel(luma(output))
    g_a, g_f = torch.hypot(ax, ay), torch.hypot(fx, fy)
    a_a, a_f = _line_angle(ax, ay), _line_angle(fx, fy)
    big = torch.maximum(g_a, g_f)
    strength = torch.where(big > 0, torch.minimum(g_a, g_f) / big.clamp_min(1e-12), torch.zeros_like(big))
    orientation = ((a_a - a_f).abs() - math.pi / 2).abs() / (math.pi / 2)  # 1 parallel, 0 perpendicular
    q = (_QG[0] / (1 + torch.exp(_QG[1] * (strength - _QG[2])))) * (_QA[0] / (1 + torch.exp(_QA[1] * (orientation - _QA[2]))))
    weight = g_a.flatten(1).sum(dim=1)
    kept = (q * g_a).flatten(1).sum(dim=1)
    return torch.where(weight > 0, kept / weight.clamp_min(1e-12), torch.ones_like(weight))


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk's colourfulness M of (N, 3, H, W) 8-bit-scale RGB images, (N,); see the module
    docstring."""
    if rgb.shape[1] != 3:
        raise ConfigError(f"colourfulness needs RGB images, got {rgb.shape[1]} channel(s)")
    r, g, b = rgb.double().flatten(2).unbind(dim=1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * mean


def image_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """RMSE, PSNR, SSIM and GMSD per image, as a dict of (N,) tensors."""
    return {"rmse": rmse(output, target), "psnr": psnr(output, target), "ssim": ssim(output, target),
            "gmsd": gmsd(output, target)}


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

    @classmethod
    def merged(cls, meters: list["FlickerMeter"]) -> "FlickerMeter":
        """One meter over the pairs of several (e.g. the sequences of several folders)."""
        out = cls()
        out.total, out.count = sum(m.total for m in meters), sum(m.count for m in meters)
        return out

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else math.nan


def flicker_ratio(output: FlickerMeter, input: FlickerMeter) -> float | None:
    """``output.value / input.value``; None when the input never changes (or had fewer than two frames)."""
    return output.value / input.value if input.count and input.total > 0 else None


class WarpMeter:
    """Warping error (see the module docstring) one frame at a time, over one or several sequences.

    ``add(ir, outputs)`` takes the (H, W) uint8 IR frame and a dict of (H, W, C) uint8 frames to judge (the
    model outputs, the IR itself, the visible reference...) at the IR's size; the flow between this IR frame
    and the previous one (``ir2vis_stream.flow``) aligns each output with its own previous frame.
    ``value(name)``: mean absolute error over all trusted pixels of all pairs (NaN before the first pair).
    """

    def __init__(self):
        from .flow import FlowAligner

        self.aligner = FlowAligner()
        self.previous: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self.total: dict[str, float] = {}
        self.count = 0  # trusted pixels summed per output
        self.pixels = 0  # all pixels of all pairs, for the mask's coverage

    def new_sequence(self) -> None:
        self.previous = None

    def add(self, ir: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        if self.previous is not None:
            prev_ir, prev_out = self.previous
            al = self.aligner.align(ir, prev_ir)
            mask = al.valid
            self.count += int(mask.sum())
            self.pixels += mask.size
            for name, out in outputs.items():
                warped = al.warp(prev_out[name]).reshape(out.shape)
                diff = np.abs(out.astype(np.float32) - warped.astype(np.float32))
                diff = diff.mean(axis=2) if diff.ndim == 3 else diff
                self.total[name] = self.total.get(name, 0.0) + float(diff[mask].sum())
        self.previous = (ir, outputs)

    @classmethod
    def merged(cls, meters: list["WarpMeter"]) -> "WarpMeter":
        """One meter over the pairs of several."""
        out = cls()
        for m in meters:
            for name, v in m.total.items():
                out.total[name] = out.total.get(name, 0.0) + v
            out.count += m.count
            out.pixels += m.pixels
        return out

    def value(self, name: str) -> float:
        return self.total[name] / self.count if self.count and name in self.total else math.nan

    @property
    def coverage(self) -> float:
        """Share of pixels that passed the occlusion test (NaN before the first pair)."""
        return self.count / self.pixels if self.pixels else math.nan


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


class LPIPSUnavailable(UserError):
    """LPIPS cannot be computed offline; the message names the file that fixes it and where it goes."""


def _backbone_url(net: str) -> str:
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    if net not in LPIPS_NETS:
        raise ConfigError(f"unknown LPIPS network {net!r}; use {' or '.join(LPIPS_NETS)}")
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
