"""The model as engines run it: a copy prepared for inference, the same function as the caller's model.

The eager and compiled engines and the compiled package run ``inference_model``; the ONNX export (and so
ONNX Runtime and TensorRT) folds the sines the same way and keeps instance norms in fp32 under fp16. The CPU
package also swaps its instance norms for the form inductor compiles best there (``OnePassInstanceNorm``).
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


class OnePassInstanceNorm(nn.Module):
    """``InstanceNorm2d`` (no running statistics) as inductor compiles it best on the CPU; the same function.

    Inductor makes ``instance_norm`` a Welford pass over the features and then, in the pass that normalises
    (and applies the sine after it), recomputes the variance's division and square root at every pixel from the
    per-channel sums: in the dynamic-shape package that was two vector divisions and a square root for every
    32 values. Here instead:

    - one pass of plain sums of ``d`` and ``d * d``, where ``d = x - x[..., 0, 0]``: shifting each channel by
      one of its own values keeps ``E[d^2] - E[d]^2`` exact enough when a channel's mean is far larger than
      its spread (unshifted, fp32 loses the variance of a channel at mean 1000 and spread 1);
    - a per-channel scale and offset, so the normalising pass is one multiply-add per value. The scale's
      ``1/sqrt`` is written ``exp(-log(v)/2)``: inductor on the CPU stores a result that is used twice and
      contains ``exp`` or ``log`` (here N x C values) rather than recomputing it in every pixel's loop.
    """

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        if norm.track_running_stats:
            raise ValueError("OnePassInstanceNorm replaces instance norms without running statistics only")
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        shift = xf[:, :, :1, :1]
        d = xf - shift
        inv_n = 1.0 / (x.shape[2] * x.shape[3])
        mean_d = d.sum((2, 3), keepdim=True) * inv_n
        var = (d * d).sum((2, 3), keepdim=True) * inv_n - mean_d * mean_d
        scale = torch.exp(-0.5 * torch.log(var.clamp_min(0) + self.eps))
        if self.weight is not None:
            scale = scale * self.weight.view(1, -1, 1, 1)
        offset = -(mean_d + shift) * scale
        if self.bias is not None:
            offset = offset + self.bias.view(1, -1, 1, 1)
        return (xf * scale + offset).to(x.dtype)


def inference_model(model: nn.Module, dtype: torch.dtype | None, *, inductor_cpu: bool = False) -> nn.Module:
    """The copy of ``model`` that engines run under autocast to ``dtype`` (None: fp32); the same function.

    - Sines folded into the instance norms before them (``model.fold_sines``): no multiply and add per sine.
    - Under bf16 or fp16, convolution weights and biases stored at that precision. Autocast casts an fp32
      weight at every call otherwise (its cache lives only as long as one ``autocast`` block): 10.8 M values a
      frame for the default generator, and in a compiled graph a kernel of their own. Instance norms keep
      fp32 parameters.
    - Under fp16, instance norms computed in fp32 (``keep_norms_fp32``).
    - With ``inductor_cpu`` (the CPU package), instance norms as ``OnePassInstanceNorm``: faster compiled,
      slower eager (several ATen calls in place of one).
    """
    model = fold_sines(model)  # a copy: the caller's model is left as it was
    if inductor_cpu:
        _replace(model, nn.InstanceNorm2d, OnePassInstanceNorm)
    if dtype is not None:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(dtype)
    return keep_norms_fp32(model) if dtype is torch.float16 else model


def keep_norms_fp32(model: nn.Module) -> nn.Module:
    """``model``, its InstanceNorm2d layers made to compute in fp32, in place: both callers (``inference_model``,
    the fp16 ONNX export) hold a copy of their own already (``fold_sines``)."""
    return _replace(model, nn.InstanceNorm2d, Fp32InstanceNorm)


def _replace(model: nn.Module, kind: type, wrap) -> nn.Module:
    """``model`` with every submodule ``m`` of type ``kind`` replaced by ``wrap(m)``, in place."""
    for child in list(model.modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, kind):
                setattr(child, attr, wrap(sub))
    return model
