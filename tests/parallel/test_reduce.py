"""The shard plan, the MPI world, and the fixed-order reduction (fnn/parallel.py):
reduce_shards, reduce-scatter and gather give the same bits on any number of processes
(played by threads)."""

from __future__ import annotations

import io
import itertools
import sys
from typing import Any

import numpy as np
import pytest

from fnn import cli, parallel, random
from tests.parallel.fake_comm import Channels, FakeComm, on_threads

Array = np.ndarray[Any, Any]


@pytest.mark.parametrize(("rows", "shards"), [(10, 4), (128, 2), (3, 4), (0, 2), (7, 7)])
def test_shard_bounds_are_contiguous_and_balanced(rows: int, shards: int) -> None:
    bounds = parallel.shard_bounds(rows, shards)
    assert len(bounds) == shards and bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


def test_the_plan_needs_the_processes_to_divide_the_shards() -> None:
    with pytest.raises(ValueError, match=r"multiple of the number of processes \(2\), got 3"):
        parallel.check_plan(3, FakeComm(0, 2, Channels()))
    with pytest.raises(ValueError, match="shards must be >= 1"):
        parallel.check_plan(0, None)
    assert parallel.owned_shards(8, FakeComm(1, 4, Channels())) == range(2, 4)


def test_world_is_none_outside_mpirun_and_names_the_missing_mpi4py(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parallel.launched_processes({}) == 1
    assert parallel.launched_processes({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert parallel.launched_processes({"PMI_SIZE": "3"}) == 3
    assert parallel.world({"OMPI_COMM_WORLD_SIZE": "1"}) is None

    def missing(name: str) -> Any:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr("importlib.import_module", missing)
    with pytest.raises(ImportError, match=r"mpirun with 4 processes.*pip install 'fnn\[mpi\]'"):
        parallel.world({"OMPI_COMM_WORLD_SIZE": "4"})
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["train", "--quiet"], out=io.StringIO()) == 2
    assert "fnn train: error: started by mpirun with 4 processes" in err.getvalue()


def shard_vectors(shards: int) -> dict[int, list[Array]]:
    """Per-shard float32 vectors of very different magnitudes: the order of additions
    shows in the bits."""
    vectors = {}
    for s in range(shards):
        scale = np.float32(10.0 ** (3 * (s % 3) - 3))
        v = random.normal(random.key(s), (1000,)) * scale
        vectors[s] = [v, np.array([s + 0.1], np.float64)]
    return vectors


def tree_sum(vectors: dict[int, list[Array]], lo: int, hi: int) -> list[Array]:
    """The module docstring's order, written out: [lo, mid) + [mid, hi)."""
    if hi - lo == 1:
        return vectors[lo]
    mid = (lo + hi) // 2
    return [a + b for a, b in zip(tree_sum(vectors, lo, mid), tree_sum(vectors, mid, hi))]


@pytest.mark.parametrize(("shards", "sizes"), [(4, (1, 2, 4)), (6, (1, 2, 3, 6)), (8, (1, 4, 8))])
def test_reduce_shards_has_the_same_bits_for_any_number_of_processes(
    shards: int, sizes: tuple[int, ...]
) -> None:
    vectors = shard_vectors(shards)
    template = [np.empty_like(v) for v in vectors[0]]
    expected = tree_sum(vectors, 0, shards)
    left_fold = vectors[0][0].copy()
    for s in range(1, shards):
        left_fold = left_fold + vectors[s][0]
    assert left_fold.tobytes() != expected[0].tobytes()  # the order matters for these

    for size in sizes:

        def work(comm: FakeComm | None, size: int = size) -> list[Array]:
            mine = parallel.owned_shards(shards, comm)
            local = {s: vectors[s] for s in mine}
            return parallel.reduce_shards(local, shards, [True] * shards, template, comm)

        for result in on_threads(size, work):
            assert [r.tobytes() for r in result] == [e.tobytes() for e in expected], size


def test_empty_shards_are_left_out_on_any_number_of_processes() -> None:
    vectors = shard_vectors(4)
    nonempty = [True, False, True, False]
    template = [np.empty_like(v) for v in vectors[0]]
    expected = [a + b for a, b in zip(vectors[0], vectors[2])]
    for size in (1, 2, 4):

        def work(comm: FakeComm | None) -> list[Array]:
            local = {s: vectors[s] for s in parallel.owned_shards(4, comm) if nonempty[s]}
            return parallel.reduce_shards(local, 4, nonempty, template, comm)

        for result in on_threads(size, work):
            assert [r.tobytes() for r in result] == [e.tobytes() for e in expected]


@pytest.mark.parametrize(
    ("shards", "size", "length"),
    [(2, 2, 1000), (4, 4, 7), (8, 8, 1000), (8, 4, 3), (8, 8, 3), (8, 8, 1), (4, 4, 0)],
)
def test_reduce_scatter_then_gather_give_the_bits_of_reduce_shards(
    shards: int, size: int, length: int
) -> None:
    vectors = {s: v[0][:length] for s, v in shard_vectors(shards).items()}
    expected = tree_sum({s: [v] for s, v in vectors.items()}, 0, shards)[0]
    spans = [parallel.span(length, r, size) for r in range(size)]
    assert sorted(spans)[0][0] == 0 and sorted(spans)[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(sorted(spans)))  # a tiling

    def work(comm: FakeComm | None) -> tuple[Array, tuple[int, int], list[Array]]:
        assert comm is not None and parallel.scatters(comm)
        local = {s: vectors[s] for s in parallel.owned_shards(shards, comm)}
        part, span = parallel.reduce_scatter_shards(local, shards, comm)
        doubled = part * 2
        return part, span, parallel.gather_spans([part, doubled], length, comm)

    for rank, (part, span, whole) in enumerate(on_threads(size, work)):
        assert span == spans[rank]
        assert part.tobytes() == expected[span[0] : span[1]].tobytes()
        assert whole[0].tobytes() == expected.tobytes()
        assert whole[1].tobytes() == (expected * 2).tobytes()


def test_scatters_only_for_a_power_of_two_processes() -> None:
    assert not parallel.scatters(None)
    assert [parallel.scatters(FakeComm(0, n, Channels())) for n in (1, 2, 3, 4, 6, 8)] == [
        False, True, False, True, False, True,
    ]  # fmt: skip


def test_bad_shard_counts_and_communicators_are_refused() -> None:
    with pytest.raises(ValueError, match="shards must be >= 1, got 0"):
        parallel.shard_bounds(5, 0)
    with pytest.raises(TypeError, match="rows must be an int"):
        parallel.shard_bounds(5.0, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"comm must be an MPI communicator .* got int"):
        parallel.rank_and_size(1)  # type: ignore[arg-type]
