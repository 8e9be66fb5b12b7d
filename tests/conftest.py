"""Test helpers: every test makes its own small data (videos, frame folders, checkpoints)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from torch import nn

from ir2vis_stream.checkpoint import save_checkpoint
from ir2vis_stream.model import GeneratorConfig, MultiScaleGenerator

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def frame_value(i: int) -> int:
    """The grey level that marks frame i (distinct for i < 24, far apart enough to survive lossy coding)."""
    return 20 + 9 * (i % 24)


def make_frame(i: int, width: int, height: int, sixteen_bit: bool = False) -> np.ndarray:
    """A frame whose left half is flat at frame_value(i) and whose right half carries a moving gradient."""
    img = np.full((height, width), frame_value(i), np.uint8)
    x = np.arange(width - width // 2)
    img[:, width // 2:] = ((x[None, :] * 4 + i * 7) % 256).astype(np.uint8)
    if sixteen_bit:
        return img.astype(np.uint16) * 64 + 1000  # 16-bit radiometric-like range
    return img


def make_video(path: Path, frames: int = 12, width: int = 64, height: int = 48, fps: int = 10,
               pts: list[int] | None = None, time_base: Fraction | None = None, audio: bool = False,
               codec: str = "libx264", pix_fmt: str = "yuv420p", sixteen_bit: bool = False) -> Path:
    """Encode a patterned clip; ``pts`` in ``time_base`` units gives variable frame rates."""
    tb = time_base or Fraction(1, fps)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        s.time_base = tb
        s.codec_context.time_base = tb
        if codec == "libx264":
            s.options = {"crf": "0", "preset": "ultrafast", "bf": "0"}
        a = None
        if audio:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for i in range(frames):
            img = make_frame(i, width, height, sixteen_bit)
            f = av.VideoFrame.from_ndarray(img, format="gray16le" if sixteen_bit else "gray")
            f.pts = pts[i] if pts else i
            f.time_base = tb
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        if a is not None:
            n = int(16000 * frames / fps)
            t = np.arange(n) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp", layout="mono")
                af.sample_rate = 16000
                af.pts = start
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path


def read_video(path: Path):
    """(frames as (H, W, 3) uint8 RGB, pts list, time_base, average_rate, has_audio)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames, pts = [], []
        for f in c.decode(s):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(f.pts)
        return frames, pts, s.time_base, s.average_rate, bool(c.streams.audio)


def faststart(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) first, so a damaged or cut file still opens and promises its frames."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = s
                o.mux(p)
    return dst


def make_folder(path: Path, frames: int = 6, width: int = 40, height: int = 30, sixteen_bit: bool = False,
                ext: str = ".png") -> Path:
    path.mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(path / f"I{i:05d}{ext}"), make_frame(i, width, height, sixteen_bit))
    return path


def make_pairs(root: Path, n: int = 12, size=(48, 40), seed: int = 0) -> Path:
    """lwir/ + visible/ pairs where the visible image is a colour mapping of the IR one."""
    rng = np.random.default_rng(seed)
    (root / "lwir").mkdir(parents=True)
    (root / "visible").mkdir()
    w, h = size
    for i in range(n):
        ir = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (7, 7), 2)
        vis = np.stack([ir, 255 - ir, ir // 2], axis=2)  # BGR on disk
        cv2.imwrite(str(root / "lwir" / f"I{i:05d}.png"), ir)
        cv2.imwrite(str(root / "visible" / f"I{i:05d}.png"), vis)
    return root


class GreyIdentity(nn.Module):
    """A 'generator' that returns its IR input as grey RGB, so output pixels can be checked exactly."""

    in_channels = 1
    size_multiple = 1

    def forward(self, x):
        return x.expand(-1, 3, -1, -1)


@pytest.fixture
def identity():
    return GreyIdentity()


@pytest.fixture(autouse=True)
def private_cache_and_no_stray_builds(tmp_path_factory, monkeypatch):
    """Tests never touch the user's cache, and a compiled engine's background package build (a process that
    would outlive its run to cache the package) is stopped when its test ends."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("IR2VIS_STREAM_CACHE", str(cache))
    yield
    from ir2vis_stream.engines import aot

    aot.cancel_builds()
    # A build another process started (a command run as a subprocess) is not ours to cancel: it would go on
    # for minutes at the lowest priority and slow every test after it. Such a test should pick its engine.
    stray = stray_builds(cache)
    for pid in stray:
        aot.kill_build(pid)
    assert not stray, "this test left a package build running (a subprocess on --engine auto?); give it --engine torch"


def stray_builds(cache: Path) -> list[int]:
    """Process ids of package builds (``python -m ir2vis_stream.engines.aot``) writing under ``cache``."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ir2vis_stream.engines.aot" in args and any(str(cache).encode() in a for a in args):
            found.append(int(entry.name))
    return found


def tiny_generator(seed: int = 0) -> MultiScaleGenerator:
    torch.manual_seed(seed)
    return MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1)))


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "tiny.pt", tiny_generator(), {"train_size": {"short_side": 32}})


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "in.mp4")


def shared(name: str) -> Path:
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(f"shared data {p} is not available")
    return p
