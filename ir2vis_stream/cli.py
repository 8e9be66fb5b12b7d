"""The command line: thin click commands over library calls (``ir2vis_stream.run``, ``train.train``, ...).

Every expected failure is a ``UserError`` (``errors.py``), caught once, at the top: its message as one line,
exit status 1, no traceback. Anything else (a CUDA out-of-memory, a compiler failure, a bug) is caught there
too and shown as one line with its type; ``IR2VIS_STREAM_DEBUG=1`` lets its traceback through for a bug report.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

import click

from .engines import ENGINES
from .errors import UserError, one_line


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


def _engine_options(f):
    """--engine, --device, --precision and --rebuild, shared by every command that runs the model."""
    opts = [
        click.option("--engine", type=click.Choice(["auto", *ENGINES]), default="auto", show_default=True,
                     help="Inference backend; auto picks by a fixed rule (README: Engines) and says why."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
                     show_default=True, help="auto: bf16 on CUDA GPUs that support it (else fp16), bf16 on CPUs with AMX/AVX512-BF16, else fp32."),
        click.option("--rebuild", is_flag=True, help="Rebuild cached ONNX exports / TensorRT plans."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


class _OneLineErrors:
    """Mixin for click commands and groups: a ``UserError`` becomes its message on one line, anything else one
    line with its type and the debug hint; exit status 1 either way."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, EOFError):
            raise  # click's own handling: a message, a quiet exit, "Aborted!"
        except UserError as exc:
            raise click.ClickException(one_line(exc)) from None
        except Exception as exc:
            if os.environ.get("IR2VIS_STREAM_DEBUG", "") not in ("", "0"):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # output piped into `head` and closed: click exits quietly
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise click.ClickException(f"{type(exc).__name__}: {first} (IR2VIS_STREAM_DEBUG=1 shows the traceback)") from None


class _Group(_OneLineErrors, click.Group):
    pass


class _Command(_OneLineErrors, click.Command):
    pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir2vis-stream")
def main():
    """Colourise thermal infrared (LWIR) video into visible-looking colour video."""
    _one_line_warnings()
    _quiet_library_logs()


def _one_line_warnings() -> None:
    """For this command, the library's warnings (``warnings.warn``) as ``warning: ...`` lines, without file
    and line number; the usual format comes back when the command ends."""
    import warnings

    usual = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    click.get_current_context().call_on_close(lambda: setattr(warnings, "formatwarning", usual))


def quiet_library_logs():
    """torch's log lines (``W1201 ... cpp_extension.py:183] No CUDA runtime is found`` on every CPU run) are notes
    for torch's developers, not for a user: hidden unless ``IR2VIS_STREAM_DEBUG=1``. Returns the undo."""
    import logging

    if os.environ.get("IR2VIS_STREAM_DEBUG", "") not in ("", "0"):
        return lambda: None
    logger = logging.getLogger("torch")
    usual = logger.level
    logger.setLevel(logging.ERROR)
    return lambda: logger.setLevel(usual)


def _quiet_library_logs() -> None:
    """``quiet_library_logs`` for the command in progress."""
    click.get_current_context().call_on_close(quiet_library_logs())


# ---- live -----------------------------------------------------------------------------------------------
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
@_engine_options
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Reconnect attempts when a camera or stream stops delivering.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after this many seconds.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after showing N frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording.")
@click.option("-q", "--quiet", is_flag=True, help="No per-second readout or summary.")
def live_cmd(source, output, serve, no_window, no_overlay, realtime, checkpoint, engine, device, precision, rebuild,
             infer_size, retries, duration, max_frames, overwrite, quiet):
    """Colourise a camera live: the newest frame wins, so the delay stays bounded. q or Ctrl-C stops."""
    from .api import load_engine
    from .live import NO_DISPLAY, LiveSession, display_available, parse_serve_address

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
        eng, size_spec = load_engine(checkpoint, engine=engine, device=device, precision=precision,
                                     infer_size=_parse_size(infer_size, allow_native=True), rebuild=rebuild)
        session = LiveSession(source, eng, infer_size=size_spec, output=output, overwrite=overwrite, serve=address,
                              window=window, overlay=not no_overlay, realtime=realtime, retries=retries,
                              on_tick=None if quiet else (lambda stats: say(stats.readout())), on_message=say)
        stats = session.run(max_seconds=duration, max_frames=max_frames)
    except KeyboardInterrupt:
        click.echo("aborted before the first frame", err=True)
        sys.exit(130)
    if not quiet:
        click.echo(stats.summary())
        if engine == "auto" and getattr(eng, "reason", ""):
            click.echo(f"engine {eng.describe()}: {eng.reason}")
    if stats.end == "source lost":
        sys.exit(1)


# ---- run ------------------------------------------------------------------------------------------------
@main.command("run")
@click.argument("input", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output video (.mp4/.mkv/.mov, H.264) or folder of PNG frames (a name without extension).")
@click.option("-c", "--checkpoint", type=click.Path(), default=None, help="Generator checkpoint [default: bundled model].")
@_engine_options
@click.option("-b", "--batch-size", default=4, show_default=True, help="Frames per inference call.")
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--fps", type=float, default=None, help="Frame rate of a frame-folder input [default: 30].")
@click.option("--crf", default=18, show_default=True, help="x264 quality (lower is better, 0 lossless).")
@click.option("--preset", default="veryfast", show_default=True, help="x264 speed preset.")
@click.option("--side-by-side", is_flag=True, help="Write IR | colourised side by side.")
@click.option("--temporal", "temporal", type=click.FloatRange(0, 1, max_open=True), default=None, is_flag=False,
              flag_value=0.6, metavar="[STRENGTH]",
              help="Steadier colour: blend each frame with the last, carried along the IR's optical flow "
                   "(STRENGTH 0-1, default 0.6 when given without a value).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames (a preview).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def run_cmd(input, output, checkpoint, engine, device, precision, rebuild, batch_size, infer_size, fps, crf, preset,
            side_by_side, temporal, max_frames, overwrite, quiet):
    """Colourise INPUT (a video, or a folder of IR frames) into OUTPUT."""
    from .api import run
    from .progress import FrameProgress

    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    progress = FrameProgress(enabled=not quiet)
    try:
        with progress:
            result = run(input, output, checkpoint=checkpoint, engine=engine, device=device, precision=precision,
                         batch_size=batch_size, infer_size=_parse_size(infer_size, allow_native=True), fps=fps,
                         crf=crf, preset=preset, side_by_side=side_by_side, overwrite=overwrite, max_frames=max_frames,
                         rebuild=rebuild, temporal=temporal,
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


# ---- bench ----------------------------------------------------------------------------------------------
def _split_list(values, convert=str, option: str = "") -> list:
    """Repeated options, each possibly comma-separated (``-b 1,4 -b 8``), as one flat list."""
    try:
        return [convert(v.strip()) for value in values for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{', '.join(values)!r} is not a comma-separated list", param_hint=option) from None


def _report(table, quiet: bool, verbose: bool, **files) -> None:
    """A bench command's ending: its table, then (with --verbose) which report files it wrote."""
    _print_table(table, quiet)
    if verbose:
        for kind, path in files.items():
            if path:
                click.echo(f"{kind}: {path}")


def _print_table(table, quiet: bool) -> None:
    from rich.console import Console

    if quiet:
        return
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)  # logs get the whole table


@contextlib.contextmanager
def _bench_errors():
    """A bench command's Ctrl-C as 'aborted' (its errors are handled where every command's are)."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("aborted; no report written", err=True)
        sys.exit(130)


@main.group("bench")
def bench_group():
    """Measure speed (fps, latency, memory) and image quality (RMSE, PSNR, SSIM, LPIPS, flicker)."""


@bench_group.command("speed")
@click.argument("input", required=False, type=click.Path())
@click.option("-c", "--checkpoint", type=click.Path(), default=None,
              help="Generator checkpoint [default: bundled model, else the default configuration with random weights].")
@click.option("--engine", "engines", multiple=True, default=("auto",), show_default=True,
              help="Engine(s) to measure; repeat or comma-separate (auto, torch, compile, onnxruntime, tensorrt).")
@click.option("-b", "--batch-size", "batch_sizes", multiple=True, default=("4",), show_default=True,
              help="Batch size(s); repeat or comma-separate, e.g. 1,4,8.")
@click.option("--frames", type=click.IntRange(min=1), default=100, show_default=True,
              help="Frames to measure (also the length of the generated clip when INPUT is omitted).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True)
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--crf", default=18, show_default=True, help="x264 quality, as in run.")
@click.option("--preset", default="veryfast", show_default=True, help="x264 speed preset, as in run.")
@click.option("--no-naive", is_flag=True, help="Skip the naive OpenCV loop baseline.")
@click.option("--cold", is_flag=True, help="Start each engine on an empty cache, as on a new machine.")
@click.option("--json", "json_path", type=click.Path(), default=None, help="Write the full report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(), default=None, help="Write a bar chart (PNG) of the figures.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
@click.option("-v", "--verbose", is_flag=True, help="Also show engine build messages and which files were written.")
def bench_speed_cmd(input, checkpoint, engines, batch_sizes, frames, device, precision, infer_size, crf, preset,
                    no_naive, cold, json_path, plot_path, quiet, verbose):
    """Frames/s of each stage and end to end, latency p50/p95/p99, peak GPU memory, against a naive loop.

    INPUT is a video file; without it a 640x480 thermal-looking clip is generated.
    """
    from .bench import speed_benchmark
    from .bench.speed import speed_table
    from .progress import FrameProgress

    sizes = _split_list(batch_sizes, int, "--batch-size")
    progress = FrameProgress(enabled=not quiet, description="bench speed")
    with _bench_errors(), progress:
        report = speed_benchmark(input, checkpoint=checkpoint, engines=_split_list(engines), batch_sizes=sizes,
                                 frames=frames, device=device, precision=precision,
                                 infer_size=_parse_size(infer_size, allow_native=True), crf=crf, preset=preset,
                                 naive=not no_naive, cold=cold, json_path=json_path, plot_path=plot_path,
                                 on_start=lambda total: progress.start(None, total), on_tick=progress.update,
                                 log=(lambda message: click.echo(message, err=True)) if verbose else None)
    _report(speed_table(report), quiet, verbose, JSON=json_path, plot=plot_path)


@bench_group.command("quality")
@click.option("--data", multiple=True, type=click.Path(),
              help="Paired folder(s): KAIST setXX/VYYY/{lwir,visible}/ or lwir/ + visible/; repeatable.")
@click.option("--video", type=click.Path(), default=None, help="An IR video registered with --reference.")
@click.option("--reference", type=click.Path(), default=None, help="The visible video matching --video frame for frame.")
@click.option("-c", "--checkpoint", "checkpoints", multiple=True, type=click.Path(),
              help="Checkpoint(s) to compare side by side; repeatable [default: bundled model].")
@click.option("--split", type=click.Choice(["all", "heldout"]), default="all", show_default=True,
              help="all pairs, or every 10th pair of each sequence (the pairs training holds out).")
@click.option("--heldout-prefix", "heldout_prefixes", multiple=True,
              help="With --split heldout: whole clips (names starting PREFIX) as training's --heldout-prefix.")
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: each checkpoint's training size].")
@click.option("--lpips-net", type=click.Choice(["alex", "vgg"]), default="alex", show_default=True,
              help="LPIPS trunk network.")
@click.option("--temporal", type=click.FloatRange(0, 1, max_open=True), default=None, is_flag=False, flag_value=0.6,
              metavar="[STRENGTH]", help="Score with run --temporal's filter on (sequences and videos).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Video pairs: compare the first N frames.")
@click.option("--engine", default="torch", show_default=True,
              help="Inference backend; eager torch by default: compiled engines would recompile for every image size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="fp32 by default, so the figures do not depend on the machine.")
@click.option("--csv", "csv_path", type=click.Path(), default=None, help="Write per-image metrics as CSV.")
@click.option("--json", "json_path", type=click.Path(), default=None, help="Write the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
@click.option("-v", "--verbose", is_flag=True, help="Also say which files were written.")
def bench_quality_cmd(data, video, reference, checkpoints, split, heldout_prefixes, infer_size, lpips_net, temporal,
                      max_frames, engine, device, precision, csv_path, json_path, quiet, verbose):
    """RMSE, PSNR, SSIM, GMSD, grid, LPIPS (and flicker, warping error on sequences) per checkpoint, beside the IR
    image as grey."""
    from .bench import quality_on_pairs, quality_on_video
    from .bench.quality import quality_table
    from .progress import FrameProgress

    if bool(data) == bool(video or reference):
        raise click.UsageError("give either --data DIR or --video IR --reference VISIBLE")
    if not data and not (video and reference):
        raise click.UsageError("--video and --reference go together")
    progress = FrameProgress(enabled=not quiet, description="bench quality")
    common = dict(infer_size=_parse_size(infer_size, allow_native=True), temporal=temporal, engine=engine, device=device,
                  precision=precision, lpips_net=lpips_net, csv_path=csv_path, json_path=json_path,
                  on_start=lambda total: progress.start(None, total), on_tick=progress.update)
    with _bench_errors(), progress:
        if data:
            report = quality_on_pairs(list(data), list(checkpoints), split=split, heldout_prefixes=heldout_prefixes,
                                      **common)
        else:
            report = quality_on_video(video, reference, list(checkpoints), max_frames=max_frames, **common)
    _report(quality_table(report), quiet, verbose, CSV=csv_path, JSON=json_path)


# ---- export ---------------------------------------------------------------------------------------------
@main.command("export")
@click.option("-c", "--checkpoint", type=click.Path(), default=None, help="Generator checkpoint [default: bundled model].")
@click.option("--format", "fmt", type=click.Choice(["onnx", "tensorrt"]), default="onnx", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(), help="The file to write (.onnx or .plan).")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 keeps instance norm in fp32.")
@click.option("--infer-size", default="352x256", show_default=True, help="TensorRT: the W x H the plan is built for.")
@click.option("-b", "--batch-size", default=4, show_default=True, help="TensorRT: the largest batch of the plan.")
@click.option("--device", default="cuda", show_default=True, help="TensorRT: the GPU to build for.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def export_cmd(checkpoint, fmt, output, precision, infer_size, batch_size, device, overwrite):
    """Export the generator as ONNX (dynamic batch, height, width) or a TensorRT plan."""
    from pathlib import Path

    from .api import load_default_model
    from .engines.export import export_model

    out = Path(output)
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise click.ClickException(f"output folder does not exist: {out.parent}")
    w, h = _parse_size(infer_size)
    model, _ = load_default_model(checkpoint)
    export_model(model, fmt, out, precision, batch=batch_size, infer_hw=(h, w), device=device,
                 log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {out} ({fmt}, {precision})")


# ---- train ----------------------------------------------------------------------------------------------
def _train_options(f):
    opts = [
        click.argument("data", nargs=-1, required=True, type=click.Path()),
        click.option("-o", "--out", default="runs/train", show_default=True, help="Folder for checkpoints, log and samples."),
        click.option("--generator", type=click.Choice(["msp", "resnet9"]), default="msp", show_default=True,
                     help="msp: the paper's multi-scale generator; resnet9: pix2pix's (ablation)."),
        click.option("--init", type=click.Path(), default=None,
                     help="Start the generator from this checkpoint (fine-tuning); the discriminators start fresh."),
        click.option("--epochs", default=200, show_default=True, help="Total epochs: half constant lr, half linear decay."),
        click.option("--batch-size", default=4, show_default=True, help="Batch size per process."),
        click.option("--scale", default=256, show_default=True,
                     help="Short side images are scaled to (aspect kept); also the model's default inference size."),
        click.option("--crop", default=256, show_default=True, help="Square training crop side, at most --scale."),
        click.option("--resize", default=None, help="Resize every pair to WxH instead (the paper: 256x256)."),
        click.option("--no-upscale", is_flag=True,
                     help="Never enlarge an image: ones with a short side below --scale are cropped at their own size."),
        click.option("--heldout-prefix", "heldout_prefixes", multiple=True,
                     help="Hold out whole clips: in a sequence with names starting with PREFIX, exactly those pairs "
                          "(repeatable) instead of every 10th."),
        click.option("--blocks", default=None,
                     help="Residual blocks per level, finest first, comma-separated [default: 2,4,12,122]."),
        click.option("--up", type=click.Choice(["tconv", "tconv-bilinear", "resize-conv"]), default="tconv",
                     show_default=True, help="Feature upsampling between levels: the paper's transposed conv, the "
                     "same initialised as bilinear, or bilinear resize + 3x3 conv."),
        click.option("--level-upsampling", type=click.Choice(["nearest", "bilinear"]), default="nearest",
                     show_default=True, help="How each level's image is enlarged before the next adds to it (paper: nearest)."),
        click.option("--lr", default=2e-4, show_default=True),
        click.option("--no-cos", is_flag=True, help="Drop the cosine loss (Table 3 ablation)."),
        click.option("--cos-centred", is_flag=True,
                     help="The cosine loss on mean-centred images (a correlation) instead of [0, 1] intensities."),
        click.option("--no-tvd", is_flag=True, help="Drop the TVD loss (Table 3 ablation)."),
        click.option("--no-perceptual", is_flag=True, help="Drop the VGG19 perceptual loss (no ImageNet weights needed)."),
        click.option("--vgg-weights", type=click.Path(), default=None, help="Path of vgg19-dcbb9e9d.pth."),
        click.option("--d-scales", default=2, show_default=True, type=click.IntRange(min=1),
                     help="Scales of each multi-scale PatchGAN discriminator (pix2pixHD: 2)."),
        click.option("--d-layers", default=3, show_default=True, type=click.IntRange(min=1),
                     help="Strided conv layers per discriminator scale (3: 5 conv layers in all, pix2pixHD)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
                     help="auto: bf16 on CPUs with AMX/AVX512-BF16 and on CUDA GPUs that support it (else fp16 with loss scaling), else fp32."),
        click.option("--compile/--no-compile", "compile_", default=False, show_default=True, help="torch.compile the networks."),
        click.option("--checkpoint-every", default=10, show_default=True, help="Keep a generator checkpoint every N epochs."),
        click.option("--eval-every", default=1, show_default=True,
                     help="Evaluate on the held-out pairs (and write a sample grid) every N epochs, and at the end."),
        click.option("--checkpoint-minutes", default=5.0, show_default=True, help="Save the resumable state this often."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--seed", default=0, show_default=True),
        click.option("--workers", default=2, show_default=True, help="Data-loading worker processes."),
        click.option("--max-epochs-this-run", type=int, default=None, help="Stop (resumably) after this many epochs."),
        click.option("--max-steps", type=click.IntRange(min=1), default=None,
                     help="End the run after N steps in all, mid-epoch if need be (equal-budget ablations); "
                          "the generator is written to OUT/last.pt."),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _train(data, out, generator, init, epochs, batch_size, scale, crop, resize, no_upscale, heldout_prefixes, blocks, up,
           level_upsampling, lr, no_cos, cos_centred, no_tvd, no_perceptual, vgg_weights,
           d_scales, d_layers, device, precision, compile_, checkpoint_every, eval_every, checkpoint_minutes, resume, seed, workers,
           max_epochs_this_run, max_steps, quiet):
    from .train import TrainConfig, train

    generator_config = {}
    if generator == "msp":
        # only what differs from the default, so a run's config (and --resume's check) names its deviations
        generator_config = {k: v for k, v in (("up", up), ("level_upsampling", level_upsampling))
                            if v != {"up": "tconv", "level_upsampling": "nearest"}[k]}
        if blocks:
            generator_config["blocks"] = _split_list([blocks], int, "--blocks")
    elif blocks or up != "tconv" or level_upsampling != "nearest":
        raise click.UsageError("--blocks, --up and --level-upsampling apply to the msp generator only")
    try:
        cfg = TrainConfig(data=list(data), out=out, generator=generator, generator_config=generator_config, init=init,
                          epochs=epochs, batch_size=batch_size, upscale=not no_upscale,
                          heldout_prefixes=list(heldout_prefixes), cos_centred=cos_centred,
                          scale=scale, crop=crop, resize=_parse_size(resize), lr=lr, cos=not no_cos, tvd=not no_tvd,
                          perceptual=not no_perceptual, vgg_weights=vgg_weights, num_d=d_scales, d_layers=d_layers, device=device, precision=precision,
                          compile=compile_, checkpoint_every=checkpoint_every, eval_every=eval_every,
                          checkpoint_minutes=checkpoint_minutes,
                          seed=seed, workers=workers, max_epochs_this_run=max_epochs_this_run, max_steps=max_steps, quiet=quiet)
        train(cfg, resume=resume)
    except KeyboardInterrupt:
        click.echo(f"interrupted; state saved in {out}/state.pt, continue with --resume", err=True)
        sys.exit(130)


@main.command("train")
@_train_options
def train_cmd(**kwargs):
    """Train the generator on paired IR/visible folders (KAIST layout or lwir/ + visible/)."""
    _train(**kwargs)


@click.command(cls=_Command)
@_train_options
def train_command(**kwargs):
    """Train the generator (entry point for torchrun: python -m ir2vis_stream.train)."""
    _one_line_warnings()
    _train(**kwargs)


if __name__ == "__main__":
    main()
