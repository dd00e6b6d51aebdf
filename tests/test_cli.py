"""The ``tapegrad`` command: tables, exit statuses, and one-line errors (no tracebacks)."""

import subprocess
import sys
from pathlib import Path

import pytest

import tapegrad as tg
from tapegrad import OpDef, hookimpl
from tapegrad.cli import main, table

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class BrokenPlugin:
    """One op with a right rule and one whose vjp is off by a factor of 2."""

    @hookimpl
    def tapegrad_ops(self):
        return [
            OpDef("cli_square_ok", lambda x: x * x, lambda g, out, x: 2 * g * x,
                  doc="x ** 2"),
            OpDef("cli_square_bad", lambda x: x * x, lambda g, out, x: g * x,
                  doc="x ** 2 with a wrong vjp"),
        ]


@pytest.fixture
def broken():
    name = tg.register_plugin(BrokenPlugin(), name="cli-broken")
    yield name
    tg.unregister_plugin(name)


# ------------------------------------------------------------------ table


def test_table_aligns_columns():
    text = table(("A", "BB"), [("xxx", 1), ("y", 22)]).splitlines()
    assert text == ["A    BB", "---  --", "xxx  1", "y    22"]


# ------------------------------------------------------------------ ops / plugins


def test_ops_lists_every_op_with_arity_params_source(capsys):
    code, out, err = run(capsys, "ops")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ARITY", "PARAMS", "SOURCE", "METHOD", "JVP"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.strip()
            and not line.endswith(" ops")}
    assert set(rows) == {i.name for i in tg.list_ops()}
    assert rows["add"][:3] == ["add", "2", "-"]
    assert "tapegrad.builtins.arithmetic" in rows["add"]
    assert rows["sum"][2:4] == ["axis=None,", "keepdims=False"]
    assert lines[-1] == f"{len(tg.list_ops())} ops"
    # the SOURCE column starts at the same offset on every row
    col = lines[0].index("SOURCE")
    assert lines[2 + sorted(rows).index("add")][col:].startswith("tapegrad.builtins")


def test_ops_shows_runtime_plugin_source(capsys, broken):
    code, out, _ = run(capsys, "ops", "--plugin", broken)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["cli_square_bad",
                                                                  "cli_square_ok"]
    assert "cli-broken" in out.splitlines()[2]


def test_ops_unknown_name_lists_close_matches(capsys):
    code, out, err = run(capsys, "ops", "sigmod")
    assert code == 2 and out == ""
    assert "no op named 'sigmod'" in err and "did you mean sigmoid" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 3


def test_plugins_lists_builtins_with_version_and_ops(capsys, broken):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert f"tapegrad {tg.__version__}" in rows["tapegrad.builtins.arithmetic"]
    assert "8 ops: abs, add" in rows["tapegrad.builtins.arithmetic"]
    assert "(registered at run time)" in rows["cli-broken"]
    assert "2 ops: cli_square_bad, cli_square_ok" in rows["cli-broken"]


def test_plugins_json(capsys):
    import json

    code, out, _ = run(capsys, "plugins", "--json")
    data = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert "add" in data["tapegrad.builtins.arithmetic"]["ops"]


# ------------------------------------------------------------------ check


def test_check_named_ops_prints_errors_and_passes(capsys):
    code, out, err = run(capsys, "check", "mul", "exp")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["OP", "SOURCE", "SAMPLES"]
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows["exp"][-1] == "ok" and rows["mul"][-1] == "ok"
    assert float(rows["exp"][-3]) < 1e-6          # max abs error of a correct rule
    assert lines[-1] == "2 ops checked: 2 passed, 0 failed"


def test_check_wrong_rule_fails_naming_the_op(capsys, broken):
    code, out, _ = run(capsys, "check", "cli_square_ok", "cli_square_bad")
    assert code == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:4]}
    assert rows["cli_square_ok"][-1] == "ok"
    assert rows["cli_square_bad"][-1] == "FAIL"
    # g*x instead of 2*g*x: the error is half the true gradient, ~1 for x in [-2, 2]
    assert float(rows["cli_square_bad"][-3]) > 0.1
    assert "FAIL cli_square_bad: op 'cli_square_bad' sample 0" in out
    assert out.splitlines()[-1] == "2 ops checked: 1 passed, 1 failed"


def test_check_everything_passes(capsys):
    code, out, _ = run(capsys, "check")
    assert code == 0, out
    n = len(tg.list_ops())
    assert out.splitlines()[-1] == f"{n} ops checked: {n} passed, 0 failed"


def test_check_unknown_op_exit_2_with_close_matches(capsys):
    code, out, err = run(capsys, "check", "tanhh")
    assert code == 2
    assert err.startswith("tapegrad: error: no op named 'tanhh'")
    assert "did you mean tanh" in err and "Traceback" not in err


def test_check_second_order(capsys):
    code, out, _ = run(capsys, "check", "--order", "2", "tanh", "mul")
    assert code == 0
    assert out.splitlines()[-1] == "2 ops checked: 2 passed, 0 failed"


# ------------------------------------------------------------------ help / usage


@pytest.mark.parametrize("cmd", [[], ["ops"], ["plugins"], ["check"], ["spec"]])
def test_help_for_every_command(capsys, cmd):
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0
    assert out.startswith("usage: tapegrad")


def test_no_command_prints_help_and_exit_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "ops" in out and "check" in out


def test_bad_option_is_a_usage_error(capsys):
    code, _, err = run(capsys, "check", "--order", "7")
    assert code == 2 and "invalid choice" in err


# ------------------------------------------------------------------ subprocess


def test_python_m_tapegrad_ops_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "tapegrad", "ops"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:2] == ["NAME", "ARITY"]
    assert any(line.split()[:2] == ["matmul", "2"] for line in proc.stdout.splitlines())


def test_subprocess_unknown_op_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "tapegrad", "check", "nope_op"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no op named 'nope_op'" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ spec


def test_spec_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "spec", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file" in err and "Traceback" not in err



GOOD_SPEC = """
ops:
  cli_cube:
    args: [x]
    forward: "x * x * x"
    vjp: {x: "3 * g * x * x"}
  cli_scaled:
    args: [x]
    params: {k: 2.0}
    forward: "k * cli_cube(x)"
    vjp: {x: "3 * k * g * x * x"}
"""

WRONG_RULE_SPEC = """
ops:
  cli_fine:
    args: [x]
    forward: "sin(x)"
    vjp: {x: "g * cos(x)"}
  cli_wrong:
    args: [x]
    forward: "sin(x)"
    vjp: {x: "g * sin(x)"}
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_spec_valid_file_lists_and_checks_its_ops(capsys, tmp_path):
    before = set(tg.ops.__dir__())
    path = write(tmp_path, "good.yaml", GOOD_SPEC)
    code, out, err = run(capsys, "spec", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{path}: valid spec, 2 ops: cli_cube, cli_scaled"
    rows = {line.split()[0]: line.split() for line in lines[4:6]}
    assert rows["cli_cube"][1] == "good.yaml" and rows["cli_cube"][-1] == "ok"
    assert rows["cli_scaled"][-1] == "ok"
    assert lines[-1] == "2 ops checked: 2 passed, 0 failed"
    assert set(tg.ops.__dir__()) == before  # the file's ops were unregistered again


def test_spec_wrong_vjp_rule_exits_non_zero_naming_the_op(capsys, tmp_path):
    path = write(tmp_path, "wrong.yaml", WRONG_RULE_SPEC)
    code, out, err = run(capsys, "spec", str(path))
    assert code == 1
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[4:6]}
    assert rows == {"cli_fine": "ok", "cli_wrong": "FAIL"}
    assert "FAIL cli_wrong: op 'cli_wrong' sample 0: gradient w.r.t. argument 0" in out
    assert out.splitlines()[-1] == "2 ops checked: 1 passed, 1 failed"
    assert "Traceback" not in out + err


def test_spec_no_check_only_validates(capsys, tmp_path):
    path = write(tmp_path, "wrong.yaml", WRONG_RULE_SPEC)
    code, out, _ = run(capsys, "spec", "--no-check", str(path))
    assert code == 0
    assert out.splitlines() == [f"{path}: valid spec, 2 ops: cli_fine, cli_wrong"]


def test_spec_malformed_yaml_is_one_clear_error(capsys, tmp_path):
    path = write(tmp_path, "bad.yaml", "ops:\n  f:\n    args: [x\n    forward: 'x'\n")
    code, out, err = run(capsys, "spec", str(path))
    assert code == 1 and out == ""
    assert err.startswith("tapegrad: error: ") and "bad.yaml" in err
    assert "YAML" in err and "Traceback" not in err
    assert len(err.splitlines()) <= 3


def test_spec_invalid_formula_names_file_and_op(capsys, tmp_path):
    path = write(tmp_path, "evil.yaml",
                 "ops:\n  cli_evil:\n    args: [x]\n    forward: \"x.__class__\"\n"
                 "    vjp: {x: \"g\"}\n")
    code, out, err = run(capsys, "spec", str(path))
    assert code == 1 and out == ""
    assert "evil.yaml" in err and "cli_evil" in err and "forward" in err
    assert "Traceback" not in err
    assert "cli_evil" not in tg.ops.__dir__()


def test_spec_file_of_a_plugin_is_checked_as_registered(capsys):
    nn_yaml = ROOT / "specs" / "nn.yaml"
    if not nn_yaml.is_file():
        pytest.skip("no specs/nn.yaml in this checkout")
    code, out, _ = run(capsys, "spec", "--no-check", str(nn_yaml))
    assert code == 0
    assert "valid spec (loaded by plugin tapegrad.builtins.specs)" in out


def test_spec_subprocess_wrong_rule(tmp_path):
    path = write(tmp_path, "wrong.yaml", WRONG_RULE_SPEC)
    proc = subprocess.run([sys.executable, "-m", "tapegrad", "spec", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "FAIL cli_wrong" in proc.stdout and "Traceback" not in proc.stderr
