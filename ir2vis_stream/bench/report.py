"""What both bench reports share: the machine they ran on, and writing result files that are never half-written."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import torch

from ..errors import UserError


class BenchError(UserError):
    """A benchmark that cannot run as asked; the message is one sentence for the user."""


def machine_description(device: torch.device) -> str:
    """CPU model, cores, torch version and threads, and the GPU when ``device`` is one: for the report's header."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if os.environ.get("OMP_WAIT_POLICY"):  # changes CPU figures a lot on a shared machine (see bench.speed)
        text += f", OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none): other processes make speed figures noisy."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def check_report_path(path: str | os.PathLike | None, suffix: str | None = None, option: str = "output") -> Path | None:
    """Validate a report file path before any work starts (so a long run does not fail at the end)."""
    if path is None:
        return None
    p = Path(path)
    if suffix and p.suffix.lower() != suffix:
        raise BenchError(f"{option} must name a {suffix} file, got {p}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise BenchError(f"{option}: folder does not exist: {parent}")
    if p.is_dir():
        raise BenchError(f"{option}: {p} is a folder, not a file")
    return p


