"""tapegrad.testing helpers, the pytest plugin, and check_grads' error reports.

Test plugins use op names starting with ``ttp_`` and are always unregistered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.testing import check_op_all_modes, is_smooth, op_test, ops_of, parametrize_ops

ROOT = Path(__file__).resolve().parent.parent


def _softsign():
    return tg.OpDef("ttp_softsign", lambda x: x / (1 + np.abs(x)),
                    lambda g, out, x: g / ((1 + np.abs(x)) * (1 + np.abs(x))))


# ----------------------------------------------------------------------- helpers


def test_ops_of_selects_a_plugin(register):
    register(_softsign(), tg.OpDef("ttp_double", lambda x: 2 * x, lambda g, out, x: 2 * g),
             name="ttp_pack")
    assert [i.name for i in ops_of(plugin="ttp_pack")] == ["ttp_double", "ttp_softsign"]
    assert [i.name for i in ops_of(names=["mul", "add"])] == ["add", "mul"]
    with pytest.raises(LookupError, match="ttp_nope"):
        ops_of(plugin="ttp_nope")


def test_ops_of_selects_builtin_packs_by_module_name():
    names = {i.name for i in ops_of(plugin="tapegrad.builtins.arithmetic")}
    assert {"add", "mul", "matmul"} <= names


def test_parametrize_ops_builds_a_pytest_mark():
    mark = parametrize_ops(names=["add", "mul"])
    assert mark.args[0] == "op"
    assert [i.name for i in mark.args[1]] == ["add", "mul"]
    assert mark.kwargs["ids"] == ["add", "mul"]


def test_check_op_all_modes_passes_a_good_op(register):
    register(_softsign(), name="ttp_good")
    check_op_all_modes(tg.get_op("ttp_softsign"), order=2)


def test_check_op_all_modes_reports_a_wrong_vjp(register):
    register(tg.OpDef("ttp_badsquare", lambda x: x * x, lambda g, out, x: g * 2.1 * x),
             name="ttp_bad")
    with pytest.raises(tg.GradcheckError) as info:
        check_op_all_modes(tg.get_op("ttp_badsquare"), modes=("rev",))
    err = info.value
    assert err.argument == 0
    assert err.abs_error > 0 and err.rel_error == pytest.approx(0.1 / 2.1, rel=1e-4)
    msg = str(err)
    assert "ttp_badsquare" in msg and "Largest abs error" in msg
    assert "largest rel error" in msg and "argument 0" in msg


def test_is_smooth_leaves_out_ties():
    info = tg.get_op("max")
    assert is_smooth(info, (np.array([1.0, 2.0, 3.0]),))
    assert not is_smooth(info, (np.array([3.0, 2.0, 3.0]),))


def test_op_test_builds_a_parametrized_test(register):
    register(_softsign(), name="ttp_one")
    test = op_test(plugin="ttp_one")
    (mark,) = test.pytestmark
    assert [i.name for i in mark.args[1]] == ["ttp_softsign"]
    test(mark.args[1][0])  # runs the checks; a good op passes


# ----------------------------------------------------------------------- check_grads


def test_check_grads_error_names_argument_index_and_errors(register):
    # d/dy of x * y is off at element (1, 2) only, by 0.5
    bump = np.zeros((2, 3))
    bump[1, 2] = 0.5
    register(tg.OpDef("ttp_mulbump", np.multiply,
                      lambda g, out, x, y: (g * y, g * x + g * bump)), name="ttp_bump")
    x, y = np.full((2, 3), 1.5), np.full((2, 3), 2.0)
    tg.check_grads(lambda a, b: a * b, x, y)
    with pytest.raises(tg.GradcheckError) as info:
        tg.check_grads(tg.ops.ttp_mulbump, x, y, modes=("rev",))
    err = info.value
    assert err.argument == 1
    assert err.index == (1, 2) and err.abs_index == (1, 2) and err.rel_index == (1, 2)
    probe = np.random.default_rng(0).uniform(0.5, 1.5, (2, 3))  # check_grads' probe
    assert err.abs_error == pytest.approx(0.5 * probe[1, 2], rel=1e-6)
    assert err.rel_error == pytest.approx(0.5 / 2.0, rel=1e-6)
    assert "argument 1, index (1, 2)" in str(err)


def test_numerical_grad_matches_analytic():
    x = np.array([0.3, -1.2])
    g = tg.numerical_grad(lambda t: (tg.ops.sin(t) * t).sum(), x)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-8)


def test_check_grads_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        tg.check_grads(lambda x: x, np.ones(2), modes=("sideways",))


# ----------------------------------------------------------------------- pytest plugin


def test_pyproject_declares_the_pytest11_entry_point():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"]["tapegrad"] == "tapegrad.pytest_plugin"


PLUGIN_MODULE = '''
import numpy as np
from tapegrad import OpDef, hookimpl

@hookimpl
def tapegrad_ops():
    return [
        OpDef("ttp_ext_softsign", lambda x: x / (1 + np.abs(x)),
              lambda g, out, x: g / ((1 + np.abs(x)) * (1 + np.abs(x)))),
        OpDef("ttp_ext_scale", lambda x, s: s * x, lambda g, out, x, s: (g * s, g * x),
              jvp=lambda ts, out, x, s: (0 if ts[0] is None else ts[0] * s)
              + (0 if ts[1] is None else ts[1] * x)),
        OpDef("ttp_ext_broken", lambda x: x * x, lambda g, out, x: g * x),
    ]
'''

CONFTEST = '''
import tapegrad as tg
import ttp_ext_plugin
tg.register_plugin(ttp_ext_plugin, name="ttp_ext")
'''

TESTS = '''
import pytest
from tapegrad.testing import op_test

test_every_op = op_test(names=["ttp_ext_softsign", "ttp_ext_scale"])

@pytest.mark.tapegrad_ops(plugin="ttp_ext")
def test_with_fixtures(tapegrad_op, tapegrad_check):
    tapegrad_check(tapegrad_op)
'''


def test_pytest_plugin_checks_a_plugin_suite(tmp_path):
    (tmp_path / "ttp_ext_plugin.py").write_text(PLUGIN_MODULE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_ext.py").write_text(textwrap.dedent(TESTS))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    installed = any(ep.name == "tapegrad" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "tapegrad.pytest_plugin"]  # else pytest loads it
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *load, "-q", "-p", "no:cacheprovider", "-rf",
         str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = run.stdout + run.stderr
    # 2 ops from op_test pass; the fixture test runs the 3 ops of the plugin: the broken
    # one (vjp g * x for x * x) fails with a GradcheckError naming it
    assert "1 failed, 4 passed" in out, out
    assert "test_with_fixtures[ttp_ext_broken]" in out
    assert "GradcheckError" in out and "ttp_ext_broken" in out
    assert run.returncode == 1
