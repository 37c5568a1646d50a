"""The import rules .ci/check_imports.py enforces on the library hold, and the checker
finds a breach of each (a module reaching into another's private parts; the library
calling fnn.runtime)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / ".ci" / "check_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_library_keeps_its_import_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert checker().breaches(Path("fnn")) == []


def test_the_checker_finds_each_kind_of_breach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fnn"
    for sub in ("nn", "train"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from . import runtime as runtime\n")
    (package / "runtime.py").write_text("")
    (package / "nn" / "_layer.py").write_text("def _hidden() -> None: ...\n")
    (package / "nn" / "_dense.py").write_text("from ._layer import _hidden\n")
    (package / "train" / "_fit.py").write_text(
        "from ..nn._layer import _hidden\nfrom .. import runtime\n"
    )
    monkeypatch.chdir(tmp_path)
    found = sorted(line.split(": ", 1)[1] for line in checker().breaches(Path("fnn")))
    assert found == [
        "imports fnn.runtime (only the command may)",
        "imports the private module fnn.nn._layer",
        "imports the private name _hidden from fnn.nn._layer",
        "imports the private name _hidden from fnn.nn._layer",
    ]
    assert os.sep not in found[0]
