"""``live``: colourise a camera, stream or file as it plays (window, recording, MJPEG)."""

from __future__ import annotations

import sys

import click

from .app import main
from .options import background_build_notice, engine_options, grid_filter_option, parse_size


@main.command("live")
@click.option("--source", default="0", show_default=True,
              help="Camera index, /dev/videoN, stream URL (rtsp://...), or a video file / frame folder.")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Record what is shown (.mp4/.mkv/.mov, H.264) with real timestamps.")
@click.option("--serve", default=None, metavar="HOST:PORT",
              help="Serve the view as MJPEG at http://HOST:PORT/ (HOST defaults to 127.0.0.1; port 0 picks one).")
@click.option("--no-window", is_flag=True, help="Open no window (headless; record or serve instead).")
@click.option("--no-overlay", is_flag=True, help="Do not draw the latency readout on the frames.")
@click.option("--realtime", is_flag=True,
              help="Play a file source at its own frame rate, like a camera (frames inference cannot keep up "
                   "with are dropped); without it every frame of a file is shown.")
@click.option("-c", "--checkpoint", type=click.Path(), default=None, help="Generator checkpoint [default: bundled model].")
@engine_options
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@grid_filter_option
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Reconnect attempts when a camera or stream stops delivering.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after this many seconds.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after showing N frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording.")
@click.option("-q", "--quiet", is_flag=True, help="No per-second readout or summary.")
def live_cmd(source, output, serve, no_window, no_overlay, realtime, checkpoint, engine, device, precision, rebuild,
             no_background_build, infer_size, grid_filter, retries, duration, max_frames, overwrite, quiet):
    """Colourise a camera live: the newest frame wins, so the delay stays bounded. q or Ctrl-C stops."""
    from ..api import load_engine
    from ..live import NO_DISPLAY, LiveSession, display_available, parse_serve_address

    try:
        address = parse_serve_address(serve) if serve is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--serve") from None
    window = not no_window
    if window and not display_available():
        if output is None and address is None:
            raise click.ClickException(NO_DISPLAY)
        click.echo("warning: no display available; continuing without a window (--no-window skips this check)", err=True)
        window = False

    def say(text: str) -> None:
        click.echo(text, err=True)

    try:
        eng, size_spec, period = load_engine(checkpoint, engine=engine, device=device, precision=precision,
                                             infer_size=parse_size(infer_size, allow_native=True),
                                             grid_filter=grid_filter, rebuild=rebuild,
                                             background_build=not no_background_build)
        session = LiveSession(source, eng, infer_size=size_spec, grid_period=period, output=output,
                              overwrite=overwrite, serve=address, window=window, overlay=not no_overlay,
                              realtime=realtime, retries=retries,
                              on_tick=None if quiet else (lambda stats: say(stats.readout())), on_message=say)
        stats = session.run(max_seconds=duration, max_frames=max_frames)
    except KeyboardInterrupt:
        click.echo("aborted before the first frame", err=True)
        sys.exit(130)
    if not quiet:
        click.echo(stats.summary())
        if engine == "auto" and getattr(eng, "reason", ""):
            click.echo(f"engine {eng.describe()}: {eng.reason}")
    background_build_notice()
    if stats.end == "source lost":
        sys.exit(1)
