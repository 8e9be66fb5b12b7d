"""Release a fine-tuning stage of the bundled model: the run's best held-out checkpoint becomes the new
release, and the base model's metadata (data, earlier stages, how it was made) is carried over with this
stage appended, so the release keeps its whole history.

    ir2vis-stream train DATA... --init ir2vis_stream/weights/default.pt -o runs/stage3 [options]
    python scripts/release_stage.py runs/stage3 --base ir2vis_stream/weights/default.pt \\
        --out ir2vis_stream/weights/default.pt

Refuses (exit 1, one line) when the run did not start from ``--base``, trained on other data, or did not
beat the base's held-out PSNR (``--force`` releases anyway). Weights are written in fp16, atomically.

A stage on other data (or another upsampler, converted by ``--init``) has held-out figures on other pairs
than the base's, so they cannot be compared: give ``--comparison`` the JSON of ``scripts/ablation_report.py``
with the base as its first variant and the run's checkpoint as its second, both measured in the same run on
the same held-out pairs and eval video (``--protocol full``). The gate is then the pictures campaign's
(``ir2vis_stream.bench.protocol.gate_checks``: PSNR within 0.2 dB of the base's on the pairs and the video, SSIM
no lower, IR edges kept higher, GMSD lower in every folder and on the video, grid <= 1.2, flicker / IR <= 1,
colourfulness ratio nearer 1), the release's ``data`` becomes the run's, and the report's figures, its path and
the gate's table go into the metadata as ``comparison``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

from ir2vis_stream.bench.protocol import gate_checks, gate_table
from ir2vis_stream.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class ReleaseError(Exception):
    pass


def data_name(path: str) -> str:
    """A data folder as recorded in a release: without the leading ``../`` of the run's working folder."""
    return str(Path(*[p for p in Path(path).parts if p not in ("..", ".")]))


def renamed(metrics: dict | None) -> dict | None:
    return None if metrics is None else {k if k == "all" else data_name(k): v for k, v in metrics.items()}


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        raise ReleaseError(f"no training log at {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def comparison_summary(report: list[dict], path: str) -> dict:
    """The figures of an ablation_report JSON that a release records: per variant, held-out pairs and video."""
    if len(report) < 2:
        raise ReleaseError(f"{path}: the comparison needs the base and the run as its first two variants")
    keys = ("psnr", "ssim", "gmsd", "grid", "edges_kept", "colourfulness_ratio", "ms_per_frame")

    def figures(r: dict, i: int) -> dict:
        pairs, video = r["pairs"]["models"][i], r["video"]["models"][i]
        return {"heldout": {k: pairs.get(k) for k in keys},
                "heldout_gmsd_per_folder": {data_name(f): rows[i]["gmsd"] for f, rows in r["pairs"]["folders"].items()},
                "video": {**{k: video.get(k) for k in keys}, "flicker_ratio": video.get("flicker_ratio"),
                          "warp_error": video.get("warp_error")}}

    return {"report": path, "ir_as_grey": figures(report[0], 0),
            **{r["variant"]["name"]: figures(r, 1) for r in report}}


def stage_meta(base: dict, run: dict, log: list[dict], comparison: dict | None = None) -> dict:
    """The new release's metadata: ``base`` with the run appended as the next stage."""
    init = run.get("initialised_from")
    if not init or (init.get("epochs_done"), init.get("global_step")) != (base.get("epochs_done"), base.get("global_step")):
        raise ReleaseError("the run did not start from the base model (train it with --init BASE)")
    same_data = [data_name(d["path"]) for d in run["data"]] == [data_name(d["path"]) for d in base.get("data", [])]
    if not same_data and comparison is None:
        raise ReleaseError("the run trained on other data folders than the base model (--comparison REPORT.json "
                           "compares them on the same pairs)")
    config = next((r["config"] for r in log if r.get("event") == "start"), None)
    if config is None:
        raise ReleaseError("the run's log.jsonl has no start record")
    best_epoch = run["heldout_epoch"]
    train_s = sum(r["epoch_seconds"] for r in log if r.get("event") == "epoch" and r["epoch"] <= best_epoch)
    stages = list(base.get("stages") or [{"stage": 1, "epochs": base["epochs_done"], "batch_size": base["batch_size"],
                                           "heldout": base["heldout"]}])
    number = len(stages) + 1
    half = config["epochs"] // 2
    stage = {
        "stage": number, "epochs": config["epochs"], "best_epoch": best_epoch, "batch_size": run["batch_size"],
        "crop": run["crop"], "steps": run["global_step"],
        "lr": f"{config['lr']:g} for {half} epochs, then linear decay",
        "train_seconds": round(train_s), "device": run["device"], "precision": run["precision"],
        "compiled": run["compiled"],
        "init": f"the release of stage {number - 1} (the discriminators started fresh)"
                + (f"; upsampler {init['upsampler_converted']}" if init.get("upsampler_converted") else "")
                + (f"; {init['partial']}" if init.get("partial") else ""),
        "heldout": renamed(run["heldout"]),
    }
    if not same_data:
        stage["data"] = [{**d, "path": data_name(d["path"])} for d in run["data"]]
        stage["heldout_prefixes"] = config.get("heldout_prefixes")
    meta = dict(base)
    meta.update(
        epochs_done=base["epochs_done"] + best_epoch, epochs_planned=base["epochs_done"] + config["epochs"],
        global_step=base["global_step"] + run["global_step"],
        batch_size=f"{base['batch_size']}, {run['batch_size']} (stage {number})",
        device=f"{base['device']}; stage {number}: {run['device']}, {run['precision']}"
               + (", compiled" if run["compiled"] else ", eager"),
        heldout=renamed(run["heldout"]), heldout_ir_as_grey=renamed(run.get("heldout_ir_as_grey")),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), weights_dtype="fp16",
        stages=stages + [stage],
    )
    if not same_data:
        meta["data"] = stage["data"]
    if run.get("train_size"):
        meta["train_size"] = run["train_size"]
    if comparison is not None:
        meta["comparison"] = comparison
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="the training run's -o folder (best.pt and log.jsonl)")
    ap.add_argument("--base", required=True, help="the release the run started from (--init)")
    ap.add_argument("--out", required=True, help="where to write the new release")
    ap.add_argument("--note", default=None, help="replace the release's one-paragraph note")
    ap.add_argument("--force", action="store_true", help="release even if held-out PSNR did not improve")
    ap.add_argument("--checkpoint", default="best.pt", help="the run's checkpoint to release [default: best.pt]")
    ap.add_argument("--comparison", default=None,
                    help="scripts/ablation_report.py JSON: the base, then the run, measured in one run (needed "
                         "when the run trained on other data)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run)
    try:
        base = load_checkpoint(args.base)
        run = load_checkpoint(run_dir / args.checkpoint)
        comparison = None
        if args.comparison:
            try:
                report = json.loads(Path(args.comparison).read_text())
            except (OSError, ValueError) as exc:
                raise ReleaseError(f"--comparison {args.comparison}: {exc}") from None
            comparison = comparison_summary(report, args.comparison)
        meta = stage_meta(base.meta, run.meta, read_log(run_dir / "log.jsonl"), comparison)
        if comparison is not None:  # the same pairs for both: the report's figures decide, through the gate
            new, old = report[1]["pairs"]["models"][1]["psnr"], report[0]["pairs"]["models"][1]["psnr"]
            try:
                checks = gate_checks(report[0], report[1])
            except (KeyError, TypeError):
                raise ReleaseError(f"{args.comparison} lacks the gate's figures (IR edges kept, colourfulness): "
                                   "rerun scripts/ablation_report.py --protocol full") from None
            failed = [c for c in checks if not c.passed]
            meta["comparison"]["gate"] = gate_table(checks)
            if failed and not args.force:
                raise ReleaseError(f"the gate fails {len(failed)} of {len(checks)} tests: "
                                   + "; ".join(f"{c.name} ({c.detail})" for c in failed) + " (--force to release)")
        else:
            new, old = run.meta["heldout"]["all"]["psnr"], base.meta["heldout"]["all"]["psnr"]
            if new <= old and not args.force:
                raise ReleaseError(f"held-out PSNR {new:.2f} dB is not above the base's {old:.2f} dB (--force to release)")
        if args.note:
            meta["note"] = args.note
        save_checkpoint(args.out, run.model, meta, half=True)
    except (ReleaseError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"error: a checkpoint or the log lacks {exc}: not a run of ir2vis-stream train", file=sys.stderr)
        return 1
    print(f"{args.out}: stage {len(meta['stages'])}, {meta['epochs_done']} epochs, held-out PSNR {old:.2f} -> {new:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
