"""Training of the generator with the paper's full objective (see trainer.py for the loop, losses.py for
the terms). ``python -m ir2vis_stream.train`` is the entry for ``torchrun``."""

from .data import DataError, find_pairs
from .config import TrainConfig, lr_factor
from .trainer import Trainer

__all__ = ["DataError", "TrainConfig", "Trainer", "find_pairs", "lr_factor", "train"]


def train(config: TrainConfig, resume: bool = False):
    """Run (or resume) a training run; returns the last held-out metrics."""
    return Trainer(config, resume=resume).fit()
