"""Checkpoints on disk: the last and best states, and resuming from them in a new process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

import fnn
from fnn import callbacks, losses, nn, optim, random, tree


def data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    k1, k2 = random.split(random.key(7))
    y = random.permutation(k1, 200) % 3
    centres = np.array([[1.5, 0, 0], [0, 1.5, 0], [0, 0, 1.5]], np.float32)
    return centres[y] + random.normal(k2, (200, 3)), y


def train(epochs: int, hooks: list[fnn.Callback], state: Any = None) -> fnn.TrainState[Any]:
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


def test_resume_in_a_new_process_is_bit_identical(tmp_path: Path) -> None:
    whole = train(5, [])
    train(2, [callbacks.checkpoint(tmp_path)])
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import fnn
        from test_callbacks_checkpoint import train
        state = fnn.load({str(tmp_path / "last.npz")!r})
        final = train(5, [], state=state)
        fnn.save({str(tmp_path / "final.npz")!r}, final)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    resumed = fnn.load(tmp_path / "final.npz")
    assert tree.equal(resumed, whole)
    assert tree.fingerprint(resumed.params) == tree.fingerprint(whole.params)
