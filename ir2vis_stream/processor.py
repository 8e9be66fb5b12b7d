"""The one frame path: grey uint8 frames at their own size in, the frames a sink writes out.

On the host (the CPU, and any device with ``on_device=False``):

    prepare                       submit / infer                      finish
    grey (H, W) ─resize─▶ (h, w) ─stack, [-1, 1], engine, grid filter, uint8─▶ (h, w, 3) ─temporal,─▶ frame
                                                           resize back, side-by-side, the sink's YUV (swscale)

On a GPU (``on_device``, the default on CUDA without the temporal filter), everything between the upload and
the download runs there, and the CPU only stacks frames into a page-locked buffer and wraps the result:

    prepare          submit                                                                    finish
    grey (H, W) ─▶ pinned ring slot ─upload (copy stream)─▶ resize, [-1, 1], engine, grid filter, uint8,
                   resize back, side-by-side, RGB -> I420 with the sink's standard ─download (copy stream)─▶ pinned ─▶ frame

``submit`` starts one engine call and returns a ``Batch``; ``Batch.result()`` waits for it. On a GPU the caller
keeps ``in_flight`` batches going (the pipeline's inference thread submits batch k+1 before it waits for k), so
upload, compute and download of consecutive batches overlap; on the host ``submit`` runs at once. Buffers are
allocated once per (batch, H, W): a ring of ``in_flight + 1`` slots of page-locked host memory, each with the
events that say when its upload and download are done.

``run`` (the threaded ``Pipeline``: one step per thread), ``live``, ``bench speed`` and ``bench quality`` all
colourise through a ``FrameProcessor``, so what a benchmark measures is what ``run`` runs. The engine is only
ever called from ``submit``; ``infer`` is ``submit(...).result()``, and calling the processor does all three
steps on one batch.

The grid filter (``gridfilter.py``, ``grid_period``) takes the up-sampling grid out of the engine's output at
inference size, where it is periodic; None leaves the output as the engine made it.

Frame sizes: each input size gets its inference size once (``size_for``); stills of mixed sizes each keep
their own. The temporal filter (``temporal.py``), when on, runs in ``finish`` at inference size on the host
(its optical flow is OpenCV's), so frames must be finished in order. ``temporal="auto"`` (``run``'s and ``bench
quality``'s default) turns it on where the frame path post-processes on the host anyway, i.e. on any engine
device but CUDA, at ``DEFAULT_TEMPORAL``: there it costs the encode thread a few tens of ms a frame that a
CPU run leaves idle; on a GPU it would move post-processing back to the host, so it stays off there.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .colour import VideoFormat, rgb_to_i420
from .engines.base import Engine
from .frames import gray8_to_model, model_to_rgb8, resize, short_side_size
from .gridfilter import remove_grid
from .temporal import TemporalFilter

__all__ = ["Batch", "DEFAULT_TEMPORAL", "FrameProcessor", "Prepared", "resolve_infer_size", "resolve_temporal"]

DEFAULT_TEMPORAL = 0.6  # run --temporal's strength: about 2.5 frames of memory along the flow


def resolve_temporal(temporal, device: torch.device) -> float | None:
    """The temporal filter's strength for ``temporal`` (a strength, None or 0 for off, or ``"auto"``) on ``device``:
    ``auto`` is ``DEFAULT_TEMPORAL`` where post-processing runs on the host (any device but CUDA), else off."""
    if temporal == "auto":
        return DEFAULT_TEMPORAL if device.type != "cuda" else None
    if isinstance(temporal, str):
        raise ValueError(f"temporal is a strength in [0, 1), None or 'auto', not {temporal!r}")
    return float(temporal) if temporal else None


def resolve_infer_size(spec, width: int, height: int, multiple: int = 8) -> tuple[int, int]:
    """Inference (W, H) for a (width x height) input: ``"native"``, ``(W, H)``, or a checkpoint's train size
    dict ``{"short_side": S}`` / ``{"size": [W, H]}``, or ``{"max_width": W}``: the frame's own size (sides rounded
    to ``multiple``), scaled down to W wide if it is wider."""
    if spec is None or spec == "native":
        return width, height
    if isinstance(spec, dict):
        if "size" in spec:
            return tuple(int(v) for v in spec["size"])
        if "max_width" in spec:
            s = min(1.0, int(spec["max_width"]) / width)
            return (max(multiple, round(width * s / multiple) * multiple),
                    max(multiple, round(height * s / multiple) * multiple))
        return short_side_size(width, height, int(spec["short_side"]), multiple)
    w, h = spec
    return int(w), int(h)


@dataclass(slots=True)
class Prepared:
    """One frame between ``prepare`` and ``finish``."""

    small: np.ndarray  # (h, w) uint8 handed to ``submit``: at inference size on the host, the frame itself on a GPU
    size: tuple[int, int]  # (W, H) of the frame itself, which the colour image is resized back to
    full: np.ndarray | None  # (H, W) uint8, kept only for side-by-side output on the host


class Batch:
    """One engine call in flight; ``result()`` waits for it and gives one array per frame, for ``finish``."""

    __slots__ = ("_frames", "_slot")

    def __init__(self, frames=None, slot: _Slot | None = None):
        self._frames, self._slot = frames, slot

    def result(self):
        if self._frames is None:
            self._frames = self._slot.collect()
            self._slot = None
        return self._frames


class _Slot:
    """One page-locked input and output buffer of a ring, and the events of its last upload and download."""

    def __init__(self, n: int, size_in: tuple[int, int], out_shape: tuple[int, ...], device: torch.device):
        cuda = device.type == "cuda"
        self.host_in = torch.empty((n, *size_in), dtype=torch.uint8, pin_memory=cuda)
        self.host_out = torch.empty((n, *out_shape), dtype=torch.uint8, pin_memory=cuda)
        self.uploaded = torch.cuda.Event() if cuda else None
        self.downloaded = torch.cuda.Event() if cuda else None
        self.pending = False  # downloaded into but not yet collected: the slot must not be reused

    def fill(self, smalls: list[np.ndarray]) -> torch.Tensor:
        if self.uploaded is not None:
            self.uploaded.synchronize()  # the last upload from this buffer has finished reading it
        np.stack(smalls, out=self.host_in.numpy())
        return self.host_in

    def collect(self) -> list[np.ndarray]:
        if self.downloaded is not None:
            self.downloaded.synchronize()
        frames = list(self.host_out.numpy().copy())  # out of the ring, which the next batches overwrite
        self.pending = False
        return frames


class FrameProcessor:
    """Colourise grey frames with ``engine`` at ``infer_size`` (see ``resolve_infer_size``).

    ``side_by_side``: the output is IR | colour, twice as wide; ``temporal``: the strength of the flow-guided
    temporal filter, None for none, ``"auto"`` for ``resolve_temporal``'s rule (``reset()`` starts a new sequence
    for it); ``on_device``: pre- and
    post-processing on the engine's device (default: on CUDA unless the temporal filter is on; on the CPU it
    runs the same torch code, which tests use). ``output``: the sink's ``VideoFormat``, or None for RGB frames
    (``run`` sets it from the sink it writes to). ``grid_period``: remove the engine's up-sampling grid of this
    period (``gridfilter.grid_period(model)``; ``run``'s default where the model leaves one), None for none.
    """

    def __init__(self, engine: Engine, infer_size=None, *, side_by_side: bool = False, temporal: float | None = None,
                 grid_period: int | None = None, on_device: bool | None = None, in_flight: int = 2):
        self.engine = engine
        self.grid_period = grid_period
        self.infer_size_spec = infer_size
        self.side_by_side = side_by_side
        strength = resolve_temporal(temporal, engine.device)
        self.temporal = TemporalFilter(strength) if strength else None
        if on_device and self.temporal is not None:
            raise ValueError("the temporal filter runs on the host: on_device needs temporal=None")
        self.on_device = self.temporal is None and (self.device.type == "cuda" if on_device is None else on_device)
        self.in_flight = in_flight if self.on_device else 1  # on the host, submit has finished when it returns
        self.output: VideoFormat | None = None
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}
        self._rings: dict[tuple, tuple[list[_Slot], list[int]]] = {}
        self._copy_stream = torch.cuda.Stream(self.device) if self.on_device and self.device.type == "cuda" else None

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def describe(self) -> str:
        return self.engine.describe() if hasattr(self.engine, "describe") else type(self.engine).__name__

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The inference (w, h) of a (width x height) frame, worked out once per frame size."""
        size = self._sizes.get((width, height))
        if size is None:
            size = self._sizes[(width, height)] = resolve_infer_size(self.infer_size_spec, width, height)
        return size

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Size of the frames ``finish`` returns for a (width x height) input."""
        return (2 * width if self.side_by_side else width), height

    def reset(self) -> None:
        """A new sequence: the temporal filter forgets the last frame."""
        if self.temporal is not None:
            self.temporal.reset()

    # ---- the three steps ---------------------------------------------------------------------------------------
    def prepare(self, gray: np.ndarray) -> Prepared:
        """An (H, W) uint8 grey frame -> what ``submit`` takes (and the original where the host shows it)."""
        height, width = gray.shape
        if self.on_device:
            return Prepared(gray, (width, height), None)
        return Prepared(resize(gray, *self.size_for(width, height)), (width, height),
                        gray if self.side_by_side else None)

    def submit(self, smalls: list[np.ndarray]) -> Batch:
        """Start one engine call on equally sized prepared frames (``Prepared.small``)."""
        return self._submit_on_device(smalls) if self.on_device else Batch(self._infer_on_host(smalls))

    def infer(self, smalls: list[np.ndarray]):
        """``submit(smalls).result()``: on the host the (N, h, w, 3) uint8 RGB colour images, on a device each
        frame as ``finish`` hands it on (RGB at full size, or I420 planes for a yuv420p ``output``)."""
        return self.submit(smalls).result()

    def finish(self, frame: Prepared, out: np.ndarray):
        """One frame's result -> what the sink writes: (H, W', 3) contiguous RGB, or a PyAV frame in ``output``."""
        if self.on_device:
            if self.output is None:
                return out
            return self.output.frame_from_i420(out) if self.output.i420 else self.output.frame_from_rgb(out)
        if self.temporal is not None:
            out = self.temporal(frame.small, out)
        width, height = frame.size
        rgb = resize(out, width, height)
        if frame.full is not None:
            ir = frame.full if frame.full.shape == (height, width) else resize(frame.full, width, height)
            rgb = np.concatenate([cv2.cvtColor(ir, cv2.COLOR_GRAY2RGB), rgb], axis=1)
        rgb = np.ascontiguousarray(rgb)
        return rgb if self.output is None else self.output.frame_from_rgb(rgb)

    def __call__(self, grays: list[np.ndarray]) -> list:
        """All three steps on frames of one size, in order."""
        prepared = [self.prepare(g) for g in grays]
        return [self.finish(p, out) for p, out in zip(prepared, self.infer([p.small for p in prepared]))]

    def _colourise(self, x: torch.Tensor) -> torch.Tensor:
        """The engine on a (N, 1, h, w) batch in [-1, 1], then the grid filter when on."""
        y = self.engine(x)
        return y if self.grid_period is None else remove_grid(y, self.grid_period)

    # ---- on the host -------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _infer_on_host(self, smalls: list[np.ndarray]) -> np.ndarray:
        host = torch.from_numpy(np.stack(smalls))
        y = self._colourise(gray8_to_model(host.to(self.device)))
        return model_to_rgb8(y).contiguous().cpu().numpy()  # (N, h, w, 3) in memory order: no strided view handed on

    # ---- on the engine's device ----------------------------------------------------------------------------------
    def _slot(self, n: int, height: int, width: int) -> _Slot:
        """The next slot of the ring for this (batch, H, W), allocated on first use."""
        key = (n, height, width, self.output)
        ring = self._rings.get(key)
        if ring is None:
            out_w = 2 * width if self.side_by_side else width
            i420 = self.output is not None and self.output.i420
            out_shape = (height * 3 // 2, out_w) if i420 else (height, out_w, 3)
            ring = self._rings[key] = ([_Slot(n, (height, width), out_shape, self.device)
                                        for _ in range(self.in_flight + 1)], [0])
        slots, turn = ring
        slot = slots[turn[0] % len(slots)]
        if slot.pending:
            raise RuntimeError("more batches in flight than the processor's ring holds (collect results in order)")
        turn[0] += 1
        return slot

    @torch.inference_mode()
    def _submit_on_device(self, smalls: list[np.ndarray]) -> Batch:
        height, width = smalls[0].shape
        slot = self._slot(len(smalls), height, width)
        host = slot.fill(smalls)
        copy = self._copy_stream
        if copy is None:  # the same torch code on the CPU
            slot.host_out.copy_(self._on_device(host, height, width))
        else:
            compute = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(copy):
                grey = host.to(self.device, non_blocking=True)
                slot.uploaded.record(copy)
            compute.wait_stream(copy)
            grey.record_stream(compute)  # allocated on the copy stream, used on the compute stream
            out = self._on_device(grey, height, width)
            copy.wait_stream(compute)
            with torch.cuda.stream(copy):
                slot.host_out.copy_(out, non_blocking=True)
                out.record_stream(copy)
                slot.downloaded.record(copy)
        slot.pending = True
        return Batch(slot=slot)

    def _on_device(self, grey: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(N, H, W) uint8 on the device -> (N, H, W', 3) RGB or (N, 3H/2, W') I420 uint8, all on the device."""
        w, h = self.size_for(width, height)
        x = _resize(grey.unsqueeze(1).float(), h, w).round_()
        y = self._colourise(x.div_(127.5).sub_(1.0))
        rgb = y.float().add(1.0).mul_(127.5).round_().clamp_(0, 255)  # the host path's uint8 at inference size
        rgb = _resize(rgb, height, width).round_().clamp_(0, 255)
        if self.side_by_side:
            rgb = torch.cat([grey.unsqueeze(1).float().expand(-1, 3, -1, -1), rgb], dim=3)
        if self.output is not None and self.output.i420:
            return rgb_to_i420(rgb, self.output.standard)
        return rgb.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """frames.resize on (N, C, H, W) float tensors: area averaging when shrinking, bilinear when enlarging."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    if height * width < x.shape[-2] * x.shape[-1]:
        return F.interpolate(x, size=(height, width), mode="area")
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
