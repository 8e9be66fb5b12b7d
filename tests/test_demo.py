"""``make demo``'s entry: makes a synthetic clip, colourises it with the bundled model, says where it is."""

import cv2
import numpy as np

from conftest import read_video
from ir2vis_stream import demo


def test_demo_on_synthetic_clip(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("IR2VIS_STREAM_CHECKPOINT", str(tiny_checkpoint))
    assert demo.main(["--out", str(tmp_path / "demo"), "--engine", "torch"]) == 0
    out = tmp_path / "demo" / "synthetic_thermal_colour.mp4"
    frames, *_ = read_video(out)
    assert len(frames) == 48 and frames[0].shape == (240, 640, 3)  # side by side
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    # and a picture of it: frames 0, 16, 31 and 47 of the side-by-side video, stacked
    sheet = tmp_path / "demo" / "synthetic_thermal_frames.png"
    assert str(sheet.resolve()) in printed
    image = cv2.cvtColor(cv2.imread(str(sheet)), cv2.COLOR_BGR2RGB)
    assert image.shape == (4 * 240, 640, 3)
    for row, index in enumerate((0, 16, 31, 47)):
        assert np.abs(image[240 * row:240 * (row + 1)].astype(int) - frames[index].astype(int)).mean() < 1.0


def test_demo_without_bundled_model_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IR2VIS_STREAM_CHECKPOINT", str(tmp_path / "none.pt"))
    assert demo.main(["--out", str(tmp_path / "demo")]) == 1
    assert "not found" in capsys.readouterr().err
