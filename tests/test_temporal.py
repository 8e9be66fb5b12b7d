"""run --temporal: the flow-guided filter steadies what flickers, follows what moves, and shows real changes at once."""

import cv2
import numpy as np
import pytest
import torch

import ir2vis_stream as irs
from conftest import make_video, read_video
from ir2vis_stream import metrics
from ir2vis_stream.temporal import TemporalFilter


def scene(h=96, w=160, seed=0):
    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)), (0, 0), 3)
    return ((g - g.min()) / np.ptp(g) * 220 + 20).astype(np.uint8)


def colour(ir):
    return np.stack([ir, 255 - ir, ir // 2], axis=2)


def test_static_scene_flicker_is_damped():
    ir = scene()
    rng = np.random.default_rng(1)
    f = TemporalFilter(0.6)
    raw, out = metrics.FlickerMeter(), metrics.FlickerMeter()
    for _ in range(20):
        noisy = np.clip(colour(ir).astype(int) + rng.integers(-10, 11, (1, 1, 3)), 0, 255).astype(np.uint8)  # a colour cast that changes each frame
        raw.add(torch.from_numpy(np.moveaxis(noisy, 2, 0).copy()))
        out.add(torch.from_numpy(np.moveaxis(f(ir, noisy), 2, 0).copy()))
    # an exponential average with a = 0.6 passes sqrt((1 - a) / (1 + a)) = 0.5 of white noise's frame-to-frame change
    assert out.value < 0.6 * raw.value


def test_motion_is_followed_without_ghosts():
    big = scene(96, 200)
    rng = np.random.default_rng(2)
    clean, noisy = TemporalFilter(0.6), TemporalFilter(0.6)
    errors, raw_err, filtered_err = [], [], []
    for t in range(10):  # the camera pans 3 px a frame; the model's output moves with the IR
        ir = np.ascontiguousarray(big[:, 3 * t: 3 * t + 160])
        errors.append(np.abs(clean(ir, colour(ir)).astype(int) - colour(ir)).mean())
        cast = np.clip(colour(ir).astype(int) + rng.integers(-10, 11, (1, 1, 3)), 0, 255).astype(np.uint8)
        raw_err.append(np.abs(cast.astype(int) - colour(ir)).mean())
        filtered_err.append(np.abs(noisy(ir, cast).astype(int) - colour(ir)).mean())
    assert max(errors) < 1.5  # what the flow carries over is what the new frame shows: no ghosts
    # and it is carried over: while panning, the filter still averages the flicker away
    assert np.mean(filtered_err[3:]) < 0.75 * np.mean(raw_err[3:])


def test_a_real_change_shows_at_once():
    ir = scene()
    f = TemporalFilter(0.6)
    for _ in range(5):
        f(ir, colour(ir))
    lit = ir.copy()
    lit[30:60, 50:90] = 250  # something hot appears
    out = f(lit, colour(lit))
    assert np.abs(out[30:60, 50:90].astype(int) - colour(lit)[30:60, 50:90]).max() <= 1
    f.reset()  # a new sequence starts unfiltered
    other = colour(scene(seed=5))
    assert np.array_equal(f(scene(seed=5), other), other)


def test_run_with_temporal_keeps_frames_and_steadies_the_output(tmp_path):
    """Through the pipeline, with a 'model' that adds a colour cast changing each frame to a still scene."""
    import torch

    class Flickering(torch.nn.Module):
        in_channels, size_multiple = 1, 1

        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            cast = torch.tensor([0.08, -0.08, 0.04]).view(1, 3, 1, 1) * (1 if self.calls % 2 else -1)
            return (x.expand(-1, 3, -1, -1) * 0.8 + cast).clamp(-1, 1)

    still = tmp_path / "still"
    still.mkdir()
    for i in range(10):
        cv2.imwrite(str(still / f"f{i:02d}.png"), scene(48, 64))
    plain, steady, default = tmp_path / "plain.mp4", tmp_path / "steady.mp4", tmp_path / "default.mp4"
    irs.run(still, plain, model=Flickering(), batch_size=1, crf=0, temporal=None)
    result = irs.run(still, steady, model=Flickering(), batch_size=1, crf=0, temporal=0.6)
    a, b = (np.stack(read_video(p)[0]).astype(float) for p in (plain, steady))
    assert result.frames == len(b) == 10
    change = lambda v: np.abs(np.diff(v, axis=0)).mean()  # noqa: E731
    assert change(b) < 0.5 * change(a)
    # the first frame has nothing to blend with
    assert np.abs(a[0] - b[0]).mean() < 0.5
    # on a CPU the filter is run's default, at 0.6
    irs.run(still, default, model=Flickering(), batch_size=1, crf=0)
    np.testing.assert_array_equal(np.stack(read_video(default)[0]), np.stack(read_video(steady)[0]))


def test_the_temporal_filter_is_on_by_default_where_post_processing_runs_on_the_host():
    from ir2vis_stream.processor import DEFAULT_TEMPORAL, resolve_temporal

    assert resolve_temporal("auto", torch.device("cpu")) == DEFAULT_TEMPORAL == 0.6
    assert resolve_temporal("auto", torch.device("cuda", 0)) is None  # the GPU path keeps frames on the device
    assert resolve_temporal(None, torch.device("cpu")) is None and resolve_temporal(0.0, torch.device("cpu")) is None
    assert resolve_temporal(0.3, torch.device("cuda")) == 0.3  # asked for, it runs anywhere
    with pytest.raises(ValueError, match="temporal is a strength"):
        resolve_temporal("on", torch.device("cpu"))


def test_bench_quality_scores_with_the_filter(tmp_path):
    from conftest import tiny_generator
    from ir2vis_stream.bench import quality_on_video
    from ir2vis_stream.checkpoint import save_checkpoint

    ck = save_checkpoint(tmp_path / "tiny.pt", tiny_generator(0), {"train_size": {"short_side": 32}})
    ir = make_video(tmp_path / "ir.mp4", frames=6)
    off = quality_on_video(ir, ir, [ck], engine="torch", device="cpu", temporal=None)
    on = quality_on_video(ir, ir, [ck], engine="torch", device="cpu", temporal=0.6)
    assert on.source["temporal"] == 0.6 and off.source["temporal"] is None
    default = quality_on_video(ir, ir, [ck], engine="torch", device="cpu")  # run's default on a CPU: on
    assert default.source["temporal"] == 0.6 and default.models[1].psnr == on.models[1].psnr
    assert on.models[1].psnr != off.models[1].psnr  # the filter ran on the model's frames
    assert on.models[0].psnr == off.models[0].psnr  # and not on the IR baseline


def test_the_filter_takes_frames_that_are_views_into_larger_arrays():
    """A crop of a larger frame is not contiguous; OpenCV 5's DIS flow refuses such arrays unless copied."""
    big = scene(96, 200)
    f = TemporalFilter(0.6)
    for t in range(3):
        ir = big[:, 3 * t: 3 * t + 160]  # a view, as a caller's crop would be
        assert not ir.flags.c_contiguous
        out = f(ir, colour(ir))
        assert out.shape == (96, 160, 3)
