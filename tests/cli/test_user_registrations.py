"""The command on registrations a user gets wrong or that clash with the command's own
(fnn/cli, fnn.recipes.register, fnn.optim.register): each is refused at registration or
before training with one line, never by a traceback, and same-named options of several
kinds are each parsed by the chosen recipe's kind (found by a user probe)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fnn
from fnn import cli, nn
from fnn._options import RESERVED

from .test_registries import PLUGIN

ROOT = Path(fnn.__file__).resolve().parents[1]

MODULE = (
    PLUGIN
    + '''
import helper  # a module beside this file


@fnn.recipes.register("wide", lr=0.05, epochs=1, batch_size=30)
def wide(data: fnn.data.DataInfo, *, hidden: int = 8, dropout: bool = False) -> nn.Layer[Any, Any]:
    """An MLP of one hidden layer (mlp's hidden is a tuple, cnn's dropout a float).

    Args:
        hidden: the width.
        dropout: dropout before the last layer.
    """
    tail = [nn.dropout(0.5)] if dropout else []
    return nn.serial(nn.flatten(), nn.dense(hidden), nn.relu(), *tail, nn.dense(data.num_classes))


@fnn.recipes.register("seven", lr=0.05, epochs=1, batch_size=30)
def seven(data: fnn.data.DataInfo) -> nn.Layer[Any, Any]:
    return nn.mlp((4, helper.OUTPUTS))


@fnn.recipes.register("fewer", lr=0.05, epochs=1, batch_size=30)
def fewer(data: fnn.data.DataInfo) -> nn.Layer[Any, Any]:
    return nn.mlp((4, 2))


@fnn.recipes.register("word", lr=0.05, epochs=1, batch_size=30)
def word(data: fnn.data.DataInfo) -> Any:
    return "not a layer"


@fnn.recipes.register("plain", epochs=1)
def plain(data: fnn.data.DataInfo) -> nn.Layer[Any, Any]:
    return nn.mlp((4, data.num_classes))


@fnn.optim.register("undocumented")
def undocumented(learning_rate: float = 0.1, inertia: float = 0.25) -> fnn.optim.Optimizer[Any]:
    return fnn.optim.sgd(learning_rate, inertia)
'''
)


def fnn_in(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m fnn ARGS`` in ``cwd``, with this fnn (the tests' own) importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fnn", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The error line of a command refused as a user's error (exit 2, one line)."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("fnn train: error: ")
    return done.stderr


def test_a_users_module_is_imported_from_its_file_and_its_models_checked(tmp_path: Path) -> None:
    """``--import mods/mine.py`` imports ``helper`` beside it (as ``python mods/mine.py``
    would); ``--hidden`` and ``--dropout`` are parsed by the chosen recipe's kind (an int
    and a bool for ``wide``, integers for mlp); a model whose outputs do not fit the
    classes, a recipe returning no layer and a run without a learning rate are refused
    before training, in one line, with no run directory written."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "mine.py").write_text(MODULE)
    (tmp_path / "mods" / "helper.py").write_text("OUTPUTS = 7\n")
    (tmp_path / "work").mkdir()
    base = ["train", "--import", "../mods/mine.py", "--dataset", "plugin-blobs"]
    base += ["--quiet", "--no-plots"]
    work = tmp_path / "work"

    done = fnn_in(work, *base, "--model", "wide", "--hidden", "12", "--dropout", "--out", "a")
    assert done.returncode == 0, done.stderr
    config = json.loads((work / "a" / "run.json").read_text())["config"]
    assert config["hidden"] == 12 and config["dropout"] is True
    done = fnn_in(work, *base, "--model", "mlp", "--hidden", "6,5", "--epochs", "1", "--out", "b")
    assert done.returncode == 0, done.stderr
    assert json.loads((work / "b" / "run.json").read_text())["config"]["hidden"] == [6, 5]
    assert "expects an integer, got '6,5' (for --model wide)" in one_line(
        fnn_in(work, *base, "--model", "wide", "--hidden", "6,5", "--out", "c")
    )

    for model, shape in (("seven", "(7,)"), ("fewer", "(2,)")):
        line = one_line(fnn_in(work, *base, "--model", model, "--out", model))
        assert f"--model {model}: the model's output for one example has shape {shape}" in line
        assert "the data has 3 classes: expected (3,)" in line
        assert not (work / model).exists()
    line = one_line(fnn_in(work, *base, "--model", "word", "--out", "word"))
    assert "the recipe 'word' (mine.word) must return an fnn.nn.Layer, got str" in line
    line = one_line(fnn_in(work, *base, "--model", "plain", "--out", "plain"))
    assert "--model plain gives no default for --lr, --batch-size" in line
    assert not (work / "word").exists() and not (work / "plain").exists()

    shown = fnn_in(work, "train", "--import", "../mods/mine.py", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--inertia INERTIA     (default 0.25) [--optimizer undocumented]" in shown.stdout


def test_a_registration_error_in_an_imported_module_is_one_line(tmp_path: Path) -> None:
    """A recipe option named like a flag of ``fnn train`` (which broke every run, --help
    too) and an option without a default are refused where the module registers them:
    one line naming the module's line, exit status 2."""
    (tmp_path / "clash.py").write_text(
        "import fnn\n\n"
        '@fnn.recipes.register("seeded", lr=0.1, epochs=1, batch_size=8)\n'
        "def seeded(data, *, seed: int = 0):\n"
        "    return fnn.nn.mlp((4, data.num_classes))\n"
    )
    (tmp_path / "nodefault.py").write_text(
        "import fnn\n\n"
        '@fnn.optim.register("o1")\n'
        "def o1(learning_rate: float = 0.1, beta: float):\n"
        "    return fnn.optim.sgd(learning_rate)\n".replace("beta: float", "*, beta: float")
    )
    line = one_line(fnn_in(tmp_path, "train", "--import", "clash.py", "--help"))
    assert "--import clash.py: ValueError: recipe 'seeded': the option 'seed' would be" in line
    # the decorator's line (3) on Python 3.11 and later, the def's (4) on 3.10
    assert any(f"(at {tmp_path / 'clash.py'}:{n})" in line for n in (3, 4)), line
    line = one_line(fnn_in(tmp_path, "train", "--import", "nodefault.py", "--help"))
    assert "TypeError: o1: the option 'beta' needs a default" in line


def _build(data: fnn.data.DataInfo, **options: Any) -> nn.Layer[Any, Any]:
    return nn.mlp((4, data.num_classes))


def _seeded(data: fnn.data.DataInfo, *, seed: int = 0) -> nn.Layer[Any, Any]:
    return _build(data)


def _plotting(data: fnn.data.DataInfo, *, plots: bool = True) -> nn.Layer[Any, Any]:
    return _build(data)


def _plots(data: fnn.data.DataInfo, *, plots: int = 1) -> nn.Layer[Any, Any]:
    return _build(data)


def _clipped(learning_rate: float = 0.1, clip: float = 0.0) -> fnn.optim.Optimizer[Any]:
    return fnn.optim.sgd(learning_rate)


def test_options_named_like_the_commands_flags_are_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="recipe 'seeded': the option 'seed' would be --seed"):
        fnn.recipes.register("seeded", lr=0.1, epochs=1, batch_size=8)(_seeded)
    with pytest.raises(ValueError, match="the option 'plots' would be --no-plots"):
        fnn.recipes.register("plotting", lr=0.1, epochs=1, batch_size=8)(_plotting)
    with pytest.raises(ValueError, match="optimizer 'clipped': the option 'clip' would be --clip"):
        fnn.optim.register("clipped")(_clipped)
    assert not {"seeded", "plotting"} & set(fnn.recipes.RECIPES)
    assert "clipped" not in fnn.optim.OPTIMIZERS
    options = fnn._options.options_after_first(_plots, "data")  # an int: no --no-plots
    fnn._options.check_names(options, "recipe 'plots'", {}, {})  # accepted: raises nothing


def _untied(data: fnn.data.DataInfo, *, no_tied: int = 1) -> nn.Layer[Any, Any]:
    return _build(data)


def _switch(data: fnn.data.DataInfo, *, turbo: bool = False) -> nn.Layer[Any, Any]:
    return _build(data)


def _unswitched(learning_rate: float = 0.1, no_turbo: float = 0.0) -> fnn.optim.Optimizer[Any]:
    return fnn.optim.sgd(learning_rate)


def _unnesterov(learning_rate: float = 0.1, no_nesterov: bool = False) -> fnn.optim.Optimizer[Any]:
    return fnn.optim.sgd(learning_rate)


def _private(data: fnn.data.DataInfo, *, _w: int = 1) -> nn.Layer[Any, Any]:
    return _build(data)


def _shaky(data: fnn.data.DataInfo, *, momentum: float = 0.5) -> nn.Layer[Any, Any]:
    return _build(data)


def _layered(learning_rate: float = 0.1, hidden: int = 3) -> fnn.optim.Optimizer[Any]:
    return fnn.optim.sgd(learning_rate)


def test_options_whose_flags_clash_with_registered_options_are_refused() -> None:
    """``no_x`` beside a bool ``x`` (both would be ``--no-x``) is refused whichever is
    registered first and whoever owns it: argparse refused the parser of every command."""
    register = fnn.recipes.register("untied", lr=0.1, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="'no_tied' and the bool option 'tied' of recipe 'gpt'"):
        register(_untied)
    with pytest.raises(ValueError, match="'no_nesterov' and the bool option 'nesterov' of"):
        fnn.optim.register("unnesterov")(_unnesterov)
    fnn.optim.register("unswitched")(_unswitched)
    try:
        match = "'turbo' and the option 'no_turbo' of optimizer 'unswitched' would both be"
        with pytest.raises(ValueError, match=match + " --no-turbo"):
            fnn.recipes.register("switch", lr=0.1, epochs=1, batch_size=8)(_switch)
    finally:
        fnn.optim._alias._OPTIMIZERS._items.pop("unswitched")
    assert not {"untied", "switch"} & set(fnn.recipes.RECIPES)
    assert "unnesterov" not in fnn.optim.OPTIMIZERS


def test_an_option_named_with_a_leading_underscore_is_refused() -> None:
    with pytest.raises(ValueError, match="recipe 'private': the option '_w' starts with '_'"):
        fnn.recipes.register("private", lr=0.1, epochs=1, batch_size=8)(_private)
    assert "private" not in fnn.recipes.RECIPES


def test_a_recipes_option_named_like_an_optimizers_is_refused_both_ways() -> None:
    """A recipe's and an optimizer's option of one name would share one ``config`` entry
    (the optimizer's value rebuilt the model on resume and replay)."""
    match = "recipe 'shaky': the option 'momentum' is an option of optimizer 'sgd', "
    with pytest.raises(ValueError, match=match):
        fnn.recipes.register("shaky", lr=0.1, epochs=1, batch_size=8)(_shaky)
    match = "optimizer 'layered': the option 'hidden' is an option of recipe 'mlp' too"
    with pytest.raises(ValueError, match=match):
        fnn.optim.register("layered")(_layered)
    assert "shaky" not in fnn.recipes.RECIPES and "layered" not in fnn.optim.OPTIMIZERS
    recipes = {o.name for r in fnn.recipes.RECIPES.values() for o in r.options}
    optimizers = {o.name for n in fnn.optim.OPTIMIZERS for o in cli._config.optimizer_options(n)}
    assert not recipes & optimizers  # the built-in ones share none


def test_every_flag_of_fnn_train_is_reserved() -> None:
    """:data:`fnn._options.RESERVED` holds every flag ``fnn train`` has besides the
    recipes' and optimizers' options, so a registration can refuse their names."""
    parser = cli._parser()
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    train = commands[0].choices["train"]
    theirs = set(cli._config.every_option())
    flags = {s for a in train._actions for s in a.option_strings if s.startswith("--")}
    names = {flag[2:].replace("-", "_") for flag in flags}
    own = {n for n in names if n not in theirs and n.removeprefix("no_") not in theirs}
    assert own <= RESERVED, own - RESERVED
    assert names | {"help"} >= RESERVED, RESERVED - names


@pytest.mark.parametrize(
    ("defaults", "error", "message"),
    [
        ({"optimiser": "sgd"}, TypeError, r"no default can be called 'optimiser'.*optimizer"),
        ({"weight_decay": 0.5}, TypeError, r"'weight_decay': it names no option .* adam;"),
        ({"lr": "fast"}, TypeError, r"the default lr='fast' must be a number"),
        ({"hidden": (8,)}, TypeError, r"no default can be called 'hidden'"),
    ],
)
def test_recipe_defaults_the_command_could_not_take_are_refused(
    defaults: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        fnn.recipes.register("defaulted", **defaults)
    assert "defaulted" not in fnn.recipes.RECIPES


def test_an_optimizer_not_yet_registered_is_checked_when_a_run_is_configured() -> None:
    """A recipe may name an optimizer a later --import registers: its registration checks
    the command's own defaults only, and configuring a run checks the rest."""
    decorate = fnn.recipes.register("later", optimizer="nadam", lr=0.1, epochs=1, batch_size=4)
    with pytest.raises(TypeError, match=r"the default lr='x' must be a number"):
        fnn.recipes.register("later2", optimizer="nadam", lr="x")
    assert callable(decorate)
    with pytest.raises(ValueError, match=r"optimizer='nadam': unknown optimizer"):
        fnn.recipes.check_defaults("later", {"optimizer": "nadam", "lr": 0.1})


def test_defaults_of_the_recipes_optimizer_are_taken() -> None:
    """``weight_decay`` is an option of adamw, the optimizer the recipe names."""
    decorate = fnn.recipes.register("decayed", optimizer="adamw", weight_decay=0.5)
    assert callable(decorate)  # not registered until it decorates a build function


def test_a_run_without_a_learning_rate_names_the_missing_flags() -> None:
    config = cli.complete({"model": "mlp"}, {}, {}).evolve(lr=None, epochs=None)
    with pytest.raises(cli.UsageError, match=r"--model mlp gives no default for --lr, --epochs"):
        cli.check_config(config, None)


def test_a_recipe_may_name_an_optimizer_a_later_import_registers(tmp_path: Path) -> None:
    """A recipe's defaults for an optimizer registered after it (a later --import, or
    lower in the same file) are checked when the run is configured: refusing them at
    registration made the order of --import matter."""
    (tmp_path / "rec.py").write_text(
        "import fnn\n\n"
        '@fnn.recipes.register("myrec", lr=0.1, epochs=1, batch_size=8, optimizer="myopt",'
        " beta=0.5)\n"
        "def myrec(data):\n"
        "    return fnn.nn.mlp((4, data.num_classes))\n"
    )
    (tmp_path / "opt.py").write_text(
        "import fnn\n\n"
        '@fnn.optim.register("myopt")\n'
        "def myopt(learning_rate: float, *, beta: float = 0.9) -> fnn.optim.Optimizer:\n"
        '    """SGD with momentum.\n\n    Args:\n        beta: the momentum.\n    """\n'
        "    return fnn.optim.sgd(learning_rate, momentum=beta)\n"
    )
    for order in (["rec.py", "opt.py"], ["opt.py", "rec.py"]):
        imports = [arg for name in order for arg in ("--import", name)]
        done = fnn_in(tmp_path, "train", *imports, "--model", "myrec", "--help")
        assert done.returncode == 0, done.stderr
    (tmp_path / "typo.py").write_text(
        "import fnn\n\n"
        '@fnn.recipes.register("typo", lr=0.1, epochs=1, batch_size=8, optimizer="myopt",'
        " betta=0.5)\n"
        "def typo(data):\n"
        "    return fnn.nn.mlp((4, data.num_classes))\n"
    )
    line = one_line(
        fnn_in(
            tmp_path,
            "train",
            "--import",
            "typo.py",
            "--import",
            "opt.py",
            "--model",
            "typo",
            "--out",
            str(tmp_path / "run"),
        )
    )
    assert "no default can be called 'betta'" in line


def _on_sgd(data: fnn.data.DataInfo, *, width: int = 4) -> nn.Layer[Any, Any]:
    return nn.mlp((width, data.num_classes))


def config_of(*argv: str) -> cli._config.Config:
    """The config ``fnn train ARGV`` would train (nothing run)."""
    return cli._config_from_args(cli._parser().parse_args(["train", *argv]))


def test_a_recipes_own_optimizer_decides_which_options_apply() -> None:
    """Without --optimizer, the options of the recipe's optimizer apply (gpt's adamw's
    --weight-decay, as the README shows), and those of the command's adam do not."""
    config = config_of("--model", "gpt", "--weight-decay", "0.05", "--no-weights-only")
    assert config.general["optimizer"] == "adamw"
    assert config.optimizer["weight_decay"] == 0.05
    assert config.optimizer["weights_only"] is False
    fnn.recipes.register("on_sgd", optimizer="sgd", momentum=0.9, lr=0.1, epochs=1, batch_size=8)(
        _on_sgd
    )
    try:
        assert config_of("--model", "on_sgd", "--momentum", "0.5").optimizer == {
            "momentum": 0.5,
            "nesterov": False,
        }
        match = "--b1 applies to --optimizer adam or --optimizer adamw, not to --model on_sgd "
        with pytest.raises(cli.UsageError, match=match + "with --optimizer sgd"):
            config_of("--model", "on_sgd", "--b1", "0.5")
        setting = {"momentum": "0.5"}
        config = cli._sweep.checked_config(["--model", "on_sgd", "--limit", "50"], setting)
        assert config.optimizer["momentum"] == 0.5
    finally:
        fnn.recipes._RECIPES._items.pop("on_sgd")


def _narrow(data: fnn.data.DataInfo, *, hidden: int = 4) -> nn.Layer[Any, Any]:
    return nn.mlp((hidden, data.num_classes))


def test_sweep_and_tune_read_an_option_by_the_kind_of_the_recipe_chosen() -> None:
    """mlp's --hidden (registered first) is a tuple, this recipe's an int: a grid of it
    is split at ',' and a search may draw it from a range; a grid over both recipes is
    refused in one line."""
    fnn.recipes.register("narrow", lr=0.1, epochs=1, batch_size=8)(_narrow)
    try:
        train = ["--model", "narrow"]
        assert cli._sweep.parse_grid(["hidden=8,16"], train) == {"hidden": ("8", "16")}
        assert cli._sweep.parse_grid(["hidden=8,16"], ["--model=narrow"])["hidden"] == ("8", "16")
        assert cli._sweep.parse_grid(["hidden=8,16/4"], []) == {"hidden": ("8,16", "4")}
        [param] = cli._tune._params(["hidden=8..16"], train)
        assert (param.kind, param.low, param.high) == ("int", 8, 16)
        entries = ["hidden=8,16", "model=mlp,narrow"]
        with pytest.raises(cli.UsageError, match="--hidden expects an integer or integers like"):
            cli._sweep.parse_grid(entries, [])
    finally:
        fnn.recipes._RECIPES._items.pop("narrow")


def test_an_optimizer_whose_annotations_no_longer_resolve_does_not_break_registration(
    tmp_path: Path,
) -> None:
    """An optimizer's options are read once, when it registers: one defined where its
    string annotations later stop resolving (a doctest's namespace, cleared after it
    runs) broke every later registration's name checks with a NameError. In a process
    of its own: registrations are for good."""
    script = tmp_path / "cleared.py"
    script.write_text(
        "import fnn\n"
        "namespace = {'fnn': fnn}\n"
        "source = ('from __future__ import annotations\\n'\n"
        "          'def cleared(learning_rate: float = 0.1, *, gamma: float = 0.5)'\n"
        "          ' -> fnn.optim.Optimizer:\\n'\n"
        "          '    return fnn.optim.sgd(learning_rate)\\n')\n"
        "exec(compile(source, '<cleared>', 'exec'), namespace)\n"
        "fnn.optim.register('cleared')(namespace['cleared'])\n"
        "namespace.clear()  # as doctest clears its globals\n"
        "def later(data, *, width: int = 4):\n"
        "    return fnn.nn.mlp((width, data.num_classes))\n"
        "fnn.recipes.register('later', lr=0.1, epochs=1, batch_size=4)(later)\n"
        "print([o.name for o in fnn.optim.optimizer_options('cleared')])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['gamma']"
