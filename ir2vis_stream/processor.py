"""The one frame path: grey uint8 frames at their own size in, the RGB frames a sink writes out.

    prepare                       infer                               finish
    grey (H, W) ─resize─▶ (h, w) ─stack, [-1, 1], engine, uint8─▶ (h, w, 3) ─temporal, resize back,─▶ (H, W', 3)
                                                                               side-by-side

``run`` (the threaded ``Pipeline``: one step per thread), ``live``, ``bench speed`` and ``bench quality`` all
colourise through a ``FrameProcessor``, so what a benchmark measures is what ``run`` runs. The three steps
are separate methods because the pipeline runs them on its decode, inference and encode threads; calling
the processor does all three on one batch. The engine is only ever called from ``infer``.

Frame sizes: each input size gets its inference size once (``size_for``); stills of mixed sizes each keep
their own. The temporal filter (``temporal.py``), when on, runs in ``finish`` at inference size, so frames
must be finished in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .engines.base import Engine
from .frames import gray8_to_model, model_to_rgb8, resize, short_side_size
from .temporal import TemporalFilter

__all__ = ["FrameProcessor", "Prepared", "resolve_infer_size"]


def resolve_infer_size(spec, width: int, height: int, multiple: int = 8) -> tuple[int, int]:
    """Inference (W, H) for a (width x height) input: ``"native"``, ``(W, H)``, or a checkpoint's train size
    dict ``{"short_side": S}`` / ``{"size": [W, H]}``."""
    if spec is None or spec == "native":
        return width, height
    if isinstance(spec, dict):
        if "size" in spec:
            return tuple(int(v) for v in spec["size"])
        return short_side_size(width, height, int(spec["short_side"]), multiple)
    w, h = spec
    return int(w), int(h)


@dataclass
class Prepared:
    """One frame between ``prepare`` and ``finish``."""

    small: np.ndarray  # (h, w) uint8 at inference size: what the engine sees
    size: tuple[int, int]  # (W, H) of the frame itself, which the colour image is resized back to
    full: np.ndarray | None  # (H, W) uint8, kept only for side-by-side output


class FrameProcessor:
    """Colourise grey frames with ``engine`` at ``infer_size`` (see ``resolve_infer_size``).

    ``side_by_side``: the output is IR | colour, twice as wide; ``temporal``: the strength of the flow-guided
    temporal filter, None for none (``reset()`` starts a new sequence for it).
    """

    def __init__(self, engine: Engine, infer_size=None, *, side_by_side: bool = False, temporal: float | None = None):
        self.engine = engine
        self.infer_size_spec = infer_size
        self.side_by_side = side_by_side
        self.temporal = TemporalFilter(temporal) if temporal else None
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}
        self._pinned: dict[tuple[int, ...], torch.Tensor] = {}  # CUDA: one page-locked buffer per batch shape

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
        """An (H, W) uint8 grey frame -> the frame at inference size (and the original where it is shown)."""
        height, width = gray.shape
        return Prepared(resize(gray, *self.size_for(width, height)), (width, height),
                        gray if self.side_by_side else None)

    @torch.inference_mode()
    def infer(self, smalls: list[np.ndarray]) -> np.ndarray:
        """Equally sized (h, w) uint8 frames -> their colour images, (N, h, w, 3) uint8 RGB: one engine call."""
        device = self.device
        host = torch.from_numpy(np.stack(smalls))
        if device.type == "cuda":  # page-locked, allocated once per shape: the upload is asynchronous
            pinned = self._pinned.get(tuple(host.shape))
            if pinned is None:
                pinned = self._pinned[tuple(host.shape)] = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
            host = pinned.copy_(host)
        y = self.engine(gray8_to_model(host.to(device, non_blocking=device.type == "cuda")))
        return model_to_rgb8(y).cpu().numpy()

    def finish(self, frame: Prepared, rgb: np.ndarray) -> np.ndarray:
        """One frame's (h, w, 3) colour image -> the (H, W', 3) contiguous RGB frame the sink writes."""
        if self.temporal is not None:
            rgb = self.temporal(frame.small, rgb)
        width, height = frame.size
        rgb = resize(rgb, width, height)
        if frame.full is not None:
            ir = frame.full if frame.full.shape == (height, width) else resize(frame.full, width, height)
            rgb = np.concatenate([cv2.cvtColor(ir, cv2.COLOR_GRAY2RGB), rgb], axis=1)
        return np.ascontiguousarray(rgb)

    def __call__(self, grays: list[np.ndarray]) -> list[np.ndarray]:
        """All three steps on frames of one size, in order."""
        prepared = [self.prepare(g) for g in grays]
        return [self.finish(p, rgb) for p, rgb in zip(prepared, self.infer([p.small for p in prepared]))]
