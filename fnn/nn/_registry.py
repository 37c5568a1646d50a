"""The one registry of layers: a name, the constructor that builds the layer from its
spec, and the record types of its params and state.

``@register("dense", types=(DenseParams,))`` on a layer constructor makes the layers it
returns carry a spec (``{"layer": "dense", "features": 128, "weight_init": "he_normal"}``,
the constructor's arguments) and the name ``"dense"``, lets :func:`from_spec` rebuild
them, and names their records (``"dense.DenseParams"``) so that :func:`fnn.io.load`
rebuilds them without a template, in any process that registers the layer, wherever its
code lives (``__main__`` included). Built-in layers and users' layers register the same
way; a spec or a file can only ever name registered layers, so reading one never imports
or runs anything else.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import attrs
import numpy as np

from .. import tree as _tree
from .._registry import Registry, origin
from ._init import describe
from ._layer import Layer

Args = ParamSpec("Args")
L = TypeVar("L", bound="Layer[Any, Any]")


@attrs.frozen(eq=False)
class Registered:
    """A registered layer: its name, its constructor (which sets ``spec``), the
    constructor's signature, the record types of its params and state, and whether
    :func:`activation` (and ``mlp``'s ``activation=``) may name it."""

    name: str
    make: Callable[..., Layer[Any, Any]]
    signature: inspect.Signature
    types: tuple[type, ...]
    activation: bool


_LAYERS: Registry[Registered] = Registry("layer", lambda entry: origin(entry.make))

LAYERS: Mapping[str, Registered] = _LAYERS.view
"""Every registered layer by name (a read-only live view)."""

_ALIASES = {"linear": "identity"}

_UNDESCRIBED = object()


def _spec_value(value: Any) -> Any:
    """A constructor argument as JSON data for a spec, or ``_UNDESCRIBED``."""
    if isinstance(value, Layer):
        return value.spec if value.spec is not None else _UNDESCRIBED
    if callable(value):  # an initializer fnn can name again, or a function of one's own
        name = describe(value)
        return _UNDESCRIBED if name is None else name
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else _UNDESCRIBED
    if isinstance(value, (list, tuple)):
        items = [_spec_value(v) for v in value]
        return _UNDESCRIBED if any(v is _UNDESCRIBED for v in items) else items
    return _UNDESCRIBED


def _spec(name: str, bound: inspect.BoundArguments) -> dict[str, Any] | None:
    spec: dict[str, Any] = {"layer": name}
    positional: list[Any] = []
    params = bound.signature.parameters
    for key, value in bound.arguments.items():
        described = _spec_value(value)
        if described is _UNDESCRIBED:
            return None  # a function or another object: rebuilt in code, not from a spec
        if params[key].kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(described)
        else:
            spec[key] = described
    if positional:
        spec["args"] = positional
    return spec


def register(
    name: str, *, types: Sequence[type] = (), activation: bool = False
) -> Callable[[Callable[Args, L]], Callable[Args, L]]:
    """Register a layer constructor under ``name`` (a decorator).

    The decorated constructor returns its layer with ``spec`` set to ``{"layer": name}``
    plus its arguments by name (defaults included; positional-only ones in a list under
    ``"args"``), when they are JSON data or described layers
    (a function argument, such as a custom initializer, leaves ``spec`` None). After that,
    :func:`from_spec` rebuilds the layer, and :func:`fnn.io.save_model`,
    :func:`fnn.io.load_model` and :func:`fnn.io.load` without a template work for models
    that use it.

    Args:
        name: the layer's name in specs and files; never rename a registered layer.
        types: the attrs classes (or named tuples) of the layer's params and state, which
            files may then name: each is registered (:func:`fnn.tree.register_type`) as
            ``"<name>.<ClassName>"`` unless it has a name already.
        activation: whether :func:`activation` (and so ``mlp(..., activation=name)`` and
            ``fnn train --activation``) may build it; it must take no arguments.

    Raises:
        ValueError: ``name`` is taken by another constructor or is not a str; a parameter
            is called ``layer`` (the spec's own key) or is a ``**kwargs``; a type's name
            belongs to another class.
        TypeError: an entry of ``types`` that is not an attrs class or a named tuple.

    A refused registration registers nothing (neither the name nor any of the types).

    >>> import fnn, numpy as np
    >>> @fnn.nn.register("twice", activation=True)
    ... def twice() -> fnn.nn.Layer[None, None]:
    ...     return fnn.nn.parameterless(lambda x: (2 * x, None), lambda r, dy: 2 * dy)
    >>> twice().spec, twice().name
    ({'layer': 'twice'}, 'twice')
    >>> fnn.nn.from_spec({"layer": "twice"}).apply(None, np.ones((1, 2), np.float32))
    array([[2., 2.]], dtype=float32)
    """
    _LAYERS.check_name(name)

    def decorate(make: Callable[Args, L]) -> Callable[Args, L]:
        signature = inspect.signature(make)
        for param in signature.parameters.values():
            keyword = param.kind is not inspect.Parameter.POSITIONAL_ONLY
            if (keyword and param.name in ("layer", "args")) or param.kind is param.VAR_KEYWORD:
                raise ValueError(
                    f"{name}: a registered constructor cannot take {param} (a spec keeps the "
                    "name under 'layer', positional-only arguments under 'args', and holds "
                    "no **kwargs)"
                )

        @functools.wraps(make)
        def build(*args: Args.args, **kwargs: Args.kwargs) -> L:
            layer = make(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return attrs.evolve(layer, spec=_spec(name, bound), name=layer.name or name)

        named = _type_names(name, types)  # checked before anything is registered
        _LAYERS.add(name, Registered(name, build, signature, tuple(types), activation))
        for cls, type_name in named:
            _tree.register_type(cls, type_name)
        return build

    return decorate


def _type_names(name: str, types: Sequence[type]) -> list[tuple[type, str]]:
    """The record types of the layer ``name`` that have no name yet, each with the name
    :func:`register` gives it (``"<name>.<ClassName>"``), all checked first so that a bad
    one leaves nothing registered.

    Raises:
        TypeError: an entry that is not an attrs class or a named tuple, or a class with a
            field a tree cannot hold.
        ValueError: a name that belongs to another class.
    """
    found = []
    for cls in types:
        record = isinstance(cls, type) and attrs.has(cls)
        if not (
            record or (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"))
        ):
            raise TypeError(
                f"{name}: types must be attrs classes or named tuples (the layer's params "
                f"and state), got {cls!r}"
            )
        if record:
            _tree.record_fields(cls)
        if _tree.registered_name(cls) is None:
            type_name = f"{name}.{cls.__qualname__}"
            known = _tree.TYPES.get(type_name)
            if known is not None and known is not cls:
                raise ValueError(f"{name}: the type name {type_name!r} belongs to {known!r}")
            found.append((cls, type_name))
    return found


def _layers_in(value: Any) -> Any:
    """A spec value with every nested layer spec (a dict with a ``"layer"`` entry) built."""
    if isinstance(value, Mapping) and "layer" in value:
        return from_spec(value)
    if isinstance(value, list):
        return [_layers_in(v) for v in value]
    return value


def from_spec(spec: Any) -> Layer[Any, Any]:
    """Rebuild a layer from its ``spec`` (as ``layer.spec`` gives it, e.g. read from JSON).

    Only registered layer names are accepted (see :func:`register`), each only with its
    constructor's own arguments: a spec can never name code to import or run.

    Args:
        spec: a mapping ``{"layer": name, **arguments}``, nested layers as their specs.

    Returns:
        A new layer, built by the registered constructor (so its ``spec`` equals
        ``spec`` with the constructor's defaults filled in).

    Raises:
        ValueError: an unknown layer name, an unknown or missing key, or a bad value.
        TypeError: the spec is not a mapping, or a value has the wrong type.

    >>> import fnn
    >>> fnn.nn.from_spec({"layer": "dense", "features": 3}).spec
    {'layer': 'dense', 'features': 3, 'weight_init': 'he_normal', 'bias': True}
    >>> model = fnn.nn.mlp((4, 2))
    >>> fnn.nn.from_spec(model.spec).spec == model.spec
    True
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a layer spec must be a mapping, got {type(spec).__name__}")
    name = spec.get("layer")
    if name not in _LAYERS:
        raise ValueError(f"in a spec: {_LAYERS.unknown(name)}")
    entry = _LAYERS.get(name)
    params = entry.signature.parameters
    keyword = {k for k, p in params.items() if p.kind is not p.POSITIONAL_ONLY}
    only = [p for p in params.values() if p.kind is p.POSITIONAL_ONLY]
    extra = sorted(set(spec) - keyword - {"layer"} - ({"args"} if only else set()))
    if extra:
        raise ValueError(f"unexpected keys {extra} in the spec of {name!r}")
    args = _layers_in(spec.get("args", []))
    needed = sum(p.default is p.empty for p in only)
    if not isinstance(args, list) or not needed <= len(args) <= len(only):
        raise ValueError(
            f"the spec of {name!r} needs 'args', a list of {needed} to {len(only)} values, "
            f"got {args!r}"
        )
    kwargs: dict[str, Any] = {}
    for key in keyword:
        param = params[key]
        if key not in spec:
            if param.default is param.empty and param.kind is not param.VAR_POSITIONAL:
                raise ValueError(f"the spec of {name!r} misses the key {key!r}")
            continue
        value = _layers_in(spec[key])
        if param.kind is param.VAR_POSITIONAL:
            if not isinstance(value, list):
                raise ValueError(
                    f"the spec of {name!r} needs a list for {key!r}, got {type(value).__name__}"
                )
            args = [*args, *value]
        else:
            kwargs[key] = value
    return entry.make(*args, **kwargs)


def activation(name: str) -> Layer[None, None]:
    """The activation layer called ``name`` (``"linear"`` is ``identity``): a registered
    layer marked ``activation=True``.

    Args:
        name: ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``, ``"gelu"``,
            ``"silu"``, ``"elu"``, ``"softmax"``, ``"log_softmax"``, ``"identity"``
            (``"linear"``), or one registered with ``activation=True``.

    Returns:
        A new ``Layer[None, None]``, built with the constructor's default arguments.

    Raises:
        ValueError: no such activation (the message lists them).

    >>> import fnn, numpy as np
    >>> fnn.nn.activation("tanh").spec, fnn.nn.activation("linear").name
    ({'layer': 'tanh'}, 'identity')
    >>> fnn.nn.activation("relu").apply(None, np.array([[-1.0, 1.0]], np.float32))
    array([[0., 1.]], dtype=float32)
    """
    entry = _LAYERS.view.get(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if entry is None or not entry.activation:
        names = [n for n, e in _LAYERS.view.items() if e.activation] + [*_ALIASES]
        known = ", ".join(sorted(names))
        raise ValueError(f"unknown activation {name!r}; expected one of: {known}")
    layer: Layer[None, None] = entry.make()
    return layer
