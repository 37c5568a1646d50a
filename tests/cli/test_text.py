"""fnn train on a text (a language model), fnn evaluate of its run and fnn generate:
training by steps, resume bit for bit, the validation loss recomputed from the model
file, generation repeatable by seed, and the options that do not apply refused."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import cli

SHARED_TEXT = Path(__file__).resolve().parents[2].parent / "shared" / "data"

TINY = (
    "--layers", "1", "--heads", "2", "--features", "16", "--context", "16",
    "--batch-size", "4", "--warmup", "2", "--quiet", "--no-plots",
)  # fmt: skip


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(list(argv), out=out)
    return status, out.getvalue()


@pytest.fixture
def text(tmp_path: Path) -> Path:
    """A small text whose next character follows from the last few."""
    path = tmp_path / "verse.txt"
    line = "the cat sat on the mat; the dog lay by the log.\n"
    path.write_text(line * 120, encoding="utf-8")
    return path


def train(out: Path, text: Path, *extra: str) -> dict[str, Any]:
    status, printed = run(
        "train", "--model", "gpt", "--text", str(text), "--steps", "30", "--eval-every", "10",
        "--out", str(out), *TINY, *extra,
    )  # fmt: skip
    assert status == 0, printed
    record: dict[str, Any] = json.loads((out / "run.json").read_text())
    return record


def test_a_language_model_trains_evaluates_and_generates(tmp_path: Path, text: Path) -> None:
    record = train(tmp_path / "run", text)
    assert record["config"]["steps"] == 30 and "epochs" not in record["config"]
    history = record["epochs"]
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
    found = record["validation"]
    assert found["bits_per_character"] == pytest.approx(found["loss"] / np.log(2))
    model_file = tmp_path / "run" / "model.npz"
    assert fnn.io.load_input_dtype(model_file) == np.int64
    status, printed = run("evaluate", str(tmp_path / "run"))
    assert status == 0 and f"validation loss {found['loss']:.4f}" in printed
    args = ("generate", str(tmp_path / "run"), "--prompt", "the ", "--length", "40", "--seed", "3")
    status, first = run(*args)
    assert status == 0 and first.startswith("the ") and len(first) == len("the ") + 40 + 1
    assert run(*args)[1] == first  # the same seed, the same text
    assert run(*args[:-1], "4")[1] != first


def test_a_run_stopped_after_an_interval_resumes_to_the_same_bits(
    tmp_path: Path, text: Path
) -> None:
    whole = train(tmp_path / "whole", text)
    train(tmp_path / "parts", text, "--stop-after", "1")
    status, printed = run("train", "--resume", str(tmp_path / "parts"), "--quiet", "--no-plots")
    assert status == 0, printed
    resumed = json.loads((tmp_path / "parts" / "run.json").read_text())
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["validation"] == whole["validation"]


def test_a_finished_or_stopped_run_extends_to_more_steps(tmp_path: Path, text: Path) -> None:
    """``--resume RUN --steps N`` extends a language model's run as ``--epochs N`` does a
    classifier's (the checkpoint's config names the old target: that is no mismatch)."""
    train(tmp_path / "done", text)  # 30 steps, finished
    status, printed = run("train", "--resume", str(tmp_path / "done"), "--steps", "50",
                          "--quiet", "--no-plots")  # fmt: skip
    assert status == 0, printed
    record = json.loads((tmp_path / "done" / "run.json").read_text())
    assert record["config"]["steps"] == 50 and len(record["epochs"]) == 5
    train(tmp_path / "stopped", text, "--stop-after", "1")
    status, printed = run("train", "--resume", str(tmp_path / "stopped"), "--steps", "40",
                          "--quiet", "--no-plots")  # fmt: skip
    assert status == 0, printed
    record = json.loads((tmp_path / "stopped" / "run.json").read_text())
    assert record["config"]["steps"] == 40 and len(record["epochs"]) == 4


def test_a_run_that_ended_on_a_short_interval_is_not_extended(
    tmp_path: Path, text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """25 updates in intervals of 10 end on a short one, which intervals of 10 cannot
    continue: --resume with more --steps is refused in one line (a ValueError traceback
    from fit_steps before), and nothing is written."""
    train(tmp_path / "short", text, "--steps", "25")
    before = (tmp_path / "short" / "run.json").read_bytes()
    capsys.readouterr()
    status, _ = run("train", "--resume", str(tmp_path / "short"), "--steps", "40",
                    "--quiet", "--no-plots")  # fmt: skip
    error = capsys.readouterr().err
    assert status == 2 and "the run ended on a short interval (25 updates" in error, error
    assert "Traceback" not in error
    assert (tmp_path / "short" / "run.json").read_bytes() == before


def test_threads_train_the_gpt_recipe_on_shards(tmp_path: Path, text: Path) -> None:
    """The gpt recipe trains on shards on threads: --threads 2 without --shards is
    --shards 2 --threads 2 (one BLAS thread), recorded as such, with the bits of --shards 2
    on one thread; a run begun so resumes on one thread to the same bits; --shards 1
    --threads 2 keeps one shard and gives the threads to BLAS."""
    assert fnn.recipes.recipe("gpt").shards_on_threads
    assert not fnn.recipes.recipe("mlp").shards_on_threads
    threaded = train(tmp_path / "threaded", text, "--threads", "2")
    assert threaded["config"]["shards"] == 2
    conditions = threaded["conditions"]
    assert (conditions["shards"], conditions["threads"], conditions["blas_threads"]) == (2, 2, 1)
    one_thread = train(tmp_path / "one", text, "--shards", "2")
    assert one_thread["params_sha256"] == threaded["params_sha256"]
    train(tmp_path / "parts", text, "--threads", "2", "--stop-after", "1")
    status, printed = run("train", "--resume", str(tmp_path / "parts"), "--quiet", "--no-plots")
    assert status == 0, printed
    resumed = json.loads((tmp_path / "parts" / "run.json").read_text())
    assert resumed["params_sha256"] == threaded["params_sha256"]
    blas = train(tmp_path / "blas", text, "--threads", "2", "--shards", "1")
    assert blas["config"]["shards"] == 1 and blas["conditions"]["blas_threads"] == 2


def _one_layer(data: fnn.data.DataInfo) -> fnn.nn.Layer[Any, Any]:
    """A recipe's model: one dense layer."""
    return fnn.nn.mlp((data.num_classes,))


@pytest.fixture
def own_recipes() -> Iterator[None]:
    """Two recipes of the tests that train on shards on threads, one naming its own
    shard count: registered for one test only (a listing of the recipes, as the doctest of
    fnn/recipes.py makes, must not see them; the registry has no public removal)."""
    fnn.recipes.register("threads_as_shards_test", shards_on_threads=True, lr=0.1, epochs=1)(
        _one_layer
    )
    fnn.recipes.register(
        "own_shards_test", shards_on_threads=True, shards=3, lr=0.1, epochs=1, batch_size=30
    )(_one_layer)
    try:
        yield
    finally:
        for name in ("threads_as_shards_test", "own_shards_test"):
            fnn.recipes._RECIPES._items.pop(name, None)


def shards_for(*argv: str, alone: bool = False) -> int:
    """The shard count ``fnn train ARGV`` would record (nothing run)."""
    args = cli._parser().parse_args(["train", *argv])
    if alone:
        args.alone = True
    return int(cli._config_from_args(args).general["shards"])


def test_the_threads_plan_of_a_recipe_where_it_applies(
    monkeypatch: pytest.MonkeyPatch, own_recipes: None
) -> None:
    """--threads T is T shards for a recipe that asks for it (a user's too), at most the
    batch size, not where --shards is given or the recipe names its own count, nor for a
    model that keeps state, nor on one of the processes of an mpirun job; a run of a
    sweep under mpirun is alone on its process and takes it (as the same fnn train run
    alone would)."""
    recipe = ("--model", "threads_as_shards_test", "--batch-size", "8")
    assert shards_for(*recipe) == 1
    assert shards_for(*recipe, "--threads", "3") == 3
    assert shards_for(*recipe, "--threads", "20") == 8  # at most the batch size
    assert shards_for(*recipe, "--threads", "3", "--shards", "2") == 2
    assert shards_for("--model", "own_shards_test", "--threads", "2") == 3
    assert shards_for("--model", "mlp", "--threads", "2") == 1
    # the CNN trains on shards too, but not with batch norm, whose statistics shards
    # would take per shard
    assert fnn.recipes.recipe("cnn").shards_on_threads
    assert shards_for("--model", "cnn", "--threads", "2") == 2
    assert shards_for("--model", "cnn", "--threads", "2", "--batch-norm") == 1
    own_data = ("--model", "cnn", "--data", str(Path.cwd()), "--threads", "2")
    assert shards_for(*own_data) == 1  # data not known before it is read: as stateful
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # as mpirun -n 2 starts a process
    assert shards_for(*recipe, "--threads", "3") == 1
    assert shards_for(*recipe, "--threads", "3", alone=True) == 3
    # what fnn sweep checks of each setting is what its run, alone, trains
    checked = cli._sweep.checked_config([*recipe, "--threads", "3"], {"lr": "0.5"})
    assert checked.general["shards"] == 3 and checked.general["lr"] == 0.5


def test_a_bad_batch_size_with_threads_is_named_alone(
    tmp_path: Path, text: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch-size 0 with --threads 2: the error names the batch size, not a shard count
    the command line never gave."""
    status, _ = run(
        "train", "--model", "gpt", "--text", str(text), "--steps", "30", "--out",
        str(tmp_path / "run"), *TINY, "--batch-size", "0", "--threads", "2",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "batch_size must be >= 1, got 0" in err and "--shards" not in err


def test_a_recipe_refuses_a_shards_on_threads_that_is_not_a_bool() -> None:
    def build(data: fnn.data.DataInfo) -> fnn.nn.Layer[Any, Any]:
        return fnn.nn.mlp((data.num_classes,))

    with pytest.raises(TypeError, match="shards_on_threads must be True or False, got 'yes'"):
        fnn.recipes.register("never_registered", shards_on_threads="yes")(build)  # type: ignore[arg-type]
    assert "never_registered" not in fnn.recipes.RECIPES


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--epochs", "3"), "--epochs applies to a classifier's runs only"),
        (("--dataset", "mnist"), "--dataset applies to a classifier's runs only"),
        (("--model", "mlp"), "--context applies to --model gpt, not to --model mlp"),
        (
            ("--warmup", "40"),
            "--warmup 40 must be fewer than the run's 30 updates \\(--steps 30\\)",
        ),
        (("--eval-every", "0"), "eval_every must be >= 1"),
        (("--min-lr", "-1"), "min_lr must be a finite number >= 0, got -1.0"),
        (("--steps", "100000000000000000000"), "steps must fit in 64 bits"),
    ],
)
def test_options_that_do_not_apply_are_refused_first(
    tmp_path: Path,
    text: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    status, _ = run(
        "train", "--model", "gpt", "--text", str(text), "--steps", "30", "--out",
        str(tmp_path / "run"), *TINY, *extra,
    )  # fmt: skip
    assert status == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_a_classifier_does_not_read_text(tmp_path: Path, text: Path, capsys: Any) -> None:
    status, _ = run("train", "--text", str(text), "--out", str(tmp_path / "run"))
    assert status == 2
    assert "--text: --model mlp is not a language model" in capsys.readouterr().err


def test_a_changed_text_is_not_resumed(tmp_path: Path, text: Path, capsys: Any) -> None:
    train(tmp_path / "run", text, "--stop-after", "1")
    text.write_text(text.read_text() + "one more line\n", encoding="utf-8")
    status, _ = run("train", "--resume", str(tmp_path / "run"), "--quiet")
    assert status == 2 and "changed since the run began" in capsys.readouterr().err


def test_generate_refuses_what_the_model_cannot_read(
    tmp_path: Path, text: Path, capsys: Any
) -> None:
    train(tmp_path / "run", text)
    status, _ = run("generate", str(tmp_path / "run"), "--prompt", "Q")
    assert status == 2 and "no character 'Q' in its vocabulary" in capsys.readouterr().err
    status, _ = run("generate", str(tmp_path / "run"), "--length", "0")
    assert status == 2 and "length must be >= 1" in capsys.readouterr().err


@pytest.mark.skipif(
    not (SHARED_TEXT / "tinyshakespeare.txt").is_file(), reason="../shared/data not beside the repo"
)
def test_tiny_shakespeare_by_name(tmp_path: Path) -> None:
    status, printed = run(
        "train", "--model", "gpt", "--data-dir", str(SHARED_TEXT), "--steps", "4",
        "--eval-every", "4", "--validation-split", "0.005", "--out", str(tmp_path / "run"), *TINY,
    )  # fmt: skip
    assert status == 0, printed
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["data"]["sha256"].startswith("86c4e6aa9db7c042")
    assert fnn.io.load_metadata(tmp_path / "run" / "model.npz")["chars"][:3] == "\n !"


def test_predict_points_a_language_model_to_generate(
    tmp_path: Path, text: Path, capsys: Any
) -> None:
    train(tmp_path / "run", text)
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((1, 28, 28), np.uint8))
    status, _ = run("predict", str(tmp_path / "run"), str(image))
    assert status == 2 and "is a language model" in capsys.readouterr().err


def test_generate_gives_a_recurrent_model_no_window(tmp_path: Path) -> None:
    """A model that takes sequences of any length (an LSTM) is not cut to the length it
    was saved for: fnn generate draws what fnn.generate draws without a context."""
    chars = "abcdefg"
    model = fnn.nn.serial(fnn.nn.embedding(7, 8), fnn.nn.lstm(16), fnn.nn.dense(7))
    params = model.init(fnn.random.key(0), (4,))
    meta = {"text": "x", "chars": chars}
    fnn.io.save_model(tmp_path / "lstm.npz", model, params, in_shape=(4,), metadata=meta)
    status, printed = run(
        "generate", str(tmp_path / "lstm.npz"), "--prompt", "abc", "--length", "30"
    )
    assert status == 0
    ids = fnn.generate(model, params, np.array([0, 1, 2]), 30, key=fnn.random.key(0))
    assert printed == "abc" + "".join(chars[i] for i in ids) + "\n"
