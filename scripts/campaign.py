"""The pictures campaign: one recipe, trained a few hours at a time at low priority, adding up across sessions.

    python scripts/campaign.py train --minutes 150     # resume the local run, else start from the release
    python scripts/campaign.py status                  # where the run stands: steps, epochs, held-out figures
    python scripts/campaign.py ablate --cpu-minutes 30 # the equal-compute ablations, one arm at a time

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
conv) from the release for the same CPU time, one at a time, each in ``runs/ablation/<arm>/``. The budget is the
trainer's own CPU minutes (user + system, over its threads and data workers), not the wall clock: the machine is
shared with the session's other work, and a trainer at nice 19 gets less of it while that runs, so equal wall
clock would not be equal compute. Two free cores give two CPU minutes a minute. An arm cut off by the session's
end resumes where it stopped next time (its minutes so far are in ``minutes.json``), and a finished one is skipped.
Then compare them in one run:

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
    "fast": ["--widths", "16,32,64,64", "--blocks", "1,2,4,8"],  # model.CONFIGS["fast"]: the real-time tier
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid``: its threads, its live children (the data workers) and the
    children it has reaped; None where there is no ``/proc`` (not Linux) or the process is gone."""
    proc = Path("/proc") / str(pid)
    try:
        fields = (proc / "stat").read_text().rpartition(")")[2].split()
        children = [int(c) for f in proc.glob("task/*/children") for c in f.read_text().split()]
    except (OSError, ValueError):
        return None
    # after the ")" of the command name, field 3 of proc(5) is fields[0]: utime, stime, cutime, cstime are 14-17
    own = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(c) or 0.0 for c in children)


def train(minutes: float, out: Path, recipe: dict = RECIPE, cpu: bool = False, progress=None) -> tuple[int, float]:
    """Train ``recipe`` in ``out`` for ``minutes`` of wall clock, or with ``cpu`` of the trainer's CPU time (the wall
    clock where that cannot be read); the exit status and the minutes spent, of the budget's kind. ``progress``
    is called with the minutes spent so far every few seconds (a session may be cut before this returns)."""
    missing = [d for d in recipe["data"] if not (SHARED / d).is_dir()]
    if missing:
        print(f"error: the campaign's data is not here: {', '.join(str(SHARED / d) for d in missing)}", file=sys.stderr)
        return 2, 0.0
    out.mkdir(parents=True, exist_ok=True)
    cmd = train_command(out, recipe)
    print(("resuming " if "--resume" in cmd else "starting from the release: ") + str(out), flush=True)
    with open(out / "campaign.out", "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                preexec_fn=lambda: os.nice(19))
        started, used = time.monotonic(), 0.0

        def spent() -> float:
            nonlocal used
            seconds = cpu_seconds(proc.pid) if cpu else None
            used = max(used, seconds) if seconds is not None else time.monotonic() - started
            return used

        try:
            while proc.poll() is None and spent() < minutes * 60:
                if progress:
                    progress(used / 60)
                time.sleep(5)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the trainer saves its state and exits 130
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
    code = proc.wait()
    print(f"trainer ended with {code} after {used / 60:.1f} {'CPU ' if cpu else ''}minutes; {status_line(out)}",
          flush=True)
    return (0 if code in (0, 130) else 1), used / 60


def ablate(cpu_minutes: float, arms: list[str], root: Path) -> int:
    """Each arm for ``cpu_minutes`` of the trainer's CPU time in all, across sessions; arms done are skipped."""
    for arm in arms:
        out = root / arm
        spent_file = out / "minutes.json"
        record = json.loads(spent_file.read_text()) if spent_file.is_file() else {"cpu_minutes": 0.0, "wall_minutes": 0.0}
        if record["cpu_minutes"] >= cpu_minutes:
            print(f"{arm}: done ({record['cpu_minutes']:.0f} CPU minutes)", flush=True)
            continue
        out.mkdir(parents=True, exist_ok=True)
        started, before = time.monotonic(), dict(record)

        def save(used: float) -> None:  # as it goes: a session cut mid-arm keeps what the arm has spent
            spent_file.write_text(json.dumps({
                "cpu_minutes": round(before["cpu_minutes"] + used, 2),
                "wall_minutes": round(before["wall_minutes"] + (time.monotonic() - started) / 60, 2),
                "budget_cpu_minutes": cpu_minutes}) + "\n")

        code, used = train(cpu_minutes - before["cpu_minutes"], out, arm_recipe(arm), cpu=True, progress=save)
        save(used)
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
    a.add_argument("--cpu-minutes", type=float, default=30,
                   help="the trainer's CPU minutes per arm (2 free cores: 2 a minute) [default: 30]")
    a.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    args = ap.parse_args(argv)
    if args.command == "train":
        return train(args.minutes, run_dir())[0]
    if args.command == "ablate":
        unknown = [a for a in args.arms.split(",") if a not in ARMS]
        if unknown:
            ap.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
        return ablate(args.cpu_minutes, args.arms.split(","), ROOT / "runs" / "ablation")
    print(status_line(run_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
