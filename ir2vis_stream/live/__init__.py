"""Live colourisation: a camera (or stream, or a file played like one) -> engine -> window / recording / MJPEG.

A live viewer wants the newest picture, not every picture. The file-to-file ``Pipeline`` queues frames so
that none is lost; here a queue would make the delay grow without bound whenever inference is slower than
the camera. So capture and inference meet in a one-frame mailbox (``LatestFrame``): the capture thread
replaces a frame that inference has not taken yet (counted as dropped), and inference always takes the
newest. Latency then stays near one capture interval + one inference + output, whatever the two rates.

    camera ──capture thread──▶ [LatestFrame: 1 slot] ──inference loop (caller's thread)──▶ window
            timestamps each       newest wins,           grey, resize, engine (batch 1),    recording (VideoSink)
            frame; reconnects     stale ones dropped     colour, readout overlay            MJPEG server (latest frame)

The inference loop runs on the calling thread because GUI toolkits want their window there and Ctrl-C
arrives there. Outputs never hold inference up for long: the recorder only hands frames to x264, which
encodes on its own threads, and the MJPEG server keeps just the latest frame, which the clients' threads
JPEG-encode (once per frame) and send when it changes. Latency is measured per frame from its capture
(``time.monotonic`` when the camera delivered it) to the moment every output has it.

Modules: ``sources`` (camera, stream, file: ``open_reader``), ``mailbox`` (``LatestFrame``), ``outputs`` (the
``Output`` protocol, window, recording, readout), ``mjpeg`` (the server), ``stats`` (``LiveStats``),
``session`` (``LiveSession``, the loop that joins them).
"""

from .errors import NO_DISPLAY, LiveError
from .mailbox import CapturedFrame, LatestFrame
from .mjpeg import MjpegServer, parse_serve_address
from .outputs import Output, Recorder, Window, display_available, draw_readout
from .session import LiveSession
from .sources import CameraReader, FileReader, FrameReader, open_reader
from .stats import LiveStats, Reservoir

__all__ = ["CameraReader", "CapturedFrame", "FileReader", "FrameReader", "LatestFrame", "LiveError", "LiveSession",
           "LiveStats", "MjpegServer", "NO_DISPLAY", "Output", "Recorder", "Reservoir", "Window", "display_available",
           "draw_readout", "open_reader", "parse_serve_address"]
