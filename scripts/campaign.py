"""The pictures campaign: one recipe, trained a few hours at a time at low priority, adding up across sessions.

    python scripts/campaign.py train --minutes 150     # resume the local run, else start from the release
    python scripts/campaign.py status                  # where the run stands: steps, epochs, held-out figures
    python scripts/campaign.py ablate --minutes 40     # the equal-compute ablations, one arm at a time

The run lives in ``runs/campaign/<recipe name>/`` (``runs/`` is not in git). ``train`` resumes it exactly
(``--resume``: same data order, optimiser and discriminators) when its state is there, i.e. when the machine
was kept; otherwise it starts the recipe afresh from the bundled release (``--init``: the generator only, so
the new discriminators are first trained alone for ``D_WARMUP_STEPS`` steps). The trainer runs at nice 19,
saves its state and the generator (``latest.pt``) every ``CHECKPOINT_MINUTES``, and is stopped resumably
when the budget is spent.

``latest.pt`` is the candidate. The gate (docs/training.md, "The campaign"):

    python scripts/ablation_report.py --protocol full --json benchmarks/results/gate-DATE.json \\
        "release=ir2vis_stream/weights/default.pt" "candidate=runs/campaign/NAME/latest.pt"
    python scripts/release_stage.py runs/campaign/NAME --checkpoint latest.pt \\
        --base ir2vis_stream/weights/default.pt --out ir2vis_stream/weights/default.pt \\
        --comparison benchmarks/results/gate-DATE.json

``ablate`` trains each arm of ``ARMS`` (the recipe with one change: narrow fine levels, a lower lambda_1, resize +
conv) from the release for the same wall-clock minutes, one at a time, each in ``runs/ablation/<arm>/``; an arm
cut off by the session's end resumes where it stopped next time (its minutes so far are in ``minutes.json``),
and a finished one is skipped. Then compare them in one run:

    python scripts/ablation_report.py --json benchmarks/results/ablation-DATE.json \
        "release=ir2vis_stream/weights/default.pt" "recipe=runs/ablation/recipe/latest.pt" ...

A stage that passes is committed as the new ``weights/default.pt`` (one weights change a session at most);
one that fails stays out of git, and the gate's table goes into the closing note and docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RELEASE = ROOT / "ir2vis_stream" / "weights" / "default.pt"
CHECKPOINT_MINUTES = 3
D_WARMUP_STEPS = 60

# The recipe of the running campaign. Changing any of it (other than the name) makes a new run: give it a
# new name, so an old run's state is never resumed with other settings (the trainer refuses that anyway).
RECIPE = {
    "name": "ms256-tconv-l100",
    "data": ["roadscene", "m3svd", "msrs_full", "m3svd_dusk"],  # the sharp folders; msrs/ (170x128) left out
    "options": ["--heldout-prefix", "0115_1847_", "--multi-scale", "--scale", "256", "--crop", "256",
                "--batch-size", "4", "--lr", "1e-4", "--epochs", "30", "--lambda-pixel", "100",
                "--no-perceptual", "--precision", "auto", "--workers", "1"],
}


# The equal-compute ablations of the pictures campaign: the recipe, and the recipe with one change each. All start
# from the release (narrow levels take the tensors whose shapes did not change; resize + conv its least-squares
# conversion), so each arm's minutes go to learning, not to relearning.
ARMS = {
    "recipe": [],
    "widths-16-32": ["--widths", "16,32,64,64"],
    "lambda-30": ["--lambda-pixel", "30"],
    "lambda-10": ["--lambda-pixel", "10"],
    "resize-conv": ["--up", "resize-conv"],
}


def arm_recipe(arm: str) -> dict:
    """The campaign's recipe with the arm's change (a later option overrides an earlier one of the same flag)."""
    options = list(RECIPE["options"])
    for flag, value in zip(ARMS[arm][::2], ARMS[arm][1::2]):
        if flag in options:
            options[options.index(flag) + 1] = value
        else:
            options += [flag, value]
    return {"name": arm, "data": RECIPE["data"], "options": options}


def run_dir(recipe: dict = RECIPE) -> Path:
    return ROOT / "runs" / "campaign" / recipe["name"]


def train_command(out: Path, recipe: dict = RECIPE, release: Path = RELEASE) -> list[str]:
    """The ``ir2vis-stream train`` command line: resume ``out`` where its state is, else a new run from ``release``."""
    data = [str(SHARED / d) for d in recipe["data"]]
    cmd = [sys.executable, "-m", "ir2vis_stream.train", *data, *recipe["options"], "-o", str(out), "--quiet",
           "--checkpoint-minutes", str(CHECKPOINT_MINUTES)]
    if (out / "state.pt").is_file():
        return cmd + ["--resume"]
    return cmd + ["--init", str(release), "--d-warmup-steps", str(D_WARMUP_STEPS)]


def train(minutes: float, out: Path, recipe: dict = RECIPE) -> int:
    missing = [d for d in recipe["data"] if not (SHARED / d).is_dir()]
    if missing:
        print(f"error: the campaign's data is not here: {', '.join(str(SHARED / d) for d in missing)}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    cmd = train_command(out, recipe)
    print(("resuming " if "--resume" in cmd else "starting from the release: ") + str(out), flush=True)
    with open(out / "campaign.out", "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                preexec_fn=lambda: os.nice(19))
        deadline = time.monotonic() + minutes * 60
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(5)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the trainer saves its state and exits 130
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
    code = proc.wait()
    print(f"trainer ended with {code}; {status_line(out)}", flush=True)
    return 0 if code in (0, 130) else 1


def ablate(minutes: float, arms: list[str], root: Path) -> int:
    """Each arm for ``minutes`` of wall clock in all, across sessions; arms already done are skipped."""
    for arm in arms:
        out = root / arm
        spent_file = out / "minutes.json"
        spent = json.loads(spent_file.read_text())["minutes"] if spent_file.is_file() else 0.0
        if spent >= minutes:
            print(f"{arm}: done ({spent:.0f} minutes)", flush=True)
            continue
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        code = train(minutes - spent, out, arm_recipe(arm))
        spent += (time.monotonic() - started) / 60
        spent_file.write_text(json.dumps({"minutes": round(spent, 2), "budget": minutes}) + "\n")
        if code:
            return code
    return 0


def status_line(out: Path) -> str:
    log = out / "log.jsonl"
    if not log.is_file():
        return f"{out}: no run yet"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps = [r for r in records if r.get("event") == "step"]
    epochs = [r for r in records if r.get("event") == "epoch" and "val" in r]
    text = f"{out}: step {steps[-1]['step'] if steps else 0}"
    if steps:
        text += f", {steps[-1]['sec_per_step']:.1f} s/step"
    if epochs:
        v = epochs[-1]["val"]["all"]
        text += f", epoch {epochs[-1]['epoch']} held-out PSNR {v['psnr']:.2f} / SSIM {v['ssim']:.3f}"
    return text + (f"; candidate {out / 'latest.pt'}" if (out / "latest.pt").is_file() else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train for a wall-clock budget, at low priority")
    t.add_argument("--minutes", type=float, required=True)
    sub.add_parser("status", help="where the run stands")
    a = sub.add_parser("ablate", help="the equal-compute ablations, one arm at a time, at low priority")
    a.add_argument("--minutes", type=float, default=40, help="wall-clock minutes per arm [default: 40]")
    a.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    args = ap.parse_args(argv)
    if args.command == "train":
        return train(args.minutes, run_dir())
    if args.command == "ablate":
        unknown = [a for a in args.arms.split(",") if a not in ARMS]
        if unknown:
            ap.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
        return ablate(args.minutes, args.arms.split(","), ROOT / "runs" / "ablation")
    print(status_line(run_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
