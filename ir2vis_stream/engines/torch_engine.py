"""PyTorch eager inference: channels_last, autocast to bf16 (CPUs with native bf16) or fp16 (CUDA).

Under fp16, instance norm runs in fp32: its mean/variance reductions overflow or lose precision in half
precision, a known source of NaNs in generators like this one.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..hardware import autocast_dtype, precision_name
from .base import EngineUnavailable
from .prepare import inference_model


class TorchEngine:
    """Eager PyTorch on CPU or CUDA; see the module docstring for the precision rules."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto"):
        self.device = torch.device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.precision = precision_name(self.dtype)
        self.size_multiple = getattr(model, "size_multiple", 1)
        self.model = inference_model(model, self.dtype).to(self.device).eval().to(memory_format=torch.channels_last)

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


NO_BACKGROUND_BUILD_ENV = "IR2VIS_STREAM_NO_BACKGROUND_BUILD"  # set (to anything): no package build starts


class CompiledEngine(TorchEngine):
    """The model compiled by inductor, under the same precision rules; on the CPU one package for every size.

    - CPU: an AOTInductor package (``engines/aot.py``) with a dynamic batch, height and width, built once per
      model, precision, torch version and CPU instruction set and cached; a cached package loads quickly
      (measured: docs/performance.md). Without one, the engine runs eager at once and builds the package in a
      background process, then switches to it between two calls (``log`` says so); ``wait=True`` blocks until
      it is in.
      A failed build leaves the engine eager, with one warning. ``background_build=False`` (default: unless
      ``$IR2VIS_STREAM_NO_BACKGROUND_BUILD`` is set) starts no build: without a cached package the engine is
      unavailable (``auto`` moves on), for scripts and containers that must leave no process behind.
    - CUDA: ``torch.compile`` of the aligned forward, with static shapes captured as CUDA graphs
      (``mode="reduce-overhead"``): each (batch, H, W) compiles once; batches smaller than the largest seen
      are padded up to it (the last batch of a video) rather than compiling again. Kernels are cached on disk
      under the user cache (``TORCHINDUCTOR_CACHE_DIR``, unless already set).

    On CUDA every call runs on one thread the engine owns, whichever thread calls it: torch.compile's CUDA
    graphs are recorded per thread, so an engine warmed on the main thread and then fed by the pipeline's
    inference thread would record (and hold memory for) its graphs twice. On the CPU calls run on the caller's
    thread, as every other engine's: a thread of its own would hold a second team of OpenMP workers beside the
    caller's, and libgomp then wakes every team's workers from sleep at each parallel region (see
    ``hardware.release_torch_workers``): the package ran slower on its own thread, and so did the caller's own
    parallel work after it (measured: docs/performance.md).
    """

    name = "compile"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto", *, rebuild: bool = False,
                 log: Callable[[str], None] | None = None, wait: bool = False, background_build: bool | None = None):
        import os
        from concurrent.futures import ThreadPoolExecutor

        from .cache import cache_root

        device = torch.device(device)
        if device.type == "cpu" and cxx_compiler() is None:
            raise EngineUnavailable("torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was found")
        if device.type == "cpu" and not hasattr(model, "forward_aligned"):
            raise EngineUnavailable("compile on the CPU builds a package of this package's generators "
                                    f"(their aligned forward); {type(model).__name__} is not one")
        super().__init__(model, device, precision)
        self.source = model  # the caller's: what a package is keyed by and built from (it prepares its own copy)
        self.log = log or (lambda message: None)
        self._eager = getattr(self.model, "forward_aligned", self.model)
        self._thread = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="ir2vis-compiled")
                        if device.type == "cuda" else None)  # see the class docstring
        self._batch = 0
        self.build = None  # the package build running in the background, if any
        if device.type == "cuda":
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
            self._fn = torch.compile(self._eager, dynamic=False, mode="reduce-overhead")
            self.static_shapes = True
            return
        self.static_shapes = False
        if background_build is None:
            background_build = not os.environ.get(NO_BACKGROUND_BUILD_ENV)
        self._fn = self._package_or_build(rebuild, background_build)
        if wait:
            self.wait_ready()

    def _package_or_build(self, rebuild: bool, background_build: bool):
        from . import aot

        self.package = aot.package_path(self.source, self.precision)
        if rebuild:
            for stale in (self.package, self.package.with_name(self.package.name + ".sha256")):
                stale.unlink(missing_ok=True)
        fn = aot.load_package(self.package)
        if fn is not None:
            return fn
        if not background_build:
            raise EngineUnavailable("no compiled package is cached for this model and CPU, and background builds "
                                    f"are off (--no-background-build / {NO_BACKGROUND_BUILD_ENV})")
        self.build = aot.Build(self.source, self.precision, self.package)
        self.log("compile: building the compiled engine in the background (minutes, once for this model and "
                 "machine: it serves every frame size; cached for next time); running eager until it is ready")
        return self._eager

    @property
    def ready(self) -> bool:
        """Whether calls run compiled code (not eager while a package builds, nor after a failed build)."""
        return self._fn is not self._eager

    def wait_ready(self) -> bool:
        """Block until a background build has finished and is swapped in; whether the engine is compiled now."""
        if self.build is not None:
            self.build.wait()
            self._on_own_thread(self._swap_if_built)
        return self.ready

    def _swap_if_built(self) -> None:
        from . import aot

        build = self.build
        if build is None or build.poll() is None:
            return
        self.build = None
        fn = aot.load_package(self.package) if build.poll() == 0 else None
        if fn is None:
            self._fall_back_to_eager(f"the package build failed ({build.failure()}; log: {build.log_path})")
            return
        self._fn = fn
        self.log(f"compile: compiled engine ready after {build.seconds():.0f} s; switched from eager")

    def describe(self) -> str:
        return super().describe() + (" (eager until its build is ready)" if self.build is not None else "")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._on_own_thread(self._call, x)

    def _on_own_thread(self, fn, *args):
        return fn(*args) if self._thread is None else self._thread.submit(fn, *args).result()

    @torch.inference_mode()
    def _call(self, x: torch.Tensor) -> torch.Tensor:
        from ..model import pad_to_multiple

        self._swap_if_built()
        n = x.shape[0]
        if self.static_shapes:
            self._batch = max(self._batch, n)
            if n < self._batch:
                x = torch.cat([x, x[-1:].expand(self._batch - n, *x.shape[1:])])
        x, (h, w) = pad_to_multiple(x, self.size_multiple)
        x = x.contiguous(memory_format=torch.channels_last if self.static_shapes or not self.ready
                         else torch.contiguous_format)
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
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            self._fall_back_to_eager(f"torch.compile failed ({type(exc).__name__}: {reason})")
            return self._fn(x)

    def _fall_back_to_eager(self, why: str) -> None:
        import warnings

        warnings.warn(f"{why}; running eager instead")
        self._fn, self.name = self._eager, "torch"
        self.reason = f"{getattr(self, 'reason', 'asked for compile')}; compile failed, running eager"


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
