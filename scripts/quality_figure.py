"""The README's pictures: IR | each variant | visible, for held-out pairs and frames of the eval video.

    python scripts/quality_figure.py -o docs/before-after.png \
        "release (2026-11-26)=ir2vis_stream/weights/default.pt" "new=runs/abl/sharp/last.pt"

Variants are written as for ``scripts/ablation_report.py`` (``NAME=CHECKPOINT[,infer=...][,level_upsampling=...]
[,grid_filter=on|off]``).
Each picture is shown at its own size scaled to a common height; each variant runs exactly as ``run`` runs it
(the frame resized to the variant's inference size, eager fp32, the grid filter unless ``grid_filter=off``, the
colour image resized back). ``--zoom`` shows the middle of each picture at twice its own size instead, where
a grid of a few pixels is visible.
Rows: ``--pairs`` held-out IR/visible pairs (paths of their lwir images; by default one of each folder the
new data brings and one of RoadScene) and ``--frames`` frame numbers of the eval video pair.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation_report import SHARED, infer_size, parse_variant, variant_checkpoint  # noqa: E402

from ir2vis_stream.bench.protocol import PROTOCOLS  # noqa: E402

from ir2vis_stream.checkpoint import load_checkpoint  # noqa: E402
from ir2vis_stream.engines import create_engine  # noqa: E402
from ir2vis_stream.frames import read_image, to_gray8  # noqa: E402
from ir2vis_stream.gridfilter import grid_period  # noqa: E402
from ir2vis_stream.processor import FrameProcessor  # noqa: E402

DEFAULT_VIDEO, DEFAULT_REFERENCE = SHARED / PROTOCOLS["full"].video, SHARED / PROTOCOLS["full"].reference
DEFAULT_PAIRS = [SHARED / "msrs_full" / "lwir" / "00204D.png", SHARED / "m3svd_dusk" / "lwir" / "0115_1847_0010.png",
                 SHARED / "roadscene" / "lwir" / "FLIR_00993.jpg"]


def video_frames(path: Path, numbers: list[int], color: bool) -> list[np.ndarray]:
    import av

    wanted, out = set(numbers), {}
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
            if len(out) == len(wanted):
                break
    return [out[n] if color else cv2.cvtColor(out[n], cv2.COLOR_RGB2GRAY) for n in numbers]


def label(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--pairs", nargs="*", type=Path, default=DEFAULT_PAIRS)
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--frames", nargs="*", type=int, default=[40, 120])
    ap.add_argument("--height", type=int, default=200, help="height of each picture in the figure")
    ap.add_argument("--zoom", action="store_true", help="the middle of each picture at 2x its own size")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    rows = [(to_gray8(read_image(p)), read_image(p.parent.parent / "visible" / p.name, color=True), p.parent.parent.name)
            for p in args.pairs]
    if args.frames:
        for n, ir, vis in zip(args.frames, video_frames(args.video, args.frames, False),
                              video_frames(args.reference, args.frames, True)):
            rows.append((ir, vis, f"eval video #{n}"))
    variants = [parse_variant(t) for t in args.variants]
    with tempfile.TemporaryDirectory() as tmp:
        engines = []
        for v in variants:
            ck = load_checkpoint(variant_checkpoint(v, Path(tmp)))
            spec = infer_size(v["infer"]) if v["infer"] else ck.train_size
            period = grid_period(ck.model, v["grid_filter"] == "on")
            engines.append(FrameProcessor(create_engine("torch", ck.model, torch.device("cpu"), "fp32"), spec,
                                          grid_period=period))
        picture = []
        for ir, vis, where in rows:
            h, w = ir.shape
            tiles = [np.repeat(ir[:, :, None], 3, axis=2)] + [frames([ir])[0] for frames in engines] + [vis]
            tw = round(w * args.height / h)
            if args.zoom:  # the middle (tw/2 x height/2) at 1:1, each pixel drawn 2 x 2
                y0, x0 = (h - args.height // 2) // 2, (w - tw // 2) // 2
                tiles = [cv2.resize(t[y0:y0 + args.height // 2, x0:x0 + tw // 2], None, fx=2, fy=2,
                                    interpolation=cv2.INTER_NEAREST) for t in tiles]
            else:
                tiles = [cv2.resize(t, (tw, args.height), interpolation=cv2.INTER_AREA) for t in tiles]
            names = [f"IR ({where})"] + [v["name"] for v in variants] + ["visible"]
            picture.append(np.concatenate([label(t, n) for t, n in zip(tiles, names)], 1))
    width = max(r.shape[1] for r in picture)
    picture = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in picture]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), cv2.cvtColor(np.concatenate(picture, 0), cv2.COLOR_RGB2BGR))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
