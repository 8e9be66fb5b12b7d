"""The streaming job on clips the tests make: counts, timing, order, pixels, folders, 16-bit, audio.

Every run here is made with temporal=None: these tests check the frame path's pixels and order, which the temporal
filter (on by default on a CPU; tests/test_temporal.py) would blend between frames.
"""

import sys
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

import ir2vis_stream as irs
from conftest import GreyIdentity, faststart, frame_value, make_folder, make_frame, make_video, read_video
from ir2vis_stream.engines import TorchEngine
from ir2vis_stream import hardware
from ir2vis_stream.media import FolderSink, SourceFrame, SourceInfo, VideoSource
from ir2vis_stream.pipeline import Pipeline


def left_level(rgb: np.ndarray) -> float:
    """Mean grey of the flat left half, which marks the frame's index."""
    w = rgb.shape[1]
    return float(rgb[:, 2: w // 2 - 2].mean())


def test_video_keeps_count_rate_timestamps_order_and_pixels(tmp_path, identity):
    src = make_video(tmp_path / "in.mp4", frames=15, fps=12)
    out = tmp_path / "out.mp4"
    result = irs.run(src, out, model=identity, batch_size=4, crf=0, temporal=None)
    assert result.frames == 15 and not result.ended_early and not result.interrupted
    frames, pts, tb, rate, _ = read_video(out)
    in_frames, in_pts, in_tb, in_rate, _ = read_video(src)
    assert len(frames) == 15
    assert rate == in_rate == 12
    assert [p * tb for p in pts] == [p * in_tb for p in in_pts]
    for i, f in enumerate(frames):
        assert abs(left_level(f) - frame_value(i)) < 2, i  # order preserved
    diff = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, in_frames)])
    assert diff < 1.5  # identity model, lossless x264: only colour conversion rounding


def test_variable_frame_rate_timestamps_survive(tmp_path, identity):
    pts = [0, 1, 3, 4, 9, 10, 11, 20]  # irregular gaps, in 1/30 s
    src = make_video(tmp_path / "vfr.mkv", frames=len(pts), fps=30, pts=pts, time_base=Fraction(1, 30))
    out = tmp_path / "out.mkv"
    irs.run(src, out, model=identity, temporal=None)
    _, out_pts, tb, _, _ = read_video(out)
    _, in_pts, in_tb, _, _ = read_video(src)  # matroska keeps milliseconds
    times = [p * tb for p in out_pts]
    assert times == [p * in_tb for p in in_pts]
    assert [round(float(t) * 30) for t in times] == pts


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batch_sizes_give_the_same_frames(tmp_path, identity, batch_size):
    src = make_video(tmp_path / "in.mp4", frames=7)
    out = tmp_path / f"out{batch_size}"
    result = irs.run(src, out, model=identity, batch_size=batch_size, temporal=None)
    files = sorted(out.glob("*.png"))
    assert result.frames == len(files) == 7
    for i, f in enumerate(files):
        assert abs(left_level(cv2.imread(str(f))) - frame_value(i)) < 2


def test_frame_folder_input_natural_sorted_with_fps(tmp_path, identity):
    folder = make_folder(tmp_path / "set00" / "V000" / "lwir", frames=11)
    # natural sort: I00010 after I00009, and names like 'I2' vs 'I10' sort by number
    out = tmp_path / "out.mp4"
    result = irs.run(folder, out, model=identity, fps=20, crf=0, temporal=None)
    frames, pts, tb, rate, _ = read_video(out)
    assert result.frames == len(frames) == 11
    assert rate == 20
    assert [p * tb for p in pts] == [Fraction(i, 20) for i in range(11)]
    for i, f in enumerate(frames):
        assert abs(left_level(f) - frame_value(i)) < 2


def test_natural_sort_of_unpadded_names(tmp_path, identity):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"f{i}.png"), make_frame(i, 32, 24))
    out = tmp_path / "out"
    irs.run(folder, out, model=identity, temporal=None)
    files = sorted(out.glob("*.png"))
    for i, f in enumerate(files):
        assert abs(left_level(cv2.imread(str(f))) - frame_value(i)) < 2


def test_stills_of_mixed_sizes_to_a_folder_keep_their_own_sizes(tmp_path, identity):
    folder = tmp_path / "stills"
    folder.mkdir()
    sizes = [(64, 48), (40, 30), (40, 30), (33, 25), (64, 48)]  # odd sizes too; runs of one size share a batch
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"s{i}.png"), make_frame(i, w, h))
    out = tmp_path / "out"
    for spec in (None, (32, 24)):  # at each frame's own size, and resized to one inference size and back
        result = irs.run(folder, out, model=identity, batch_size=4, infer_size=spec, overwrite=True, temporal=None)
        assert result.frames == 5
        got = [cv2.imread(str(out / f"frame_{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(5)]
        assert [(g.shape[1], g.shape[0]) for g in got] == sizes
        if spec is None:  # the identity model gives each still back pixel for pixel
            for i, (g, (w, h)) in enumerate(zip(got, sizes)):
                assert np.array_equal(g, make_frame(i, w, h))
    # a video needs one frame size: a clear error, nothing written
    with pytest.raises(irs.MediaError, match="s1.png is 40x30, but the sequence started at 64x48; a video has one"):
        irs.run(folder, tmp_path / "out.mp4", model=identity, temporal=None)
    assert not (tmp_path / "out.mp4").exists()


def test_sixteen_bit_folder_is_stretched_to_8_bit(tmp_path, identity):
    folder = make_folder(tmp_path / "raw16", frames=3, sixteen_bit=True)
    assert cv2.imread(str(next(folder.iterdir())), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = tmp_path / "out"
    irs.run(folder, out, model=identity, temporal=None)
    img = cv2.imread(str(sorted(out.glob("*.png"))[0]))
    assert img.max() >= 250 and img.min() <= 5  # the robust stretch spans the 8-bit range


def test_sixteen_bit_video(tmp_path, identity):
    src = make_video(tmp_path / "raw16.mkv", frames=5, codec="ffv1", pix_fmt="gray16le", sixteen_bit=True)
    source = VideoSource(src)
    assert source.sixteen_bit
    first = next(iter(source))
    assert first.image.dtype == np.uint16
    source.close()
    out = tmp_path / "out.mp4"
    result = irs.run(src, out, model=identity, temporal=None)
    frames, *_ = read_video(out)
    assert result.frames == len(frames) == 5
    assert frames[0].max() >= 240


def test_audio_is_copied(tmp_path, identity):
    src = make_video(tmp_path / "with_audio.mp4", frames=20, fps=10, audio=True)
    assert read_video(src)[4]
    out = tmp_path / "out.mp4"
    irs.run(src, out, model=identity, temporal=None)
    import av

    with av.open(str(out)) as c:
        assert c.streams.audio, "audio stream missing"
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.sample_rate == 16000
        n = sum(f.samples for f in c.decode(a))
    assert n >= 16000 * 1.9  # about two seconds of it


@pytest.mark.parametrize("width,height,tag,luma", [(64, 48, 6, 82), (1280, 720, 1, 63)])
def test_colour_is_converted_and_tagged_with_one_standard(tmp_path, width, height, tag, luma):
    """Pure red in limited range: Y = 16 + 219 Kr, Kr = 0.299 (BT.601, SD) or 0.2126 (BT.709, HD); the stream's
    tags name the matrix its pixels were converted with."""
    import av

    from ir2vis_stream.media import VideoSink

    out = tmp_path / "red.mp4"
    sink = VideoSink(out, width, height, Fraction(10), Fraction(1, 10), crf=0, preset="ultrafast")
    red = np.zeros((height, width, 3), np.uint8)
    red[..., 0] = 255
    for i in range(2):
        sink.write(red, i, Fraction(1, 10))
    sink.close()
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (tag, tag, tag, 1)
        frame = next(c.decode(video=0))
        y = frame.to_ndarray(format="yuv420p")[:height]  # the Y plane as stored
        assert abs(int(np.median(y)) - luma) <= 1
        back = frame.to_ndarray(format="rgb24")  # a player honouring the tags gets red back
        assert np.abs(back.astype(int) - red).max() <= 3


def test_frames_without_timestamps_are_stamped_at_the_sinks_rate(tmp_path):
    from ir2vis_stream.media import VideoSink

    out = tmp_path / "unstamped.mp4"
    sink = VideoSink(out, 64, 48, Fraction(10), Fraction(1, 90000), crf=0, preset="ultrafast")  # an MPEG-TS clock
    for i in range(3):
        sink.write(np.full((48, 64, 3), 40 * i, np.uint8), None, Fraction(1, 90000))
    sink.close()
    _, pts, tb, rate, _ = read_video(out)
    assert [p * tb for p in pts] == [0, Fraction(1, 10), Fraction(2, 10)] and rate == 10


def test_a_preview_keeps_only_the_audio_under_its_frames(tmp_path, identity):
    src = make_video(tmp_path / "with_audio.mp4", frames=30, fps=10, audio=True)  # 3 s of picture and sound
    out = tmp_path / "preview.mp4"
    irs.run(src, out, model=identity, max_frames=5, temporal=None)  # 0.5 s of picture
    import av

    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        starts = [float(f.pts * f.time_base) for f in c.decode(a)]
    # AAC frames of 1024 samples at 16 kHz (64 ms): the last one starts before the picture ends at 0.5 s
    assert max(starts) < 0.5 and max(starts) > 0.5 - 0.1


def test_audio_the_output_cannot_hold_is_dropped_with_a_warning(tmp_path, identity):
    import av

    src = tmp_path / "mulaw.mov"  # G.711 mu-law sound: a .mov holds it, a .mkv cannot
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_mulaw", rate=8000)
        a.layout = "mono"
        for i in range(10):
            f = av.VideoFrame.from_ndarray(make_frame(i, 64, 48), format="gray")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        af = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        for frame in (af, None):
            for p in a.encode(frame):
                c.mux(p)
    out = tmp_path / "out.mkv"
    with pytest.warns(UserWarning, match=r"audio \(pcm_mulaw\) cannot be stored in a \.mkv file"):
        result = irs.run(src, out, model=identity, temporal=None)
    frames, *_, has_audio = read_video(out)
    assert result.frames == len(frames) == 10 and not has_audio
    irs.run(src, tmp_path / "out.mov", model=identity, temporal=None)  # where it fits, it is copied
    assert read_video(tmp_path / "out.mov")[4]


def test_side_by_side_doubles_width(tmp_path, identity):
    src = make_video(tmp_path / "in.mp4", frames=3, width=64, height=48)
    out = tmp_path / "sbs.mp4"
    irs.run(src, out, model=identity, side_by_side=True, temporal=None)
    frames, *_ = read_video(out)
    assert frames[0].shape == (48, 128, 3)


@pytest.mark.parametrize("size", [(63, 47), (50, 38)])
def test_sizes_not_multiple_of_8_come_back_at_input_size(tmp_path, tiny_checkpoint, size):
    w, h = size
    folder = make_folder(tmp_path / "odd", frames=2, width=w, height=h)
    out = tmp_path / "odd.mkv"
    result = irs.run(folder, out, checkpoint=tiny_checkpoint, infer_size="native", engine="torch", temporal=None)
    frames, *_ = read_video(out)
    assert frames[0].shape == (h, w, 3)
    assert result.infer_size == (w, h)


def test_inference_runs_at_checkpoint_training_size(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2, width=64, height=48)
    result = irs.run(src, tmp_path / "o.mp4", checkpoint=tiny_checkpoint, engine="torch", temporal=None)  # short side 32
    assert result.infer_size == (40, 32)  # 64x48 scaled to short side 32 -> 42.7 -> multiple of 8
    result = irs.run(src, tmp_path / "o2.mp4", checkpoint=tiny_checkpoint, infer_size=(24, 16), engine="torch", temporal=None)
    assert result.infer_size == (24, 16)
    assert read_video(tmp_path / "o2.mp4")[0][0].shape == (48, 64, 3)


class Recorder(GreyIdentity):
    """Identity that records the largest number of frames the decoder was ahead of inference."""

    def __init__(self, delay=0.0, fail_at=None):
        super().__init__()
        self.calls = 0
        self.delay = delay
        self.fail_at = fail_at

    def forward(self, x):
        import time

        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("engine exploded")
        time.sleep(self.delay)
        return super().forward(x)


class CountingSource:
    """Wraps a source and counts the frames decoded so far."""

    def __init__(self, inner):
        self.inner, self.info, self.decoded = inner, inner.info, 0

    def __iter__(self):
        for f in self.inner:
            self.decoded += 1
            yield f


def test_bounded_queues_give_back_pressure(tmp_path):
    """With a slow engine, decoding may run only a bounded number of frames ahead of the output."""
    source = CountingSource(VideoSource(make_video(tmp_path / "in.mp4", frames=40)))
    pipe = Pipeline(TorchEngine(Recorder(delay=0.02), torch.device("cpu"), "fp32"), batch_size=2, queue_frames=3)
    sink = FolderSink(tmp_path / "out")
    ahead = []
    result = pipe.run(source, sink, on_tick=lambda done: ahead.append(source.decoded - done))
    sink.close()
    source.inner.close()
    assert result.frames == 40
    # 3 frames in each queue + a batch of 2 in inference + one frame held by decode and by encode
    assert max(ahead) <= 3 + 3 + 2 + 2


def test_engine_failure_stops_everything_and_leaves_no_output(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=30)
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="engine exploded"):
        irs.run(src, out, model=Recorder(fail_at=3), batch_size=2, temporal=None)
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary file left either


def test_request_stop_finalises_a_valid_shorter_video(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=60)
    out = tmp_path / "out.mp4"
    pipes = []

    class StopAfterThreeBatches(Recorder):  # asks from inside the job, so the test does not race the clock
        def forward(self, x):
            if self.calls == 2:
                pipes[0].request_stop()
            return super().forward(x)

    result = irs.run(src, out, model=StopAfterThreeBatches(delay=0.01), batch_size=2, pipeline_hook=pipes.append, temporal=None)
    assert result.interrupted
    frames, *_ = read_video(out)
    assert 5 <= len(frames) == result.frames < 60
    for i, f in enumerate(frames):
        assert abs(left_level(f) - frame_value(i)) < 3


def test_a_pipeline_runs_again_after_a_stop_and_after_a_failure(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=12)
    pipes = []

    class Scripted(Recorder):  # stops or fails the job from inside, on the call the test names
        stop_at = fail_at = None

        def forward(self, x):
            if self.stop_at is not None and self.calls == self.stop_at:
                pipes[0].request_stop()
            return super().forward(x)

    pipes.append(Pipeline(TorchEngine(Scripted(), torch.device("cpu"), "fp32"), batch_size=2))
    model = pipes[0].engine.model  # the engine's copy of it (``inference_model``)

    def job(name):
        source, sink = VideoSource(src), FolderSink(tmp_path / name)
        try:
            return pipes[0].run(source, sink)
        finally:
            sink.close()
            source.close()

    model.stop_at = 1
    stopped = job("a")
    assert stopped.interrupted and stopped.frames < 12
    model.stop_at = None
    again = job("b")  # the stop belonged to the last job
    assert again.frames == 12 and not again.interrupted
    model.fail_at = model.calls + 1
    with pytest.raises(RuntimeError, match="engine exploded"):
        job("c")
    model.fail_at = None
    after = job("d")  # so did the failure
    assert after.frames == 12 and not after.interrupted


def test_a_second_ctrl_c_returns_only_when_no_thread_uses_the_source_or_sink(tmp_path, identity):
    """Ctrl-C twice (raised here from the progress callback, which runs where the signal lands) while the
    encoder is busy for longer than a join would wait: run() may raise only once that write has returned,
    or the caller would close the sink under it."""
    import threading

    class SlowSink(FolderSink):
        writing = False

        def write(self, rgb, pts, time_base):
            self.writing = True
            time.sleep(7 if self.frames == 1 else 0)  # longer than the 5 s a join with a timeout used to wait
            super().write(rgb, pts, time_base)
            self.writing = False

    source, sink = VideoSource(make_video(tmp_path / "in.mp4", frames=30)), SlowSink(tmp_path / "out")
    pipe = Pipeline(TorchEngine(identity, torch.device("cpu"), "fp32"), batch_size=2)
    presses = []

    def ctrl_c(done):
        if done >= 1 and len(presses) < 2 and sink.writing:
            presses.append(done)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipe.run(source, sink, on_tick=ctrl_c)
    assert len(presses) == 2 and not sink.writing
    assert not any(t.name in ("ir2vis-decode", "ir2vis-encode") and t.is_alive() for t in threading.enumerate())
    sink.close(keep=False)
    source.close()


def test_truncated_video_keeps_what_decodes(tmp_path, identity):
    src = make_video(tmp_path / "full.mkv", frames=40, width=96, height=64)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    result = irs.run(cut, out, model=identity, temporal=None)
    frames, *_ = read_video(out)
    assert 0 < result.frames == len(frames) < 40
    for i, f in enumerate(frames):
        assert abs(left_level(f) - frame_value(i)) < 3


def test_truncated_mp4_is_reported_as_ended_early(tmp_path, identity):
    data = faststart(make_video(tmp_path / "full.mp4", frames=40, width=96, height=64), tmp_path / "fast.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    result = irs.run(cut, tmp_path / "out.mp4", model=identity, temporal=None)
    assert result.ended_early
    assert 0 < result.frames < 40


def test_max_frames_gives_a_preview(tmp_path, identity):
    src = make_video(tmp_path / "in.mp4", frames=20)
    result = irs.run(src, tmp_path / "o.mp4", model=identity, max_frames=6, temporal=None)
    assert result.frames == len(read_video(tmp_path / "o.mp4")[0]) == 6
    assert not result.ended_early


def test_busy_fractions_measure_each_stage_working(tmp_path):
    """A slow engine (50 ms a batch): the inference stage is busy at least that long, the others far less."""

    class Slow(GreyIdentity):
        def forward(self, x):
            time.sleep(0.05)
            return super().forward(x)

    src = make_video(tmp_path / "in.mp4", frames=8)
    result = irs.run(src, tmp_path / "out", model=Slow(), engine="torch", precision="fp32", batch_size=2, temporal=None)
    assert result.frames == 8
    assert result.busy["infer"] * result.seconds >= 4 * 0.05  # four batches
    assert result.busy["infer"] > result.busy["decode"] and result.busy["infer"] > 0.5


# ---- one team of OpenMP workers: the inference thread's ---------------------------------------------------------
def native_threads() -> int:
    """OS threads of this process that are not Python threads: OpenMP workers, among others."""
    import os
    import threading

    python = {t.native_id for t in threading.enumerate()}
    return sum(int(tid) not in python for tid in os.listdir("/proc/self/task"))


def parallel_torch_op() -> None:
    torch.ones(4_000_000).sum()  # well over torch's grain size: runs on every OpenMP thread


needs_openmp_team = pytest.mark.skipif(
    not hardware._openmp() or torch.get_num_threads() < 2 or not sys.platform.startswith("linux"),
    reason="needs torch on OpenMP (libgomp) with 2 threads or more, and Linux's /proc")


@needs_openmp_team
def test_releasing_a_threads_torch_workers_ends_them_until_its_next_parallel_op():
    workers = torch.get_num_threads() - 1
    parallel_torch_op()
    with_team = native_threads()
    assert hardware.release_torch_workers()
    assert native_threads() == with_team - workers
    parallel_torch_op()
    assert native_threads() == with_team


class ListSource:
    """Small frames from memory: no decoder threads of its own."""

    def __init__(self, n: int):
        self.images = [np.full((32, 32), 10 * i, np.uint8) for i in range(n)]
        self.info = SourceInfo(32, 32, Fraction(10), Fraction(1, 10), n, "folder")

    def __iter__(self):
        for i, image in enumerate(self.images):
            yield SourceFrame(i, image, i, Fraction(1, 10))


class ListSink:
    def __init__(self):
        self.frames = []

    def write(self, frame, pts, time_base):
        self.frames.append(frame)


@needs_openmp_team
def test_while_a_pipeline_runs_only_the_inference_thread_keeps_openmp_workers():
    """Workers of another thread would make libgomp wake every team's workers at each parallel region of the
    model (``hardware.release_torch_workers``): the thread that calls ``run`` (here the test's, with a team
    of its own from the op below) only waits meanwhile."""
    seen = []

    class CountingIdentity(GreyIdentity):
        def forward(self, x):
            parallel_torch_op()  # the inference thread's team
            seen.append(native_threads())
            return super().forward(x)

    parallel_torch_op()  # this thread's team, as loading a model leaves one
    before = native_threads()
    sink = ListSink()
    Pipeline(TorchEngine(CountingIdentity(), torch.device("cpu"), "fp32"), batch_size=2).run(ListSource(6), sink)
    assert len(sink.frames) == 6
    # this thread's workers ended, the inference thread's started: as many as before
    assert seen and max(seen) == before, (seen, before)
