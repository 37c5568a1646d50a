"""fnn/io/_api.py: a model file whose weights hold NaN or infinity is refused by
``load_model`` (and by ``load(..., finite=True)``), naming the file and the first leaf;
``save_model`` refuses to write one."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.cli
import fnn.io
from fnn import nn
from fnn.io._archive import write


def poisoned(tree: Any, path: str, value: float, index: tuple[int, ...]) -> Any:
    """``tree`` with ``value`` at ``index`` of the leaf at ``path`` (and of every later leaf,
    so the first one is the one to name)."""
    leaves = fnn.tree.leaves(tree)
    paths = fnn.tree.paths(tree)
    first = paths.index(path)
    out = []
    for i, leaf in enumerate(leaves):
        if i >= first:
            leaf = leaf.copy()
            leaf[index[: leaf.ndim]] = value
        out.append(leaf)
    return fnn.tree.unflatten(fnn.tree.structure(tree), out)


def model_file(
    path: Path, model: nn.Layer[Any, Any], params: Any, *, in_shape: Any, model_state: Any = None
) -> Path:
    """A model file holding ``params`` (and ``model_state``) as they are, NaN included, as
    a file written elsewhere may: what ``save_model`` refuses to write. It writes zeros of
    their shapes, then the same description with the given arrays."""
    saved = {"params": params, "state": model_state} if model.stateful else params
    zeros = fnn.tree.map(np.zeros_like, saved)
    if model.stateful:
        fnn.io.save_model(
            path, model, zeros["params"], in_shape=in_shape, model_state=zeros["state"]
        )
    else:
        fnn.io.save_model(path, model, zeros, in_shape=in_shape)
    with zipfile.ZipFile(path) as zf:
        description = zf.read("fnn.json")
    with path.open("wb") as f:
        write(f, description, [np.asarray(leaf) for leaf in fnn.tree.leaves(saved)])
    return path


def mlp() -> tuple[nn.Layer[Any, Any], Any]:
    model = nn.mlp((8, 3))
    return model, model.init(fnn.random.key(0), (4, 4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("path", ["[1].w", "[1].b", "[3].w"])
def test_load_model_refuses_non_finite_params(tmp_path: Path, bad: float, path: str) -> None:
    model, params = mlp()
    file = model_file(
        tmp_path / "model.npz", model, poisoned(params, path, bad, (2, 1)), in_shape=(4, 4)
    )
    index = "(2, 1)" if path.endswith("w") else "(2,)"
    with pytest.raises(fnn.io.FormatError) as info:
        fnn.io.load_model(file)
    message = str(info.value)
    assert message.startswith(f"{file}: params{path} must hold finite values, got {bad}")
    assert f"at index {index}" in message and "\n" not in message


def test_load_model_names_the_state_of_a_stateful_model(tmp_path: Path) -> None:
    model = nn.serial(nn.flatten(), nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
    params = model.init(fnn.random.key(0), (4, 4))
    assert model.init_state is not None
    state = poisoned(model.init_state((4, 4)), "[2].var", np.nan, (5,))
    file = model_file(tmp_path / "bn.npz", model, params, in_shape=(4, 4), model_state=state)
    with pytest.raises(fnn.io.FormatError, match=r"bn\.npz: state\[2\]\.var must hold finite"):
        fnn.io.load_model(file)
    bad_params = poisoned(params, "[2].scale", np.inf, (0,))
    model_file(file, model, bad_params, in_shape=(4, 4), model_state=state)
    with pytest.raises(fnn.io.FormatError, match=r"bn\.npz: params\[2\]\.scale must hold finite"):
        fnn.io.load_model(file)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_save_model_refuses_what_load_model_would(tmp_path: Path, bad: float) -> None:
    """A model file load_model refuses is never written: save_model names the leaf as
    load_model would, and leaves an existing file as it was."""
    model = nn.serial(nn.flatten(), nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
    params = model.init(fnn.random.key(0), (4, 4))
    assert model.init_state is not None
    state = model.init_state((4, 4))
    file = fnn.io.save_model(tmp_path / "bn.npz", model, params, in_shape=(4, 4), model_state=state)
    before = file.read_bytes()
    cases = [
        (
            poisoned(params, "[4].b", bad, (1,)),
            state,
            rf"params\[4\]\.b must hold finite values, got {bad}",
        ),
        (params, poisoned(state, "[2].mean", bad, (7,)), r"state\[2\]\.mean must hold finite"),
    ]
    for bad_params, bad_state, message in cases:
        with pytest.raises(ValueError, match=f"^save_model: {message}.* at index .*load_model"):
            fnn.io.save_model(file, model, bad_params, in_shape=(4, 4), model_state=bad_state)
        assert file.read_bytes() == before
    mlp_model, mlp_params = mlp()
    bad_params = poisoned(mlp_params, "[1].w", bad, (0, 0))
    with pytest.raises(ValueError, match=r"save_model: params\[1\]\.w must hold finite"):
        fnn.io.save_model(tmp_path / "new.npz", mlp_model, bad_params, in_shape=(4, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bn.npz"]
    fnn.io.save(tmp_path / "tree.npz", poisoned(params, "[4].b", bad, (1,)))  # any tree saves


def test_a_finite_model_still_loads(tmp_path: Path) -> None:
    model, params = mlp()
    file = fnn.io.save_model(tmp_path / "model.npz", model, params, in_shape=(4, 4))
    assert fnn.tree.equal(fnn.io.load_model(file).params, params)


def test_load_refuses_non_finite_leaves_only_when_asked(tmp_path: Path) -> None:
    """A tree file is any data (a NaN may mark a missing value): ``load`` reads it as it
    is; ``finite=True`` refuses it as ``load_model`` does, with or without a template."""
    _, params = mlp()
    tree = {"params": poisoned(params, "[3].w", np.nan, (0, 0)), "step": 3, "loss": float("inf")}
    file = fnn.io.save(tmp_path / "ckpt.npz", tree)
    loaded = fnn.io.load(file)
    assert np.isnan(loaded["params"][3].w[0, 0]) and loaded["loss"] == float("inf")
    pattern = r"ckpt\.npz: the leaf at \['loss'\] must hold finite values, got inf"
    with pytest.raises(fnn.io.FormatError, match=pattern):
        fnn.io.load(file, finite=True)
    with pytest.raises(fnn.io.FormatError, match=pattern):
        fnn.io.load(file, like=tree, finite=True)
    del tree["loss"]
    fnn.io.save(file, tree)
    with pytest.raises(fnn.io.FormatError, match=r"at \['params'\]\[3\]\.w must hold finite"):
        fnn.io.load(file, finite=True)
    fnn.io.save(file, {"params": params, "step": 3, "mask": np.array([True, False])})
    assert fnn.tree.equal(fnn.io.load(file, finite=True)["params"], params)


def test_predict_with_a_non_finite_model_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, params = mlp()
    file = model_file(
        tmp_path / "model.npz", model, poisoned(params, "[1].w", np.nan, (0, 0)), in_shape=(4, 4)
    )
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4), np.uint8))
    assert fnn.cli.main(["predict", str(file), str(tmp_path / "x.npy")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"fnn predict: error: {file}: params[1].w must hold finite")
    assert captured.err.count("\n") == 1
