"""The docstring examples of fnn.data run and give what they show."""

from __future__ import annotations

import doctest
import types

import pytest

from fnn.data import _batches, _idx, _prep


@pytest.mark.parametrize("module", [_idx, _prep, _batches], ids=lambda m: m.__name__)
def test_docstring_examples(module: types.ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
