"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FORMAT = README.parent / "fnn" / "io" / "FORMAT.md"


def python_blocks(page: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 3


def test_readme_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "at [1].w: the model needs float32 (700, 128), got float32 (784, 128)" in out
    assert "max relative error" in out
    assert "3 3e-05" in out
    assert "10 True" in out
    assert "['params'][1].w: expected float64 (784, 128), got float32 (784, 128)" in out
    assert "{'epoch': 3, 'loss': 0.25}" in out
    assert out.count("True\n") >= 3  # the layer written in the README checks and rebuilds
    assert "LionState 1" in out
    assert not Path(namespace["directory"]).exists()  # the io example cleans up


def test_the_format_pages_example_reads_a_file_with_numpy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fnn

    path = tmp_path / "params.npz"
    params = fnn.nn.mlp((128, 10)).init(fnn.random.key(0), (28, 28))
    fnn.io.save(path, {"params": params, "step": 100})
    (block,) = python_blocks(FORMAT)
    exec(compile(block, str(FORMAT), "exec"), {"path": path})
    assert capsys.readouterr().out == "fnn 1 dense.DenseParams float32 (784, 128)\n"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:5]
    assert any("bash ./.ci/main-job" in line for line in head)
    assert any("bash ./.ci/test" in line for line in head)
    run = (README.parent / ".ci" / "run").read_text()
    assert "exec bash ./.ci/test" in run
