"""Inference speed of every engine path on this machine, and how close each gets to the hardware's floor.

    python benchmarks/engine_speed.py                       # CPU: eager fp32/bf16, compile bf16, ONNX Runtime fp32
    python benchmarks/engine_speed.py --paths static-compile:bf16,compile:bf16   # the package vs whole-graph compile
    python benchmarks/engine_speed.py --paths static-compile:bf16,static-aot:bf16 --sizes 256x256 --batches 1
    python benchmarks/engine_speed.py --paths static-compile:bf16,compile:bf16 --rounds 6   # interleaved, medians
    python benchmarks/engine_speed.py --device cuda --batches 1,8,32 --sizes 640x512 \
        --paths torch:fp32,torch:fp16,torch:bf16,compile:fp16,onnxruntime:fp32

For each path (engine:precision), size and batch: frames/s of the engine alone on a batch already on the
device (one warm-up call, whose time is reported as ``startup_s``; then calls until ``--seconds`` have
passed), and the ratio to eager fp32 at the same size and batch, measured in the same process. The
compiled engine on the CPU is measured once its package is built (``ready_s``: the build, or the cache load).
``static-compile`` is the CPU compile that the package replaced, kept here as the baseline: whole-graph
``torch.compile`` with static shapes, one compilation per (batch, H, W); ``static-aot`` is the package
exported at one static shape, to tell what the package's dynamic shapes cost.

The floor: the default generator is 64-channel 3x3 convolutions plus element-wise work (instance norm,
sine), so its fastest possible time is its FLOPs divided by the rate this device reaches on such a
convolution (measured here, at the fast precision: fp16 on CUDA, bf16 on a CPU with native bf16, else fp32), and, for eager execution on
a GPU, its activation traffic divided by the memory bandwidth (every layer reads its input and writes its
output; measured with a device copy). ``floor_x`` is a path's time per frame over the compute floor.

Figures need an otherwise idle machine; the report records the load average and, on Linux, the share of
CPU time stolen by the hypervisor while it ran (``cpu_steal_share``: on the shared 2-core development VM it
reached 50 %, and one path's speed moved 2-3x from one minute to the next). ``--rounds N`` builds every path
first and then times one call of each in turn, N rounds, reporting medians: drift falls on every path alike,
so their ratios hold where the one-after-another default's do not. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

from ir2vis_stream.checkpoint import default_checkpoint_path, load_checkpoint
from ir2vis_stream.engines import create_engine
from ir2vis_stream.engines import EngineUnavailable
from ir2vis_stream.hardware import cpu_has_fast_bf16, reuse_freed_memory
from ir2vis_stream.model import CONFIGS, GeneratorConfig, MultiScaleGenerator, build_generator, count_flops

CPU_PATHS = "torch:fp32,torch:bf16,compile:bf16,onnxruntime:fp32"


class StaticCompile:
    """Whole-graph ``torch.compile`` (inductor) of the aligned forward with static shapes, under autocast:
    the CPU ``compile`` engine until 2026-12-02, which compiled for 90-125 s at every new (batch, H, W)."""

    name = "static-compile"

    def __init__(self, model: nn.Module, device: torch.device, precision: str):
        from ir2vis_stream.engines import TorchEngine

        self.eager = TorchEngine(model, device, precision)
        self.fn = torch.compile(self.eager.model.forward_aligned, dynamic=False)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.eager.dtype
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return self.fn(x.contiguous(memory_format=torch.channels_last))

    def describe(self) -> str:
        return f"static-compile {self.eager.device} {self.eager.precision}"


class StaticAot:
    """An AOTInductor package like the ``compile`` engine's, but exported at one static (batch, H, W): built
    in this process on the first call at each shape (its time is that call's ``startup_s``). It tells whether
    the package's dynamic shapes, rather than AOTInductor itself, cost its speed against ``static-compile``."""

    name = "static-aot"

    def __init__(self, model: nn.Module, device: torch.device, precision: str):
        if device.type != "cpu":
            raise EngineUnavailable("static-aot is measured on the CPU only")
        self.model, self.precision, self.runners = model.float().eval(), precision, {}

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self.runners:
            import tempfile

            from torch._inductor import aoti_compile_and_package, aoti_load_package

            from ir2vis_stream.engines.aot import _Autocast

            with torch.no_grad():
                program = torch.export.export(_Autocast(self.model, self.precision), (torch.zeros(shape),))
            folder = tempfile.mkdtemp(prefix="static-aot-")
            self.runners[shape] = aoti_load_package(
                aoti_compile_and_package(program, package_path=f"{folder}/model.pt2"))
        return self.runners[shape](x.contiguous())

    def describe(self) -> str:
        return f"static-aot cpu {self.precision}"


def build_path(name: str, model: nn.Module, device: torch.device, precision: str):
    """(engine, seconds until it runs at full speed, not counting its first call)."""
    t = time.perf_counter()
    if name == "static-compile":
        return StaticCompile(model, device, precision), time.perf_counter() - t
    if name == "static-aot":
        return StaticAot(model, device, precision), time.perf_counter() - t
    engine = create_engine(name, model, device, precision, **({"wait": True} if name == "compile" else {}))
    return engine, time.perf_counter() - t


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, all) clock ticks of this machine's CPUs so far, from /proc/stat (Linux); None elsewhere."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rate(fn, device: torch.device, seconds: float, min_calls: int = 2) -> float:
    """Calls per second of ``fn`` (already warm), over at least ``seconds`` and ``min_calls`` calls."""
    sync(device)
    t0 = time.perf_counter()
    calls = 0
    while calls < min_calls or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    sync(device)
    return calls / (time.perf_counter() - t0)


def conv_peak(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    """FLOP/s of a 64->64 3x3 convolution (the model's layer) at ``dtype``, channels_last."""
    n, hw = (64, 256) if device.type == "cuda" else (8, 128)
    conv = nn.Conv2d(64, 64, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(n, 64, hw, hw, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv(x)
        rate = timed_rate(lambda: conv(x), device, seconds)
    return rate * 2 * 64 * 64 * 9 * n * hw * hw


# seconds of the floor's convolution timed in each round of --rounds: on the shared VM the rate measured once at
# the start moved 0.11-0.17 TFLOP/s from one run to the next (fp32, 2026-12-07), as the paths' speeds do
ROUND_PEAK_SECONDS = 1.0


def copy_bandwidth(device: torch.device, seconds: float) -> float:
    """Bytes per second moved (read + write) by a large device-to-device copy."""
    numel = (256 if device.type == "cuda" else 32) * 2**20
    a, b = torch.empty(numel, device=device), torch.empty(numel, device=device)
    b.copy_(a)
    return timed_rate(lambda: b.copy_(a), device, seconds) * 2 * 4 * numel


def activation_bytes(model: nn.Module, hw: tuple[int, int], bytes_per_value: int) -> int:
    """Bytes every leaf module reads (inputs) and writes (outputs) in one forward pass of one frame."""
    total = 0

    def hook(_, inputs, output):
        nonlocal total
        tensors = [t for t in inputs if torch.is_tensor(t)] + ([output] if torch.is_tensor(output) else [])
        total += sum(t.numel() for t in tensors) * bytes_per_value

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.inference_mode():
        model(torch.zeros(1, 1, hw[1], hw[0], device=next(model.parameters()).device))
    for h in handles:
        h.remove()
    return total


def load_model(checkpoint: str | None) -> tuple[nn.Module, str]:
    path = checkpoint or default_checkpoint_path()
    if os.path.isfile(path):
        return load_checkpoint(path).model, str(path)
    return build_generator("msp").eval(), "default configuration, random weights (costs what a trained one costs)"


def model_from_spec(spec: str) -> tuple[nn.Module, str]:
    """A ``--models`` entry: a named configuration (``paper``, ``fast``: ``model.CONFIGS``) or ``WIDTHS/BLOCKS``
    (e.g. ``16,32,64,64/1,2,4,8``) with random weights, which cost what trained ones cost; else a checkpoint."""
    if spec in CONFIGS:
        return MultiScaleGenerator(CONFIGS[spec]).eval(), spec
    if "/" in spec and not os.path.exists(spec):
        widths, blocks = (tuple(int(v) for v in part.split(",")) for part in spec.split("/"))
        return MultiScaleGenerator(GeneratorConfig(widths=widths, blocks=blocks)).eval(), spec
    return load_model(spec)


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paths", default=CPU_PATHS, help="engine:precision,... (eager fp32 is always measured)")
    ap.add_argument("--sizes", default="256x256,640x512")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    ap.add_argument("--checkpoint", default=None, help="default: the bundled model, else random weights")
    ap.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                    help="measure several models side by side instead of --checkpoint: paper, fast, WIDTHS/BLOCKS "
                         "(e.g. 16,32,64,64/1,2,4,8; random weights) or a checkpoint; rows name their model")
    ap.add_argument("--json", default=None, help="write the report here")
    ap.add_argument("--rounds", type=int, default=0,
                    help="interleave: every path once per round, this many rounds, medians reported (for a "
                         "machine whose speed drifts from minute to minute; 0: one path after another)")
    args = ap.parse_args(argv)
    reuse_freed_memory()  # as the command line runs

    device = torch.device(args.device)
    models = [model_from_spec(m) for m in args.models] if args.models else [load_model(args.checkpoint)]
    model_desc = "; ".join(desc for _, desc in models)
    paths = ["torch:fp32"] + [p for p in args.paths.split(",") if p and p != "torch:fp32"]
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    # the floor is set by the fastest precision the device runs natively: emulated bf16 (a CPU without
    # AMX/AVX512-BF16) is slower than fp32, so there the floor is fp32's
    fast = torch.float16 if device.type == "cuda" else torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    peak = conv_peak(device, fast, args.seconds)
    bandwidth = copy_bandwidth(device, args.seconds)
    print(f"device {device}: 64->64 3x3 conv at {str(fast).split('.')[-1]} {peak / 1e12:.2f} TFLOP/s, "
          f"copy {bandwidth / 1e9:.0f} GB/s; model: {model_desc}", flush=True)

    ticks = cpu_ticks()
    if args.rounds:  # every model's every path in each round
        rows = interleaved([(model, desc, p) for model, desc in models for p in paths], device, sizes, batches,
                           args.rounds, peak, bandwidth, fast)
    else:
        rows = [row for model, desc in models
                for row in one_after_another(paths, model, desc, device, sizes, batches, args.seconds, peak, bandwidth)]
    report = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else f"cpu, {torch.get_num_threads()} threads", "torch": torch.__version__,
              "load_average": os.getloadavg()[0], "model": model_desc, "conv_peak_flops": peak,
              "copy_bandwidth_bytes": bandwidth, "rounds": args.rounds, "rows": rows,
              # the share of CPU time the hypervisor gave to other machines while this ran: on a shared VM
              # absolute figures move with it; ratios measured with --rounds much less
              "cpu_steal_share": steal_share(ticks, cpu_ticks()),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def steal_share(before, after) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


@functools.lru_cache(maxsize=None)
def frame_work(model: nn.Module, w: int, h: int) -> tuple[int, int]:
    """(FLOPs, activation bytes at 2 bytes a value) of one w x h frame: two forward passes, once per size."""
    return count_flops(model, h, w), activation_bytes(model, (w, h), 2)


def _row(name_prec, engine, model, desc, w, h, b, ms_per_frame, ready, startup, peak, bandwidth, rows,
         floor_x: float | None = None) -> dict:
    """One path's figures; ``floor_x`` (time over the compute floor) is worked out from ``peak`` unless given."""
    flops, traffic = frame_work(model, w, h)
    floor_s = flops / peak
    row = {"path": name_prec, "model": desc, "available": True, "size": f"{w}x{h}", "batch": b,
           "fps": 1000 / ms_per_frame,
           "ms_per_frame": ms_per_frame, "ready_s": ready, "startup_s": startup,
           "gflop_per_frame": flops / 1e9, "compute_floor_ms": floor_s * 1000,
           "traffic_floor_ms": traffic / bandwidth * 1000,
           "floor_x": floor_x if floor_x is not None else ms_per_frame / 1000 / floor_s}
    base = next((r for r in rows if r.get("path") == "torch:fp32" and r.get("size") == row["size"]
                 and r.get("batch") == b and r.get("model") == desc), None)
    row["vs_eager_fp32"] = row["fps"] / base["fps"] if base else None
    row["engine"] = engine.describe()  # what ran (a failed compile runs eager)
    print(f"{desc[:24]:24s} {name_prec:18s} {w}x{h} b{b:<3d} {row['fps']:8.2f} frames/s  {ms_per_frame:8.2f} ms/frame  "
          f"{'x%.2f' % row['vs_eager_fp32'] if row['vs_eager_fp32'] else 'x?'} vs eager fp32  "
          f"{row['floor_x']:.1f}x the compute floor ({floor_s * 1000:.2f} ms; traffic {row['traffic_floor_ms']:.2f} ms)"
          f"  ready {ready:.1f} s, first call {startup:.1f} s", flush=True)
    return row


def _built(entries, device):
    """(entry, engine, ready seconds) for every (model, description, path) entry that can run here; for the
    others a row saying why."""
    for model, desc, name_prec in entries:
        name, precision = name_prec.split(":")
        try:
            engine, ready = build_path(name, model, device, precision)
        except (EngineUnavailable, ImportError, RuntimeError, ValueError) as exc:
            print(f"{desc} {name_prec}: not available here ({str(exc).splitlines()[0][:160]})", flush=True)
            yield (model, desc, name_prec), None, {"path": name_prec, "model": desc, "available": False,
                                                   "why": str(exc).splitlines()[0][:300]}
            continue
        yield (model, desc, name_prec), engine, ready


def interleaved(entries, device, sizes, batches, rounds, peak, bandwidth, dtype) -> list[dict]:
    """Every (model, description, path) entry built first; then per size and batch one warm-up call each, and
    ``rounds`` rounds of one timed call per entry in turn, then the floor's convolution: drift in the machine's
    speed falls on every path, every model and the floor alike. The row's ``ms_per_frame`` is the median of its
    rounds, ``ms_rounds`` all of them; its ``floor_x`` is the median of each round's time over that round's floor
    (``peak_rounds``: the convolution's FLOP/s in each round), and ``compute_floor_ms`` the floor at the median of
    those rates."""
    rows, engines = [], []
    for entry, engine, ready in _built(entries, device):
        if engine is None:
            rows.append(ready)
        else:
            engines.append((entry, engine, ready))
    for w, h in sizes:
        for b in batches:
            x = torch.rand(b, 1, h, w, device=device) * 2 - 1
            startup, times = [], [[] for _ in engines]
            for _, engine, _ in engines:
                t0 = time.perf_counter()
                engine(x)
                sync(device)
                startup.append(time.perf_counter() - t0)
            peaks = []
            for _ in range(rounds):
                for i, (_, engine, _) in enumerate(engines):
                    sync(device)
                    t0 = time.perf_counter()
                    engine(x)
                    sync(device)
                    times[i].append((time.perf_counter() - t0) * 1000 / b)
                peaks.append(conv_peak(device, dtype, ROUND_PEAK_SECONDS))
            for i, ((model, desc, name), engine, ready) in enumerate(engines):
                flops, _ = frame_work(model, w, h)
                floor_x = statistics.median(t / 1000 / (flops / p) for t, p in zip(times[i], peaks))
                row = _row(name, engine, model, desc, w, h, b, statistics.median(times[i]), ready, startup[i],
                           statistics.median(peaks), bandwidth, rows, floor_x)
                row["ms_rounds"] = [round(t, 3) for t in times[i]]
                row["peak_rounds"] = [round(p / 1e9) * 1e9 for p in peaks]
                rows.append(row)
    return rows


def one_after_another(paths, model, desc, device, sizes, batches, seconds, peak, bandwidth) -> list[dict]:
    rows = []
    for (_, _, name_prec), engine, ready in _built([(model, desc, p) for p in paths], device):  # one at a time
        if engine is None:
            rows.append(ready)
            continue
        for w, h in sizes:
            for b in batches:
                x = torch.rand(b, 1, h, w, device=device) * 2 - 1
                try:
                    t0 = time.perf_counter()
                    engine(x)
                    sync(device)
                    startup = time.perf_counter() - t0
                    fps = b * timed_rate(lambda: engine(x), device, seconds)
                except (RuntimeError, MemoryError) as exc:  # e.g. out of memory at a large batch
                    print(f"{name_prec} {w}x{h} b{b}: failed ({str(exc).splitlines()[0][:160]})", flush=True)
                    continue
                rows.append(_row(name_prec, engine, model, desc, w, h, b, 1000 / fps, ready, startup, peak, bandwidth,
                                 rows))
        engine = None  # free it before the next path builds
    return rows


if __name__ == "__main__":
    sys.exit(main())
