"""The fnn command (fnn/cli.py), run in-process on a small synthetic stand-in for
Fashion-MNIST: train, evaluate and predict, reruns and resumes, a user's own data, and
hostile configurations and paths (one line on stderr and exit status 2 for every error a
user can cause, checked before any file is touched; no stale checkpoint resumed under
another run; bugs keep their tracebacks)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import cli, parallel, random
from fnn.cli import _conditions
from fnn.cli import _train as cli_train
from fnn.train import NonFiniteLossError
from tests.parallel.fake_comm import Channels, FakeComm
from tests.support.optional import needs_matplotlib, needs_pillow


def synthetic(name: str = "fashion-mnist") -> fnn.data.Dataset:
    """600 train and 200 test 28x28 uint8 images whose class sets a bright block."""
    k1, k2, k3, k4 = random.split(random.key(5), 4)

    def images(k: random.Key, labels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        noise = random.uniform(k, (len(labels), 28, 28)) * 60
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 4)
            noise[i, 2 + 8 * row : 8 + 8 * row, 2 + 6 * col : 8 + 6 * col] += 180
        return noise.astype(np.uint8)

    y_train = random.permutation(k1, 600) % 10
    y_test = random.permutation(k2, 200) % 10
    return fnn.data.Dataset(
        name,
        images(k3, y_train),
        y_train,
        images(k4, y_test),
        y_test,
        Path("/synthetic"),
        (),
        {"train-images-idx3-ubyte": "0" * 64},
        num_classes=10,
        classes=fnn.data.source(name).info.classes,  # type: ignore[union-attr]
    )


@pytest.fixture(autouse=True)
def fake_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fnn.data, "load_dataset", lambda name, **kwargs: synthetic(name))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(list(argv), out=out)
    return status, out.getvalue()


def train(directory: Path, *extra: str) -> dict[str, Any]:
    status, text = run(
        "train", "--out", str(directory), "--epochs", "3", "--batch-size", "32", "--quiet",
        *extra,
    )  # fmt: skip
    assert status == 0, text
    record: dict[str, Any] = json.loads((directory / "run.json").read_text())
    return record


def resume(directory: Path, *extra: str) -> dict[str, Any]:
    """``fnn train --resume directory``, which must succeed; the run record it leaves."""
    status, text = run("train", "--resume", str(directory), "--quiet", *extra)
    assert status == 0, text
    assert "resuming" in text
    record: dict[str, Any] = json.loads((directory / "run.json").read_text())
    return record


def contents(directory: Path) -> dict[Path, bytes]:
    """Every file below ``directory`` and its bytes (to show a command touched none)."""
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@needs_matplotlib
def test_train_writes_model_record_checkpoint_and_plots(tmp_path: Path) -> None:
    status, text = run("train", "--out", str(tmp_path), "--epochs", "3", "--quiet")
    assert status == 0, text
    assert "epoch    loss  accuracy  val_loss  val_accuracy   seconds" in text
    assert "test accuracy" in text
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoints", "confusion.png", "curves.png", "model.npz", "run.json"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["config"]["hidden"] == [128, 64] and record["config"]["optimizer"] == "adam"
    assert record["seed"] == 0 and len(record["epochs"]) == 3
    assert record["versions"]["numpy"] == np.__version__
    assert record["data"]["sha256"] == {"train-images-idx3-ubyte": "0" * 64}
    assert record["test"]["accuracy"] > 0.8
    assert len(record["params_sha256"]) == 64
    _model, params, _ = fnn.io.load_model(tmp_path / "model.npz")
    assert fnn.tree.fingerprint(params) == record["params_sha256"]
    assert fnn.io.load_metadata(tmp_path / "model.npz")["classes"][0] == "T-shirt/top"
    assert isinstance(fnn.load(tmp_path / "checkpoints" / "last.npz"), fnn.TrainState)


def test_runs_are_deterministic(tmp_path: Path) -> None:
    a = train(tmp_path / "a")
    b = train(tmp_path / "b")
    c = train(tmp_path / "c", "--seed", "1")
    assert a["params_sha256"] == b["params_sha256"] and a["epochs"] == b["epochs"]
    assert a["params_sha256"] != c["params_sha256"]


def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = train(tmp_path / "whole", "--epochs", "4")
    part = train(tmp_path / "part", "--epochs", "4", "--stop-after", "2")
    assert len(part["epochs"]) == 2
    resumed = resume(tmp_path / "part")
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["epochs"] == whole["epochs"]
    assert resumed["config"] == whole["config"]
    assert resumed["epoch_params_sha256"] == whole["epoch_params_sha256"]
    # the training's time over both stages, not the last stage's alone
    timing = resumed["timing"]
    assert sorted(timing["epoch_seconds"]) == ["0", "1", "2", "3"]
    assert timing["wall_seconds"] >= sum(timing["epoch_seconds"].values())


def test_a_run_without_validation_resumes_bit_identically(tmp_path: Path) -> None:
    """Without validation the history's val_loss and val_accuracy are NaN by design (not
    measured): the checkpoint holding them resumes, and the run ends on the bits of one
    that never stopped."""
    args = ("--epochs", "2", "--validation-split", "0")
    whole = train(tmp_path / "whole", *args)
    part = train(tmp_path / "part", *args, "--stop-after", "1")
    assert np.isnan(part["epochs"][0]["val_loss"]) and np.isnan(whole["epochs"][1]["val_loss"])
    resumed = resume(tmp_path / "part", "--no-plots")
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["test"] == whole["test"]
    assert json.dumps(resumed["epochs"]) == json.dumps(whole["epochs"])  # NaN where unmeasured
    models = [fnn.io.load_model(tmp_path / d / "model.npz") for d in ("whole", "part")]
    assert fnn.tree.equal(models[0].params, models[1].params)


def test_resume_refuses_a_checkpoint_whose_params_are_not_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path, "--stop-after", "1")
    last = tmp_path / "checkpoints" / "last.npz"
    state = fnn.io.load(last)
    w = state.params[1].w.copy()
    w[3, 0] = np.nan
    params = (state.params[0], attrs.evolve(state.params[1], w=w), *state.params[2:])
    opt = attrs.evolve(state.opt, params=params)
    fnn.io.save(last, attrs.evolve(state, opt=opt), metadata=fnn.io.load_metadata(last))
    before = contents(tmp_path)
    message = error_of(capsys, "train", "--resume", str(tmp_path))
    assert "must hold finite values, got nan at index (3, 0)" in message
    assert contents(tmp_path) == before


def test_threads_run_shards_at_once_with_the_same_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--threads 2 with --shards 2: one thread a shard, one BLAS thread each; the bits of
    --threads 1, and a run resumes with another thread count."""
    blas: list[int] = []
    real = fnn.runtime.set_blas_threads

    def recorded(n: int) -> bool:
        blas.append(n)
        return real(n)

    monkeypatch.setattr(fnn.runtime, "set_blas_threads", recorded)
    one = train(tmp_path / "one", "--shards", "2")
    two = train(tmp_path / "two", "--shards", "2", "--threads", "2")
    assert blas == [1, 1]
    assert two["params_sha256"] == one["params_sha256"] and two["epochs"] == one["epochs"]
    train(tmp_path / "part", "--shards", "2", "--threads", "2", "--stop-after", "1")
    resumed = resume(tmp_path / "part", "--threads", "1")
    assert resumed["params_sha256"] == one["params_sha256"]
    train(tmp_path / "blas", "--threads", "2")  # one shard: both threads go to BLAS
    assert blas[-1] == 2
    real(1)


@needs_pillow
def test_evaluate_and_predict(tmp_path: Path) -> None:
    train(tmp_path)
    status, text = run("evaluate", str(tmp_path))
    assert status == 0 and "test accuracy" in text and "Ankle boot" in text
    images = synthetic().x_test[:3]
    np.save(tmp_path / "three.npy", images)
    fnn.data.write_idx(tmp_path / "two.idx.gz", images[:2], compress=True)
    from PIL import Image

    Image.fromarray(images[0]).save(tmp_path / "one.png")
    status, text = run(
        "predict", str(tmp_path / "model.npz"), str(tmp_path / "three.npy"),
        str(tmp_path / "two.idx.gz"), str(tmp_path / "one.png"), "--top", "2",
    )  # fmt: skip
    assert status == 0, text
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"{tmp_path / 'three.npy'}[0]: ")
    assert lines[0].split(": ")[1] == lines[3].split(": ")[1] == lines[5].split(": ")[1]


def test_evaluate_and_predict_a_model_with_state(tmp_path: Path) -> None:
    """A model file holding running statistics: the command uses them as saved."""
    from tests.support import user_layers

    data = synthetic()
    model = fnn.nn.serial(
        fnn.nn.flatten(), fnn.nn.dense(16), user_layers.center(), fnn.nn.relu(), fnn.nn.dense(10)
    )
    x = fnn.data.to_float(data.x_train)
    final = fnn.fit(
        model,
        fnn.losses.softmax_cross_entropy,
        fnn.optim.adam(0.01),
        x,
        data.y_train,
        key=random.key(2),
        epochs=2,
        batch_size=64,
    )
    fnn.io.save_model(
        tmp_path / "model.npz",
        model,
        final.params,
        in_shape=(28, 28),
        model_state=final.model_state,
        metadata={"dataset": "fashion-mnist", "classes": list("0123456789")},
    )
    np.save(tmp_path / "two.npy", data.x_test[:2])
    status, text = run("predict", str(tmp_path / "model.npz"), str(tmp_path / "two.npy"))
    assert status == 0, text
    probs = fnn.predict_proba(
        model, final.params, fnn.data.to_float(data.x_test[:2]), model_state=final.model_state
    )
    best = [int(np.argmax(row)) for row in probs]
    shown = [line.split(": ")[1].split(",")[0] for line in text.splitlines()]
    assert shown == [f"{k} {probs[i, k]:.4f}" for i, k in enumerate(best)]
    status, text = run("evaluate", str(tmp_path / "model.npz"))
    assert status == 0, text
    expected = fnn.evaluate(
        model,
        fnn.losses.softmax_cross_entropy,
        final.params,
        fnn.data.to_float(data.x_test),
        data.y_test,
        model_state=final.model_state,
    )
    assert f"test accuracy {expected.accuracy:.4f}" in text


def test_the_cnn_trains_evaluates_and_predicts(tmp_path: Path) -> None:
    record = train(tmp_path, "--model", "cnn", "--batch-norm", "--dropout", "0.25")
    config = record["config"]
    assert (config["model"], config["batch_norm"], config["dropout"]) == ("cnn", True, 0.25)
    assert config["lr"] == 1e-3  # the CNN's default rate
    assert record["test"]["accuracy"] > 0.5
    model, _, state = fnn.io.load_model(tmp_path / "model.npz")
    assert (
        state is not None
        and model.spec
        == fnn.cli.build_model(
            fnn.cli.complete({"model": "cnn"}, {"batch_norm": True, "dropout": 0.25}, {}),
            fnn.data.DataInfo((28, 28), tuple("0123456789")),
        ).spec
    )
    status, text = run("evaluate", str(tmp_path))
    assert status == 0 and f"test accuracy {record['test']['accuracy']:.4f}" in text
    np.save(tmp_path / "one.npy", synthetic().x_test[:1])
    status, text = run("predict", str(tmp_path), str(tmp_path / "one.npy"))
    assert status == 0 and text.startswith(f"{tmp_path / 'one.npy'}: ") and text.count(",") == 2


def test_cnn_runs_with_dropout_and_batch_norm_rerun_and_resume_bit_identically(
    tmp_path: Path,
) -> None:
    """Dropout masks and augmentations come from (seed, step) and the running statistics
    ride in the checkpoint: a rerun and a run stopped after one epoch and resumed end on the
    same bits."""
    cnn = ("--model", "cnn", "--batch-norm", "--dropout", "0.5", "--epochs", "2",
           "--augment", "flip,shift")  # fmt: skip
    whole = train(tmp_path / "whole", *cnn)
    again = train(tmp_path / "again", *cnn)
    part = train(tmp_path / "part", *cnn, "--stop-after", "1")
    resumed = resume(tmp_path / "part")
    assert len(part["epochs"]) == 1
    assert again["params_sha256"] == resumed["params_sha256"] == whole["params_sha256"]
    assert again["epochs"] == resumed["epochs"] == whole["epochs"]
    states = [fnn.io.load_model(tmp_path / d / "model.npz")[2] for d in ("whole", "again", "part")]
    assert states[0] is not None
    assert fnn.tree.equal(states[0], states[1]) and fnn.tree.equal(states[0], states[2])
    other = train(tmp_path / "other", *cnn, "--seed", "1")
    assert other["params_sha256"] != whole["params_sha256"]
    assert whole["config"]["augment"] == ["flip", "shift"]
    unaugmented = train(tmp_path / "plain", *cnn[:-2])
    assert unaugmented["params_sha256"] != whole["params_sha256"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--batch-norm",), "--batch-norm applies to --model cnn"),
        (("--clip", "-1"), "--clip: the norm to clip to must be a finite number > 0, or 0 for"),
        (  # a classifier's option beside --text: the --text is what is wrong
            ("--text", "tinyshakespeare", "--epochs", "3"),
            "--text: --model mlp is not a language model (it has no --context)",
        ),
        (("--padding", "valid"), "--padding applies to --model cnn"),
        (("--augment", "rotate"), "--augment: unknown 'rotate'; expected names from"),
    ],
)
def test_cnn_options_and_their_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    try:
        status, _ = run("train", "--out", str(tmp_path), *args, "--quiet")
    except SystemExit as exit:  # argparse's own errors
        status = exit.code  # type: ignore[assignment]
    assert status == 2
    assert message in capsys.readouterr().err


def test_predict_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path)
    status, _ = run("predict", str(tmp_path), str(tmp_path / "missing.png"))
    assert status == 2
    assert "missing.png: no such file" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5)))
    status, _ = run("predict", str(tmp_path), str(tmp_path / "wrong.npy"))
    assert status == 2
    assert "expected images of shape (28, 28)" in capsys.readouterr().err
    status, _ = run("evaluate", str(tmp_path / "nowhere"))
    assert status == 2


def test_without_optional_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "PIL", None)
    status, text = run("train", "--out", str(tmp_path), "--epochs", "1", "--quiet")
    assert status == 0
    assert "matplotlib is not installed" in text and "pip install 'fnn[plot]'" in text
    assert not (tmp_path / "curves.png").exists()
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    status, _ = run("predict", str(tmp_path), str(tmp_path / "pic.png"))
    assert status == 2
    assert "pip install 'fnn[image]'" in capsys.readouterr().err


def test_resume_needs_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run("train", "--resume", str(tmp_path))
    assert status == 2
    assert "run.json not found" in capsys.readouterr().err


def test_help_shows_each_options_whole_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Each recipe's and optimizer's option shows its docstring's whole ``Args:`` entry,
    continuation lines included, then what it applies to; an option several of them take
    with different meanings shows each one's, after its name."""
    with pytest.raises(SystemExit) as exit:
        run("train", "--help")
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--optimizer sgd: the decay of the velocity ``v``; in [0, 1) (default 0: no momentum, "
        "no velocity kept in the state). --optimizer rmsprop:"
    ) in text
    assert "--model cnn: the dropout rate before the last layer. --model gpt:" in text
    assert "(default 0.01; 0 gives adam). [--optimizer adamw]" in text
    assert "Leaves of plain dicts, lists and tuples are never weights. [--optimizer adamw]" in text
    assert "(default False); needs ``momentum > 0``. --optimizer momentum:" in text
    own = text[text.index("options of the model recipes and optimizers:") : text.index(" the run:")]
    for name, options in cli._config.every_option().items():
        for option in options:  # each one's whole help, as one line of text
            assert " ".join(option.help.split()) in own, (name, option.help)


# -- hostile configurations and paths ---------------------------------------------------------


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the command, check it failed with status 2 and one line on stderr; that line."""
    status, _ = run(*argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith(f"fnn {argv[0]}: error: "), err
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "-1"), "--lr: the learning rate must be a finite number > 0, got -1.0"),
        (("--lr", "nan"), "--lr: the learning rate must be a finite number > 0, got nan"),
        (("--epochs", "0"), "--epochs: epochs must be >= 1, got 0"),
        (("--epochs", str(10**20)), "--epochs: epochs must fit in 64 bits"),
        (("--batch-size", str(10**20)), "--batch-size: batch_size must fit in 64 bits"),
        (("--patience", str(10**20)), "--patience: 0 (no early stopping) or patience must fit"),
        (("--stop-after", "0"), "--stop-after must be an integer in [1, 2**31), got 0"),
        (("--validation-split", "1.5"), "--validation-split: validation_split must be in [0, 1)"),
        (("--batch-size", "0"), "--batch-size: batch_size must be >= 1, got 0"),
        (("--shards", "64", "--batch-size", "32"), "--shards: at most the batch size 32, got 64"),
        (("--momentum", "1"), "--momentum applies to --optimizer sgd or --optimizer rmsprop"),
        (("--optimizer", "momentum", "--momentum", "1"), "momentum must be in [0, 1), got 1.0"),
        (("--dropout", "1", "--model", "cnn"), "dropout rate must be in [0, 1), got 1.0"),
        (("--seed", "-3"), "--seed: seed must be in [0, 2**63), got -3"),
        (("--l2", "-0.1"), "--l2: the L2 penalty's lam must be a finite number >= 0, got -0.1"),
        (("--patience", "-1"), "--patience: 0 (no early stopping) or patience must be >= 1"),
        (("--threads", "0"), "--threads must be an integer in [1, 2**31), got 0"),
        (("--optimizer", "adamm"), "unknown optimizer 'adamm'; expected one of: adagrad, adam"),
        (("--model", "rnn"), "unknown model recipe 'rnn'; expected one of: cnn, gpt, mlp"),
        (("--dataset", "cifar"), "unknown dataset 'cifar'; expected one of: fashion-mnist"),
        (("--activation", "sigmoidd"), "sigmoidd"),
        (("--init", "zeroes"), "zeroes"),
        (("--batch-norm",), "--batch-norm applies to --model cnn"),
        (("--clip", "-1"), "--clip: the norm to clip to must be a finite number > 0, or 0 for"),
        (  # a classifier's option beside --text: the --text is what is wrong
            ("--text", "tinyshakespeare", "--epochs", "3"),
            "--text: --model mlp is not a language model (it has no --context)",
        ),
        (  # 6 updates of 100 of the 540 training images
            ("--epochs=1", "--batch-size=100", "--schedule=warmup-cosine", "--warmup=6"),
            "--schedule warmup-cosine: --warmup 6 must be fewer than the run's 6 updates "
            "(--epochs 1 of 6 updates each)",
        ),
        (("--hidden", "100000000"), "parameters: training it takes about"),
        (
            ("--model", "cnn", "--batch-norm", "--batch-size", "1"),
            "--batch-size 1: each batch has 1 rows, but the model needs at least 2 rows per "
            "batch in training (a layer declares min_batch=2: batch norm estimates a "
            "variance from its rows): choose another "
            "--batch-size for the 540 training images",
        ),
        (
            ("--model", "cnn", "--batch-norm", "--batch-size", "539"),
            "--batch-size 539: the last batch of each epoch has 1 rows, but the model needs",
        ),
        (
            ("--model", "cnn", "--batch-norm", "--batch-size", "4", "--shards", "4"),
            "--batch-size 4 with --shards 4: each batch has 4 rows in 4 shards, but the model "
            "needs at least 2 rows per batch (shard) in training (a layer declares "
            "min_batch=2: batch norm estimates a variance from its rows): choose another "
            "--batch-size or fewer --shards for the 540",
        ),
    ],
)
def test_a_bad_configuration_touches_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "run"
    began = time.perf_counter()
    assert message in error_of(capsys, "train", "--out", str(out), "--quiet", *args)
    assert time.perf_counter() - began < 10  # refused before allocating or training
    assert not out.exists()


def test_a_classifiers_warm_up_counts_updates_not_epochs(tmp_path: Path) -> None:
    """--warmup is checked against the run's updates (3 epochs of 17), not its epochs."""
    record = train(tmp_path / "run", "--schedule", "warmup-cosine", "--warmup", "20")
    assert record["config"]["warmup"] == 20


def test_an_error_before_any_command_names_fnn_alone(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run()
    assert status == 2
    assert capsys.readouterr().err == "fnn: error: the following arguments are required: command\n"
    for argv in (("trian", "--epochs", "1"), ("trian", "--import", "json")):
        status, _ = run(*argv)
        assert status == 2
        err = capsys.readouterr().err
        assert err.startswith("fnn: error: argument command: invalid choice: 'trian'"), err


def test_a_bad_configuration_keeps_the_earlier_run_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path)
    before = contents(tmp_path)
    assert "--epochs: epochs must be" in error_of(
        capsys, "train", "--out", str(tmp_path), "--epochs", "0"
    )
    after = contents(tmp_path)
    assert after == before


def test_unusable_output_places_fail_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("trained although the output cannot be written")

    monkeypatch.setattr(cli_train, "fit", no_training)
    afile = tmp_path / "a-file"
    afile.write_text("keep me")
    assert "exists and is not a directory" in error_of(capsys, "train", "--out", str(afile))
    assert "is not a directory" in error_of(capsys, "train", "--out", str(afile / "sub"))
    assert afile.read_text() == "keep me"
    taken = tmp_path / "taken"
    (taken / "model.npz").mkdir(parents=True)
    assert "model.npz is a directory" in error_of(capsys, "train", "--out", str(taken))
    assert not (taken / "run.json").exists()
    # /sys refuses new entries even to root
    assert "cannot " in error_of(capsys, "train", "--out", "/sys/fnn-cannot-write-here")


def test_a_bug_is_not_reported_as_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(args: Any, out: Any) -> int:
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(fnn.cli._use, "evaluate_command", buggy)
    with pytest.raises(ValueError, match="an internal inconsistency"):
        run("evaluate", "somewhere")


def test_an_interrupt_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_train, "fit", interrupted)
    status, _ = run("train", "--out", str(tmp_path), "--quiet")
    assert status == 130
    assert capsys.readouterr().err == "fnn train: interrupted\n"


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_a_new_run_never_leaves_an_older_checkpoint_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    finished = tmp_path / "finished"
    train(finished)
    x = copy_run(finished, tmp_path / "x")

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # killed before its first checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(cli_train, "fit", killed)
        status, _ = run("train", "--out", str(x), "--seed", "5", "--epochs", "8", "--quiet")
    assert status == 130
    assert capsys.readouterr().err == "fnn train: interrupted\n"
    assert json.loads((x / "run.json").read_text())["config"]["seed"] == 5
    assert not (x / "model.npz").exists()  # the earlier run's model went with its record
    assert "nothing to resume" in error_of(capsys, "train", "--resume", str(x))

    # The old checkpoint put back (by hand, or by an fnn that did not remove it): refused.
    shutil.copy(finished / "checkpoints" / "last.npz", x / "checkpoints" / "last.npz")
    message = error_of(capsys, "train", "--resume", str(x))
    assert "is not a checkpoint of the run in" in message and "another run" in message

    record = json.loads((x / "run.json").read_text())
    del record["run_id"]  # a run record from before run ids
    (x / "run.json").write_text(json.dumps(record))
    assert "carries no run id" in error_of(capsys, "train", "--resume", str(x))


def test_resume_refuses_a_checkpoint_of_another_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path, "--stop-after", "1")
    record = json.loads((tmp_path / "run.json").read_text())
    record["config"]["hidden"] = [64, 32]
    record["config"]["lr"] = 0.5
    (tmp_path / "run.json").write_text(json.dumps(record))
    message = error_of(capsys, "train", "--resume", str(tmp_path))
    assert "was trained with another configuration" in message
    assert "--hidden [128, 64] (run.json: [64, 32])" in message and "--lr" in message


def test_resume_takes_no_options_that_would_change_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path, "--stop-after", "1")
    message = error_of(capsys, "train", "--resume", str(tmp_path), "--lr", "0.1", "--seed=3")
    assert "--lr, --seed cannot change it" in message
    status, _ = run("train", "--resume", str(tmp_path), "--quiet", "--no-plots")
    assert status == 0


def test_a_diverging_run_says_so_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = fnn.fit

    def diverging(*args: Any, callbacks: list[Callable[[Any], None]], **kwargs: Any) -> Any:
        def blow_up(event: Any) -> None:
            if event.kind == "epoch_end" and event.record.epoch == 1:  # the second epoch
                raise NonFiniteLossError("the loss is nan at step 40")

        return real_fit(*args, callbacks=[*callbacks[:1], blow_up, *callbacks[1:]], **kwargs)

    monkeypatch.setattr(cli_train, "fit", diverging)
    message = error_of(capsys, "train", "--out", str(tmp_path), "--epochs", "3", "--quiet")
    last = tmp_path / "checkpoints" / "last.npz"
    assert f"training diverged: the loss is nan at step 40; the last good checkpoint is {last}" in (
        message
    )
    assert fnn.io.load(last).epoch == 1
    assert not (tmp_path / "model.npz").exists()


def test_class_names_and_paths_are_printed_safely(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path)
    model, params, _ = fnn.io.load_model(tmp_path / "model.npz")
    hostile = ["\x1b[2J\x1b[31mT-shirt", *(f"c{i}\x07" for i in range(1, 10))]
    fnn.io.save_model(
        tmp_path / "hostile.npz", model, params, in_shape=(28, 28), metadata={"classes": hostile}
    )
    images = tmp_path / "\x1b]0;title\x07.npy"
    np.save(images, synthetic().x_test[:2])
    status, text = run("predict", str(tmp_path / "hostile.npz"), str(images), "--top", "10")
    assert status == 0
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J\\x1b[31mT-shirt" in text and "c1\\x07" in text and "\\x1b]0;title" in text
    assert "--top must be an integer >= 1, got 0" in error_of(
        capsys, "predict", str(tmp_path), str(images), "--top", "0"
    )


def write_own_data(directory: Path, shape: tuple[int, ...] = (12, 10), classes: int = 3) -> Path:
    """A small dataset of its own: a bright band per class, uint8 images of ``shape``."""
    rng = np.random.default_rng(7)

    def split(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        labels = np.arange(n) % classes
        images = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 3 * label : 3 * label + 3] += 150
        return images, labels.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = split(240), split(60)
    directory.mkdir(parents=True)
    np.savez(directory / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)  # fmt: skip
    (directory / "classes.txt").write_text("low\nmiddle\nhigh\n")
    return directory


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_training_on_a_directory_of_own_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    own = write_own_data(tmp_path / "own")
    out = tmp_path / "run"
    args = ("--data", str(own), "--model", model, "--batch-size", "16", "--quiet")
    status, text = run("train", "--out", str(out), "--epochs", "4", *args)
    assert status == 0, text
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["data"] == str(own.resolve())
    assert record["config"]["dataset"] == "own"
    sha = fnn.data.load_directory(own).sha256
    assert record["data"]["sha256"] == dict(sha) and len(sha) >= 1
    assert record["test"]["accuracy"] > 0.9
    assert np.array(record["confusion_matrix"]).shape == (3, 3)

    status, text = run("evaluate", str(out))  # the model file names its data directory
    assert status == 0, text
    assert [line.split()[0] for line in text.splitlines()[2:]] == ["low", "middle", "high"]
    np.save(tmp_path / "pics.npy", np.load(own / "data.npz")["x_test"][:3])
    status, text = run("predict", str(out), str(tmp_path / "pics.npy"), "--top", "1")
    assert status == 0, text
    assert [line.split(": ")[1].split()[0] for line in text.splitlines()] == [
        "low",
        "middle",
        "high",
    ]

    # 28x28 pictures do not fit a model of 12x10 images, nor does another dataset.
    assert "shape" in error_of(capsys, "evaluate", str(out), "--dataset", "fashion-mnist")


def half_a_run_on_own_data(tmp_path: Path) -> tuple[Path, Path]:
    """The data directory and the run directory of a run stopped after 1 of 2 epochs."""
    own = write_own_data(tmp_path / "own")
    out = tmp_path / "run"
    status, _ = run("train", "--data", str(own), "--out", str(out), "--epochs", "2",
                    "--stop-after", "1", "--quiet")  # fmt: skip
    assert status == 0
    return own, out


def test_own_data_resumes_only_on_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own, out = half_a_run_on_own_data(tmp_path)
    assert "give --data (your own data) or --dataset" in error_of(
        capsys, "train", "--data", str(own), "--dataset", "mnist", "--out", str(out)
    )
    arrays = dict(np.load(own / "data.npz"))
    arrays["y_train"] = arrays["y_train"][::-1].copy()
    np.savez(own / "data.npz", **arrays)
    assert "changed since the run began" in error_of(capsys, "train", "--resume", str(out))


def test_a_real_divergence_ends_in_one_line(tmp_path: Path) -> None:
    own = write_own_data(tmp_path / "own")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fnn", "train", "--data", str(own), "--out",
               str(tmp_path / "run"), "--optimizer", "sgd", "--lr", "1e30", "--quiet",
               "--no-plots"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("fnn train: error: training diverged: the loss is ")


def test_hostile_paths_end_in_one_line(tmp_path: Path) -> None:
    """A model file that is a link to /dev/zero, a FIFO, and a directory of pictures: each
    a one-line error within seconds (in a child process with a timeout and a memory cap,
    so a regression fails instead of hanging or exhausting the machine)."""
    zero = tmp_path / "zero.npz"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cap = "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31)); "
    main = "from fnn.cli import main; sys.exit(main(sys.argv[1:]))"
    for argv, message in [
        (["evaluate", str(zero)], "is a character device; expected a regular file"),
        (["predict", str(fifo), str(pictures)], "is a FIFO (named pipe); expected a regular file"),
    ]:
        done = subprocess.run([sys.executable, "-c", cap + main, *argv], capture_output=True,
                              text=True, env=env, timeout=60)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_a_directory_is_not_a_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path)
    assert "is a directory" in error_of(capsys, "predict", str(tmp_path), str(tmp_path))


def test_predict_refuses_a_huge_image_file_from_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path)
    huge = tmp_path / "huge-idx3-ubyte"
    dims = (1_000_000, 28, 28)  # 784 MB of pixels declared, 784 MB * 4 as float32
    huge.write_bytes(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims))
    message = error_of(capsys, "predict", str(tmp_path), str(huge))
    assert f"784000000 bytes of data, more than max_bytes={cli.PREDICT_MAX_BYTES}" in message


def test_a_run_record_must_be_a_regular_file_of_bounded_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "run.json")
    assert "is a FIFO (named pipe)" in error_of(capsys, "train", "--resume", str(tmp_path))
    (tmp_path / "run.json").unlink()
    with (tmp_path / "run.json").open("wb") as record:
        record.truncate(cli.MAX_RUN_RECORD + 10)
    assert "larger than the" in error_of(capsys, "train", "--resume", str(tmp_path))


def write_float_data(directory: Path) -> Path:
    """The data of :func:`write_own_data` as float32 ``.npy`` files in [0, 1]."""
    source = np.load(write_own_data(directory.parent / "uint8-source") / "data.npz")
    directory.mkdir()
    for name in ("x_train", "x_test"):
        np.save(directory / f"{name}.npy", (source[name] / 255.0).astype(np.float32))
    for name in ("y_train", "y_test"):
        np.save(directory / f"{name}.npy", source[name])
    return directory


def test_float_images_train_and_a_killed_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = write_float_data(tmp_path / "floats")
    out = tmp_path / "run"
    real_fit = fnn.fit

    def killed_after_first_checkpoint(
        *args: Any, callbacks: list[Callable[[Any], None]], **kwargs: Any
    ) -> Any:
        def kill(event: Any) -> None:
            if event.kind == "epoch_end":
                raise KeyboardInterrupt

        return real_fit(*args, callbacks=[*callbacks, kill], **kwargs)

    argv = ("--data", str(own), "--out", str(out), "--epochs", "3", "--batch-size", "16")
    with monkeypatch.context() as patch:
        patch.setattr(cli_train, "fit", killed_after_first_checkpoint)
        status, _ = run("train", *argv, "--quiet")
    assert status == 130
    assert fnn.io.load(out / "checkpoints" / "last.npz").epoch == 1
    status, text = run("train", "--resume", str(out), "--quiet", "--no-plots")
    assert status == 0, text
    assert "resuming" in text
    assert json.loads((out / "run.json").read_text())["test"]["accuracy"] > 0.9


def test_resume_to_a_target_already_reached_finishes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path, "--stop-after", "2")  # 2 of 3 epochs
    message = error_of(capsys, "train", "--resume", str(tmp_path), "--stop-after", "2")
    assert "--stop-after 2 leaves nothing to train" in message
    status, text = run("train", "--resume", str(tmp_path), "--epochs", "2", "--quiet")
    assert status == 0, text
    assert "after epoch 2 of 2 (training complete)" in text
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["config"]["epochs"] == 2 and len(record["epochs"]) == 2
    assert record["params_sha256"] == fnn.tree.fingerprint(
        fnn.io.load(tmp_path / "checkpoints" / "last.npz").params
    )


@pytest.mark.parametrize("stop_after", [None, 2])
def test_resume_refuses_a_target_below_the_epochs_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stop_after: int | None
) -> None:
    """A run of 3 epochs, finished or stopped after 2: --resume --epochs 1 would rewrite
    its target below what it trained; refused, every file as it was."""
    train(tmp_path, *(() if stop_after is None else ("--stop-after", str(stop_after))))
    trained = stop_after or 3
    before = contents(tmp_path)
    message = error_of(capsys, "train", "--resume", str(tmp_path), "--epochs", "1")
    assert (
        f"--epochs 1 is below the {trained} epochs the run has trained; give --epochs "
        f"{trained} or more" in message
    )
    assert contents(tmp_path) == before
    record = json.loads((tmp_path / "run.json").read_text())
    record["config"]["epochs"] = 1  # a record edited by hand
    (tmp_path / "run.json").write_text(json.dumps(record))
    message = error_of(capsys, "train", "--resume", str(tmp_path))
    assert f"run.json, 1 epochs, is below the {trained} epochs the run has trained" in message


def test_an_empty_validation_part_is_refused_before_any_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "tiny"
    own.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 5), ("test", 3)):
        np.save(own / f"x_{name}.npy", rng.integers(0, 255, (n, 6, 6)).astype(np.uint8))
        np.save(own / f"y_{name}.npy", np.arange(n) % 2)
    out = tmp_path / "run"
    message = error_of(capsys, "train", "--data", str(own), "--out", str(out))
    assert "--validation-split 0.1 of 5 training images leaves no validation images" in message
    assert not out.exists()


def test_model_names_and_size_are_checked_before_the_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read the data before checking the configuration")

    monkeypatch.setattr(fnn.data, "load_dataset", no_data)
    assert "bogus" in error_of(capsys, "train", "--out", str(tmp_path), "--activation", "bogus")
    monkeypatch.setattr(fnn.runtime, "memory_limit", lambda: 2**30)
    message = error_of(capsys, "train", "--out", str(tmp_path), "--hidden", "100000")
    assert "79,500,010 parameters" in message and "the 1.0 GiB this process may use" in message


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: {**r, "config": {**r["config"], "lr": 10**400}}, "config entry 'lr'"),
        (lambda r: {**r, "data": "s"}, "changed since the run began"),
        (lambda r: {**r, "config": json.loads("[" * 100_000 + "]" * 100_000)}, "cannot read"),
    ],
)
def test_a_damaged_run_record_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[dict[str, Any]], dict[str, Any]],
    message: str,
) -> None:
    _, out = half_a_run_on_own_data(tmp_path)
    record = json.loads((out / "run.json").read_text())
    try:
        damaged = json.dumps(damage(record))
    except RecursionError:  # json cannot write what it cannot read: write it by hand
        damaged = json.dumps(record).replace('"config": {', '"config": ' + "[" * 100_000, 1)
    (out / "run.json").write_text(damaged)
    assert message in error_of(capsys, "train", "--resume", str(out))


def test_predict_takes_the_image_shape_from_the_model_file(tmp_path: Path) -> None:
    model = fnn.nn.mlp((16, 3))
    params = model.init(fnn.random.key(0), (8, 8))
    fnn.io.save_model(tmp_path / "small.npz", model, params, in_shape=(8, 8))  # no metadata
    assert fnn.io.load_in_shape(tmp_path / "small.npz") == (8, 8)
    np.save(tmp_path / "eights.npy", np.zeros((2, 8, 8), np.uint8))
    status, text = run("predict", str(tmp_path / "small.npz"), str(tmp_path / "eights.npy"))
    assert status == 0, text
    assert len(text.splitlines()) == 2
    fnn.io.save(tmp_path / "tree.npz", params)
    with pytest.raises(fnn.io.FormatError, match="holds a tree, not a model"):
        fnn.io.load_in_shape(tmp_path / "tree.npz")


# -- threads ----------------------------------------------------------------------------------


def test_fnn_train_splits_its_threads_between_shards_and_blas() -> None:
    four = FakeComm(0, 4, Channels())
    plans = [parallel.thread_plan(t, s, c) for t, s, c in
             [(1, 1, None), (2, 1, None), (2, 2, None), (4, 2, None), (3, 2, None),
              (2, 4, four), (2, 8, four)]]  # fmt: skip
    assert plans == [(1, 1), (1, 2), (2, 1), (2, 1), (2, 1), (1, 2), (2, 1)]
    with pytest.raises(cli.UsageError, match=r"--shards 1: shards must be a multiple of .*2"):
        cli.thread_plan(2, 1, FakeComm(0, 2, Channels()))
    with pytest.raises(cli.UsageError, match=r"on 2 processes give --shards 2 or a multiple"):
        cli.thread_plan(1, 1, FakeComm(0, 2, Channels()))
    with pytest.raises(cli.UsageError, match=r"resume it on a number of processes that divides"):
        cli.thread_plan(1, 1, FakeComm(0, 2, Channels()), resuming=True)  # shards are fixed


def test_a_refused_blas_thread_count_names_a_way_to_resume() -> None:
    """The --threads that gives the run's BLAS thread count under this process count, or,
    where none does (shards take the threads), the run's process count."""
    two = FakeComm(0, 2, Channels())
    begun_alone = {"blas_threads": 1, "threads": 2, "processes": 1}  # 2 shards on threads
    assert _conditions._threads_hint(begun_alone, 2, two) == " (--threads 1)"
    begun_on_two = {"blas_threads": 2, "threads": 2, "processes": 2}  # a shard each
    assert _conditions._threads_hint(begun_on_two, 2, two) == " (--threads 2)"
    hint = _conditions._threads_hint(begun_on_two, 2, None)
    assert "no --threads gives BLAS 2 threads: resume on the run's 2 processes" in hint


def test_an_interrupted_extension_resumes_to_its_recorded_target(tmp_path: Path) -> None:
    train(tmp_path)  # 3 epochs, complete
    status, _ = run("train", "--resume", str(tmp_path), "--epochs", "5", "--stop-after", "4",
                    "--quiet")  # fmt: skip
    assert status == 0  # stopped after 4 of its new 5
    assert json.loads((tmp_path / "run.json").read_text())["config"]["epochs"] == 5
    status, text = run("train", "--resume", str(tmp_path), "--quiet", "--no-plots")
    assert status == 0 and "after epoch 4 of 5" in text
    record = json.loads((tmp_path / "run.json").read_text())
    assert len(record["epochs"]) == 5
    straight = train(tmp_path / "straight", "--epochs", "5")
    assert record["params_sha256"] != straight["params_sha256"]  # its schedule spans 3, then 5


def test_a_dataset_of_one_class_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = write_own_data(tmp_path / "own", classes=1)
    (own / "classes.txt").unlink()  # the labels say how many classes: one
    message = error_of(capsys, "train", "--data", str(own), "--out", str(tmp_path / "run"))
    assert "the dataset has 1 class: a classifier needs at least 2" in message
    assert not (tmp_path / "run").exists()


def test_the_memory_check_counts_a_batchs_activations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fnn.runtime, "memory_limit", lambda: 600 * 2**20)
    message = error_of(capsys, "train", "--model", "cnn", "--batch-size", "4096",
                       "--out", str(tmp_path / "run"))  # fmt: skip
    assert "training the model on batches of 4096 takes about" in message
    assert "MiB of activations an example" in message and "--batch-size" in message
    assert not (tmp_path / "run").exists()
    status, _ = run("train", "--model", "cnn", "--batch-size", "16", "--epochs", "1",
                    "--out", str(tmp_path / "small"), "--quiet", "--no-plots")  # fmt: skip
    assert status == 0
