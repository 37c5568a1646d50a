"""Summaries of run directories (fnn/experiments/_summary.py): grouping by the options
that differ, mean ± sample standard deviation and counts over seeds, the text, Markdown
and CSV tables, and runs made by hand with parts missing."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fnn import experiments
from fnn.experiments import SweepError


def write_run(directory: Path, record: dict[str, Any]) -> Path:
    directory.mkdir(parents=True)
    (directory / "run.json").write_text(json.dumps(record))
    return directory


def record(optimizer: str, seed: int, accuracy: float, **extra: Any) -> dict[str, Any]:
    config = {"optimizer": optimizer, "lr": 0.01, "seed": seed, **extra}
    return {
        "config": config,
        "seed": seed,
        "test": {"accuracy": accuracy, "loss": 1 - accuracy},
        "epochs": [
            {"epoch": 0, "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6},
            {"epoch": 1, "loss": 0.8, "accuracy": 0.6, "val_loss": 0.95, "val_accuracy": 0.7},
        ],
        "timing": {"wall_seconds": 2.0 + seed},
    }


def test_runs_grouped_by_the_options_that_differ(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed, acc in enumerate([0.8, 0.9, 0.85]):
        write_run(sweep / f"adam{seed}", record("adam", seed, acc, b1=0.9))
    for seed, acc in enumerate([0.7, 0.75]):
        write_run(sweep / f"sgd{seed}", record("sgd", seed, acc, momentum=0.9))
    hand = write_run(tmp_path / "mine", {"config": {"optimizer": "sgd", "lr": 0.1}})
    summary = experiments.summarize(experiments.find_runs([sweep, hand]))
    assert summary.differing == ("optimizer", "lr")  # not b1, momentum: one value each
    adam, sgd, mine = summary.settings
    assert adam.options == {"optimizer": "adam", "lr": 0.01} and adam.seeds == (0, 1, 2)
    stat = adam.stats["test_accuracy"]
    assert stat.count == 3 and stat.mean == pytest.approx(0.85)
    assert stat.std == pytest.approx(0.05)  # the sample standard deviation (ddof=1)
    assert adam.stats["best_val_accuracy"].mean == pytest.approx(0.7)
    assert adam.stats["best_val_loss"].mean == pytest.approx(0.9)
    assert adam.stats["seconds"].mean == 3.0
    assert sgd.stats["test_loss"].mean == pytest.approx(0.275)
    assert mine.seeds == (None,) and mine.stats["test_accuracy"].count == 0
    assert math.isnan(mine.stats["test_accuracy"].mean)
    text = experiments.table(summary)
    assert text.splitlines()[0].split() == [
        "optimizer", "lr", "runs", "test", "accuracy", "test", "loss", "best", "val",
        "accuracy", "best", "val", "loss", "seconds",
    ]  # fmt: skip
    assert "adam       0.01  3     0.8500 ± 0.0500" in text
    assert text.splitlines()[-1].split()[:3] == ["sgd", "0.1", "1"]
    assert text.splitlines()[-1].split()[3:] == ["-"] * 5
    markdown = experiments.markdown_table(summary).splitlines()
    assert markdown[0].startswith("| optimizer | lr | runs | test accuracy |")
    assert markdown[2].startswith("| adam | 0.01 | 3 | 0.8500 ± 0.0500 |")
    experiments.write_csv(summary, tmp_path / "s.csv")
    with (tmp_path / "s.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["optimizer"] == "adam" and rows[0]["seeds"] == "0 1 2"
    assert float(rows[0]["test_accuracy_std"]) == pytest.approx(0.05)
    assert rows[1]["test_accuracy_count"] == "2" and rows[2]["test_accuracy_mean"] == ""


def test_one_setting_and_one_seed(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", record("adam", 0, 0.8))
    summary = experiments.summarize(experiments.find_runs([run]))
    assert summary.differing == () and summary.settings[0].label == "all runs"
    assert "0.8000" in experiments.table(summary)
    assert "±" not in experiments.table(summary)  # one seed: no deviation to show


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="is not a directory"):
        experiments.find_runs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SweepError, match=r"holds no run\.json"):
        experiments.find_runs([tmp_path / "empty"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("[1]")
    with pytest.raises(SweepError, match="does not hold a run record"):
        experiments.find_runs([tmp_path / "bad"])
    with pytest.raises(ValueError, match="at least one run"):
        experiments.summarize([])
