"""The ablation table of the README: each variant on the held-out pairs and on the eval video, one run.

    python scripts/ablation_report.py --protocol full --json benchmarks/results/ablation.json \
        "release=ir2vis_stream/weights/default.pt" \
        "release, inferred at 384=ir2vis_stream/weights/default.pt,infer=384" \
        "release, bilinear level images=ir2vis_stream/weights/default.pt,level_upsampling=bilinear" \
        "fine-tune on sharp data=runs/abl/sharp/last.pt"

A variant is ``NAME=CHECKPOINT[,infer=S|WxH|native][,level_upsampling=nearest|bilinear][,temporal=A]
[,grid_filter=on|off]``: ``infer``
runs it at short side S (or W x H, or the frame's own size) instead of its training size; ``level_upsampling``
rebuilds it with that way of enlarging the level images (the weights do not change); ``temporal`` scores it
with ``run --temporal A``'s filter, ``temporal=off`` without it (default: ``run``'s, on at 0.6 on a CPU; reports
before the pictures campaign had it off unless a variant said so); ``grid_filter`` (default ``on``, as ``run``) with or without ``run``'s grid filter
(reports written before 2026-12-07's second session had none: their variants say ``grid_filter`` null). Every
variant goes through
``bench quality`` (the library call) under a named protocol (``ir2vis_stream.bench.protocol``; ``full`` by
default: the held-out 640x480 pairs of msrs_full, m3svd and the dusk clip 0115_1847_, the eval video, and apart,
outside the gate, msrs 170x128 and roadscene; ``legacy``: the five folders as one set, as reports before the
pictures campaign), each image at its own size, with ONNX Runtime fp32 by default (the figures equal eager fp32's
to within rounding, and it is about twice as fast on a CPU). The table has PSNR / SSIM / GMSD / grid / IR edges
kept / colourfulness ratio on the pairs and on the video, the video's flicker ratio and warping error, and ms per
frame of the engine at the variant's size; the JSON has every report. ``--gate`` prints the release gate of the
first variant (the release) against each other one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from ir2vis_stream.bench import quality_on_pairs, quality_on_video
from ir2vis_stream.bench.protocol import PROTOCOLS, gate_checks, gate_table
from ir2vis_stream.checkpoint import load_checkpoint, save_checkpoint
from ir2vis_stream.model import MultiScaleGenerator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="full")
    ap.add_argument("--data-root", type=Path, default=SHARED, help="where the protocol's folders are")
    ap.add_argument("--data", nargs="*", type=Path, default=None, help="gated pair folders instead of the protocol's")
    ap.add_argument("--heldout-prefix", action="append", default=None,
                    help="whole clips held out (default: the protocol's, 0115_1847_: the m3svd_dusk clip no run trains on)")
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--reference", type=Path, default=None)
    ap.add_argument("--gate", action="store_true", help="also print the release gate: the first variant against each other")
    ap.add_argument("--max-frames", type=int, default=None, help="compare the first N frames of the video")
    ap.add_argument("--engine", default="onnxruntime")
    ap.add_argument("--json", type=Path, default=None, help="every report, rewritten after each variant")
    args = ap.parse_args()
    if args.table:
        missing = [str(p) for p in args.table if not p.is_file()]
        if missing:
            ap.error(f"no such file: {', '.join(missing)}")
        results = [r for path in args.table for r in json.loads(path.read_text())]
        print(markdown(results))
        if args.gate:
            print(gates(results))
        return 0
    if not args.variants or args.json is None:
        ap.error("give variants and --json, or --table JSON...")
    protocol = PROTOCOLS[args.protocol]
    prefixes = args.heldout_prefix if args.heldout_prefix is not None else list(protocol.heldout_prefixes)
    gated = args.data if args.data is not None else protocol.folders(args.data_root, "gated")
    apart = [] if args.data is not None else protocol.folders(args.data_root, "apart")
    video = args.video or args.data_root / protocol.video
    reference = args.reference or args.data_root / protocol.reference
    variants = [parse_variant(t) for t in args.variants]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            ck = variant_checkpoint(v, Path(tmp))
            common = dict(infer_size=infer_size(v["infer"]), engine=args.engine, device="cpu", precision="fp32",
                          temporal="auto" if v["temporal"] is None else None if v["temporal"] == "off" else float(v["temporal"]),
                          grid_filter=v["grid_filter"] == "on")
            pairs = quality_on_pairs([str(d) for d in gated], [ck], split="heldout", heldout_prefixes=prefixes, **common)
            result = {"variant": v, "protocol": args.protocol if args.data is None else "custom",
                      "pairs": pairs.to_dict()}
            if apart:
                result["apart"] = quality_on_pairs([str(d) for d in apart], [ck], split="heldout",
                                                   heldout_prefixes=prefixes, **common).to_dict()
            result["video"] = quality_on_video(video, reference, [ck], max_frames=args.max_frames, **common).to_dict()
            results.append(result)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")  # after each variant: a cut run keeps what it did
            print(f"done: {v['name']}", file=sys.stderr, flush=True)
    print(markdown(results))
    if args.gate:
        print(gates(results))
    return 0


def gates(results: list[dict]) -> str:
    """The release gate of results[0] (the release) against each later variant."""
    out = []
    for r in results[1:]:
        checks = gate_checks(results[0], r)
        failed = [c.name for c in checks if not c.passed]
        out.append(f"\nGate: {r['variant']['name']} against {results[0]['variant']['name']}: "
                   + ("passes" if not failed else f"fails {len(failed)} of {len(checks)} tests") + "\n")
        out.append(gate_table(checks))
    return "\n".join(out)


def markdown(results: list[dict]) -> str:
    """The README table: the IR baseline first, then each variant, overall figures; then per folder GMSD."""
    head = ("| variant | held-out PSNR / SSIM / GMSD / grid / edges / colour | video PSNR / SSIM / GMSD / grid / edges / "
            "colour | video flicker ÷ IR | video warp err | ms/frame |\n|---|---|---|---|---|---|")
    rows = []

    def figures(m):
        text = f"{m['psnr']:.2f} / {m['ssim']:.3f} / {m['gmsd']:.3f} / {m['grid']:.2f}"
        if "edges_kept" in m:  # reports before 2026-12-07's pictures campaign have neither
            ratio = "-" if m.get("colourfulness_ratio") is None else f"{m['colourfulness_ratio']:.2f}"
            text += f" / {m['edges_kept']:.3f} / {ratio}"
        return text

    def row(name, p, v):
        ms = f"{p['ms_per_frame']:.0f}" if p.get("ms_per_frame") else "-"
        return f"| {name} | {figures(p)} | {figures(v)} | {v['flicker_ratio']:.2f} | {v['warp_error']:.2f} | {ms} |"

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
    if "edges_kept" in ref:
        note += (f" IR edges kept by the visible images themselves: {first['pairs']['reference']['edges_kept']:.3f} "
                 f"(pairs), {ref['edges_kept']:.3f} (video).")
    tables = [head, *rows, "", gmsd_head, *gmsd_rows]
    if "apart" in first:  # the pairs outside the gate
        tables += ["", "Outside the gate (held-out msrs 170x128 and roadscene): PSNR / SSIM / GMSD / grid / edges / colour",
                   "", "| variant | " + " | ".join(Path(f).name for f in first["apart"]["folders"]) + " |",
                   "|---|" + "---|" * len(first["apart"]["folders"])]
        tables.append("| IR as grey | " + " | ".join(figures(rows_[0]) for rows_ in first["apart"]["folders"].values()) + " |")
        for r in results:
            tables.append(f"| {r['variant']['name']} | "
                          + " | ".join(figures(rows_[1]) for rows_ in r["apart"]["folders"].values()) + " |")
    return "\n".join(tables) + "\n" + note


if __name__ == "__main__":
    sys.exit(main())
