"""Callbacks (fnn/callbacks.py): checkpoints of the last and best states and resuming from
them in a new process, the progress bar, epoch logs, epoch times and the history table."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import callbacks, losses, nn, optim, random, tree
from tests.support.data import blobs
from tests.support.models import fit_mlp
from tests.support.optional import needs_tqdm


def data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    k1, k2 = random.split(random.key(7))
    y = random.permutation(k1, 200) % 3
    centres = np.array([[1.5, 0, 0], [0, 1.5, 0], [0, 0, 1.5]], np.float32)
    return centres[y] + random.normal(k2, (200, 3)), y


def train(epochs: int, hooks: list[fnn.Callback], state: Any = None) -> fnn.TrainState[Any, Any]:
    x, y = data()
    return fnn.fit(
        nn.mlp((8, 3)),
        losses.softmax_cross_entropy,
        optim.adam(0.01),
        x,
        y,
        key=random.key(1),
        epochs=epochs,
        batch_size=16,
        validation_split=0.25,
        state=state,
        callbacks=hooks,
    )


def test_last_and_best_checkpoints(tmp_path: Path) -> None:
    final = train(6, [callbacks.checkpoint(tmp_path, keep_best=2)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "last.npz" in names
    best = [n for n in names if n.startswith("best-")]
    assert len(best) == 2
    losses_by_epoch = {r.epoch: r.val_loss for r in final.history}
    best_epochs = sorted(losses_by_epoch, key=lambda e: losses_by_epoch[e])[:2]
    assert sorted(best) == sorted(f"best-epoch{e:04d}.npz" for e in best_epochs)
    last = fnn.load(tmp_path / "last.npz")
    assert isinstance(last, fnn.TrainState)
    assert tree.equal(last, final)
    assert fnn.io.load_metadata(tmp_path / "last.npz")["epoch"] == 5


def test_checkpoint_metadata_may_be_a_function_of_the_event(tmp_path: Path) -> None:
    """Metadata that changes from epoch to epoch goes with the state it describes."""
    save = callbacks.checkpoint(tmp_path, metadata=lambda event: {"seen": event.state.step})
    final = train(2, [save])
    meta = fnn.io.load_metadata(tmp_path / "last.npz")
    assert meta["seen"] == final.step and meta["epoch"] == 1
    clash = callbacks.checkpoint(tmp_path / "clash", metadata=lambda event: {"epoch": 0})
    with pytest.raises(ValueError, match=r"must not set the callback's own keys \['epoch'\]"):
        train(1, [clash])
    with pytest.raises(ValueError, match="must not set the callback's own keys"):
        callbacks.checkpoint(tmp_path, metadata={"value": 1})


def test_resume_in_a_new_process_is_bit_identical(tmp_path: Path) -> None:
    whole = train(5, [])
    train(2, [callbacks.checkpoint(tmp_path)])
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        import fnn
        from tests.test_callbacks import train
        state = fnn.load({str(tmp_path / "last.npz")!r})
        final = train(5, [], state=state)
        fnn.save({str(tmp_path / "final.npz")!r}, final)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    resumed = fnn.load(tmp_path / "final.npz")
    assert tree.equal(resumed, whole)
    assert tree.fingerprint(resumed.params) == tree.fingerprint(whole.params)


@pytest.mark.parametrize("use_tqdm", [False, pytest.param(True, marks=needs_tqdm)])
def test_progress_bar_shows_loss_accuracy_and_speed(key: random.Key, use_tqdm: bool) -> None:
    x, y = blobs(key, n=64)
    out = io.StringIO()
    fit_mlp(
        optim.sgd(0.1),
        x,
        y,
        key=key,
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        callbacks=[callbacks.progress_bar(stream=out, use_tqdm=use_tqdm, min_interval=0.0)],
    )
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text
    assert "loss" in text and "acc" in text and "val_loss" in text
    final = text.replace("\r", "\n").strip().splitlines()[-1]  # the bar as the epoch left it
    assert "samples/s" in final and "val_loss" in final, final  # tqdm's dropped samples/s
    if not use_tqdm:
        assert "3/3" in text


def test_log_epochs_writes_one_line_per_epoch(key: random.Key) -> None:
    x, y = blobs(key, n=40)
    lines: list[str] = []
    fit_mlp(
        optim.sgd(0.1),
        x,
        y,
        key=key,
        epochs=3,
        callbacks=[callbacks.log_epochs(lines.append)],
    )
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3 loss ") and " acc " in lines[0]


def test_epoch_times_and_history_table(key: random.Key) -> None:
    x, y = blobs(key, n=40)
    times = callbacks.EpochTimes()
    assert math.isnan(times.mean)
    state = fit_mlp(optim.sgd(0.1), x, y, key=key, epochs=2, callbacks=[times])
    assert sorted(times.seconds) == [0, 1] and times.mean > 0
    table = callbacks.history_table(state.history, times.seconds).splitlines()
    assert table[0].split() == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert len(table) == 3 and table[1].split()[0] == "1" and table[1].split()[3] == "-"
    assert callbacks.history_table(state.history).splitlines()[2].split()[-1] == "-"


def test_a_checkpoint_watching_a_metric_not_measured_is_saved(tmp_path: Path) -> None:
    """An accuracy under a loss without class labels is NaN, which JSON cannot hold: the
    checkpoint records None for it and is written (fit died after its first epoch)."""
    x, _ = data()
    targets = x[:, :2].astype(np.float32)
    save = callbacks.checkpoint(tmp_path, keep_best=1, monitor="accuracy")
    fnn.fit(nn.mlp((4, 2)), losses.mean_squared_error, optim.sgd(0.01), x, targets,
            key=random.key(0), epochs=2, callbacks=[save])  # fmt: skip
    meta = fnn.io.load_metadata(tmp_path / "last.npz")
    assert meta["value"] is None and meta["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]
