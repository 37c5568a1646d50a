"""The public API: every public module declares ``__all__``, which lists exactly its
public names, each with a docstring of its own.

A module's public names are what it re-exports explicitly (``from ._dense import dense
as dense``, STYLE.md habit 4) and what it defines for its users. Everything else a
public module binds under a name without a leading underscore is either another public
module's name used here (``fnn.nn.Layer`` in ``fnn.gradient``), something from outside
fnn (``numpy``, ``Path``), or listed in :data:`INTERNAL` with the reason it is kept out.
Type aliases and constants carry their docstring as the string after their assignment,
found here in the source of the module that assigns them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import itertools
import types
from functools import cache
from typing import Any, TypeVar, get_origin

import pytest

PUBLIC_MODULES = (
    "fnn",
    "fnn.callbacks",
    "fnn.cli",
    "fnn.data",
    "fnn.experiments",
    "fnn.gradient",
    "fnn.inference",
    "fnn.io",
    "fnn.losses",
    "fnn.metrics",
    "fnn.nn",
    "fnn.optim",
    "fnn.parallel",
    "fnn.plots",
    "fnn.random",
    "fnn.recipes",
    "fnn.runtime",
    "fnn.train",
    "fnn.tree",
)

INTERNAL = {
    "fnn.gradient": {
        "FlatLossAndGrad": "the flat interface fnn.train and fnn.parallel share",
        "FlatPipeline": "the flat interface fnn.train and fnn.parallel share",
        "flat_forward_backward": "the flat interface fnn.train and fnn.parallel share",
        "finish_gradient": "the flat interface fnn.train and fnn.parallel share",
        "check_call": "the argument check value_and_grad and check_model share",
    },
    "fnn.inference": {
        "evaluate_checked": "evaluate without its checks, for fit's validation",
        # fnn._supervised's helpers, imported for use under their own names
        "as_dtype": "a helper of fnn._supervised",
        "check_inputs": "a helper of fnn._supervised",
        "check_accuracy": "a helper of fnn._supervised",
        "check_data": "a helper of fnn._supervised",
        "chunks": "a helper of fnn._supervised",
        "count_correct": "a helper of fnn._supervised",
        "scores": "a helper of fnn._supervised",
    },
    "fnn.metrics": {
        "as_labels": "the label conversion accuracy and confusion_matrix share",
    },
    "fnn.recipes": {
        "check_defaults": "the check of a recipe's defaults fnn train's configuration runs",
    },
    "fnn.plots": {
        "write_bytes_atomic": "fnn._atomic's writer, imported for use",
    },
}
"""Per public module, the names without a leading underscore it binds that are not its
public API, and why."""

UNDOCUMENTED = {
    ("fnn.data", "MNIST"): "in fnn/data/_datasets.py, being rewritten (registries)",
    ("fnn.data", "FASHION_MNIST"): "in fnn/data/_datasets.py, being rewritten (registries)",
}
"""Constants in ``__all__`` without a docstring string after their assignment, and why
they are accepted for now."""


def module(name: str) -> types.ModuleType:
    return importlib.import_module(name)


def listed(name: str) -> list[str]:
    found: list[str] = getattr(module(name), "__all__", [])
    return found


ALL_NAMES = [(m, n) for m in PUBLIC_MODULES for n in listed(m)]


@cache
def source_tree(name: str) -> ast.Module:
    return ast.parse(inspect.getsource(module(name)))


def is_class(obj: Any) -> bool:
    """A class, not a generic alias such as ``Callable[[Event], None]`` (which Python 3.10
    calls a class)."""
    return inspect.isclass(obj) and get_origin(obj) is None


def is_routine(obj: Any) -> bool:
    """A function, or a function wrapped by a decorator (``functools.cache``)."""
    return inspect.isroutine(obj) or (callable(obj) and inspect.isroutine(inspect.unwrap(obj)))


def reexported(name: str) -> dict[str, tuple[str, str]]:
    """The names ``name``'s source re-exports explicitly (``from X import a as a``,
    ``from . import m as m``): each with the absolute module it comes from and its name
    there."""
    found = {}
    for node in source_tree(name).body:
        if isinstance(node, ast.ImportFrom):
            package = name if hasattr(module(name), "__path__") else name.rpartition(".")[0]
            origin = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                if alias.asname == alias.name:
                    found[alias.name] = (origin, alias.name)
    return found


def assigned(node: ast.stmt) -> list[str]:
    """The names a module-level statement assigns (``X = ...``, ``X: T = ...``)."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    else:
        return []
    return [t.id for t in targets if isinstance(t, ast.Name)]


def assigned_docstring(name: str, attribute: str) -> str | None:
    """The string after ``attribute``'s assignment in module ``name``, following explicit
    re-exports to the module that assigns it; None when there is none."""
    body = source_tree(name).body
    for node, following in itertools.pairwise(body):
        if attribute in assigned(node):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                text = following.value.value
                return text if isinstance(text, str) and text.strip() else None
            return None
    origin = reexported(name).get(attribute)
    if origin is not None and origin[0] != name:
        return assigned_docstring(*origin)
    return None


def public_api() -> dict[int, str]:
    """Every object some public module lists in ``__all__``, by id, with where."""
    return {id(getattr(module(m), n)): f"{m}.{n}" for m, n in ALL_NAMES}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_a_public_module_has_a_docstring_and_declares_all(name: str) -> None:
    mod = module(name)
    assert (mod.__doc__ or "").strip(), f"{name} has no docstring"
    assert hasattr(mod, "__all__"), f"{name} has no __all__"
    names = listed(name)
    assert len(names) == len(set(names)), f"{name}.__all__ lists a name twice"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_holds_no_private_name_and_nothing_missing(name: str) -> None:
    mod = module(name)
    private = [n for n in listed(name) if n.startswith("_")]
    assert not private, f"{name}.__all__ lists private names {private}"
    missing = [n for n in listed(name) if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ lists names the module does not have: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_explicit_reexport_is_in_all(name: str) -> None:
    """``from ._x import a as a`` says "public": ``a`` is then in ``__all__``."""
    missing = sorted(n for n in reexported(name) if not n.startswith("_"))
    missing = [n for n in missing if n not in listed(name)]
    assert not missing, f"{name} re-exports {missing} but its __all__ does not list them"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_other_public_looking_name_is_accounted_for(name: str) -> None:
    """A function, class or alias of fnn's that a public module binds under a public name
    is in its ``__all__``, in another public module's, or in INTERNAL (with the reason):
    a helper imported from a private module (``fnn.plots.write_bytes_atomic``) or defined
    for another fnn module is never public by accident."""
    mod, api = module(name), public_api()
    defined = {n for node in source_tree(name).body for n in assigned(node)}
    unlisted = []
    for attribute, obj in vars(mod).items():
        if (
            attribute.startswith("_")
            or attribute in listed(name)
            or attribute in INTERNAL.get(name, {})
            or id(obj) in api
            or isinstance(obj, (TypeVar, types.ModuleType))
        ):
            continue
        ours = is_class(obj) or is_routine(obj)
        if (ours and getattr(obj, "__module__", "").startswith("fnn")) or attribute in defined:
            unlisted.append(attribute)
    assert not unlisted, (
        f"{name} binds {sorted(unlisted)}: list them in its __all__ if they are public, "
        "else in INTERNAL here with the reason"
    )


def test_internal_names_exist_and_stay_out_of_all() -> None:
    for name, kept in INTERNAL.items():
        for attribute in kept:
            assert hasattr(module(name), attribute), f"{name}.{attribute} is gone"
            assert attribute not in listed(name), f"{name}.{attribute} is in __all__"


@pytest.mark.parametrize(("name", "attribute"), ALL_NAMES, ids=[f"{m}.{n}" for m, n in ALL_NAMES])
def test_every_listed_name_has_a_docstring_of_its_own(name: str, attribute: str) -> None:
    obj = getattr(module(name), attribute)
    if isinstance(obj, types.ModuleType) or is_routine(obj):
        doc = obj.__doc__
    elif is_class(obj):
        doc = vars(obj).get("__doc__")  # its own, not one inherited
    elif (name, attribute) in UNDOCUMENTED:
        return
    else:  # a type alias or a constant: the string after its assignment
        doc = assigned_docstring(name, attribute)
    assert isinstance(doc, str) and doc.strip(), f"{name}.{attribute} has no docstring"


def test_undocumented_constants_are_still_listed_and_undocumented() -> None:
    """The exceptions above expire: once documented, a constant leaves the list."""
    for name, attribute in UNDOCUMENTED:
        assert attribute in listed(name)
        assert assigned_docstring(name, attribute) is None, f"drop {name}.{attribute}"
