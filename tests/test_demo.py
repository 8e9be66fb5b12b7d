"""``make demo``'s entry: makes a synthetic clip, colourises it with the bundled model, says where it is."""

from ir2vis_stream import checkpoint, demo
from conftest import read_video


def test_demo_on_synthetic_clip(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(checkpoint, "default_checkpoint_path", lambda: tiny_checkpoint)
    monkeypatch.setattr(demo, "default_checkpoint_path", lambda: tiny_checkpoint)
    monkeypatch.setattr("ir2vis_stream.api.default_checkpoint_path", lambda: tiny_checkpoint)
    assert demo.main(["--out", str(tmp_path / "demo")]) == 0
    out = tmp_path / "demo" / "synthetic_thermal_colour.mp4"
    frames, *_ = read_video(out)
    assert len(frames) == 48 and frames[0].shape == (240, 640, 3)  # side by side
    assert str(out.resolve()) in capsys.readouterr().out


def test_demo_without_bundled_model_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "default_checkpoint_path", lambda: tmp_path / "none.pt")
    assert demo.main(["--out", str(tmp_path / "demo")]) == 1
    assert "not found" in capsys.readouterr().err
