"""``fnn train --limit N`` (the first N training images) and ``--log-every K`` (the mean
training loss of every K updates in run.json's ``steps``, kept across a resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fnn
from tests.test_cli import error_of, fake_data, resume, synthetic, train

__all__ = ["fake_data"]


def test_limit_trains_on_the_first_n_images(tmp_path: Path) -> None:
    record = train(tmp_path / "a", "--limit", "100", "--epochs", "1", "--log-every", "1")
    # 90 fit images (10 held out) in batches of 32: 3 updates
    losses = record["steps"]["loss"]
    assert [s for s, _ in losses] == [1, 2, 3]
    # each record a batch's loss: weighted by the batches' sizes, the epoch's loss
    mean = (32 * losses[0][1] + 32 * losses[1][1] + 26 * losses[2][1]) / 90
    assert mean == pytest.approx(record["epochs"][0]["loss"], rel=1e-12)
    assert record["config"]["limit"] == 100
    # the same run on a dataset cut by hand to its first 100 images: the same bits
    whole = synthetic()
    cut = fnn.data.Dataset(
        whole.name, whole.x_train[:100], whole.y_train[:100], whole.x_test, whole.y_test,
        whole.directory, whole.files, whole.sha256, num_classes=10, classes=whole.classes,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fnn.data, "load_dataset", lambda name, **kwargs: cut)
        alone = train(tmp_path / "b", "--epochs", "1")
    assert alone["params_sha256"] == record["params_sha256"]
    assert "limit" not in alone["config"] and "log_every" not in alone["config"]


def test_limit_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = error_of(capsys, "train", "--out", str(tmp_path / "x"), "--limit", "601")
    assert "--limit 601 is more than the 600 training images" in text
    assert "--limit: limit must be >= 1, got 0" in error_of(capsys, "train", "--limit", "0")
    text = error_of(capsys, "train", "--text", "x.txt", "--model", "gpt", "--limit", "5")
    assert "--limit applies to a classifier's runs only" in text
    assert not (tmp_path / "x").exists()


def test_step_losses_are_the_batches_mean_and_survive_a_resume(tmp_path: Path) -> None:
    whole = train(tmp_path / "whole", "--log-every", "4", "--validation-split", "0")
    steps = whole["steps"]
    assert steps["every"] == 4
    # 600 images in batches of 32: 19 updates an epoch, 57 in all; records at 4, 8, ...
    assert [s for s, _ in steps["loss"]] == list(range(4, 58, 4))
    means = [loss for _, loss in steps["loss"]]
    assert all(np.isfinite(means)) and means[-1] < means[0]
    half = train(tmp_path / "half", "--log-every", "4", "--validation-split", "0",
                 "--stop-after", "1")  # fmt: skip
    assert half["epochs"][-1]["epoch"] == 0
    kept = json.loads((tmp_path / "half" / "checkpoints" / "steps.json").read_text())
    assert kept == [[s, v] for s, v in steps["loss"] if s <= 19]
    done = resume(tmp_path / "half")
    assert done["steps"] == steps and done["params_sha256"] == whole["params_sha256"]
    assert half["config"] == whole["config"]
