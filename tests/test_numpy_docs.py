"""docs/NUMPY.md is current, says what it should, and matches the registry's dispatch; the
README's packaging snippet is a complete pyproject whose wheel ships its YAML."""

import functools
import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import cli, dispatch, numpy_doc
from tapegrad.errors import ConversionError
from tapegrad.opdef import OpInfo
from tapegrad.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "NUMPY.md"
README = ROOT / "README.md"
SCIPY_PLUGIN_DIR = ROOT / "plugins" / "tapegrad-scipy"


@functools.cache
def generated():
    return numpy_doc.render()


# ----------------------------------------------------------------------- docs/NUMPY.md


def test_numpy_md_is_current():
    pytest.importorskip("scipy.special")
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert generated() == committed, (
        f"docs/NUMPY.md is out of date with the op registry; regenerate it from the "
        f"repository root with `{numpy_doc.COMMAND}`")


def test_cli_numpy_flag_prints_the_document(capsys):
    assert cli.main(["ops", "--numpy"]) == 0
    assert capsys.readouterr().out == generated()
    assert cli.main(["ops", "--numpy", "--json"]) == 2
    assert "--numpy" in capsys.readouterr().err


def test_generation_leaves_the_registry_as_it_was():
    before = sorted(tg.plugin_manager().list_name_plugin(), key=lambda p: str(p[0]))
    ops = set(REGISTRY.ops)
    numpy_doc.render()
    assert sorted(tg.plugin_manager().list_name_plugin(), key=lambda p: str(p[0])) == before
    assert set(REGISTRY.ops) == ops


def test_same_text_with_the_scipy_plugin_registered_or_not():
    pytest.importorskip("scipy.special")
    if tg.plugin_manager().has_plugin("scipy"):
        pytest.skip("the scipy plugin is installed: the other case cannot be made here")
    sys.path.insert(0, str(SCIPY_PLUGIN_DIR / "src"))
    try:
        import tapegrad_scipy.plugin

        tg.register_plugin(tapegrad_scipy.plugin, name="scipy")
        try:
            assert numpy_doc.render() == generated()
        finally:
            tg.unregister_plugin("scipy")
    finally:
        sys.path.remove(str(SCIPY_PLUGIN_DIR / "src"))


def cells(row):
    """The cells of a Markdown table row (escaped pipes only occur inside cells)."""
    return [c.strip() for c in row.strip()[1:-1].split(" | ")]


def test_doc_tables_name_op_and_notes():
    text = generated()
    rows = {cells(line)[0]: line for line in text.splitlines() if line.startswith("| `")}
    # aliases share a row, the op's doc line and complex support are there
    assert "`np.abs`" in rows["`np.absolute`, `np.abs`"]
    assert "| `abs` | `.abs()` `abs(x)` | 1 | yes |" in rows["`np.absolute`, `np.abs`"]
    assert tg.get_op("norm").doc.replace("|", "\\|") in rows["`np.linalg.norm`"]
    # inputs without a gradient, by the op's own names (a YAML ufunc op's `args`)
    assert cells(rows["`np.where`"])[5] == "`condition`"
    assert cells(rows["`np.floor_divide`"])[5] == "all"
    if "`scipy.special.gammainc`" in rows:
        assert cells(rows["`scipy.special.gammainc`"])[5] == "`a`"
        assert "## Plugin `scipy` (distribution `tapegrad-scipy`)" in text
    # the header says what happens with a function not listed, and how to add one
    assert "raises `TypeError` naming it" in text
    assert ".detach()" in text and "implements=(np.FUNC,)" in text
    assert "`np.unwrap`" not in rows


def test_an_unlisted_function_raises_type_error_naming_it():
    assert np.unwrap not in numpy_doc.dispatch_targets(tg.list_ops())
    a = tg.tensor(np.array([0.0, 3.5, 7.0]), requires_grad=True)
    with pytest.raises(ConversionError, match=r"np\.unwrap") as info:
        np.unwrap(a)
    assert isinstance(info.value, TypeError)
    np.testing.assert_allclose(np.unwrap(a.detach()), np.unwrap([0.0, 3.5, 7.0]))


def test_documented_functions_are_exactly_the_dispatch_tables():
    ufuncs, functions = dispatch.TABLES
    documented = numpy_doc.dispatch_targets(REGISTRY.ops.values())
    assert set(documented) == set(ufuncs) | set(functions)
    for fn, info in documented.items():
        call = (ufuncs if isinstance(fn, np.ufunc) else functions)[fn]
        assert getattr(call, "args", (call,))[0] is info.call, fn


def test_listed_functions_run_their_op():
    x = tg.tensor([0.3, 0.7], requires_grad=True)
    for fn, op in [(np.absolute, "abs"), (np.sin, "sin"), (np.cumsum, "cumsum")]:
        y = fn(x)
        assert y._node.op.name == op
        np.testing.assert_allclose(y.data, fn(x.data))
    np.sin(x).sum().backward()
    np.testing.assert_allclose(x.grad, np.cos([0.3, 0.7]))


def test_count_counts_differentiable_functions_and_their_names():
    fake = tg.OpDef("dummy_abs", np.absolute, lambda g, out, x: g * np.sign(x))
    untracked = tg.OpDef("dummy_floor", np.floor, None)
    infos = [OpInfo("dummy_abs", "t", 1, {}, fake), OpInfo("dummy_floor", "t", 1, {}, untracked)]
    assert numpy_doc.count(infos) == (1, 2)  # np.absolute (alias np.abs); floor untracked
    functions, names = numpy_doc.count(numpy_doc.builtin_ops())
    header = re.search(r"\*\*(\d+)\*\* NumPy/SciPy functions: (\d+) built in", generated())
    assert int(header.group(2)) == functions and names > functions


# ----------------------------------------------------------------------- packaging


def readme_toml_blocks():
    text = README.read_text(encoding="utf-8")
    section = text.split("### Packaging it", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```toml\n(.*?)```", section, flags=re.S)


def test_readme_packaging_snippet_is_a_complete_pyproject():
    blocks = readme_toml_blocks()
    assert len(blocks) == 1
    doc = tomllib.loads(blocks[0])
    assert doc["build-system"]["build-backend"] == "hatchling.build"
    assert any(r.startswith("hatchling") for r in doc["build-system"]["requires"])
    assert doc["project"]["entry-points"]["tapegrad"]  # the group tapegrad loads
    plugin = next(iter(doc["project"]["entry-points"]["tapegrad"].values()))
    package = doc["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]
    assert plugin.split(".")[0] == Path(package).name
    scipy = tomllib.loads((SCIPY_PLUGIN_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    assert doc["build-system"] == scipy["build-system"]


def build_wheel(project: Path, out: Path) -> zipfile.ZipFile:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling is not installed: the offline wheel build needs it")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(project)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def test_scipy_plugin_wheel_ships_its_yaml(tmp_path):
    names = build_wheel(SCIPY_PLUGIN_DIR, tmp_path).namelist()
    assert "tapegrad_scipy/special.yaml" in names
    assert "tapegrad_scipy/plugin.py" in names


def test_readme_snippet_builds_a_wheel_with_the_yaml(tmp_path):
    project = tmp_path / "tapegrad-smooth"
    package = project / "src" / "tapegrad_smooth"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(readme_toml_blocks()[0], encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "plugin.py").write_text("", encoding="utf-8")
    (package / "smooth_abs.yaml").write_text("ops: {}\n", encoding="utf-8")
    wheel = build_wheel(project, tmp_path / "dist")
    assert "tapegrad_smooth/smooth_abs.yaml" in wheel.namelist()
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[tapegrad]" in text and "smooth = tapegrad_smooth.plugin" in text
