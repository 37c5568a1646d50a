"""Rebuilding layers from their JSON-able specs, by name, from an allow-list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._activations import ACTIVATIONS, flatten, leaky_relu
from ._dense import dense
from ._layer import Layer
from ._serial import serial


def _dense(spec: Mapping[str, Any]) -> Layer[Any]:
    return dense(spec["features"], weight_init=spec.get("weight_init", "he_normal"))


def _serial(spec: Mapping[str, Any]) -> Layer[Any]:
    layers = spec["layers"]
    if not isinstance(layers, list):
        raise ValueError(f"serial spec needs a list of layers, got {type(layers).__name__}")
    return serial(*(from_spec(s) for s in layers))


_BUILDERS: dict[str, tuple[Callable[[Mapping[str, Any]], Layer[Any]], frozenset[str]]] = {
    "dense": (_dense, frozenset({"features", "weight_init"})),
    "serial": (_serial, frozenset({"layers"})),
    "flatten": (lambda spec: flatten(), frozenset()),
    "leaky_relu": (
        lambda spec: leaky_relu(spec.get("negative_slope", 0.01)),
        frozenset({"negative_slope"}),
    ),
}


def _no_config(make: Callable[[], Layer[Any]]) -> Callable[[Mapping[str, Any]], Layer[Any]]:
    return lambda spec: make()


for _name, _make in ACTIVATIONS.items():
    _BUILDERS.setdefault(_name, (_no_config(_make), frozenset()))


def from_spec(spec: Any) -> Layer[Any]:
    """Rebuild a layer from its ``spec`` (as ``layer.spec`` gives it, e.g. read from JSON).

    Only fnn's own layer names are accepted, and each only with its own keys: a spec
    can never name code to import or run.

    Raises:
        ValueError: an unknown layer name or key, or a bad value.
        TypeError: the spec is not a mapping, or a value has the wrong type.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a layer spec must be a mapping, got {type(spec).__name__}")
    name = spec.get("layer")
    if not isinstance(name, str) or name not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise ValueError(f"unknown layer {name!r} in spec; expected one of: {known}")
    build, allowed = _BUILDERS[name]
    extra = set(spec) - allowed - {"layer"}
    if extra:
        raise ValueError(f"unexpected keys {sorted(extra)} in the spec of {name!r}")
    try:
        return build(spec)
    except KeyError as e:
        raise ValueError(f"the spec of {name!r} misses the key {e.args[0]!r}") from None
