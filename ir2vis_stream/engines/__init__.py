"""Inference backends behind one interface (``Engine``); ``create_engine`` builds one by name."""

from __future__ import annotations

import torch
from torch import nn

from .base import Engine
from .torch_engine import TorchEngine

ENGINES = ("torch",)


def create_engine(name: str, model: nn.Module, device: torch.device, precision: str = "auto") -> Engine:
    """Build the engine ``name`` for ``model`` on ``device``; ``auto`` picks the best available."""
    if name in ("auto", "torch"):
        return TorchEngine(model, device, precision)
    raise ValueError(f"unknown engine {name!r}; choose one of auto, {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "TorchEngine", "create_engine"]
