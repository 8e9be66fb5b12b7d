"""The one base of expected failures: ``UserError`` is something the user can fix (a missing file, a bad
option, a machine that lacks a backend); its message is written for them.

The command line catches ``UserError`` in one place and shows its message as one line with exit status 1.
Anything else is a bug or an environment failure: shown as one line with its type and the
``IR2VIS_STREAM_DEBUG=1`` hint, which lets the traceback through. Each module keeps its own subclass
(``MediaError``, ``CheckpointError``, ``DataError``, ...) so library callers can catch what they expect.
"""

from __future__ import annotations

__all__ = ["ConfigError", "UserError", "one_line"]


class UserError(Exception):
    """An expected failure, with a message for the user (see the module docstring)."""


class ConfigError(UserError, ValueError):
    """An option, setting or input out of what this package accepts (a range, a known name, a readable image)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The message of ``exc`` as one line: its non-empty lines joined with '; ', cut at ``limit`` characters."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."
