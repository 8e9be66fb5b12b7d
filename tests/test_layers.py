"""Layers depend one way (README, "How it is built"): read every module's imports and check none runs backwards."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ir2vis_stream"

# module (or subpackage) -> the package parts it must never import
FORBIDDEN = {
    "model": {"frames", "media", "pipeline", "engines", "train", "bench", "live", "cli", "api"},
    "engines": {"media", "pipeline", "train", "bench", "live", "cli", "api", "demo"},
    "frames": {"media", "pipeline", "engines", "train", "bench", "live", "cli", "api"},
    "media": {"pipeline", "engines", "train", "bench", "live", "cli", "api"},
    "metrics": {"media", "pipeline", "engines", "train", "bench", "live", "cli", "api"},
    "gridfilter": {"model", "frames", "media", "pipeline", "engines", "train", "bench", "live", "cli", "api",
                   "metrics", "temporal"},
    "flow": {"model", "media", "pipeline", "engines", "train", "bench", "live", "cli", "api", "metrics", "temporal"},
    "temporal": {"model", "media", "pipeline", "engines", "train", "bench", "live", "cli", "api", "metrics"},
    "pipeline": {"train", "bench", "live", "cli", "api", "demo"},
    "train": {"media", "pipeline", "engines", "bench", "live", "cli", "api", "demo"},
}


def package_imports(path: Path) -> set[str]:
    """The top-level parts of ir2vis_stream that ``path`` imports (relative or absolute)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(parts[:-1])[: len(parts) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [base + [a.name] for a in node.names]
            elif node.module and node.module.startswith("ir2vis_stream"):
                names = [node.module.split(".")[1:]]
            else:
                continue
            found.update(n[0] for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ir2vis_stream."))
    return found


# ``__main__`` modules are command entry points (``python -m ir2vis_stream.train`` for torchrun): faces, like cli
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_backwards(path):
    layer = path.relative_to(PACKAGE).with_suffix("").parts[0]
    bad = package_imports(path) & FORBIDDEN.get(layer, set())
    assert not bad, f"{path.relative_to(PACKAGE)} imports {', '.join(sorted(bad))}"


def test_the_import_reader_sees_relative_and_absolute_imports():
    assert "frames" in package_imports(PACKAGE / "media.py")
    assert {"model", "checkpoint", "frames", "train"} <= package_imports(PACKAGE / "train" / "trainer.py")
    assert "frames" in package_imports(PACKAGE / "bench" / "quality.py")
