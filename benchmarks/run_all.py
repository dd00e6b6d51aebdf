"""Run every benchmark script in turn, each in its own interpreter, and print their tables.

``python benchmarks/run_all.py [--quick] [--only overhead,mlp] [--json-dir DIR]``; the
other options (``--no-compare``, ``--strict``, ``--threads``, ``--clock``, ``--no-gc``)
are passed on to every script. Exit status: non-zero if any script failed (or, with ``--strict``,
missed a target); a summary of every target line is printed at the end.

``--against REF [--rounds 3]``: A/B against another commit in one run. ``REF`` is exported
with ``git archive`` to a temporary folder, and each script runs alternately on this
checkout and on it (``TAPEGRAD_ROOT``) for ``--rounds`` rounds, so both sides see the
same machine load; printed per benchmark: every round's ratios for both sides and their
medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("overhead", "mlp", "scalar", "deep", "memory", "import_time", "dask_glm")


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
    p.add_argument("--against", metavar="REF", default=None,
                   help="A/B against this commit, alternating runs")
    p.add_argument("--rounds", type=int, default=3, help="rounds of --against")
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
    if args.against:
        return against(args.against, names, passthrough, args.rounds)
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


# ----------------------------------------------------------------------------- A/B

RATIO = re.compile(r"^ratio (?P<what>.+?) = (?P<value>[0-9.]+)")


def export(ref: str, dest: Path) -> None:
    """Write ``ref``'s ``tapegrad``, ``specs`` and ``benchmarks`` folders into ``dest``
    (its own scripts measure it: the two sides may differ in the rows they have)."""
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", ref, "tapegrad",
                              "specs", "benchmarks"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def ratios(script: str, root: Path | None, extra: list[str]) -> dict[str, float]:
    """The ``ratio ... = X`` lines of one run of ``script``, by what they measure."""
    env = dict(os.environ)
    env.pop("TAPEGRAD_ROOT", None)
    if root is not None:
        env["TAPEGRAD_ROOT"] = str(root)
    folder = HERE if root is None else root / "benchmarks"
    out = subprocess.run([sys.executable, str(folder / f"{script}.py"), *extra], env=env,
                         capture_output=True, text=True).stdout
    return {m["what"]: float(m["value"]) for m in map(RATIO.match, out.splitlines()) if m}


def against(ref: str, names: list[str], extra: list[str], rounds: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        export(ref, Path(tmp))
        for name in names:
            runs: dict[str, list[dict[str, float]]] = {"this checkout": [], ref: []}
            for _ in range(rounds):
                runs["this checkout"].append(ratios(name, None, extra))
                runs[ref].append(ratios(name, Path(tmp), extra))
            print(f"== {name}", flush=True)
            for side, results in runs.items():
                for k in sorted({k for r in results for k in r}):
                    values = [r[k] for r in results if k in r]
                    shown = " ".join(f"{v:.3g}" for v in values)
                    print(f"  {side:>14}  {k}: {shown}  (median "
                          f"{statistics.median(values):.3g})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
