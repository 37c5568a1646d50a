"""The registry of named datasets (private; see :mod:`fnn.data`).

A dataset is registered as layers are (:func:`fnn.nn.register`): a name, the function
that loads it, ``load(*, data_dir=None, download=True) -> Dataset``, and what is known of
it before it is read (:class:`DataInfo`: one example's shape and the class names), which
lets ``fnn train --dataset NAME`` build the model and check its size before reading
anything. MNIST and Fashion-MNIST register this way; so can a user's own dataset, and
``fnn train --import mymodule --dataset mine`` then trains on it without editing fnn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from .._registry import Registry, origin

F = TypeVar("F", bound=Callable[..., Any])


def _ints(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@attrs.frozen
class DataInfo:
    """What a model needs to know of a dataset: the shape of one example (batch axis
    excluded) and the name of each class (``len(classes)`` model outputs).

    >>> DataInfo((28, 28), tuple("0123456789")).num_classes
    10
    """

    in_shape: tuple[int, ...] = attrs.field(converter=_ints)
    classes: tuple[str, ...] = attrs.field(converter=_names)

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)


@attrs.frozen(eq=False)
class Source:
    """A registered dataset: its name, its loader ``load(*, data_dir=None, download=True)
    -> Dataset`` and, when known before loading, its :class:`DataInfo`."""

    name: str
    load: Callable[..., Any]
    info: DataInfo | None = None


_SOURCES: Registry[Source] = Registry("dataset", lambda s: origin(s.load))

DATASETS: Mapping[str, Source] = _SOURCES.view
"""Every registered dataset by name (a read-only live view)."""


def register(name: str, *, info: DataInfo | None = None) -> Callable[[F], F]:
    """Register a dataset loader under ``name`` (a decorator).

    Args:
        name: the dataset's name (``fnn train --dataset name``, ``load_dataset(name)``).
        info: its example shape and class names when known before loading it (the
            command then checks the model's size before reading the data).

    The loader is called as ``load(data_dir=None, download=True)`` (``data_dir`` a
    directory to look in first, ``download`` whether it may fetch missing files) and
    returns a :class:`Dataset`.

    Raises:
        ValueError: a bad name, or one taken by another loader.

    >>> import fnn, numpy as np
    >>> @fnn.data.register("two-points", info=fnn.data.DataInfo((2,), ("a", "b")))
    ... def two_points(data_dir=None, download=True):
    ...     x, y = np.eye(2, dtype=np.float32), np.arange(2)
    ...     return fnn.data.Dataset("two-points", x, y, x, y, ".", (), {}, 2, ("a", "b"))
    >>> fnn.data.load_dataset("two-points").x_train.shape
    (2, 2)
    """
    _SOURCES.check_name(name)

    def decorate(load: F) -> F:
        _SOURCES.add(name, Source(name, load, info))
        return load

    return decorate


def source(name: Any) -> Source:
    """The dataset registered as ``name`` (``"fashion_mnist"`` finds ``"fashion-mnist"``).

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: no such dataset (the message lists the registered ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a str, got {name!r}")
    found = DATASETS.get(name) or DATASETS.get(name.lower().replace("_", "-"))
    return found if found is not None else _SOURCES.get(name)
