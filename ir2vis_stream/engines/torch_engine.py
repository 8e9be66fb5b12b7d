"""PyTorch eager inference: channels_last, autocast to bf16 (CPUs with native bf16) or fp16 (CUDA).

Under fp16, instance norm runs in fp32: its mean/variance reductions overflow or lose precision in half
precision, a known source of NaNs in generators like this one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..hardware import autocast_dtype, precision_name
from .base import EngineUnavailable


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
        self.precision = precision_name(self.dtype)
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


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use on CPU, if there is one."""
    import os
    import shutil

    for name in filter(None, (os.environ.get("CXX"), "g++", "c++", "clang++")):
        path = shutil.which(name)
        if path:
            return path
    return None


class CompiledEngine(TorchEngine):
    """``torch.compile`` (inductor) of the model's aligned forward, under the same precision rules.

    Shapes are static: each (batch, H, W) compiles once; batches smaller than the largest seen are padded
    up to it (the last batch of a video) rather than triggering a new compilation. On CUDA the graphs are
    captured as CUDA graphs (``mode="reduce-overhead"``). Compiled kernels are cached on disk under the
    user cache (``TORCHINDUCTOR_CACHE_DIR``, unless already set), so a second process starts much faster.

    Every call runs on one thread the engine owns, whichever thread calls it: torch.compile's CUDA graphs are
    recorded per thread, so an engine warmed on the main thread and then fed by the pipeline's inference
    thread would record (and hold memory for) its graphs twice.
    """

    name = "compile"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto"):
        import os

        from .cache import cache_root

        device = torch.device(device)
        if device.type == "cpu" and cxx_compiler() is None:
            raise EngineUnavailable("torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was found")
        super().__init__(model, device, precision)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
        mode = "reduce-overhead" if device.type == "cuda" else None
        target = getattr(self.model, "forward_aligned", self.model)
        self._eager = target
        self._fn = torch.compile(target, dynamic=False, mode=mode)
        self._batch = 0
        from concurrent.futures import ThreadPoolExecutor

        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ir2vis-compiled")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._thread.submit(self._call, x).result()

    @torch.inference_mode()
    def _call(self, x: torch.Tensor) -> torch.Tensor:
        from ..model import pad_to_multiple

        n = x.shape[0]
        self._batch = max(self._batch, n)
        if n < self._batch:
            x = torch.cat([x, x[-1:].expand(self._batch - n, *x.shape[1:])])
        x, (h, w) = pad_to_multiple(x, self.size_multiple)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            y = self._run(x)
        return y[:n, :, :h, :w].clone()  # clone: CUDA-graph outputs are overwritten by the next call

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled function; if compiling fails (now or for a later shape), eager from then on."""
        try:
            return self._fn(x)
        except _compile_errors() as exc:
            if self._fn is self._eager:
                raise
            import warnings

            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {reason}); running eager instead")
            self._fn, self.name = self._eager, "torch"
            self.reason = f"{getattr(self, 'reason', 'asked for compile')}; compile failed, running eager"
            return self._fn(x)


def _compile_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a failed torch.compile (dynamo or inductor), not of the model running."""
    from torch._dynamo.exc import TorchDynamoException

    errors: list[type[BaseException]] = [TorchDynamoException]
    try:
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    except ImportError:  # older PyTorch
        pass
    return tuple(errors)
