"""The allow-list of types that :func:`fnn.io.load` rebuilds without a template (private).

A file names each attrs class or named tuple in its tree by a stable name. ``load(path)``
without ``like=`` rebuilds only the types listed here and raises a
:class:`~fnn.io.FormatError` for any other name: it never imports a name found in a file.
``load(path, like=template)`` takes the classes from the template instead, so any attrs
class or named tuple round-trips that way.

Adding a type is one line in ``_TYPES``: ``"fnn.<module>.<Name>": <the class>,``. The class
must be an attrs class whose fields are all ``__init__`` arguments (as :mod:`fnn.tree`
requires) or a named tuple; its static fields must hold JSON data, and any that should be
tuples need ``converter=tuple``, since JSON gives lists back. Never rename an entry: saved
files refer to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .. import nn, optim, random, train

_TYPES: dict[str, type] = {
    "fnn.nn.DenseParams": nn.DenseParams,
    "fnn.random.Key": random.Key,
    "fnn.optim.OptState": optim.OptState,
    "fnn.optim.EmptyState": optim.EmptyState,
    "fnn.optim.AdamState": optim.AdamState,
    "fnn.optim.TraceState": optim.TraceState,
    "fnn.optim.RmsState": optim.RmsState,
    "fnn.optim.AdagradState": optim.AdagradState,
    "fnn.train.TrainState": train.TrainState,
    "fnn.train.Metrics": train.Metrics,
    "fnn.train.EpochMetrics": train.EpochMetrics,
    "fnn.train.Best": train.Best,
}

TYPES: Mapping[str, type] = MappingProxyType(_TYPES)
"""Stable name -> class, for every type that ``load`` rebuilds without a template."""

_NAMES: dict[type, str] = {cls: name for name, cls in _TYPES.items()}


def type_name(cls: type) -> str:
    """The name a file records for ``cls``: its allow-list name, else ``module.qualname``."""
    return _NAMES.get(cls) or f"{cls.__module__}.{cls.__qualname__}"
