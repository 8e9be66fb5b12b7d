"""A small mutation pass: plant one defect at a time in a source file and see whether the tests notice.

    python scripts/mutation_pass.py ir2vis_stream/train/losses.py ir2vis_stream/train/objective.py \
        --tests "tests/test_train.py -k 'loss or step or objective'" --json benchmarks/results/mutation.json

Each mutant changes one node of the file's syntax tree: ``True`` <-> ``False``, a number (0 -> 1, n -> n + 1,
a float x -> 2x), ``+`` <-> ``-``, ``*`` <-> ``/``, ``**`` -> ``*``, a comparison flipped (``<`` <-> ``>=``,
``==`` <-> ``!=``), a unary minus dropped, ``and`` <-> ``or``, the two arguments of a two-argument call swapped.
Everything happens in a scratch copy of the repository (its tracked and untracked files as they are now,
``--keep`` to look at it afterwards), imported first through ``PYTHONPATH``: the working tree is never
written. The mutated file is rewritten from the mutated tree (comments and layout are not kept) and the
tests run there (``pytest -x -q``). A mutant is *killed* when the tests
fail, *survives* when they pass, and *times out* past ``--timeout``. Docstrings are never mutated. A survivor
is either a gap in the tests or a change that does not alter behaviour (an equivalent mutant): the report
lists each one with its line, to be judged by reading it. Parameters' default values are not mutated.

No dependency beyond the standard library (``mutmut`` does this at scale; this is enough for two files).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FLIPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
         ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.And: ast.Or, ast.Or: ast.And}


def _skipped(tree: ast.AST) -> set[int]:
    """Docstrings, and parameters' default values (what a caller gets without passing them, not what the
    code does with what it is given)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arguments):
            for default in [*node.defaults, *node.kw_defaults]:
                if default is not None:
                    ids.update(id(n) for n in ast.walk(default))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def mutations(tree: ast.AST):
    """(index, line, description, function that applies the mutation to a node) for every site in ``tree``."""
    skip = _skipped(tree)
    sites = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            sites.append((line, f"{node.value} -> {not node.value}", node, lambda n: setattr(n, "value", not n.value)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            new = 1 if node.value == 0 else (node.value * 2 if isinstance(node.value, float) else node.value + 1)
            sites.append((line, f"{node.value} -> {new}", node, lambda n, v=new: setattr(n, "value", v)))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in FLIPS:
            new = FLIPS[type(node.op)]
            sites.append((line, f"{type(node.op).__name__} -> {new.__name__}", node,
                          lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.BoolOp) and type(node.op) in FLIPS:
            new = FLIPS[type(node.op)]
            sites.append((line, f"{type(node.op).__name__} -> {new.__name__}", node,
                          lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIPS:
            new = FLIPS[type(node.ops[0])]
            sites.append((line, f"{type(node.ops[0]).__name__} -> {new.__name__}", node,
                          lambda n, new=new: setattr(n, "ops", [new()])))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sites.append((line, "unary minus dropped", node, lambda n: setattr(n, "op", ast.UAdd())))
        elif isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords:
            sites.append((line, f"arguments of {ast.unparse(node.func)}() swapped", node,
                          lambda n: setattr(n, "args", n.args[::-1])))
    return sites


def mutant_source(source: str, index: int) -> tuple[str, int, str]:
    tree = ast.parse(source)
    line, what, node, apply = mutations(tree)[index]
    apply(node)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", line, what


def scratch_copy(dest: Path) -> Path:
    """The repository's tracked and untracked (not ignored) files, as they are in the working tree, under dest."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="source files, relative to the repository root")
    ap.add_argument("--tests", required=True, help="pytest arguments, one string")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy and print where it is")
    ap.add_argument("--lines", default=None, help="FILE:LINE,... only the mutants on these lines (e.g. the "
                    "survivors of an earlier pass, after new tests)")
    args = ap.parse_args(argv)
    scratch = scratch_copy(Path(tempfile.mkdtemp(prefix="mutation-")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(scratch), os.environ.get("PYTHONPATH")]))}
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *shlex.split(args.tests)]
    try:
        return run_mutants(args, scratch, pytest, env)
    finally:
        if args.keep:
            print(f"scratch copy kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def run_mutants(args, scratch: Path, pytest: list[str], env: dict) -> int:
    def tests(**kw):
        return subprocess.run(pytest, cwd=scratch, env=env, capture_output=True, text=True, **kw)

    baseline = tests()
    if baseline.returncode != 0:
        print("the tests fail without any mutant; fix them first:\n" + baseline.stdout[-2000:])
        return 1
    probe = subprocess.run([sys.executable, "-c", "import ir2vis_stream; print(ir2vis_stream.__file__)"],
                           cwd=scratch, env=env, capture_output=True, text=True).stdout.strip()
    if not Path(probe).resolve().is_relative_to(scratch.resolve()):
        print(f"the tests would import the package from {probe}, not from the scratch copy")
        return 1
    wanted = None
    if args.lines:
        wanted = {(name, int(line)) for name, line in (item.rsplit(":", 1) for item in args.lines.split(","))}
    results = []
    for path in args.files:
        target = scratch / path
        original = target.read_text()
        count = len(mutations(ast.parse(original)))
        for index in range(count):
            source, line, what = mutant_source(original, index)
            if wanted is not None and (str(path), line) not in wanted:
                continue
            t = time.perf_counter()
            target.write_text(source)
            try:
                outcome = "killed" if tests(timeout=args.timeout).returncode != 0 else "survived"
            except subprocess.TimeoutExpired:
                outcome = "timeout"
            finally:
                target.write_text(original)
            results.append({"file": str(path), "line": line, "mutation": what, "outcome": outcome,
                            "seconds": round(time.perf_counter() - t, 1)})
            print(f"{path}:{line:<4d} {what:40s} {outcome}", flush=True)
    killed = sum(r["outcome"] == "killed" for r in results)
    print(f"{killed} of {len(results)} mutants killed; survivors:")
    for r in results:
        if r["outcome"] != "killed":
            print(f"  {r['file']}:{r['line']} {r['mutation']} ({r['outcome']})")
    if args.json:
        args.json.write_text(json.dumps({"tests": args.tests, "results": results,
                                         "date": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
