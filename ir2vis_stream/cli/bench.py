"""``bench speed`` and ``bench quality``."""

from __future__ import annotations

import click

from .app import main
from .options import bench_errors, grid_filter_option, parse_size, split_list, temporal_option, write_report
from ..engines import ENGINES


@main.group("bench")
def bench_group():
    """Measure speed (fps, latency, memory) and image quality (RMSE, PSNR, SSIM, LPIPS, flicker)."""


@bench_group.command("speed")
@click.argument("input", required=False, type=click.Path())
@click.option("-c", "--checkpoint", type=click.Path(), default=None,
              help="Generator checkpoint [default: bundled model, else the default configuration with random weights].")
@click.option("--engine", "engines", multiple=True, default=("auto",), show_default=True,
              help="Engine(s) to measure; repeat or comma-separate (auto, " + ", ".join(ENGINES) + ").")
@click.option("-b", "--batch-size", "batch_sizes", multiple=True, default=("4",), show_default=True,
              help="Batch size(s); repeat or comma-separate, e.g. 1,4,8.")
@click.option("--frames", type=click.IntRange(min=1), default=100, show_default=True,
              help="Frames to measure (also the length of the generated clip when INPUT is omitted).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True)
@click.option("--infer-size", default=None, help="WxH, or 'native' [default: the checkpoint's training size].")
@click.option("--crf", default=18, show_default=True, help="x264 quality, as in run.")
@click.option("--preset", default="veryfast", show_default=True, help="x264 speed preset, as in run.")
@grid_filter_option
@click.option("--no-naive", is_flag=True, help="Skip the naive OpenCV loop baseline.")
@click.option("--cold", is_flag=True, help="Start each engine on an empty cache, as on a new machine.")
@click.option("--json", "json_path", type=click.Path(), default=None, help="Write the full report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(), default=None, help="Write a bar chart (PNG) of the figures.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
@click.option("-v", "--verbose", is_flag=True, help="Also show engine build messages and which files were written.")
def bench_speed_cmd(input, checkpoint, engines, batch_sizes, frames, device, precision, infer_size, crf, preset,
                    grid_filter, no_naive, cold, json_path, plot_path, quiet, verbose):
    """Frames/s of each stage and end to end, latency p50/p95/p99, peak GPU memory, against a naive loop.

    INPUT is a video file; without it a 640x480 thermal-looking clip is generated.
    """
    from ..bench import speed_benchmark
    from ..bench.speed import speed_table
    from ..progress import FrameProgress

    sizes = split_list(batch_sizes, int, "--batch-size")
    progress = FrameProgress(enabled=not quiet, description="bench speed")
    with bench_errors(), progress:
        report = speed_benchmark(input, checkpoint=checkpoint, engines=split_list(engines), batch_sizes=sizes,
                                 frames=frames, device=device, precision=precision,
                                 infer_size=parse_size(infer_size, allow_native=True), crf=crf, preset=preset,
                                 naive=not no_naive, cold=cold, grid_filter=grid_filter, json_path=json_path,
                                 plot_path=plot_path,
                                 on_start=lambda total: progress.start(None, total), on_tick=progress.update,
                                 log=(lambda message: click.echo(message, err=True)) if verbose else None)
    write_report(speed_table(report), quiet, verbose, JSON=json_path, plot=plot_path)


@bench_group.command("quality")
@click.option("--data", multiple=True, type=click.Path(),
              help="Paired folder(s): KAIST setXX/VYYY/{lwir,visible}/ or lwir/ + visible/; repeatable.")
@click.option("--protocol", type=click.Choice(["full", "legacy"]), default=None,
              help="A named protocol over the folders and video under --data-root (full: held-out 640x480 pairs "
                   "and the eval video, each at its own size, msrs 170x128 and roadscene apart; see docs/pictures.md).")
@click.option("--data-root", type=click.Path(), default=None, help="With --protocol: the folder holding its data.")
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
@temporal_option
@grid_filter_option
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
def bench_quality_cmd(data, protocol, data_root, video, reference, checkpoints, split, heldout_prefixes, infer_size,
                      lpips_net, temporal, grid_filter, max_frames, engine, device, precision, csv_path, json_path,
                      quiet, verbose):
    """RMSE, PSNR, SSIM, GMSD, grid, LPIPS (and flicker, warping error on sequences) per checkpoint, beside the IR
    image as grey."""
    from ..bench import quality_on_pairs, quality_on_video
    from ..bench.quality import quality_on_protocol, quality_table
    from ..progress import FrameProgress

    if protocol or data_root:
        if not (protocol and data_root) or data or video or reference or csv_path:
            raise click.UsageError("--protocol and --data-root go together, without --data, --video, --reference or --csv")
        progress = FrameProgress(enabled=not quiet, description=f"bench quality ({protocol})")
        with bench_errors(), progress:
            reports = quality_on_protocol(protocol, data_root, list(checkpoints), json_path=json_path,
                                          infer_size=parse_size(infer_size, allow_native=True), temporal=temporal,
                                          grid_filter=grid_filter, engine=engine, device=device, precision=precision,
                                          lpips_net=lpips_net, max_frames=max_frames,
                                          on_start=lambda total: progress.start(None, total), on_tick=progress.update)
        for report in reports.values():
            write_report(quality_table(report), quiet, False)
        write_report(None, True, verbose, JSON=json_path)
        return
    if bool(data) == bool(video or reference):
        raise click.UsageError("give either --data DIR or --video IR --reference VISIBLE")
    if not data and not (video and reference):
        raise click.UsageError("--video and --reference go together")
    progress = FrameProgress(enabled=not quiet, description="bench quality")
    common = dict(infer_size=parse_size(infer_size, allow_native=True), temporal=temporal, grid_filter=grid_filter,
                  engine=engine, device=device,
                  precision=precision, lpips_net=lpips_net, csv_path=csv_path, json_path=json_path,
                  on_start=lambda total: progress.start(None, total), on_tick=progress.update)
    with bench_errors(), progress:
        if data:
            report = quality_on_pairs(list(data), list(checkpoints), split=split, heldout_prefixes=heldout_prefixes,
                                      **common)
        else:
            report = quality_on_video(video, reference, list(checkpoints), max_frames=max_frames, **common)
    write_report(quality_table(report), quiet, verbose, CSV=csv_path, JSON=json_path)
