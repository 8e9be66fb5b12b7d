"""ir2vis-stream: thermal infrared (LWIR) video to visible-looking colour video, fast enough for live streams.

Library entry points (the CLI is a thin face over these):

- ``run(input, output, ...)``: colourise a video or frame folder (see ``api.run``).
- ``Pipeline``: the decode -> inference -> encode job on any source/sink pair.
- ``load_checkpoint`` / ``save_checkpoint``: the one checkpoint format.
- ``build_generator``: the paper's generator (``"msp"``) or pix2pix's ResNet-9 (``"resnet9"``).

The video side (``run``, ``Pipeline``, ``MediaError``) is imported on first use, so the model, checkpoints
and training import without PyAV (a GPU training machine often has torch but no PyAV).
"""

import importlib

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .model import GeneratorConfig, MultiScaleGenerator, build_generator

_LAZY = {"run": ".api", "MediaError": ".media", "Pipeline": ".pipeline", "RunResult": ".pipeline"}

__all__ = ["Checkpoint", "CheckpointError", "GeneratorConfig", "MediaError", "MultiScaleGenerator", "Pipeline",
           "RunResult", "build_generator", "load_checkpoint", "run", "save_checkpoint"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
