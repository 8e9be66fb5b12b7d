"""The one interface every inference backend implements; the pipeline sees nothing else.

An engine is a callable on a batch: ``engine(x)`` with ``x`` a float tensor (N, 1, H, W) in [-1, 1] on
``engine.device`` returns (N, 3, H, W) in [-1, 1] (any float dtype) on the same device. Engines know
nothing about video, files or the command line.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import UserError


class EngineUnavailable(UserError, RuntimeError):
    """A backend that cannot run on this machine; the message says why (and create_engine may fall back)."""


@runtime_checkable
class Engine(Protocol):
    name: str  # "torch", "cuda-graph", "compile", "onnxruntime", "tensorrt"
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    size_multiple: int  # H and W that are multiples of this run without internal padding

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> str:
        """One line for logs and summaries, e.g. ``torch cpu bf16``."""
        ...
