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
            # Until the first frame is out, the engine is starting: a compiled engine builds on its first
            # batch (minutes on a cold cache), and that wait should neither look like a hang nor drag the fps.
            self.first = None  # (time, frames) at the first frames written
            self.task = self.bar.add_task("starting engine", total=total or info.frames, fps=0.0)

    def update(self, done: int) -> None:
        if self.bar is not None and self.task is not None and done > 0:
            import time

            now = time.perf_counter()
            if self.first is None:
                self.first = (now, done)
                self.bar.update(self.task, description=self.description)
            t1, n1 = self.first
            fps = (done - n1) / (now - t1) if done > n1 else 0.0
            self.bar.update(self.task, completed=done, fps=fps)
