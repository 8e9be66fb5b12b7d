"""RGB -> YUV 4:2:0 in torch (the GPU path's) against numbers worked out by hand and against FFmpeg's swscale."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from ir2vis_stream.colour import BT601, BT709, VideoFormat, colour_standard, rgb_to_i420
from ir2vis_stream.media import VideoSink


def planes(rgb: np.ndarray, standard) -> np.ndarray:
    return rgb_to_i420(torch.from_numpy(rgb).permute(2, 0, 1)[None], standard)[0].numpy()


def test_hd_is_709_and_sd_is_601():
    assert colour_standard(1280, 720) is BT709 and colour_standard(1920, 1080) is BT709
    assert colour_standard(640, 512) is BT601 and colour_standard(720, 576) is BT601


@pytest.mark.parametrize("standard,y,cb,cr", [
    # pure red, limited range: Y = 16 + 219 Kr; Cb = 128 - 224 Kr / (2 (1 - Kb)); Cr = 128 + 224 / 2
    (BT601, 81, 90, 240),  # 16 + 65.48; 128 - 37.79
    (BT709, 63, 102, 240),  # 16 + 46.56; 128 - 25.66
])
def test_pure_red_by_hand(standard, y, cb, cr):
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    out = planes(red, standard)
    assert out.shape == (6, 6) and out.dtype == np.uint8
    assert (out[:4] == y).all()
    chroma = out[4:].reshape(-1)  # Cb (2x3), then Cr (2x3), as rows of 6
    assert (chroma[:6] == cb).all() and (chroma[6:] == cr).all()


def test_white_black_and_grey_are_neutral():
    for level, y in ((0, 16), (255, 235), (128, 126)):  # 16 + 219 * 128 / 255 = 125.9
        out = planes(np.full((2, 2, 3), level, np.uint8), BT709)
        assert (out[:2] == y).all() and (out[2:] == 128).all(), level


@pytest.mark.parametrize("standard", [BT601, BT709])
def test_agrees_with_swscale_on_a_smooth_image(standard):
    """Where the 2x2 chroma average and swscale's own subsampling filter see the same colour (a smooth image),
    the two conversions agree to rounding."""
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)
    ours = planes(rgb, standard).astype(int)
    theirs = VideoFormat("yuv420p", standard).frame_from_rgb(rgb).to_ndarray(format="yuv420p").astype(int)
    assert np.abs(ours - theirs).max() <= 1


def test_odd_sides_are_refused():
    with pytest.raises(ValueError, match="even sides"):
        rgb_to_i420(torch.zeros(1, 3, 5, 4), BT601)


def test_planes_encode_as_the_colour_they_were_made_from(tmp_path):
    """I420 planes handed to a video sink come back, through x264 and a decoder honouring the tags, as the RGB
    they were converted from; a frame in another format is refused."""
    import av

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 40, 30)
    rgb[:, 32:] = (20, 90, 220)
    out = tmp_path / "planes.mp4"
    sink = VideoSink(out, 64, 48, Fraction(10), Fraction(1, 10), crf=0, preset="ultrafast")
    assert sink.format.i420 and sink.format.standard is BT601
    for i in range(2):
        sink.write(sink.format.frame_from_i420(planes(rgb, sink.format.standard)), i, Fraction(1, 10))
    with pytest.raises(ValueError, match="rgb24 frame given to a yuv420p sink"):
        sink.write(av.VideoFrame.from_ndarray(rgb, format="rgb24"), 2, Fraction(1, 10))
    sink.close()
    with av.open(str(out)) as c:
        back = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    inner = np.abs(back - rgb)[4:-4, np.r_[4:28, 36:60]]  # away from the edge where chroma is shared
    assert inner.max() <= 3
    with pytest.raises(ValueError, match="I420 planes given to a yuv444p sink"):
        VideoFormat("yuv444p", BT601).frame_from_i420(planes(rgb, BT601))
