"""Capture-to-display latency of ``live`` with a video file standing in for a camera, several models in one run.

    python benchmarks/live_latency.py --models paper fast --json benchmarks/results/live-latency-DATE.json
    python benchmarks/live_latency.py --models ir2vis_stream/weights/default.pt 16,32,64,64/1,2,4,8 --seconds 30

The source is a clip of ``--size`` at ``--fps`` (a synthetic thermal clip unless ``--input`` gives one), read with
``live --realtime``: each frame is released at its own timestamp, as a camera delivers it, and a frame that
inference has not taken when the next one arrives is replaced (dropped), as ``live`` does. Each model gets its
own ``LiveSession`` of ``--seconds`` on the same clip, one after another, with the engine built (and warmed by
one call) before its session starts. Per model: frames shown and their rate, the share of captured frames
dropped, and the median and 95th-percentile latency from a frame's arrival to its display (the recording's
write, here: no window), with the engine's own time a frame. Models: ``paper``, ``fast`` (``model.CONFIGS``) or
``WIDTHS/BLOCKS`` with random weights (latency does not depend on the weights), or a checkpoint. Nothing here
is a test; the figures need an otherwise idle machine (the report records the load average).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from ir2vis_stream.api import load_engine
from ir2vis_stream.hardware import cpu_has_fast_bf16
from ir2vis_stream.live.session import LiveSession
from ir2vis_stream.model import count_flops
from ir2vis_stream.synthetic import synthetic_thermal_clip

_spec = importlib.util.spec_from_file_location("engine_speed", Path(__file__).with_name("engine_speed.py"))
engine_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(engine_speed)


def measure(model_spec: str, source: Path, size: tuple[int, int], seconds: float, engine: str, out_dir: Path) -> dict:
    model, desc = engine_speed.model_from_spec(model_spec)
    loaded = load_engine(model=model, engine=engine, device="cpu", infer_size=size,
                         **({"wait": True} if engine == "compile" else {}))
    w, h = size
    loaded.engine(torch.zeros(1, 1, h, w))  # warm: the first call is not what a viewer waits for
    session = LiveSession(str(source), loaded.engine, infer_size=size, grid_period=loaded.grid_period,
                          output=out_dir / f"{len(list(out_dir.iterdir()))}.mp4", realtime=True, overlay=False)
    stats = session.run(max_seconds=seconds)
    return {"model": desc, "engine": loaded.engine.describe(), "gflop_per_frame": count_flops(model, h, w) / 1e9,
            "shown": stats.shown, "captured": stats.captured, "dropped": stats.dropped,
            "dropped_share": stats.dropped / stats.captured if stats.captured else None, "fps_shown": stats.fps,
            "latency_p50_ms": stats.p50_ms, "latency_p95_ms": stats.p95_ms,
            "inference_p50_ms": 1000 * sorted(stats.infer_times)[len(stats.infer_times) // 2] if stats.infer_times else None,
            "seconds": stats.seconds, "end": stats.end}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["paper", "fast"], metavar="MODEL")
    ap.add_argument("--input", type=Path, default=None, help="the clip standing in for a camera [default: synthetic]")
    ap.add_argument("--size", default="320x256", help="inference size WxH (and the synthetic clip's)")
    ap.add_argument("--fps", type=int, default=25, help="the synthetic clip's frame rate")
    ap.add_argument("--seconds", type=float, default=20.0, help="each model's session")
    ap.add_argument("--engine", default=None,
                    help="[default: compile on a CPU with native bf16, else onnxruntime: the fastest CPU engine]")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    size = engine_speed.parse_size(args.size)
    engine = args.engine or ("compile" if cpu_has_fast_bf16() else "onnxruntime")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = args.input
        if source is None:  # enough frames that the clip outlasts a session
            source = synthetic_thermal_clip(tmp / "camera.mp4", frames=int(args.fps * (args.seconds + 5)),
                                            width=size[0], height=size[1], fps=args.fps)
        recordings = tmp / "shown"
        recordings.mkdir()
        for spec in args.models:
            row = measure(spec, source, size, args.seconds, engine, recordings)
            rows.append(row)
            print(f"{row['model'][:28]:28s} {row['engine'][:32]:32s} {row['fps_shown']:5.1f} fps shown, dropped "
                  f"{100 * (row['dropped_share'] or 0):4.1f} %, latency p50 {row['latency_p50_ms']:.0f} ms, p95 "
                  f"{row['latency_p95_ms']:.0f} ms, inference {row['inference_p50_ms']:.0f} ms", flush=True)
    report = {"source": str(args.input or f"synthetic {args.size} at {args.fps} fps"), "size": args.size,
              "fps": args.fps, "engine": engine, "cpu": f"{os.cpu_count()} cores, {torch.get_num_threads()} threads",
              "fast_bf16": cpu_has_fast_bf16(), "load_average": os.getloadavg()[0], "rows": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
