"""Video and frame-folder reading and writing, with timestamps kept on every frame.

Sources yield ``SourceFrame``s (an (H, W) uint8/uint16 grey array plus ``pts`` in ``time_base`` units);
sinks take RGB arrays (a video sink also frames already in its ``format``) with the same ``pts``. The pipeline never sees a codec: PyAV (FFmpeg) does video,
OpenCV does image files. Every sink writes to a temporary name beside the target and renames it into place
only in ``close()``, so a failed or aborted job never leaves a half-written output under the real name.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .colour import VideoFormat, colour_standard
from .errors import UserError
from .frames import IMAGE_EXTENSIONS, natural_key, read_image

VIDEO_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov"}


class MediaError(UserError):
    """Input or output that cannot be used; the message is one sentence for the user."""


@dataclass
class SourceFrame:
    index: int
    image: np.ndarray  # (H, W) uint8 or uint16 grey
    pts: int | None
    time_base: Fraction


@dataclass
class SourceInfo:
    width: int
    height: int
    fps: Fraction  # nominal rate (average for variable-rate video)
    time_base: Fraction
    frames: int | None  # known or estimated count; None if unknown
    kind: str  # "video", "folder" or "camera"
    audio: bool = False
    frames_exact: bool = False  # True when ``frames`` comes from the container's index, not an estimate


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---- sources -----------------------------------------------------------------------------------------------
def rgb_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The (H, W, 3) uint8 RGB frames of a colour video, in order (``VideoSource`` gives grey ones, by design):
    a visible reference video, or a video ``run`` wrote."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


class VideoSource:
    """Any video FFmpeg can read, decoded with frame threading; grey frames with their pts.

    A stream that breaks off (a truncated file) ends the iteration with ``self.truncated = True`` and a
    count of the frames that did decode, rather than an exception.
    """

    def __init__(self, path: str | os.PathLike):
        import av

        self.path = Path(path)
        if not self.path.exists():
            raise MediaError(f"input not found: {self.path}")
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"cannot open {self.path}: not a video or its header is damaged ({_first_line(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(f"{self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        if not cc.width or not cc.height:
            self.container.close()
            raise MediaError(f"cannot read {self.path}: the video stream has no frame size (damaged header?)")
        fps = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate or Fraction(30)
        frames = self.stream.frames or None
        if frames is None and self.stream.duration and self.stream.time_base:
            frames = round(float(self.stream.duration * self.stream.time_base * fps)) or None
        self.info = SourceInfo(width=cc.width, height=cc.height, fps=Fraction(fps), time_base=self.stream.time_base,
                               frames=frames, kind="video", audio=bool(self.container.streams.audio),
                               frames_exact=bool(self.stream.frames))
        self.sixteen_bit = _is_high_depth(cc.pix_fmt)
        self.truncated = False
        self.decode_error: str | None = None

    def __iter__(self) -> Iterator[SourceFrame]:
        import av

        fmt = "gray16le" if self.sixteen_bit else "gray"
        index = 0
        try:
            for frame in self.container.decode(self.stream):
                yield SourceFrame(index, frame.to_ndarray(format=fmt), frame.pts, self.stream.time_base)
                index += 1
        except (av.FFmpegError, EOFError) as exc:
            self.truncated = True
            self.decode_error = _first_line(exc)

    def close(self) -> None:
        self.container.close()


def _is_high_depth(pix_fmt: str | None) -> bool:
    import av

    if not pix_fmt:
        return False
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
    except (ValueError, AttributeError):
        return "16" in pix_fmt or "10" in pix_fmt or "12" in pix_fmt


class FolderSource:
    """A folder of images (a KAIST ``lwir/`` sequence or any), natural-sorted, at ``fps`` frames per second.

    ``mixed_sizes``: images may differ in size (stills going to a folder of frames); otherwise (a video needs one
    frame size) an image whose size differs from the first one's stops the job with a clear error.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, mixed_sizes: bool = False):
        self.path = Path(path)
        if not self.path.is_dir():
            raise MediaError(f"input not found: {self.path}")
        self.files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise MediaError(f"{self.path} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        first = self._read(self.files[0])
        rate = Fraction(fps).limit_denominator(1001)
        self.info = SourceInfo(width=first.shape[1], height=first.shape[0], fps=rate, time_base=1 / rate,
                               frames=len(self.files), kind="folder", frames_exact=True)
        self.mixed_sizes = mixed_sizes
        self.truncated = False
        self.decode_error = None

    def _read(self, path: Path) -> np.ndarray:
        try:
            img = read_image(path)
        except ValueError:
            raise MediaError(f"cannot read image {path}") from None
        return img

    def __iter__(self) -> Iterator[SourceFrame]:
        for i, p in enumerate(self.files):
            img = self._read(p)
            if not self.mixed_sizes and img.shape[:2] != (self.info.height, self.info.width):
                raise MediaError(f"{p.name} is {img.shape[1]}x{img.shape[0]}, but the sequence started at "
                                 f"{self.info.width}x{self.info.height}; a video has one frame size (a folder "
                                 f"output takes images of any size)")
            yield SourceFrame(i, img, i, self.info.time_base)

    def close(self) -> None:
        pass


def open_source(path: str | os.PathLike, fps: float | None = None, mixed_sizes: bool = False):
    """A folder -> FolderSource (at ``fps``, default 30; ``mixed_sizes`` as there), anything else -> VideoSource."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p, fps or 30.0, mixed_sizes=mixed_sizes)
    if fps is not None:
        warnings.warn("--fps applies to frame folders; a video keeps its own timestamps")
    return VideoSource(p)


# ---- sinks -------------------------------------------------------------------------------------------------
def check_output(path: str | os.PathLike, overwrite: bool) -> tuple[Path, str]:
    """Validate an output path before any work starts; returns (path, kind) with kind 'video' or 'folder'."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        kind = "video"
    elif suffix == "":
        kind = "folder"
    else:
        raise MediaError(f"unknown output type {suffix!r}: use .mp4, .mkv or .mov for video, or a name without "
                         f"extension for a folder of PNG frames")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise MediaError(f"output folder does not exist: {parent}")
    if p.exists() and not overwrite:
        raise MediaError(f"{p} already exists; pass --overwrite to replace it")
    if p.exists() and kind == "video" and p.is_dir():
        raise MediaError(f"{p} is a folder, not a video file")
    return p, kind


class VideoSink:
    """H.264 (libx264) video with the input's timestamps; audio copied from ``audio_from`` if it has any.

    The stream is tagged with the colour standard of its size (``colour.colour_standard``: matrix, primaries,
    transfer, limited range); ``format`` says what it encodes. ``write`` takes an RGB frame (converted to YUV
    with that standard by swscale) or a PyAV frame already in ``format`` (the frame processor's GPU path
    converts there and hands over YUV planes).
    """

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, time_base: Fraction,
                 crf: int = 18, preset: str = "veryfast", audio_from: Path | None = None, overwrite: bool = False):
        import av

        self.path = path
        self.overwrite = overwrite
        self.tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
        self.container = av.open(str(self.tmp), mode="w", format=VIDEO_EXTENSIONS[path.suffix.lower()])
        try:
            self.stream = self.container.add_stream("libx264", rate=fps)
            self.stream.width, self.stream.height = width, height
            # 4:2:0 needs even sides; odd-sized frames are encoded 4:4:4 rather than cropped or padded.
            self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            self.format = VideoFormat(self.stream.pix_fmt, colour_standard(width, height))
            cc = self.stream.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = self.format.standard.tag
            cc.color_range = 1  # MPEG (limited)
            self.stream.time_base = time_base
            self.stream.codec_context.time_base = time_base
            self.stream.options = {"crf": str(crf), "preset": preset}
            cc.thread_count = 0  # x264 picks its threads from the cores (about 1.5 per core), frame-parallel
            self.audio_in = self.audio_out = self.audio_packets = None
            if audio_from is not None:
                self._open_audio(audio_from)
        except Exception:
            self.container.close()
            self.tmp.unlink(missing_ok=True)
            raise
        self.frames = 0
        self.last_time = None
        self.frame_seconds = 1 / float(fps) if fps else 0.0  # one frame's duration: the video ends this late

    def _open_audio(self, source: Path) -> None:
        import av

        src = av.open(str(source))
        if not src.streams.audio:
            src.close()
            return
        in_stream = src.streams.audio[0]
        codec = in_stream.codec_context.name
        if codec not in self.container.supported_codecs:
            src.close()
            warnings.warn(f"the input's audio ({codec}) cannot be stored in a {self.path.suffix} file, so the "
                          f"output has no sound; .mkv or .mov hold more kinds of audio")
            return
        self.audio_in = src
        self.audio_out = self.container.add_stream_from_template(in_stream)
        self.audio_packets = (p for p in src.demux(in_stream) if p.dts is not None)
        self.pending_audio = None

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy audio packets up to ``seconds`` of presentation time (all of them if None)."""
        if self.audio_packets is None:
            return
        while True:
            pkt = self.pending_audio or next(self.audio_packets, None)
            self.pending_audio = None
            if pkt is None:
                self.audio_packets = None
                return
            t = float(pkt.pts * pkt.time_base) if pkt.pts is not None else None
            if seconds is not None and t is not None and t > seconds:
                self.pending_audio = pkt
                return
            pkt.stream = self.audio_out
            self.container.mux(pkt)

    def write(self, image, pts: int | None, time_base: Fraction) -> None:
        """One frame: (H, W, 3) uint8 RGB, or a PyAV frame in ``self.format``."""
        if isinstance(image, np.ndarray):
            frame = self.format.frame_from_rgb(image)
        elif image.format.name == self.format.pix_fmt:
            frame = image
        else:
            raise ValueError(f"a {image.format.name} frame given to a {self.format.pix_fmt} sink")
        if pts is None:  # an unstamped frame comes one frame period after the last, at the sink's rate
            pts = round(self.frames * self.frame_seconds / time_base)
        frame.pts = pts
        frame.time_base = time_base
        self.last_time = float(frame.pts * time_base)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self._mux_audio_until(self.last_time)
        self.frames += 1

    def close(self, *, keep: bool = True, audio_until_end: bool = True) -> None:
        """Flush and finalise; rename into place if ``keep``, else delete the temporary file.

        ``audio_until_end``: copy the rest of the audio; otherwise (a stopped job, a preview) only the audio
        that starts before the last frame ends, so sound and picture end together."""
        try:
            if keep:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
                video_end = (self.last_time or 0.0) + self.frame_seconds
                self._mux_audio_until(None if audio_until_end else video_end - 1e-6)
        finally:
            self.container.close()
            if self.audio_in is not None:
                self.audio_in.close()
        if keep and self.frames > 0:
            if self.overwrite and self.path.is_dir():
                shutil.rmtree(self.path)
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class FolderSink:
    """PNG frames ``frame_000000.png``... in a new folder, created under a temporary name and renamed at the end."""

    def __init__(self, path: Path, overwrite: bool = False):
        self.path = path
        self.overwrite = overwrite
        self.tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.frames = 0

    def write(self, rgb: np.ndarray, pts: int | None, time_base: Fraction) -> None:
        name = self.tmp / f"frame_{self.frames:06d}.png"
        if not cv2.imwrite(str(name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise MediaError(f"cannot write {name}")
        self.frames += 1

    def close(self, *, keep: bool = True, audio_until_end: bool = True) -> None:
        if keep and self.frames > 0:
            if self.path.exists() and self.overwrite:
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            os.replace(self.tmp, self.path)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
