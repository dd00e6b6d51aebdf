"""Run every benchmark script in turn, each in its own interpreter, and print their tables.

``python benchmarks/run_all.py [--quick] [--only overhead,mlp] [--json-dir DIR]``; the
other options (``--no-compare``, ``--strict``, ``--threads``, ``--clock``, ``--no-gc``)
are passed on to every script. Exit status: non-zero if any script failed (or, with ``--strict``,
missed a target); a summary of every target line is printed at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("overhead", "mlp", "scalar", "deep", "memory", "import_time")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(SCRIPTS))
    p.add_argument("--json-dir", default=None, help="write NAME.json per benchmark here")
    p.add_argument("--no-compare", action="store_true")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--no-gc", action="store_true")
    p.add_argument("--threads", default=None)
    p.add_argument("--clock", choices=("wall", "cpu"), default=None)
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCRIPTS)
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(SCRIPTS)}")
    passthrough = [f for f, on in (("--quick", args.quick), ("--no-compare", args.no_compare),
                                   ("--strict", args.strict), ("--no-gc", args.no_gc)) if on]
    if args.threads is not None:
        passthrough += ["--threads", args.threads]
    if args.clock is not None:
        passthrough += ["--clock", args.clock]
    if args.json_dir:
        Path(args.json_dir).mkdir(parents=True, exist_ok=True)

    summary = []
    failed = []
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *passthrough]
        if args.json_dir:
            cmd += ["--json", str(Path(args.json_dir) / f"{name}.json")]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.rstrip().endswith((" PASS", " MISS")):
                summary.append(f"{name}: {line.strip()}")
        rc = proc.wait()
        print(f"[{name}: exit {rc}, {time.perf_counter() - t0:.1f} s]\n", flush=True)
        if rc:
            failed.append(name)
    print("== summary of targets")
    for line in summary:
        print("  " + line)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
