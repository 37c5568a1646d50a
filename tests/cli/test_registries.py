"""The command on open registries (fnn/cli, fnn.recipes, fnn.data.register,
fnn.optim.register, fnn.nn.register): a user's own dataset, model recipe and layer,
registered in a file of theirs, train, evaluate and predict through ``fnn --import``,
run from outside the repository; a layer defined in a script's ``__main__`` writes files
that another process loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

PLUGIN = '''
"""A user's registrations: a dataset, a model recipe and a layer."""
from typing import Any

import attrs
import numpy as np

import fnn
from fnn import nn


@attrs.frozen(eq=False)
class ScaleParams:
    gain: nn.Array = attrs.field(converter=nn.readonly)


@nn.register("plugin_scale", types=(ScaleParams,))
def scale() -> nn.Layer[ScaleParams, None]:
    def declare(in_shape: nn.Shape) -> nn.Declared[ScaleParams, None]:
        return nn.Declared(in_shape, ScaleParams(nn.param(in_shape[-1:], nn.ones)))

    def infer(params: ScaleParams, x: nn.Array, state: None) -> nn.Array:
        return x * params.gain

    def forward(params: ScaleParams, x: nn.Array, state: None, key: Any) -> Any:
        return x * params.gain, None, x

    def backward(
        params: ScaleParams, x: nn.Array, dy: nn.Array, need_dx: bool, grads: ScaleParams
    ) -> Any:
        np.sum(dy * x, axis=0, out=grads.gain)
        return dy * params.gain if need_dx else None

    return nn.Layer(declare, infer, forward, backward)


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 4)).astype(np.float32) * 0.3
    x[np.arange(n), y] += 2.0
    return np.clip((x + 3) / 6, 0, 1).astype(np.float32), y


@fnn.data.register("plugin-blobs", info=fnn.data.DataInfo((4,), ("a", "b", "c")))
def blobs(data_dir: Any = None, download: bool = True) -> fnn.data.Dataset:
    (x, y), (xt, yt) = _blobs(300, 0), _blobs(90, 1)
    sums = {"blobs": "0" * 64}
    return fnn.data.Dataset("plugin-blobs", x, y, xt, yt, ".", (), sums, 3, ("a", "b", "c"))


@fnn.recipes.register("plugin_net", lr=0.05, epochs=10, batch_size=30)
def net(data: fnn.data.DataInfo, *, width: int = 8) -> nn.Layer[Any, Any]:
    """A dense layer, the plugin's scale layer, ReLU, dense(classes).

    Args:
        width: the hidden layer's width.
    """
    return nn.serial(nn.dense(width), scale(), nn.relu(), nn.dense(data.num_classes))
'''


def fnn_command(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m fnn ARGS`` run in ``cwd``, as an installed fnn is run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "fnn", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "OPENBLAS_NUM_THREADS": "1"},
    )


def test_a_users_dataset_recipe_and_layer_work_in_the_command(tmp_path: Path) -> None:
    (tmp_path / "plugin.py").write_text(PLUGIN)
    args = ("--import", "plugin.py", "--dataset", "plugin-blobs", "--model", "plugin_net")
    done = fnn_command(tmp_path, "train", *args, "--width", "6", "--out", "run", "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["model"] == "plugin_net" and record["config"]["width"] == 6
    assert record["config"]["epochs"] == 10 and record["config"]["lr"] == 0.05  # its defaults
    assert record["test"]["accuracy"] > 0.9
    assert "dropout" not in record["config"] and "hidden" not in record["config"]
    wrong = fnn_command(tmp_path, "train", *args, "--hidden", "4", "--out", "other")
    assert wrong.returncode == 2
    assert "--hidden applies to --model mlp, not to --model plugin_net" in wrong.stderr

    evaluated = fnn_command(tmp_path, "evaluate", "--import", "plugin.py", "run")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy {record['test']['accuracy']:.4f}" in evaluated.stdout
    np.save(tmp_path / "x.npy", np.full((2, 4), 0.5, np.float32))
    predicted = fnn_command(tmp_path, "predict", "--import", "plugin.py", "run", "x.npy")
    assert predicted.returncode == 0 and predicted.stdout.count("x.npy[") == 2
    for command in (("evaluate", "run"), ("predict", "run", "x.npy")):  # without the module
        alone = fnn_command(tmp_path, *command)
        assert alone.returncode == 2 and alone.stderr.count("\n") == 1
        assert "unknown layer 'plugin_scale'" in alone.stderr
        assert f"imported: fnn {command[0]} --import MODULE)" in alone.stderr
    resumed = fnn_command(tmp_path, "train", "--resume", "run", "--quiet")
    assert resumed.returncode == 2 and "unknown model recipe 'plugin_net'" in resumed.stderr
    assert "imported: fnn train --import MODULE)" in resumed.stderr
    before = fnn_command(tmp_path, "--import", "plugin.py", "evaluate", "run")
    assert before.returncode == 2 and before.stderr == (
        "fnn evaluate: error: --import goes after the command's name: fnn evaluate --import "
        "plugin.py\n"
    )


def test_evaluate_without_the_module_of_its_dataset_says_to_import_it(tmp_path: Path) -> None:
    """A built-in model trained on a user's dataset: ``fnn evaluate`` without the module
    that registers the dataset names it and says how to import it, as train does."""
    (tmp_path / "plugin.py").write_text(PLUGIN)
    args = ("--dataset", "plugin-blobs", "--hidden", "8", "--epochs", "1", "--no-plots")
    done = fnn_command(tmp_path, "train", "--import", "plugin.py", *args, "--out", "run")
    assert done.returncode == 0, done.stderr
    for extra in ((), ("--dataset", "plugin-blobs")):
        alone = fnn_command(tmp_path, "evaluate", "run", *extra)
        assert alone.returncode == 2 and alone.stderr.count("\n") == 1, alone.stderr
        assert "unknown dataset 'plugin-blobs'; expected one of: fashion-mnist" in alone.stderr
        assert "imported: fnn evaluate --import MODULE)" in alone.stderr
    trained = fnn_command(tmp_path, "train", *args, "--out", "other")
    assert "imported: fnn train --import MODULE)" in trained.stderr


def test_the_fnn_script_imports_a_module_of_the_current_directory(tmp_path: Path) -> None:
    """``--import NAME`` finds ``NAME.py`` in the current directory with the installed
    ``fnn`` script as with ``python -m fnn`` (the script's own sys.path[0] is its bin
    directory)."""
    script = Path(sys.executable).with_name("fnn")
    assert script.is_file(), f"no fnn script beside {sys.executable}: install fnn (pip -e .)"
    (tmp_path / "plugin.py").write_text(PLUGIN)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "__init__.py").write_text("from plugin import *  # noqa: F403\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["--dataset", "plugin-blobs", "--model", "plugin_net", "--epochs", "1"]
    for module in ("plugin", "mine"):  # a module, and a package importing a sibling module
        done = subprocess.run(
            [str(script), "train", "--import", module, *args, "--out", f"run-{module}", "--quiet",
             "--no-plots"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**env, "OPENBLAS_NUM_THREADS": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (
            json.loads((tmp_path / f"run-{module}" / "run.json").read_text())["config"]["width"]
            == 8
        )


SCRIPT = """
import sys
import numpy as np
import fnn
from fnn import nn
{layer}
model = nn.serial(nn.dense(5), scale(), nn.relu(), nn.dense(3))
params = model.init(fnn.random.key(0), (4,))
fnn.io.save_model(sys.argv[1], model, params, in_shape=(4,))
np.save(sys.argv[2], model.apply(params, np.full((2, 4), 0.5, np.float32)))
print(fnn.tree.type_name(ScaleParams))
"""


def test_a_layer_defined_in_main_writes_files_another_process_loads(tmp_path: Path) -> None:
    layer = PLUGIN[PLUGIN.index("@attrs.frozen") : PLUGIN.index("def _blobs")]
    header = "from typing import Any\nimport attrs\n"
    (tmp_path / "script.py").write_text(SCRIPT.format(layer=header + layer))
    (tmp_path / "mylayers.py").write_text(PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wrote = subprocess.run(
        [sys.executable, "script.py", "m.npz", "out.npy"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout.strip() == "plugin_scale.ScaleParams"  # not __main__.ScaleParams
    read = subprocess.run(
        [sys.executable, "-c",
         "import sys, numpy as np, fnn, mylayers\n"
         "model, params, _ = fnn.io.load_model('m.npz')\n"
         "out = model.apply(params, np.full((2, 4), 0.5, np.float32))\n"
         "print(np.array_equal(out, np.load('out.npy')), type(params[1]).__module__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["True", "mylayers"]
