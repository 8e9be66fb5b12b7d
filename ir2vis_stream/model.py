"""The generator of "multi-scale structure-preserving heterologous image transformation" (IR -> visible).

The paper trains on KAIST-MPD and describes the generator as a coarse-to-fine pyramid: the IR image is
downsampled three times (1/2, 1/4, 1/8); from the smallest scale up, each level encodes its own input
together with the 2x transposed-conv upsampled features of the level below, emits an image at its scale,
and that image, nearest-upsampled, is added to the next level's image. Modules are 64 channels wide,
normalised with instance norm and activated by a learnable sine ``sin(w*x + t)`` (per-channel w, t).

This file is the model only: tensors in, tensors out, no video, no files.

Shapes: input ``(N, C_in, H, W)`` with C_in = 1 (IR) or 3 (grey replicated in RGB, averaged to one
channel), values in [-1, 1]; output ``(N, 3, H, W)`` in [-1, 1]. Any H, W is accepted: the input is padded
(replicate) to a multiple of 2**(levels-1) (and to at least twice that) and the output cropped back.

Default configuration (``GeneratorConfig()``), 4 levels, width 64, residual blocks (fine -> coarse)
(2, 4, 12, 122): 10.82 M parameters, against 10.81 M in the paper and 11.38 M for pix2pix's ResNet-9.
Depth sits at 1/8 scale, where a 3x3 conv costs 1/64 of the full-resolution one, so the model is deep
(and sees the whole frame) but cheap.

Layer table of the default configuration (FLOPs = 2 x multiply-adds, at a 256x256 input):

=========  ========  ===============================================  ========  =========
level      size      modules                                          params    GFLOP
=========  ========  ===============================================  ========  =========
1/8        32x32     stem 1->64 3x3; 122 x ResBlock(64); head 64->3   9.06 M    18.4
1/4        64x64     stem; up 64->64 (4x4 T-conv); fuse 128->64 3x3;  1.03 M    8.0
                     12 x ResBlock(64); head
1/2        128x128   stem; up; fuse; 4 x ResBlock(64); head           0.44 M    12.7
1/1        256x256   stem; up; fuse; 2 x ResBlock(64); head           0.29 M    31.4
total                                                                 10.82 M   70.6
=========  ========  ===============================================  ========  =========

For comparison, pix2pix's ResNet-9 (``ResnetGenerator`` below) costs 98.3 GFLOP at 256x256.

A ResBlock is conv3x3 -> InstanceNorm -> sine -> conv3x3 -> InstanceNorm, plus the identity. Every stem,
fuse and up layer is followed by InstanceNorm and sine; heads are a plain 3x3 conv to 3 channels. The
final image is ``tanh`` of the sum of all levels' images (each nearest-upsampled to full size), so the
output range matches the [-1, 1] targets. ``count_flops`` reproduces the table for any config and size.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from .errors import ConfigError
from torch import nn

__all__ = [
    "GeneratorConfig",
    "MultiScaleGenerator",
    "ResnetGenerator",
    "Sine",
    "build_generator",
    "fold_sines",
    "count_flops",
    "count_parameters",
    "GENERATORS",
    "generator_spec",
    "resize_conv_state",
    "weight_spec",
    "pad_to_multiple",
]


class Sine(nn.Module):
    """Learnable per-channel sine activation ``y = sin(w * x + t)``, initialised to ``sin(x)``.

    With instance-normalised inputs (about N(0, 1)) ``sin(x)`` starts close to the identity near zero,
    so deep stacks train from the start; the network learns its own frequencies and phases.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.omega = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.theta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.folded = False  # set by ``fold_sines``: omega and theta live in the norm before, this is sin(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) if self.folded else torch.sin(x * self.omega + self.theta)


def fold_sines(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference in which every sine that follows an affine instance norm is a plain
    ``sin``: ``sin(w * (g * n + b) + t) = sin((w * g) * n + (w * b + t))``, so the norm's gain and bias take
    ``w * g`` and ``w * b + t`` and the sine's multiply and add go from the graph of every engine. In the
    default generator every sine follows such a norm (150 of them). The same function up to rounding; the
    copy's state dict keeps its shape, with omega = 1 and theta = 0, so saving and loading it, or folding it
    again, gives the same function."""
    import copy

    model = copy.deepcopy(model)
    with torch.no_grad():
        for seq in model.modules():
            if not isinstance(seq, nn.Sequential):
                continue
            layers = list(seq)
            for norm, sine in zip(layers, layers[1:]):
                if not (isinstance(sine, Sine) and isinstance(norm, nn.InstanceNorm2d) and norm.affine):
                    continue
                omega, theta = sine.omega.flatten(), sine.theta.flatten()
                norm.bias.copy_(omega * norm.bias + theta)
                norm.weight.mul_(omega)
                sine.omega.fill_(1.0)
                sine.theta.zero_()
                sine.folded = True
    return model


def conv_norm_sine(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2),
        nn.InstanceNorm2d(cout, affine=True),
        Sine(cout),
    )


class ResBlock(nn.Module):
    """conv3x3 -> IN -> sine -> conv3x3 -> IN, plus identity; (N, C, H, W) -> (N, C, H, W).

    The last norm's gain starts at zero, so every block starts as the identity: otherwise each of the
    122 blocks at 1/8 scale adds a unit-variance branch, the features' spread grows like sqrt(depth)
    (to about 11 at init) and the final tanh starts saturated, with vanishing gradients.
    """

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_sine(width, width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.InstanceNorm2d(width, affine=True),
        )
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Level(nn.Module):
    """One scale of the pyramid: encodes its own input (plus the coarser level's features) into an image.

    ``forward(x, below)`` takes the IR image at this scale (N, C_in, h, w) and the features of the level
    below (N, width, h/2, w/2) or None at the coarsest level; returns (features, residual image).
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, coarsest: bool,
                 up: str = "tconv", below_width: int | None = None):
        super().__init__()
        self.stem = conv_norm_sine(in_channels, width)
        if coarsest:
            self.up = None
            self.fuse = None
        else:  # the upsampler also maps the coarser level's width to this one's
            self.up = nn.Sequential(upsampler(below_width or width, up, width), nn.InstanceNorm2d(width, affine=True),
                                    Sine(width))
            self.fuse = conv_norm_sine(2 * width, width)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.head = nn.Conv2d(width, out_channels, 3, padding=1)
        with torch.no_grad():  # small initial images: the sum of all levels' images starts well inside tanh's range
            self.head.weight.mul_(0.1)

    def forward(self, x: torch.Tensor, below: torch.Tensor | None):
        h = self.stem(x)
        if self.fuse is not None:
            h = self.fuse(torch.cat([h, self.up(below)], dim=1))
        h = self.body(h)
        return h, self.head(h)


UPSAMPLERS = ("tconv", "tconv-bilinear", "resize-conv")
LEVEL_UPSAMPLING = ("nearest", "bilinear")


def upsampler(width: int, kind: str, out_width: int | None = None) -> nn.Module:
    """The 2x feature upsampling between levels (N, width, h, w) -> (N, out_width, 2h, 2w) (``out_width``: the
    finer level's width, by default the same).

    ``tconv``: the paper's 4x4 stride-2 transposed convolution, default init. Its kernel overlaps unevenly
    (each output pixel gets 4 of the 16 taps, in one of 4 phases), a known checkerboard source (Odena et al.
    2016). ``tconv-bilinear``: the same layer (same weights shape) initialised as per-channel bilinear
    interpolation, so it starts artefact-free. ``resize-conv``: bilinear resize, then a 3x3 convolution
    (Odena et al.'s remedy; 3x3 weights, so not weight-compatible with the other two).
    """
    out_width = out_width or width
    if kind == "resize-conv":
        return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                             nn.Conv2d(width, out_width, 3, padding=1))
    if kind not in ("tconv", "tconv-bilinear"):
        raise ConfigError(f"unknown upsampler {kind!r}; choose one of {', '.join(UPSAMPLERS)}")
    layer = nn.ConvTranspose2d(width, out_width, 4, stride=2, padding=1)
    if kind == "tconv-bilinear":
        # 1-D taps of 2x bilinear interpolation for a 4-tap, stride-2, padding-1 transposed conv; channel i to
        # channel i (the first min(width, out_width) of them where the widths differ)
        taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
        both = range(min(width, out_width))
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[both, both] = taps[:, None] * taps[None, :]
            layer.bias.zero_()
    return layer


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture hyper-parameters; the defaults are the shipped model (10.82 M parameters).

    ``blocks`` lists residual blocks per level from the finest (full resolution) to the coarsest; its
    length is the number of levels, so ``levels - 1`` downsamplings (the paper: 3). ``up`` is the feature
    upsampler between levels (see ``upsampler``); ``level_upsampling`` how each level's image is enlarged
    before it is added to the next one's: ``nearest`` as the paper (a blocky step at the coarse levels'
    period) or ``bilinear``. Both are weight-compatible with the paper's form; ``up`` is except for
    ``resize-conv``. ``widths`` (finest first, one per level) gives each level its own channel count instead
    of ``width`` for all: the full-resolution level costs 31 of the 70.6 GFLOP of a 256x256 frame at width 64,
    so narrow fine levels (e.g. 16, 32, 64, 64) buy several times the speed while the deep 1/8 level keeps its
    width (``count_flops``); the paper's form is ``widths=None``.
    """

    in_channels: int = 1
    out_channels: int = 3
    width: int = 64
    blocks: tuple[int, ...] = field(default=(2, 4, 12, 122))
    up: str = "tconv"
    level_upsampling: str = "nearest"
    widths: tuple[int, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
            if len(self.widths) != len(self.blocks) or min(self.widths) < 1:
                raise ConfigError(f"widths must give one positive width per level ({len(self.blocks)}), got "
                                 f"{list(self.widths)}")
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if not self.blocks or any(b < 0 for b in self.blocks):
            raise ConfigError(f"blocks must be a non-empty list of counts >= 0, got {self.blocks}")
        if self.width < 1:
            raise ConfigError(f"width must be positive, got {self.width}")
        if self.up not in UPSAMPLERS:
            raise ConfigError(f"unknown upsampler {self.up!r}; choose one of {', '.join(UPSAMPLERS)}")
        if self.level_upsampling not in LEVEL_UPSAMPLING:
            raise ConfigError(f"unknown level upsampling {self.level_upsampling!r}; choose one of "
                             f"{', '.join(LEVEL_UPSAMPLING)}")

    @property
    def levels(self) -> int:
        return len(self.blocks)

    @property
    def level_widths(self) -> tuple[int, ...]:
        """Each level's channel count, finest first."""
        return self.widths if self.widths is not None else (self.width,) * self.levels

    @property
    def size_multiple(self) -> int:
        """Inputs whose sides are multiples of this need no padding."""
        return 2 ** (self.levels - 1)

    @property
    def grid_period(self) -> int | None:
        """The period in pixels of the pattern that the up-sampling leaves in the output (``gridfilter``):
        transposed convolutions between levels (``tconv``, ``tconv-bilinear`` once trained) repeat every
        2 ** (levels - 1) pixels; None for ``resize-conv`` (next to no grid; measured: docs/pictures.md) and for
        one level."""
        return None if self.up == "resize-conv" or self.levels < 2 else self.size_multiple


class MultiScaleGenerator(nn.Module):
    """The paper's coarse-to-fine generator; see the module docstring for the layer table."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config or GeneratorConfig()
        c = self.config
        # levels[0] is full resolution, levels[-1] the coarsest.
        widths = c.level_widths
        self.levels = nn.ModuleList(
            Level(c.in_channels, c.out_channels, widths[i], b, coarsest=(i == c.levels - 1), up=c.up,
                  below_width=widths[i + 1] if i + 1 < c.levels else None)
            for i, b in enumerate(c.blocks)
        )
        self.in_channels = c.in_channels
        self.size_multiple = c.size_multiple
        self.grid_period = c.grid_period

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = prepare_input(x, self.in_channels, self.size_multiple)
        return self.forward_aligned(x)[:, :, :h, :w]

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper, for (N, in_channels, H, W) with H, W multiples of ``size_multiple``.

        This is what engines export and compile: shape-independent, no padding or cropping.
        """
        pyramid = [x]
        for _ in range(self.config.levels - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        feats, image = None, None
        mode = self.config.level_upsampling
        for level, inp in zip(reversed(self.levels), reversed(pyramid)):
            feats, residual = level(inp, feats)
            if image is not None:
                image = residual + (F.interpolate(image, scale_factor=2.0, mode="nearest") if mode == "nearest" else
                                    F.interpolate(image, scale_factor=2.0, mode="bilinear", align_corners=False))
            else:
                image = residual
        return torch.tanh(image)


class ResnetGenerator(nn.Module):
    """pix2pix's ``resnet_9blocks`` generator (Isola et al. 2017; Johnson et al. 2016), for the ablation.

    c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3, tanh; instance norm without affine, ReLU.
    11.37 M parameters with a 1-channel input (11.38 M with 3). Shapes as MultiScaleGenerator.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, width: int = 64, n_blocks: int = 9):
        super().__init__()
        self.in_channels, self.out_channels, self.width = in_channels, out_channels, width
        self.size_multiple = 4  # two stride-2 convolutions

        def norm(ch):
            return nn.InstanceNorm2d(ch, affine=False)

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), norm(width), nn.ReLU(True)]
        ch = width
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [_ResnetBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = prepare_input(x, self.in_channels, self.size_multiple)
        return self.net(x)[:, :, :h, :w]

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ResnetBlock(nn.Module):
    def __init__(self, ch: int, norm):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm(ch),
        )

    def forward(self, x):
        return x + self.body(x)


def prepare_input(x: torch.Tensor, in_channels: int, multiple: int):
    """Average 3-channel grey to 1 channel when the model takes IR, and pad H, W up to ``multiple``.

    Returns the padded tensor and the original (H, W) to crop the output back to.
    """
    if x.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        if in_channels == 1 and x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"expected {in_channels} input channel(s), got {x.shape[1]}")
    return pad_to_multiple(x, multiple)


def pad_to_multiple(x: torch.Tensor, multiple: int):
    """Replicate-pad H and W (bottom/right) to multiples of ``multiple``, and to at least two of them
    (instance norm needs more than one pixel at the coarsest level); returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = max((-h) % multiple, 2 * multiple - h), max((-w) % multiple, 2 * multiple - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


# Named configurations of the paper's family. ``fast`` is the real-time CPU tier's first sizing (issue 34): narrow
# fine levels (a level's cost falls with its width squared) and a short 1/8 level, 10.1 GFLOP at 320x256 against
# the paper's 88.2 (``count_flops``); its speed is measured with benchmarks/engine_speed.py --models paper fast.
CONFIGS = {
    "paper": GeneratorConfig(),
    "fast": GeneratorConfig(widths=(16, 32, 64, 64), blocks=(1, 2, 4, 8)),
}

GENERATORS = {
    "msp": lambda **kw: MultiScaleGenerator(GeneratorConfig(**kw)),
    "resnet9": lambda **kw: ResnetGenerator(**{k: v for k, v in kw.items() if k in ("in_channels", "out_channels", "width")}),
}


def build_generator(name: str = "msp", **config) -> nn.Module:
    """Build a generator by name: ``"msp"`` (the paper's, default) or ``"resnet9"`` (pix2pix's ablation)."""
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}") from None
    return factory(**config)


def generator_spec(model: nn.Module) -> dict:
    """The (name, config) pair that ``build_generator`` needs to rebuild ``model``; stored in checkpoints."""
    if isinstance(model, ResnetGenerator):
        return {"name": "resnet9", "config": {"in_channels": model.in_channels,
                                              "out_channels": model.out_channels, "width": model.width}}
    if isinstance(model, MultiScaleGenerator):
        cfg = asdict(model.config)
        cfg["blocks"] = list(cfg["blocks"])
        if cfg["widths"] is None:
            del cfg["widths"]  # the paper's form: as checkpoints written before per-level widths existed
        else:
            cfg["widths"] = list(cfg["widths"])
        return {"name": "msp", "config": cfg}
    raise TypeError(f"not a generator of this package: {type(model).__name__}")


def weight_spec(spec: dict) -> dict:
    """The part of a ``generator_spec`` that fixes the weights' names and shapes: two specs that agree here
    can load each other's weights (how level images are enlarged, and how an upsampler was initialised, do not
    change any weight)."""
    config = dict(spec["config"])
    config.pop("level_upsampling", None)
    if config.get("up") == "tconv-bilinear":
        config["up"] = "tconv"
    config.setdefault("up", "tconv")
    return {"name": spec["name"], "config": config}


def _resize_conv_fit() -> torch.Tensor:
    """The (9, 16) least-squares map from a 4x4 stride-2 transposed-conv kernel to the 3x3 kernel that,
    after a 2x bilinear resize, comes closest to it.

    Both layers are linear and shift-equivariant with output period 2, so one impulse's response fixes each
    of them; the fit matches those responses (all four phases of the transposed conv at once). What the fit
    cannot match is the part that differs between phases: the checkerboard.
    """
    impulse = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    impulse[..., 4, 4] = 1.0
    up = F.interpolate(impulse, scale_factor=2.0, mode="bilinear", align_corners=False)
    eye16 = torch.eye(16, dtype=torch.float64).reshape(16, 1, 1, 4, 4)
    eye9 = torch.eye(9, dtype=torch.float64).reshape(9, 1, 1, 3, 3)
    tconv = torch.stack([F.conv_transpose2d(impulse, k, stride=2, padding=1).flatten() for k in eye16], dim=1)
    resize = torch.stack([F.conv2d(up, k, padding=1).flatten() for k in eye9], dim=1)
    return torch.linalg.lstsq(resize, tconv).solution  # (9, 16)


def resize_conv_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``tconv`` generator's state dict rewritten for ``up="resize-conv"``: each transposed conv replaced
    by the bilinear resize + 3x3 conv closest to it (``_resize_conv_fit``), every other weight unchanged.

    Lets a model trained with the paper's upsampler start a resize + conv fine-tune from its other weights
    instead of from scratch. The fitted layer keeps only the part of the transposed conv's output that is the
    same in its four phases; for the release that part is small (``scripts/upsampler_conversion.py`` shows it),
    so the converted model starts far from the release's pictures and the fine-tune has to relearn most of what
    the upsampler carried (measured: docs/pictures.md).
    """
    fit = _resize_conv_fit()
    out = {}
    for name, value in state.items():
        m = re.fullmatch(r"(levels\.\d+\.up\.0)\.(weight|bias)", name)
        if m is None:
            out[name] = value
        elif m.group(2) == "bias":
            out[f"{m.group(1)}.1.bias"] = value
        else:  # ConvTranspose2d (in, out, 4, 4) -> Conv2d (out, in, 3, 3)
            c_in, c_out = value.shape[:2]
            kernels = value.transpose(0, 1).reshape(c_out * c_in, 16).double() @ fit.T
            out[f"{m.group(1)}.1.weight"] = kernels.reshape(c_out, c_in, 3, 3).to(value.dtype)
    return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, height: int = 256, width: int = 256) -> int:
    """FLOPs (2 x multiply-adds) of convolutions and transposed convolutions for one (1, C, H, W) input.

    Element-wise work (norms, sines, adds) is left out: it is memory-bound, not compute-bound.
    """
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.ConvTranspose2d):
            n_in = inp[0].shape[-2] * inp[0].shape[-1]
            total += 2 * n_in * mod.in_channels * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            n_out = out.shape[-2] * out.shape[-1]
            total += 2 * n_out * mod.in_channels * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.in_channels, height, width, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total
