"""Named quality protocols (which pairs, which video, at what size) and the release gate that reads them.

``full`` judges a model where a viewer sees it: sharp 640x480 data, each image at its own size.

- gated pairs: the held-out pairs of ``msrs_full/`` (every 10th), ``m3svd/`` (every 10th) and the whole dusk clip
  ``0115_1847_`` of ``m3svd_dusk/``, all 640x480;
- the eval video: ``clips/m3svd_0111_1716_*`` (151 frames, 640x480, never trained on);
- reported apart, outside the gate: the held-out pairs of ``msrs/`` (170x128 copies, blurred when enlarged) and
  ``roadscene/`` (many of them enlarged 2-3x before a model sees them at 256).

``legacy`` is the protocol of the reports written before 2026-12-07's pictures campaign: the held-out pairs of all
five folders as one set, and the eval video.

``gate_checks`` is the release gate of the pictures campaign: a candidate against the release, both measured in
one ``full`` run, each at the inference size it ships with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PSNR_MARGIN_DB = 0.2  # the candidate may lose this much PSNR to the release (the perception-distortion trade)
GRID_LIMIT = 1.2  # grid energy over the visible image's
FLICKER_LIMIT = 1.0  # output change over IR change
EVAL_VIDEO, EVAL_REFERENCE = "clips/m3svd_0111_1716_infrared.mp4", "clips/m3svd_0111_1716_visible.mp4"


@dataclass(frozen=True)
class Protocol:
    name: str
    gated: tuple[str, ...]  # data folders (under the data root) whose held-out pairs the gate reads
    apart: tuple[str, ...]  # reported beside them, outside the gate
    heldout_prefixes: tuple[str, ...]  # whole clips held out, as training's --heldout-prefix
    video: str  # the registered video pair, under the data root
    reference: str

    def folders(self, root: str | Path, which: str) -> list[Path]:
        return [Path(root) / f for f in (self.gated if which == "gated" else self.apart)]


PROTOCOLS = {
    "full": Protocol("full", gated=("msrs_full", "m3svd", "m3svd_dusk"), apart=("msrs", "roadscene"),
                     heldout_prefixes=("0115_1847_",), video=EVAL_VIDEO, reference=EVAL_REFERENCE),
    "legacy": Protocol("legacy", gated=("roadscene", "msrs", "m3svd", "msrs_full", "m3svd_dusk"), apart=(),
                       heldout_prefixes=("0115_1847_",), video=EVAL_VIDEO, reference=EVAL_REFERENCE),
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str  # the two figures, release then candidate


def gate_checks(base: dict, candidate: dict) -> list[Check]:
    """The gate's tests for ``candidate`` against ``base``: two variants of one ``scripts/ablation_report.py`` JSON
    (each ``{"pairs": report, "video": report, ...}``, model 1 of each report the variant, model 0 the IR). Raises
    KeyError when the reports lack a figure (written before the gate's metrics existed)."""
    checks = []
    for where in ("pairs", "video"):
        b, c = base[where]["models"][1], candidate[where]["models"][1]
        label = "held-out pairs" if where == "pairs" else "eval video"
        checks += [
            Check(f"PSNR on the {label} >= release - {PSNR_MARGIN_DB} dB", c["psnr"] >= b["psnr"] - PSNR_MARGIN_DB,
                  f"{b['psnr']:.2f} -> {c['psnr']:.2f} dB"),
            Check(f"SSIM on the {label} >= release", c["ssim"] >= b["ssim"], f"{b['ssim']:.4f} -> {c['ssim']:.4f}"),
            Check(f"IR edges kept on the {label} higher", c["edges_kept"] > b["edges_kept"],
                  f"{b['edges_kept']:.3f} -> {c['edges_kept']:.3f}"),
            Check(f"grid on the {label} <= {GRID_LIMIT}", c["grid"] <= GRID_LIMIT, f"{b['grid']:.2f} -> {c['grid']:.2f}"),
            Check(f"colourfulness ratio on the {label} nearer 1",
                  abs(1 - c["colourfulness_ratio"]) < abs(1 - b["colourfulness_ratio"]),
                  f"{b['colourfulness_ratio']:.2f} -> {c['colourfulness_ratio']:.2f}"),
        ]
    b_folders, c_folders = base["pairs"]["folders"], candidate["pairs"]["folders"]
    for folder in b_folders:
        b, c = b_folders[folder][1]["gmsd"], c_folders[folder][1]["gmsd"]
        checks.append(Check(f"GMSD lower in {Path(folder).name}", c < b, f"{b:.4f} -> {c:.4f}"))
    b, c = base["video"]["models"][1]["gmsd"], candidate["video"]["models"][1]["gmsd"]
    checks.append(Check("GMSD lower on the eval video", c < b, f"{b:.4f} -> {c:.4f}"))
    b, c = base["video"]["models"][1]["flicker_ratio"], candidate["video"]["models"][1]["flicker_ratio"]
    checks.append(Check(f"flicker / IR on the eval video <= {FLICKER_LIMIT}", c <= FLICKER_LIMIT, f"{b:.2f} -> {c:.2f}"))
    return checks


def gate_table(checks: list[Check]) -> str:
    """The gate as a markdown table, for the note and docs/."""
    rows = [f"| {c.name} | {c.detail} | {'pass' if c.passed else 'FAIL'} |" for c in checks]
    return "\n".join(["| test | release -> candidate | |", "|---|---|---|", *rows])
