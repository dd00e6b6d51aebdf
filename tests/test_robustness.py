"""Bad plugins, bad spec files, concurrent registration and the gradient checker itself:
each case ends in a correct result or a clear error, and leaves tapegrad working
(issue 12, "crashes, hangs, state corruption" and "clear errors")."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.registry import REGISTRY
from tapegrad.testing import ops_of

ROOT = Path(__file__).resolve().parent.parent


def still_works():
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    (np.exp(x) + x.tanh() + tg.ops.sigmoid(x)).sum().backward()
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad, np.exp(x.data) + 1 - np.tanh(x.data) ** 2 + s * (1 - s))


def run_python(code, tmp_path, env=None):
    """Run ``code`` in a fresh interpreter importing this checkout's tapegrad, with
    ``tmp_path`` on sys.path (where a fake installed distribution may live)."""
    full_env = {k: v for k, v in os.environ.items() if k != "TAPEGRAD_DISABLE_PLUGINS"}
    full_env.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]), **(env or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=60, cwd=tmp_path)


# ------------------------------------------------------------------ broken plugins

BROKEN_PLUGINS = '''
import numpy as np
from tapegrad import OpDef, hookimpl

def _op(name):
    return OpDef(name, np.sin, lambda g, out, x: (g * np.cos(x),))

class Raises:
    @hookimpl
    def tapegrad_ops(self):
        raise RuntimeError("boom in the hook")

class RaisesHalfway:
    @hookimpl
    def tapegrad_ops(self):
        yield _op("bp_halfway_first")
        raise ValueError("broke halfway")

class String:
    @hookimpl
    def tapegrad_ops(self):
        return "not a list"

class BadName:
    @hookimpl
    def tapegrad_ops(self):
        return [_op("a b")]

class Fullwidth:
    @hookimpl
    def tapegrad_ops(self):
        return [_op("\\uff45\\uff58\\uff50")]

class Spec42:
    @hookimpl
    def tapegrad_spec_files(self):
        return 42

class Good:
    @hookimpl
    def tapegrad_ops(self):
        return [_op("bp_good")]

raises, halfway, string, badname, fullwidth, spec42, good = (
    Raises(), RaisesHalfway(), String(), BadName(), Fullwidth(), Spec42(), Good())
'''

BROKEN = {  # entry-point name -> what the warning must say
    "bp_raises": "hook tapegrad_ops raised RuntimeError: boom in the hook",
    "bp_halfway": "hook tapegrad_ops raised ValueError: broke halfway",
    "bp_string": "tapegrad_ops returned 'not a list' (str), expected tapegrad.OpDef",
    "bp_badname": "op name 'a b' is not an ASCII identifier",
    "bp_fullwidth": "is not an ASCII identifier",
    "bp_spec42": "hook tapegrad_spec_files returned 42 (int), expected a list",
}


@pytest.fixture
def installed_broken(tmp_path):
    """A fake installed distribution with one broken plugin per entry point, and a good one."""
    (tmp_path / "bp_plugins.py").write_text(BROKEN_PLUGINS)
    info = tmp_path / "bp_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bp-plugins\nVersion: 0.1\n\n")
    attrs = {"bp_raises": "raises", "bp_halfway": "halfway", "bp_string": "string",
             "bp_badname": "badname", "bp_fullwidth": "fullwidth", "bp_spec42": "spec42",
             "bp_good": "good"}
    (info / "entry_points.txt").write_text(
        "[tapegrad]\n" + "".join(f"{k} = bp_plugins:{v}\n" for k, v in attrs.items()))
    return tmp_path


def test_broken_installed_plugins_are_skipped_with_a_warning_naming_them(installed_broken):
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import tapegrad as tg
        for w in caught:
            print("WARNING", w.message)
        print("good", float(tg.ops.bp_good(0.5).data))
        print("exp", float(tg.tensor(1.0).exp().data))
        print("halfway kept:", "bp_halfway_first" in dir(tg.ops))
    """)
    res = run_python(code, installed_broken)
    assert res.returncode == 0, res.stderr
    warnings_ = [line for line in res.stdout.splitlines() if line.startswith("WARNING")]
    for plugin, needle in BROKEN.items():
        hits = [w for w in warnings_ if f"plugin {plugin!r}" in w]
        assert len(hits) == 1 and needle in hits[0] and "skipped" in hits[0], (plugin, hits)
    assert f"good {float(np.sin(0.5))!r}" in res.stdout
    assert f"exp {float(np.e)!r}" in res.stdout
    assert "halfway kept: False" in res.stdout  # a plugin is skipped whole


def test_broken_installed_plugins_do_not_break_the_cli(installed_broken):
    res = run_python("from tapegrad.cli import main; raise SystemExit(main(['ops', 'bp_good']))",
                     installed_broken)
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert "bp_good" in res.stdout and "1 op\n" in res.stdout + "\n"
    assert "plugin 'bp_raises'" in res.stderr


@pytest.mark.parametrize("kind", ["raises", "halfway", "string", "badname", "fullwidth",
                                  "spec42"])
def test_runtime_registration_of_a_broken_plugin_raises_and_changes_nothing(kind, tmp_path):
    namespace: dict = {}
    exec(BROKEN_PLUGINS, namespace)  # noqa: S102 - the test's own plugin source
    before = {i.name: i for i in tg.list_ops()}
    name = f"rt_broken_{kind}"
    with pytest.raises(tg.PluginError) as info:
        tg.register_plugin(namespace[kind], name=name)
    assert f"plugin {name!r}" in str(info.value)
    assert BROKEN[f"bp_{kind}"] in str(info.value)
    assert "skipped" not in str(info.value)
    assert not tg.plugin_manager().has_plugin(name)
    assert {i.name: i for i in tg.list_ops()} == before
    still_works()


# ------------------------------------------------------------------ spec files

def test_load_spec_refuses_devices_fifos_and_directories(tmp_path):
    with pytest.raises(tg.SpecError, match="/dev/zero: not a regular file"):
        tg.load_spec("/dev/zero")
    fifo = tmp_path / "ops.yaml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(tg.SpecError, match="ops.yaml: not a regular file"):
        tg.load_spec(fifo)  # must not block waiting for a writer
    assert time.perf_counter() - t0 < 2
    with pytest.raises(tg.SpecError, match="is a directory"):
        tg.load_spec(tmp_path)
    still_works()


def test_load_spec_refuses_a_file_over_one_megabyte(tmp_path):
    from tapegrad.spec import MAX_SPEC_BYTES

    assert MAX_SPEC_BYTES == 1_000_000
    big = tmp_path / "big.yaml"
    big.write_text("ops:\n  big_op:\n    args: [x]\n    forward: 'x'\n    nondiff: [x]\n"
                   + "#" * MAX_SPEC_BYTES + "\n")
    assert big.stat().st_size == 1_000_064
    with pytest.raises(tg.SpecError) as info:
        tg.load_spec(big)
    assert str(info.value) == f"{big.resolve()}: spec file too large (1000064 bytes; the " \
                              "limit is 1000000)"
    assert "big_op" not in dir(tg.ops)


@pytest.mark.parametrize("target, problem", [("dir", "is a directory"),
                                             ("/dev/zero", "not a regular file"),
                                             ("fifo", "not a regular file")])
def test_cli_spec_names_what_the_file_is(target, problem, tmp_path, capsys):
    from tapegrad.cli import main

    if target == "dir":
        path = str(tmp_path)
    elif target == "fifo":
        path = str(tmp_path / "pipe.yaml")
        os.mkfifo(path)
    else:
        path = target
    assert main(["spec", path]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"tapegrad: error: {path}: {problem}"


def merge_bomb(levels):
    """A spec file of a few hundred bytes whose merge keys double at each level."""
    def node(n):
        return "{k: v}" if n == 0 else f"{{<<: [&L{n - 1} {node(n - 1)}, *L{n - 1}]}}"

    return "ops: " + node(levels)


def test_yaml_merge_key_bomb_is_fast():
    from tapegrad.spec import compile_spec_source

    text = merge_bomb(40)  # 2**40 merged pairs with a naive flattening
    assert len(text) < 1000
    t0 = time.perf_counter()
    with pytest.raises(tg.SpecError, match="op 'k': an op entry must be a mapping"):
        compile_spec_source(text, REGISTRY.ops, "bomb.yaml")
    assert time.perf_counter() - t0 < 2


def test_yaml_merge_chain_is_refused_not_quadratic():
    from tapegrad.spec import compile_spec_source

    lines = ["x0: &L0 {k0: v}"] + [f"x{i}: &L{i} {{<<: *L{i - 1}, k{i}: v}}"
                                    for i in range(1, 3000)]
    t0 = time.perf_counter()
    with pytest.raises(tg.SpecError, match="more than 200000 entries once aliases and merge"):
        compile_spec_source("\n".join(lines), REGISTRY.ops, "chain.yaml")
    assert time.perf_counter() - t0 < 2


def test_yaml_merge_keys_still_work(tmp_path):
    from tapegrad.spec import compile_spec_source

    text = textwrap.dedent("""
        common: &common {args: [x], vjp: {x: "g * 2 * x"}}
        ops:
          merged_square:
            <<: *common
            forward: "x * x"
    """)
    with pytest.raises(tg.SpecError, match="unknown top-level key: 'common'"):
        compile_spec_source(text, REGISTRY.ops)
    text = textwrap.dedent("""
        ops:
          merged_square: &sq {args: [x], forward: "x * x", vjp: {x: "g * 2 * x"}}
          merged_square2: {<<: [*sq, *sq], doc: "the same"}
    """)
    defs = compile_spec_source(text, REGISTRY.ops)
    assert [d.name for d in defs] == ["merged_square", "merged_square2"]
    assert defs[1].doc == "the same"
    np.testing.assert_allclose(defs[1].forward(np.array([3.0])), [9.0])


def test_pyproject_requires_a_pyyaml_without_the_merge_bomb():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"pyyaml>=6.0.4"' in text  # 6.0.4 dedupes merge keys (yaml/pyyaml#937)


BOMB_SPEC = """
ops:
  work_bomb:
    args: [x]
    forward: "sum(broadcast_to(sum(x), shape=(100000000000,)))"
    vjp: {x: "g + 0 * x"}
"""


def test_spec_check_with_a_huge_intermediate_fails_fast(tmp_path, capsys):
    from tapegrad.cli import main

    path = tmp_path / "work_bomb.yaml"
    path.write_text(BOMB_SPEC)
    t0 = time.perf_counter()
    assert main(["spec", str(path)]) == 1
    assert time.perf_counter() - t0 < 5
    out = capsys.readouterr().out
    assert "work_bomb  work_bomb.yaml  3" in out and "FAIL" in out
    assert ("checking the ops of this file needs more than 2000000000 array elements of "
            "work (tapegrad.spec_files.MAX_CHECK_WORK; the call of op 'broadcast_to' reached it)"
            in out)
    assert "work_bomb" not in dir(tg.ops)  # `tapegrad spec` leaves the registry as it was


def test_work_limit_counts_calls_and_elements():
    from tapegrad.spec_files import CALL_COST, WorkLimit

    limit = WorkLimit("f.yaml", limit=10 * CALL_COST)
    add = limit.wrap(np.add, "add")
    np.testing.assert_allclose(add(np.ones(3), 1.0), [2.0] * 3)
    assert limit.spent == 2 * CALL_COST + 3 + 1 + 3  # two checks: arguments, then result
    with pytest.raises(tg.SpecError, match=r"f.yaml: checking the ops of this file needs "
                                           r"more than 10000 array elements"):
        add(np.ones(10_000), 1.0)


def test_checked_spec_ops_are_the_registered_ones_under_a_limit():
    from tapegrad.spec_files import checkable

    infos = [tg.get_op("softplus"), tg.get_op("add")]
    checked = checkable(infos)
    assert checked[1] is infos[1]  # Python ops as they are
    assert checked[0] is not infos[0] and checked[0].name == "softplus"
    assert checked[0].source == infos[0].source
    x = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(checked[0].call(x).data, np.log1p(np.exp(x)))
    assert checked[0].definition.forward is not infos[0].definition.forward


def test_spec_samples_are_bounded_in_number_and_size():
    from tapegrad.spec import compile_spec_source

    def spec(samples):
        return ("ops:\n  many:\n    args: [x]\n    forward: 'x * x'\n"
                "    vjp: {x: 'g * 2 * x'}\n    samples:\n" + samples)

    with pytest.raises(tg.SpecError, match=r"op 'many', field 'samples': too many samples: "
                                           r"203 with the default ones \(the limit is 100\)"):
        compile_spec_source(spec("      - shapes: [[]]\n" * 200), REGISTRY.ops)
    with pytest.raises(tg.SpecError, match=r"samples too large: 18025 elements in all"):
        compile_spec_source(spec("      - shapes: [[9000]]\n" * 2), REGISTRY.ops)
    defs = compile_spec_source(spec("      - shapes: [[5]]\n" * 20), REGISTRY.ops)
    assert len(defs[0].samples(np.random.default_rng(0))) == 23


# ------------------------------------------------------------------ rebuilds

SPEC_A = """
ops:
  rb_aop:
    args: [x]
    forward: "x * x"
    vjp: {x: "g * 2 * x"}
"""
SPEC_B = """
ops:
  rb_bop:
    args: [x]
    forward: "rb_aop(x) + x"
    vjp: {x: "g * (2 * x + 1)"}
"""


def test_reloading_a_spec_keeps_the_later_specs_that_call_it(tmp_path, recwarn):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(SPEC_A)
    b.write_text(SPEC_B)
    tg.load_spec(a)
    tg.load_spec(b)
    try:
        tg.load_spec(a)  # reload: A is now registered after B
        assert tg.ops.rb_bop(3.0).item() == 12.0
        x = tg.tensor(3.0, requires_grad=True)
        tg.ops.rb_bop(x).backward()
        assert x.grad == 7.0
        a.write_text(SPEC_A.replace("x * x", "x * x * 1"))
        tg.load_spec(a)  # a real change, reloaded in place
        assert tg.ops.rb_bop(2.0).item() == 6.0
        assert not [w for w in recwarn if "skipped" in str(w.message)]
    finally:
        for p in (b, a):
            tg.unregister_plugin(f"spec:{p.resolve()}")


def test_reregistering_a_builtin_plugin_brings_back_the_specs_that_need_it():
    import tapegrad.builtins.arithmetic as arithmetic

    name = "tapegrad.builtins.arithmetic"
    before = sorted(REGISTRY.ops)
    with pytest.warns(UserWarning, match="is skipped"):
        tg.unregister_plugin(name)
    try:
        assert "sigmoid" not in REGISTRY.ops and "add" not in REGISTRY.ops
    finally:
        tg.register_plugin(arithmetic, name=name)
    assert sorted(REGISTRY.ops) == before
    assert REGISTRY.problems == []
    assert tg.ops.sigmoid(0.0).item() == 0.5
    still_works()


# ------------------------------------------------------------------ threads

def test_registering_in_two_threads_never_disturbs_a_thread_that_computes():
    def plugin(i):
        class P:
            @tg.hookimpl
            def tapegrad_ops(self):
                return [tg.OpDef(f"thr_op_{i}", np.sin, lambda g, out, x: (g * np.cos(x),),
                                 method=True)]
        return P()

    stop = threading.Event()
    errors: list[str] = []
    rounds = [0, 0]
    computed = [0]

    def churn(i):
        try:
            while not stop.is_set():
                tg.unregister_plugin(tg.register_plugin(plugin(i), name=f"thr_plugin_{i}"))
                rounds[i] += 1
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(f"registering: {exc!r}")
            stop.set()

    def compute():
        x = tg.tensor(np.linspace(-1, 1, 5), requires_grad=True)
        deadline = time.perf_counter() + 1.0
        try:
            while not stop.is_set() and time.perf_counter() < deadline:
                (np.exp(x) + tg.ops.tanh(x) + x.sigmoid()).sum().backward()
                computed[0] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"computing: {exc!r}")
        stop.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=churn, args=(i,)) for i in range(2)]
        threads.append(threading.Thread(target=compute))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert min(rounds) > 0 and computed[0] > 0
    assert not any(n.startswith("thr_op_") for n in REGISTRY.ops)
    assert not any(hasattr(tg.Tensor, f"thr_op_{i}") for i in range(2))
    still_works()


# ------------------------------------------------------------------ ASCII names

FULLWIDTH_EXP = "\uff45\uff58\uff50"


@pytest.mark.parametrize("field, text, message", [
    ("op name", f"ops:\n  {FULLWIDTH_EXP}:\n    args: [x]\n    forward: 'x'\n    nondiff: [x]\n",
     f"f.yaml, field 'ops': an op name must be an ASCII identifier: '{FULLWIDTH_EXP}'; "
     "non-ASCII character '\uff45' (U+FF45)"),
    ("arg", "ops:\n  myop:\n    args: [\uff58]\n    forward: 'x'\n    nondiff: [x]\n",
     "f.yaml, op 'myop', field 'args': an arg name must be an ASCII identifier: '\uff58'; "
     "non-ASCII character '\uff58' (U+FF58)"),
    ("param", "ops:\n  myop:\n    args: [x]\n    params: {\uff41: 1.0}\n    forward: 'x'\n"
              "    nondiff: [x]\n",
     "f.yaml, op 'myop', field 'params': a param name must be an ASCII identifier: '\uff41'; "
     "non-ASCII character '\uff41' (U+FF41)"),
    ("formula", f"ops:\n  myop:\n    args: [x]\n    forward: '{FULLWIDTH_EXP}(x)'\n"
                "    nondiff: [x]\n",
     f"f.yaml, op 'myop', field 'forward': non-ASCII character '\uff45' (U+FF45): "
     f"'{FULLWIDTH_EXP}(x)'; formulas are ASCII"),
    ("keyword", "ops:\n  myop:\n    args: [x]\n    forward: 'sum(x, \uff41xis=0)'\n"
                "    nondiff: [x]\n",
     "f.yaml, op 'myop', field 'forward': non-ASCII character '\uff41' (U+FF41)"),
    ("method", "ops:\n  myop:\n    args: [x]\n    forward: 'x'\n    nondiff: [x]\n"
               "    method: \uff4d\n",
     "f.yaml, op 'myop', field 'method': a method name must be an ASCII identifier"),
])
def test_spec_names_and_formulas_must_be_ascii(field, text, message):
    from tapegrad.spec import compile_spec_source

    with pytest.raises(tg.SpecError) as info:
        compile_spec_source(text, REGISTRY.ops, "f.yaml")
    assert str(info.value).startswith(message), field


def test_a_fullwidth_op_never_calls_the_builtin_one(tmp_path):
    path = tmp_path / "fw.yaml"
    path.write_text(f"ops:\n  fw_op:\n    args: [x]\n    forward: '{FULLWIDTH_EXP}(x)'\n"
                    "    nondiff: [x]\n")
    with pytest.raises(tg.SpecError, match="non-ASCII"):
        tg.load_spec(path)
    assert "fw_op" not in REGISTRY.ops


# ------------------------------------------------------------------ clear errors

def test_disabling_an_unknown_plugin_warns_with_close_matches(tmp_path):
    code = ("import warnings; warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    import tapegrad as tg\n"
            "for x in w: print(x.message)\n"
            "print('sum' in dir(tg.ops))")
    res = run_python(code, tmp_path, env={
        "TAPEGRAD_DISABLE_PLUGINS": "tapegrad.builtins.reduction,tapegrad.builtins.fft"})
    assert res.returncode == 0, res.stderr
    assert ("tapegrad: TAPEGRAD_DISABLE_PLUGINS names 'tapegrad.builtins.reduction', which "
            "is no built-in or installed plugin; did you mean 'tapegrad.builtins.reductions', "
            in res.stdout)
    assert "'tapegrad.builtins.fft', which" not in res.stdout  # a real one: no warning
    assert res.stdout.splitlines()[-1] == "True"  # the misspelt one blocked nothing


def cli(capsys, *argv):
    from tapegrad.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_ops_with_an_unknown_plugin_says_so(capsys):
    code, out, err = cli(capsys, "ops", "--plugin", "tapegrad.builtins.reduction")
    assert code == 2 and out == ""
    assert err.splitlines()[0] == (
        "tapegrad: error: no plugin named 'tapegrad.builtins.reduction' is registered; did "
        "you mean tapegrad.builtins.reductions, tapegrad.builtins.products, "
        "tapegrad.builtins.specs?")
    code, out, _ = cli(capsys, "ops", "--plugin", "tapegrad.builtins.reductions")
    assert code == 0 and out.splitlines()[-1] == "4 ops"


def test_cli_one_op_is_singular(capsys):
    code, out, _ = cli(capsys, "ops", "exp")
    assert code == 0 and out.splitlines()[-1] == "1 op"


@pytest.mark.parametrize("seed", ["-1", "abc", "1.5"])
def test_cli_bad_seed_is_a_usage_error(seed, capsys):
    code, out, err = cli(capsys, "check", "--seed", seed, "exp")
    assert code == 2 and out == ""
    assert f"argument --seed: expected a non-negative integer, got {seed!r}" in err


def test_cli_plugins_wraps_to_the_terminal_width(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    col = lines[0].index("PROVIDES")
    row = lines.index(next(line for line in lines if line.startswith("tapegrad.builtins.specs")))
    assert lines[row + 1][:col].strip() == "" and lines[row + 1][col] != " "
    provides = " ".join(line[col:].strip() for line in lines[row:]
                        if line is lines[row] or not line[:col].strip())
    assert "elementwise.yaml: arcsin, arctan, cos, cosh, exp, expm1, ..." in provides
    monkeypatch.delenv("COLUMNS")
    code, out, _ = cli(capsys, "plugins")  # to a pipe: one line per plugin
    assert len(out.splitlines()) == 2 + len(tg.plugin_manager().list_name_plugin())


# ------------------------------------------------------------------ the gradient checker

def test_compare_fails_where_one_side_is_not_finite():
    from tapegrad.gradcheck import compare

    with pytest.raises(tg.GradcheckError) as info:
        compare(np.array([1.0, 2.0]), np.array([np.nan, 2.0]), "f", 1e-5, 1e-6)
    assert str(info.value).startswith(
        "f: gradients disagree (1 of 2 elements off; 1 element(s) NaN or inf on one side "
        "only (the gradient is not finite there)). Worst at index (0,): analytic 1, "
        "numerical nan.")
    with pytest.raises(tg.GradcheckError, match="analytic inf, numerical 3"):
        compare(np.array([np.inf]), np.array([3.0]), "f", 1e-5, 1e-6)
    with pytest.raises(tg.GradcheckError, match="analytic nan, numerical nan"):
        compare(np.array([np.nan]), np.array([np.nan]), "f", 1e-5, 1e-6)
    compare(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), "f", 1e-5, 1e-6)  # the same


def test_check_grads_fails_a_wrong_rule_where_the_numerical_gradient_is_nan(register):
    # sqrt at 1e-7: finite, but x - eps < 0, so the finite difference is NaN. The rule
    # (zero) is wrong; comparing NaN with `err > tol` used to let it pass.
    register(tg.OpDef("rb_wrong_sqrt", np.sqrt, lambda g, out, x: (g * 0.0,)))
    with np.errstate(invalid="ignore"), pytest.raises(tg.GradcheckError) as info:
        tg.check_grads(tg.ops.rb_wrong_sqrt, np.array([1e-7, 0.25]))
    assert "analytic 0, numerical nan" in str(info.value)


def test_check_grads_reports_a_function_that_is_not_finite_at_the_inputs():
    with np.errstate(invalid="ignore"), pytest.raises(tg.GradcheckError) as info:
        tg.check_grads(lambda x: x.log(), np.array([1.0, -1.0, 2.0]))
    assert str(info.value) == (
        "f: f is not finite at the inputs (NaN at output index (1,), 1 of 3 elements), so "
        "its gradient cannot be checked there; check it at inputs where it is finite (for "
        "an op: give it a domain or samples inside the domain of its function)")


def test_cli_spec_with_a_domain_where_the_op_is_not_finite_says_so(tmp_path, capsys):
    path = tmp_path / "rb_log.yaml"
    path.write_text("ops:\n  rb_log:\n    args: [x]\n    forward: 'log(x)'\n"
                    "    vjp: {x: 'g / x'}\n")  # default domain [-2, 2]
    code, out, _ = cli(capsys, "spec", str(path))
    assert code == 1
    assert ("FAIL rb_log: op 'rb_log' sample 0: f is not finite at the inputs (NaN at output "
            "index (0, 1), 4 of 12 elements), so its gradient cannot be checked there" in out)
    assert "1 op checked: 0 passed, 1 failed" in out


@pytest.mark.parametrize("f", [
    lambda x: np.sign(x),
    lambda x: np.floor(x * 3.0),
    lambda x: 2.0,
    lambda x: tg.tensor(3.0),
], ids=["sign", "floor", "number", "constant tensor"])
def test_check_grads_of_an_untracked_output_compares_zero(f):
    from tapegrad.gradcheck import reverse_grads

    x = np.array([0.3, -0.7])
    tg.check_grads(f, x, order=2)  # the gradient is zero, and so is the numerical one
    _, grads = reverse_grads(lambda t: np.sum(f(t)), [x], [0])
    np.testing.assert_array_equal(grads[0], [0.0, 0.0])


def test_check_grads_of_an_untracked_output_still_fails_a_nonzero_derivative():
    # floor(1000 x) changes between x - eps and x + eps at this x: numerically not 0.
    with pytest.raises(tg.GradcheckError, match="analytic 0, numerical"):
        tg.check_grads(lambda x: np.floor(x * 1e6), np.array([0.5 + 1e-7]))


def test_grad_of_grad_of_the_identity_is_zero():
    assert tg.grad(lambda x: x)(2.0) == 1.0
    assert tg.grad(tg.grad(lambda x: x))(2.0) == 0.0
    assert tg.grad(tg.grad(tg.grad(lambda x: x)))(2.0) == 0.0
    assert tg.grad(tg.grad(lambda x: x * x))(2.0) == 2.0
    np.testing.assert_array_equal(tg.jacobian(lambda x: x)(np.array([1.0, 2.0])), np.eye(2))
    out, vjp_fn = tg.vjp(lambda x: x, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(vjp_fn(np.array([3.0, 4.0]))[0], [3.0, 4.0])
    ga, gb = tg.grad(lambda a, b: a, argnums=(0, 1))(2.0, 3.0)
    assert (ga, gb) == (1.0, 0.0)


def test_numerical_grad_of_complex_inputs_follows_pytorchs_convention():
    from tapegrad.gradcheck import compare

    z = np.array([1 + 2j, -0.5 + 0.25j])
    w = np.array([0.3 - 1j, 2 + 0.5j])
    # L = sum |z + w|^2 = sum (Re)^2 + (Im)^2: dL/dRe + 1j dL/dIm = 2 (z + w)
    numeric = tg.numerical_grad(lambda t: (abs(t + w) ** 2).sum(), z)
    assert numeric.dtype == np.complex128
    np.testing.assert_allclose(numeric, 2 * (z + w), rtol=1e-8)
    compare(2 * (z + w), numeric, "f", 1e-5, 1e-6)
    with pytest.raises(tg.GradcheckError, match="2 of 2 elements off"):
        compare(2 * np.conj(z + w), numeric, "f", 1e-5, 1e-6)  # the other convention


@pytest.mark.parametrize("action, builtin", [
    (lambda: tg.numerical_grad(lambda t: t * 1.0, np.ones(2)), ValueError),
    (lambda: tg.check_grads(lambda t: t, np.ones(2), modes=("back",)), ValueError),
    (lambda: ops_of(plugin="rb_nope"), LookupError),
])
def test_user_mistakes_in_the_checkers_are_tapegrad_errors(action, builtin):
    with pytest.raises(builtin) as info:
        action()
    assert isinstance(info.value, tg.TapegradError)
