"""Options: the keyword parameters of a registered constructor, as the command exposes
them (private: what :mod:`fnn.recipes`, :mod:`fnn.optim`'s registry and :mod:`fnn.cli`
share).

A model recipe ``mlp(data, *, hidden=(128, 64), activation="relu")`` has the options
``hidden`` and ``activation``: their types, defaults and help come from the signature and
the docstring's ``Args:`` section, written once. ``fnn train --hidden 256,128`` parses a
value with :meth:`Option.parse`; ``run.json`` stores it with :meth:`Option.to_json` and
reads it back with :meth:`Option.from_json`. The range of a value is never checked here:
the constructor checks it (the library's own checks), and the command turns its
``ValueError`` into a usage error.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ._checks import MAX_INT

KINDS = (bool, int, float, str, tuple, list)
"""The kinds of value an option holds: ``tuple`` a tuple of ints (``--hidden 128,64``),
``list`` a tuple of names (``--augment flip,shift``; ``none`` for the empty one)."""


@attrs.frozen
class Option:
    """One option: its name (a parameter's, also its key in a run's ``config``), its kind
    (one of :data:`KINDS`), its default and a one-line help."""

    name: str
    kind: type
    default: Any
    help: str = ""

    @property
    def flag(self) -> str:
        """The command-line flag: ``--batch-size`` for ``batch_size``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """A value from its command-line text.

        Raises:
            ValueError: text that is not a value of this kind (the message says what is).
        """
        try:
            if self.kind is tuple:
                return tuple(int(part) for part in text.split(",") if part.strip())
            if self.kind is list:
                names = tuple(part.strip() for part in text.split(",") if part.strip())
                return () if names == ("none",) else names
            if self.kind is bool:
                return {"true": True, "false": False}[text.lower()]
            return self.kind(text)
        except (ValueError, KeyError):
            raise ValueError(f"{self.flag} expects {self.expects()}, got {text!r}") from None

    def expects(self) -> str:
        """What a value looks like, for messages."""
        return {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            str: "a name",
            tuple: "integers like 128,64",
            list: "names like a,b (or none)",
        }[self.kind]

    def from_json(self, value: Any, what: str) -> Any:
        """A value read from JSON (a run record), type-checked (``what`` names the file).

        Raises:
            ValueError: a value of another type.
        """
        ok = False
        if self.kind in (tuple, list):
            element = _is_int if self.kind is tuple else (lambda v: isinstance(v, str))
            ok = isinstance(value, list) and all(element(v) for v in value)
            value = tuple(value) if ok else value
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            try:
                value = float(value) if ok else value
            except OverflowError:
                ok = False
        elif self.kind is int:
            ok = _is_int(value) and abs(value) <= MAX_INT
        else:
            ok = isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool))
        if ok and self.kind is float and not math.isfinite(value):
            ok = False
        if not ok:
            raise ValueError(
                f"{what}: config entry {self.name!r} must be {self.expects()}, got {value!r}"
            )
        return value

    def to_json(self, value: Any) -> Any:
        """A value as JSON data."""
        return list(value) if isinstance(value, tuple) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(annotation: Any, where: str) -> type:
    """The option kind of a parameter's type annotation."""
    if annotation in (bool, int, float, str):
        found: type = annotation
        return found
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (int, ...):
        return tuple
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (str, ...):
        return list
    raise TypeError(
        f"{where}: an option must be annotated bool, int, float, str, tuple[int, ...] or "
        f"tuple[str, ...], got {annotation!r}"
    )


def _helps(doc: str | None) -> dict[str, str]:
    """``{name: its help}`` from a Google-style ``Args:`` section: each entry whole, its
    continuation lines (indented deeper than its name) joined into one line, and Sphinx
    roles shown as their text (``:func:`adam``` as ``adam``)."""
    found: dict[str, str] = {}
    section = re.search(r"\n\s*Args:\n(.*?)(\n\s*\n|\Z)", doc or "", re.S)
    name, indent = None, 0
    for line in (section.group(1) if section else "").splitlines():
        entry = re.match(r"(\s*)(\w+): (.*)", line)
        if entry and (name is None or len(entry.group(1)) <= indent):
            name, indent = entry.group(2), len(entry.group(1))
            found[name] = entry.group(3).strip()
        elif name is not None and line.strip():
            found[name] += " " + line.strip()
    return {k: re.sub(r":\w+:`~?([^`]+)`", r"\1", v) for k, v in found.items()}


def options_of(function: Callable[..., Any], skip: Sequence[str] = ()) -> tuple[Option, ...]:
    """The options of ``function``: its parameters with defaults (keyword or positional)
    but those in ``skip``, each with its annotated kind, its default and its help line.

    Raises:
        TypeError: a parameter whose annotation is not an option kind, or without a
            default.
    """
    where = getattr(function, "__qualname__", repr(function))
    hints = typing.get_type_hints(function)
    helps = _helps(inspect.getdoc(function))
    found = []
    for param in inspect.signature(function).parameters.values():
        if param.name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            raise TypeError(f"{where}: the option {param.name!r} needs a default")
        kind = _kind(hints.get(param.name), f"{where}({param.name})")
        found.append(Option(param.name, kind, param.default, helps.get(param.name, "")))
    return tuple(found)
