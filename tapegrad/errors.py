"""The one exception hierarchy of tapegrad.

Every error tapegrad raises on purpose derives from :class:`TapegradError`. Where a
built-in exception type is the natural one for callers to catch (``ValueError`` for a
bad value, ``KeyError`` for an unknown op, ``RuntimeError`` for a misuse of the tape),
the tapegrad class derives from it too, so ``except ValueError`` keeps working. The
messages shared by several modules are built here too.
"""

from __future__ import annotations

from typing import Any


class TapegradError(Exception):
    """Base class of every error tapegrad raises on purpose."""


class TapegradTypeError(TapegradError, TypeError):
    """A value of the wrong type or dtype (a Tensor converted implicitly to an ndarray,
    ``requires_grad`` on integers, ...)."""


class TapegradValueError(TapegradError, ValueError):
    """A value of the wrong shape, size or range (``backward()`` of a non-scalar, ...)."""


class TapegradRuntimeError(TapegradError, RuntimeError):
    """A misuse of the tape or of a graph (backward through it twice, a closed tape)."""


class TapegradIndexError(TapegradError, IndexError):
    """An index out of range (an ``argnums`` entry beyond the arguments)."""


class TapegradLookupError(TapegradError, LookupError):
    """A selection that matches nothing (``tapegrad.testing.ops_of`` with a typo)."""


class PluginError(TapegradError):
    """A plugin misbehaved at registration: bad hook, bad op definition, clashing names."""


class OpRuleError(TapegradError, ValueError):
    """An op's forward, vjp or jvp rule broke its contract (wrong count, shape, type)."""


class DifferentiabilityError(TapegradError, RuntimeError):
    """A gradient was asked of something that cannot provide it (e.g. a NumPy-only vjp
    differentiated a second time)."""


class SpecError(TapegradError, ValueError):
    """A YAML op spec is invalid; the message names file, op, field and offending text."""


class GradcheckError(TapegradError, AssertionError):
    """Analytic and numerical gradients disagree beyond tolerance."""


class UnknownOpError(TapegradError, KeyError, AttributeError):
    """No op of that name is registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConversionError(TapegradError, TypeError):
    """A tracked Tensor was about to become a plain ndarray implicitly (its gradient
    would be lost), or a NumPy function without an op was called on one."""


class GraphError(TapegradError, RuntimeError):
    """A misuse of the recorded graph: a second backward through freed records, a
    backward from a tensor that requires no grad, a tape used twice."""


class ShapeError(TapegradError, ValueError):
    """A value of the wrong shape was handed to the engine (a backward seed, say)."""


class CompileError(TapegradError):
    """``tg.compile`` cannot build a plan that stays right on later calls: a traced
    value reached Python (``bool``, ``float``, ``.data``...), an op is not compilable, a
    result's shape depends on values. The message names the user's line."""


class CompileWarning(UserWarning):
    """A compiled function keeps tracing again (its arguments' signature keeps changing)."""


# --------------------------------------------------------------------------- messages


def complex_error(info: Any) -> TypeError:
    """Op ``info`` (an ``OpInfo``) has no complex rule and met a complex input."""
    return TapegradTypeError(
        f"op {info.name!r} (from {info.source}) has no rule for complex numbers, and a "
        "complex value needing a gradient reached it. Use real inputs, or declare the op "
        "OpDef(complex=True) once its vjp is right for complex inputs (docs/TRANSFORMS.md)")


_op_error_classes: dict[type, type] = {}


def forward_failed(info: Any, exc: Exception, inputs: tuple, params: dict) -> Exception:
    """``exc`` from an op's forward, re-raised naming the op, its source and the inputs.

    The new exception is still an instance of the original type (a ValueError stays a
    ValueError) and of TapegradError.
    """
    if isinstance(exc, TapegradError):
        return exc
    shapes = ", ".join(str(getattr(x, "shape", type(x).__name__)) for x in inputs)
    shown = {k: v for k, v in params.items() if info.params.get(k, _NO) is not v}
    extra = f" and params {shown}" if shown else ""
    msg = (f"op {info.name!r} (from {info.source}) failed on inputs of shape {shapes}"
           f"{extra}: {type(exc).__name__}: {exc}")
    cls = _op_error_classes.get(type(exc))
    if cls is None:
        try:
            cls = type(f"Op{type(exc).__name__}", (TapegradError, type(exc)), {
                "__init__": lambda self, m: BaseException.__init__(self, m),
                "__str__": lambda self: str(self.args[0]),
            })
        except TypeError:  # an exception type that cannot be subclassed this way
            cls = OpRuleError
        _op_error_classes[type(exc)] = cls
    return cls(msg)


_NO = object()
