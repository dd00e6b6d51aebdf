"""Import time: ``import tapegrad`` (built-in plugins and YAML specs included), cold.

Every sample is a fresh interpreter that times one import statement with
``time.perf_counter`` (``time.process_time`` with ``--clock cpu``; interpreter start-up
excluded). Rows:

- ``numpy``: ``import numpy`` alone (the floor any NumPy library pays);
- ``tapegrad``: ``import tapegrad`` in a bare interpreter (numpy, pluggy, yaml included);
- ``tapegrad (numpy preloaded)``: tapegrad's own share;
- autograd and torch when installed.

Then the slowest imports (cumulative) of one ``python -X importtime -c "import tapegrad"``.
Target: ``import tapegrad`` under 150 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys

import _common as C

TARGET_MS = 150.0

PROBE = """
import sys, time
sys.path.insert(0, {root!r})
{pre}
t0 = time.{clock}()
import {mod}
t1 = time.{clock}()
print(t1 - t0)
"""


# Measure imports as an installed package runs them: from cached bytecode. (With
# PYTHONDONTWRITEBYTECODE set, every import would compile its sources first.)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def precompile() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(C.ROOT / "tapegrad")],
                   env=CHILD_ENV, capture_output=True, timeout=120)


def sample(mod: str, pre: str = "") -> float:
    clock = "process_time" if C.CLOCK == "cpu" else "perf_counter"
    code = PROBE.format(root=str(C.ROOT), pre=pre, mod=mod, clock=clock)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=CHILD_ENV)
    if p.returncode != 0:
        raise RuntimeError(f"import {mod} failed: {p.stderr.strip().splitlines()[-1:]}")
    return float(p.stdout.strip().splitlines()[-1])


def slowest_modules(n: int = 15, max_level: int = 2) -> list[tuple[str, float, float]]:
    """``(module, self ms, cumulative ms)`` of ``-X importtime``, by cumulative time.

    Nested modules keep their indentation, so a slow dependency shows under the
    tapegrad module that pulled it in.
    """
    code = f"import sys; sys.path.insert(0, {str(C.ROOT)!r}); import tapegrad"
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                       text=True, timeout=120, env=CHILD_ENV)
    rows: list[tuple[str, float, float]] = []
    subtree: list[tuple[str, float, float]] = []    # post-order: children come first
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        level = (len(name) - len(name.lstrip()) - 1) // 2
        if level <= max_level:      # tapegrad's modules and what they import directly
            subtree.append(("  " * level + name.strip(), int(self_us) / 1e3,
                            int(cum_us) / 1e3))
        if level == 0:
            if name.strip() == "tapegrad":
                rows = subtree
            subtree = []
    rows.sort(key=lambda r: -r[2])
    return rows[:n]


def main(argv: list[str] | None = None) -> int:
    p = C.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 15)
    C.header("import time: one fresh interpreter per sample, from cached bytecode")
    precompile()
    probes = {"numpy": ("numpy", ""), "tapegrad": ("tapegrad", ""),
              "tapegrad (numpy preloaded)": ("tapegrad", "import numpy")}
    impls = {name: (lambda m=m, pre=pre: sample(m, pre)) for name, (m, pre) in probes.items()}
    res = C.interleave(impls, repeats, warmup=0 if args.quick else 1, collect=False)
    # Comparison rows (torch takes seconds to import): a few samples are enough.
    others = {m: (lambda m=m: sample(m)) for m in ("autograd", "torch")
              if not args.no_compare and C.module_available(m)}
    if others:
        res.update(C.interleave(others, min(repeats, 3), warmup=0, collect=False))

    rep = C.Report("import_time", args)
    rep.table(f"median of {repeats} fresh interpreters, milliseconds",
              ["import", "ms"], [[n, r["total"] * 1e3] for n, r in res.items()], fmt="{:.1f}")
    if not args.quick:
        rep.table("slowest imports under `import tapegrad` (-X importtime, one run, by "
                  "cumulative time)",
                  ["module", "self ms", "cumulative ms"],
                  [list(r) for r in slowest_modules()], fmt="{:.1f}")
    print()
    rep.check("import tapegrad", res["tapegrad"]["total"] * 1e3, TARGET_MS, "<", " ms")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
