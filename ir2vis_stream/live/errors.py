"""What the live modules share: their error and the message for a machine without a display."""

from __future__ import annotations

from ..errors import UserError

NO_DISPLAY = "no display available; use --no-window, -o or --serve"


class LiveError(UserError):
    """A live source or output that cannot be used; the message is one sentence for the user."""
