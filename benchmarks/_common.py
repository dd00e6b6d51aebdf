"""Shared helpers for the benchmark scripts: arguments, timing, tables, targets, memory.

Timing contract: every implementation is a zero-argument callable that runs one full
measurement and returns its phases in seconds (a float, or a dict ``phase -> seconds``).
:func:`interleave` calls the implementations in rotating order within each repeat, so
that drifts of the machine (frequency, other load) hit all of them alike, and reports
the median of each phase. Ratios are only ever computed between numbers of the same run.

Memory contract: a measurement that needs its own peak RSS runs in a fresh interpreter
(:func:`run_child`), which prints one JSON object on its last stdout line.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The scripts benchmark the checkout they live in, installed or not; TAPEGRAD_ROOT names
# another checkout (say an export of the last commit) to compare before and after.
ROOT = Path(os.environ.get("TAPEGRAD_ROOT") or HERE.parent).resolve()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _blas_threads() -> str:
    """``--threads N`` (default 1; 0 = the libraries' default), read before NumPy loads.

    One BLAS thread by default: on a small shared machine a second BLAS thread that has
    to wait for a busy core makes a matmul several times slower at random, which buries
    the ratios in noise. The setting reaches child processes through the environment.
    """
    n = "1"
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    if n != "0":
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, n)
    return n


THREADS = _blas_threads()


def _clock() -> str:
    """``--clock wall`` (default: ``time.perf_counter``) or ``cpu`` (``time.thread_time``
    with one BLAS thread, else ``time.process_time``).

    CPU time leaves out the time the process waits for a core, so it stays meaningful on
    an overloaded machine (load average above the CPU count); it adds up all threads,
    so use it with one BLAS thread. Passed to child processes through the environment.
    """
    for i, a in enumerate(sys.argv):
        if a == "--clock" and i + 1 < len(sys.argv):
            os.environ["TAPEGRAD_BENCH_CLOCK"] = sys.argv[i + 1]
        elif a.startswith("--clock="):
            os.environ["TAPEGRAD_BENCH_CLOCK"] = a.split("=", 1)[1]
    return os.environ.get("TAPEGRAD_BENCH_CLOCK", "wall")


CLOCK = _clock()
# With one BLAS thread all measured work runs on the calling thread: its CPU time leaves
# out other threads of the process too (the worker threads an optional library such as
# torch keeps), not just other processes.
if CLOCK == "cpu":
    perf_counter = time.thread_time if THREADS == "1" else time.process_time
else:
    perf_counter = time.perf_counter
if "numpy" in sys.modules and THREADS != "0":
    print("warning: numpy was imported before _common: --threads may not apply",
          file=sys.stderr)



# ----------------------------------------------------------------------------- arguments


def parser(description: str) -> argparse.ArgumentParser:
    """The options every script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and few repeats: checks the script works (CI), not speed")
    p.add_argument("--repeats", type=int, default=None, help="override the number of repeats")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the optional comparison rows (autograd, torch, micrograd)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the measured numbers and checks to PATH as JSON")
    p.add_argument("--no-gc", action="store_true",
                   help="disable the garbage collector inside timed regions (as timeit does)")
    p.add_argument("--profile", type=int, nargs="?", const=15, default=None, metavar="N",
                   help="instead of the table, cProfile the tapegrad row and print the top "
                        "N functions by own time (default 15)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: time.perf_counter (default); cpu: CPU time, robust "
                        "when other jobs compete for the cores")
    p.add_argument("--threads", default="1",
                   help="BLAS/OpenMP threads (default 1; 0 keeps the libraries' default)")
    return p


def optional(name: str, args: argparse.Namespace) -> Any:
    """``import name`` when installed and comparisons are on, else None."""
    if getattr(args, "no_compare", False):
        return None
    try:
        mod = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure just drops the optional row
        return None
    if name == "torch" and THREADS != "0":
        mod.set_num_threads(int(THREADS))
    return mod


def module_available(name: str) -> bool:
    """Whether ``name`` is installed, without importing it."""
    import importlib.util

    return importlib.util.find_spec(name) is not None


def heap_allocator() -> str:
    """Serve large blocks from the heap in this process (glibc), for every row alike.

    By default glibc maps each block above a threshold it moves with the allocation
    history, and every such block costs page faults on first touch. Which array of a
    step lands above it then depends on what was freed before, not on the array math:
    in the mlp benchmark it moved the float64 NumPy step by 15% and read as tapegrad
    being 5% faster than NumPy. Returns what the table header should say.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "the platform's default allocator"
    m_trim_threshold, m_mmap_threshold = -1, -3
    if libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 64 << 20):
        return "large blocks from the heap (mallopt), the same for every row"
    return "glibc's default allocator"


def header(title: str) -> None:
    import numpy as np

    print(f"== {title}")
    print(f"   python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cpu(s), {platform.machine()}, BLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, clock {CLOCK}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"   tapegrad from {ROOT} ({_revision()})")
    if CLOCK == "wall" and os.getloadavg()[0] > (os.cpu_count() or 1):
        print("   warning: the machine is busy (load average above the CPU count): wall "
              "times are inflated; --clock cpu measures CPU time instead")


def _revision() -> str:
    """``git`` commit of the benchmarked checkout, ``+dirty`` if tapegrad/ has edits."""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "tapegrad"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "no git"
    return (rev or "not a git checkout") + ("+dirty" if dirty else "")


# ----------------------------------------------------------------------------- timing


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def interleave(impls: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
               collect: bool = True, gc_off: bool = False,
               apart: Sequence[str] | None = None,
               anchor: str = "tapegrad") -> dict[str, dict[str, float]]:
    """Run each implementation ``warmup + repeats`` times, rotating the order each round.

    Returns ``{name: {phase: median seconds}}``; a float result is the phase "total".
    ``gc.collect()`` runs before every call (outside the timed region) so that no
    implementation pays for another's garbage; the collector stays enabled inside, as
    in real use, unless ``gc_off`` (``--no-gc``).

    Rows named in ``apart`` (by default the torch rows: once torch has run, NumPy's small
    calls get up to a quarter slower on a small machine, which would flatter every ratio
    to the NumPy floor) are timed in a second pass together with ``anchor``, and scaled
    by the anchor's drift between the passes: each ratio comes from numbers of one pass.
    """
    if apart is None:
        apart = [n for n in impls if n.startswith("torch")] if anchor in impls else []
    first = {n: f for n, f in impls.items() if n not in apart}
    res = _interleave(first, repeats, warmup, collect, gc_off)
    later = {n: f for n, f in impls.items() if n in apart}
    if later:
        second = _interleave({anchor: impls[anchor], **later}, repeats, warmup, collect,
                             gc_off)
        for name in later:
            res[name] = {ph: v * res[anchor][ph] / second[anchor][ph]
                         for ph, v in second[name].items() if ph in res[anchor]}
    return res


def _interleave(impls: dict[str, Callable[[], Any]], repeats: int, warmup: int,
                collect: bool, gc_off: bool) -> dict[str, dict[str, float]]:
    names = list(impls)
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if collect:
                gc.collect()
            if gc_off:
                gc.disable()
            try:
                res = impls[name]()
            finally:
                if gc_off:
                    gc.enable()
            if r < warmup:
                continue
            phases = res if isinstance(res, dict) else {"total": res}
            for ph, v in phases.items():
                samples[name].setdefault(ph, []).append(v)
    return {n: {ph: median(v) for ph, v in ps.items()} for n, ps in samples.items()}


def profile(fn: Callable[[], Any], top: int = 15, runs: int = 3) -> None:
    """Run ``fn`` ``runs`` times under cProfile; print the ``top`` functions by tottime."""
    import cProfile
    import io
    import pstats

    fn()                                        # warm-up outside the profile
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    root = str(ROOT) + "/"
    print(buf.getvalue().replace(root, ""))


# ----------------------------------------------------------------------------- reporting


class Report:
    """Collects one table and the target checks of a script, prints them, writes JSON."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.args = args
        self.tables: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              fmt: str = "{:.3f}") -> None:
        """Print a table; ``rows`` are ``[label, value, ...]`` (None prints as '-')."""
        cells = [[str(r[0])] + [_cell(v, fmt) for v in r[1:]] for r in rows]
        head = [str(c) for c in columns]
        widths = [max(len(x) for x in col) for col in zip(head, *cells, strict=True)]
        print()
        print(title)
        line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                         for i, (h, w) in enumerate(zip(head, widths, strict=True)))
        print(line)
        print("-" * len(line))
        for row in cells:
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        self.tables.append({"title": title, "columns": list(columns),
                            "rows": [list(r) for r in rows]})

    def check(self, label: str, value: float | None, target: float, op: str = "<=",
              unit: str = "") -> bool:
        """Print ``label = value (target op target) PASS|MISS`` and record it."""
        if value is None or value != value:  # None or NaN: could not be measured
            ok = False
            shown = "n/a"
        else:
            ok = value <= target if op == "<=" else value >= target if op == ">=" else (
                value < target if op == "<" else value > target)
            shown = f"{value:.3g}{unit}"
        print(f"{label} = {shown} (target {op} {target:g}{unit}) {'PASS' if ok else 'MISS'}")
        self.checks.append({"label": label, "value": value, "target": target, "op": op,
                            "pass": ok})
        return ok

    def info(self, text: str) -> None:
        print(text)
        self.notes.append(text)

    def finish(self) -> int:
        """Write JSON if asked; the exit code (1 on a missed target only with --strict)."""
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(
                {"benchmark": self.name, "quick": self.args.quick, "tables": self.tables,
                 "checks": self.checks, "notes": self.notes}, indent=1, default=str))
        missed = [c for c in self.checks if not c["pass"]]
        return 1 if (self.args.strict and missed) else 0


def _cell(v: Any, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v != v:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    return fmt.format(v)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or a != a or b != b:
        return None
    return a / b


# ----------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since start (or since :func:`reset_peak`)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_child(script: Path | str, child_args: Sequence[str], timeout: float = 600) -> dict:
    """Run ``python script --child ...`` in a fresh interpreter; its last stdout line is JSON.

    A failing child gives ``{"error": "..."}`` rather than raising, so that one failed
    measurement (say, a stack overflow at depth 10**6) still shows up in the table.
    """
    cmd = [sys.executable, str(script), "--child", *child_args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}
    return json.loads(lines[-1])


def emit(result: dict) -> None:
    """The child's side of :func:`run_child`."""
    print(json.dumps(result), flush=True)


MiB = 1024.0 * 1024.0
