"""The scripts in examples/ run end to end on a small generated stand-in for the data.

``fnn.data.load_dataset`` is replaced by test_cli's ``synthetic`` dataset (600 train and
200 test images whose class sets a bright block), so no real dataset is needed; the text
examples read a few lines of a play from a file passed as ``--text``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from tests.support.optional import needs_matplotlib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import char_lstm
import classic_a_l2_sgd
import classic_b_sigmoid
import classic_c_keras_style
import classic_d_optimizers
import classic_e_he_init
import cnn
import from_scratch
import gpt_shakespeare
import lstm_rows
import resnet_small
import train_mlp

from tests.test_cli import synthetic


@pytest.fixture(autouse=True)
def fake_data(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every load_dataset call gets the synthetic data; the names asked for are kept."""
    asked: list[str] = []

    def load_dataset(name: str, **options: Any) -> fnn.data.Dataset:
        asked.append(name)
        return synthetic(name)

    monkeypatch.setattr(fnn.data, "load_dataset", load_dataset)
    return asked


def losses_fall(history: Any) -> bool:
    return bool(history[-1].loss < history[0].loss)


def test_train_mlp_matches_the_fnn_command(tmp_path: Path) -> None:
    fnn.runtime.set_blas_threads(1)  # as fnn train sets it: the bits depend on the threads
    result = train_mlp.main(["--epochs", "2", "--out", str(tmp_path / "script")])
    assert result["model"] == tmp_path / "script" / "model.npz" and result["model"].is_file()
    assert len(result["history"]) == 2 and losses_fall(result["history"])
    assert result["test_accuracy"] > 0.8
    model, params, _ = fnn.io.load_model(result["model"])
    assert fnn.tree.fingerprint(params) == result["params_sha256"]
    x_test = fnn.data.to_float(synthetic().x_test)
    test = fnn.evaluate(model, fnn.losses.softmax_cross_entropy, params, x_test, synthetic().y_test)
    assert test.accuracy == result["test_accuracy"]

    out = tmp_path / "command"
    argv = ["train", "--epochs", "2", "--out", str(out), "--quiet", "--no-plots"]
    assert fnn.cli.main(argv, out=sys.stdout) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["params_sha256"] == result["params_sha256"]  # the same run, bit for bit


def test_from_scratch_gradient_is_checked_and_trains(tmp_path: Path) -> None:
    result = from_scratch.main(["--epochs", "2", "--out", str(tmp_path)])
    assert result["max_rel_error"] < 1e-6
    assert result["vs_fnn_grad"] < 1e-12
    assert result["losses"][1] < result["losses"][0]
    assert result["test_accuracy"] > 0.8


def test_from_scratch_loss_and_grad_is_fnn_grad_of_the_mlp(key: fnn.random.Key) -> None:
    params = from_scratch.init(key, np.float64)
    x = fnn.random.uniform(fnn.random.fold_in(key, 1), (5, 28, 28), dtype=np.float64)
    y = np.array([0, 3, 9, 3, 1])
    value, grads = from_scratch.loss_and_grad(params, x, y)
    model = fnn.nn.mlp((128, 64, 10))
    expected_value, expected = fnn.value_and_grad(model, fnn.losses.softmax_cross_entropy)(
        from_scratch.as_mlp_params(params), x, y
    )
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert fnn.tree.allclose(grads, tuple(expected[1::2]), rtol=1e-10, atol=1e-14)


def test_classic_a_saves_loads_and_predicts_identically(tmp_path: Path) -> None:
    result = classic_a_l2_sgd.main(["--epochs", "3", "--out", str(tmp_path)])
    assert result["identical_after_load"] and (tmp_path / "model.npz").is_file()
    history = result["history"]
    assert len(history) == 3 and losses_fall(history)
    assert not np.isnan(history[-1].val_accuracy)  # 20% held out for validation
    probs = result["probabilities"]
    assert probs.shape == (200, 10) and np.allclose(probs.sum(axis=1), 1)
    assert result["test_accuracy"] > 0.2  # twice chance after 34 steps


@needs_matplotlib
def test_classic_b_compares_relu_and_sigmoid(tmp_path: Path, fake_data: list[str]) -> None:
    both = classic_b_sigmoid.main(["--epochs", "2", "--out", str(tmp_path), "--dataset", "mnist"])
    assert fake_data == ["mnist"]
    assert set(both) == {"relu", "sigmoid"} and (tmp_path / "losses.png").is_file()
    assert losses_fall(both["relu"]["history"]) and losses_fall(both["sigmoid"]["history"])
    assert both["relu"]["test_accuracy"] > both["sigmoid"]["test_accuracy"]
    argv = ["--epochs", "1", "--activation", "sigmoid", "--limit", "100", "--out", str(tmp_path)]
    assert set(classic_b_sigmoid.main(argv)) == {"sigmoid"}


def test_classic_c_shows_progress_and_saves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = classic_c_keras_style.main(["--out", str(tmp_path)])
    assert result["parameters"] == 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert len(result["history"]) == 3 and losses_fall(result["history"])
    assert result["test_accuracy"] > 0.8
    captured = capsys.readouterr()
    assert "epoch 3/3" in captured.err  # the progress bar
    assert "118282" in captured.out  # the summary's total
    model, _, _ = fnn.io.load_model(tmp_path / "model.npz")
    assert model.spec is not None
    names = [layer["layer"] for layer in model.spec["layers"]]
    assert names == ["flatten", "dense", "relu", "dense", "relu", "dense"]


@needs_matplotlib
def test_classic_d_compares_four_optimizers(tmp_path: Path) -> None:
    result = classic_d_optimizers.main(["--epochs", "2", "--out", str(tmp_path)])
    names = [row[0] for row in result["rows"]]
    assert names == ["sgd+momentum+decay", "adagrad", "rmsprop", "adam"]
    assert all(losses_fall(h) and len(h) == 2 for h in result["histories"].values())
    assert all(row[3] > 0.5 for row in result["rows"])  # test accuracy
    assert result["plot"] == tmp_path / "optimizers.png" and result["plot"].is_file()


@needs_matplotlib
def test_classic_e_plots_curves_and_confusion(tmp_path: Path) -> None:
    result = classic_e_he_init.main(["--epochs", "3", "--out", str(tmp_path), "--limit", "400"])
    matrix = result["confusion_matrix"]
    assert matrix.shape == (10, 10) and matrix.sum() == 200  # all 200 synthetic test images
    assert result["test_accuracy"] == np.trace(matrix) / 200
    assert result["test_accuracy"] > 0.8 and losses_fall(result["history"])
    assert result["plots"] == [tmp_path / "curves.png", tmp_path / "confusion.png"]
    assert all(path.is_file() for path in result["plots"])


def test_without_matplotlib_the_plots_are_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    argv = ["--epochs", "1", "--limit", "100", "--out", str(tmp_path)]
    assert classic_d_optimizers.main(argv)["plot"] is None
    result = classic_e_he_init.main(argv)
    assert result["plots"] == [None, None]
    assert result["confusion_matrix"].sum() == 100  # --limit 100: the first 100 test images
    assert capsys.readouterr().out.count("note: matplotlib is not installed") == 3
    assert list(tmp_path.iterdir()) == []


def test_missing_data_ends_with_the_loaders_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nowhere(name: str, **options: Any) -> fnn.data.Dataset:
        raise FileNotFoundError(f"{name}: looked in /nowhere")

    monkeypatch.setattr(fnn.data, "load_dataset", nowhere)
    with pytest.raises(SystemExit, match=r"(?s)mnist: looked in /nowhere.*--data-dir"):
        train_mlp.main(["--dataset", "mnist", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@needs_matplotlib
def test_cnn_trains_saves_and_compares_its_variants(tmp_path: Path) -> None:
    result = cnn.main(["--epochs", "2", "--out", str(tmp_path)])
    assert losses_fall(result["history"]) and result["test_accuracy"] > 0.5
    model, _, state = fnn.io.load_model(result["model"])
    assert state is None and model.output_shape((28, 28)) == (10,)
    compared = cnn.main(["--epochs", "1", "--limit", "300", "--out", str(tmp_path), "--compare"])
    assert list(compared["histories"]) == ["plain", "dropout", "batch norm", "both"]
    assert (tmp_path / "compare_loss.png").is_file()
    assert (tmp_path / "compare_accuracy.png").is_file()


def test_resnet_small_trains_and_saves_its_running_statistics(tmp_path: Path) -> None:
    result = resnet_small.main(["--epochs", "2", "--limit", "400", "--out", str(tmp_path)])
    assert losses_fall(result["history"])
    _, params, state = fnn.io.load_model(result["model"])
    assert state is not None and fnn.tree.size(params) == result["params"]


def test_lstm_rows_reads_images_row_by_row_and_saves(tmp_path: Path) -> None:
    argv = ["--epochs", "2", "--batch-size", "32", "--out", str(tmp_path)]
    result = lstm_rows.main(argv)  # 17 steps an epoch
    assert len(result["history"]) == 2 and losses_fall(result["history"])
    assert result["test_accuracy"] > 0.2  # twice chance after 34 steps
    model, params, state = fnn.io.load_model(result["model"])
    assert state is None and model.output_shape((28, 28)) == (10,)
    assert model.spec is not None
    assert [layer["layer"] for layer in model.spec["layers"]] == ["lstm", "dense"]
    assert isinstance(params[0], fnn.nn.LSTMParams) and params[0].w_hh.shape == (128, 512)


PLAY = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n\n"
)


@pytest.fixture
def play(tmp_path: Path) -> Path:
    """A stand-in for Tiny Shakespeare: 1,224 characters, 10% of them (123) enough for a
    validation window of the LSTM's 100 characters."""
    path = tmp_path / "play.txt"
    path.write_text(PLAY * 12, encoding="utf-8")
    return path


def trained(
    main: Callable[[list[str]], dict[str, Any]], out: Path, play: Path, prompt: str, length: int
) -> dict[str, Any]:
    """A text example's result after 4 updates in 2 intervals: the validation loss falls,
    and the text drawn continues the prompt by ``length`` characters of the play's."""
    result = main(["--text", str(play), "--steps", "4", "--eval-every", "2", "--out", str(out)])
    history = result["history"]
    assert len(history) == 2 and history[-1].val_loss == result["val_loss"] < history[0].val_loss
    sample = result["text"]
    assert sample.startswith(prompt) and len(sample) == len(prompt) + length
    assert set(sample) <= set(PLAY)
    return result


def command(*argv: str) -> str:
    out = io.StringIO()
    assert fnn.cli.main(list(argv), out=out) == 0
    return out.getvalue()


def test_gpt_shakespeare_trains_generates_and_its_file_serves_the_command(
    tmp_path: Path, play: Path
) -> None:
    result = trained(gpt_shakespeare.main, tmp_path, play, "ROMEO:", 500)
    sample = result["text"]
    path = result["model"]
    assert path == tmp_path / "model.npz" and fnn.io.load_in_shape(path) == (64,)
    assert fnn.io.load_input_dtype(path) == np.int64
    _, params, _ = fnn.io.load_model(path)
    assert fnn.tree.fingerprint(params) == result["params_sha256"]
    blocks = 4 * (12 * 128 * 128 + 2 * 128)  # 4 blocks of 128 without biases; tied output
    assert fnn.tree.size(params) == len(set(PLAY)) * 128 + 64 * 128 + blocks + 128
    assert f"validation loss {result['val_loss']:.4f}" in command("evaluate", str(path))
    drawn = ("--length", "500", "--temperature", "0.8", "--top-k", "200", "--seed", "0")
    assert command("generate", str(path), "--prompt", "ROMEO:", *drawn) == sample + "\n"


def test_char_lstm_trains_and_generates_one_step_at_a_time(tmp_path: Path, play: Path) -> None:
    result = trained(char_lstm.main, tmp_path, play, "JULIET:", 300)
    sample = result["text"]
    model, params, _ = fnn.io.load_model(result["model"])
    assert model.spec is not None
    assert [layer["layer"] for layer in model.spec["layers"]] == ["embedding", "lstm", "dense"]
    text = fnn.data.load_text(play)
    prompt = text.encode("JULIET:")
    ids = fnn.generate(model, params, prompt, 300, key=fnn.random.key(0), temperature=0.8)
    assert "JULIET:" + text.decode(ids) == sample  # the saved model draws the same text
    assert fnn.io.load_in_shape(result["model"]) == (100,)
    assert f"validation loss {result['val_loss']:.4f}" in command("evaluate", str(tmp_path))


def test_the_text_examples_look_in_shared_data_for_a_known_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []

    def nowhere(source: str, **options: Any) -> fnn.data.Text:
        asked.append((source, options.get("data_dir")))
        raise FileNotFoundError(f"{source}: looked in /nowhere")

    monkeypatch.setattr(fnn.data, "load_text", nowhere)
    out = str(tmp_path / "out")
    for shared in (tmp_path, tmp_path / "missing"):  # ../shared/data there, and not
        monkeypatch.setattr(gpt_shakespeare, "SHARED_DATA", shared)
        with pytest.raises(
            SystemExit, match=r"(?s)tinyshakespeare: looked in /nowhere.*--data-dir"
        ):
            char_lstm.main(["--out", out])
    with pytest.raises(SystemExit):
        gpt_shakespeare.main(["--text", "play.txt", "--out", out])  # a path: no data_dir
    with pytest.raises(SystemExit):
        gpt_shakespeare.main(["--data-dir", "texts", "--out", out])
    assert asked == [
        ("tinyshakespeare", tmp_path),
        ("tinyshakespeare", None),
        ("play.txt", None),
        ("tinyshakespeare", Path("texts")),
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (train_mlp.main, ["--limit", "-5"], "argument --limit: expected an integer >= 20, got -5"),
        (train_mlp.main, ["--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
        (char_lstm.main, ["--steps", "0"], "argument --steps: expected an integer >= 1, got 0"),
        (char_lstm.main, ["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
        (lstm_rows.main, ["--features", "x"], "argument --features: expected an integer"),
    ],
)
def test_bad_counts_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture[str],
    main: Callable[[list[str]], Any],
    argv: list[str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_text_too_short_and_an_unwritable_out_end_in_one_line(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("too short\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="too few for windows of 101"):  # its context: 100
        char_lstm.main(["--text", str(short), "--out", str(tmp_path / "out")])
    short.write_text("xy" * 350, encoding="utf-8")  # enough for the GPT's 65, not for 101
    with pytest.raises(SystemExit, match="700 characters, too few for windows of 101"):
        char_lstm.main(["--text", str(short), "--out", str(tmp_path / "out")])
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match="Not a directory"):
        train_mlp.main(["--limit", "100", "--epochs", "1", "--out", str(tmp_path / "file" / "x")])
