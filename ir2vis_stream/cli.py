"""The command line: thin click commands over library calls (``ir2vis_stream.run``, ``train.train``, ...).

Every expected failure becomes a ``click.ClickException``: one line, exit status 1, no traceback.
"""

from __future__ import annotations

import sys

import click

from .checkpoint import CheckpointError
from .hardware import DeviceError


def _parse_size(value: str | None, allow_native: bool = False):
    if value is None:
        return None
    v = value.strip().lower()
    if allow_native and v == "native":
        return "native"
    try:
        w, h = (int(p) for p in v.split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size like 640x512" + (" or 'native'" if allow_native else "")) from None
    return (w, h)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir2vis-stream")
def main():
    """Colourise thermal infrared (LWIR) video into visible-looking colour video."""


# ---- run ------------------------------------------------------------------------------------------------
@main.command("run")
@click.argument("input", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output video (.mp4/.mkv/.mov, H.264) or folder of PNG frames (a name without extension).")
@click.option("-c", "--checkpoint", type=click.Path(), default=None, help="Generator checkpoint [default: bundled model].")
@click.option("--engine", default="auto", show_default=True, help="Inference backend: auto or torch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: fp16 on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32.")
@click.option("-b", "--batch-size", default=4, show_default=True, help="Frames per inference call.")
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--fps", type=float, default=None, help="Frame rate of a frame-folder input [default: 30].")
@click.option("--crf", default=18, show_default=True, help="x264 quality (lower is better, 0 lossless).")
@click.option("--preset", default="veryfast", show_default=True, help="x264 speed preset.")
@click.option("--side-by-side", is_flag=True, help="Write IR | colourised side by side.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames (a preview).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def run_cmd(input, output, checkpoint, engine, device, precision, batch_size, infer_size, fps, crf, preset,
            side_by_side, max_frames, overwrite, quiet):
    """Colourise INPUT (a video, or a folder of IR frames) into OUTPUT."""
    from .api import run
    from .media import MediaError
    from .progress import FrameProgress

    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    progress = FrameProgress(enabled=not quiet)
    try:
        with progress:
            result = run(input, output, checkpoint=checkpoint, engine=engine, device=device, precision=precision,
                         batch_size=batch_size, infer_size=_parse_size(infer_size, allow_native=True), fps=fps,
                         crf=crf, preset=preset, side_by_side=side_by_side, overwrite=overwrite, max_frames=max_frames,
                         on_start=progress.start, on_tick=progress.update)
    except (MediaError, CheckpointError, DeviceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("aborted; no output written", err=True)
        sys.exit(130)
    if result.ended_early:
        click.echo(f"warning: {input} ended early (damaged or truncated): wrote the {result.frames} frames that "
                   f"decoded" + (f" of {result.expected_frames}" if result.expected_frames else ""), err=True)
    if result.interrupted:
        click.echo(f"interrupted: {output} holds the first {result.frames} frames", err=True)
    if not quiet:
        click.echo(result.summary())


# ---- train ----------------------------------------------------------------------------------------------
def _train_options(f):
    opts = [
        click.argument("data", nargs=-1, required=True, type=click.Path()),
        click.option("-o", "--out", default="runs/train", show_default=True, help="Folder for checkpoints, log and samples."),
        click.option("--generator", type=click.Choice(["msp", "resnet9"]), default="msp", show_default=True,
                     help="msp: the paper's multi-scale generator; resnet9: pix2pix's (ablation)."),
        click.option("--epochs", default=200, show_default=True, help="Total epochs: half constant lr, half linear decay."),
        click.option("--batch-size", default=4, show_default=True, help="Batch size per process."),
        click.option("--scale", default=256, show_default=True,
                     help="Short side images are scaled to (aspect kept); also the model's default inference size."),
        click.option("--crop", default=256, show_default=True, help="Square training crop side, at most --scale."),
        click.option("--resize", default=None, help="Resize every pair to WxH instead (the paper: 256x256)."),
        click.option("--lr", default=2e-4, show_default=True),
        click.option("--no-cos", is_flag=True, help="Drop the cosine loss (Table 3 ablation)."),
        click.option("--no-tvd", is_flag=True, help="Drop the TVD loss (Table 3 ablation)."),
        click.option("--no-perceptual", is_flag=True, help="Drop the VGG19 perceptual loss (no ImageNet weights needed)."),
        click.option("--vgg-weights", type=click.Path(), default=None, help="Path of vgg19-dcbb9e9d.pth."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
                     help="auto: bf16 on CPUs with AMX/AVX512-BF16, fp16 on CUDA, else fp32."),
        click.option("--compile/--no-compile", "compile_", default=False, show_default=True, help="torch.compile the networks."),
        click.option("--checkpoint-every", default=10, show_default=True, help="Keep a generator checkpoint every N epochs."),
        click.option("--checkpoint-minutes", default=5.0, show_default=True, help="Save the resumable state this often."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--seed", default=0, show_default=True),
        click.option("--workers", default=2, show_default=True, help="Data-loading worker processes."),
        click.option("--max-epochs-this-run", type=int, default=None, help="Stop (resumably) after this many epochs."),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _train(data, out, generator, epochs, batch_size, scale, crop, resize, lr, no_cos, no_tvd, no_perceptual, vgg_weights,
           device, precision, compile_, checkpoint_every, checkpoint_minutes, resume, seed, workers,
           max_epochs_this_run, quiet):
    from .train import DataError, TrainConfig, train
    from .train.vgg import VGGWeightsMissing

    try:
        cfg = TrainConfig(data=list(data), out=out, generator=generator, epochs=epochs, batch_size=batch_size,
                          scale=scale, crop=crop, resize=_parse_size(resize), lr=lr, cos=not no_cos, tvd=not no_tvd,
                          perceptual=not no_perceptual, vgg_weights=vgg_weights, device=device, precision=precision,
                          compile=compile_, checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes,
                          seed=seed, workers=workers, max_epochs_this_run=max_epochs_this_run, quiet=quiet)
        train(cfg, resume=resume)
    except (DataError, VGGWeightsMissing, DeviceError, CheckpointError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted; state saved in {out}/state.pt, continue with --resume", err=True)
        sys.exit(130)


@main.command("train")
@_train_options
def train_cmd(**kwargs):
    """Train the generator on paired IR/visible folders (KAIST layout or lwir/ + visible/)."""
    _train(**kwargs)


@click.command()
@_train_options
def train_command(**kwargs):
    """Train the generator (entry point for torchrun: python -m ir2vis_stream.train)."""
    _train(**kwargs)


if __name__ == "__main__":
    main()
