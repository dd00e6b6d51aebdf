"""tapegrad-scipy: differentiable scipy.special, scipy.stats and the basics of scipy.linalg
and scipy.signal for tapegrad, as a plugin.

Installing the distribution is all it takes: its entry point (group ``tapegrad``, name
``scipy``) registers the scipy.special ufuncs as ops (``tg.ops.gammaln``, ...; declared
in ``special.yaml``, their forward the SciPy ufunc itself, so
``scipy.special.gammaln(tensor)`` is recorded) and a few Python ops (``ops.py``).
Without installing, register it at run time::

    import tapegrad as tg, tapegrad_scipy.plugin
    tg.register_plugin(tapegrad_scipy.plugin, name="scipy")

Then ``tapegrad_scipy.special`` (SciPy's signatures, including the functions SciPy
writes in Python: ``logsumexp``, ``softmax``, ``polygamma``, ``multigammaln``, ...),
``tapegrad_scipy.stats`` (``norm.logpdf(x, loc=0, scale=1)`` & co.),
``tapegrad_scipy.linalg`` (``solve_triangular``, ``cholesky``, ``cho_factor``,
``cho_solve``, ``sqrtm``, ``expm``, ``solve_sylvester``) and ``tapegrad_scipy.signal``
(``convolve``, ``correlate``, ``fftconvolve``): SciPy's signatures, on ops, as those
SciPy functions do not dispatch on Tensors.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["special", "stats", "linalg", "signal"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the plugin module is loaded while tapegrad itself imports.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
