"""``fnn tune`` (fnn/cli/_tune.py): an Optuna search over fnn train's options, each
trial's runs in their own directories with the bits of fnn train alone (pruned or not),
a search started again going on, and each error in one line before anything is
written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fnn import experiments
from tests.cli.test_sweep import error_of, own, records, run
from tests.support.optional import needs_optuna

__all__ = ["own"]

TRAIN = ("--epochs", "2", "--batch-size", "16", "--no-plots")


@needs_optuna
@pytest.mark.parametrize("pruner", ["none", "median"])
def test_a_search_trains_each_trials_runs_as_fnn_train_alone(
    tmp_path: Path, own: Path, pruner: str
) -> None:
    out = tmp_path / "search"
    args = ["tune", "--out", str(out), "--trials", "3", "--param", "lr=1e-3..1e-1:log",
            "--param", "optimizer=adam,sgd", "--seeds", "0-1", "--pruner", pruner,
            "--workers", "2", "--", "--data", str(own), *TRAIN]  # fmt: skip
    status, text = run(*args)
    assert status == 0, text
    assert text.splitlines()[-1].startswith("best trial ")
    optuna = experiments.optuna_module()
    study = optuna.load_study(study_name="fnn", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3
    found = records(out / "trial-0001")
    assert sorted(found) == ["seed=0", "seed=1"]
    trial = study.trials[1]
    assert trial.user_attrs["runs"] == [str(out / "trial-0001" / f"seed={s}") for s in (0, 1)]
    if trial.state == optuna.trial.TrialState.COMPLETE:
        best = [max(e["val_accuracy"] for e in r["epochs"]) for r in found.values()]
        assert trial.value == pytest.approx(sum(best) / 2)
    alone = tmp_path / "alone"
    status, text = run(
        "train", "--out", str(alone), "--data", str(own), *TRAIN, "--quiet", "--seed", "1",
        "--lr", repr(trial.params["lr"]), "--optimizer", trial.params["optimizer"],
        *(["--stop-after", str(len(found["seed=1"]["epochs"]))] if pruner != "none" else []),
    )  # fmt: skip
    assert status == 0, text
    record = json.loads((alone / "run.json").read_text())
    assert record["params_sha256"] == found["seed=1"]["params_sha256"]
    kept = records(out)
    args[4] = "5"  # --trials 5: the study goes on
    status, text = run(*args)
    assert status == 0, text
    assert len(optuna.load_study(study_name="fnn", storage=study._storage).trials) == 5
    again = records(out)
    assert all(again[name] == r for name, r in kept.items())


@needs_optuna
def test_a_pruned_trials_runs_resume_with_the_options_that_decide_their_conditions(
    tmp_path: Path, own: Path
) -> None:
    """Under a pruner each run trains an epoch at a time, resumed between them; the
    resume is given --threads again (without it, fnn train refuses the changed BLAS
    thread count and every trial fails)."""
    out = tmp_path / "search"
    status, text = run("tune", "--out", str(out), "--trials", "1", "--param", "lr=1e-2..1e-1",
                       "--seeds", "0", "--pruner", "median", "--workers", "1", "--",
                       "--data", str(own), *TRAIN, "--threads", "2")  # fmt: skip
    assert status == 0, text
    (record,) = records(out / "trial-0000").values()
    assert len(record["epochs"]) == 2 and record["conditions"]["threads"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "give the search space: --param"),
        (("--param", "wings=1..2"), "--param wings=1..2: fnn train has no option --wings"),
        (("--param", "optimizer=1..2"), "a range needs an option that takes a number"),
        (("--param", "lr=0.1..0.01"), "expected LOW <= HIGH"),
        (("--param", "lr=0..0.1:log"), "above 0 for :log"),
        (("--param", "lr=a..b"), "expected a range of floats LOW..HIGH"),
        (("--param", "seed=1..5"), "give the seeds with --seeds"),
        (("--param", "lr=0.1,0.1"), "expected distinct choices"),
        (("--param", "momentum=0.1..0.9"), "--momentum applies to"),
        (("--param", "lr=1e-3..1e-1", "--", "--validation-split", "0"), "--validation-split"),
        (("--param", "lr=1e-3..1e-1", "--trials", "0"), "--trials must be an integer in"),
        (("--param", "lr=1e-3..1e-1", "--", "--lr", "1"), "--lr is given twice"),
    ],
)
def test_errors_are_one_line_and_touch_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "search"
    text = error_of(capsys, "tune", "--out", str(out), *extra)
    assert text.startswith("fnn tune: error: ") and message in text, text
    assert not out.exists()


def test_without_optuna_the_error_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise experiments.TuneUnavailableError("searching needs Optuna: pip install 'fnn[tune]'")

    monkeypatch.setattr(experiments, "optuna_module", missing)
    text = error_of(capsys, "tune", "--out", str(tmp_path / "s"), "--param", "lr=0.1..1")
    assert "pip install 'fnn[tune]'" in text
    assert not (tmp_path / "s").exists()
