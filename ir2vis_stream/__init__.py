"""ir2vis-stream: thermal infrared (LWIR) video to visible-looking colour video, fast enough for live streams.

Library entry points (the CLI is a thin face over these):

- ``run(input, output, ...)``: colourise a video or frame folder (see ``api.run``).
- ``Pipeline``: the decode -> inference -> encode job on any source/sink pair.
- ``load_checkpoint`` / ``save_checkpoint``: the one checkpoint format.
- ``build_generator``: the paper's generator (``"msp"``) or pix2pix's ResNet-9 (``"resnet9"``).

PyAV is imported only where video is read or written, so the model, checkpoints and training run on
machines without it (as the bundled model's GPU training did).
"""

from .api import run
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .media import MediaError
from .model import GeneratorConfig, MultiScaleGenerator, build_generator
from .pipeline import Pipeline, RunResult

__all__ = ["Checkpoint", "CheckpointError", "GeneratorConfig", "MediaError", "MultiScaleGenerator", "Pipeline",
           "RunResult", "build_generator", "load_checkpoint", "run", "save_checkpoint"]
__version__ = "0.1.0"
