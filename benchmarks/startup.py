"""Time to the first frame and to full speed, for each way of starting the model, cold and warm.

    python benchmarks/startup.py --json benchmarks/results/startup.json
    python benchmarks/startup.py --paths compile:bf16 --sizes 256x256,640x512

Each measurement is a fresh process, timed from before it starts (interpreter and imports included) to
the first frame out of the engine (``first_s``), and to the first frame at the engine's steady speed
(``full_s``: the compiled engine's package built and swapped in; for the others the same as the first
frame). Three starts per path, in this order: ``cold`` (an empty cache, as on a new machine) at the first
size, ``warm`` (the cache that start filled) at the same size, and ``new size`` (that cache) at the second
size. Paths are ``engine:precision`` of ``create_engine``, plus ``static-compile``: the CPU compile the
package replaced (``benchmarks/engine_speed.py``'s ``StaticCompile``), which compiles at every new shape.

A background build outlives a process that ends first: a start after ``cold`` waits for it (the lock of
``engines/aot.py``), so each measurement begins on a quiet machine. Figures need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ir2vis_stream.hardware import reuse_freed_memory

HERE = Path(__file__).resolve().parent
PATHS = "torch:bf16,onnxruntime:fp32,static-compile:bf16,compile:bf16"


def child(path: str, size: str) -> None:
    """In the measured process: start the bundled model's engine, run frames, print the two times."""
    import torch

    sys.path.insert(0, str(HERE))
    from engine_speed import StaticCompile, load_model

    from ir2vis_stream.engines import create_engine

    name, precision = path.split(":")
    w, h = (int(v) for v in size.split("x"))
    model, _ = load_model(None)
    x = torch.rand(1, 1, h, w) * 2 - 1
    engine = (StaticCompile(model, torch.device("cpu"), precision) if name == "static-compile"
              else create_engine(name, model, torch.device("cpu"), precision))
    engine(x)
    first = time.time()
    if hasattr(engine, "wait_ready"):
        engine.wait_ready()
        engine(x)
    print(json.dumps({"first": first, "full": time.time() if hasattr(engine, "wait_ready") else first,
                      "engine": engine.describe()}), flush=True)


def start(path: str, size: str, cache: Path) -> dict:
    env = dict(os.environ, IR2VIS_STREAM_CACHE=str(cache), TORCHINDUCTOR_CACHE_DIR=str(cache / "inductor"))
    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--child", path, size], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:300]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"first_s": result["first"] - t0, "full_s": result["full"] - t0, "engine": result["engine"]}


def wait_for_builds(cache: Path) -> None:
    """Block until no package build holds a lock in ``cache`` (a build that outlived its process)."""
    import fcntl

    for lock in (cache / "aot").glob("*.lock"):
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_EX)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", default=PATHS)
    ap.add_argument("--sizes", default="256x256,640x512", help="first size (cold, warm), second size (new size)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, metavar=("PATH", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    reuse_freed_memory()  # as the command line runs
    if args.child:
        child(*args.child)
        return 0
    first, second = args.sizes.split(",")
    rows = []
    for path in args.paths.split(","):
        with tempfile.TemporaryDirectory(prefix="ir2vis-startup-") as tmp:
            cache = Path(tmp)
            for start_kind, size in (("cold", first), ("warm", first), ("new size", second)):
                wait_for_builds(cache)
                row = {"path": path, "start": start_kind, "size": size, **start(path, size, cache)}
                rows.append(row)
                print(f"{path:22s} {start_kind:9s} {size:8s} " + (
                    f"first frame {row['first_s']:6.1f} s   full speed {row['full_s']:6.1f} s   ({row['engine']})"
                    if "error" not in row else f"failed: {row['error']}"), flush=True)
            wait_for_builds(cache)
    if args.json:
        report = {"rows": rows, "load_average": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "cpu_count": os.cpu_count()}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
