"""The command line: thin click commands over library calls (``ir2vis_stream.run``, ``train.train``, ...).

Every expected failure is a ``UserError`` (``errors.py``), caught once, at the top: its message as one line,
exit status 1, no traceback. Anything else (a CUDA out-of-memory, a compiler failure, a bug) is caught there
too and shown as one line with its type; ``IR2VIS_STREAM_DEBUG=1`` lets its traceback through for a bug report.

Modules: ``app`` (the group and the one-line error handling), ``options`` (what commands share), and one
module per command: ``run``, ``live``, ``bench``, ``export``, ``train``.
"""

from . import bench, export, live, run, train  # noqa: F401 - each registers its command on main
from .app import main, quiet_library_logs
from .train import train_command

__all__ = ["main", "quiet_library_logs", "train_command"]
