"""``make demo``: colourise a thermal clip with the bundled model and say where the result is.

With ``--input`` it runs on your clip; without, it first makes a short synthetic thermal-looking clip
(warm moving figures on a cool, gently textured background), so the demo needs no download.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .api import run
from .cli.options import background_build_notice
from .checkpoint import CheckpointError, default_checkpoint_path, load_checkpoint
from .errors import UserError
from .hardware import reuse_freed_memory
from .synthetic import synthetic_thermal_clip


def main(argv=None) -> int:
    from .cli import quiet_library_logs

    quiet_library_logs()  # the user's first run: no torch log lines (IR2VIS_STREAM_DEBUG=1 shows them)
    reuse_freed_memory()  # as the command line does
    ap = argparse.ArgumentParser(prog="python -m ir2vis_stream.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="a thermal video or frame folder (default: a synthetic clip)")
    ap.add_argument("--out", default="demo-out", help="folder for the results (default: demo-out)")
    ap.add_argument("--engine", default="auto", help="inference engine (default: auto)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        ckpt = load_checkpoint(default_checkpoint_path())
    except CheckpointError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    src = Path(args.input) if args.input else synthetic_thermal_clip(out_dir / "synthetic_thermal.mp4")
    out = out_dir / f"{src.stem}_colour.mp4"
    try:
        result = run(src, out, side_by_side=True, overwrite=True, engine=args.engine)
    except UserError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    m = ckpt.meta
    print(f"model: bundled generator, {m.get('epochs_done')} of {m.get('epochs_planned')} epochs, held-out PSNR "
          f"{m.get('heldout', {}).get('all', {}).get('psnr', float('nan')):.2f} dB as its training scored it (README: "
          f"the bundled model, for the figures on full-size pictures)")
    print(result.summary())
    if result.engine_reason:
        print(f"engine chosen because: {result.engine_reason}")
    print(f"result (IR | colourised, side by side): {out.resolve()}")
    sheet = contact_sheet(out, out_dir / f"{src.stem}_frames.png", result.frames)
    print(f"a few frames of it as one picture: {sheet.resolve()}")
    background_build_notice()
    return 0


def contact_sheet(video: Path, path: Path, total: int, frames: int = 4) -> Path:
    """``frames`` evenly spaced frames of the side-by-side ``video`` (IR | colour; ``total`` frames long) stacked
    into one PNG, so the result can be seen without a video player. Only the picked frames are kept."""
    import cv2
    import numpy as np

    from .media import rgb_frames

    wanted = {round(i * (total - 1) / max(1, frames - 1)) for i in range(min(frames, total))}
    picks = [image for i, image in enumerate(rgb_frames(video)) if i in wanted]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(picks, axis=0), cv2.COLOR_RGB2BGR))
    return path


if __name__ == "__main__":
    sys.exit(main())
