"""``Module``: a container whose parameters are found by walking its attributes.

A parameter is any :class:`~tapegrad.Tensor` attribute with ``requires_grad=True``;
nested modules and lists, tuples and dicts of tensors or modules are walked too, so
``self.layers = [Linear(2, 3), Linear(3, 1)]`` just works. Attributes whose name starts
with ``_`` are private and not walked. Names are dotted paths
(``layers.0.weight``), which are also the keys of ``state_dict()`` and of the ``.npz``
files written by :meth:`Module.save`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from tapegrad.errors import TapegradError, TapegradTypeError, TapegradValueError
from tapegrad.tensor import Tensor


class StateDictError(TapegradError, ValueError):
    """A state dict (or ``.npz`` file) that does not fit the module it is loaded into."""


def _walk(value: Any, prefix: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, tensor_or_module)`` for everything reachable from ``value``."""
    if isinstance(value, Tensor) or isinstance(value, Module):
        if id(value) not in seen:
            seen.add(id(value))
            yield prefix, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{i}" if prefix else str(i), seen)
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _walk(item, f"{prefix}.{k}" if prefix else str(k), seen)


class Module:
    """Base class of layers and models: subclass it and define ``forward``.

    ``module(x)`` calls ``forward(x)``. ``parameters()`` lists the trainable tensors
    (each once, in attribute order), ``zero_grad()`` forgets their gradients,
    ``state_dict()`` / ``load_state_dict()`` copy their values out and in, and
    ``save(path)`` / ``load(path)`` store them with ``np.savez``.
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ discovery
    def _members(self, seen: set[int]) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            yield from _walk(value, name, seen)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, tensor)`` for every parameter, each tensor once."""
        yield from self._named_parameters(prefix, {id(self)})

    def _named_parameters(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Tensor]]:
        for name, value in self._members(seen):
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(value, Module):
                yield from value._named_parameters(full, seen)
            elif value.requires_grad:
                yield full, value

    def parameters(self) -> list[Tensor]:
        """The trainable tensors: attributes with ``requires_grad``, nested ones included."""
        return [p for _, p in self.named_parameters()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (name ``prefix``) and every module nested in it."""
        yield prefix, self
        for name, value in self._members({id(self)}):
            if isinstance(value, Module):
                yield from value.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> list[Module]:
        return [m for _, m in self.named_modules()]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``Dropout`` drops only in training mode) here and below."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def astype(self, dtype: Any) -> Module:
        """Convert the model to ``dtype`` (e.g. ``np.float32``) in place; returns ``self``.

        Like PyTorch's ``model.to(dtype)``: every floating-point tensor the module holds
        (parameters, and buffers such as running statistics) is converted, and so are
        the gradients already accumulated; the tensors stay the same objects, so
        optimizers built on ``parameters()`` keep working (their internal state, such
        as Adam's moments, keeps its old dtype until it is rebuilt). Integer tensors
        are left alone. ``dtype`` must be a real floating dtype.
        """
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TapegradTypeError(f"{type(self).__name__}.astype: dtype must be a real floating "
                                    f"dtype (np.float32, np.float64), got {dt}")
        for t in self._tensors():
            if t.dtype.kind == "f" and t.dtype != dt:
                t.data = t.data.astype(dt)
            g = t.grad
            if g is not None:
                g = g.data if isinstance(g, Tensor) else np.asarray(g)
                if g.dtype != dt:
                    t.grad = g.astype(dt)
        return self

    def _tensors(self) -> Iterator[Tensor]:
        """Every leaf tensor held by this module and the modules below, each once."""
        for _, m in self.named_modules():
            for _, value in m._members(set()):
                if isinstance(value, Tensor) and value.is_leaf:
                    yield value

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """``{dotted name: copy of the parameter's data}``."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Any, strict: bool = True) -> None:
        """Copy values from ``state`` (a mapping name -> array) into the parameters.

        Shapes must match. With ``strict`` (the default) the keys must match exactly;
        otherwise missing and unexpected keys are ignored. Values are cast to each
        parameter's dtype. Nothing is changed when an error is raised. A path is read
        as a file written by :meth:`save`.
        """
        if isinstance(state, (str, os.PathLike)):
            self.load(state, strict=strict)
            return
        params = dict(self.named_parameters())
        keys = set(state.keys())
        missing = sorted(set(params) - keys)
        unexpected = sorted(keys - set(params))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(parts)
            )
        new = {}
        for name, p in params.items():
            if name not in keys:
                continue
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise StateDictError(
                    f"load_state_dict into {type(self).__name__}: {name!r} has shape "
                    f"{value.shape} in the state dict but {p.shape} in the module"
                )
            if value.dtype.kind not in "biuf":
                raise StateDictError(
                    f"load_state_dict: {name!r} holds dtype {value.dtype}, not numbers"
                )
            new[name] = value.astype(p.dtype, copy=True)
        for name, value in new.items():
            params[name].data = value

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` with ``np.savez`` (``.npz`` is appended by
        NumPy when missing)."""
        np.savez(path, **self.state_dict())

    def load(self, path: str | os.PathLike, strict: bool = True) -> None:
        """Load parameters saved by :meth:`save`; a file that is not a readable ``.npz``
        or does not match this module raises :class:`StateDictError`."""
        try:
            with open(path, "rb") as fh:  # ours to close, whatever np.load does
                f = np.load(fh, allow_pickle=False)
                if not isinstance(f, np.lib.npyio.NpzFile):
                    raise TapegradValueError(f"not an .npz archive but a single "
                                             f"{type(f).__name__} (.npy); save parameters with "
                                             "Module.save")
                with f:
                    state = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise StateDictError(f"cannot read parameters from {os.fspath(path)!r}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        self.load_state_dict(state, strict=strict)

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [(n, m) for n, m in self.named_modules() if n and "." not in n]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, m in children:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules (or callables) applied one after the other."""

    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def append(self, layer: Any) -> Sequential:
        self.layers.append(layer)
        return self

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self.layers):
            lines.append(f"  ({i}): " + repr(layer).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"
