"""The GPU check: one command, ready for a machine with a CUDA GPU (it skips the GPU part, and says so, without).

    python benchmarks/gpu_check.py --json gpu_check.json [--av-wheel av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl]
        [--input CLIP] [--frames 96] [--batch-sizes 8,32] [--engines torch,cuda-graph,compile] [--size 640x512]

1. ``run`` end to end with an identity model (the IR as grey RGB) on the clip, on the CPU (the host path) and
   on CUDA (the device path: pre/post-processing on the GPU, two batches in flight), into PNG folders: the
   frames must be equal (the frame path moves pixels, it must not change them); and into H.264 (lossless),
   where the GPU's RGB -> I420 must give swscale's Y plane to within one level.
2. The bundled model (random weights of the same architecture when it is absent: the same cost), through
   ``bench speed``'s measurements (the library call): per engine and batch size, the stage rates (decode,
   preprocess, inference, postprocess, encode), end-to-end fps of the threaded pipeline, its efficiency
   (end-to-end ÷ inference alone), latency and peak GPU memory, at ``--size``.

Everything goes into one JSON, rewritten after each measurement, so a run cut by a time limit keeps what it
measured. A GPU machine without PyAV gets it from ``--av-wheel`` (installed into a temporary folder on
``sys.path``; nothing is installed system-wide). Default input: ``../shared/data/clips/m3svd_0111_1716_
infrared.mp4`` when present, else a generated 640x480 thermal-looking clip. CUDA graphs are not an engine of
this package yet (issue 14): the JSON says so rather than leaving the row out silently.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "m3svd_0111_1716_infrared.mp4"


def ensure_av(wheel: Path | None, into: Path) -> str:
    """Import PyAV, installing ``wheel`` into ``into`` (added to sys.path) when it is missing."""
    try:
        import av

        return f"installed: {av.__version__}"
    except ImportError:
        if wheel is None:
            raise SystemExit("error: PyAV is not installed; pass --av-wheel with the av 18.1 cp311-abi3 wheel")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                        str(into), str(wheel)], check=True)
        sys.path.insert(0, str(into))
        import av

        return f"from {wheel.name}: {av.__version__}"


def identity_model():
    import torch

    class GreyIdentity(torch.nn.Module):
        """The IR input as grey RGB: output pixels are the input's, so two devices must agree exactly."""

        in_channels = 1
        size_multiple = 1

        def forward(self, x):
            return x.expand(-1, 3, -1, -1)

    return GreyIdentity()


def identity_check(clip: Path, frames: int, tmp: Path, cuda: bool) -> dict:
    """``run`` with the identity model on the CPU and (if there is one) on CUDA, to PNG frames and to lossless
    H.264: are the PNGs equal, and how far apart are the videos' Y planes?"""
    import av
    import cv2
    import numpy as np

    import ir2vis_stream as irs

    out: dict = {}
    for device in ["cpu"] + (["cuda"] if cuda else []):
        for kind, target in (("png", tmp / f"identity_{device}"), ("h264", tmp / f"identity_{device}.mp4")):
            t = time.perf_counter()
            result = irs.run(clip, target, model=identity_model(), engine="torch", device=device, precision="fp32",
                             batch_size=8, max_frames=frames, crf=0)
            out[f"{device}_{kind}"] = {"frames": result.frames, "seconds": round(time.perf_counter() - t, 2),
                                       "fps": round(result.fps, 1)}
    if cuda:
        a, b = (sorted((tmp / f"identity_{d}").glob("*.png")) for d in ("cpu", "cuda"))
        diffs = [int(np.abs(cv2.imread(str(x)).astype(int) - cv2.imread(str(y)).astype(int)).max()) for x, y in zip(a, b)]
        out["png_equal"] = len(a) == len(b) and max(diffs, default=0) == 0
        out["png_max_abs_difference"] = max(diffs, default=None)

        def luma(path: Path) -> list:
            with av.open(str(path)) as c:
                return [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]

        ya, yb = luma(tmp / "identity_cpu.mp4"), luma(tmp / "identity_cuda.mp4")
        out["h264_frames_equal_count"] = len(ya) == len(yb)
        out["h264_luma_max_abs_difference"] = max((int(np.abs(x - y).max()) for x, y in zip(ya, yb)), default=None)
        out["h264_within_one_level"] = out["h264_frames_equal_count"] and out["h264_luma_max_abs_difference"] <= 1
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--input", type=Path, default=REAL_CLIP if REAL_CLIP.exists() else None)
    ap.add_argument("--av-wheel", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--batch-sizes", default="8,32")
    ap.add_argument("--engines", default="torch,cuda-graph,compile")
    ap.add_argument("--size", default="640x512", help="inference size WxH")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ir2vis-gpu-check-") as tmpdir:
        tmp = Path(tmpdir)
        av_note = ensure_av(args.av_wheel, tmp / "site")
        import torch

        from ir2vis_stream.bench import speed_benchmark
        from ir2vis_stream.synthetic import synthetic_thermal_clip

        cuda = torch.cuda.is_available()
        report: dict = {"cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "no CUDA device",
                        "torch": torch.__version__, "pyav": av_note}

        def save() -> None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")

        clip = args.input or synthetic_thermal_clip(tmp / "thermal.mp4", frames=args.frames, width=640, height=480)
        report["input"] = str(clip)
        report["identity_run"] = identity_check(clip, min(args.frames, 48), tmp, cuda)
        save()
        print(f"identity run: {report['identity_run']}", flush=True)
        if not cuda:
            report["skipped"] = "no CUDA device: the GPU measurements were skipped (identity run on the CPU only)"
            save()
            print(report["skipped"])
            return 0

        w, h = (int(v) for v in args.size.lower().split("x"))
        report["speed"] = []
        for engine in args.engines.split(","):
            t = time.perf_counter()
            try:
                speed = speed_benchmark(clip, engines=(engine,), batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
                                        frames=args.frames, device="cuda", infer_size=(w, h), naive=False)
                report["speed"].append({"engine": engine, "seconds": round(time.perf_counter() - t, 1), **speed.to_dict()})
                for row in speed.rows:
                    print(f"{row.engine} b{row.batch_size}: inference {row.stage_fps['inference']:.0f} fps, end to end "
                          f"{row.end_to_end_fps:.0f} fps (efficiency {row.efficiency:.2f}), peak {row.peak_gpu_mib} MiB",
                          flush=True)
            except Exception as exc:  # one engine failing (a compile that cannot build) must not lose the others
                report["speed"].append({"engine": engine, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                print(f"{engine}: failed: {exc}", flush=True)
            save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
