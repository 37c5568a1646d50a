"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FORMAT = README.parent / "fnn" / "io" / "FORMAT.md"


def python_blocks(page: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


def file_blocks() -> dict[str, str]:
    """The README's Python files for the command (a block whose first line is ``# NAME.py:
    ...``), by name: they register names for ``fnn train --import``, so they run in a
    process of their own rather than in the examples' namespace."""
    found = {}
    for block in python_blocks():
        named = re.match(r"# (\w+\.py):", block)
        if named:
            found[named.group(1)] = block
    return found


def namespace_blocks() -> list[str]:
    return [b for b in python_blocks() if b not in file_blocks().values()]


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 3


def test_readme_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in namespace_blocks():
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
    assert "6 ('lr',) [3, 3]\n" in out  # fnn.sweep and its summary
    assert not Path(namespace["directory"]).exists()  # the io example cleans up
    sequences = (
        "100 2 True\nTrue nan\n(2, 16)\n",  # a GPT learns, evaluates, predicts
        "outside the vocabulary of 18 ids [0, 18)",  # ids are checked
        "not checked: input: integer token ids have no gradient",
        "int64 (16,)",  # a model file records its input dtype
        "True\n0.0\n",  # padding changes no bit; IGNORE leaves a position out
        "a layer mixes positions but has no nn.Decoder",  # refused without a decoder
    )
    assert [words for words in sequences if words not in out] == []


def test_the_readmes_module_brings_its_dataset_and_recipe_to_the_command(tmp_path: Path) -> None:
    """mine.py, run as the README says: from its own directory, outside the repository."""
    (tmp_path / "mine.py").write_text(file_blocks()["mine.py"])
    train = (
        "fnn train --import mine.py --dataset stripes --model small --width 8 --out runs/stripes"
    )
    assert train in README.read_text()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def fnn_command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fnn", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "100"},
        )

    trained = fnn_command(*train.split()[1:], "--quiet", "--no-plots")
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "runs" / "stripes" / "run.json").read_text())["config"]
    assert (config["model"], config["width"], config["epochs"]) == ("small", 8, 3)
    evaluated = fnn_command("evaluate", "--import", "mine.py", "runs/stripes")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "striped" in evaluated.stdout
    helped = fnn_command("train", "--import", "mine.py", "--help")
    assert re.search(r"--width WIDTH\s+the hidden layer's size. \[--model small\]", helped.stdout)


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


GPT_RECIPE = {
    "--text tinyshakespeare": ("text", "tinyshakespeare"),
    "--layers 4": ("layers", 4),
    "--heads 4": ("heads", 4),
    "--features 128": ("features", 128),
    "--context 64": ("context", 64),
    "--dropout 0": ("dropout", 0.0),
    "--no-bias": ("bias", False),
    "--tied": ("tied", True),
    "--batch-size 12": ("batch_size", 12),
    "--steps 2000": ("steps", 2000),
    "--eval-every 500": ("eval_every", 500),
    "--optimizer adamw": ("optimizer", "adamw"),
    "--lr 1e-3": ("lr", 1e-3),
    "--b2 0.99": ("b2", 0.99),
    "--weight-decay 0.1": ("weight_decay", 0.1),
    "--weights-only": ("weights_only", True),
    "--schedule warmup-cosine": ("schedule", "warmup-cosine"),
    "--warmup 100": ("warmup", 100),
    "--min-lr 1e-4": ("min_lr", 1e-4),
    "--clip 1": ("clip", 1.0),
}
"""What the README says ``fnn train --model gpt`` brings: its text, by option name and value."""


def test_the_gpt_recipe_is_the_one_the_readme_describes() -> None:
    import fnn

    recipe = fnn.recipes.recipe("gpt")
    brought = {**{o.name: o.default for o in recipe.options}, **recipe.defaults}
    assert dict(GPT_RECIPE.values()) == brought  # every option, with its value
    text = " ".join(README.read_text().split())
    assert all(words in text for words in GPT_RECIPE)
    model = fnn.nn.gpt(vocab=65, context=64, layers=4, heads=4, features=128)
    assert fnn.tree.size(model.shapes((64,)).params) == 804_096
    assert "(804,096 parameters" in text
