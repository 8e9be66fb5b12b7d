"""ONNX Runtime inference (CPU or CUDA execution provider) from a cached ONNX export.

The export (see ``onnx_export``) is cached under the user cache, keyed by the model's fingerprint, the
precision and the opset, so it is made once per model. On CUDA, inputs and outputs stay on the GPU
(I/O binding to torch tensors); on the CPU they go through NumPy. ONNX Runtime's CPU provider has no bf16
convolutions, so on the CPU this engine runs fp32.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import pad_to_multiple
from . import cache
from .onnx_export import INPUT, ONNX_FORMAT, OPSET, OUTPUT, check_onnx, export_onnx_bytes
from .base import EngineUnavailable


def cached_onnx(model: nn.Module, fp16: bool, rebuild: bool = False) -> bytes:
    """The ONNX export of ``model`` from the cache, exporting (and checking) it on a miss or when damaged."""
    key = cache.key_of({"format": ONNX_FORMAT, "model": cache.model_fingerprint(model), "fp16": fp16,
                        "opset": OPSET, "torch": torch.__version__})
    path = cache.cache_root() / "onnx" / f"{key}.onnx"
    data = None if rebuild else cache.load_verified(path)
    if data is None:
        data = export_onnx_bytes(model, fp16=fp16)
        check_onnx(data)
        cache.store(path, data)
    return data


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto", rebuild: bool = False):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineUnavailable("onnxruntime is not installed (pip install 'ir2vis-stream[onnx]')") from None
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineUnavailable("this onnxruntime has no CUDA execution provider (install onnxruntime-gpu)")
            if precision not in ("auto", "fp32", "fp16"):
                raise EngineUnavailable(f"onnxruntime on CUDA runs fp32 or fp16 here, not {precision}")
            self.precision = "fp32" if precision == "fp32" else "fp16"
            providers = [("CUDAExecutionProvider", {"device_id": self.device.index or 0}), "CPUExecutionProvider"]
        else:
            if precision not in ("auto", "fp32"):
                raise EngineUnavailable(f"onnxruntime on the CPU runs fp32 only, not {precision}")
            self.precision = "fp32"
            providers = ["CPUExecutionProvider"]
        self.size_multiple = getattr(model, "size_multiple", 8)
        self.in_channels = getattr(model, "in_channels", 1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        data = cached_onnx(model, fp16=self.precision == "fp16", rebuild=rebuild)
        self.session = ort.InferenceSession(data, sess_options=opts, providers=providers)
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels and x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        x, (h, w) = pad_to_multiple(x, self.size_multiple)
        x = x.to(self._dtype).contiguous()
        if self.device.type == "cuda":
            y = torch.empty((x.shape[0], 3, *x.shape[-2:]), dtype=self._dtype, device=self.device)
            binding = self.session.io_binding()
            binding.bind_input(INPUT, "cuda", self.device.index or 0, _np_dtype(self._dtype), tuple(x.shape), x.data_ptr())
            binding.bind_output(OUTPUT, "cuda", self.device.index or 0, _np_dtype(self._dtype), tuple(y.shape), y.data_ptr())
            torch.cuda.current_stream(self.device).synchronize()  # x is written on torch's stream, ORT reads on its own
            self.session.run_with_iobinding(binding)
        else:
            y = torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.numpy()})[0])
        return y[:, :, :h, :w]

    def describe(self) -> str:
        return f"{self.name} {self.device} {self.precision}"


def _np_dtype(dtype: torch.dtype):
    import numpy as np

    return np.float16 if dtype == torch.float16 else np.float32
