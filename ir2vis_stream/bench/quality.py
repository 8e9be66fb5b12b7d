"""``bench quality``: the paper's image metrics and our temporal one, per model, on paired data.

The protocol, which the README states and the numbers depend on:

- data: every pair found by ``train.data.find_pairs`` under the data folders (KAIST's
  ``setXX/VYYY/{lwir,visible}/`` or ``lwir/`` + ``visible/``), or with ``split="heldout"`` only every 10th pair
  of each sequence (the pairs training holds out); or a registered video pair, frame by frame;
- each model runs on the IR image at its checkpoint's training size (``resolve_infer_size``; ``infer_size``
  overrides it), and its output is resized back to the image's own size, as ``run`` does for video; the
  comparison with the visible image happens at that original size. Eager torch in fp32 by default, so the
  figures do not depend on the machine's fast half-precision path (and images of many sizes do not make a
  compiled engine recompile for each);
- RMSE, PSNR, SSIM and LPIPS from ``ir2vis_stream.metrics`` (8-bit scale), per image, then averaged;
- the baseline "IR as grey": the IR image itself in R, G and B, which any model must beat;
- temporal stability: the flicker ratio (output change / IR change between consecutive frames) over the
  sequences whose pair names carry evenly spaced frame numbers (the frames of a video, as in KAIST), and always
  for a video pair. Nothing is computed across sequence boundaries.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..checkpoint import Checkpoint, CheckpointError, default_checkpoint_path, load_checkpoint
from ..engines import create_engine
from ..frames import Percentile16To8, read_image, resize, to_gray8
from ..hardware import resolve_device
from ..media import MediaError, VideoSource
from ..metrics import FlickerMeter, LPIPSMetric, LPIPSUnavailable, flicker_ratio, image_metrics
from ..pipeline import batch_to_engine, engine_to_rgb8, resolve_infer_size
from ..train.data import DataError, find_pairs, natural_key
from .report import BenchError, check_report_path, machine_description, now_iso, write_atomically

BASELINE = "IR as grey (baseline)"
METRICS = ("rmse", "psnr", "ssim", "lpips")


@dataclass
class ModelSummary:
    name: str
    checkpoint: str | None
    infer_size: str  # "short side 256", "256x256" or "native"; "-" for the baseline
    images: int
    rmse: float
    psnr: float
    ssim: float
    lpips: float | None  # None when LPIPS is unavailable
    flicker_ratio: float | None  # None when the data holds no sequence


@dataclass
class QualityReport:
    source: dict  # what was evaluated: {"kind": "pairs", "data": [...], "split": ...} or {"kind": "video", ...}
    lpips: dict  # {"net": "alex", "available": bool, "note": str | None}
    models: list[ModelSummary]
    per_image: list[dict] = field(default_factory=list)  # image, model, rmse, psnr, ssim, lpips
    reference_flicker_ratio: float | None = None  # the visible video's own change / IR change (video pairs)
    device: str = ""
    machine: str = ""
    date: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["per_image"]  # the CSV holds those
        return d

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["image", "model", *METRICS])
        for row in self.per_image:
            w.writerow([row["image"], row["model"],
                        *("" if row[m] is None else f"{row[m]:.6g}" for m in METRICS)])
        return buf.getvalue()


def _describe_size(spec) -> str:
    if spec is None or spec == "native":
        return "native"
    if isinstance(spec, dict):
        return f"{spec['size'][0]}x{spec['size'][1]}" if "size" in spec else f"short side {spec['short_side']}"
    return f"{spec[0]}x{spec[1]}"


class _Evaluator:
    """Runs every model on one IR frame at a time and accumulates metrics and flicker per model."""

    def __init__(self, checkpoints: list[Checkpoint], names: list[str], *, infer_size, engine: str, device: str,
                 precision: str, lpips_net: str, lpips_random_backbone: bool):
        self.device = resolve_device(device)
        self.models = [(name, create_engine(engine, ck.model, self.device, precision),
                        infer_size if infer_size is not None else ck.train_size, str(ck.path))
                       for name, ck in zip(names, checkpoints)]
        try:
            self.lpips = LPIPSMetric(lpips_net, self.device, random_backbone=lpips_random_backbone)
            self.lpips_info = {"net": lpips_net, "available": True,
                               "note": "random backbone: numbers for testing only" if lpips_random_backbone else None}
        except LPIPSUnavailable as exc:
            self.lpips = None
            self.lpips_info = {"net": lpips_net, "available": False, "note": f"LPIPS n/a: {exc}"}
        self.names = [BASELINE] + [m[0] for m in self.models]
        self.rows: list[dict] = []
        self.flicker_in = FlickerMeter()
        self.flicker_out = {n: FlickerMeter() for n in self.names}

    def new_sequence(self) -> None:
        for meter in (self.flicker_in, *self.flicker_out.values()):
            meter.new_sequence()

    def _score(self, image: str, name: str, out: torch.Tensor, target: torch.Tensor, track: bool) -> None:
        row = {"image": image, "model": name, **{k: v.item() for k, v in image_metrics(out, target).items()}}
        row["lpips"] = self.lpips(out, target).item() if self.lpips is not None else None
        self.rows.append(row)
        if track:
            self.flicker_out[name].add(out[0])

    @torch.inference_mode()
    def add(self, image: str, ir: np.ndarray, visible: np.ndarray, track_flicker: bool) -> None:
        """Score every model on one (H, W) uint8 IR frame against its (H, W, 3) uint8 RGB visible frame."""
        height, width = ir.shape
        # metrics are computed where the model runs: float64 SSIM of large images is slow on a CPU
        target = torch.from_numpy(visible).permute(2, 0, 1)[None].to(self.device)
        grey = torch.from_numpy(ir)[None, None].to(self.device)
        if track_flicker:
            self.flicker_in.add(grey[0])
        self._score(image, BASELINE, grey.expand(-1, 3, -1, -1), target, track_flicker)
        for name, engine, spec, _ in self.models:
            w, h = resolve_infer_size(spec, width, height)
            rgb = engine_to_rgb8(engine(batch_to_engine([resize(ir, w, h)], self.device)))[0]
            out = torch.from_numpy(resize(rgb, width, height)).permute(2, 0, 1)[None].to(self.device)
            self._score(image, name, out, target, track_flicker)

    def report(self, source: dict, reference_flicker: float | None = None) -> QualityReport:
        summaries = []
        for name in self.names:
            rows = [r for r in self.rows if r["model"] == name]
            mean = {m: float(np.mean([r[m] for r in rows])) if rows and rows[0][m] is not None else None
                    for m in METRICS}
            ratio = flicker_ratio(self.flicker_out[name], self.flicker_in)
            model = next((m for m in self.models if m[0] == name), None)
            summaries.append(ModelSummary(name=name, checkpoint=model[3] if model else None,
                                          infer_size=_describe_size(model[2]) if model else "-", images=len(rows),
                                          flicker_ratio=ratio, **mean))
        return QualityReport(source=source, lpips=self.lpips_info, models=summaries, per_image=self.rows,
                             reference_flicker_ratio=reference_flicker, device=str(self.device),
                             machine=machine_description(self.device), date=now_iso())


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


def _frame_number(name: str) -> int | None:
    m = re.search(r"(\d+)\D*$", name)
    return int(m.group(1)) if m else None


def is_frame_sequence(names: list[str]) -> bool:
    """True when the names carry evenly spaced frame numbers (I00000, I00001, ... or every 5th): a video's frames."""
    numbers = [_frame_number(n) for n in names]
    if len(numbers) < 3 or None in numbers:
        return False
    steps = set(np.diff(numbers).tolist())
    return len(steps) == 1 and steps.pop() > 0


def _write_outputs(report: QualityReport, csv_path: Path | None, json_path: Path | None) -> None:
    if csv_path is not None:
        write_atomically(csv_path, report.csv_text().encode())
    if json_path is not None:
        write_atomically(json_path, (json.dumps(report.to_dict(), indent=2) + "\n").encode())


def _data_error(exc: Exception) -> BenchError:
    """find_pairs' multi-line problem list as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return BenchError("bad evaluation data: " + "; ".join(lines[1:] or lines))


def quality_on_pairs(data, checkpoints=None, *, split: str = "all", infer_size=None, engine: str = "torch",
                     device: str = "auto", precision: str = "fp32", lpips_net: str = "alex",
                     lpips_random_backbone: bool = False, csv_path=None, json_path=None,
                     on_start: Callable[[int], None] | None = None,
                     on_tick: Callable[[int], None] | None = None) -> QualityReport:
    """Evaluate ``checkpoints`` (paths; default: the bundled model) and the IR baseline on the pairs under ``data``
    (a folder or a list of them); ``split``: ``all`` or ``heldout``. See the module docstring for the protocol.
    Writes the per-image ``csv_path`` and the summary ``json_path`` when given, each complete or not at all."""
    if split not in ("all", "heldout"):
        raise BenchError(f"unknown split {split!r}; use all or heldout")
    csv_path = check_report_path(csv_path, None, "--csv")
    json_path = check_report_path(json_path, ".json", "--json")
    roots = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    try:
        train, held = find_pairs(roots)
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
    ev = _Evaluator(ckpts, names, infer_size=infer_size, engine=engine, device=device, precision=precision,
                    lpips_net=lpips_net, lpips_random_backbone=lpips_random_backbone)
    if on_start is not None:
        on_start(len(pairs))

    done = n_seq = 0
    for seq_pairs in sequences.values():
        track = is_frame_sequence([p.ir.stem for p in seq_pairs])
        n_seq += track
        ev.new_sequence()
        for p in seq_pairs:
            ir, vis = to_gray8(read_image(p.ir)), read_image(p.visible, color=True)
            try:
                image = str(p.ir.relative_to(p.root))
            except ValueError:
                image = str(p.ir)
            ev.add(image, ir, vis, track)
            done += 1
            if on_tick is not None:
                on_tick(done)
    report = ev.report({"kind": "pairs", "data": [str(r) for r in roots], "split": split, "pairs": len(pairs),
                        "sequences_for_flicker": n_seq})
    _write_outputs(report, csv_path, json_path)
    return report


def _reference_frames(path: Path) -> Iterator[np.ndarray]:
    """RGB frames of the visible reference video (the pipeline's sources are grey by design)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


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
                     engine: str = "torch", device: str = "auto", precision: str = "fp32", lpips_net: str = "alex",
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
        ev = _Evaluator(ckpts, names, infer_size=infer_size, engine=engine, device=device, precision=precision,
                        lpips_net=lpips_net, lpips_random_backbone=lpips_random_backbone)
        if on_start is not None:
            on_start(min(info.frames, max_frames or info.frames) if info.frames else max_frames)
        reference_flicker = FlickerMeter()
        stretch = Percentile16To8()
        ir_frames, ref_frames = iter(source), _reference_frames(reference)
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
                ev.add(f"{video.name}#{n}", to_gray8(frame.image, stretch), vis, True)
                reference_flicker.add(torch.from_numpy(vis).permute(2, 0, 1).to(ev.device))
                n += 1
                if on_tick is not None:
                    on_tick(n)
        finally:
            ref_frames.close()  # closes the reference video
        if n == 0:
            raise MediaError(f"no frames could be decoded from {video}")
    finally:
        source.close()
    ref_ratio = flicker_ratio(reference_flicker, ev.flicker_in)
    report = ev.report({"kind": "video", "video": str(video), "reference": str(reference), "frames": n},
                       reference_flicker=ref_ratio)
    _write_outputs(report, csv_path, json_path)
    return report


def quality_table(report: QualityReport):
    """The summary as one rich Table: a row per model, the baseline first."""
    from rich.table import Table

    src = report.source
    what = (f"{src['pairs']} pairs ({src['split']}) in {', '.join(src['data'])}" if src["kind"] == "pairs"
            else f"{src['frames']} frames of {src['video']} vs {src['reference']}")
    notes = ["8-bit metrics per image, averaged; outputs compared at the images' own size"]
    if report.lpips["note"]:
        notes.append(f"[yellow]{report.lpips['note']}[/yellow]")
    if report.reference_flicker_ratio is not None:
        notes.append(f"the visible reference's own flicker ratio: {report.reference_flicker_ratio:.2f}")
    notes.append(f"{report.machine}; {report.date}")
    table = Table(title=f"bench quality: {what}", caption="\n".join(notes))
    for col in ("model", "infer size", "images", "RMSE ↓", "PSNR dB ↑", "SSIM ↑", f"LPIPS-{report.lpips['net']} ↓",
                "flicker ratio"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for m in report.models:
        table.add_row(m.name, m.infer_size, str(m.images), f"{m.rmse:.2f}", f"{m.psnr:.2f}", f"{m.ssim:.4f}",
                      f"{m.lpips:.4f}" if m.lpips is not None else "n/a",
                      f"{m.flicker_ratio:.2f}" if m.flicker_ratio is not None else "-")
    return table
