"""One checkpoint file per model: architecture, weights and the facts a user needs to trust it.

A checkpoint is a plain dict saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``,
so loading never runs arbitrary pickled code:

    {"format": "ir2vis-stream/generator", "version": 1,
     "generator": {"name": "msp", "config": {...}},        # build_generator(name, **config)
     "state_dict": {...},                                   # tensors; fp16 is fine, loading casts to fp32
     "meta": {...}}                                         # see CheckpointMeta's keys below

``meta`` answers the questions torchvision's weight metadata answers: the input normalisation, the size
the model was trained at (and so the default inference size), the training data, the losses, epochs,
precision, and the held-out metrics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .files import atomic_write
from .model import build_generator, count_parameters, generator_spec

FORMAT = "ir2vis-stream/generator"
VERSION = 1

# The one input/output normalisation of every model in this package: 8-bit [0, 255] <-> [-1, 1].
NORMALISATION = {"input": "ir / 127.5 - 1 (one channel, 8-bit grey)", "output": "(rgb + 1) * 127.5 (8-bit RGB)"}


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message is one sentence for the user."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the generator (fp32, eval mode) and its metadata."""

    model: nn.Module
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def train_size(self) -> dict:
        """How the model was trained: ``{"short_side": S}`` (aspect kept), with ``"multi_scale": [S, "own"]`` for a
        model trained at every size from short side S up to the images' own, or ``{"size": [W, H]}``."""
        return self.meta.get("train_size") or {"short_side": 256}

    def default_infer_size(self, device: torch.device) -> dict:
        """The inference size this model runs at on ``device`` unless told otherwise (``default_infer_size``)."""
        return default_infer_size(self.train_size, device)


GPU_MAX_WIDTH = 640  # a multi-scale model on a GPU runs at the frame's own size up to this width


def default_infer_size(train_size: dict, device: torch.device) -> dict:
    """A model's default inference size spec on ``device`` (see ``processor.resolve_infer_size``).

    A single-scale model runs at its training size everywhere. A multi-scale one (trained from short side S up to
    the images' own size) runs on a GPU at the frame's own size, up to ``GPU_MAX_WIDTH`` wide, where it keeps the
    most of the scene and is still fast; on a CPU at short side S, the size 2 CPU cores keep near real time at
    (docs/pictures.md has the measured speed / structure table)."""
    if "multi_scale" in train_size and device.type == "cuda":
        return {"max_width": GPU_MAX_WIDTH}
    return train_size


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: dict | None = None, *, half: bool = False) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically (temporary name, then rename)."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in _unwrap(model).state_dict().items()}
    meta = dict(meta or {})
    meta.setdefault("normalisation", NORMALISATION)
    meta["num_params"] = count_parameters(_unwrap(model))
    payload = {"format": FORMAT, "version": VERSION, "generator": generator_spec(_unwrap(model)),
               "state_dict": state, "meta": meta}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint written by ``save_checkpoint``; raise CheckpointError with one clear sentence."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # damaged zip, truncated file, foreign pickle: all unusable alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: not an ir2vis-stream checkpoint or damaged ({reason[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ir2vis-stream generator checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}; this ir2vis-stream reads version {VERSION}")
    try:
        spec = payload["generator"]
        model = build_generator(spec["name"], **spec["config"])
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} does not match its architecture: {reason[:200]}") from None
    model.eval()
    return Checkpoint(model=model, meta=payload.get("meta") or {}, path=path)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def default_checkpoint_path() -> Path:
    """The default model: ``$IR2VIS_STREAM_CHECKPOINT`` if set, else the one bundled with the package."""
    env = os.environ.get("IR2VIS_STREAM_CHECKPOINT")
    return Path(env) if env else Path(__file__).parent / "weights" / "default.pt"
