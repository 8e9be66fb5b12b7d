"""The one atomic write: readers see the old file or the whole new one, never half of it.

``atomic_write(path, data)`` writes ``data`` (bytes, or a function that writes a given path: ``torch.save``,
``cv2.imwrite``) under a unique temporary name in the same folder, flushes it to disk and renames it into
place. The name is unique per call (``mkstemp``), so concurrent writers of one path do not collide: the last
rename wins and each file is whole. It keeps ``path``'s extension, for writers that choose a format by it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[Path], object]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            data(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
