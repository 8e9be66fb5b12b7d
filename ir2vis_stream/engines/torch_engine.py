"""PyTorch eager inference: channels_last, autocast to bf16 (CPUs with native bf16) or fp16 (CUDA).

Under fp16, instance norm runs in fp32: its mean/variance reductions overflow or lose precision in half
precision, a known source of NaNs in generators like this one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..hardware import autocast_dtype

_DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class Fp32InstanceNorm(nn.Module):
    """Runs the wrapped InstanceNorm2d in fp32 whatever the surrounding autocast, returning the input dtype."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.norm(x.float()).to(x.dtype)


def keep_norms_fp32(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose InstanceNorm2d layers compute in fp32."""
    model = copy.deepcopy(model)
    for name, child in list(model.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.InstanceNorm2d):
                setattr(child, attr, Fp32InstanceNorm(sub))
    return model


class TorchEngine:
    """Eager PyTorch on CPU or CUDA; see the module docstring for the precision rules."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto"):
        self.device = torch.device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.precision = _DTYPE_NAMES[self.dtype]
        self.size_multiple = getattr(model, "size_multiple", 1)
        if self.dtype is torch.float16:
            model = keep_norms_fp32(model)
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            return self.model(x)

    def describe(self) -> str:
        return f"{self.name} {self.device} {self.precision}"
