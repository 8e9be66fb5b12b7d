"""Pipeline efficiency: end-to-end ``run`` against inference alone on the same frames, plus decode/encode alone.

    python benchmarks/pipeline_efficiency.py [--input CLIP] [--checkpoint CKPT] [--frames 48] [--json out.json]

Efficiency = end-to-end fps / inference-only fps (target >= 0.9): how much of the engine's speed survives
decoding, pre/post-processing and encoding running beside it. All four figures come from one process,
one after the other, on the same frames, so their ratios are comparable on a shared, noisy machine.
Default input: the real thermal clip ``../shared/data/clips/m3svd_0111_1716_infrared.mp4`` when present,
else a generated one. Default model: the bundled checkpoint, else the default-config generator with random
weights (same cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ir2vis_stream.api import run
from ir2vis_stream.checkpoint import default_checkpoint_path, load_checkpoint
from ir2vis_stream.engines import create_engine
from ir2vis_stream.frames import Percentile16To8, gray8_to_model, model_to_rgb8, resize, to_gray8
from ir2vis_stream.hardware import resolve_device
from ir2vis_stream.media import VideoSink, VideoSource
from ir2vis_stream.model import MultiScaleGenerator
from ir2vis_stream.pipeline import resolve_infer_size

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "m3svd_0111_1716_infrared.mp4"


def decode_only(path: Path, frames: int, size) -> tuple[float, list[np.ndarray]]:
    src = VideoSource(path)
    stretch = Percentile16To8()
    out = []
    t = time.perf_counter()
    for f in src:
        if f.index >= frames:
            break
        out.append(resize(to_gray8(f.image, stretch), *size))
    dt = time.perf_counter() - t
    src.close()
    return len(out) / dt, out


def encode_only(frames_rgb: list[np.ndarray], info, crf: int, preset: str, tmp: Path) -> float:
    h, w = frames_rgb[0].shape[:2]
    sink = VideoSink(tmp / "enc.mp4", w, h, info.fps, info.time_base, crf=crf, preset=preset)
    t = time.perf_counter()
    for i, f in enumerate(frames_rgb):
        sink.write(f, i, info.time_base)
    sink.close()
    return len(frames_rgb) / (time.perf_counter() - t)


def inference_only(engine, smalls: list[np.ndarray], batch: int) -> float:
    engine(gray8_to_model(torch.from_numpy(np.stack(smalls[:batch])).to(engine.device)))  # warm-up
    t = time.perf_counter()
    for i in range(0, len(smalls) - len(smalls) % batch or len(smalls), batch):
        x = gray8_to_model(torch.from_numpy(np.stack(smalls[i:i + batch])).to(engine.device))
        model_to_rgb8(engine(x)).cpu().numpy()
    n = len(smalls) - len(smalls) % batch or len(smalls)
    return n / (time.perf_counter() - t)


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

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        clip = args.input
        if clip is None:
            from ir2vis_stream.demo import synthetic_thermal_clip

            clip = synthetic_thermal_clip(tmp / "synthetic.mp4", frames=args.frames, width=640, height=480)
        ck_path = args.checkpoint or (default_checkpoint_path() if default_checkpoint_path().is_file() else None)
        if ck_path:
            ck = load_checkpoint(ck_path)
            model, size_spec, model_name = ck.model, ck.train_size, str(ck_path)
        else:
            model, size_spec, model_name = MultiScaleGenerator().eval(), {"short_side": 256}, "default config, random weights"
        device = resolve_device(args.device)
        engine = create_engine("auto", model, device, args.precision)
        info = VideoSource(clip).info
        size = resolve_infer_size(size_spec, info.width, info.height)
        frames = min(args.frames, info.frames or args.frames)

        dec_fps, smalls = decode_only(clip, frames, size)
        inf_fps = inference_only(engine, smalls, args.batch_size)
        rgb_full = [np.repeat(resize(s, info.width, info.height)[:, :, None], 3, axis=2) for s in smalls]
        enc_fps = encode_only(rgb_full, info, args.crf, args.preset, tmp)
        result = run(clip, tmp / "e2e.mp4", model=model, infer_size=size, device=args.device, precision=args.precision,
                     batch_size=args.batch_size, crf=args.crf, preset=args.preset, max_frames=frames)
        e2e_fps = result.fps

    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "engine": engine.describe(), "model": model_name, "input": str(clip),
        "input_size": [info.width, info.height], "infer_size": list(size), "frames": frames,
        "batch_size": args.batch_size, "decode_fps": round(dec_fps, 2), "inference_fps": round(inf_fps, 2),
        "encode_fps": round(enc_fps, 2), "end_to_end_fps": round(e2e_fps, 2),
        "efficiency": round(e2e_fps / inf_fps, 3), "stage_busy": {k: round(v, 3) for k, v in result.busy.items()},
    }
    for k, v in report.items():
        print(f"{k:>16}: {v}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
