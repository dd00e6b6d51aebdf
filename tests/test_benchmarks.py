"""The benchmark scripts keep working: each runs once with ``--quick`` in a subprocess.

No timing is asserted (these are not performance tests): only that a script exits 0,
prints its table with the expected rows, and prints its target lines. The scripts check
that every implementation's gradients agree with the hand-written NumPy ones and exit
non-zero when they do not, so a wrong gradient fails here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"

# script -> (rows its table must contain, target lines it must print)
EXPECTED = {
    "overhead": (["numpy fwd only", "numpy fwd+bwd (hand)", "tapegrad",
                  "minimal engine (reference)"],
                 ["ratio tapegrad/numpy (fwd+bwd per op)"]),
    "mlp": (["numpy (hand)", "tapegrad"],
            ["ratio tapegrad/numpy (float32)", "ratio tapegrad/numpy (float64)"]),
    "scalar": (["python floats (hand)", "numpy batched (hand)", "tapegrad"],
               ["ratio tapegrad/micrograd"]),
    "deep": (["numpy (hand)", "tapegrad"],
             ["tapegrad depth", "tapegrad graph bytes per recorded op"]),
    "memory": (["numpy (hand)", "tapegrad"],
               ["ratio tapegrad/numpy training peak", "tapegrad RSS growth"]),
    "import_time": (["numpy", "tapegrad", "tapegrad (numpy preloaded)"],
                    ["import tapegrad"]),
    "dask_glm": (["dask (hand)", "tapegrad"],
                 ["ratio tapegrad/dask (value+grad)", "peak RSS of a worker"]),
}


def run(script: str, *extra: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("TAPEGRAD_ROOT", None)       # benchmark this checkout
    p = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--quick", *extra],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert p.returncode == 0, f"{script} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def table_rows(out: str) -> set[str]:
    """First cells of the table lines (label column, left-justified before 2 spaces)."""
    return {line.split("  ")[0].strip() for line in out.splitlines() if "  " in line}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_quick(script):
    out = run(script, "--no-compare")
    if script == "dask_glm" and "dask is not installed: skipped" in out:
        pytest.skip("dask (the dask extra) missing: the benchmark only says so")
    rows, targets = EXPECTED[script]
    labels = table_rows(out)
    for row in rows:
        assert row in labels, f"{script}: no table row {row!r} in:\n{out}"
    for target in targets:
        lines = [ln for ln in out.splitlines() if ln.startswith(target)]
        assert lines, f"{script}: no target line {target!r} in:\n{out}"
        assert all(ln.endswith((" PASS", " MISS")) for ln in lines), lines


def test_overhead_with_comparisons():
    """The optional rows (autograd, torch) run and agree with NumPy when installed."""
    out = run("overhead")
    labels = table_rows(out)
    assert "tapegrad" in labels
    for mod, row in (("autograd", "autograd"), ("torch", "torch")):
        try:
            __import__(mod)
        except ImportError:
            continue
        assert any(lab.startswith(row) for lab in labels), f"no {row} row in:\n{out}"


def test_run_all_lists_every_script():
    """run_all knows every script in benchmarks/ (a new one must be added to it)."""
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")}
    assert scripts - {"run_all"} == set(run_all.SCRIPTS)
