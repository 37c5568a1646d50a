"""fnn.parallel.agree (fnn/parallel/_agree.py): processes (played by threads) that are given
the same facts go on; any difference, of a value, a key or the facts' size, stops every
process with the same one-line message."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from fnn import parallel
from tests.parallel.fake_comm import Channels, FakeComm, on_threads

SHA_A = hashlib.sha256(b"a").hexdigest()

SHA_B = hashlib.sha256(b"b").hexdigest()


def setup(**changes: Any) -> dict[str, Any]:
    """The facts of a run: a configuration, the data's checksums and shapes, the model's."""
    facts: dict[str, Any] = {
        "config": {"lr": 0.002, "seed": 0, "shards": 2, "hidden": [128, 64]},
        "data": {
            "sha256": {"train-images": SHA_A, "train-labels": SHA_A},
            "x_train": {"shape": [60000, 28, 28], "dtype": "float32"},
        },
        "params": [[784, 128], [128], [128, 64], [64], [64, 10], [10]],
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = facts
        for name in parents:
            node = node[name]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return facts


def outcomes(size: int, facts_of: Callable[[int], Mapping[str, Any]]) -> list[str]:
    """What ``agree`` does on each of ``size`` processes: ``"ok"`` or the message it raised."""

    def work(comm: FakeComm | None) -> str:
        rank, _ = parallel.rank_and_size(comm)
        try:
            parallel.agree(comm, facts_of(rank), what="the run's setup")
        except parallel.DisagreementError as err:
            return str(err)
        return "ok"

    return on_threads(size, work)


def test_processes_with_the_same_facts_go_on() -> None:
    for size in (1, 2, 3, 4):
        assert outcomes(size, lambda rank: setup()) == ["ok"] * size
    # the same facts written in another order are the same facts
    reordered = {"params": setup()["params"], "data": setup()["data"], "config": setup()["config"]}
    assert outcomes(2, lambda rank: reordered if rank else setup()) == ["ok", "ok"]
    parallel.agree(None, setup())  # one process: nothing to compare with


def test_a_different_value_stops_every_process_with_one_line_naming_both() -> None:
    changed = setup(**{"data__sha256__train-labels": SHA_B})
    got = outcomes(3, lambda rank: changed if rank == 2 else setup())
    expected = (
        "process 2 of 3 disagrees with process 0 on data.sha256.train-labels (the run's "
        f"setup): '{SHA_B}' on process 2, '{SHA_A}' on process 0"
    )
    assert got == [expected] * 3  # a SHA-256 in full, on every process
    assert "\n" not in expected


def test_the_first_difference_is_named_lowest_process_first_in_process_0s_order() -> None:
    def facts_of(rank: int) -> dict[str, Any]:
        if rank == 0:
            return setup()
        return setup(config__seed=rank, config__lr=0.1 * rank)

    got = outcomes(3, facts_of)
    assert got == ["process 1 of 3 disagrees with process 0 on config.lr (the run's setup): "
                   "0.1 on process 1, 0.002 on process 0"] * 3  # fmt: skip
    # within lists of one length, the first entry that differs; an int is not a float
    params = [[784, 128], [128], [128, 32], [32], [32, 10], [10]]
    got = outcomes(2, lambda rank: setup(params=params) if rank else setup())
    assert got[0].endswith("on params[2][1] (the run's setup): 32 on process 1, 64 on process 0")
    got = outcomes(2, lambda rank: setup(config__seed=0.0) if rank else setup())
    assert got[0].endswith("on config.seed (the run's setup): 0.0 on process 1, 0 on process 0")


def test_a_missing_or_extra_key_stops_every_process() -> None:
    got = outcomes(2, lambda rank: setup(data__x_train=None) if rank else setup())
    lacking = (
        "process 1 of 2 disagrees with process 0 on data.x_train (the run's setup): (absent) "
        "on process 1, {'shape': [60000, 28, 28], 'dtype': 'float32'} on process 0"
    )
    assert got == [lacking] * 2
    got = outcomes(2, lambda rank: setup(data__y_train=[1, 2]) if rank else setup())
    extra = (
        "process 1 of 2 disagrees with process 0 on data.y_train (the run's setup): [1, 2] "
        "on process 1, (absent) on process 0"
    )
    assert got == [extra] * 2


def test_facts_of_very_different_sizes_stop_every_process_with_a_short_line() -> None:
    """One process's facts 100 times longer than the other's: no truncated message, no
    hang, and a long list or string is shortened in the message."""
    long_list = list(range(10_000))
    got = outcomes(2, lambda rank: setup(params=long_list) if rank else setup())
    assert got[0] == got[1]
    assert got[0].startswith(
        "process 1 of 2 disagrees with process 0 on params (the run's setup): [0, 1, 2, 3, "
    )
    assert ", ...] (10000 items) on process 1, [[784, 128], [128]," in got[0]
    assert len(got[0]) < 400
    got = outcomes(2, lambda rank: setup(config__seed="x" * 5000) if rank else setup())
    assert got[0] == got[1] and len(got[0]) < 400
    assert "'xxxxxxxx" in got[0] and "...' (5000 characters) on process 1, 0 on process 0" in got[0]
    got = outcomes(2, lambda rank: {} if rank else setup())
    assert got[0].endswith("on config (the run's setup): (absent) on process 1, "
                           "{'lr': 0.002, 'seed': 0, 'shards': 2, 'hidden': [128, 64]} "
                           "on process 0")  # fmt: skip


def test_facts_must_be_a_mapping_of_json() -> None:
    comm = FakeComm(0, 2, Channels())  # raised before any message: no partner needed
    with pytest.raises(TypeError, match=r"facts must be JSON .* not JSON serializable"):
        parallel.agree(comm, {"shape": object()})
    with pytest.raises(TypeError, match="facts must be a mapping, got list"):
        parallel.agree(comm, [1, 2])  # type: ignore[arg-type]
    assert issubclass(parallel.DisagreementError, ValueError)
