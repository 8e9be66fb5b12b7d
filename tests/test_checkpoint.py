"""The checkpoint format: round trip, metadata, fp16 storage, and clear errors for bad files."""

import cv2
import numpy as np
import pytest
import torch

from conftest import tiny_generator
from ir2vis_stream.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ir2vis_stream.files import atomic_write


def test_round_trip_restores_weights_config_and_meta(tmp_path):
    g = tiny_generator().eval()
    path = save_checkpoint(tmp_path / "g.pt", g, {"epochs_done": 3, "train_size": {"short_side": 64}})
    ck = load_checkpoint(path)
    x = torch.randn(1, 1, 24, 32)
    torch.testing.assert_close(ck.model(x), g(x))
    assert ck.meta["epochs_done"] == 3
    assert ck.meta["num_params"] == sum(p.numel() for p in g.parameters())
    assert "normalisation" in ck.meta
    assert ck.train_size == {"short_side": 64}


def test_half_precision_storage_loads_as_fp32(tmp_path):
    g = tiny_generator().eval()
    ck = load_checkpoint(save_checkpoint(tmp_path / "g.pt", g, half=True))
    assert all(p.dtype == torch.float32 for p in ck.model.parameters())
    x = torch.randn(1, 1, 16, 16)
    assert (ck.model(x) - g(x)).abs().max() < 1e-2


def test_resnet9_round_trip(tmp_path):
    from ir2vis_stream.model import ResnetGenerator

    g = ResnetGenerator(width=4).eval()
    ck = load_checkpoint(save_checkpoint(tmp_path / "r.pt", g))
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(ck.model(x), g(x))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_garbage_file(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(p)


def test_truncated_file(tmp_path):
    p = save_checkpoint(tmp_path / "g.pt", tiny_generator())
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def test_foreign_torch_file(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, p)
    with pytest.raises(CheckpointError, match="not an ir2vis-stream"):
        load_checkpoint(p)


def test_arbitrary_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"format": "ir2vis-stream/generator", "payload": Evil()}, p)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(p)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    p = save_checkpoint(tmp_path / "g.pt", tiny_generator())
    payload = torch.load(p, weights_only=True)
    payload["generator"]["config"]["width"] = 8
    torch.save(payload, p)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(p)


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    p = tmp_path / "a.png"
    atomic_write(p, b"old")

    def failing(tmp):
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(p, failing)
    assert p.read_bytes() == b"old" and list(tmp_path.iterdir()) == [p]
    # a writer that picks its format by the extension (cv2.imwrite) sees the path's own
    atomic_write(p, lambda tmp: cv2.imwrite(str(tmp), np.full((2, 3), 7, np.uint8)))
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).tolist() == [[7, 7, 7], [7, 7, 7]]
