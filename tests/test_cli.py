"""The fnn command, run in-process on a small synthetic stand-in for Fashion-MNIST."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import cli, random


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
        classes=fnn.data.DATASETS[name].classes,
    )


@pytest.fixture(autouse=True)
def fake_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_load_data", lambda name, data_dir, no_download: synthetic(name))


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
    status, text = run("train", "--resume", str(tmp_path / "part"), "--quiet")
    assert status == 0, text
    assert "resuming" in text
    resumed = json.loads((tmp_path / "part" / "run.json").read_text())
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["epochs"] == whole["epochs"]
    assert resumed["config"] == whole["config"]


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
    status, text = run("train", "--resume", str(tmp_path / "part"), "--quiet", "--threads", "1")
    assert status == 0, text
    resumed = json.loads((tmp_path / "part" / "run.json").read_text())
    assert resumed["params_sha256"] == one["params_sha256"]
    train(tmp_path / "blas", "--threads", "2")  # one shard: both threads go to BLAS
    assert blas[-1] == 2
    real(1)


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
    import user_layers

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
        == fnn.cli.build_model(fnn.cli.Config(model="cnn", batch_norm=True, dropout=0.25)).spec
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
    status, text = run("train", "--resume", str(tmp_path / "part"), "--quiet")
    assert status == 0, text
    resumed = json.loads((tmp_path / "part" / "run.json").read_text())
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
        (("--padding", "valid"), "--padding applies to --model cnn"),
        (("--augment", "rotate"), "expected none or a list of flip, shift, got 'rotate'"),
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
