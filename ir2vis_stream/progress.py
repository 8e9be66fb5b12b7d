"""The terminal face of long jobs: one rich progress bar, nothing when quiet or not a terminal.

``ProgressBar`` is the bar itself (one task at a time, extra text fields, lines printed above it);
``FrameProgress`` is its frames view for ``run`` and ``bench`` (frames, fps, ETA); training shows one task
per epoch with the generator's loss beside it.
"""

from __future__ import annotations

import sys
import time

__all__ = ["FrameProgress", "ProgressBar"]


class ProgressBar:
    """A rich bar on stderr when ``enabled`` and stderr is a terminal; every method is a no-op otherwise.

    ``columns``: the rich columns, as a function of the ``rich.progress`` module (so rich is imported only
    when a bar is shown); ``fields``: the task's extra fields and their starting values.
    """

    def __init__(self, enabled: bool, columns, transient: bool = False, **fields):
        self.live = enabled and sys.stderr.isatty()
        self.columns, self.transient, self.fields = columns, transient, fields
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.live:
            import rich.progress

            self.bar = rich.progress.Progress(*self.columns(rich.progress), transient=self.transient)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def new_task(self, description: str, total: int | None, completed: int = 0) -> None:
        """Show a new task in place of the last one."""
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(description, total=total, completed=completed, **self.fields)

    def update(self, **kwargs) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, **kwargs)

    def print(self, line: str) -> None:
        """A line above the bar (on stdout as a plain line when there is no bar)."""
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, flush=True)


def _frame_columns(p):
    return (p.TextColumn("{task.description}"), p.BarColumn(), p.MofNCompleteColumn(), p.TaskProgressColumn(),
            p.TextColumn("{task.fields[fps]:.1f} fps"), p.TimeElapsedColumn(), p.TextColumn("ETA"),
            p.TimeRemainingColumn())


class FrameProgress(ProgressBar):
    """Frames done of the total, their rate and the time left; ``start`` and ``update`` are a job's callbacks."""

    def __init__(self, enabled: bool = True, description: str = "colourising"):
        super().__init__(enabled, _frame_columns, transient=True, fps=0.0)
        self.description = description
        self.first = None

    def start(self, info, total: int | None = None) -> None:
        # Until the first frame is out, the engine is starting: a compiled engine builds on its first
        # batch (minutes on a cold cache), and that wait should neither look like a hang nor drag the fps.
        self.first = None  # (time, frames) at the first frames written
        self.new_task("starting engine", total or info.frames)

    def update(self, done: int) -> None:
        if self.bar is None or self.task is None or done <= 0:
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
            super().update(description=self.description)
        t1, n1 = self.first
        super().update(completed=done, fps=(done - n1) / (now - t1) if done > n1 else 0.0)
