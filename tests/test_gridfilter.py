"""The grid filter: it takes out a pattern that repeats every 8 pixels and leaves what does not repeat."""

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import ir2vis_stream as irs
from click.testing import CliRunner

from conftest import GreyIdentity, make_pairs, make_video, tiny_generator
from ir2vis_stream.api import load_engine
from ir2vis_stream.checkpoint import save_checkpoint
from ir2vis_stream.cli import main
from ir2vis_stream.engines import TorchEngine
from ir2vis_stream.gridfilter import grid_period, remove_grid
from ir2vis_stream.metrics import grid_energy
from ir2vis_stream.model import GeneratorConfig, MultiScaleGenerator
from ir2vis_stream.processor import FrameProcessor


def scene(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w): a ramp, slow waves and a few sharp blobs and edges at no particular phase; nothing periodic
    in 8 pixels."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    img = 0.004 * x - 0.003 * y + 0.2 * torch.sin(x / 13.0 + y / 17.0)
    for _ in range(6):
        cy, cx = torch.rand(2, generator=g) * torch.tensor([h, w])
        img = img + 0.5 * torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 6.0)
    img = img + 0.3 * (x > 37.3).float() * (y > 51.6).float()  # a corner: sharp edges
    return torch.stack([img, 0.5 * img, -img])[None]


def tiled_grid(h: int = 96, w: int = 128, amplitude: float = 0.1, seed: int = 1) -> torch.Tensor:
    """(1, 3, h, w): one random 8 x 8 tile per channel, zero mean, repeated."""
    tile = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(seed))
    tile = amplitude * (tile - tile.mean(dim=(1, 2), keepdim=True)) / tile.std()
    return tile.repeat(1, h // 8 + 1, w // 8 + 1)[None, :, :h, :w]


def test_a_tiled_pattern_is_taken_out():
    clean, grid = scene(), tiled_grid()
    out = remove_grid(clean + grid)
    err = (out - clean).abs()
    assert err.mean() < 0.1 * grid.abs().mean()  # the pattern, not the scene, went
    assert err[..., 8:-8, 8:-8].max() < 0.5 * grid.abs().max()
    energy = lambda t: grid_energy(t.mul(100), (128, 96)).item()  # noqa: E731
    assert energy(clean + grid) > 20 * energy(clean)
    assert energy(out) < 2 * energy(clean)


def test_what_does_not_repeat_is_kept():
    clean = scene(seed=3)
    assert (remove_grid(clean) - clean).abs().mean() < 0.05 * tiled_grid().abs().mean()
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(80.0), indexing="ij")
    ramp = (0.01 * x + 0.02 * y).expand(1, 3, -1, -1)
    assert torch.allclose(remove_grid(ramp), ramp, atol=1e-5)  # a ramp is not a grid, at the borders neither


def test_a_straight_edge_leaves_no_echoes():
    """A vertical edge sits at one phase in every row: a mean over the periods around it would take a fifth
    of it for grid and subtract that 8 and 16 pixels away; the median does not."""
    step = (torch.arange(96.0) >= 45).float().expand(1, 3, 64, -1)
    assert (remove_grid(step) - step).abs().max() < 0.02


@pytest.mark.parametrize("h, w", [(99, 133), (96, 128), (24, 300)])
def test_any_size_batch_and_dtype(h, w):
    """Sides that are not a multiple of the period are filtered to their edge; frames of a batch are filtered
    alone; a bf16 output comes back in float32; the input is not touched."""
    clean = torch.cat([scene(h, w, seed=1), scene(h, w, seed=2)])
    y = (clean + tiled_grid(h, w)).to(torch.bfloat16)
    before = y.clone()
    out = remove_grid(y)
    assert out.shape == y.shape and out.dtype == torch.float32 and torch.equal(y, before)
    assert (out - clean).abs().mean() < 0.15 * tiled_grid(h, w).abs().mean()
    edge = (out - clean)[..., -(h % 8 or 8):, :].abs().mean()  # the last (partial) period of rows
    assert edge < 0.3 * tiled_grid(h, w).abs().mean()
    torch.testing.assert_close(out[1:], remove_grid(y[1:]))


@pytest.mark.parametrize("h, w", [(8, 8), (16, 300), (100, 16)])
def test_fewer_than_three_periods_are_left_alone(h, w):
    y = scene(112, 304)[..., :h, :w] + tiled_grid(112, 304)[..., :h, :w]
    assert torch.equal(remove_grid(y), y)


def test_grid_period_of_a_model():
    assert grid_period(MultiScaleGenerator()) == 8  # the paper's: three transposed convs
    assert grid_period(MultiScaleGenerator(), enabled=False) is None
    assert grid_period(MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1)))) == 4
    assert grid_period(MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1), up="tconv-bilinear"))) == 2
    assert grid_period(MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1), up="resize-conv"))) is None
    assert grid_period(GreyIdentity()) is None


class Gridded(nn.Module):
    """A flat grey 'generator' output with an 8-pixel tile on it, at whatever size it is run."""

    in_channels = 1
    size_multiple = 1

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.zeros(n, 3, h, w) + tiled_grid(h, w, amplitude=0.3)


@pytest.mark.parametrize("on_device", [False, True])
def test_the_frame_path_filters_at_inference_size(on_device):
    engine = TorchEngine(Gridded(), torch.device("cpu"), "fp32")
    grey = [np.zeros((96, 128), np.uint8)]
    plain = FrameProcessor(engine, (64, 48), on_device=on_device)(grey)[0].astype(float)
    filtered = FrameProcessor(engine, (64, 48), grid_period=8, on_device=on_device)(grey)[0].astype(float)
    assert plain.std() > 10 and filtered.std() < 0.1 * plain.std()


def frames_of(folder) -> np.ndarray:
    return np.stack([cv2.imread(str(f)) for f in sorted(folder.iterdir())])


def test_run_filters_a_tconv_model_unless_told_not_to(tmp_path):
    ck = save_checkpoint(tmp_path / "g.pt", tiny_generator(), {"train_size": {"short_side": 32}})
    assert load_engine(ck, engine="torch", precision="fp32").grid_period == 8
    assert load_engine(ck, engine="torch", precision="fp32", grid_filter=False).grid_period is None
    clip = make_video(tmp_path / "in.mp4", frames=2, width=64, height=48)
    for name, on in (("on", True), ("off", False)):
        irs.run(clip, tmp_path / name, checkpoint=ck, engine="torch", precision="fp32", grid_filter=on)
    on, off = frames_of(tmp_path / "on"), frames_of(tmp_path / "off")
    assert on.shape == off.shape and not np.array_equal(on, off)
    # the command line's --no-grid-filter reaches run(): the same frames as grid_filter=False
    result = CliRunner().invoke(main, ["run", str(clip), "-o", str(tmp_path / "cli"), "-c", str(ck), "--engine",
                                       "torch", "--precision", "fp32", "--no-grid-filter", "-q"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(frames_of(tmp_path / "cli"), off)


@pytest.mark.parametrize("command", ["live", "bench speed", "bench quality"])
def test_every_command_that_colourises_filters_unless_told_not_to(command, tmp_path, monkeypatch, tiny_checkpoint):
    """live and both benches run the frame path as run does (bench speed: its warm-up, stages and end-to-end
    run): with the filter for a transposed-conv model, and without it after --no-grid-filter."""
    import ir2vis_stream.processor as processor

    calls, batches = [], []  # filter calls, engine calls through the frame path
    monkeypatch.setattr(processor, "remove_grid", lambda y, period: calls.append(period) or remove_grid(y, period))
    colourise = processor.FrameProcessor._colourise
    monkeypatch.setattr(processor.FrameProcessor, "_colourise", lambda self, x: batches.append(1) or colourise(self, x))
    clip = make_video(tmp_path / "in.mp4", frames=4, width=64, height=48)
    args = {"live": ["live", "--source", clip, "--no-window", "-o", tmp_path / "rec.mp4", "--max-frames", "3"],
            "bench speed": ["bench", "speed", clip, "-b", "2", "--frames", "4", "--no-naive", "-q"],
            "bench quality": ["bench", "quality", "--data", make_pairs(tmp_path / "pairs", n=2), "-q"]}[command]
    args = [str(a) for a in args] + ["-c", str(tiny_checkpoint), "--engine", "torch", "--precision", "fp32"]
    for flag, on in (([], True), (["--no-grid-filter"], False)):
        calls.clear(), batches.clear()
        result = CliRunner().invoke(main, args + flag + (["--overwrite"] if command == "live" else []))
        assert result.exit_code == 0, result.output
        assert batches and calls == ([8] * len(batches) if on else [])  # every batch of every stage, or none
