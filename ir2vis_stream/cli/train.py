"""``train`` (and the torchrun entry point ``python -m ir2vis_stream.train``).

The options come from ``TrainConfig``'s fields (``train/config.py``: each option's help, flag and default
live there once); ``--blocks``, ``--widths``, ``--up`` and ``--level-upsampling`` from ``GeneratorConfig``'s.
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, Field, fields
from typing import Callable

import click

from ..model import LEVEL_UPSAMPLING, UPSAMPLERS, GeneratorConfig
from ..train.config import TrainConfig
from .app import Command, main, one_line_warnings
from .options import parse_size, split_list

GENERATOR_DEFAULTS = GeneratorConfig()


SCALARS = {"int": int, "float": float, "str": str}


def config_option(f: Field) -> Callable:
    """The click option of one ``TrainConfig`` field (see ``train.config.option``)."""
    cli = f.metadata["cli"]
    name = "--" + (cli["flag"] or f.name).replace("_", "-")
    decls = [d for d in (cli["short"], name) if d]
    default = f.default_factory() if f.default is MISSING else f.default
    if cli["negate"]:  # a True-by-default bool
        return click.option(f"--no-{name[2:]}", f.name, flag_value=False, default=True, help=cli["help"])
    if cli["toggle"]:
        return click.option(f"{name}/--no-{name[2:]}", f.name, default=default, show_default=True, help=cli["help"])
    if isinstance(default, bool):
        return click.option(*decls, f.name, is_flag=True, help=cli["help"])
    if cli["size"]:
        return click.option(*decls, f.name, default=default, help=cli["help"],
                            callback=lambda ctx, param, value: parse_size(value))
    scalar = SCALARS.get(str(f.type).replace(" | None", "").replace("list[str]", "str").strip())
    kind = (click.Choice(cli["choices"]) if cli["choices"] else click.Path() if cli["path"]
            else click.IntRange(min=cli["min"]) if cli["min"] is not None else scalar)
    if cli["multiple"]:
        return click.option(*decls, f.name, type=kind, multiple=True, help=cli["help"])
    return click.option(*decls, f.name, type=kind, default=default, show_default=default is not None, help=cli["help"])


def _train_options(f):
    opts = [click.argument("data", nargs=-1, required=True, type=click.Path())]
    for fld in fields(TrainConfig):
        if "cli" in fld.metadata:
            opts.append(config_option(fld))
        if fld.name == "generator":  # the msp generator's architecture, next to the choice of generator
            opts += [
                click.option("--blocks", default=None, help="Residual blocks per level, finest first, "
                             f"comma-separated [default: {','.join(map(str, GENERATOR_DEFAULTS.blocks))}]."),
                click.option("--widths", default=None, help="Channels per level, finest first, comma-separated (e.g. "
                             "16,32,64,64: narrow fine levels, 2.2x fewer FLOPs) [default: "
                             f"{GENERATOR_DEFAULTS.width} at every level, the paper's]."),
                click.option("--up", type=click.Choice(UPSAMPLERS), default=GENERATOR_DEFAULTS.up, show_default=True,
                             help="Feature upsampling between levels: the paper's transposed conv, the same "
                                  "initialised as bilinear, or bilinear resize + 3x3 conv."),
                click.option("--level-upsampling", type=click.Choice(LEVEL_UPSAMPLING),
                             default=GENERATOR_DEFAULTS.level_upsampling, show_default=True,
                             help="How each level's image is enlarged before the next adds to it (paper: nearest)."),
            ]
    opts.append(click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."))
    for opt in reversed(opts):
        f = opt(f)
    return f


def generator_config(generator: str, blocks: str | None, up: str, level_upsampling: str,
                     widths: str | None = None) -> dict:
    """Only what differs from the default, so a run's config (and --resume's check) names its deviations."""
    if generator != "msp":
        if blocks or widths or up != GENERATOR_DEFAULTS.up or level_upsampling != GENERATOR_DEFAULTS.level_upsampling:
            raise click.UsageError("--blocks, --widths, --up and --level-upsampling apply to the msp generator only")
        return {}
    config = {k: v for k, v in (("up", up), ("level_upsampling", level_upsampling)) if v != getattr(GENERATOR_DEFAULTS, k)}
    if blocks:
        config["blocks"] = split_list([blocks], int, "--blocks")
    if widths:
        config["widths"] = split_list([widths], int, "--widths")
    return config


def _train(data, resume, blocks, widths, up, level_upsampling, **options):
    from ..train import train

    cfg = TrainConfig(data=list(data), generator_config=generator_config(options["generator"], blocks, up,
                                                                          level_upsampling, widths),
                      **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()})
    try:
        train(cfg, resume=resume)
    except KeyboardInterrupt:
        click.echo(f"interrupted; state saved in {cfg.out}/state.pt, continue with --resume", err=True)
        sys.exit(130)


@main.command("train")
@_train_options
def train_cmd(**kwargs):
    """Train the generator on paired IR/visible folders (KAIST layout or lwir/ + visible/)."""
    _train(**kwargs)


@click.command(cls=Command)
@_train_options
def train_command(**kwargs):
    """Train the generator (entry point for torchrun: python -m ir2vis_stream.train)."""
    one_line_warnings()
    _train(**kwargs)
