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
from collections.abc import Callable, Mapping, Sequence
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


TRAINING: tuple[Option, ...] = (
    Option("dataset", str, "fashion-mnist", "a registered dataset (mnist, fashion-mnist, ...)"),
    Option("model", str, "mlp", "a registered model recipe (mlp, cnn, ...)"),
    Option("optimizer", str, "adam", "a registered optimizer (adam, adamw, sgd, ...)"),
    Option("lr", float, None, "the learning rate (default: the model recipe's)"),
    Option("schedule", str, "cosine", "constant, inverse-time, cosine, step or warmup-cosine"),
    Option("decay", float, 0.0, "inverse-time decay: lr / (1 + decay * step)"),
    Option("l2", float, 0.0, "an L2 penalty on the weights, (l2 / 2) * sum(w**2)"),
    Option("batch_size", int, None, "examples per update (default: the model recipe's)"),
    Option("epochs", int, None, "epochs in all (default: the model recipe's)"),
    Option("seed", int, 0, "the run's seed, in [0, 2**63)"),
    Option("validation_split", float, 0.1, "the fraction held out for validation"),
    Option("patience", int, 0, "stop after this many epochs without improvement (0: never)"),
    Option("augment", list, (), "flip and/or shift each training batch (none, flip,shift)"),
    Option("shards", int, 1, "split each batch into this many shards, summed in order"),
    Option("clip", float, 0.0, "clip the gradient's global norm to this (0: never)"),
    Option("warmup", int, 0, "warmup-cosine: the updates of the linear warm-up"),
    Option("min_lr", float, 0.0, "warmup-cosine: the rate the cosine ends at"),
    Option(
        "text",
        str,
        None,
        "train a language model on a text: a file or a known text (tinyshakespeare)",
    ),
    Option("steps", int, None, "a language model's updates in all (default: the recipe's)"),
    Option("eval_every", int, None, "a language model's updates between validations"),
    Option(
        "limit",
        int,
        None,
        "train on the first N training images only, in the dataset's order (not "
        "stratified; the validation split is taken from them; default all)",
    ),
    Option(
        "log_every",
        int,
        0,
        "record the mean training loss of every K updates in run.json's steps (0: never)",
    ),
)
"""``fnn train``'s own training options (:data:`fnn.cli.OPTIONS`; the recipes and
optimizers add theirs). Here, below the registries, so that a registration can refuse an
option or a default the command could not take."""

RUN_FLAGS = frozenset(
    {
        "help",
        "import",
        "data",
        "data_dir",
        "no_download",
        "out",
        "resume",
        "stop_after",
        "threads",
        "timeout",
        "allow_changed_conditions",
        "quiet",
        "no_plots",
    }
)
"""The names of ``fnn train``'s other flags (``--out``, ``--resume``, ..., and argparse's
``--help``), which say how and where a run goes, not what it is."""

RESERVED = frozenset({o.name for o in TRAINING}) | RUN_FLAGS
"""The names no recipe or optimizer option can take: ``fnn train`` has flags of these
names already (a bool option ``x`` also gives ``--no-x``)."""


def check_names(
    options: Sequence[Option],
    owner: str,
    same: Mapping[str, Sequence[Option]],
    other: Mapping[str, Sequence[Option]],
) -> None:
    """Refuse options ``fnn train`` could not take beside the registered ones.

    ``owner`` names the recipe or optimizer registering ``options`` (``"recipe 'mlp'"``);
    ``same`` holds the options of the registered owners of its kind, ``other`` those of
    the other kind (the optimizers for a recipe), each by owner in the same form. Refused:
    a name starting with ``_`` (argparse would read ``--_w`` as ``w``); a name whose flag
    ``fnn train`` has already (:data:`RESERVED`), or a bool whose ``--no-`` flag is one;
    a name of the other kind's options (a recipe's and an optimizer's option share the
    run's one ``config`` entry); a bool ``x`` where ``no_x`` is an option, or ``no_x``
    where ``x`` is a bool option (both would be ``--no-x``). Same-named options of owners
    of one kind are allowed: each run takes the chosen owner's. Re-registering ``owner``
    (a module imported again) is checked against the others only.

    Raises:
        ValueError: naming the option, what it clashes with and what to do.
    """
    everyone = {k: v for k, v in same.items() if k != owner} | dict(other) | {owner: options}
    bools = {o.name: k for k, opts in everyone.items() for o in opts if o.kind is bool}
    names = {o.name: k for k, opts in everyone.items() for o in opts}
    for option in options:
        if option.name.startswith("_"):
            raise ValueError(
                f"{owner}: the option {option.name!r} starts with '_'; an option's name "
                f"must start with a letter"
            )
        taken = [n for n in (option.name, f"no_{option.name}") if n in RESERVED]
        if taken and (taken[0] == option.name or option.kind is bool):
            flag = "--" + taken[0].replace("_", "-")
            raise ValueError(
                f"{owner}: the option {option.name!r} would be {flag}, a flag fnn train has "
                f"already; rename it (taken: {', '.join(sorted(RESERVED))})"
            )
        shared = [k for k, opts in other.items() for o in opts if o.name == option.name]
        if shared:
            raise ValueError(
                f"{owner}: the option {option.name!r} is an option of {', '.join(shared)} "
                f"too; a recipe's and an optimizer's options share a run's config, so "
                f"their names must differ: rename it"
            )
        base = option.name.removeprefix("no_")
        if option.name != base and base in bools:
            clash, flag = f"the bool option {base!r} of {bools[base]}", option.flag
        elif option.kind is bool and f"no_{option.name}" in names:
            clash = f"the option 'no_{option.name}' of {names['no_' + option.name]}"
            flag = "--no-" + option.flag.removeprefix("--")
        else:
            continue
        raise ValueError(
            f"{owner}: the option {option.name!r} and {clash} would both be {flag}; rename it"
        )


def options_after_first(function: Callable[..., Any], takes: str) -> tuple[Option, ...]:
    """The options of a registered constructor (:func:`options_of`): its parameters but
    the first, which ``takes`` describes (``"the dataset's DataInfo"``).

    Raises:
        TypeError: no parameters, or an option :func:`options_of` refuses.
    """
    names = list(inspect.signature(function).parameters)
    if not names:
        where = getattr(function, "__qualname__", repr(function))
        raise TypeError(f"{where} takes {takes} first, but has no parameters")
    return options_of(function, skip=names[:1])
