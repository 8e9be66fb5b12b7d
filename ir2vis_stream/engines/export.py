"""``ir2vis-stream export``: the model as a file for deployment elsewhere (ONNX, or a TensorRT plan)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..files import atomic_write
from .cache import load_verified
from .onnx_export import check_onnx, export_onnx_bytes


def export_model(model: nn.Module, fmt: str, output: str | Path, precision: str = "fp32", batch: int = 4,
                 infer_hw: tuple[int, int] = (256, 352), device: str = "cuda", log=print) -> Path:
    """Write ``model`` as ONNX (dynamic batch/height/width; inputs' sides multiples of the model's
    ``size_multiple``) or as a TensorRT plan for ``batch`` x ``infer_hw`` on this machine's GPU."""
    out = Path(output)
    if fmt == "onnx":
        if precision not in ("fp32", "fp16"):
            raise ConfigError(f"ONNX export is fp32 or fp16, not {precision}")
        data = export_onnx_bytes(model, fp16=precision == "fp16")
        check_onnx(data)
    elif fmt == "tensorrt":
        from .tensorrt_engine import TensorRTEngine, plan_path

        engine = TensorRTEngine(model, torch.device(device), precision, batch=batch, infer_hw=infer_hw, log=log)
        data = load_verified(plan_path(engine.plan_key))
    else:
        raise ConfigError(f"unknown export format {fmt!r}; use onnx or tensorrt")
    atomic_write(out, data)
    return out
