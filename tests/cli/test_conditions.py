"""The conditions of a run (fnn/cli/_conditions.py): ``run.json`` records what decides the
bits beside the configuration (the options that apply to the run only), and ``fnn train
--resume`` refuses a change of them that changes the bits, naming it, unless
``--allow-changed-conditions`` allows it and records it."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pytest

import fnn
from fnn.cli import _conditions
from tests.test_cli import contents, error_of, fake_data, resume, train

__all__ = ["fake_data"]  # test_cli's synthetic stand-in for the named datasets


def test_run_json_records_the_conditions_and_only_the_options_that_apply(tmp_path: Path) -> None:
    record = train(tmp_path, "--epochs", "1")
    conditions = record["conditions"]
    assert set(conditions) == set(_conditions.NAMES)
    assert conditions["numpy"] == np.__version__
    assert conditions["python"] == platform.python_version()
    assert conditions["threads"] == 1 and conditions["processes"] == 1
    assert conditions["shards"] == 1 and conditions["cpu"] == _conditions.cpu_model()
    assert conditions["blas_threads"] == fnn.runtime.blas_threads()
    if fnn.runtime.blas_threads() is not None:  # NumPy's OpenBLAS, as in NumPy's wheels
        assert conditions["blas"] == "OpenBLAS" and conditions["blas_version"]
    config = record["config"]
    assert {"b1", "b2", "eps", "hidden"} <= set(config)  # adam's, the mlp's
    assert not {"momentum", "nesterov", "dropout", "channels", "decay", "warmup"} & set(config)
    sgd = train(tmp_path / "sgd", "--epochs", "1", "--optimizer", "sgd")["config"]
    assert "momentum" in sgd and not {"b1", "b2", "eps", "dropout"} & set(sgd)


def test_resume_refuses_another_blas_thread_count_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's case: a one-shard run begun on one thread, resumed with --threads 2
    (both threads go to BLAS), would end on a third fingerprint."""
    if fnn.runtime.blas_threads() is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: --threads does not reach it")
    fnn.runtime.set_blas_threads(2)
    if fnn.runtime.blas_threads() != 2:
        pytest.skip("OpenBLAS runs one thread at most on this machine")
    fnn.runtime.set_blas_threads(1)
    train(tmp_path, "--stop-after", "1")
    before = contents(tmp_path)
    message = error_of(capsys, "train", "--resume", str(tmp_path), "--threads", "2")
    assert "the BLAS thread count 1 (the run) -> 2 (now)" in message
    assert "resume under the run's conditions (--threads 1)" in message
    assert "--allow-changed-conditions" in message
    assert contents(tmp_path) == before  # refused before anything was written
    record = resume(tmp_path, "--threads", "2", "--allow-changed-conditions")
    fnn.runtime.set_blas_threads(1)
    assert record["conditions"]["blas_threads"] == 1  # what the run began under
    assert record["condition_changes"] == [
        {"after": 1, "changed": {"blas_threads": [1, 2], "threads": [1, 2]}}
    ]
    assert len(record["epochs"]) == 3
    assert _conditions.latest(record)["blas_threads"] == 2
    resume(tmp_path, "--threads", "2")  # the conditions it trained under last: no refusal
    message = error_of(
        capsys, "train", "--out", str(tmp_path / "new"), "--allow-changed-conditions"
    )
    assert message.endswith("--allow-changed-conditions applies to --resume only\n")


def test_resume_refuses_another_cpu_or_numpy_and_keeps_older_records_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    train(tmp_path, "--stop-after", "1")
    cpu, numpy = _conditions.cpu_model(), np.__version__
    with monkeypatch.context() as patch:
        patch.setattr(_conditions, "cpu_model", lambda: "Another CPU")
        patch.setattr(np, "__version__", "0.0.1")
        message = error_of(capsys, "train", "--resume", str(tmp_path))
    assert f"the CPU {cpu!r} (the run) -> 'Another CPU' (now)" in message
    assert f"NumPy {numpy!r} (the run) -> '0.0.1' (now)" in message
    path = tmp_path / "run.json"
    record = json.loads(path.read_text())
    old = {k: v for k, v in record.items() if k not in ("conditions", "epoch_params_sha256")}
    path.write_text(json.dumps(old))  # as fnn wrote it before runs recorded their conditions
    resumed = resume(tmp_path)
    assert resumed["conditions"]["numpy"] == np.__version__ and len(resumed["epochs"]) == 3


def test_differences_and_their_words() -> None:
    recorded = {"blas_threads": 1, "cpu": "A", "threads": 1}
    now = {"blas_threads": 2, "cpu": "A", "threads": 2, "numpy": "2.0"}
    changed = _conditions.differences(recorded, now)
    assert changed == {"blas_threads": [1, 2], "threads": [1, 2]}  # numpy: not recorded
    assert _conditions.differences(recorded, now, _conditions.BIT_DECIDING) == {
        "blas_threads": [1, 2]
    }
    assert _conditions.describe(changed, "recorded", "here") == (
        "the BLAS thread count 1 (recorded) -> 2 (here); the thread count (--threads) 1 "
        "(recorded) -> 2 (here)"
    )
    record = {"conditions": recorded, "condition_changes": [{"after": 2, "changed": changed}]}
    assert _conditions.latest(record) == {"blas_threads": 2, "cpu": "A", "threads": 2}
    assert _conditions.changes({"condition_changes": [{"after": "x"}]}) == []
