"""Export the generator to ONNX with dynamic batch, height and width (opset 17).

The graph is the model's ``forward_aligned``: inputs must have sides that are multiples of the model's
``size_multiple`` (8 for the default generator); the engines pad and crop around it. Instance norm and
the sine are native ONNX ops (``InstanceNormalization``, ``Sin``); each sine's frequency and phase are
folded into the norm before it (``model.fold_sines``), so ``Sin`` takes the norm's output as it is.

``fp16=True`` exports a half-precision graph whose instance norms compute in fp32: each is wrapped in
Cast(fp16 -> fp32) ... Cast(fp32 -> fp16) with fp32 scale and bias. Instance norm's mean/variance
reductions overflow or lose precision in fp16 (a known source of NaNs), and TensorRT 11, whose networks
are strongly typed, takes the precision of every layer from the ONNX graph itself.
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import torch
from torch import nn

from ..model import fold_sines
from .base import EngineUnavailable
from .prepare import Fp32InstanceNorm, keep_norms_fp32


def require_onnx() -> None:
    """ONNX export and its check need the ``onnx`` package (the ``[onnx]`` extra); say so plainly."""
    if importlib.util.find_spec("onnx") is None:
        raise EngineUnavailable("ONNX export needs the onnx package: pip install 'ir2vis-stream[onnx]'")

OPSET = 17
ONNX_FORMAT = 2  # bump when the exported graph changes for the same model (2: sines folded into their norms)
INPUT, OUTPUT = "ir", "rgb"


class _Aligned(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_aligned(x)


def export_onnx_bytes(model: nn.Module, fp16: bool = False, opset: int = OPSET, sample_hw: tuple[int, int] = (64, 64)) -> bytes:
    """The serialised ONNX model of ``model`` (fp32, or fp16 with fp32 instance norms)."""
    require_onnx()
    m = fold_sines(model).eval().float()
    dtype = torch.float32
    if fp16:
        m = keep_norms_fp32(m).half()
        for mod in m.modules():
            if isinstance(mod, Fp32InstanceNorm):
                mod.norm.float()
        dtype = torch.float16
    multiple = getattr(model, "size_multiple", 8)
    h = max(sample_hw[0] // multiple, 2) * multiple
    w = max(sample_hw[1] // multiple, 2) * multiple
    x = torch.zeros(1, getattr(model, "in_channels", 1), h, w, dtype=dtype)
    buf = io.BytesIO()
    dyn = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(_Aligned(m), (x,), buf, dynamo=False, opset_version=opset, input_names=[INPUT],
                          output_names=[OUTPUT], dynamic_axes={INPUT: dyn, OUTPUT: dyn}, do_constant_folding=True)
    return buf.getvalue()


def check_onnx(data: bytes):
    """Run ``onnx.checker`` on an exported model; returns the loaded ModelProto."""
    import onnx

    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    return proto
