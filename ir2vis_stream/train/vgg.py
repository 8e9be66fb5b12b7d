"""VGG19 feature extractor for the perceptual loss, with the ImageNet weights loaded the standard way.

The weights are torchvision's ``VGG19_Weights.IMAGENET1K_V1`` file ``vgg19-dcbb9e9d.pth``. They are
looked for at ``--vgg-weights PATH`` if given, else in the torch hub cache where torchvision itself keeps
them (``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``). Nothing is
downloaded at training time: a missing file stops training with a message naming the file and folder,
unless the user turned the perceptual loss off (``--no-perceptual``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UserError

VGG19_FILE = "vgg19-dcbb9e9d.pth"
# VGG19's convolutional trunk (torchvision's configuration "E"); "M" is a 2x2 max-pool.
_VGG19_TRUNK = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
# Indices in torchvision's vgg19().features of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
_RELU_X_1 = (1, 6, 11, 20, 29)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsMissing(UserError, FileNotFoundError):
    pass


def hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def find_vgg19_weights(path: str | Path | None = None) -> Path:
    """The VGG19 weights file to use, or VGGWeightsMissing with the exact fix in its message."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise VGGWeightsMissing(f"--vgg-weights {p}: no such file (expected torchvision's {VGG19_FILE})")
        return p
    p = hub_weights_path()
    if p.is_file():
        return p
    raise VGGWeightsMissing(
        f"the VGG19 perceptual loss needs ImageNet weights: put torchvision's {VGG19_FILE} in {p.parent}/ "
        f"(or pass --vgg-weights PATH), or train without it with --no-perceptual")


class VGG19Features(nn.Module):
    """Frozen VGG19 up to relu5_1; maps [-1, 1] RGB (N, 3, H, W) to the five relu{k}_1 feature maps."""

    def __init__(self, weights: str | Path | None = None, *, random_init: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for v in _VGG19_TRUNK:  # the same module indices as torchvision's vgg19().features
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(ch, v, 3, padding=1), nn.ReLU(inplace=True)]
                ch = v
        self.features = nn.Sequential(*layers[: _RELU_X_1[-1] + 1])
        if not random_init:
            state = torch.load(find_vgg19_weights(weights), map_location="cpu", weights_only=True)
            prefix = "features."
            trunk = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            trunk = {k: v for k, v in trunk.items() if int(k.split(".")[0]) <= _RELU_X_1[-1]}
            try:
                self.features.load_state_dict(trunk)
            except RuntimeError as exc:
                raise VGGWeightsMissing(f"{weights or hub_weights_path()} is not torchvision's VGG19 ({str(exc).splitlines()[0]})") from None
        self.features.eval()
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen, always eval

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _RELU_X_1:
                feats.append(x)
        return feats
