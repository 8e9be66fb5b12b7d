"""A training run's configuration (``TrainConfig``) and the learning-rate rule.

Each field a user sets from the command line carries its option in ``metadata["cli"]`` (``option(...)``):
the help text, and where it differs from the field, the flag and how the value is given. ``ir2vis-stream
train`` builds its options from these fields, so a default lives here once.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field

from ..errors import ConfigError


def option(default=MISSING, *, help: str, flag: str | None = None, negate: bool = False, choices=None,
           min: int | None = None, multiple: bool = False, path: bool = False, size: bool = False,
           default_factory=MISSING, toggle: bool = False, short: str | None = None):
    """A config field that is also a ``train`` option. ``flag``: its name if not the field's (``--d-scales``);
    ``negate``: a True-by-default bool given as ``--no-FLAG``; ``toggle``: ``--FLAG/--no-FLAG``; ``size``: a
    ``WxH`` value; ``multiple``: repeatable, into a list; ``short``: a one-letter alias (``-o``)."""
    cli = {"help": help, "flag": flag, "negate": negate, "choices": choices, "min": min, "multiple": multiple,
           "path": path, "size": size, "toggle": toggle, "short": short}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"cli": cli})
    return field(default=default, metadata={"cli": cli})


@dataclass
class TrainConfig:
    data: list[str]
    out: str = option("runs/train", short="-o", help="Folder for checkpoints, log and samples.")
    generator: str = option("msp", choices=("msp", "resnet9"),
                            help="msp: the paper's multi-scale generator; resnet9: pix2pix's (ablation).")
    generator_config: dict = field(default_factory=dict)  # e.g. {"width": 8, "blocks": [1, 1]} for tests
    init: str | None = option(None, path=True, help="Start the generator from this checkpoint (fine-tuning); "
                              "the discriminators start fresh.")
    epochs: int = option(200, help="Total epochs: half constant lr, half linear decay.")
    batch_size: int = option(4, help="Batch size per process.")
    scale: int = option(256, help="Short side images are scaled to (aspect kept); also the model's default "
                        "inference size.")
    crop: int = option(256, help="Square training crop side, at most --scale.")
    resize: tuple[int, int] | None = option(None, size=True,
                                            help="Resize every pair to WxH instead (the paper: 256x256).")
    multi_scale: bool = option(False, help="Multi-scale training: each sample's short side drawn between --scale "
                               "and its own (never enlarged beyond it), then a --crop window; held-out pairs "
                               "scored at their own size. One model for 344x256 up to a frame's own size.")
    upscale: bool = option(True, negate=True, help="Never enlarge an image: ones with a short side below --scale "
                           "are cropped at their own size.")
    heldout_prefixes: list[str] = option(flag="heldout-prefix", multiple=True, default_factory=list,
                                         help="Hold out whole clips: in a sequence with names starting with "
                                              "PREFIX, exactly those pairs (repeatable) instead of every 10th.")
    lr: float = option(2e-4, help="Adam's learning rate (the pix2pix rule: constant, then linear decay).")
    d_warmup_steps: int = option(0, min=0, help="Train only the discriminators for the first N steps, the "
                                 "generator frozen: a fine-tune (--init) starts with new ones, whose first "
                                 "judgements of a trained generator are noise.")
    lambda_pixel: float = option(100.0, help="Weight of the pixel terms (L1 + COS + TVD): the paper's 100; lower "
                                 "leaves more to the adversarial and feature-matching terms (sharper, lower PSNR).")
    beta1: float = 0.5
    beta2: float = 0.999
    cos: bool = option(True, negate=True, help="Drop the cosine loss (Table 3 ablation).")
    cos_centred: bool = option(False, help="The cosine loss on mean-centred images (a correlation) instead of "
                               "[0, 1] intensities.")
    tvd: bool = option(True, negate=True, help="Drop the TVD loss (Table 3 ablation).")
    grid_loss: bool = option(False, help="Add the grid term (not the paper's): the output's pattern repeating every "
                             "8 pixels against the target's, weight lambda_1 (measured: did not remove the grid in 150 fine-tuning "
                             "steps; docs/pictures.md).")
    perceptual: bool = option(True, negate=True, help="Drop the VGG19 perceptual loss (no ImageNet weights "
                              "needed).")
    vgg_weights: str | None = option(None, path=True, help="Path of vgg19-dcbb9e9d.pth.")
    vgg_random_init: bool = False  # tests only: a randomly initialised VGG19, never for real training
    num_d: int = option(2, flag="d-scales", min=1,
                        help="Scales of each multi-scale PatchGAN discriminator (pix2pixHD: 2).")
    d_layers: int = option(3, min=1, help="Strided conv layers per discriminator scale (3: 5 conv layers in "
                           "all, pix2pixHD).")
    device: str = option("auto", help="auto, cpu or cuda[:N].")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="auto: bf16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs that support it (else "
                                 "fp16 with loss scaling), else fp32.")
    compile: bool = option(False, toggle=True, help="torch.compile the networks.")
    checkpoint_every: int = option(10, help="Keep a generator checkpoint every N epochs.")
    eval_every: int = option(1, help="Evaluate on the held-out pairs (and write a sample grid) every N epochs, "
                             "and at the end.")
    checkpoint_minutes: float = option(5.0, help="Save the resumable state this often.")
    log_every: int = 10  # steps
    samples: int = 4
    seed: int = option(0, help="Seed of the data order, crops and initial weights.")
    workers: int = option(2, help="Data-loading worker processes.")
    max_epochs_this_run: int | None = option(None, help="Stop (resumably) after this many epochs.")
    max_steps_this_run: int | None = None  # likewise, in steps (tests)
    max_steps: int | None = option(None, min=1, help="End the run after N steps in all, mid-epoch if need be "
                                   "(equal-budget ablations); the generator is written to OUT/last.pt.")
    quiet: bool = option(False, short="-q", help="No progress output.")

    def __post_init__(self):
        if self.epochs < 1:
            raise ConfigError("epochs must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        if self.eval_every < 1:
            raise ConfigError("eval_every must be at least 1")
        if self.lambda_pixel < 0:
            raise ConfigError("lambda_pixel must be >= 0")
        if self.multi_scale and self.resize is not None:
            raise ConfigError("--multi-scale and --resize exclude each other")
        if self.resize is not None:
            self.resize = tuple(int(v) for v in self.resize)

    @property
    def epochs_constant(self) -> int:
        return (self.epochs + 1) // 2

    @property
    def epochs_decay(self) -> int:
        return self.epochs - self.epochs_constant


def lr_factor(epoch: int, epochs_constant: int, epochs_decay: int) -> float:
    """pix2pix's rule for 0-based ``epoch``: 1 for the first ``epochs_constant`` epochs, then linear to 1/(decay+1)."""
    return 1.0 - max(0, epoch + 1 - epochs_constant) / float(epochs_decay + 1)
