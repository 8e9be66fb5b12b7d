"""What this machine can run fast: the device to use and whether bf16 is native on its CPU.

bf16 matmuls/convolutions are fast only where the CPU has AMX or AVX512-BF16 instructions; elsewhere
PyTorch emulates them and bf16 is slower than fp32, so every "auto" precision decision comes through here.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch

from .errors import UserError


class DeviceError(UserError):
    """A device that was asked for but is not there; the message is one sentence for the user."""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True when the CPU executes bf16 natively (AMX-BF16 or AVX512-BF16) and PyTorch's oneDNN uses it."""
    if not ({"amx_bf16", "avx512_bf16"} & cpu_flags()):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def cuda_has_native_bf16(device: torch.device) -> bool:
    """bf16 tensor cores: compute capability 8.0 (Ampere) and newer. (``torch.cuda.is_bf16_supported()`` also
    says yes where bf16 is only emulated, e.g. on a T4 or V100, where it is slow.)"""
    return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> first CUDA GPU if any, else CPU; ``cuda[:N]`` fails clearly when there is no such GPU."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}; use auto, cpu or cuda[:N]")
    return device


PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""The one dtype table: a precision's name -> the dtype autocast runs at (None: plain fp32)."""


def precision_name(dtype: torch.dtype | None) -> str:
    """The name of an autocast dtype in ``PRECISIONS`` (None -> ``fp32``)."""
    return next(name for name, d in PRECISIONS.items() if d == dtype)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The dtype to autocast to (None = plain fp32) for ``precision`` in auto|fp32|bf16|fp16 on ``device``."""
    precision = precision.lower()
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError("fp16 is a CUDA precision; on the CPU use bf16 (fast with AMX/AVX512-BF16) or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        warnings.warn("this CPU has no native bf16 (AMX or AVX512-BF16): PyTorch emulates it, slower than fp32 "
                      "(training's conv gradients take its reference path, several times slower); --precision auto "
                      "picks fp32 here")
    if precision in PRECISIONS:
        return PRECISIONS[precision]
    if precision != "auto":
        raise DeviceError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if device.type == "cuda":  # bf16 needs no loss scaling and measured faster than fp16 (docs/performance.md)
        return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


@functools.cache
def reuse_freed_memory(threshold: int = 1 << 30) -> bool:
    """Keep freed blocks below ``threshold`` bytes in the process's heap for the next allocation (glibc only);
    whether it applied.

    By default glibc hands every block over 32 MiB straight to the kernel (``mmap``) and back (``munmap``) when
    freed, and every touch of a fresh page is a fault the kernel answers by zeroing it. Eager inference on the
    CPU frees and reallocates activations of tens of MiB hundreds of times per frame, so page faults and the
    kernel's share of the CPU time (``ru_stime``) were a large part of a frame; with this, they nearly vanish
    (measured: docs/performance.md). The price is memory: the heap keeps its peak.

    It also makes every thread allocate from the one main heap (``M_ARENA_MAX`` 1). glibc gives each new thread
    an arena of its own, and such an arena serves no block over 64 MiB from its heap: those are mapped and
    unmapped at every call whatever the threshold. The pipeline's inference thread (and, until the compile
    engine ran on its caller's thread, the engine's own) allocate activations of 80-340 MiB at 640x512: the
    compiled package on its thread ran well behind the same graph on the main thread, and with one arena about
    level with it (``benchmarks/engine_speed.py``; measured: docs/performance.md).
    Must run before the process starts threads that allocate (glibc fixes the arena limit at the first
    thread's first allocation); the command line (``cli``, ``make demo``) calls it first; a library user opts in."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, or no glibc
        return False
    trim = min(2 * threshold, 2**31 - 1)  # an int in C: ctypes would wrap a larger one to a negative
    return all([bool(mallopt(_M_MMAP_THRESHOLD, threshold)), bool(mallopt(_M_TRIM_THRESHOLD, trim)),
                bool(mallopt(_M_ARENA_MAX, 1))])


@functools.cache
def _openmp():
    """The OpenMP runtime that torch's CPU ops run their threads on (GNU libgomp, bundled in the Linux wheels),
    through ctypes; None where torch uses another (``torch.__config__.parallel_info()`` says which)."""
    import ctypes

    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    bundled = sorted((Path(torch.__file__).parent / "lib").glob("libgomp*.so*"))
    for name in [str(p) for p in bundled] + ["libgomp.so.1"]:  # the one already loaded: same soname
        try:
            lib = ctypes.CDLL(name)
            return lib if hasattr(lib, "omp_pause_resource_all") else None
        except OSError:
            continue
    return None


def release_torch_workers() -> bool:
    """End the OpenMP worker threads that this thread's parallel torch ops started; whether it could.

    Each thread that runs a parallel op keeps a team of workers for the next one, and when the process holds
    more of them than it has CPUs, libgomp makes every team give up its CPU between two parallel regions
    instead of spinning: the next region waits for a wake-up. A compiled model runs about 600 regions a frame,
    so one idle team left on another thread (one that only waited) made it markedly slower (measured:
    docs/performance.md). ``Pipeline.run`` calls this on the thread that started it (which loaded the model,
    then only waits), so the inference thread's team is the only one. The workers come back at this thread's
    next parallel op (OpenMP's ``omp_pause_resource_all``)."""
    omp = _openmp()
    return omp is not None and omp.omp_pause_resource_all(1) == 0  # 1: omp_pause_soft
