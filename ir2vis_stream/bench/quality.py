"""``bench quality``: the paper's image metrics and our temporal one, per model, on paired data.

The protocol, which docs/pictures.md states and the numbers depend on:

- data: every pair found by ``train.data.find_pairs`` under the data folders (KAIST's
  ``setXX/VYYY/{lwir,visible}/`` or ``lwir/`` + ``visible/``), or with ``split="heldout"`` only every 10th pair
  of each sequence (the pairs training holds out); or a registered video pair, frame by frame;
- each model runs on the IR image at its checkpoint's training size (``processor.resolve_infer_size``; ``infer_size``
  overrides it), through the frame path ``run`` uses (with its grid filter where the model leaves a grid, unless
  ``grid_filter=False``), and its output is resized back to the image's own size, as ``run`` does for video; the
  comparison with the visible image happens at that original size. Eager torch in fp32 by default, so the
  figures do not depend on the machine's fast half-precision path (and images of many sizes do not make a
  compiled engine recompile for each);
- RMSE, PSNR, SSIM and LPIPS from ``ir2vis_stream.metrics`` (8-bit scale), per image, then averaged;
- the baseline "IR as grey": the IR image itself in R, G and B, which any model must beat;
- the temporal filter as ``run`` has it: on (0.6) on a CPU, off on a GPU, unless ``temporal`` says otherwise (the
  report's ``source`` records the strength used);
- temporal stability: the flicker ratio (output change / IR change between consecutive frames) over the
  sequences whose pair names carry evenly spaced frame numbers (the frames of a video, as in KAIST), and always
  for a video pair. Nothing is computed across sequence boundaries.
"""

from __future__ import annotations

import csv
import io
import json
import math
import itertools
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..checkpoint import Checkpoint, CheckpointError, default_checkpoint_path, load_checkpoint
from ..engines import create_engine
from ..frames import Percentile16To8, natural_key, read_image, to_gray8
from ..gridfilter import grid_period
from ..hardware import resolve_device
from ..media import MediaError, VideoSource, rgb_frames
from ..metrics import (FlickerMeter, LPIPSMetric, LPIPSUnavailable, WarpMeter, colourfulness, edges_kept,
                       flicker_ratio, grid_ratio, image_metrics)
from ..processor import FrameProcessor, resolve_temporal
from ..train.data import DataError, find_pairs
from ..files import atomic_write
from .report import BenchError, check_report_path, machine_description, now_iso

BASELINE = "IR as grey (baseline)"
METRICS = ("rmse", "psnr", "ssim", "gmsd", "grid", "lpips", "edges_kept", "colourfulness")


@dataclass
class ModelSummary:
    name: str
    checkpoint: str | None
    infer_size: str  # "short side 256", "256x256" or "native"; "-" for the baseline
    images: int
    rmse: float
    psnr: float
    ssim: float
    gmsd: float  # structure: lower is better
    grid: float  # up-sampling grid energy / the visible image's: 1.0 = none
    lpips: float | None  # None when LPIPS is unavailable
    edges_kept: float  # Q^A/F of the output against the IR: how much of the IR's edges it keeps (0..~1)
    colourfulness: float  # Hasler & Suesstrunk's M of the output, averaged
    colourfulness_ratio: float | None  # the mean M of the outputs / that of the visible images (1 = as colourful)
    flicker_ratio: float | None  # output change / IR change between consecutive frames; None without sequences
    warp_error: float | None  # mean |O_t - warp(O_t-1)| with the IR's optical flow, occlusions masked
    ms_per_frame: float | None  # the engine call alone, at the infer size, median over calls; None for the baseline


@dataclass
class QualityReport:
    source: dict  # what was evaluated: {"kind": "pairs", "data": [...], "split": ...} or {"kind": "video", ...}
    lpips: dict  # {"net": "alex", "available": bool, "note": str | None}
    models: list[ModelSummary]  # over all images
    folders: dict[str, list[ModelSummary]] = field(default_factory=dict)  # the same, per data folder
    per_image: list[dict] = field(default_factory=list)  # image, folder, model, the METRICS
    # the visible images' own figures: flicker ratio and warping error (sequences), IR edges kept and colourfulness,
    # overall and per folder ("folders")
    reference: dict = field(default_factory=dict)
    device: str = ""
    machine: str = ""
    date: str = ""

    @property
    def reference_flicker_ratio(self) -> float | None:
        return self.reference.get("flicker_ratio")

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["per_image"]  # the CSV holds those
        return d

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["image", "folder", "model", *METRICS])
        for row in self.per_image:
            w.writerow([row["image"], row["folder"], row["model"],
                        *("" if row[m] is None else f"{row[m]:.6g}" for m in METRICS)])
        return buf.getvalue()


def _describe_size(spec) -> str:
    if spec is None or spec == "native":
        return "native"
    if isinstance(spec, dict):
        if "max_width" in spec:
            return f"native up to {spec['max_width']} wide"
        return f"{spec['size'][0]}x{spec['size'][1]}" if "size" in spec else f"short side {spec['short_side']}"
    return f"{spec[0]}x{spec[1]}"


class _Temporal:
    """Flicker and warping error of every model (and of the IR and visible frames) over one folder's sequences."""

    def __init__(self, names: list[str]):
        self.flicker_in = FlickerMeter()
        self.flicker_ref = FlickerMeter()
        self.flicker_out = {n: FlickerMeter() for n in names}
        self.warp = WarpMeter()

    @classmethod
    def merged(cls, parts: list["_Temporal"]) -> "_Temporal":
        out = cls([])
        out.flicker_in = FlickerMeter.merged([t.flicker_in for t in parts])
        out.flicker_ref = FlickerMeter.merged([t.flicker_ref for t in parts])
        out.flicker_out = {n: FlickerMeter.merged([t.flicker_out[n] for t in parts]) for n in parts[0].flicker_out}
        out.warp = WarpMeter.merged([t.warp for t in parts])
        return out

    def new_sequence(self) -> None:
        for meter in (self.flicker_in, self.flicker_ref, *self.flicker_out.values(), self.warp):
            meter.new_sequence()

    def add(self, ir: np.ndarray, visible: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        self.flicker_in.add(torch.from_numpy(ir)[None])
        self.flicker_ref.add(torch.from_numpy(visible).permute(2, 0, 1))
        for name, out in outputs.items():
            self.flicker_out[name].add(torch.from_numpy(out).permute(2, 0, 1))
        self.warp.add(ir, {**outputs, _VISIBLE: visible})


_VISIBLE = "visible frames"


class _Evaluator:
    """Runs every model on one IR frame at a time and accumulates metrics, flicker and warping error per model
    and per folder."""

    def __init__(self, checkpoints: list[Checkpoint], names: list[str], *, infer_size, engine: str, device: str,
                 precision: str, lpips_net: str, lpips_random_backbone: bool, temporal: float | str | None = None,
                 grid_filter: bool = True):
        self.device = resolve_device(device)
        # one frame path per model, as ``run`` builds it: with run's temporal filter where it is on (on the frames
        # of sequences only; reset at each new one)
        self.models = []
        for name, ck in zip(names, checkpoints):
            spec = infer_size if infer_size is not None else ck.default_infer_size(self.device)
            period = grid_period(ck.model, grid_filter)
            frames = FrameProcessor(create_engine(engine, ck.model, self.device, precision), spec, temporal=temporal,
                                    grid_period=period)
            self.models.append((name, frames, spec, str(ck.path)))
        try:
            self.lpips = LPIPSMetric(lpips_net, self.device, random_backbone=lpips_random_backbone)
            self.lpips_info = {"net": lpips_net, "available": True,
                               "note": "random backbone: numbers for testing only" if lpips_random_backbone else None}
        except LPIPSUnavailable as exc:
            self.lpips = None
            self.lpips_info = {"net": lpips_net, "available": False, "note": f"LPIPS n/a: {exc}"}
        self.names = [BASELINE] + [m[0] for m in self.models]
        self.rows: list[dict] = []
        self.visible_rows: list[dict] = []  # folder, edges_kept, colourfulness of each visible image
        self.seconds: dict[str, list[float]] = {m[0]: [] for m in self.models}  # per ``infer`` (engine call)
        self.temporal: dict[str, _Temporal] = {}

    def new_sequence(self) -> None:
        for t in self.temporal.values():
            t.new_sequence()
        for _, frames, _, _ in self.models:
            frames.reset()

    def _score(self, image: str, folder: str, name: str, out: torch.Tensor, target: torch.Tensor, ir: torch.Tensor,
               grid_size: tuple[int, int]) -> None:
        row = {"image": image, "folder": folder, "model": name,
               **{k: v.item() for k, v in image_metrics(out, target).items()},
               "grid": grid_ratio(out, target, grid_size).item(), "edges_kept": edges_kept(out, ir).item(),
               "colourfulness": colourfulness(out).item()}
        row["lpips"] = self.lpips(out, target).item() if self.lpips is not None else None
        self.rows.append(row)

    @torch.inference_mode()
    def add(self, image: str, folder: str, ir: np.ndarray, visible: np.ndarray, track: bool) -> None:
        """Score every model on one (H, W) uint8 IR frame against its (H, W, 3) uint8 RGB visible frame; with
        ``track``, the frame continues the current sequence of ``folder`` for the temporal metrics."""
        height, width = ir.shape
        # metrics are computed where the model runs: float64 SSIM of large images is slow on a CPU
        target = torch.from_numpy(visible).permute(2, 0, 1)[None].to(self.device)
        grey = torch.from_numpy(ir)[None, None].to(self.device)
        sizes = [frames.size_for(width, height) for _, frames, _, _ in self.models]
        self.visible_rows.append({"folder": folder, "edges_kept": edges_kept(target, grey).item(),
                                  "colourfulness": colourfulness(target).item()})
        # the baseline's grid is measured where the first model's would be
        self._score(image, folder, BASELINE, grey.expand(-1, 3, -1, -1), target, grey,
                    sizes[0] if sizes else (width, height))
        outputs = {BASELINE: np.repeat(ir[:, :, None], 3, axis=2)}
        for (name, frames, _, _), size in zip(self.models, sizes):
            prepared = frames.prepare(ir)
            t0 = time.perf_counter()
            rgb = frames.infer([prepared.small])[0]  # ends on the host: the engine's work is done
            self.seconds[name].append(time.perf_counter() - t0)
            if not track:
                frames.reset()  # a still is not a sequence: no temporal filter
            rgb = frames.finish(prepared, rgb)
            outputs[name] = rgb
            self._score(image, folder, name, torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device), target, grey,
                        size)
        if track:
            self.temporal.setdefault(folder, _Temporal(self.names)).add(ir, visible, outputs)

    def _summaries(self, rows: list[dict], temporal: _Temporal | None, visible: list[dict]) -> list[ModelSummary]:
        out = []
        visible_m = float(np.mean([r["colourfulness"] for r in visible])) if visible else math.nan
        for name in self.names:
            mine = [r for r in rows if r["model"] == name]
            mean = {m: float(np.mean([r[m] for r in mine])) if mine and mine[0][m] is not None else None
                    for m in METRICS}
            model = next((m for m in self.models if m[0] == name), None)
            out.append(ModelSummary(
                name=name, checkpoint=model[3] if model else None,
                infer_size=_describe_size(model[2]) if model else "-", images=len(mine), **mean,
                colourfulness_ratio=_nan_to_none(mean["colourfulness"] / visible_m) if visible_m > 0 else None,
                flicker_ratio=flicker_ratio(temporal.flicker_out[name], temporal.flicker_in) if temporal else None,
                warp_error=_nan_to_none(temporal.warp.value(name)) if temporal else None,
                ms_per_frame=1000 * float(np.median(self.seconds[name])) if model and self.seconds[name] else None))
        return out

    def report(self, source: dict) -> QualityReport:
        folders = list(dict.fromkeys(r["folder"] for r in self.rows))
        per_folder = {f: self._summaries([r for r in self.rows if r["folder"] == f], self.temporal.get(f),
                                         [r for r in self.visible_rows if r["folder"] == f]) for f in folders}
        temporal = _Temporal.merged(list(self.temporal.values())) if self.temporal else None
        def visible(rows):
            return {k: float(np.mean([r[k] for r in rows])) for k in ("edges_kept", "colourfulness")}

        reference = {**visible(self.visible_rows),
                     "folders": {f: visible([r for r in self.visible_rows if r["folder"] == f]) for f in folders}}
        if temporal is not None:
            reference |= {"flicker_ratio": flicker_ratio(temporal.flicker_ref, temporal.flicker_in),
                         "warp_error": _nan_to_none(temporal.warp.value(_VISIBLE)),
                         "warp_mask_coverage": _nan_to_none(temporal.warp.coverage)}
        return QualityReport(source=source, lpips=self.lpips_info, models=self._summaries(self.rows, temporal, self.visible_rows),
                             folders=per_folder if len(folders) > 1 else {}, per_image=self.rows,
                             reference=reference, device=str(self.device),
                             machine=machine_description(self.device), date=now_iso())


def _nan_to_none(v: float) -> float | None:
    return None if v is None or math.isnan(v) else v


def _load_checkpoints(paths) -> tuple[list[Checkpoint], list[str]]:
    """All checkpoints loaded before any work (a bad one fails at once); None/empty: the default model."""
    if not paths:
        if not default_checkpoint_path().is_file():
            raise CheckpointError(f"no bundled model at {default_checkpoint_path()}; pass --checkpoint PATH")
        paths = [default_checkpoint_path()]
    paths = [Path(p) for p in paths]
    seen = [str(p) for p in paths]  # the same file twice (a determinism check) still gets two rows
    names = [s if s not in seen[:i] else f"{s} #{seen[:i].count(s) + 1}" for i, s in enumerate(seen)]
    return [load_checkpoint(p) for p in paths], names


_FRAME_NUMBER = re.compile(r"(\d+)\D*$")  # the last number in a name: its frame number


def _frame_number(name: str) -> int | None:
    m = _FRAME_NUMBER.search(name)
    return int(m.group(1)) if m else None


def clips(pairs: list) -> list[list]:
    """A sequence's pairs (in natural order) split where the name before the frame number changes: a folder
    can hold several clips (M3SVD's ``0111_1753_0000`` ... ``0115_1847_0019``), each a sequence of its own for
    the temporal metrics, which would otherwise see no even numbering and measure none."""
    return [list(group) for _, group in itertools.groupby(pairs, key=lambda p: _FRAME_NUMBER.sub("", p.ir.stem))]


def is_frame_sequence(names: list[str]) -> bool:
    """True when the names carry evenly spaced frame numbers (I00000, I00001, ... or every 5th): a video's frames."""
    numbers = [_frame_number(n) for n in names]
    if len(numbers) < 3 or None in numbers:
        return False
    steps = set(np.diff(numbers).tolist())
    return len(steps) == 1 and steps.pop() > 0


def _write_outputs(report: QualityReport, csv_path: Path | None, json_path: Path | None) -> None:
    if csv_path is not None:
        atomic_write(csv_path, report.csv_text().encode())
    if json_path is not None:
        atomic_write(json_path, (json.dumps(report.to_dict(), indent=2) + "\n").encode())


def _data_error(exc: Exception) -> BenchError:
    """find_pairs' multi-line problem list as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return BenchError("bad evaluation data: " + "; ".join(lines[1:] or lines))


def quality_on_pairs(data, checkpoints=None, *, split: str = "all", heldout_prefixes=(), infer_size=None,
                     temporal: float | str | None = "auto", grid_filter: bool = True,
                     engine: str = "torch", device: str = "auto", precision: str = "fp32", lpips_net: str = "alex",
                     lpips_random_backbone: bool = False, csv_path=None, json_path=None,
                     on_start: Callable[[int], None] | None = None,
                     on_tick: Callable[[int], None] | None = None) -> QualityReport:
    """Evaluate ``checkpoints`` (paths; default: the bundled model) and the IR baseline on the pairs under ``data``
    (a folder or a list of them); ``split``: ``all`` or ``heldout`` (``heldout_prefixes``: whole clips held out, as
    training's ``--heldout-prefix``). See the module docstring for the protocol.
    Writes the per-image ``csv_path`` and the summary ``json_path`` when given, each complete or not at all."""
    if split not in ("all", "heldout"):
        raise BenchError(f"unknown split {split!r}; use all or heldout")
    csv_path = check_report_path(csv_path, None, "--csv")
    json_path = check_report_path(json_path, ".json", "--json")
    roots = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    try:
        train, held = find_pairs(roots, heldout_prefixes=tuple(heldout_prefixes))
    except DataError as exc:
        raise _data_error(exc) from None
    pairs = held if split == "heldout" else train + held
    if not pairs:
        raise BenchError(f"no {'held-out ' if split == 'heldout' else ''}pairs under {', '.join(map(str, roots))}"
                         + (" (a sequence needs 10 pairs to hold one out)" if split == "heldout" else ""))
    pairs = sorted(pairs, key=lambda p: (natural_key(str(p.ir.parent.parent)), natural_key(p.ir.stem)))
    sequences: dict[Path, list] = {}
    for p in pairs:
        sequences.setdefault(p.ir.parent.parent, []).append(p)
    ckpts, names = _load_checkpoints(checkpoints)
    temporal = resolve_temporal(temporal, resolve_device(device))  # the strength it ran with goes in the report
    ev = _Evaluator(ckpts, names, infer_size=infer_size, engine=engine, device=device, precision=precision,
                    lpips_net=lpips_net, lpips_random_backbone=lpips_random_backbone, temporal=temporal,
                    grid_filter=grid_filter)
    if on_start is not None:
        on_start(len(pairs))

    done = n_seq = 0
    for seq_pairs in (clip for s in sequences.values() for clip in clips(s)):
        track = is_frame_sequence([p.ir.stem for p in seq_pairs])
        n_seq += track
        ev.new_sequence()
        for p in seq_pairs:
            ir, vis = to_gray8(read_image(p.ir)), read_image(p.visible, color=True)
            try:
                image = str(p.ir.relative_to(p.root))
            except ValueError:
                image = str(p.ir)
            ev.add(image, p.root, ir, vis, track)
            done += 1
            if on_tick is not None:
                on_tick(done)
    report = ev.report({"kind": "pairs", "data": [str(r) for r in roots], "split": split, "pairs": len(pairs),
                        "sequences_for_flicker": n_seq, "temporal": temporal, "grid_filter": grid_filter})
    _write_outputs(report, csv_path, json_path)
    return report


def _reference_size(path: Path) -> tuple[int, int]:
    import av

    if not path.is_file():
        raise MediaError(f"input not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path} has no video stream")
            cc = container.streams.video[0].codec_context
            return cc.width, cc.height
    except av.FFmpegError:
        raise MediaError(f"cannot open {path}: not a video or its header is damaged") from None


def quality_on_video(video, reference, checkpoints=None, *, max_frames: int | None = None, infer_size=None,
                     temporal: float | str | None = "auto", grid_filter: bool = True, engine: str = "torch",
                     device: str = "auto", precision: str = "fp32", lpips_net: str = "alex",
                     lpips_random_backbone: bool = False, csv_path=None, json_path=None,
                     on_start: Callable[[int], None] | None = None,
                     on_tick: Callable[[int], None] | None = None) -> QualityReport:
    """Evaluate on a registered video pair: IR ``video`` frame i against visible ``reference`` frame i.

    The IR frames are normalised as ``run`` normalises them (16-bit: the temporally smoothed percentile
    stretch). Per-frame metrics, their means, and the flicker ratio of each model's output; also the
    reference's own flicker ratio, the change real colour video has. Both videos must have the same size and
    frame count (up to ``max_frames``).
    """
    csv_path = check_report_path(csv_path, None, "--csv")
    json_path = check_report_path(json_path, ".json", "--json")
    video, reference = Path(video), Path(reference)
    source = VideoSource(video)
    try:
        ref_size = _reference_size(reference)
        info = source.info
        if ref_size != (info.width, info.height):
            raise BenchError(f"{video} is {info.width}x{info.height} but {reference} is {ref_size[0]}x{ref_size[1]}; "
                             f"a registered pair has one size")
        ckpts, names = _load_checkpoints(checkpoints)
        temporal = resolve_temporal(temporal, resolve_device(device))
        ev = _Evaluator(ckpts, names, infer_size=infer_size, engine=engine, device=device, precision=precision,
                        lpips_net=lpips_net, lpips_random_backbone=lpips_random_backbone, temporal=temporal,
                        grid_filter=grid_filter)
        if on_start is not None:
            on_start(min(info.frames, max_frames or info.frames) if info.frames else max_frames)
        stretch = Percentile16To8()
        ir_frames, ref_frames = iter(source), rgb_frames(reference)
        n = 0
        try:
            while max_frames is None or n < max_frames:
                frame, vis = next(ir_frames, None), next(ref_frames, None)
                if frame is None and vis is None:
                    break
                if frame is None or vis is None:
                    ended, other = (video, reference) if frame is None else (reference, video)
                    raise BenchError(f"{ended} ends after {n} frames but {other} goes on; a registered pair has "
                                     f"one frame count (--max-frames compares a prefix)")
                ev.add(f"{video.name}#{n}", video.name, to_gray8(frame.image, stretch), vis, True)
                n += 1
                if on_tick is not None:
                    on_tick(n)
        finally:
            ref_frames.close()  # closes the reference video
        if n == 0:
            raise MediaError(f"no frames could be decoded from {video}")
    finally:
        source.close()
    report = ev.report({"kind": "video", "video": str(video), "reference": str(reference), "frames": n,
                        "temporal": temporal, "grid_filter": grid_filter})
    _write_outputs(report, csv_path, json_path)
    return report


def quality_on_protocol(protocol: str, root, checkpoints=None, *, json_path=None, **options) -> dict[str, QualityReport]:
    """One named protocol (``bench.protocol.PROTOCOLS``) with its folders and video under ``root``: the gated
    held-out pairs (``"pairs"``), those reported apart (``"apart"``, where the protocol has any) and the eval video
    (``"video"``), each a ``QualityReport``; ``options`` as ``quality_on_pairs``'. ``json_path``: all three."""
    from .protocol import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise BenchError(f"unknown protocol {protocol!r}; choose one of {', '.join(sorted(PROTOCOLS))}")
    p = PROTOCOLS[protocol]
    json_path = check_report_path(json_path, ".json", "--json")
    missing = [str(f) for f in (*p.folders(root, "gated"), *p.folders(root, "apart")) if not f.is_dir()]
    if missing:
        raise BenchError(f"protocol {protocol} needs these folders under {root}: {', '.join(missing)}")
    max_frames = options.pop("max_frames", None)
    common = dict(options, split="heldout", heldout_prefixes=p.heldout_prefixes)
    reports = {"pairs": quality_on_pairs([str(f) for f in p.folders(root, "gated")], checkpoints, **common)}
    if p.apart:
        reports["apart"] = quality_on_pairs([str(f) for f in p.folders(root, "apart")], checkpoints, **common)
    reports["video"] = quality_on_video(Path(root) / p.video, Path(root) / p.reference, checkpoints,
                                        max_frames=max_frames, **options)
    if json_path is not None:
        report = {"protocol": protocol, **{k: r.to_dict() for k, r in reports.items()}}
        atomic_write(json_path, (json.dumps(report, indent=2) + "\n").encode())
    return reports


def quality_table(report: QualityReport):
    """The summary as one rich Table: a row per model, the baseline first; per folder when there are several."""
    from rich.table import Table

    src = report.source
    what = (f"{src['pairs']} pairs ({src['split']}) in {', '.join(src['data'])}" if src["kind"] == "pairs"
            else f"{src['frames']} frames of {src['video']} vs {src['reference']}")
    notes = ["8-bit metrics per image, averaged; outputs compared at the images' own size",
             "grid: up-sampling grid energy / the visible image's (1 = none; the baseline at the first model's grid); "
             "flicker: output change / IR change; warp: |O_t - O_t-1 warped by the IR's flow|, occlusions masked"]
    if report.lpips["note"]:
        notes.append(f"[yellow]{report.lpips['note']}[/yellow]")
    ref = report.reference
    notes.append(f"IR edges kept: Q^AB/F with the IR as the only source (the visible images keep {ref['edges_kept']:.3f}); "
                 f"colour ratio: colourfulness / the visible images' ({ref['colourfulness']:.1f})")
    if ref.get("flicker_ratio") is not None:
        notes.append(f"the visible frames' own flicker ratio: {ref['flicker_ratio']:.2f}, warping error: "
                     f"{ref['warp_error']:.2f} ({100 * ref['warp_mask_coverage']:.0f}% of pixels unoccluded)")
    notes.append(f"{report.machine}; {report.date}")
    table = Table(title=f"bench quality: {what}", caption="\n".join(notes))
    groups = [(folder, rows) for folder, rows in report.folders.items()] + [("all" if report.folders else "", report.models)]
    columns = (["folder"] if report.folders else []) + [
        "model", "infer size", "images", "RMSE ↓", "PSNR dB ↑", "SSIM ↑", "GMSD ↓", "grid", f"LPIPS-{report.lpips['net']} ↓",
        "IR edges kept ↑", "colour ratio", "flicker ratio", "warp err ↓", "ms/frame"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "folder") else "right")

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    for folder, rows in groups:
        for i, m in enumerate(rows):
            cells = [m.name, m.infer_size, str(m.images), f"{m.rmse:.2f}", f"{m.psnr:.2f}", f"{m.ssim:.4f}",
                     f"{m.gmsd:.4f}", f"{m.grid:.2f}", fmt(m.lpips, ".4f") if report.lpips["available"] else "n/a",
                     f"{m.edges_kept:.3f}", fmt(m.colourfulness_ratio, ".2f"), fmt(m.flicker_ratio, ".2f"), fmt(m.warp_error, ".2f"), fmt(m.ms_per_frame, ".0f")]
            if report.folders:
                cells.insert(0, Path(folder).name if i == 0 else "")
            table.add_row(*cells, end_section=i == len(rows) - 1)
    return table
