"""The one frame path: its three steps by hand, and proof that run, live and both benches go through it."""

import threading

import numpy as np
import pytest
import torch

import ir2vis_stream as irs
from conftest import GreyIdentity, make_frame, make_pairs, make_video
from ir2vis_stream.bench import quality_on_pairs, speed_benchmark
from ir2vis_stream.engines import TorchEngine
from ir2vis_stream.live import LiveSession
from ir2vis_stream.model import MultiScaleGenerator
from ir2vis_stream.processor import FrameProcessor, resolve_infer_size


class Swap(torch.nn.Module):
    """Grey in, (x, -x, x) out: colour channels that differ, so a channel mix-up shows."""

    in_channels = 1
    size_multiple = 1

    def forward(self, x):
        return torch.cat([x, -x, x], dim=1)


def processor(**kw) -> FrameProcessor:
    return FrameProcessor(TorchEngine(Swap(), torch.device("cpu"), "fp32"), **kw)


def test_three_steps_by_hand():
    frames = processor(infer_size=(32, 24))
    grey = make_frame(3, 64, 48)
    p = frames.prepare(grey)
    assert p.small.shape == (24, 32) and p.size == (64, 48) and p.full is None
    rgb = frames.infer([p.small, p.small])
    assert rgb.shape == (2, 24, 32, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, ..., 0], p.small)  # uint8 -> [-1, 1] -> uint8 is exact
    np.testing.assert_array_equal(rgb[0, ..., 1], 255 - p.small)
    out = frames.finish(p, rgb[0])
    assert out.shape == (48, 64, 3) and out.flags.c_contiguous
    # calling the processor is the three steps
    np.testing.assert_array_equal(frames([grey])[0], out)


def test_side_by_side_and_mixed_sizes_each_get_their_own_inference_size():
    frames = processor(infer_size={"short_side": 16}, side_by_side=True)
    assert frames.size_for(64, 48) == resolve_infer_size({"short_side": 16}, 64, 48) == (24, 16)
    assert frames.size_for(48, 64) == (16, 24)
    a, b = make_frame(0, 64, 48), make_frame(1, 48, 64)
    out_a, out_b = frames([a])[0], frames([b])[0]
    assert out_a.shape == (48, 128, 3) and out_b.shape == (64, 96, 3)
    assert frames.output_size(64, 48) == (128, 48)
    np.testing.assert_array_equal(out_a[:, :64, 1], a)  # the IR on the left, unchanged


def test_temporal_filter_runs_in_finish_and_reset_forgets():
    frames = processor(infer_size="native", temporal=0.5)
    grey = make_frame(0, 64, 48)
    first = frames.prepare(grey)
    frames.finish(first, np.zeros((48, 64, 3), np.uint8))
    # the same still scene again with a white output: blended with the black one before it
    assert 100 < frames.finish(frames.prepare(grey), np.full((48, 64, 3), 255, np.uint8)).mean() < 155
    frames.reset()
    assert frames.finish(frames.prepare(grey), np.full((48, 64, 3), 255, np.uint8)).mean() == 255


# ---- no other copy: every engine call comes from FrameProcessor.infer ------------------------------------------
class _Guard:
    """Counts the processor's engine calls and fails any engine call made anywhere else."""

    def __init__(self, monkeypatch):
        self.inside = threading.local()
        self.calls = 0
        infer = FrameProcessor.infer
        guard = self

        def guarded_infer(self, smalls):
            guard.inside.on = True
            try:
                guard.calls += 1
                return infer(self, smalls)
            finally:
                guard.inside.on = False

        def guarded(forward):
            def guarded_forward(self, x):
                if not getattr(guard.inside, "on", False):
                    raise AssertionError("the engine was called outside FrameProcessor.infer")
                return forward(self, x)
            return guarded_forward

        monkeypatch.setattr(FrameProcessor, "infer", guarded_infer)
        for model in (GreyIdentity, MultiScaleGenerator):
            monkeypatch.setattr(model, "forward", guarded(model.forward))


def test_run_live_and_both_benches_colourise_through_the_processor(tmp_path, monkeypatch, tiny_checkpoint):
    guard = _Guard(monkeypatch)
    clip = make_video(tmp_path / "in.mp4", frames=6)
    irs.run(clip, tmp_path / "out", model=GreyIdentity(), engine="torch", precision="fp32", batch_size=2)
    assert guard.calls == 3
    stats = LiveSession(clip, TorchEngine(GreyIdentity(), torch.device("cpu"), "fp32")).run(max_seconds=20)
    assert stats.shown == 6 and guard.calls == 3 + 1 + 6  # one warm-up call, then one per frame
    before = guard.calls
    speed_benchmark(clip, model=GreyIdentity(), engines=("torch",), batch_sizes=(2,), frames=6, precision="fp32",
                    naive=False)
    assert guard.calls > before
    before = guard.calls
    quality_on_pairs(make_pairs(tmp_path / "pairs", n=3), [tiny_checkpoint], lpips_random_backbone=True)
    assert guard.calls == before + 3


def test_the_guard_catches_a_copy(monkeypatch):
    """The test above can fail: an engine called directly, as the old copies did, is caught."""
    _Guard(monkeypatch)
    engine = TorchEngine(GreyIdentity(), torch.device("cpu"), "fp32")
    with pytest.raises(AssertionError, match="outside FrameProcessor.infer"):
        engine(torch.zeros(1, 1, 8, 8))
