"""How the bundled model is made: the paper's generator and pix2pix's ResNet-9 trained side by side, with
the same data, epochs, batch size and precision, within one wall-clock budget.

    python scripts/train_default_model.py ../shared/data/{roadscene,msrs,m3svd} --minutes 6 --out runs/default

1. A probe: one epoch of each generator, both at once (as in the real run), gives the seconds per epoch
   and per held-out evaluation.
2. The epoch count E is the most that fits the budget (at most 200, the paper's recipe), so the learning
   rate runs its full course, E/2 epochs constant and E/2 decaying, however fast the machine is.
3. Both runs, at once, each ``ir2vis-stream train`` with ``--epochs E``; a run still going at the budget's
   end (plus ``--grace`` seconds) is interrupted, which saves its resumable state.
4. The release: the paper's generator's best held-out checkpoint, written with fp16 weights as
   ``OUT/default.pt``, and ``OUT/summary.json`` with both runs' held-out metrics.

The perceptual loss is used when torchvision's VGG19 ImageNet weights are on the machine (hub cache or
``--vgg-weights``); otherwise both runs train without it, and the summary says so.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

from ir2vis_stream.checkpoint import load_checkpoint, save_checkpoint
from ir2vis_stream.train.vgg import VGGWeightsMissing, find_vgg19_weights


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def train_cmd(args, generator: str, out: Path, epochs: int, perceptual: bool) -> list[str]:
    cmd = [sys.executable, "-m", "ir2vis_stream.train", *args.data, "--out", str(out), "--generator", generator,
           "--epochs", str(epochs), "--batch-size", str(args.batch_size), "--workers", str(args.workers),
           "--device", args.device, "--precision", args.precision, "--eval-every", str(args.eval_every),
           "--checkpoint-minutes", "2", "--checkpoint-every", "1000", "--quiet"]
    if args.init and generator == "msp":
        cmd += ["--init", args.init]
    if not perceptual:
        cmd.append("--no-perceptual")
    elif args.vgg_weights:
        cmd += ["--vgg-weights", args.vgg_weights]
    return cmd


def run_all(cmds: dict[str, list[str]], deadline: float, logs: Path) -> dict[str, int]:
    """Start every command at once; interrupt (then kill) any still running at ``deadline``."""
    logs.mkdir(parents=True, exist_ok=True)
    procs = {g: subprocess.Popen(c, stdout=open(logs / f"{g}.out", "w"), stderr=subprocess.STDOUT)
             for g, c in cmds.items()}
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(1)
    for g, p in procs.items():
        if p.poll() is None:
            print(f"{g}: budget over, interrupting (its state is saved)", flush=True)
            p.send_signal(signal.SIGINT)
    for p in procs.values():
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return {g: p.returncode for g, p in procs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="+")
    ap.add_argument("--out", default="runs/default")
    ap.add_argument("--minutes", type=float, required=True, help="wall-clock budget of the real runs")
    ap.add_argument("--generators", default="msp,resnet9")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--vgg-weights", default=None)
    ap.add_argument("--init", default=None, help="start the msp generator from this checkpoint (a second stage)")
    ap.add_argument("--grace", type=float, default=60, help="seconds past the budget before a run is interrupted")
    args = ap.parse_args(argv)
    out = Path(args.out)
    generators = args.generators.split(",")
    t_start = time.monotonic()

    try:
        vgg = str(find_vgg19_weights(args.vgg_weights))
    except VGGWeightsMissing as exc:
        vgg = None
        print(f"perceptual loss off: {exc}", flush=True)

    # 1. probe: one epoch each, concurrently
    probe = {g: out / f"probe-{g}" for g in generators}
    codes = run_all({g: train_cmd(args, g, probe[g], 1, vgg is not None) for g in generators},
                    time.monotonic() + 600, out / "logs-probe")
    if any(codes.values()):
        print(f"probe failed: {codes}; see {out}/logs-probe/", flush=True)
        return 1
    per_epoch, startup = 0.0, 15.0  # seconds to start a run (imports, CUDA, data scan): measured 10-15 s
    for g in generators:
        log = read_log(probe[g] / "log.jsonl")
        start, epoch = log[0], next(r for r in log if r.get("event") == "epoch")
        train_s = epoch["epoch_seconds"]
        eval_s = max(0.0, epoch["time"] - start["time"] - train_s)
        per_epoch = max(per_epoch, train_s + eval_s / args.eval_every)
        print(f"probe {g}: {train_s:.1f} s/epoch training, {eval_s:.1f} s per evaluation", flush=True)
    budget = args.minutes * 60
    epochs = max(2, min(args.max_epochs, math.floor((budget - startup) / per_epoch)))
    print(f"{epochs} epochs fit {args.minutes} min at {per_epoch:.1f} s/epoch (both runs at once)", flush=True)

    # 2. the real runs
    t0 = time.monotonic()
    runs = {g: out / g for g in generators}
    codes = run_all({g: train_cmd(args, g, runs[g], epochs, vgg is not None) for g in generators},
                    t0 + budget + args.grace, out / "logs")
    wall = time.monotonic() - t0

    # 3. summary and release
    summary = {"epochs_planned": epochs, "train_wall_seconds": round(wall, 1), "exit_codes": codes,
               "perceptual": vgg is not None, "batch_size": args.batch_size, "precision": args.precision,
               "total_seconds": round(time.monotonic() - t_start, 1), "runs": {}}
    for g in generators:
        evals = [r for r in read_log(runs[g] / "log.jsonl") if r.get("event") == "epoch" and "val" in r]
        if not evals:
            continue
        best = max(evals, key=lambda r: r["val"]["all"]["psnr"])
        summary["runs"][g] = {"epochs_done": evals[-1]["epoch"], "best_epoch": best["epoch"], "best": best["val"],
                              "last": evals[-1]["val"], "ir_as_grey": evals[-1].get("ir_as_grey"),
                              "curve": [(r["epoch"], round(r["val"]["all"]["psnr"], 3)) for r in evals]}
        print(f"{g}: {evals[-1]['epoch']} epochs, best held-out PSNR {best['val']['all']['psnr']:.2f} dB "
              f"(epoch {best['epoch']})", flush=True)
    best_pt = out / "msp" / "best.pt"  # the release is the paper's generator, whatever else trained beside it
    if best_pt.is_file():
        ck = load_checkpoint(best_pt)
        meta = dict(ck.meta, recipe="scripts/train_default_model.py", weights_dtype="fp16")
        save_checkpoint(out / "default.pt", ck.model, meta, half=True)
        print(f"release: {out / 'default.pt'}", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0 if best_pt.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
