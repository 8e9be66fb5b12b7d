"""The ``ir2vis-stream`` group and its error handling: a ``UserError`` (``errors.py``) is caught once, here,
and shown as its message on one line, exit status 1, no traceback; anything else (a CUDA out-of-memory, a
compiler failure, a bug) as one line with its type (``IR2VIS_STREAM_DEBUG=1`` lets its traceback through).
"""

from __future__ import annotations

import errno
import os

import click

from ..errors import UserError, one_line
from ..hardware import reuse_freed_memory


class OneLineErrors:
    """Mixin for click commands and groups: a ``UserError`` becomes its message on one line, anything else one
    line with its type and the debug hint; exit status 1 either way."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, EOFError):
            raise  # click's own handling: a message, a quiet exit, "Aborted!"
        except UserError as exc:
            raise click.ClickException(one_line(exc)) from None
        except Exception as exc:
            if os.environ.get("IR2VIS_STREAM_DEBUG", "") not in ("", "0"):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # output piped into `head` and closed: click exits quietly
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise click.ClickException(f"{type(exc).__name__}: {first} (IR2VIS_STREAM_DEBUG=1 shows the traceback)") from None


class Group(OneLineErrors, click.Group):
    pass


class Command(OneLineErrors, click.Command):
    pass


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir2vis-stream")
def main():
    """Colourise thermal infrared (LWIR) video into visible-looking colour video."""
    one_line_warnings()
    quiet_library_logs_for_command()
    reuse_freed_memory()  # eager CPU inference: no page fault per activation (``hardware.py``)


def one_line_warnings() -> None:
    """For this command, the library's warnings (``warnings.warn``) as ``warning: ...`` lines, without file
    and line number; the usual format comes back when the command ends."""
    import warnings

    usual = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    click.get_current_context().call_on_close(lambda: setattr(warnings, "formatwarning", usual))


def quiet_library_logs():
    """torch's log lines (``W1201 ... cpp_extension.py:183] No CUDA runtime is found`` on every CPU run) are notes
    for torch's developers, not for a user: hidden unless ``IR2VIS_STREAM_DEBUG=1``. Returns the undo."""
    import logging

    if os.environ.get("IR2VIS_STREAM_DEBUG", "") not in ("", "0"):
        return lambda: None
    logger = logging.getLogger("torch")
    usual = logger.level
    logger.setLevel(logging.ERROR)
    return lambda: logger.setLevel(usual)


def quiet_library_logs_for_command() -> None:
    """``quiet_library_logs`` for the command in progress."""
    click.get_current_context().call_on_close(quiet_library_logs())
