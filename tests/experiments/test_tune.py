"""``fnn.experiments.tune`` (fnn/experiments/_tune.py): an Optuna study in the search's
directory, its trials shared out among workers, failed trials marked and run again, a
study whose worker was killed going on where it stopped; the search space's parsing."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from fnn import experiments
from tests.support.optional import needs_optuna


@needs_optuna
def test_trials_are_shared_out_and_failures_run_again(tmp_path: Path) -> None:
    space = experiments.parse_param("x=-2..2", "float")

    def objective(trial: Any) -> float:
        x = space.suggest(trial)
        if trial.number == 1:
            raise experiments.TrialFailedError("on purpose")
        return float(x * x)

    study = experiments.tune(objective, directory=tmp_path, trials=4, direction="minimize",
                             workers=2, sampler_name="random")  # fmt: skip
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"]
    assert (tmp_path / "study.db").is_file()
    study = experiments.tune(objective, directory=tmp_path, trials=4, direction="minimize")
    assert sorted(t.state.name for t in study.trials).count("COMPLETE") == 4
    with pytest.raises(ValueError, match="is to minimize, not maximize"):
        experiments.tune(objective, directory=tmp_path, trials=5, direction="maximize")
    with pytest.raises(ValueError, match="unknown pruner 'sometimes'"):
        experiments.tune(objective, directory=tmp_path, trials=5, direction="minimize",
                         pruner_name="sometimes")  # fmt: skip


@needs_optuna
def test_the_directory_may_be_a_str(tmp_path: Path) -> None:
    def objective(trial: Any) -> float:
        return float(trial.suggest_float("x", -10, 10) ** 2)

    study = experiments.tune(objective, directory=str(tmp_path), trials=2,
                             direction="minimize", sampler_name="random")  # fmt: skip
    assert len(study.trials) == 2
    assert (tmp_path / "study.db").is_file()


@needs_optuna
@pytest.mark.parametrize("name", ["tpe", "random"])
def test_a_search_started_again_draws_new_points(tmp_path: Path, name: str) -> None:
    """Each start seeds its sampler from the trials so far too: the same seed again would
    draw the first start's points again (a search in three starts drew one x thrice)."""

    def objective(trial: Any) -> float:
        return float(trial.suggest_float("x", -10, 10) ** 2)

    for trials in (1, 2, 3):
        study = experiments.tune(objective, directory=tmp_path, trials=trials,
                                 direction="minimize", sampler_name=name)  # fmt: skip
    drawn = [t.params["x"] for t in study.trials]
    assert len(drawn) == 3 and len(set(drawn)) == 3, drawn
    (tmp_path / "fresh").mkdir()
    fresh = experiments.tune(objective, directory=tmp_path / "fresh", trials=1,
                             direction="minimize", sampler_name=name)  # fmt: skip
    assert fresh.trials[0].params == study.trials[0].params  # a new search: as before


@needs_optuna
def test_a_killed_worker_leaves_a_study_that_goes_on(tmp_path: Path) -> None:
    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 2 and not (tmp_path / "killed").exists():
            (tmp_path / "killed").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return float(x)

    with pytest.raises(experiments.WorkerDiedError):
        experiments.tune(objective, directory=tmp_path, trials=6, direction="minimize",
                         workers=2)  # fmt: skip
    study = experiments.tune(objective, directory=tmp_path, trials=6, direction="minimize")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 6
    assert states[2] == "FAIL"  # left running by the killed worker: marked failed


def test_parse_param() -> None:
    assert experiments.parse_param("batch-size=16..256:log", "int") == experiments.Param(
        "batch_size", "int", 16.0, 256.0, True
    )
    assert experiments.parse_param("lr=1e-4..0.1", "float").high == 0.1
    with pytest.raises(ValueError, match="expected NAME=LOW"):
        experiments.parse_param("lr", "float")
    with pytest.raises(ValueError, match="expected a range of ints"):
        experiments.parse_param("epochs=1.5..3", "int")
