"""``run``: colourise a video or frame folder into a video or frame folder."""

from __future__ import annotations

import sys

import click

from .app import main
from .options import background_build_notice, engine_options, grid_filter_option, parse_size, temporal_option


@main.command("run")
@click.argument("input", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output video (.mp4/.mkv/.mov, H.264) or folder of PNG frames (a name without extension).")
@click.option("-c", "--checkpoint", type=click.Path(), default=None, help="Generator checkpoint [default: bundled model].")
@engine_options
@click.option("-b", "--batch-size", default=4, show_default=True, help="Frames per inference call.")
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--fps", type=float, default=None, help="Frame rate of a frame-folder input [default: 30].")
@click.option("--crf", default=18, show_default=True, help="x264 quality (lower is better, 0 lossless).")
@click.option("--preset", default="veryfast", show_default=True, help="x264 speed preset.")
@click.option("--side-by-side", is_flag=True, help="Write IR | colourised side by side.")
@temporal_option
@grid_filter_option
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames (a preview).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def run_cmd(input, output, checkpoint, engine, device, precision, rebuild, no_background_build, batch_size, infer_size, fps, crf, preset,
            side_by_side, temporal, grid_filter, max_frames, overwrite, quiet):
    """Colourise INPUT (a video, or a folder of IR frames) into OUTPUT."""
    from ..api import run
    from ..progress import FrameProgress

    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    progress = FrameProgress(enabled=not quiet)
    try:
        with progress:
            result = run(input, output, checkpoint=checkpoint, engine=engine, device=device, precision=precision,
                         batch_size=batch_size, infer_size=parse_size(infer_size, allow_native=True), fps=fps,
                         crf=crf, preset=preset, side_by_side=side_by_side, overwrite=overwrite, max_frames=max_frames,
                         rebuild=rebuild, background_build=not no_background_build, temporal=temporal,
                         grid_filter=grid_filter,
                         on_start=progress.start, on_tick=progress.update)
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
        if result.engine_reason and engine == "auto":
            click.echo(f"engine {result.engine}: {result.engine_reason}")
    background_build_notice()
