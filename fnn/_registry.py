"""Named registries: the one way fnn (and its users) make a thing findable by name.

Layers (:func:`fnn.nn.register`), weight initializers (:func:`fnn.nn.register_initializer`),
optimizers (:func:`fnn.optim.register`), datasets (:func:`fnn.data.register`) and the
``fnn train`` command's model recipes (:func:`fnn.recipes.register`) are each a
:class:`Registry`: names are checked once, a name cannot be taken twice by different
code, lookups of unknown names list the known ones, and readers get a read-only view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

T = TypeVar("T")

IMPORT_HINT = "fnn COMMAND --import MODULE"
"""How the message of an unknown name says to import a user's module in the ``fnn``
command: ``--import`` comes after the command's name (``fnn train --import mine``);
the command puts its own name in place of ``COMMAND`` when it prints the message."""


def origin(thing: object) -> str:
    """Where ``thing`` was defined (``module.QualName``), to tell two definitions apart."""
    module = getattr(thing, "__module__", None) or type(thing).__module__
    name = getattr(thing, "__qualname__", None) or type(thing).__qualname__
    return f"{module}.{name}"


class Registry(Generic[T]):
    """Things of one kind by name.

    ``kind`` names the kind in messages (``"layer"``, ``"weight initializer"``).
    Registering a name again is allowed only for the same definition (a module imported
    twice, or reloaded): a different definition under a taken name raises, so no import
    can silently replace what another registered.

    >>> colors = Registry[int]("color")
    >>> colors.add("red", 1)
    1
    >>> colors.get("red")
    1
    >>> colors.get("blue")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown color 'blue'; expected one of: red (one registered by your own ...
    """

    def __init__(self, kind: str, identify: Callable[[T], str] = origin) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._identify = identify
        self.view: Mapping[str, T] = MappingProxyType(self._items)
        """A read-only live view of the registry, by name."""

    def check_name(self, name: object) -> str:
        """``name`` if it can name something here: a str of 1 to 100 characters.

        Raises:
            ValueError: anything else.
        """
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ValueError(
                f"a {self.kind} name must be a str of 1 to 100 characters, got {name!r}"
            )
        return name

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` and return it.

        Raises:
            ValueError: a bad name, or the name is taken by another definition.
        """
        self.check_name(name)
        known = self._items.get(name)
        if known is not None and self._identify(known) != self._identify(item):
            raise ValueError(
                f"the {self.kind} name {name!r} is already registered for {self._identify(known)}"
            )
        self._items[name] = item
        return item

    def get(self, name: object) -> T:
        """The thing registered as ``name``.

        Raises:
            ValueError: no such name (the message lists the known names).
        """
        found = self._items.get(name) if isinstance(name, str) else None
        if found is None:
            raise ValueError(self.unknown(name))
        return found

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered: the known names, and how one
        registered by a user's own code becomes known (:data:`IMPORT_HINT`)."""
        return (
            f"unknown {self.kind} {name!r}; expected one of: {self.known()} (one registered "
            f"by your own code is known once its module is imported: {IMPORT_HINT})"
        )

    def known(self) -> str:
        """The registered names, sorted and comma-separated (for messages)."""
        return ", ".join(sorted(self._items))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
