"""Does bf16 training track fp32? The same run twice, from the same seed and data order, fp32 and bf16.

    python benchmarks/bf16_training_check.py ../shared/data/roadscene --steps 80

Both runs use the default generator (the real depth and sine activations, where reduced precision could
hurt), the full objective without the perceptual term, and the same batches in the same order. The report
gives each run's generator losses (L_G and its L1 term) averaged over windows of steps, their relative
gap, and the seconds per step of each. bf16 here means autocast: weights and optimiser state stay fp32.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ir2vis_stream.train import TrainConfig, Trainer


def run(data: list[str], precision: str, args, out: Path) -> list[dict]:
    cfg = TrainConfig(data=data, out=str(out / precision), epochs=1000, batch_size=args.batch_size, scale=args.crop,
                      crop=args.crop, perceptual=False, precision=precision, device="cpu", workers=1, quiet=True,
                      log_every=1, max_steps_this_run=args.steps, eval_every=1000)
    t0 = time.perf_counter()
    Trainer(cfg).fit()
    seconds = time.perf_counter() - t0
    log = [json.loads(line) for line in (out / precision / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["event"] == "step"]
    print(f"{precision}: {len(steps)} steps in {seconds:.0f} s ({seconds / len(steps):.2f} s/step)", flush=True)
    return steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="+")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        curves = {p: run(args.data, p, args, Path(tmp)) for p in ("fp32", "bf16")}
    rows = []
    for start in range(0, args.steps, args.window):
        row = {"steps": f"{start + 1}-{start + args.window}"}
        for p, steps in curves.items():
            win = steps[start:start + args.window]
            row[f"loss_g_{p}"] = float(np.mean([s["loss_g"] for s in win]))
            row[f"l1_{p}"] = float(np.mean([s["l1"] for s in win]))
        row["loss_g_gap"] = row["loss_g_bf16"] / row["loss_g_fp32"] - 1
        rows.append(row)
        print(f"steps {row['steps']:>9s}  L_G fp32 {row['loss_g_fp32']:7.3f}  bf16 {row['loss_g_bf16']:7.3f}  "
              f"({row['loss_g_gap']:+.1%})   L1 fp32 {row['l1_fp32']:.4f}  bf16 {row['l1_bf16']:.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
