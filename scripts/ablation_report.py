"""The ablation table of the README: each variant on the held-out pairs and on the eval video, one run.

    python scripts/ablation_report.py --json benchmarks/results/ablation.json \
        "release=ir2vis_stream/weights/default.pt" \
        "release, inferred at 384=ir2vis_stream/weights/default.pt,infer=384" \
        "release, bilinear level images=ir2vis_stream/weights/default.pt,level_upsampling=bilinear" \
        "fine-tune on sharp data=runs/abl/sharp/last.pt"

A variant is ``NAME=CHECKPOINT[,infer=S|WxH|native][,level_upsampling=nearest|bilinear][,temporal=A]
[,grid_filter=on|off]``: ``infer``
runs it at short side S (or W x H, or the frame's own size) instead of its training size; ``level_upsampling``
rebuilds it with that way of enlarging the level images (the weights do not change); ``temporal`` scores it
with ``run --temporal A``'s filter; ``grid_filter`` (default ``on``, as ``run``) with or without ``run``'s grid filter
(reports written before 2026-12-07's second session had none: their variants say ``grid_filter`` null). Every
variant goes through
``bench quality`` (the library call): the held-out pairs of the data folders (every 10th pair; whole clips
for names starting with ``--heldout-prefix``), then the registered video pair, each at the images' own size,
with ONNX Runtime fp32 by default (the figures equal eager fp32's to within rounding, and it is about twice
as fast on a CPU). The table has PSNR / SSIM / GMSD / grid on the pairs and on the video, the video's flicker
ratio and warping error, and ms per frame of the engine at the variant's size; the JSON has every report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from ir2vis_stream.bench import quality_on_pairs, quality_on_video
from ir2vis_stream.checkpoint import load_checkpoint, save_checkpoint
from ir2vis_stream.model import MultiScaleGenerator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_DATA = [SHARED / d for d in ("roadscene", "msrs", "m3svd", "msrs_full", "m3svd_dusk")]
DEFAULT_VIDEO = SHARED / "clips" / "m3svd_0111_1716_infrared.mp4"
DEFAULT_REFERENCE = SHARED / "clips" / "m3svd_0111_1716_visible.mp4"


def parse_variant(text: str) -> dict:
    name, _, rest = text.partition("=")
    path, *options = rest.split(",")
    if not name or not path:
        raise SystemExit(f"variant {text!r}: expected NAME=CHECKPOINT[,infer=...][,level_upsampling=...]")
    v = {"name": name.strip(), "checkpoint": path.strip(), "infer": None, "level_upsampling": None, "temporal": None,
         "grid_filter": "on"}
    for opt in options:
        key, _, value = opt.partition("=")
        if key not in ("infer", "level_upsampling", "temporal", "grid_filter"):
            raise SystemExit(f"variant {name!r}: unknown option {key!r}")
        if key == "grid_filter" and value not in ("on", "off"):
            raise SystemExit(f"variant {name!r}: grid_filter is on or off, not {value!r}")
        v[key] = value
    return v


def infer_size(value: str | None):
    if value is None or value == "native":
        return value
    if "x" in value:
        w, h = value.split("x")
        return int(w), int(h)
    return {"short_side": int(value)}


def variant_checkpoint(v: dict, tmp: Path) -> Path:
    """The checkpoint to evaluate: the file itself, or a copy rebuilt with another level upsampling."""
    if not v["level_upsampling"]:
        return Path(v["checkpoint"])
    ck = load_checkpoint(v["checkpoint"])
    model = MultiScaleGenerator(replace(ck.model.config, level_upsampling=v["level_upsampling"]))
    model.load_state_dict(ck.model.state_dict())
    out = tmp / f"{len(list(tmp.iterdir()))}.pt"
    save_checkpoint(out, model, ck.meta)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", help="NAME=CHECKPOINT[,infer=S|WxH|native][,level_upsampling=...]")
    ap.add_argument("--table", nargs="+", type=Path, default=None, metavar="JSON",
                    help="print the table of earlier runs' JSON files (one table, in order) and exit")
    ap.add_argument("--data", nargs="*", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--heldout-prefix", action="append", default=None,
                    help="whole clips held out (default: 0115_1847_, the m3svd_dusk clip no run trains on)")
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--max-frames", type=int, default=None, help="compare the first N frames of the video")
    ap.add_argument("--engine", default="onnxruntime")
    ap.add_argument("--json", type=Path, default=None, help="every report, rewritten after each variant")
    args = ap.parse_args()
    if args.table:
        missing = [str(p) for p in args.table if not p.is_file()]
        if missing:
            ap.error(f"no such file: {', '.join(missing)}")
        print(markdown([r for path in args.table for r in json.loads(path.read_text())]))
        return 0
    if not args.variants or args.json is None:
        ap.error("give variants and --json, or --table JSON...")
    prefixes = args.heldout_prefix if args.heldout_prefix is not None else ["0115_1847_"]
    variants = [parse_variant(t) for t in args.variants]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            ck = variant_checkpoint(v, Path(tmp))
            common = dict(infer_size=infer_size(v["infer"]), engine=args.engine, device="cpu", precision="fp32",
                          temporal=float(v["temporal"]) if v["temporal"] else None,
                          grid_filter=v["grid_filter"] == "on")
            pairs = quality_on_pairs([str(d) for d in args.data], [ck], split="heldout", heldout_prefixes=prefixes,
                                     **common)
            video = quality_on_video(args.video, args.reference, [ck], max_frames=args.max_frames, **common)
            results.append({"variant": v, "pairs": pairs.to_dict(), "video": video.to_dict()})
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")  # after each variant: a cut run keeps what it did
            print(f"done: {v['name']}", file=sys.stderr, flush=True)
    print(markdown(results))
    return 0


def markdown(results: list[dict]) -> str:
    """The README table: the IR baseline first, then each variant, overall figures; then per folder GMSD."""
    head = ("| variant | held-out PSNR / SSIM / GMSD / grid | video PSNR / SSIM / GMSD / grid | video flicker ÷ IR | "
            "video warp err | ms/frame |\n|---|---|---|---|---|---|")
    rows = []

    def row(name, p, v):
        ms = f"{p['ms_per_frame']:.0f}" if p.get("ms_per_frame") else "-"
        return (f"| {name} | {p['psnr']:.2f} / {p['ssim']:.3f} / {p['gmsd']:.3f} / {p['grid']:.2f} | "
                f"{v['psnr']:.2f} / {v['ssim']:.3f} / {v['gmsd']:.3f} / {v['grid']:.2f} | "
                f"{v['flicker_ratio']:.2f} | {v['warp_error']:.2f} | {ms} |")

    first = results[0]
    rows.append(row("IR as grey", first["pairs"]["models"][0], first["video"]["models"][0]))
    for r in results:
        rows.append(row(r["variant"]["name"], r["pairs"]["models"][1], r["video"]["models"][1]))
    folders = list(first["pairs"]["folders"])
    gmsd_head = "| GMSD per folder | " + " | ".join(Path(f).name for f in folders) + " |\n|---|" + "---|" * len(folders)
    gmsd_rows = ["| IR as grey | " + " | ".join(f"{first['pairs']['folders'][f][0]['gmsd']:.3f}" for f in folders) + " |"]
    for r in results:
        gmsd_rows.append(f"| {r['variant']['name']} | "
                         + " | ".join(f"{r['pairs']['folders'][f][1]['gmsd']:.3f}" for f in folders) + " |")
    ref = first["video"]["reference"]
    note = (f"\nThe visible video's own flicker ÷ IR: {ref['flicker_ratio']:.2f}, warping error {ref['warp_error']:.2f}"
            f" ({100 * ref['warp_mask_coverage']:.0f}% of pixels unoccluded).")
    return "\n".join([head, *rows, "", gmsd_head, *gmsd_rows]) + "\n" + note


if __name__ == "__main__":
    sys.exit(main())
