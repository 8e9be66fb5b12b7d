"""pix2pixHD's multi-scale PatchGAN discriminator (Wang et al. 2018), returning its intermediate features.

Each scale is a 5-layer PatchGAN: conv4x4/2 (no norm) -> 2 x [conv4x4/2, IN] -> conv4x4/1, IN -> conv4x4/1 to
one channel, LeakyReLU(0.2) between. Scale k sees the input average-pooled k times (3x3, stride 2).
The forward returns ``[[f1, f2, f3, f4, pred], ...]`` per scale (finest first), so the GAN loss reads
``pred`` and the feature-matching loss reads ``f1..f4`` of the same pass.

The paper uses two of these: D sees the output image (3 channels); C sees the IR input and the output
concatenated (1 + 3 channels), the conditional discriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """One 5-conv PatchGAN; (N, C, H, W) -> list of 4 feature maps and the (N, 1, h, w) patch scores."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_channels, width, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))]
        ch = width
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            nxt = min(ch * 2, 512)
            layers.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, stride=stride, padding=2),
                                        nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)))
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchDiscriminators on an image pyramid; see the module docstring."""

    def __init__(self, in_channels: int, num_scales: int = 2, width: int = 64, n_layers: int = 3):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, width, n_layers) for _ in range(num_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(d(x))
        return outputs
