"""Pipeline efficiency: end-to-end ``run`` against inference alone on the same frames, plus decode/encode alone.

    python benchmarks/pipeline_efficiency.py [--input CLIP] [--checkpoint CKPT] [--frames 48] [--json out.json]

Efficiency = end-to-end fps / inference-only fps (target >= 0.9): how much of the engine's speed survives
decoding, pre/post-processing and encoding running beside it. The measurements are ``ir2vis-stream bench
speed``'s (``ir2vis_stream.bench.speed``), one implementation; this script prints the efficiency view of them.
Default input: the real thermal clip ``../shared/data/clips/m3svd_0111_1716_infrared.mp4`` when present,
else a generated one. Default model: the bundled checkpoint, else the default-config generator with random
weights (same cost).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ir2vis_stream.bench import speed_benchmark
from ir2vis_stream.hardware import reuse_freed_memory

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "m3svd_0111_1716_infrared.mp4"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, default=REAL_CLIP if REAL_CLIP.exists() else None)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    reuse_freed_memory()  # as the command line runs

    report = speed_benchmark(args.input, checkpoint=args.checkpoint, batch_sizes=(args.batch_size,),
                             frames=args.frames, device=args.device, precision=args.precision, crf=args.crf,
                             preset=args.preset, naive=False, json_path=args.json)
    row = report.rows[0]
    summary = {
        "machine": report.machine, "engine": row.engine, "model": report.model, "input": report.input,
        "input_size": list(report.input_size), "infer_size": list(report.infer_size), "frames": report.frames,
        "batch_size": row.batch_size, **{f"{k}_fps": round(v, 2) for k, v in row.stage_fps.items()},
        "end_to_end_fps": round(row.end_to_end_fps, 2), "efficiency": round(row.efficiency, 3),
        "stage_busy": {k: round(v, 3) for k, v in row.stage_busy.items()},
    }
    for k, v in summary.items():
        print(f"{k:>16}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
