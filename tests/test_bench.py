"""bench and the metrics: metrics against scikit-image, flicker by hand, LPIPS offline, both reports, bad input.

LPIPS is tested two ways without ImageNet weights: the n/a path (TORCH_HOME pointing at an empty folder),
and a randomly initialised AlexNet trunk with the wheel's real linear layers, whose numbers test the
plumbing, not perception. Any attempt to download is made to fail loudly.
"""

import csv
import json
import math
import socket
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from conftest import GreyIdentity, make_pairs, make_video, read_video, shared, tiny_generator
from ir2vis_stream import metrics
from ir2vis_stream.bench import BenchError, quality_on_pairs, quality_on_video, speed_benchmark
from ir2vis_stream.bench.quality import BASELINE, is_frame_sequence
from ir2vis_stream.bench.speed import speed_table
from ir2vis_stream.checkpoint import save_checkpoint
from ir2vis_stream.cli import main
from ir2vis_stream.engines import TorchEngine
from ir2vis_stream.errors import ConfigError
from ir2vis_stream.media import FolderSink, VideoSource
from ir2vis_stream.pipeline import Pipeline


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_clean_failure(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    for f in fragments:
        assert f in result.output, result.output


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and where other processes compete for the cores torch's
    OpenMP threads busy-wait for descheduled partners (many times slower); one thread keeps these tests quick."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch):
    """Any download or network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("attempted to use the network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def no_imagenet(tmp_path, monkeypatch, offline):
    """A torch hub cache without ImageNet weights."""
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def two_checkpoints(tmp_path):
    return [save_checkpoint(tmp_path / f"tiny{seed}.pt", tiny_generator(seed), {"train_size": {"short_side": 32}})
            for seed in (0, 1)]


# ---- metrics ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels,height,width", [(1, 48, 64), (3, 37, 23), (3, 11, 11), (1, 101, 57)])
def test_metrics_match_scikit_image(channels, height, width):
    rng = np.random.default_rng(channels * 1000 + height)
    a = rng.integers(0, 256, (2, channels, height, width), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    got = metrics.image_metrics(ta, tb)
    for i in range(2):
        x, y = a[i].transpose(1, 2, 0).astype(np.float64), b[i].transpose(1, 2, 0).astype(np.float64)
        assert got["rmse"][i].item() == pytest.approx(np.sqrt(mean_squared_error(x, y)), rel=1e-9)
        assert got["psnr"][i].item() == pytest.approx(peak_signal_noise_ratio(x, y, data_range=255), rel=1e-9)
        ref = structural_similarity(x, y, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, channel_axis=2)
        assert got["ssim"][i].item() == pytest.approx(ref, abs=1e-9)


def test_identical_images_are_perfect():
    a = torch.randint(0, 256, (1, 3, 20, 30), dtype=torch.uint8)
    m = metrics.image_metrics(a, a)
    assert m["rmse"].item() == 0 and m["ssim"].item() == pytest.approx(1.0) and m["psnr"].item() > 140


def test_flicker_by_hand_and_frame_by_frame():
    frames = torch.zeros(4, 3, 5, 6)
    frames[1] += 10  # changes: 10, 10, 0 -> mean 20 / 3
    frames[2] += 0
    assert metrics.flicker(frames) == pytest.approx(20 / 3)
    assert metrics.flicker(torch.full((5, 1, 4, 4), 7.0)) == 0
    assert np.isnan(metrics.flicker(frames[:1]))
    meter = metrics.FlickerMeter()
    for f in frames[:2]:
        meter.add(f)
    meter.new_sequence()  # the cut between the two sequences is no change
    for f in (frames[1] + 100, frames[1] + 100):
        meter.add(f)
    assert meter.value == pytest.approx(10 / 2)


def test_gmsd_of_a_step_edge_against_a_flat_image_by_hand():
    # Reference: 0 left of column 32, A from there on (64x64, every row alike); distorted: flat 0. After the
    # 2x2 average and subsampling the step lies between columns 15 and 16 of a 32-wide image; the Prewitt x
    # gradient (3 equal rows / 3) has magnitude A at exactly those two columns, the y gradient is 0 everywhere
    # (replicate padding), and the flat image has no gradient at all. So the similarity map is
    # q = 170 / (A^2 + 170) on a share p = 2/32 of the pixels and 1 elsewhere: GMSD = (1 - q) sqrt(p (1 - p)).
    a_val = 40.0
    ref = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    ref[..., 32:] = a_val
    flat = torch.zeros_like(ref)
    q, p = 170 / (a_val**2 + 170), 2 / 32
    assert metrics.gmsd(flat, ref).item() == pytest.approx((1 - q) * np.sqrt(p * (1 - p)), rel=1e-12)
    assert metrics.gmsd(ref, ref).item() == 0  # identical structure
    # colour goes through BT.601 luma: an RGB image whose luma is ref scores as ref
    rgb = ref.expand(-1, 3, -1, -1)
    assert metrics.gmsd(flat.expand(-1, 3, -1, -1), rgb).item() == pytest.approx((1 - q) * np.sqrt(p * (1 - p)))
    # a blurred copy keeps less structure than a sharp noisy one? no: GMSD ranks by gradient similarity only:
    # the blurred edge is closer than a flat image and farther than the edge itself
    blurred = torch.from_numpy(cv2.GaussianBlur(ref[0, 0].numpy(), (9, 9), 3))[None, None]
    assert 0 < metrics.gmsd(blurred, ref).item() < metrics.gmsd(flat, ref).item()


def _qg(g):  # Xydeas & Petrovic's strength sigmoid
    return 0.9994 / (1 + np.exp(-15 * (g - 0.5)))


def _qa(a):  # and their orientation sigmoid
    return 0.9879 / (1 + np.exp(-22 * (a - 0.8)))


def test_ir_edges_kept_by_hand():
    # IR: 0 left of column 16, 100 from there (32x32, every row alike). Sobel x is -400 at columns 15 and 16
    # (the step seen by both), y is 0 everywhere (replicate padding), so only those two columns carry weight.
    ir = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    ir[..., 16:] = 100.0
    same = _qg(1.0) * _qa(1.0)  # strength ratio 1, parallel: 0.9748, the measure's ceiling
    assert metrics.edges_kept(ir.expand(-1, 3, -1, -1), ir).item() == pytest.approx(same, rel=1e-12)
    assert same == pytest.approx(0.9748, abs=1e-4)
    # the same edge at half its contrast: strength ratio 0.5 at every weighted pixel
    assert metrics.edges_kept(ir * 0.5, ir).item() == pytest.approx(_qg(0.5) * _qa(1.0), rel=1e-12)
    # inverted polarity: the gradient points the other way, the edge's orientation is the same line
    assert metrics.edges_kept(255 - ir, ir).item() == pytest.approx(same, rel=1e-12)
    # a flat output keeps nothing: strength ratio 0 (its orientation, atan(0/0) = 0, is the IR's)
    assert metrics.edges_kept(torch.full_like(ir, 50.0), ir).item() == pytest.approx(_qg(0.0) * _qa(1.0), rel=1e-9)
    # an edge of the same strength turned 90 degrees keeps nearly nothing
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ramp_x = (x * 10).double()[None, None]  # gx = 80 everywhere inside, gy = 0
    ramp_y = (y * 10).double()[None, None]  # gy = 80, gx = 0: the same strength, perpendicular
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert metrics.edges_kept(ramp_y[inner], ramp_x[inner]).item() < 0.01  # the borders add a little
    # a 45-degree edge kept at 45 degrees scores as itself; at -45 degrees (perpendicular) near nothing
    diag, anti = ((x + y) * 5).double()[None, None], ((x - y) * 5).double()[None, None]
    assert metrics.edges_kept(diag, diag).item() == pytest.approx(same, rel=1e-9)
    assert metrics.edges_kept(anti[inner], diag[inner]).item() < 0.01
    # orientation is a line's, modulo 180 degrees: edges whose gradients point 160 degrees apart lie 20 degrees
    # apart, A = |160 - 90| / 90 = 7/9, both for gradients at +-80 degrees and at +-170 (which atan(gy / gx) sees
    # as -10 and +10); ramps, so Sobel's direction is exact inside (the replicated borders move it a little)
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")

    def ramp(degrees):
        t = math.radians(degrees)
        return (xx * math.cos(t) + yy * math.sin(t)).double()[None, None]
    for a, b in ((80, -80), (170, -170)):
        assert metrics.edges_kept(ramp(b), ramp(a)).item() == pytest.approx(_qg(1.0) * _qa(7 / 9), abs=0.02)
    # edges the output adds where the IR is flat count nothing; an IR without edges scores 1
    assert metrics.edges_kept(ir, torch.zeros_like(ir)).item() == 1.0
    noisy = ir + torch.from_numpy(np.random.default_rng(0).normal(0, 3, (32, 32)))[None, None]
    assert metrics.edges_kept(ir, ir).item() > metrics.edges_kept(noisy, ir).item()


def test_colourfulness_by_hand():
    grey = torch.full((1, 3, 8, 8), 128.0)
    assert metrics.colourfulness(grey).item() == 0.0
    # one colour everywhere: no spread, 0.3 x the length of its mean (rg, yb) = (50, 55)
    flat = torch.tensor([100.0, 50.0, 20.0]).view(1, 3, 1, 1).expand(-1, -1, 8, 8)
    assert metrics.colourfulness(flat).item() == pytest.approx(0.3 * np.hypot(50, 55), rel=1e-12)
    # half pure red, half black: rg is 255 or 0 (mean 127.5, sd 127.5), yb 127.5 or 0 (mean, sd 63.75)
    half = torch.zeros(1, 3, 8, 8)
    half[:, 0, :, :4] = 255
    assert metrics.colourfulness(half).item() == pytest.approx(1.3 * np.hypot(127.5, 63.75), rel=1e-12)
    with pytest.raises(ConfigError):
        metrics.colourfulness(grey[:, :1])


def _textured(h, w, seed=0, sigma=3.0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)), (0, 0), sigma)


def test_grid_measure_rises_with_a_grid_at_the_models_period_only():
    infer = (96, 64)  # a model run at 96x64 whose output was enlarged to 192x128: its grid bins are (12a, 8b)
    rng = np.random.default_rng(0)
    base = _textured(128, 192, sigma=6.0)  # content below the grid frequencies, as in a natural image
    base = (base - base.min()) / np.ptp(base) * 200 + 20 + rng.normal(0, 2, (128, 192))  # a sensor's noise floor
    vis = torch.from_numpy(base)[None, None].expand(-1, 3, -1, -1)
    assert metrics.grid_ratio(vis, vis, infer).item() == pytest.approx(1.0)
    y, x = np.mgrid[:128, :192]

    def with_pattern(period_px):  # a faint fixed pattern of this period (in output pixels), +-3 grey levels
        pattern = 3 * np.cos(2 * np.pi * x / period_px) * np.cos(2 * np.pi * y / period_px)
        return torch.from_numpy(base + pattern)[None, None].expand(-1, 3, -1, -1)
    # the model's period, 8 inference pixels = 16 output pixels, and its harmonic at 8
    assert metrics.grid_ratio(with_pattern(16), vis, infer).item() > 2
    assert metrics.grid_ratio(with_pattern(8), vis, infer).item() > 2
    # the same amplitude at a period the model cannot make barely moves it
    assert metrics.grid_ratio(with_pattern(13), vis, infer).item() < 1.2
    # the grid is looked for where the model ran: run at the output size, a 16-pixel period is not its grid
    assert metrics.grid_ratio(with_pattern(16), vis, (192, 128)).item() < 1.2


def test_warping_error_is_zero_for_a_video_that_moves_as_its_ir_and_high_for_flicker():
    h, w = 96, 128
    scene = _textured(h, w + 40, seed=1)
    scene = ((scene - scene.min()) / np.ptp(scene) * 255).astype(np.uint8)
    irs = [np.ascontiguousarray(scene[:, 20 - 2 * t: 20 - 2 * t + w]) for t in range(5)]  # pans 2 px a frame
    colour = lambda g: np.stack([g, 255 - g, g // 2], axis=2)  # noqa: E731
    rng = np.random.default_rng(0)
    meter = metrics.WarpMeter()
    for ir in irs:
        noisy = np.clip(colour(ir).astype(int) + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
        meter.add(ir, {"moves with the IR": colour(ir), "flickers": noisy, "frozen": colour(irs[0])})
    assert meter.value("moves with the IR") < 0.5  # a shifted copy: zero up to the flow's sub-pixel error
    assert meter.value("flickers") > 8  # uniform noise of +-20 between two frames differs by about 14 on average
    assert meter.value("frozen") > 10  # a frozen picture does not follow the scene either
    assert 0.8 < meter.coverage < 1.0  # the strip uncovered at the edge each frame is masked, little else
    # the cut between two sequences is never a pair
    meter2 = metrics.WarpMeter()
    meter2.add(irs[0], {"x": colour(irs[0])})
    meter2.new_sequence()
    meter2.add(irs[3], {"x": colour(irs[0])})
    assert np.isnan(meter2.value("x"))
    merged = metrics.WarpMeter.merged([meter, meter2])
    assert merged.value("flickers") == pytest.approx(meter.value("flickers"))


def test_lpips_is_na_with_the_file_and_folder_that_fix_it(no_imagenet):
    with pytest.raises(metrics.LPIPSUnavailable) as e:
        metrics.LPIPSMetric("alex")
    msg = str(e.value)
    assert "alexnet-owt-7be5be79.pth" in msg and str(no_imagenet / "hub" / "checkpoints") in msg
    with pytest.raises(metrics.LPIPSUnavailable, match="vgg16-397923af.pth"):
        metrics.LPIPSMetric("vgg")


def test_lpips_with_a_random_backbone_is_numeric_and_offline(no_imagenet):
    lp = metrics.LPIPSMetric("alex", random_backbone=True)  # the wheel's linear layers, random AlexNet
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(0, 256, (2, 3, 64, 48), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (2, 3, 64, 48), dtype=np.uint8))
    same, diff = lp(a, a), lp(a, b)
    assert same.shape == (2,) and torch.all(same.abs() < 1e-6) and torch.all(diff > 0)
    ga, gb = a[:, :1], b[:, :1]  # grey is compared as grey RGB
    assert torch.allclose(lp(ga, gb), lp(ga.expand(-1, 3, -1, -1), gb.expand(-1, 3, -1, -1)))


# ---- pipeline latency record --------------------------------------------------------------------------------
def test_pipeline_records_per_frame_latency_only_when_asked(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=6)
    for record in (False, True):
        source, sink = VideoSource(clip), FolderSink(tmp_path / f"out{record}")
        result = Pipeline(TorchEngine(GreyIdentity(), torch.device("cpu"), "fp32"), batch_size=4,
                          record_latency=record).run(source, sink)
        sink.close()
        source.close()
        if record:
            assert len(result.latencies) == 6 and all(0 < t < result.seconds + 1e-3 for t in result.latencies)
        else:
            assert result.latencies is None


# ---- bench speed ---------------------------------------------------------------------------------------------
def test_bench_speed_stages_baseline_and_identity_flicker(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=9)
    report = speed_benchmark(clip, model=GreyIdentity(), engines=("torch",), batch_sizes=(1, 4), frames=8,
                             precision="fp32")
    assert report.frames == 8 and report.input_size == (64, 48) and report.infer_size == (64, 48)
    assert [r.batch_size for r in report.rows] == [1, 4]
    for row in report.rows:
        assert set(row.stage_fps) == {"decode", "preprocess", "inference", "postprocess", "encode"}
        assert all(v > 0 for v in row.stage_fps.values()) and row.end_to_end_fps > 0
        assert 0 < row.latency_ms.p50 <= row.latency_ms.p95 <= row.latency_ms.p99
        assert row.peak_gpu_mib is None  # CPU
        assert row.flicker_ratio == pytest.approx(1.0, abs=1e-6)  # an identity model adds no flicker
        assert row.vs_naive == pytest.approx(row.end_to_end_fps / report.naive.fps)
    assert report.naive.fps > 0


def test_bench_speed_cli_writes_json_and_png(tmp_path, tiny_checkpoint):
    clip = make_video(tmp_path / "in.mp4", frames=8)
    out_json, out_png = tmp_path / "speed.json", tmp_path / "speed.png"
    r = invoke("bench", "speed", clip, "-c", tiny_checkpoint, "--engine", "torch", "-b", "1,3", "--frames", 8,
               "--json", out_json, "--plot", out_png)
    assert r.exit_code == 0, r.output
    for col in ("start s", "decode", "preproc", "infer", "postproc", "encode", "end to end", "x naive", "p50 ms", "p99 ms",
                "GPU MiB", "flicker", "naive OpenCV loop"):
        assert col in r.output
    report = json.loads(out_json.read_text())
    assert report["frames"] == 8 and report["infer_size"] == [40, 32]  # the checkpoint's short side 32
    assert [row["batch_size"] for row in report["rows"]] == [1, 3]
    row = report["rows"][0]
    assert set(row["latency_ms"]) == {"p50", "p95", "p99"} and row["vs_naive"] > 0 and row["efficiency"] > 0
    assert row["engine"].startswith("torch cpu") and row["startup_s"] > 0
    assert report["naive"]["fps"] > 0 and report["machine"] and report["date"]
    png = out_png.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape[:2] == (height, width) and img.std() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "speed.json", "speed.png", "tiny.pt"]


def test_bench_speed_generates_a_clip_without_input(tmp_path, tiny_checkpoint):
    report = speed_benchmark(None, checkpoint=tiny_checkpoint, engines=("torch",), frames=3, batch_sizes=(2,),
                             naive=False)
    assert report.input_size == (640, 480) and report.frames == 3 and report.naive is None
    assert report.rows[0].vs_naive is None


def test_bench_speed_says_why_auto_picked_its_engine(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=4)
    report = speed_benchmark(clip, model=GreyIdentity(), engines=("auto", "torch"), batch_sizes=(2,), frames=4,
                             naive=False, precision="fp32")
    auto, named = report.rows
    assert "not one of this package's generators" in auto.engine_reason and named.engine_reason == ""
    assert "auto picked torch cpu fp32: not one of this package's generators" in str(speed_table(report).caption)


def test_bench_speed_bad_input_fails_cleanly_and_writes_nothing(tmp_path, tiny_checkpoint):
    clip = make_video(tmp_path / "in.mp4", frames=4)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "r.json"
    assert_clean_failure(invoke("bench", "speed", clip, "-c", bad, "--json", out), "bad.pt")
    assert_clean_failure(invoke("bench", "speed", tmp_path, "-c", tiny_checkpoint, "--json", out), "video file")
    assert_clean_failure(invoke("bench", "speed", clip, "-c", tiny_checkpoint, "--engine", "warp"), "unknown engine")
    assert_clean_failure(invoke("bench", "speed", clip, "-c", tiny_checkpoint, "--plot", tmp_path / "p.jpg"), ".png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt", "in.mp4", "tiny.pt"]


# ---- bench quality -------------------------------------------------------------------------------------------
def test_bench_quality_cli_two_checkpoints_baseline_csv_and_lpips_na(tmp_path, two_checkpoints, no_imagenet):
    data = make_pairs(tmp_path / "d", n=5)
    out_csv, out_json = tmp_path / "q.csv", tmp_path / "q.json"
    args = ["bench", "quality", "--data", data, "--csv", out_csv, "--json", out_json, "-v"]
    for ck in two_checkpoints:
        args += ["-c", ck]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert "LPIPS n/a" in r.output and "alexnet-owt-7be5be79.pth" in r.output
    assert f"CSV: {out_csv}" in r.output and f"JSON: {out_json}" in r.output  # --verbose names what it wrote
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 5 * 3 and list(rows[0]) == ["image", "folder", "model", "rmse", "psnr", "ssim", "gmsd", "grid",
                                                    "lpips", "edges_kept", "colourfulness"]
    assert [r["model"] for r in rows[:3]] == [BASELINE, str(two_checkpoints[0]), str(two_checkpoints[1])]
    assert rows[0]["image"] == "lwir/I00000.png" and all(r["lpips"] == "" for r in rows)
    summary = json.loads(out_json.read_text())
    assert summary["lpips"]["available"] is False and "alexnet-owt-7be5be79.pth" in summary["lpips"]["note"]
    models = {m["name"]: m for m in summary["models"]}
    assert models[BASELINE]["images"] == 5 and models[BASELINE]["lpips"] is None
    assert models[str(two_checkpoints[0])]["infer_size"] == "short side 32"
    # averages are the means of the per-image rows; the two random models differ
    for name, m in models.items():
        for key in ("psnr", "gmsd", "grid"):
            assert m[key] == pytest.approx(np.mean([float(r[key]) for r in rows if r["model"] == name]), rel=1e-5)
    assert models[str(two_checkpoints[0])]["psnr"] != models[str(two_checkpoints[1])]["psnr"]
    # the IR baseline, computed here independently: grey IR in RGB against the visible image
    ir = cv2.imread(str(data / "lwir" / "I00000.png"), cv2.IMREAD_GRAYSCALE)
    vis = cv2.cvtColor(cv2.imread(str(data / "visible" / "I00000.png")), cv2.COLOR_BGR2RGB)
    grey = np.repeat(ir[:, :, None], 3, axis=2).astype(np.float64)
    assert float(rows[0]["psnr"]) == pytest.approx(peak_signal_noise_ratio(vis.astype(np.float64), grey, data_range=255), rel=1e-5)
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    assert float(rows[0]["gmsd"]) == pytest.approx(metrics.gmsd(t(grey), t(vis)).item(), rel=1e-5)
    # the IR as grey keeps its own edges (the measure's ceiling) and has no colour; the visible images' figures
    # are the reference, and a model's colourfulness ratio is its mean M over theirs
    assert float(rows[0]["edges_kept"]) == pytest.approx(0.9748, abs=1e-4) and float(rows[0]["colourfulness"]) == 0
    vis_m = [metrics.colourfulness(t(cv2.cvtColor(cv2.imread(str(data / "visible" / f"I{i:05d}.png")),
                                                  cv2.COLOR_BGR2RGB).astype(np.float64))).item() for i in range(5)]
    assert summary["reference"]["colourfulness"] == pytest.approx(np.mean(vis_m), rel=1e-6)
    assert models[BASELINE]["colourfulness_ratio"] == 0
    for name in map(str, two_checkpoints):
        mine = [float(r["colourfulness"]) for r in rows if r["model"] == name]
        assert models[name]["colourfulness_ratio"] == pytest.approx(np.mean(mine) / np.mean(vis_m), rel=1e-5)
        assert models[name]["edges_kept"] == pytest.approx(np.mean([float(r["edges_kept"]) for r in rows
                                                                    if r["model"] == name]), rel=1e-5)
    assert 0 < summary["reference"]["edges_kept"] < 1
    # frames I00000..I00004 are a sequence: flicker is reported, and the baseline's is 1 by construction
    assert models[BASELINE]["flicker_ratio"] == pytest.approx(1.0)
    assert models[str(two_checkpoints[1])]["flicker_ratio"] > 0


def test_bench_quality_lpips_with_random_backbone_and_heldout_split(tmp_path, tiny_checkpoint, no_imagenet):
    data = make_pairs(tmp_path / "d", n=20)
    report = quality_on_pairs(data, [tiny_checkpoint], split="heldout", lpips_random_backbone=True)
    assert report.source["pairs"] == 2  # I00009 and I00019, the pairs training holds out
    assert [r["image"] for r in report.per_image[::2]] == ["lwir/I00009.png", "lwir/I00019.png"]
    assert report.lpips["available"] and all(m.lpips is not None and m.lpips >= 0 for m in report.models)
    assert all(m.flicker_ratio is None for m in report.models)  # every 10th pair: not consecutive frames


def test_bench_quality_kaist_layout_and_sequence_detection(tmp_path, tiny_checkpoint, no_imagenet):
    make_pairs(tmp_path / "kaist" / "set00" / "V000", n=3)
    make_pairs(tmp_path / "kaist" / "set01" / "V001", n=3, seed=1)
    report = quality_on_pairs(tmp_path / "kaist", [tiny_checkpoint])
    assert report.source["pairs"] == 6 and report.source["sequences_for_flicker"] == 2
    assert report.per_image[0]["image"] == "set00/V000/lwir/I00000.png"
    assert is_frame_sequence(["I00000", "I00001", "I00002"]) and is_frame_sequence(["c_0000", "c_0005", "c_0010"])
    assert not is_frame_sequence(["FLIR_00006", "FLIR_00018", "FLIR_00060"]) and not is_frame_sequence(["a", "b", "c"])


def test_bench_quality_scores_each_clip_of_a_folder_as_its_own_sequence(tmp_path, tiny_checkpoint, no_imagenet):
    """Two clips in one folder (M3SVD dusk's CLIP_FRAME names): each is a sequence of its own; read as one,
    the frame numbers (0, 5, 10, 0, 5, 10) are uneven and no flicker was measured at all."""
    data = make_pairs(tmp_path / "d", n=6)
    for side in ("lwir", "visible"):
        for i, f in enumerate(sorted((data / side).iterdir())):
            f.rename(f.with_name(f"{'0111_1753' if i < 3 else '0115_1847'}_{i % 3 * 5:04d}.png"))
    report = quality_on_pairs(data, [tiny_checkpoint])
    assert report.source["pairs"] == 6 and report.source["sequences_for_flicker"] == 2
    models = {m.name: m for m in report.models}
    assert models[BASELINE].flicker_ratio == pytest.approx(1.0)


def make_video_pair(tmp_path, frames=4, size=(48, 32), ref_frames=None, ref_size=None):
    """An IR clip and a 'visible' clip that is a fixed colour mapping of it, frame for frame."""
    w, h = size
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (7, 7), 2)
    irs = [np.roll(base, i, axis=1) for i in range(frames)]
    paths = []
    for name, imgs, fmt in (("ir.mp4", irs, "gray"),
                            ("vis.mp4", [np.stack([f, 255 - f, f // 2], 2) for f in irs], "rgb24")):
        if name == "vis.mp4":
            imgs = imgs[:ref_frames] if ref_frames else imgs
            if ref_size:
                imgs = [cv2.resize(f, ref_size) for f in imgs]
        path = tmp_path / name
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=10)
            s.height, s.width = imgs[0].shape[:2]
            s.pix_fmt, s.time_base = "yuv444p", Fraction(1, 10)
            s.options = {"crf": "0", "preset": "ultrafast"}
            for i, img in enumerate(imgs):
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
        paths.append(path)
    return paths


def test_bench_quality_on_a_registered_video_pair(tmp_path, tiny_checkpoint, no_imagenet):
    ir, vis = make_video_pair(tmp_path)
    report = quality_on_video(ir, vis, [tiny_checkpoint], csv_path=tmp_path / "v.csv")
    assert report.source == {"kind": "video", "video": str(ir), "reference": str(vis), "frames": 4, "temporal": 0.6,
                             "grid_filter": True}
    assert [r["image"] for r in report.per_image[::2]] == [f"ir.mp4#{i}" for i in range(4)]
    base = report.models[0]
    assert base.name == BASELINE and base.flicker_ratio == pytest.approx(1.0)
    assert report.models[1].flicker_ratio > 0
    # the reference is (f, 255 - f, f // 2) of the IR frame f: it changes (1 + 1 + 1/2) / 3 as much as the IR
    change = lambda fs: np.mean([np.abs(b.astype(float) - a.astype(float)).mean() for a, b in zip(fs, fs[1:])])  # noqa: E731
    by_hand = change(read_video(vis)[0]) / change(read_video(ir)[0])
    assert by_hand == pytest.approx(2.5 / 3, abs=0.03)
    assert report.reference_flicker_ratio == pytest.approx(by_hand, rel=0.01)
    assert len(list(csv.DictReader((tmp_path / "v.csv").open()))) == 8
    assert quality_on_video(ir, vis, [tiny_checkpoint], max_frames=2).source["frames"] == 2


def test_bench_quality_bad_video_pairs(tmp_path, tiny_checkpoint):
    ir, vis = make_video_pair(tmp_path, ref_frames=3)
    with pytest.raises(BenchError, match="ends after 3 frames"):
        quality_on_video(ir, vis, [tiny_checkpoint])
    (tmp_path / "other").mkdir()
    ir, vis = make_video_pair(tmp_path / "other", ref_size=(40, 30))
    out = tmp_path / "other" / "q.json"
    assert_clean_failure(invoke("bench", "quality", "--video", ir, "--reference", vis, "-c", tiny_checkpoint,
                                "--json", out), "48x32", "40x30")
    assert not out.exists()


def test_bench_quality_bad_inputs_fail_cleanly_and_write_nothing(tmp_path, tiny_checkpoint):
    out_csv, out_json = tmp_path / "out" / "q.csv", tmp_path / "out" / "q.json"
    out_csv.parent.mkdir()
    outputs = ["--csv", out_csv, "--json", out_json]
    (tmp_path / "empty").mkdir()
    assert_clean_failure(invoke("bench", "quality", "--data", tmp_path / "empty", "-c", tiny_checkpoint, *outputs),
                         "no lwir/ + visible/")
    d = make_pairs(tmp_path / "d", n=4)
    cv2.imwrite(str(d / "visible" / "I00001.png"), np.zeros((10, 10, 3), np.uint8))
    assert_clean_failure(invoke("bench", "quality", "--data", d, "-c", tiny_checkpoint, *outputs), "sizes differ")
    (tmp_path / "lonely" / "lwir").mkdir(parents=True)
    (tmp_path / "lonely" / "visible").mkdir()
    assert_clean_failure(invoke("bench", "quality", "--data", tmp_path / "lonely", "-c", tiny_checkpoint, *outputs),
                         "no image pairs")
    good = make_pairs(tmp_path / "good", n=3)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert_clean_failure(invoke("bench", "quality", "--data", good, "-c", tiny_checkpoint, "-c", bad, *outputs), "bad.pt")
    assert_clean_failure(invoke("bench", "quality", "--data", good, "-c", tiny_checkpoint, "--split", "heldout",
                                *outputs), "no held-out pairs")
    assert_clean_failure(invoke("bench", "quality", "--data", good, "-c", tiny_checkpoint, "--csv",
                                tmp_path / "nowhere" / "q.csv"), "folder does not exist")
    assert list(out_csv.parent.iterdir()) == []


# ---- real data (skipped where absent) --------------------------------------------------------------------------
def test_real_video_pair_first_frames(tiny_checkpoint, no_imagenet):
    clips = shared("clips")
    report = quality_on_video(clips / "m3svd_0111_1716_infrared.mp4", clips / "m3svd_0111_1716_visible.mp4",
                              [tiny_checkpoint], max_frames=3)
    assert report.source["frames"] == 3
    # the IR-as-grey baseline, by hand: the first 3 frames decoded here, SSIM by scikit-image
    with av.open(str(clips / "m3svd_0111_1716_infrared.mp4")) as a, av.open(str(clips / "m3svd_0111_1716_visible.mp4")) as b:
        pairs = list(zip((f.to_ndarray(format="gray") for f in a.decode(video=0)),
                         (f.to_ndarray(format="rgb24") for f in b.decode(video=0))))[:3]
    by_hand = np.mean([structural_similarity(np.repeat(ir[:, :, None], 3, 2).astype(np.float64), vis.astype(np.float64),
                                             data_range=255, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, channel_axis=2) for ir, vis in pairs])
    assert report.models[0].ssim == pytest.approx(by_hand, abs=0.005)


def test_engine_speed_interleaved_rounds_report_each_paths_median(tmp_path, tiny_checkpoint):
    """benchmarks/engine_speed.py --rounds: every path timed once per round, the row's figure the median."""
    import importlib.util
    import statistics
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "engine_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "engine_speed.py")
    engine_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine_speed)
    rates = iter([1e15] + [1e11 * k for k in range(1, 7)])  # the run's first measure, then one per round
    engine_speed.conv_peak = lambda device, dtype, seconds: next(rates)
    out = tmp_path / "speed.json"
    assert engine_speed.main(["--paths", "torch:bf16,nope:fp32", "--sizes", "16x16", "--batches", "1,2", "--rounds",
                              "3", "--seconds", "0.02", "--checkpoint", str(tiny_checkpoint), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = [r for r in report["rows"] if r["available"]]
    assert [(r["path"], r["batch"]) for r in rows] == [("torch:fp32", 1), ("torch:bf16", 1), ("torch:fp32", 2),
                                                      ("torch:bf16", 2)]
    assert [r["path"] for r in report["rows"] if not r["available"]] == ["nope:fp32"]
    for r in rows:
        assert len(r["ms_rounds"]) == 3 and r["ms_per_frame"] == pytest.approx(statistics.median(r["ms_rounds"]), abs=0.06)
    for r in rows:  # over the floor of its own round, not of the run's first measure
        peaks = [1e11, 2e11, 3e11] if r["batch"] == 1 else [4e11, 5e11, 6e11]
        assert r["peak_rounds"] == peaks
        per_round = [t / 1000 / (r["gflop_per_frame"] * 1e9 / p) for t, p in zip(r["ms_rounds"], peaks)]
        assert r["floor_x"] == pytest.approx(statistics.median(per_round), rel=0.05)
    fp32 = rows[2]
    assert rows[3]["vs_eager_fp32"] == pytest.approx(fp32["ms_per_frame"] / rows[3]["ms_per_frame"])
    assert report["rounds"] == 3 and (report["cpu_steal_share"] is None or 0 <= report["cpu_steal_share"] <= 1)


def test_engine_speed_measures_several_models_side_by_side(tmp_path):
    """--models: every model's every path in each round; each row names its model, and its ratio is to the
    eager fp32 of the same model."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "engine_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "engine_speed.py")
    engine_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine_speed)
    engine_speed.conv_peak = lambda device, dtype, seconds: 1e11
    out = tmp_path / "speed.json"
    assert engine_speed.main(["--models", "4,4/1,1", "8,8/1,3", "--paths", "torch:bf16", "--sizes", "16x16",
                              "--batches", "1", "--rounds", "2", "--seconds", "0.02", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["path"]) for r in rows] == [("4,4/1,1", "torch:fp32"), ("4,4/1,1", "torch:bf16"),
                                                      ("8,8/1,3", "torch:fp32"), ("8,8/1,3", "torch:bf16")]
    assert rows[2]["gflop_per_frame"] > rows[0]["gflop_per_frame"]
    for fp32, bf16 in ((rows[0], rows[1]), (rows[2], rows[3])):
        assert bf16["vs_eager_fp32"] == pytest.approx(fp32["ms_per_frame"] / bf16["ms_per_frame"])
    model, desc = engine_speed.model_from_spec("fast")
    assert desc == "fast" and model.config.widths is not None  # the named configuration, random weights


def test_gpu_check_runs_the_identity_run_and_skips_cuda_cleanly_without_a_gpu(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    clip, out = make_video(tmp_path / "in.mp4", frames=6), tmp_path / "gpu.json"
    p = subprocess.run([sys.executable, str(script), "--json", str(out), "--input", str(clip), "--frames", "6"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["identity_run"]["cpu_png"]["frames"] == report["identity_run"]["cpu_h264"]["frames"] == 6
    if not torch.cuda.is_available():
        assert not report["cuda"] and "skipped" in report and "speed" not in report
        assert "GPU measurements were skipped" in p.stdout


class BuildsOnAColdCache:
    """An engine that, started on an empty cache, answers at once but reaches full speed only after a 0.3 s
    background build that fills the cache; started on a filled cache it is at full speed at once."""

    name, precision, size_multiple = "fake", "fp32", 1
    device = torch.device("cpu")
    caches: list = []

    def __init__(self, *args, **kwargs):
        import os
        from pathlib import Path

        self.cache = Path(os.environ["IR2VIS_STREAM_CACHE"])
        self.cold = not (self.cache / "package").exists()
        BuildsOnAColdCache.caches.append((self.cache, self.cold))

    def wait_ready(self):
        if self.cold:
            import time

            time.sleep(0.3)
            self.cache.mkdir(parents=True, exist_ok=True)
            (self.cache / "package").write_text("built")
        return True

    def __call__(self, x):
        return x.expand(-1, 3, -1, -1)

    def describe(self):
        return "fake cpu fp32"


def test_bench_speed_reports_a_cold_start_full_speed_and_a_warm_start(tmp_path, monkeypatch):
    import os

    from ir2vis_stream.bench import stages

    monkeypatch.setenv("IR2VIS_STREAM_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.setattr(stages, "create_engine", BuildsOnAColdCache)
    BuildsOnAColdCache.caches = []
    report = speed_benchmark(make_video(tmp_path / "in.mp4", frames=4), model=GreyIdentity(), engines=("torch",),
                             frames=4, batch_sizes=(2,), naive=False, cold=True)
    (first, first_cold), (second, second_cold) = BuildsOnAColdCache.caches
    assert first_cold and not second_cold and first == second != tmp_path / "user-cache"  # an empty cache, then filled
    assert not first.exists() and os.environ["IR2VIS_STREAM_CACHE"] == str(tmp_path / "user-cache")  # cleaned up
    row = report.rows[0]
    assert report.cold_cache and row.full_speed_s >= row.startup_s + 0.3 and row.warm_startup_s < 0.3
    assert "full s" in _table_text(report) and "empty cache" in _table_text(report)


def _table_text(report) -> str:
    from rich.console import Console

    console = Console(width=400, record=True)
    console.print(speed_table(report))
    return console.export_text()


def test_the_release_gate_fails_exactly_the_test_whose_figure_is_worse():
    from ir2vis_stream.bench.protocol import gate_checks

    def variant(psnr=15.0, ssim=0.5, gmsd=0.25, edges=0.30, grid=1.0, colour=0.4, flicker=0.9, folder_gmsd=0.25):
        m = {"psnr": psnr, "ssim": ssim, "gmsd": gmsd, "edges_kept": edges, "grid": grid, "colourfulness_ratio": colour,
             "flicker_ratio": flicker}
        ir = dict(m, psnr=9.0)
        return {"pairs": {"models": [ir, m], "folders": {"d/msrs_full": [ir, dict(m, gmsd=folder_gmsd)],
                                                         "d/m3svd": [ir, m]}},
                "video": {"models": [ir, m]}}

    release = variant()
    better = dict(psnr=14.85, ssim=0.51, gmsd=0.24, edges=0.35, grid=1.1, colour=0.7, folder_gmsd=0.24)
    assert all(c.passed for c in gate_checks(release, variant(**better)))  # 0.15 dB lower is let in
    for change, failing in [({"psnr": 14.7}, "PSNR on the held-out pairs"), ({"ssim": 0.49}, "SSIM on the held-out"),
                            ({"edges": 0.29}, "IR edges kept on the held-out"), ({"grid": 1.3}, "grid on the held-out"),
                            ({"colour": 1.7}, "colourfulness ratio on the held-out"),  # 0.7 past 1 is no nearer
                            ({"folder_gmsd": 0.26}, "GMSD lower in msrs_full"),
                            ({"flicker": 1.05}, "flicker / IR on the eval video")]:
        candidate = variant(**{**better, **change})
        if not {"folder_gmsd", "flicker"} & set(change):  # the pairs' figures only: the video keeps the better ones
            candidate["video"] = variant(**better)["video"]
        failed = [c.name for c in gate_checks(release, candidate) if not c.passed]
        assert len(failed) == 1 and failed[0].startswith(failing), (change, failed)


def test_bench_quality_full_protocol_gates_the_sharp_folders_and_reports_the_others_apart(tmp_path, tiny_checkpoint,
                                                                                          no_imagenet):
    root = tmp_path / "shared"
    for i, folder in enumerate(("msrs_full", "m3svd", "m3svd_dusk", "msrs", "roadscene")):
        make_pairs(root / folder, n=10, seed=i)
    (root / "clips").mkdir()
    make_video(root / "clips" / "m3svd_0111_1716_infrared.mp4", frames=4)
    make_video(root / "clips" / "m3svd_0111_1716_visible.mp4", frames=4)
    out = tmp_path / "full.json"
    r = invoke("bench", "quality", "--protocol", "full", "--data-root", root, "-c", tiny_checkpoint, "--json", out, "-q")
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["protocol"] == "full" and set(report) == {"protocol", "pairs", "apart", "video"}
    assert sorted(Path(f).name for f in report["pairs"]["folders"]) == ["m3svd", "m3svd_dusk", "msrs_full"]
    assert sorted(Path(f).name for f in report["apart"]["folders"]) == ["msrs", "roadscene"]
    assert report["pairs"]["source"]["split"] == "heldout" and report["pairs"]["source"]["pairs"] == 3
    assert report["video"]["source"]["frames"] == 4 and report["video"]["models"][1]["edges_kept"] > 0
    (root / "m3svd_dusk").rename(tmp_path / "elsewhere")  # a folder the protocol needs is not there
    r = invoke("bench", "quality", "--protocol", "full", "--data-root", root)
    assert_clean_failure(r, "protocol full needs these folders")
    r = invoke("bench", "quality", "--protocol", "full")
    assert r.exit_code == 2 and "--protocol and --data-root go together" in r.output


def test_live_latency_benchmark_reports_each_models_latency_and_drops(tmp_path):
    """benchmarks/live_latency.py: one realtime LiveSession per model on the same 25 fps clip; each row its own."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "live_latency", Path(__file__).resolve().parents[1] / "benchmarks" / "live_latency.py")
    live_latency = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(live_latency)
    out = tmp_path / "latency.json"
    assert live_latency.main(["--models", "4,4/1,1", "8,8/1,2", "--engine", "torch", "--size", "64x48",
                              "--seconds", "1.5", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["model"] for r in report["rows"]] == ["4,4/1,1", "8,8/1,2"] and report["fps"] == 25
    for r in report["rows"]:
        assert r["shown"] > 0 and r["captured"] >= r["shown"] and r["shown"] + r["dropped"] <= r["captured"] + 1
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"] and r["end"] == "time limit"
        assert 20 <= r["captured"] / r["seconds"] <= 30  # paced like a 25 fps camera, not as fast as it reads
    assert report["rows"][1]["gflop_per_frame"] > report["rows"][0]["gflop_per_frame"]
