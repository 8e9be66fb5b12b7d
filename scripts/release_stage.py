"""Release a fine-tuning stage of the bundled model: the run's best held-out checkpoint becomes the new
release, and the base model's metadata (data, earlier stages, how it was made) is carried over with this
stage appended, so the release keeps its whole history.

    ir2vis-stream train DATA... --init ir2vis_stream/weights/default.pt -o runs/stage3 [options]
    python scripts/release_stage.py runs/stage3 --base ir2vis_stream/weights/default.pt \\
        --out ir2vis_stream/weights/default.pt

Refuses (exit 1, one line) when the run did not start from ``--base``, trained on other data, or did not
beat the base's held-out PSNR (``--force`` releases anyway). Weights are written in fp16, atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

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


def stage_meta(base: dict, run: dict, log: list[dict]) -> dict:
    """The new release's metadata: ``base`` with the run appended as the next stage."""
    init = run.get("initialised_from")
    if not init or (init.get("epochs_done"), init.get("global_step")) != (base.get("epochs_done"), base.get("global_step")):
        raise ReleaseError("the run did not start from the base model (train it with --init BASE)")
    if [data_name(d["path"]) for d in run["data"]] != [data_name(d["path"]) for d in base.get("data", [])]:
        raise ReleaseError("the run trained on other data folders than the base model")
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
        "init": f"the release of stage {number - 1} (the discriminators started fresh)",
        "heldout": renamed(run["heldout"]),
    }
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
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="the training run's -o folder (best.pt and log.jsonl)")
    ap.add_argument("--base", required=True, help="the release the run started from (--init)")
    ap.add_argument("--out", required=True, help="where to write the new release")
    ap.add_argument("--note", default=None, help="replace the release's one-paragraph note")
    ap.add_argument("--force", action="store_true", help="release even if held-out PSNR did not improve")
    args = ap.parse_args(argv)
    run_dir = Path(args.run)
    try:
        base = load_checkpoint(args.base)
        run = load_checkpoint(run_dir / "best.pt")
        meta = stage_meta(base.meta, run.meta, read_log(run_dir / "log.jsonl"))
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
