"""Helpers for testing ops, for tapegrad itself and for plugin authors.

A plugin's own test suite checks every op it provides, in both modes and to second
order, in one line::

    # tests/test_my_ops.py
    from tapegrad.testing import op_test

    test_my_ops = op_test(plugin="my_plugin")

or, spelled out::

    from tapegrad.testing import check_op_all_modes, parametrize_ops

    @parametrize_ops(plugin="my_plugin")
    def test_my_op(op):
        check_op_all_modes(op)

``plugin`` matches the name the plugin was registered under (its entry-point name,
or the name given to ``tg.register_plugin``), a YAML spec file's path or file name,
or the module name of a Python plugin. With the pytest plugin (installed with tapegrad,
entry point ``pytest11``) the same is available as the ``tapegrad_op`` fixture,
parametrized by ``@pytest.mark.tapegrad_ops(plugin=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TapegradLookupError
from .gradcheck import check_grads, op_samples
from .opdef import OpInfo
from .registry import list_ops

__all__ = ["ops_of", "parametrize_ops", "check_op_all_modes", "op_test", "is_smooth"]


def _matches(info: OpInfo, plugin: str) -> bool:
    if plugin in (info.plugin, info.source):
        return True
    src = info.source
    if src.endswith((".yaml", ".yml")):
        p = Path(src)
        return plugin in (p.name, p.stem)
    return False


def ops_of(plugin: str | None = None, names: Iterable[str] | None = None,
           differentiable: bool = True) -> list[OpInfo]:
    """Registered ops, sorted by name: all of them, or those of ``plugin`` / ``names``.

    Raises ``LookupError`` when the selection is empty (a typo in ``plugin`` must not
    turn a test suite into zero tests that pass).
    """
    chosen = list_ops()
    if plugin is not None:
        chosen = [i for i in chosen if _matches(i, plugin)]
    if names is not None:
        wanted = set(names)
        chosen = [i for i in chosen if i.name in wanted]
    if differentiable:
        chosen = [i for i in chosen if i.differentiable]
    if not chosen:
        known = sorted({i.plugin for i in list_ops()} | {i.source for i in list_ops()})
        raise TapegradLookupError(f"no registered op matches plugin={plugin!r}, "
                                  f"names={names!r}; known plugins/sources: "
                                  f"{', '.join(known)}")
    return chosen


def parametrize_ops(plugin: str | None = None, names: Iterable[str] | None = None,
                    argname: str = "op") -> Any:
    """``pytest.mark.parametrize`` over the ops of ``plugin`` (ids are the op names)."""
    import pytest

    ops = ops_of(plugin, names)
    return pytest.mark.parametrize(argname, ops, ids=[i.name for i in ops])


def is_smooth(info: OpInfo, inputs: tuple) -> bool:
    """Whether a sample is fit for checks beyond first order.

    A sample with tied values (``max``'s ties, which split the gradient evenly) sits on
    a kink of the gradient: finite differences of the gradient blow up there.
    """
    arrays = list(inputs[0]) if info.variadic else list(inputs)
    return not any(isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size > 1
                   and np.unique(a).size < a.size for a in arrays)


def check_op_all_modes(info: OpInfo, order: int = 2, modes: Iterable[str] = ("rev", "fwd"),
                       rng: np.random.Generator | None = None, rtol: float | None = None,
                       atol: float | None = None) -> None:
    """Gradient-check ``info`` on its samples, in every mode, up to ``order``.

    Every sample is checked to first order; samples without tied values
    (:func:`is_smooth`) up to ``order``. Raises :class:`tapegrad.GradcheckError` (or
    the op's own error) on the first failure.
    """
    modes = tuple(modes)
    name = f"op {info.name!r} ({info.source})"
    for k, (inputs, params) in enumerate(op_samples(info, rng or np.random.default_rng(0))):
        f, args, nums = _bind(info, inputs, params)
        if not nums:
            continue
        o = order if is_smooth(info, inputs) else 1
        check_grads(f, *args, order=o, rtol=rtol, atol=atol, argnums=nums, modes=modes,
                    name=f"{name} sample {k}")


def _bind(info: OpInfo, inputs: tuple, params: dict) -> tuple[Callable[..., Any], list, list]:
    if info.variadic:
        args = list(inputs[0])

        def f(*xs: Any) -> Any:
            return info.call(list(xs), **params)

        nums = list(range(len(args)))
    else:
        args = list(inputs)

        def f(*xs: Any) -> Any:
            return info.call(*xs, **params)

        nums = [i for i in range(len(args)) if i not in info.definition.nondiff]
    nums = [i for i in nums if isinstance(args[i], np.ndarray) and args[i].dtype.kind == "f"]
    return f, args, nums


def op_test(plugin: str | None = None, names: Iterable[str] | None = None, order: int = 2,
            modes: Iterable[str] = ("rev", "fwd")) -> Callable[..., None]:
    """A ready-made pytest test: every op of ``plugin``, in every mode, up to ``order``.

    Assign it to a ``test_*`` name in a test module: ``test_ops = op_test("my_plugin")``.
    """
    modes = tuple(modes)

    @parametrize_ops(plugin, names)
    def test_op(op: OpInfo) -> None:
        check_op_all_modes(op, order=order, modes=modes)

    return test_op
