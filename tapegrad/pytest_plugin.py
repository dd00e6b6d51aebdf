"""pytest plugin (entry point ``pytest11``): test a plugin's ops from its own suite.

Installed with tapegrad, pytest loads it automatically (or pass ``-p
tapegrad.pytest_plugin``). It provides:

* the ``tapegrad_op`` fixture, parametrized over registered ops: all differentiable
  ops, or those chosen with ``@pytest.mark.tapegrad_ops(plugin="name", names=[...])``;
* the ``tapegrad_check`` fixture: :func:`tapegrad.testing.check_op_all_modes` with the
  order and modes from the command line (``--tapegrad-order``, default 2;
  ``--tapegrad-modes``, default ``rev,fwd``).

A whole suite for a plugin's ops::

    import pytest

    @pytest.mark.tapegrad_ops(plugin="my_plugin")
    def test_my_ops(tapegrad_op, tapegrad_check):
        tapegrad_check(tapegrad_op)

tapegrad itself is imported lazily, only by tests that use these fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

MARKER = "tapegrad_ops"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tapegrad", "tapegrad op checks")
    group.addoption("--tapegrad-order", type=int, default=2,
                    help="highest derivative order tapegrad_check checks (default 2)")
    group.addoption("--tapegrad-modes", default="rev,fwd",
                    help="comma-separated modes tapegrad_check checks (default rev,fwd)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(plugin=None, names=None): parametrize the tapegrad_op fixture over the "
        "ops of a tapegrad plugin (or the named ops)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tapegrad_op" not in metafunc.fixturenames:
        return
    from tapegrad.testing import ops_of

    marker = metafunc.definition.get_closest_marker(MARKER)
    kwargs: dict[str, Any] = {}
    if marker is not None:
        if marker.args:
            kwargs["plugin"] = marker.args[0]
        kwargs.update(marker.kwargs)
    ops = ops_of(**kwargs)
    metafunc.parametrize("tapegrad_op", ops, ids=[i.name for i in ops])


@pytest.fixture
def tapegrad_check(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``check(op, **overrides)``: gradient-check an op in every mode, up to an order."""
    from tapegrad.testing import check_op_all_modes

    order = request.config.getoption("--tapegrad-order")
    modes = tuple(m.strip() for m in request.config.getoption("--tapegrad-modes").split(",")
                  if m.strip())

    def check(op: Any, **overrides: Any) -> None:
        kw = {"order": order, "modes": modes, **overrides}
        check_op_all_modes(op, **kw)

    return check
