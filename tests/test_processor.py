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


# ---- no other copy: every engine call comes from FrameProcessor.submit ------------------------------------------
class _Guard:
    """Counts the processor's engine calls and fails any engine call made anywhere else."""

    def __init__(self, monkeypatch):
        self.inside = threading.local()
        self.calls = 0
        submit = FrameProcessor.submit
        guard = self

        def guarded_submit(self, smalls):
            guard.inside.on = True
            try:
                guard.calls += 1
                return submit(self, smalls)
            finally:
                guard.inside.on = False

        def guarded(forward):
            def guarded_forward(self, x):
                if not getattr(guard.inside, "on", False):
                    raise AssertionError("the engine was called outside FrameProcessor.submit")
                return forward(self, x)
            return guarded_forward

        monkeypatch.setattr(FrameProcessor, "submit", guarded_submit)
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
    with pytest.raises(AssertionError, match="outside FrameProcessor.submit"):
        engine(torch.zeros(1, 1, 8, 8))


# ---- the device path (on a GPU by default; here the same torch code on the CPU) ---------------------------------
def host_and_device(**kw) -> tuple[FrameProcessor, FrameProcessor]:
    return processor(on_device=False, **kw), processor(on_device=True, **kw)


@pytest.mark.parametrize("kw", [dict(infer_size=(32, 24)), dict(infer_size=(96, 72)), dict(infer_size="native"),
                                dict(infer_size=(32, 24), side_by_side=True)])
def test_device_path_matches_the_host_path(kw):
    """Resizing down (area) or up (bilinear), the engine and side-by-side on the device give the host's frames
    to within the two resizers' rounding."""
    host, device = host_and_device(**kw)
    grays = [make_frame(i, 64, 48) for i in range(3)]
    a, b = host(grays), device(grays)
    assert device.on_device and not host.on_device and device.in_flight == 2 and host.in_flight == 1
    for x, y in zip(a, b):
        assert x.shape == y.shape and y.dtype == np.uint8 and y.flags.c_contiguous
        diff = np.abs(x.astype(int) - y)
        assert diff.max() <= 2 and diff.mean() < 0.5
    colour = b[0][:, -64:].astype(int)  # channels not mixed up: (x, -x, x) in, to resizing's rounding
    assert np.abs(colour[..., 1] - (255 - colour[..., 0])).max() <= 1 and (colour[..., 2] == colour[..., 0]).all()


def test_device_path_hands_the_sink_i420_planes_in_its_standard():
    import av

    from ir2vis_stream.colour import BT601, VideoFormat

    host, device = host_and_device(infer_size=(32, 24))
    host.output = device.output = VideoFormat("yuv420p", BT601)
    grey = make_frame(2, 64, 48)
    a, b = host([grey])[0], device([grey])[0]
    assert isinstance(b, av.VideoFrame) and b.format.name == "yuv420p" and (b.width, b.height) == (64, 48)
    planes_a, planes_b = (f.to_ndarray(format="yuv420p").astype(int) for f in (a, b))
    assert np.abs(planes_a[:48] - planes_b[:48]).max() <= 2  # Y: the same matrix on both paths
    assert np.abs(planes_a[48:] - planes_b[48:]).mean() < 2  # chroma: swscale's filter vs a 2x2 average
    odd = processor(on_device=True, infer_size=(32, 24))
    odd.output = VideoFormat("yuv444p", BT601)  # odd-sized video: RGB handed on, swscale converts
    assert odd([make_frame(2, 63, 47)])[0].format.name == "yuv444p"


def test_batches_in_flight_keep_their_own_buffers():
    """Two batches submitted before either is collected each get their own frames back; one more than the ring
    holds is refused rather than overwritten."""
    frames = processor(on_device=True, infer_size="native")
    first, second = make_frame(0, 64, 48), make_frame(5, 64, 48)
    a, b = frames.submit([first]), frames.submit([second])
    np.testing.assert_array_equal(b.result()[0][..., 0], second)
    np.testing.assert_array_equal(a.result()[0][..., 0], first)
    held = [frames.submit([first]) for _ in range(frames.in_flight + 1)]
    with pytest.raises(RuntimeError, match="more batches in flight"):
        frames.submit([first])
    held[0].result()
    frames.submit([first]).result()  # a collected slot is free again


def test_temporal_filter_stays_on_the_host():
    with pytest.raises(ValueError, match="temporal filter runs on the host"):
        processor(on_device=True, temporal=0.5)
    assert not processor(temporal=0.5).on_device


def test_pipeline_on_the_device_path_writes_the_host_paths_video(tmp_path):
    """The pipeline keeps two batches in flight and the sink gets I420 planes; the video equals the host run's."""
    from conftest import read_video
    from ir2vis_stream.media import VideoSink, open_source
    from ir2vis_stream.pipeline import Pipeline

    clip = make_video(tmp_path / "in.mp4", frames=9)
    videos = []
    for on_device in (False, True):
        engine = TorchEngine(Swap(), torch.device("cpu"), "fp32")
        pipe = Pipeline(engine, infer_size=(32, 24), batch_size=2, on_device=on_device, side_by_side=True)
        out = tmp_path / f"out_{on_device}.mp4"
        source = open_source(clip)
        sink = VideoSink(out, 128, 48, source.info.fps, source.info.time_base, crf=0, preset="ultrafast")
        written, write = [], sink.write
        sink.write = lambda image, pts, tb: (written.append(image.format.name), write(image, pts, tb))
        result = pipe.run(source, sink)
        sink.close()
        source.close()
        assert result.frames == 9 and written == ["yuv420p"] * 9 and pipe.frames.output is sink.format
        videos.append(read_video(out))
    (a, pts_a, *_), (b, pts_b, *_) = videos
    assert pts_a == pts_b and len(a) == len(b) == 9
    for i, (x, y) in enumerate(zip(a, b)):
        assert np.abs(x.astype(int) - y).mean() < 1.5, i


def test_a_multi_scale_model_runs_at_the_frames_own_size_on_a_gpu_and_at_its_smallest_on_a_cpu():
    from ir2vis_stream.checkpoint import GPU_MAX_WIDTH, default_infer_size
    from ir2vis_stream.processor import resolve_infer_size

    multi = {"short_side": 256, "multi_scale": [256, "own"]}
    cpu, gpu = default_infer_size(multi, torch.device("cpu")), default_infer_size(multi, torch.device("cuda", 0))
    assert resolve_infer_size(cpu, 640, 480) == (344, 256)
    assert GPU_MAX_WIDTH == 640 and resolve_infer_size(gpu, 640, 480) == (640, 480)
    assert resolve_infer_size(gpu, 1280, 1024) == (640, 512)  # wider frames are scaled to 640 wide
    assert resolve_infer_size(gpu, 350, 270) == (352, 272)  # smaller ones run at their own size (sides of 8)
    single = {"short_side": 256}  # a model trained at one scale runs at it everywhere
    assert default_infer_size(single, torch.device("cuda")) == single == default_infer_size(single, torch.device("cpu"))
