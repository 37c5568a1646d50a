"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import fnn
from tests.support.mypy_cache import cache_args

README = Path(__file__).resolve().parent.parent / "README.md"
FORMAT = README.parent / "fnn" / "io" / "FORMAT.md"


def located_blocks(page: Path = README) -> list[tuple[int, str]]:
    """The page's Python blocks, each with the line number of its first line."""
    text = page.read_text()
    return [
        (text.count("\n", 0, found.start(1)) + 1, found.group(1))
        for found in re.finditer(r"```python\n(.*?)```", text, flags=re.DOTALL)
    ]


def python_blocks(page: Path = README) -> list[str]:
    return [block for _, block in located_blocks(page)]


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


PYTORCHS = {"nn.LSTM", "nn.GRU", "nn.Module"}
"""Names the README writes that are PyTorch's (``torch.nn``), not fnn's."""


def test_every_name_the_readme_gives_fnn_exists() -> None:
    """``fnn.x.y``, ``nn.x``, ``optim.x`` and ``losses.x`` in the README's text and code
    name attributes (or submodules) that are there: a name the README gives for fnn's
    and fnn does not export (``nn.table_gradient`` was one) fails."""
    roots = {"fnn": fnn, "nn": fnn.nn, "optim": fnn.optim, "losses": fnn.losses}
    written = re.findall(
        r"(?<![\w.])((?:fnn|nn|optim|losses)(?:\.[A-Za-z_]\w*)+)", README.read_text()
    )
    missing = []
    for name in sorted(set(written) - PYTORCHS):
        first, *rest = name.split(".")
        if rest[-1] in ("py", "md"):
            continue  # a file's name, as fnn/losses.py
        found: Any = roots[first]
        for part in rest:
            if not hasattr(found, part):
                try:
                    found = importlib.import_module(f"{found.__name__}.{part}")
                except ImportError:
                    missing.append(name)
                    break
            else:
                found = getattr(found, part)
    assert missing == []
    assert len(written) > 100  # the README's names were found


SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def scope_reads(scope: ast.AST) -> set[str]:
    """The names a function, class, lambda or comprehension (decorators and defaults
    included) reads from outside: those it loads and binds nowhere within."""
    loads: set[str] = set()
    local: set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else local).add(node.id)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, ast.alias):
            local.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node is not scope:
                local.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            local.add(node.name)
    return loads - local


class ModuleNames(ast.NodeVisitor):
    """A block's module-level names in the order the block runs: ``reads``, those it reads
    before binding them (they come from earlier blocks), and ``bound``, those it binds,
    each with the import that binds it ("" for any other binding)."""

    def __init__(self, block: str) -> None:
        self.reads: list[str] = []
        self.bound: dict[str, str] = {}
        self.visit(ast.parse(block))

    def read(self, name: str) -> None:
        if name not in self.bound and name not in self.reads:
            self.reads.append(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(node.id)
        else:
            self.bound[node.id] = ""

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.read(node.target.id)
        self.visit(node.value)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For) -> None:
        for part in (node.iter, node.target, *node.body, *node.orelse):
            self.visit(part)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        for statement in node.body:
            self.visit(statement)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bound[node.name] = ""
        for statement in node.body:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.bound[alias.asname or alias.name.split(".")[0]] = ast.unparse(ast.Import([alias]))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            statement = ast.ImportFrom(node.module, [alias], node.level)
            self.bound[alias.asname or alias.name] = ast.unparse(statement)

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, SCOPES):
            for name in sorted(scope_reads(node)):
                self.read(name)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bound[node.name] = ""
        else:
            super().generic_visit(node)


def block_modules(blocks: Sequence[tuple[int, str]]) -> list[tuple[str, int, str]]:
    """Blocks run in order in one namespace, as modules for mypy: ``(file name, README
    line of the module's second line, source)``. Module ``readme_NN.py`` is block ``NN``
    after a first line that imports the names the block reads before binding them, each
    from the latest earlier block that binds it (``from readme_03 import params as
    params``, or the import statement that bound it there), so the block sees each name
    with the type it has when the block runs."""
    modules: list[tuple[str, int, str]] = []
    earlier: list[ModuleNames] = []
    for number, (line, block) in enumerate(blocks):
        names = ModuleNames(block)
        header = []
        for name in names.reads:
            source = next((i for i in reversed(range(number)) if name in earlier[i].bound), None)
            if source is not None:
                binding = earlier[source].bound[name]
                header.append(binding or f"from readme_{source:02d} import {name} as {name}")
        earlier.append(names)
        modules.append((f"readme_{number:02d}.py", line, "; ".join(header) + "\n" + block))
    return modules


def mypy_strict(modules: Sequence[tuple[str, int, str]], directory: Path) -> tuple[str, str]:
    """``mypy --strict`` (the repository's configuration) on the modules written into
    ``directory``, run from the repository's root so that it checks this clone's fnn:
    its report with each error's place turned into the README's line, and its log."""
    for name, _, source in modules:
        (directory / name).write_text(source)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--show-error-codes", "--verbose"]
        + cache_args()
        + [str(directory / name) for name, _, _ in modules],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    first_lines = {name: line for name, line, _ in modules}

    def place(found: re.Match[str]) -> str:  # another file's place (fnn's) as it is
        if found[1] not in first_lines:
            return found[0]
        return f"README.md:{first_lines[found[1]] + int(found[2]) - 2}:"

    where = re.compile(r"^\S*?([\w.]+\.py):(\d+):", flags=re.MULTILINE)
    return where.sub(place, run.stdout), run.stderr


def test_readme_examples_type_check(tmp_path: Path) -> None:
    """Every Python block of the README passes ``mypy --strict``, checked as it runs.

    The blocks run in order in one namespace (``test_readme_examples_run``), as in a
    notebook: a block uses what earlier blocks defined and may define a name anew, with
    another type, as a later section's example does. So each block is a module of its
    own that imports, from earlier blocks' modules, the names it reads before binding
    them, each from the block that bound it last (:func:`block_modules`): mypy sees the
    types the block meets when it runs, and a name the block binds first is its own. A
    name read and then bound again with another type within a block is an error, as in
    any script. The README's files (``mine.py``) are modules of their own, unchanged.
    No ``--allow-redefinition``, no ignores."""
    files = set(file_blocks().values())
    run_in_order = [(line, block) for line, block in located_blocks() if block not in files]
    modules = block_modules(run_in_order)
    for line, block in located_blocks():
        if block in files:
            name = re.match(r"# (\w+\.py):", block)
            assert name
            modules.append((name[1], line, "\n" + block))
    report, log = mypy_strict(modules, tmp_path)
    assert "Success: no issues found in" in report, report
    checked = set(re.findall(r"\S*/fnn/__init__\.py", log))
    assert checked == {str(README.parent / "fnn" / "__init__.py")}  # this clone's fnn


def test_the_readme_type_check_sees_each_names_type_from_the_block_that_bound_it(
    tmp_path: Path,
) -> None:
    blocks = [
        (10, "import numpy as np\n\nn = 3\nwords = 'a'\n"),
        (20, "words = len(words)  # read, then bound with another type\n"),
        (30, "n = 'three'  # bound anew: a name of its own\nsize: int = n\n"),
        (40, "def f() -> str:\n    return n + str(np.pi)\n"),
    ]
    modules = block_modules(blocks)
    assert modules[1][2].startswith("from readme_00 import words as words\n")
    assert modules[3][2].startswith("from readme_02 import n as n; import numpy as np\n")
    report, _ = mypy_strict(modules, tmp_path)
    errors = sorted(re.findall(r"^README.md:(\d+): error: .*\[([\w-]+)\]$", report, re.M))
    assert errors == [("20", "assignment"), ("31", "assignment")]  # f() is a str


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


def test_the_install_sections_extras_are_pyprojects() -> None:
    """The README's table of extras lists exactly the extras ``pyproject.toml`` declares,
    each with what it installs (the table once promised an extra not declared yet)."""
    pyproject = (README.parent / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    declared = set(re.findall(r"^([a-z][\w-]*)\s*=", section, flags=re.MULTILINE))
    table = README.read_text().split("| extra | installs | for |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([\w-]+)` \| ([^|]*) \|", table, flags=re.MULTILINE)
    listed = {name: installs.strip() for name, installs in rows}
    assert set(listed) == declared
    assert all(listed.values()), listed
