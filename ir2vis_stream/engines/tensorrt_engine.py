"""TensorRT inference from the ONNX export, with plans built once and cached.

Written to TensorRT's documented Python API (10.x, and 11's strongly typed networks); TensorRT cannot be
installed on the machines this project is tested on, so what runs in the test suite is everything that
does not need it: the cache key, the shape profile, plan validation and invalidation, and the fp16 ONNX
graph with fp32 instance norms. docs/testing.md says what has and has not run on hardware.

- **Precision.** TensorRT 10 builds fp16 from an fp32 graph with ``BuilderFlag.FP16``. TensorRT 11 removed
  the precision flags: networks are strongly typed, so fp16 must be in the ONNX itself; we export an fp16
  graph whose instance norms (and their reductions) stay fp32 (``onnx_export``), and parse it into a
  STRONGLY_TYPED network (also used on 10 when that graph is given).
- **Shapes.** One optimisation profile: batch 1..max, the inference H x W fixed (padded to a multiple of 8);
  the profile is part of the cache key, so a new size builds (and caches) a new plan.
- **Cache.** ``<cache>/tensorrt/<key>.plan`` with key = hash(ONNX bytes, profile, precision, GPU name,
  TensorRT version); a SHA-256 sidecar detects truncation or corruption; a plan TensorRT refuses to
  deserialise is rebuilt. A timing cache per (GPU, TensorRT version) makes rebuilds faster. Writes are
  temporary-name + rename, so concurrent builders cannot leave a broken file.
- **Execution.** ``execute_async_v3`` on a dedicated CUDA stream (not the default stream), with input and
  output bound to torch CUDA tensors' memory: no host round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..model import pad_to_multiple
from . import cache
from .onnx_export import INPUT, OPSET, OUTPUT
from .onnxruntime_engine import cached_onnx
from .base import EngineUnavailable


@dataclass(frozen=True)
class ShapeProfile:
    """TensorRT optimisation profile for the input: (batch, channels, H, W) at min / opt / max."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def covers(self, shape) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))


def profile_for(batch: int, channels: int, height: int, width: int, multiple: int = 8) -> ShapeProfile:
    """Batch 1..``batch`` (optimised for ``batch``) at H x W padded up to ``multiple``."""
    if batch < 1 or height < 1 or width < 1:
        raise ValueError(f"bad inference shape {batch}x{channels}x{height}x{width}")
    h = max(-(-height // multiple), 2) * multiple
    w = max(-(-width // multiple), 2) * multiple
    return ShapeProfile((1, channels, h, w), (batch, channels, h, w), (batch, channels, h, w))


def major_version(version: str) -> int:
    return int(str(version).split(".")[0])


def onnx_precision_for(trt_version: str, precision: str) -> bool:
    """Whether the ONNX graph itself must be fp16: TensorRT >= 11 (strongly typed) and fp16 asked for."""
    return precision == "fp16" and major_version(trt_version) >= 11


def plan_key(onnx_bytes: bytes, profile: ShapeProfile, precision: str, gpu_name: str, trt_version: str) -> str:
    return cache.key_of({"onnx": cache.sha256(onnx_bytes), "profile": [profile.min, profile.opt, profile.max],
                         "precision": precision, "gpu": gpu_name, "tensorrt": trt_version, "opset": OPSET})


def plan_path(key: str) -> Path:
    return cache.cache_root() / "tensorrt" / f"{key}.plan"


def timing_cache_path(gpu_name: str, trt_version: str) -> Path:
    safe = "".join(c if c.isalnum() else "_" for c in gpu_name)
    return cache.cache_root() / "tensorrt" / f"timing-{safe}-trt{trt_version}.cache"


def load_or_build_plan(key: str, build: Callable[[], bytes], deserialize: Callable[[bytes], object],
                       rebuild: bool = False):
    """The deserialised engine for ``key`` from the cache, rebuilding when missing, damaged or refused.

    ``build()`` returns serialised plan bytes; ``deserialize(bytes)`` returns an engine or None (TensorRT's
    way of refusing a plan from another version or GPU). Pure logic, tested without TensorRT.
    """
    path = plan_path(key)
    data = None if rebuild else cache.load_verified(path)
    engine = deserialize(data) if data is not None else None
    if engine is None:
        data = build()
        engine = deserialize(data)
        if engine is None:
            raise EngineUnavailable("TensorRT built a plan it cannot load")
        cache.store(path, data)
    return engine


class _Progress:
    """Prints TensorRT's build phases (a build can take minutes)."""

    def __init__(self, trt, log: Callable[[str], None]):
        class Monitor(trt.IProgressMonitor):
            def __init__(self):
                trt.IProgressMonitor.__init__(self)

            def phase_start(self, phase_name, parent_phase, num_steps):
                if parent_phase is None:
                    log(f"TensorRT: {phase_name} ({num_steps} steps)")

            def step_complete(self, phase_name, step):
                return True  # False would cancel the build

            def phase_finish(self, phase_name):
                pass

        self.monitor = Monitor()


class TensorRTEngine:
    name = "tensorrt"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto", *, batch: int = 4,
                 infer_hw: tuple[int, int] | None = None, rebuild: bool = False,
                 log: Callable[[str], None] = print):
        try:
            import tensorrt as trt
        except ImportError:
            raise EngineUnavailable("TensorRT is not installed (pip install 'ir2vis-stream[tensorrt]' from NVIDIA's index)") from None
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise EngineUnavailable("TensorRT runs on NVIDIA GPUs only; use --device cuda")
        self.trt = trt
        if precision not in ("auto", "fp32", "fp16"):
            raise EngineUnavailable(f"TensorRT runs fp32 or fp16 here, not {precision}")
        self.precision = "fp32" if precision == "fp32" else "fp16"
        self.size_multiple = getattr(model, "size_multiple", 8)
        self.in_channels = getattr(model, "in_channels", 1)
        self.model, self.batch, self.rebuild, self.log = model, batch, rebuild, log
        self.gpu_name = torch.cuda.get_device_name(self.device)
        self.stream = torch.cuda.Stream(self.device)
        self.trt_logger = trt.Logger(trt.Logger.WARNING)
        # TensorRT creates its CUDA objects (runtime, engine, context) on the *current* device: on cuda:N every
        # call into it runs inside ``torch.cuda.device(N)``, or it would build and run on GPU 0
        with torch.cuda.device(self.device):
            self.runtime = trt.Runtime(self.trt_logger)
            self.engine = self.context = self.profile = None
            if infer_hw is not None:
                self._prepare(profile_for(batch, self.in_channels, *infer_hw, self.size_multiple))

    # -- build ---------------------------------------------------------------------------------------------
    def _prepare(self, profile: ShapeProfile) -> None:
        trt = self.trt
        fp16_graph = onnx_precision_for(trt.__version__, self.precision)
        onnx_bytes = cached_onnx(self.model, fp16=fp16_graph, rebuild=self.rebuild)
        key = plan_key(onnx_bytes, profile, self.precision, self.gpu_name, trt.__version__)

        def build() -> bytes:
            self.log(f"building TensorRT engine for {profile.opt} ({self.precision}); cached for next time")
            return self._build(onnx_bytes, profile, fp16_graph)

        def deserialize(data: bytes):
            try:
                return self.runtime.deserialize_cuda_engine(data)
            except Exception:  # a plan from another TensorRT or GPU: rebuild it
                return None

        self.engine = load_or_build_plan(key, build, deserialize, self.rebuild)
        self.plan_key = key
        self.rebuild = False
        self.context = self.engine.create_execution_context()
        self.profile = profile

    def _build(self, onnx_bytes: bytes, profile: ShapeProfile, fp16_graph: bool) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.trt_logger)
        strongly_typed = major_version(trt.__version__) >= 11 or fp16_graph
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.trt_logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineUnavailable(f"TensorRT could not parse the ONNX export: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16" and not strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)  # TensorRT 10 with the fp32 graph
        opt_profile = builder.create_optimization_profile()
        opt_profile.set_shape(INPUT, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(opt_profile)
        tc_path = timing_cache_path(self.gpu_name, trt.__version__)
        timing = config.create_timing_cache(cache.load_verified(tc_path) or b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        progress = _Progress(trt, self.log)
        config.progress_monitor = progress.monitor
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineUnavailable("TensorRT failed to build an engine (see its log above)")
        cache.store(tc_path, bytes(config.get_timing_cache().serialize()))
        return bytes(plan)

    # -- run -----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.cuda.device(self.device):
            return self._run(x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels and x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        x, (h, w) = pad_to_multiple(x, self.size_multiple)
        if self.profile is None or not self.profile.covers(tuple(x.shape)):
            self._prepare(profile_for(max(self.batch, x.shape[0]), self.in_channels, *x.shape[-2:], self.size_multiple))
        in_dtype = torch.float16 if self.engine.get_tensor_dtype(INPUT) == self.trt.DataType.HALF else torch.float32
        out_dtype = torch.float16 if self.engine.get_tensor_dtype(OUTPUT) == self.trt.DataType.HALF else torch.float32
        x = x.to(in_dtype).contiguous()
        y = torch.empty((x.shape[0], 3, *x.shape[-2:]), dtype=out_dtype, device=self.device)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))  # x was produced on the current stream
        self.context.set_input_shape(INPUT, tuple(x.shape))
        self.context.set_tensor_address(INPUT, x.data_ptr())
        self.context.set_tensor_address(OUTPUT, y.data_ptr())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        x.record_stream(self.stream)
        y.record_stream(self.stream)
        return y[:, :, :h, :w]

    def describe(self) -> str:
        return f"{self.name} {self.device} {self.precision}"
