"""The model as engines run it: a copy prepared for inference, the same function as the caller's model.

The eager and compiled engines and the compiled package run ``inference_model``; the ONNX export (and so
ONNX Runtime and TensorRT) folds the sines the same way and keeps instance norms in fp32 under fp16.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import fold_sines


class Fp32InstanceNorm(nn.Module):
    """Runs the wrapped InstanceNorm2d in fp32 whatever the surrounding autocast, returning the input dtype."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.norm(x.float()).to(x.dtype)


def inference_model(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """The copy of ``model`` that engines run under autocast to ``dtype`` (None: fp32); the same function.

    - Sines folded into the instance norms before them (``model.fold_sines``): no multiply and add per sine.
    - Under bf16 or fp16, convolution weights and biases stored at that precision. Autocast casts an fp32
      weight at every call otherwise (its cache lives only as long as one ``autocast`` block): 10.8 M values a
      frame for the default generator, and in a compiled graph a kernel of their own. Instance norms keep
      fp32 parameters.
    - Under fp16, instance norms computed in fp32 (``keep_norms_fp32``).
    """
    model = fold_sines(model)  # a copy: the caller's model is left as it was
    if dtype is not None:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(dtype)
    return keep_norms_fp32(model) if dtype is torch.float16 else model


def keep_norms_fp32(model: nn.Module) -> nn.Module:
    """``model``, its InstanceNorm2d layers made to compute in fp32, in place: both callers (``inference_model``,
    the fp16 ONNX export) hold a copy of their own already (``fold_sines``)."""
    for name, child in list(model.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.InstanceNorm2d):
                setattr(child, attr, Fp32InstanceNorm(sub))
    return model
