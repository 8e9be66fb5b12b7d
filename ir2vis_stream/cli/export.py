"""``export``: the model as ONNX or a TensorRT plan."""

from __future__ import annotations

import click

from .app import main
from .options import parse_size


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

    from ..api import load_default_model
    from ..engines.export import export_model

    out = Path(output)
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise click.ClickException(f"output folder does not exist: {out.parent}")
    w, h = parse_size(infer_size)
    model, _ = load_default_model(checkpoint)
    export_model(model, fmt, out, precision, batch=batch_size, infer_hw=(h, w), device=device,
                 log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {out} ({fmt}, {precision})")
