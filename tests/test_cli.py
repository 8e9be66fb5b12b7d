"""The command line: every bad input gives one clear line, a non-zero exit, no traceback, no output left."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import faststart, make_video, read_video
from ir2vis_stream.cli import main


def invoke(*args):
    """Run the CLI in-process. ``run`` gets ``--engine torch``: these tests exercise the job and its errors;
    the compiled and exported engines have their own tests (test_engines.py)."""
    args = [str(a) for a in args]
    if args[0] == "run" and "--engine" not in args:
        args += ["--engine", "torch"]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def assert_clean_failure(result, *fragments):
    assert result.exit_code != 0
    out = result.output
    assert "Traceback" not in out
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out  # "Error: <one sentence>"
    for f in fragments:
        assert f in out, out


def no_leftovers(folder: Path, keep: set[str]):
    return {p.name for p in folder.iterdir()} == keep


def test_run_with_a_checkpoint_writes_the_video(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=5)
    out = tmp_path / "out.mp4"
    r = invoke("run", src, "-o", out, "-c", tiny_checkpoint, "--quiet")
    assert r.exit_code == 0, r.output
    assert len(read_video(out)[0]) == 5


def test_summary_line(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=5)
    r = invoke("run", src, "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint)
    assert r.exit_code == 0
    assert "5 frames in" in r.output and "fps" in r.output and "busy: decode" in r.output


def test_missing_input(tmp_path, tiny_checkpoint):
    r = invoke("run", tmp_path / "nope.mp4", "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint)
    assert_clean_failure(r, "input not found")
    assert no_leftovers(tmp_path, {"tiny.pt"})


@pytest.mark.parametrize("content", [b"hello, I am not a video\n" * 10, b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000)])
def test_not_a_video_or_damaged_header(tmp_path, tiny_checkpoint, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    r = invoke("run", bad, "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint)
    assert_clean_failure(r, "bad.mp4")
    assert no_leftovers(tmp_path, {"tiny.pt", "bad.mp4"})


def test_zero_frames_video(tmp_path, tiny_checkpoint):
    """A valid header and index promising 5 frames, but every byte of picture data zeroed: nothing decodes."""
    data = bytearray(faststart(make_video(tmp_path / "a.mp4", frames=5), tmp_path / "b.mp4").read_bytes())
    k = data.index(b"mdat") + 4
    data[k:] = bytes(len(data) - k)
    src = tmp_path / "empty.mp4"
    src.write_bytes(data)
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).unlink()
    r = invoke("run", src, "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint)
    assert_clean_failure(r, "no frames")
    assert no_leftovers(tmp_path, {"tiny.pt", "empty.mp4"})


def test_empty_folder(tmp_path, tiny_checkpoint):
    (tmp_path / "frames").mkdir()
    r = invoke("run", tmp_path / "frames", "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint)
    assert_clean_failure(r, "no image files")


def test_truncated_video_warns_with_the_count(tmp_path, tiny_checkpoint):
    data = faststart(make_video(tmp_path / "a.mp4", frames=40, width=96, height=64), tmp_path / "b.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    r = invoke("run", cut, "-o", out, "-c", tiny_checkpoint, "--quiet")
    n = len(read_video(out)[0])
    assert r.exit_code == 0
    assert 0 < n < 40
    assert "ended early" in r.output and f"wrote the {n} frames that decoded of 40" in r.output


def test_unknown_output_extension(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    r = invoke("run", src, "-o", tmp_path / "out.xyz", "-c", tiny_checkpoint)
    assert_clean_failure(r, "unknown output type '.xyz'")
    assert no_leftovers(tmp_path, {"tiny.pt", "in.mp4"})


def test_missing_output_folder(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    r = invoke("run", src, "-o", tmp_path / "no" / "such" / "out.mp4", "-c", tiny_checkpoint)
    assert_clean_failure(r, "output folder does not exist")


def test_existing_output_needs_overwrite(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    r = invoke("run", src, "-o", out, "-c", tiny_checkpoint)
    assert_clean_failure(r, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    r = invoke("run", src, "-o", out, "-c", tiny_checkpoint, "--overwrite", "-q")
    assert r.exit_code == 0
    assert len(read_video(out)[0]) == 2


def test_existing_output_folder_overwrite(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    out = tmp_path / "frames"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert_clean_failure(invoke("run", src, "-o", out, "-c", tiny_checkpoint), "already exists")
    r = invoke("run", src, "-o", out, "-c", tiny_checkpoint, "--overwrite", "-q")
    assert r.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png"]


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_unreadable_checkpoint(tmp_path, content):
    src = make_video(tmp_path / "in.mp4", frames=2)
    ck = tmp_path / "bad.pt"
    ck.write_bytes(content)
    r = invoke("run", src, "-o", tmp_path / "out.mp4", "-c", ck)
    assert_clean_failure(r, "checkpoint")
    assert not (tmp_path / "out.mp4").exists()


def test_missing_checkpoint(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=2)
    assert_clean_failure(invoke("run", src, "-o", tmp_path / "out.mp4", "-c", tmp_path / "nope.pt"), "not found")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_where_there_is_none(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    r = invoke("run", src, "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint, "--device", "cuda")
    assert_clean_failure(r, "CUDA is not available")
    assert no_leftovers(tmp_path, {"tiny.pt", "in.mp4"})


def test_bad_infer_size(tmp_path, tiny_checkpoint):
    src = make_video(tmp_path / "in.mp4", frames=2)
    r = invoke("run", src, "-o", tmp_path / "out.mp4", "-c", tiny_checkpoint, "--infer-size", "big")
    assert r.exit_code != 0 and "Traceback" not in r.output and "640x512" in r.output


def test_real_process_exit_status_and_stderr(tmp_path):
    """The installed entry point, as a user runs it: exit 1, one line on stderr."""
    p = subprocess.run([sys.executable, "-m", "ir2vis_stream.cli", "run", str(tmp_path / "missing.mp4"), "-o",
                        str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("Error:") and len(p.stderr.strip().splitlines()) == 1


def test_unexpected_error_is_one_line_not_a_traceback(tmp_path, tiny_checkpoint, monkeypatch):
    """Anything a command did not foresee (CUDA out of memory, a compiler crash) still ends in one line."""
    import ir2vis_stream.api

    def exploding_run(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    monkeypatch.setattr(ir2vis_stream.api, "run", exploding_run)
    monkeypatch.delenv("IR2VIS_STREAM_DEBUG", raising=False)
    r = CliRunner().invoke(main, ["run", str(make_video(tmp_path / "in.mp4")), "-o", str(tmp_path / "out.mp4"),
                                  "-c", str(tiny_checkpoint)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().splitlines() == [
        "Error: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (IR2VIS_STREAM_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("IR2VIS_STREAM_DEBUG", "1")
    r = CliRunner().invoke(main, ["run", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), "-c", str(tiny_checkpoint)])
    assert isinstance(r.exception, RuntimeError)


def test_user_errors_are_their_message_and_a_programming_error_is_not_one(tmp_path, tiny_checkpoint, monkeypatch):
    """One base, caught in one place: a UserError (multi-line too) is its message; a bare ValueError is a bug."""
    import ir2vis_stream.api
    from ir2vis_stream.errors import UserError

    monkeypatch.delenv("IR2VIS_STREAM_DEBUG", raising=False)
    args = ["run", str(make_video(tmp_path / "in.mp4")), "-o", str(tmp_path / "out.mp4"), "-c", str(tiny_checkpoint)]
    for exc, line in [(UserError("the clip is gone\nfor good"), "Error: the clip is gone; for good"),
                      (ValueError("too many values to unpack"),
                       "Error: ValueError: too many values to unpack (IR2VIS_STREAM_DEBUG=1 shows the traceback)")]:
        def failing_run(*a, exc=exc, **kw):
            raise exc

        monkeypatch.setattr(ir2vis_stream.api, "run", failing_run)
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1 and r.output.strip().splitlines() == [line]


def test_every_error_class_of_the_package_is_a_user_error():
    from ir2vis_stream.bench import BenchError
    from ir2vis_stream.checkpoint import CheckpointError
    from ir2vis_stream.engines.base import EngineUnavailable
    from ir2vis_stream.errors import ConfigError, UserError
    from ir2vis_stream.hardware import DeviceError
    from ir2vis_stream.live import LiveError
    from ir2vis_stream.media import MediaError
    from ir2vis_stream.metrics import LPIPSUnavailable
    from ir2vis_stream.train.data import DataError
    from ir2vis_stream.train.vgg import VGGWeightsMissing

    for cls in (BenchError, CheckpointError, ConfigError, DataError, DeviceError, EngineUnavailable, LiveError,
                LPIPSUnavailable, MediaError, VGGWeightsMissing):
        assert issubclass(cls, UserError), cls


def test_library_warnings_are_one_line(tmp_path, tiny_checkpoint):
    p = subprocess.run([sys.executable, "-m", "ir2vis_stream.cli", "run", str(make_video(tmp_path / "in.mp4")), "-o",
                        str(tmp_path / "out.mp4"), "-c", str(tiny_checkpoint), "--fps", "25", "-q", "--engine", "torch"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "warning: --fps applies to frame folders; a video keeps its own timestamps"


PROBE = """
import logging, sys
from ir2vis_stream import cli

@cli.main.command("probe-logs")
def probe():
    import torch  # torch's logging is set up on import, as in every command
    logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found (probe)")

cli.main(["probe-logs"])
"""


@pytest.mark.parametrize("debug", ["", "1"])
def test_torch_log_lines_are_hidden_unless_debugging(debug):
    env = {**os.environ, "IR2VIS_STREAM_DEBUG": debug}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("No CUDA runtime is found (probe)" in r.stderr) == bool(debug), r.stderr


def test_the_one_progress_bar_counts_frames_and_epochs_and_is_silent_off_a_terminal(capsys):
    import types

    from ir2vis_stream.progress import FrameProgress, ProgressBar
    from ir2vis_stream.train.trainer import _epoch_columns

    frames = FrameProgress()
    frames.live = True  # as on a terminal
    with frames:
        frames.start(types.SimpleNamespace(frames=10))
        assert frames.bar.tasks[0].description == "starting engine"
        frames.update(2)
        frames.update(5)
        task = frames.bar.tasks[0]
        assert (task.description, task.completed, task.total) == ("colourising", 5, 10) and task.fields["fps"] > 0
    epochs = ProgressBar(True, _epoch_columns, info="")
    epochs.live = True
    with epochs:
        epochs.new_task("epoch 1/2", 5, 1)
        epochs.new_task("epoch 2/2", 5, 0)  # replaces the first
        epochs.update(advance=1, info="L_G 1.00")
        assert [(t.description, t.completed, t.fields["info"]) for t in epochs.bar.tasks] == [("epoch 2/2", 1, "L_G 1.00")]
    capsys.readouterr()  # what the forced bars drew
    quiet = ProgressBar(True, _epoch_columns, info="")  # stderr is not a terminal under pytest: no bar
    with quiet:
        quiet.new_task("epoch 1/1", 3)
        quiet.update(advance=1)
        quiet.print("epoch 1: done")
    assert quiet.bar is None and capsys.readouterr().out == "epoch 1: done\n"


def test_train_options_are_the_config_fields_with_their_defaults_and_types(tmp_path, monkeypatch):
    """``train``'s options come from TrainConfig: no options give exactly the library's defaults, and each kind
    of option (negated flag, renamed, WxH, repeatable, toggle, optional int) lands in its field, typed."""
    from dataclasses import fields

    import ir2vis_stream.train
    from ir2vis_stream.train import TrainConfig

    runs = []
    monkeypatch.setattr(ir2vis_stream.train, "train", lambda cfg, resume=False: runs.append((cfg, resume)))
    assert invoke("train", "d1", "d2").exit_code == 0
    assert runs[-1] == (TrainConfig(data=["d1", "d2"]), False)
    r = invoke("train", "d", "--no-cos", "--d-scales", 3, "--resize", "64x48", "--heldout-prefix", "a",
               "--heldout-prefix", "b", "--compile", "--max-epochs-this-run", 2, "--lr", "1e-3", "--up", "resize-conv",
               "-o", tmp_path / "run", "-q", "--resume")
    assert r.exit_code == 0, r.output
    cfg, resume = runs[-1]
    assert resume and cfg == TrainConfig(data=["d"], cos=False, num_d=3, resize=(64, 48), heldout_prefixes=["a", "b"],
                                         compile=True, max_epochs_this_run=2, lr=1e-3, out=str(tmp_path / "run"),
                                         quiet=True, generator_config={"up": "resize-conv"})
    assert isinstance(cfg.max_epochs_this_run, int) and isinstance(cfg.lr, float)
    help_text = invoke("train", "--help").output
    for f in fields(TrainConfig):
        if "cli" in f.metadata:
            assert f.metadata["cli"]["help"][:20] in " ".join(help_text.split()), f.name
