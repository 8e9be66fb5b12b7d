"""The terminal face of long jobs: one rich progress bar (frames, fps, ETA), nothing when quiet or not a terminal."""

from __future__ import annotations

import sys


class FrameProgress:
    def __init__(self, enabled: bool = True, description: str = "colourising"):
        self.enabled = enabled and sys.stderr.isatty()
        self.description = description
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[fps]:.1f} fps"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def start(self, info, total: int | None = None) -> None:
        if self.bar is not None:
            import time

            self.t0 = time.perf_counter()
            self.task = self.bar.add_task(self.description, total=total or info.frames, fps=0.0)

    def update(self, done: int) -> None:
        if self.bar is not None and self.task is not None:
            import time

            elapsed = max(time.perf_counter() - self.t0, 1e-6)
            self.bar.update(self.task, completed=done, fps=done / elapsed)
