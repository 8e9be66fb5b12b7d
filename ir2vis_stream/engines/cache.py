"""The user cache for built artefacts (ONNX exports, TensorRT plans, timing caches, inductor kernels).

Location: ``$IR2VIS_STREAM_CACHE``, else ``$XDG_CACHE_HOME/ir2vis-stream``, else ``~/.cache/ir2vis-stream``.
Every file is written to a temporary name in the same folder and renamed into place, so two processes
building the same artefact at once each produce a whole file and the last rename wins; a reader never
sees half a file. Entries carry a SHA-256 of their content in a sidecar ``.sha256`` file, so a truncated
or corrupted entry is detected and rebuilt rather than loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..files import atomic_write


def cache_root() -> Path:
    env = os.environ.get("IR2VIS_STREAM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ir2vis-stream"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(path: Path, data: bytes) -> None:
    """Write an entry and its checksum (checksum last: an entry without a matching one is invalid)."""
    atomic_write(path, data)
    atomic_write(path.with_name(path.name + ".sha256"), sha256(data).encode())


def load_verified(path: Path) -> bytes | None:
    """An entry's bytes if it exists and matches its checksum; None if missing, truncated or corrupt."""
    try:
        data = path.read_bytes()
        expected = path.with_name(path.name + ".sha256").read_text().strip()
    except OSError:
        return None
    return data if sha256(data) == expected else None


def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of a model's architecture and weights: the same trained model gives the same key."""
    h = hashlib.sha256()
    h.update(type(model).__name__.encode())
    spec = getattr(model, "config", None)
    h.update(json.dumps(repr(spec)).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


def key_of(parts: dict) -> str:
    """A short stable key for a dict of build parameters."""
    return sha256(json.dumps(parts, sort_keys=True, default=str).encode())[:20]
