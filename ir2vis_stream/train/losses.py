"""The paper's training objective, one function per term, each with its formula.

Generator: ``L_G = 100 (L1 + COS + TVD) + 1 (GAN + CGAN) + 10 (FM + PL)``, and, off by default (not the
paper's), ``+ 100 GRID`` (``grid_loss``: the up-sampling grid's periodic pattern against the target's)
Discriminators: ``L_D = GAN_D + CGAN_D``

Images here are generator-range tensors in [-1, 1], shape (N, C, H, W). Discriminator outputs are the
lists ``[[feat_1, ..., feat_L, pred], ...]`` (one inner list per scale) returned by
``MultiScaleDiscriminator``, so the GAN and feature-matching terms read one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..metrics import GRID_PERIOD

# The paper's weights: lambda_1, lambda_2, lambda_3.
LAMBDA_PIXEL = 100.0  # L1 + COS + TVD
LAMBDA_ADV = 1.0  # GAN + CGAN
LAMBDA_FEAT = 10.0  # FM + PL

# pix2pixHD's VGG perceptual weights for relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 = mean |G(x) - y|."""
    return (fake - real).abs().mean()


def cosine_loss(fake: torch.Tensor, real: torch.Tensor, centred: bool = False) -> torch.Tensor:
    """COS = mean over images of 1 - <G(x), y> / (||G(x)|| ||y||), each image one vector of [0, 1] intensities.

    Written as ``1 - cos`` so that its minimum is 0. The paper's denominator ``||I_inf||`` is a typo for
    ``||G(I_inf)||``: the cosine compares the generated and the real visible image, which have the same
    number of channels, while the IR image has one.

    On [0, 1] intensities every pair of natural images has a cosine near 1 (both vectors point along the
    all-positive diagonal), so the term is small and nearly flat. ``centred=True`` subtracts each image's
    per-channel mean first: the cosine becomes the correlation coefficient of the two images, which is 0 for
    unrelated images and 1 only when their structure (not their brightness) matches.
    """
    a = ((fake + 1) / 2).flatten(2)
    b = ((real + 1) / 2).flatten(2)
    if centred:
        a = a - a.mean(dim=2, keepdim=True)
        b = b - b.mean(dim=2, keepdim=True)
    return (1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1, eps=1e-8)).mean()


def tvd_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """TVD = mean(d_x(G(x) - y)^2) + mean(d_y(G(x) - y)^2), d_x, d_y forward differences.

    Penalises gradients of the error image, so edges of the output must line up with the target's.
    """
    d = fake - real
    dx = d[..., :, 1:] - d[..., :, :-1]
    dy = d[..., 1:, :] - d[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def phase_means(x: torch.Tensor, period: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, period, period): the mean of the pixels at each phase (row mod period, column mod
    period), less the image's mean; the rows and columns past the last whole period are left out.

    This is the image's part that repeats exactly every ``period`` pixels: its DFT is the image's at the bins
    (a W/period, b H/period), the bins where ``metrics.grid_energy`` looks for a generator's grid.
    """
    n, c, h, w = x.shape
    h, w = h - h % period, w - w % period
    p = x[..., :h, :w].reshape(n, c, h // period, period, w // period, period).mean(dim=(2, 4))
    return p - p.mean(dim=(2, 3), keepdim=True)


def grid_loss(fake: torch.Tensor, real: torch.Tensor, period: int = GRID_PERIOD) -> torch.Tensor:
    """GRID = mean |P(G(x)) - P(y)|, P = ``phase_means`` at the generator's up-sampling period (8: three 2x steps).

    Not in the paper (``train --grid-loss``). A grid that the up-sampling steps leave in every output (Odena et
    al. 2016's checkerboard) is a small pattern repeated at the same phase across the whole image: pixel by
    pixel it hides under larger errors, averaged over the phases of a crop it adds up. The training crop is
    the generator's whole input, so its grid is in phase with the crop's origin. Per pixel its gradient is of
    the same size as L1's (both are means over the same pixels), so it shares L1's weight, lambda_1.

    Measured (docs/pictures.md): a short fine-tune from the release with this term did not lower the grid,
    and the term's value did not fall: in a 256x256 crop the phase pattern of the content the model gets
    wrong is as large as the grid's.
    """
    return (phase_means(fake, period) - phase_means(real, period)).abs().mean()


def lsgan_loss(outputs: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017) as pix2pixHD: sum over scales of mean((pred - t)^2), t = 1 or 0."""
    target = 1.0 if target_is_real else 0.0
    return sum((scale[-1].float() - target).pow(2).mean() for scale in outputs)


def feature_matching_loss(fake_outputs: list[list[torch.Tensor]], real_outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    """FM = sum over scales i and layers j of (1/num_D) (4/(n_layers+1)) mean|D_ij(fake) - D_ij(real)|.

    pix2pixHD's weighting (its n_layers counts the strided layers, so n_layers + 1 = the intermediate
    feature maps used here); real features are constants.
    """
    num_d = len(fake_outputs)
    total = fake_outputs[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake_outputs, real_outputs):
        feats = len(fake_scale) - 1
        w = (1.0 / num_d) * (4.0 / feats)
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + w * (f.float() - r.detach().float()).abs().mean()
    return total


def perceptual_loss(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor],
                    weights: tuple[float, ...] = VGG_LAYER_WEIGHTS) -> torch.Tensor:
    """PL = sum_k w_k mean|phi_k(G(x)) - phi_k(y)|, phi_k = VGG19 relu{k}_1, w = 1/32, 1/16, 1/8, 1/4, 1."""
    return sum(w * (f.float() - r.detach().float()).abs().mean() for w, f, r in zip(weights, fake_feats, real_feats))


@dataclass(frozen=True)
class LossSwitches:
    """Which optional terms are on (the paper's Table 3 ablations and the no-VGG case)."""

    cos: bool = True
    tvd: bool = True
    perceptual: bool = True
    grid: bool = False

    def names(self) -> list[str]:
        terms = ["l1"] + (["cos"] if self.cos else []) + (["tvd"] if self.tvd else []) + (["grid"] if self.grid else [])
        terms += ["gan", "cgan", "fm"] + (["perceptual"] if self.perceptual else [])
        return terms
