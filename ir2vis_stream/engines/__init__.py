"""Inference backends behind one interface (``Engine``); ``create_engine`` builds one by name.

Backends: ``torch`` (eager), ``cuda-graph`` (eager replayed as CUDA graphs, ``cuda_graphs.py``), ``compile``
(torch.compile / inductor), ``onnxruntime``, ``tensorrt``.

``auto`` follows a fixed, documented rule; the one measurement in it is CUDA graphs against eager on a GPU:

- CUDA: ``tensorrt`` fp16 when TensorRT is installed, else ``cuda-graph`` at the GPU's auto precision (bf16
  where supported), which times its first shape both ways and stays eager unless the graphs are faster (its
  ``reason`` gives the ratio). Eager bf16 beat fp16 (its fp32 instance norms cost casts) and fp32 (TF32
  convolutions) on a GPU; ``compile`` (inductor's CUDA graphs) took too long to build the 122-block graph, so
  it is used only when asked for by name (measured: docs/performance.md). CUDA graphs of the eager model have
  not run on a GPU yet (``benchmarks/gpu_check.py`` measures them).
- CPU with native bf16 (AMX or AVX512-BF16) and a C++ compiler: ``compile`` bf16, one AOTInductor package
  for every size (``aot.py``): several times eager fp32, about the time of whole-graph static compile and
  close to the compute floor (measured with ``benchmarks/engine_speed.py --rounds``: docs/performance.md). It
  is built once in a low-priority background process while the run goes eager, so the first frame comes at
  once and the package takes over when ready (``benchmarks/startup.py``; measured: docs/performance.md).
- Other CPUs: ``onnxruntime`` fp32 (faster than eager fp32 and about as fast as the fp32 package, with nothing
  to build; measured: docs/performance.md) when installed, else ``torch`` fp32.
- A model that is not one of this package's generators (no ``forward_aligned``, e.g. a test's identity
  model): ``torch``.

A backend asked for by name that cannot run here (not installed, no compiler, no GPU) is an error that
says why; under ``auto`` the rule simply moves on to the next candidate. The engine's ``reason`` says
which was picked and why.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from ..errors import ConfigError
from ..hardware import cpu_has_fast_bf16
from .base import Engine, EngineUnavailable
from .torch_engine import CompiledEngine, TorchEngine, cxx_compiler

ENGINES = ("torch", "cuda-graph", "compile", "onnxruntime", "tensorrt")


def _build(name: str, model: nn.Module, device: torch.device, precision: str, **options) -> Engine:
    if name == "torch":
        return TorchEngine(model, device, precision)
    if name == "cuda-graph":
        from .cuda_graphs import CudaGraphEngine

        return CudaGraphEngine(model, device, precision, **{k: v for k, v in options.items()
                                                             if k in ("compare_eager", "log")})
    if name == "compile":
        return CompiledEngine(model, device, precision, **{k: v for k, v in options.items()
                                                            if k in ("rebuild", "log", "wait", "background_build")})
    if name == "onnxruntime":
        from .onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(model, device, precision, rebuild=options.get("rebuild", False))
    if name == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        return TensorRTEngine(model, device, precision, **{k: v for k, v in options.items()
                                                            if k in ("batch", "infer_hw", "rebuild", "log")})
    raise ConfigError(f"unknown engine {name!r}; choose one of auto, {', '.join(ENGINES)}")


def auto_candidates(device: torch.device, model: nn.Module | None = None) -> list[tuple[str, str, str]]:
    """(engine, precision, why) in the order ``auto`` tries them on ``device`` for ``model``."""
    if model is not None and not hasattr(model, "forward_aligned"):
        return [("torch", "auto", "not one of this package's generators: compiled and exported engines need its aligned forward")]
    if device.type == "cuda":
        out = []
        if importlib.util.find_spec("tensorrt") is not None:
            out.append(("tensorrt", "fp16", "CUDA GPU with TensorRT installed"))
        out.append(("cuda-graph", "auto", "CUDA GPU" + (", fallback" if out else " without TensorRT")
                    + ": the eager model as CUDA graphs where they measure faster"))
        out.append(("torch", "auto", "CUDA GPU, fallback"))
        return out
    out = []
    if cpu_has_fast_bf16() and cxx_compiler() is not None:
        out.append(("compile", "bf16", "CPU with native bf16 (AMX/AVX512-BF16) and a C++ compiler"))
    if importlib.util.find_spec("onnxruntime") is not None:
        out.append(("onnxruntime", "fp32", "CPU without native bf16" if not out else "CPU, fallback"))
    out.append(("torch", "auto", "CPU, fallback"))
    return out


def create_engine(name: str, model: nn.Module, device: torch.device, precision: str = "auto", **options) -> Engine:
    """Build the engine ``name`` (or pick one with ``auto``) for ``model`` on ``device``.

    Options: ``rebuild`` (ignore cached exports/plans), ``log``, for TensorRT ``batch`` and ``infer_hw``, for
    cuda-graph ``compare_eager`` (``auto`` sets it).
    """
    device = torch.device(device)
    if name != "auto":
        engine = _build(name, model, device, precision, **options)
        engine.reason = "asked for"
        return engine
    failures = []
    for candidate, default_precision, why in auto_candidates(device, model):
        extra = {"compare_eager": True} if candidate == "cuda-graph" else {}
        try:
            engine = _build(candidate, model, device, precision if precision != "auto" else default_precision,
                            **options, **extra)
        except EngineUnavailable as exc:
            failures.append(f"{candidate}: {exc}")
            continue
        engine.reason = why + (f" (skipped {'; '.join(failures)})" if failures else "")
        return engine
    raise EngineUnavailable("no engine can run here: " + "; ".join(failures))


__all__ = ["ENGINES", "Engine", "EngineUnavailable", "TorchEngine", "CompiledEngine", "auto_candidates", "create_engine"]
