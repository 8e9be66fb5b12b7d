"""Options and helpers that several commands share."""

from __future__ import annotations

import contextlib
import functools
import sys

import click

from ..engines import ENGINES


def parse_size(value: str | None, allow_native: bool = False):
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


def engine_options(f):
    """--engine, --device, --precision, --rebuild and --no-background-build, for every command that runs the model."""
    opts = [
        click.option("--engine", type=click.Choice(["auto", *ENGINES]), default="auto", show_default=True,
                     help="Inference backend; auto picks by a fixed rule (README: Engines) and says why."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
                     show_default=True, help="auto: bf16 on CUDA GPUs that support it (else fp16), bf16 on CPUs with AMX/AVX512-BF16, else fp32."),
        click.option("--rebuild", is_flag=True, help="Rebuild cached ONNX exports, TensorRT plans and compile packages."),
        click.option("--no-background-build", "no_background_build", is_flag=True,
                     help="Start no background build of the compiled CPU engine (it outlives the command; for scripts "
                          "and containers); also IR2VIS_STREAM_NO_BACKGROUND_BUILD=1. Without a cached package, auto "
                          "then picks the next engine."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def background_build_notice() -> None:
    """One line on stderr for each compile-package build this process started that outlives it."""
    from ..engines.aot import running_builds
    from ..engines.torch_engine import NO_BACKGROUND_BUILD_ENV

    for build in running_builds():
        click.echo(f"note: the compiled engine for this CPU goes on building in the background after this command "
                   f"(pid {build.process.pid}, lowest priority, 3-5 minutes on 2 cores, once; log: {build.log_path}); "
                   f"later runs start with it. --no-background-build or {NO_BACKGROUND_BUILD_ENV}=1 skips it.", err=True)


def grid_filter_option(f):
    """``--grid-filter/--no-grid-filter``, for every command that colourises frames (``gridfilter.py``)."""
    return click.option("--grid-filter/--no-grid-filter", default=True, show_default=True,
                        help="Take the model's up-sampling grid (8 pixels) out of its output, for models that "
                             "leave one.")(f)


def temporal_option(f):
    """``--temporal [STRENGTH]`` / ``--no-temporal``: the flow-guided temporal filter (``temporal.py``). Neither: ``auto``,
    on (0.6) where the frame path post-processes on the host (the CPU), off on a GPU (``processor.resolve_temporal``)."""
    @functools.wraps(f)
    def command(*args, temporal, no_temporal, **kwargs):
        if no_temporal and temporal is not None:
            raise click.UsageError("--temporal and --no-temporal exclude each other")
        return f(*args, temporal=None if no_temporal else "auto" if temporal is None else temporal, **kwargs)

    command = click.option("--no-temporal", is_flag=True, help="Turn the temporal filter off (also on a CPU).")(command)
    return click.option("--temporal", type=click.FloatRange(0, 1, max_open=True), default=None, is_flag=False,
                        flag_value=0.6, metavar="[STRENGTH]",
                        help="Steadier colour: blend each frame with the last, carried along the IR's optical flow "
                             "(STRENGTH 0-1; 0.6 when given without a value). Default: on (0.6) on a CPU, where it "
                             "runs in the otherwise idle encode thread; off on a GPU.")(command)


def split_list(values, convert=str, option: str = "") -> list:
    """Repeated options, each possibly comma-separated (``-b 1,4 -b 8``), as one flat list."""
    try:
        return [convert(v.strip()) for value in values for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{', '.join(values)!r} is not a comma-separated list", param_hint=option) from None


def write_report(table, quiet: bool, verbose: bool, **files) -> None:
    """A bench command's ending: its table, then (with --verbose) which report files it wrote."""
    print_table(table, quiet)
    if verbose:
        for kind, path in files.items():
            if path:
                click.echo(f"{kind}: {path}")


def print_table(table, quiet: bool) -> None:
    from rich.console import Console

    if quiet:
        return
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)  # logs get the whole table


@contextlib.contextmanager
def bench_errors():
    """A bench command's Ctrl-C as 'aborted' (its errors are handled where every command's are)."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("aborted; no report written", err=True)
        sys.exit(130)
