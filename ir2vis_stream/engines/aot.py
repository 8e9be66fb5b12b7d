"""Ahead-of-time compiled packages for the CPU (AOTInductor): one build serves every frame size.

``torch.export`` traces the generator's aligned forward under the engine's autocast with a dynamic batch and
dynamic H and W (multiples of the model's ``size_multiple``); AOTInductor compiles that graph into a ``.pt2``
package (a shared library and the weights), which loads quickly and runs any size. Whole-graph
``torch.compile`` with static shapes instead compiles for minutes for every new (batch, H, W) (``ready_s`` and
``startup_s`` of ``compile`` and ``static-compile`` from ``benchmarks/engine_speed.py``; measured:
docs/performance.md).

A package is cached under ``cache_root()/aot/KEY.pt2``; the key covers the weights and architecture
(``model_fingerprint``), the precision, the torch version and the CPU's instruction set, so a package from
another torch or CPU is never loaded. It is written atomically with a SHA-256 sidecar (``cache.store``): a
truncated or corrupted package is rebuilt, not loaded.

Builds run in a separate process, ``python -m ir2vis_stream.engines.aot CHECKPOINT PRECISION PACKAGE``
(``start_build``): the build takes minutes and is mostly Python, so in-process it would contend with
inference for the interpreter lock, and a separate process can finish and cache its package after a short
run has ended. Builders take an exclusive lock on ``KEY.lock``; a second builder of the same key waits for
the first and then finds its package.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ..hardware import autocast_dtype
from .cache import cache_root, key_of, load_verified, model_fingerprint, store

# bump when the exported graph, its calling convention or how it is compiled changes (3: ``inference_model``'s
# folded sines and weights stored at the compute precision; 4: weights exported channels-last; 5: one-pass instance
# norms, ``inference_model(inductor_cpu=True)``)
FORMAT = 5
MAX_BATCH = 256
MAX_SIDE = 8192


def package_parts(model: nn.Module, precision: str) -> dict:
    """Everything a package depends on; a change in any of them means another package."""
    return {"format": FORMAT, "model": model_fingerprint(model), "precision": precision,
            "torch": torch.__version__, "machine": platform.machine(),
            "isa": torch.backends.cpu.get_cpu_capability(), "multiple": getattr(model, "size_multiple", 1)}


def package_path(model: nn.Module, precision: str) -> Path:
    return cache_root() / "aot" / f"{key_of(package_parts(model, precision))}.pt2"


class _Autocast(nn.Module):
    """The model's aligned forward under the autocast of ``precision``: the graph that gets exported."""

    def __init__(self, model: nn.Module, precision: str):
        super().__init__()
        self.model = model
        self.dtype = autocast_dtype(torch.device("cpu"), precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            return self.model.forward_aligned(x)


def build_package(model: nn.Module, precision: str, dest: Path) -> Path:
    """Export and compile ``model`` into the package ``dest`` (checksummed, written atomically)."""
    from torch._inductor import aoti_compile_and_package
    from torch.export import Dim

    from .prepare import inference_model

    m = getattr(model, "size_multiple", 1)
    dtype = autocast_dtype(torch.device("cpu"), precision)
    # Weights channels-last, the layout inductor runs CPU convolutions in. Exported contiguous, they were
    # parameters the package re-laid out at every call (304 transposes in one kernel, all 10.8 M weights):
    # channels-last runs a little faster and builds sooner (measured: docs/performance.md).
    # Instance norms in the form inductor compiles best (``OnePassInstanceNorm``): a faster package for a longer
    # build (measured: docs/performance.md).
    model = inference_model(model.float(), dtype, inductor_cpu=True).eval().to(memory_format=torch.channels_last)
    batch = Dim("batch", min=1, max=MAX_BATCH)
    h, w = Dim("h", min=1, max=MAX_SIDE // m), Dim("w", min=1, max=MAX_SIDE // m)
    example = torch.zeros(example_shape(m, getattr(model, "in_channels", 1), torch.get_num_threads()))
    with torch.no_grad():
        program = torch.export.export(_Autocast(model, precision), (example,),
                                      dynamic_shapes={"x": {0: batch, 2: m * h, 3: m * w}})
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as tmp:
        built = aoti_compile_and_package(program, package_path=str(Path(tmp) / "model.pt2"))
        store(dest, Path(built).read_bytes())
    return dest


def example_shape(multiple: int, channels: int, threads: int) -> tuple[int, int, int, int]:
    """The input the package is exported with. Its sizes are not the package's (every dimension is dynamic)
    but inductor's hints: how many threads each loop is split over and whether a loop has work enough to
    split are decided from them. The batch is ``threads + 1`` (3 on 2 cores): not 1 (that would fix the
    batch at 1), not ``threads`` (inductor then splits the per-pixel kernels, instance norm and sine, over the
    batch alone, and a batch of 1 runs them on one core), under ``2 * threads`` (which would do the same). The
    frame is a middle size, 256x320: from the 32x32 example of the first packages, a 1/8-scale level looked
    like 4x4 pixels. These hints brought the package close to whole-graph static compile's time on a CPU
    without native bf16 (measured: docs/performance.md)."""
    batch = max(threads + 1, 2)  # a batch of 1 would specialise the graph to it
    return batch, channels, _round_up(256, multiple), _round_up(320, multiple)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def load_package(path: Path):
    """The compiled function of a cached package, or None if it is missing, truncated, corrupt or does not load
    (then it is built again)."""
    if load_verified(path) is None:
        return None
    from torch._inductor import aoti_load_package

    try:
        return aoti_load_package(str(path))
    except Exception:  # noqa: BLE001 - a whole file that is no package of this torch: rebuild it
        return None


class Build:
    """A package build in its own process; ``poll()`` is None while it runs, then its exit status."""

    def __init__(self, model: nn.Module, precision: str, dest: Path):
        from ..checkpoint import save_checkpoint

        self.dest = dest
        self.started = time.perf_counter()
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = dest.with_suffix(".log")
        fd, spec = tempfile.mkstemp(dir=dest.parent, prefix=".model-", suffix=".pt")
        os.close(fd)
        save_checkpoint(spec, model)
        with open(self.log_path, "wb") as log:
            # Its own process group, so a Ctrl-C in the terminal (sent to the foreground group) stops the run,
            # not the build it started; but the run's session, so its lowest priority means something: with
            # autogroup scheduling (the Linux default) each session shares the CPU equally whatever its nice,
            # and a build in a session of its own took half of a 2-core machine from the run it serves.
            self.process = subprocess.Popen([sys.executable, "-m", __name__, spec, precision, str(dest)],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            process_group=0)
        _STARTED.append(self)

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self) -> int:
        return self.process.wait()

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def failure(self) -> str:
        """The last line of the builder's log, for a one-line warning."""
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        return lines[-1][:300] if lines else f"exit status {self.process.returncode}"


_STARTED: list[Build] = []


def running_builds() -> list[Build]:
    """The builds this process started that are still running (they outlive the process unless cancelled)."""
    return [b for b in _STARTED if b.poll() is None]


def cancel_builds() -> int:
    """Stop every build this process started that is still running (a build normally outlives its run, to
    cache its package; a test or a benchmark that measures something else stops them); how many were stopped."""
    stopped = 0
    while _STARTED:
        build = _STARTED.pop()
        if build.poll() is None:
            kill_build(build.process.pid)
            build.process.wait()
            stopped += 1
    return stopped


def kill_build(pid: int) -> None:
    """Kill the build process ``pid`` with its compilers and compile workers: a build runs in its own
    process group (``Build`` starts it so), whose id is the build's pid."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


LOWEST_PRIORITY = 19


def main(argv: list[str]) -> int:
    # the run that started this build is running the model eagerly meanwhile: it keeps the CPU, the build
    # (and the compilers it starts) gets what is left, and all of it once the run ends
    os.setpriority(os.PRIO_PROCESS, 0, LOWEST_PRIORITY)
    checkpoint, precision, dest = argv[0], argv[1], Path(argv[2])
    from ..checkpoint import load_checkpoint

    try:
        model = load_checkpoint(checkpoint).model
    finally:
        Path(checkpoint).unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per key; a second one waits, then finds the package
        if load_verified(dest) is None:
            build_package(model, precision, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
