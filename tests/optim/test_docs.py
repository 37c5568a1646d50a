"""The docstrings of ``fnn.optim`` are contracts: every public name has one, and every
optimizer, transform and schedule states its arguments, what it returns and raises,
shows a runnable example (run by ``--doctest-modules``), and cites its paper."""

from __future__ import annotations

import ast
import doctest
import inspect
import re
import sys
import types
from typing import Any, get_origin

import attrs
import pytest

from fnn import optim

SECTION = re.compile(r"^(Args|Attributes|Returns|Raises|References):[ \t]*$", re.MULTILINE)

RULE_MODULES = ("fnn.optim._alias", "fnn.optim._transforms", "fnn.optim._schedules")
"""The modules of the named optimizers, the gradient transforms and the schedules."""

REFERENCED = {
    # the named optimizers
    "sgd",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    # the transforms and schedules that come from a paper
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_adagrad",
    "trace",
    "add_decayed_weights",
    "add_l2",
    "clip",
    "clip_by_global_norm",
    "cosine_decay",
    "linear_warmup",
}
"""The callables whose docstring must have a ``References:`` section."""


def public(name: str) -> Any:
    return getattr(optim, name)


def is_class(obj: Any) -> bool:
    """A class, not a generic alias such as ``Schedule`` (which Python 3.10 calls a class)."""
    return inspect.isclass(obj) and get_origin(obj) is None


FUNCTIONS_AND_CLASSES = [
    n for n in optim.__all__ if inspect.isfunction(public(n)) or is_class(public(n))
]
RULES = [
    n
    for n in optim.__all__
    if inspect.isfunction(public(n)) and public(n).__module__ in RULE_MODULES
]
STATES = [
    n
    for n in optim.__all__
    if attrs.has(public(n)) and public(n).__module__ == "fnn.optim._transforms"
]


def sections(doc: str) -> dict[str, str]:
    """A Google-style docstring's sections (``Args``, ``Returns``, ...) by name, each
    the text up to the next section header."""
    text = inspect.cleandoc(doc)
    found = list(SECTION.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)]
    return {m.group(1): text[m.end() : end] for m, end in zip(found, ends)}


def examples(obj: Any, name: str) -> list[doctest.Example]:
    """The doctest examples of ``obj``'s own docstring, as ``--doctest-modules`` finds them."""
    finder = doctest.DocTestFinder(recurse=False)
    return [e for t in finder.find(obj, name, globs={}) for e in t.examples]


def test_all_lists_exactly_the_public_names() -> None:
    exported = {
        n
        for n, v in vars(optim).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert len(optim.__all__) == len(set(optim.__all__)), "a name is listed twice"
    assert set(optim.__all__) == exported


def test_the_lists_of_this_file_cover_what_they_claim() -> None:
    assert {public(n).__module__ for n in RULES} == set(RULE_MODULES)
    assert set(RULES) >= REFERENCED, sorted(REFERENCED - set(RULES))
    assert {"AdamState", "TraceState", "RmsState", "AdagradState"} <= set(STATES)


@pytest.mark.parametrize("name", FUNCTIONS_AND_CLASSES)
def test_every_public_function_and_class_has_a_docstring(name: str) -> None:
    doc = public(name).__doc__  # its own, not one inherited
    assert doc and doc.strip(), f"fnn.optim.{name} has no docstring"


@pytest.mark.parametrize("name", RULES)
def test_a_rule_states_its_args_returns_raises_and_an_example(name: str) -> None:
    obj = public(name)
    parts = sections(obj.__doc__ or "")
    params = list(inspect.signature(obj).parameters)
    if params:
        assert "Args" in parts, f"{name} takes {params} but has no Args: section"
        for p in params:
            assert re.search(rf"^\s+{p}:", parts["Args"], re.MULTILINE), (
                f"{name}'s Args: does not describe {p}"
            )
        assert "Raises" in parts, f"{name} checks its arguments but has no Raises: section"
    assert "Returns" in parts, f"{name} has no Returns: section"
    assert examples(obj, name), f"{name} has no example (>>>)"


@pytest.mark.parametrize("name", sorted(REFERENCED))
def test_named_optimizers_and_paper_transforms_cite_their_papers(name: str) -> None:
    parts = sections(public(name).__doc__ or "")
    assert parts.get("References", "").strip(), f"{name} has no References: section"


@pytest.mark.parametrize("name", STATES)
def test_a_state_record_describes_each_field_and_shows_one(name: str) -> None:
    cls = public(name)
    parts = sections(cls.__doc__ or "")
    assert "Attributes" in parts, f"{name} has no Attributes: section"
    for field in attrs.fields(cls):
        assert re.search(rf"^\s+{field.name}:", parts["Attributes"], re.MULTILINE), (
            f"{name}'s Attributes: does not describe {field.name}"
        )
    assert examples(cls, name), f"{name} has no example (>>>)"


def test_the_schedule_type_has_its_docstring() -> None:
    """``Schedule`` is a type alias: its docstring is the string after its assignment."""
    module = sys.modules[optim.cosine_decay.__module__]
    body = ast.parse(inspect.getsource(module)).body
    at = next(
        i
        for i, node in enumerate(body)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "Schedule" for t in node.targets)
    )
    following = body[at + 1]
    assert isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
    assert isinstance(following.value.value, str) and "step" in following.value.value
