"""Summaries, tables and the pass/fail verdicts of ``train_speed.py``'s records.

Pure functions of the JSON records the peers' processes write (standard library only),
so they can be rerun on a saved ``--json`` file: ``python report.py out.json``.

The records of one run share one workload (``record["workload"]["model"]``, ``"mlp"``
when absent, as in records written before the CNN workload existed), which sets the
targets: the MLP's (fnn against ``torch``, ``jax``, ``jax-scan`` and the floor) or the
CNN's (fnn against "PyTorch", the faster by median of ``torch`` and ``torch-cl``, and
``jax``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

TORCH_TARGET = 0.9
"""fnn's median epoch must be at most this times PyTorch's."""

JAX_TARGET = 1.0
"""... and at most this times JAX's (jitted step); also the aim against ``jax-scan``."""

FLOOR_TARGET = 2.0
"""... and at most this times the BLAS floor, at one thread."""

ACCURACY_TOLERANCE = 0.005
"""Accuracies are equal within noise when they differ by at most this, or by at most two
standard errors of the difference of the means over rounds, whichever is larger."""

CNN_TORCH_TARGET = 1.0
"""CNN workload: fnn's median epoch must be at most this times PyTorch's faster format's."""

CNN_TORCH_AIM = 0.7
"""... and, as an aim, at most this times."""

CNN_JAX_TARGET = 0.5
"""... and at most this times JAX's (jitted step)."""

CNN_ACCURACY_TOLERANCE = 0.02
"""The CNN's accuracies are equal within noise when they differ by at most this (or two
standard errors): a few epochs of 10,000 images with dropout leave more spread than the
MLP's 60,000."""

TORCH_FORMATS = ("torch", "torch-cl")
"""The PyTorch peers of the CNN workload: NCHW and ``channels_last``; the faster counts."""

Cell = tuple[int, int]
"""A configuration of the table: ``(batch size, threads)``."""


@dataclasses.dataclass(frozen=True)
class PeerSummary:
    """One peer in one cell, over all rounds.

    ``epoch_seconds`` pools the timed epochs after the first ``skip`` of every round;
    ``round_medians`` has one median per round (for the spread of ratios).
    """

    peer: str
    epoch_seconds: tuple[float, ...]
    round_medians: dict[int, float]
    accuracies: tuple[float, ...]
    peak_rss_bytes: tuple[int, ...]
    cores: float
    others: float

    @property
    def median(self) -> float:
        return statistics.median(self.epoch_seconds)

    @property
    def best(self) -> float:
        """The lowest of the rounds' medians: what a quiet machine gives."""
        return min(self.round_medians.values())

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.epoch_seconds) < 2:
            return self.median, self.median
        q = statistics.quantiles(self.epoch_seconds, n=4, method="inclusive")
        return q[0], q[2]

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def accuracy_sd(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


@dataclasses.dataclass(frozen=True)
class FloorSummary:
    """The best (lowest) floor measured for a cell, and what it is made of."""

    record: dict[str, Any]

    @property
    def seconds(self) -> float:
        value: float = self.record["floor_epoch_seconds"]
        return value


def _cell(record: dict[str, Any]) -> Cell:
    w = record["workload"]
    return int(w["batch_size"]), int(w["threads"])


def summarize(
    records: Iterable[dict[str, Any]], skip: int = 1
) -> dict[Cell, tuple[dict[str, PeerSummary], FloorSummary | None]]:
    """Group the records by cell: per peer a :class:`PeerSummary` of the epochs after the
    first ``skip`` of each run; the best floor record, if any."""
    runs: dict[Cell, dict[str, list[dict[str, Any]]]] = {}
    floors: dict[Cell, FloorSummary] = {}
    for r in records:
        if r.get("error") or r.get("discarded"):
            continue
        cell = _cell(r)
        runs.setdefault(cell, {})
        if r["kind"] == "floor":
            best = floors.get(cell)
            if best is None or r["floor_epoch_seconds"] < best.seconds:
                floors[cell] = FloorSummary(r)
        else:
            runs[cell].setdefault(r["peer"], []).append(r)
    out: dict[Cell, tuple[dict[str, PeerSummary], FloorSummary | None]] = {}
    for cell in sorted(runs, key=lambda c: (c[1], c[0])):
        peers = {}
        for peer, rs in runs[cell].items():
            times = [t for r in rs for t in r["epoch_seconds"][skip:]]
            if not times:
                continue
            wall = sum(sum(r["epoch_seconds"][skip:]) for r in rs)
            cpu = sum(sum(r["epoch_cpu_seconds"][skip:]) for r in rs)
            busy = sum(sum(r["epoch_machine_busy_seconds"][skip:]) for r in rs)
            peers[peer] = PeerSummary(
                peer,
                tuple(times),
                {r["round"]: statistics.median(r["epoch_seconds"][skip:]) for r in rs},
                tuple(r["test_accuracy"] for r in rs),
                tuple(r["peak_rss_bytes"] for r in rs),
                cpu / wall if wall > 0 else math.nan,
                max(busy - cpu, 0.0) / wall if wall > 0 else math.nan,
            )
        out[cell] = (peers, floors.get(cell))
    return out


def workload_model(records: Iterable[dict[str, Any]]) -> str:
    """The workload (``"mlp"`` or ``"cnn"``) of the records of one run; failed runs'
    records are not asked. Records of different workloads cannot be compared."""
    models = {str(r.get("workload", {}).get("model", "mlp")) for r in records if not r.get("error")}
    if len(models) > 1:
        raise ValueError(f"records of different workloads: {sorted(models)}")
    return models.pop() if models else "mlp"


def pytorch_peer(peers: dict[str, PeerSummary], model: str) -> str | None:
    """The peer that counts as PyTorch: ``torch`` for the MLP; for the CNN the faster (by
    median) of ``torch`` and ``torch-cl`` (of those that ran); None when none ran."""
    names = TORCH_FORMATS if model == "cnn" else ("torch",)
    ran = [name for name in names if name in peers]
    return min(ran, key=lambda name: peers[name].median) if ran else None


def accuracy_tolerance(a: PeerSummary, b: PeerSummary, least: float = ACCURACY_TOLERANCE) -> float:
    """The difference of mean accuracies that counts as noise (see ACCURACY_TOLERANCE):
    ``least`` or two standard errors, whichever is larger."""
    se = math.sqrt(a.accuracy_sd**2 / len(a.accuracies) + b.accuracy_sd**2 / len(b.accuracies))
    return max(least, 2 * se)


def ratio_range(fnn: PeerSummary, peer: PeerSummary) -> tuple[float, float] | None:
    """The lowest and highest ratio of fnn's to the peer's median epoch within a round."""
    ratios = [
        fnn.round_medians[r] / peer.round_medians[r]
        for r in fnn.round_medians
        if r in peer.round_medians
    ]
    return (min(ratios), max(ratios)) if ratios else None


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def table(
    cell: Cell, peers: dict[str, PeerSummary], floor: FloorSummary | None, model: str = "mlp"
) -> str:
    """The table of one cell, as text (for the CNN, with the line that says which memory
    format counts as PyTorch)."""
    batch, threads = cell
    rounds = max((len(p.round_medians) for p in peers.values()), default=0)
    lines = [
        f"batch {batch}, {threads} thread{'s' if threads > 1 else ''} ({rounds} rounds)",
        f"{'peer':<9} {'s/epoch':>8} {'p25-p75':>13} {'best':>6} {'fnn/peer':>8} {'(rounds)':>11} "
        f"{'test acc (sd)':>16} {'peak RSS':>9} {'cores':>5} {'others':>6}",
    ]
    fnn = peers.get("fnn")
    for name, p in peers.items():
        lo, hi = p.quartiles
        ratio, spread = "", ""
        if fnn is not None:
            ratio = f"{fnn.median / p.median:.2f}"
            r = ratio_range(fnn, p)
            spread = f"{r[0]:.2f}-{r[1]:.2f}" if r and name != "fnn" else ""
        lines.append(
            f"{name:<9} {p.median:8.3f} {lo:6.3f}-{hi:6.3f} {p.best:6.3f} {ratio:>8} {spread:>11} "
            f"{p.accuracy:9.4f} ({p.accuracy_sd:.4f}) "
            f"{_mb(statistics.median(p.peak_rss_bytes)):>9} {p.cores:5.2f} {p.others:6.2f}"
        )
    torch_name = pytorch_peer(peers, model)
    if model == "cnn" and torch_name is not None:
        formats = {"torch": "NCHW", "torch-cl": "channels_last"}
        ratio = f": fnn/PyTorch {fnn.median / peers[torch_name].median:.2f}" if fnn else ""
        others = [f"{n} {peers[n].median:.3f} s" for n in TORCH_FORMATS if n in peers]
        lines.append(
            f"  PyTorch = {torch_name} ({formats[torch_name]}), the faster memory format "
            f"({', '.join(others)}){ratio}"
        )
    reference = peers.get("numpy")
    for name in ("jax", "jax-scan", "torch"):
        if reference is not None and name in peers:
            over = reference.median / peers[name].median
            lines.append(f"  the in-place NumPy loop over {name}: {over:.2f}")
    if floor is not None:
        f = floor.record
        ratio = f"{fnn.median / floor.seconds:.2f}" if fnn is not None else ""
        lines.append(f"{'floor':<9} {floor.seconds:8.3f} {'':>13} {'':>6} {ratio:>8}")
        lines.append(
            f"  floor = GEMM {f['gemm_epoch_seconds']:.3f} s "
            f"({f['flops_per_step'] / 1e6:.1f} MFLOP a step, {f['steps_per_epoch']} steps, "
            f"{f['gemm_flops_per_second'] / 1e9:.1f} GFLOP/s at these shapes) "
            f"+ Adam {f['adam_epoch_seconds']:.3f} s ({f['adam_bytes_per_step'] / 1e6:.2f} MB "
            f"a step at {f['copy_bytes_per_second'] / 1e9:.1f} GB/s, the copy bandwidth "
            "at the parameters' size)"
        )
        lines.append(
            f"  with main memory's copy bandwidth for Adam "
            f"({f['dram_copy_bytes_per_second'] / 1e9:.1f} GB/s) the floor would be "
            f"{f['floor_dram_epoch_seconds']:.3f} s"
        )
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One checked target: what, the measured value, the bound, and whether it holds."""

    cell: Cell
    what: str
    value: float
    bound: float
    passed: bool
    aim: bool = False

    def __str__(self) -> str:
        batch, threads = self.cell
        tag = (
            ("met" if self.passed else "not met")
            if self.aim
            else ("PASS" if self.passed else "FAIL")
        )
        kind = "aim " if self.aim else ""
        return (
            f"[{tag:>7}] batch {batch}, {threads} thread{'s' if threads > 1 else ''}: "
            f"{kind}{self.what} {self.value:.3f} <= {self.bound:.3f}"
        )


def cnn_verdicts(cell: Cell, peers: dict[str, PeerSummary]) -> list[Verdict]:
    """The CNN workload's targets in one cell: fnn <= 1.0x PyTorch's faster memory format
    (the aim 0.7x), fnn <= 0.5x JAX's jitted step, accuracies within
    ``CNN_ACCURACY_TOLERANCE`` (or two standard errors)."""
    fnn = peers.get("fnn")
    if fnn is None:
        return []
    out = []
    torch_name = pytorch_peer(peers, "cnn")
    if torch_name is not None:
        ratio = fnn.median / peers[torch_name].median
        what = f"fnn/PyTorch ({torch_name}, the faster format)"
        out.append(Verdict(cell, what, ratio, CNN_TORCH_TARGET, ratio <= CNN_TORCH_TARGET))
        out.append(Verdict(cell, what, ratio, CNN_TORCH_AIM, ratio <= CNN_TORCH_AIM, aim=True))
    if "jax" in peers:
        ratio = fnn.median / peers["jax"].median
        out.append(Verdict(cell, "fnn/jax", ratio, CNN_JAX_TARGET, ratio <= CNN_JAX_TARGET))
    for name, p in peers.items():
        if name != "fnn":
            diff = abs(fnn.accuracy - p.accuracy)
            tol = accuracy_tolerance(fnn, p, CNN_ACCURACY_TOLERANCE)
            out.append(Verdict(cell, f"|test acc fnn - {name}|", diff, tol, diff <= tol))
    return out


def verdicts(
    summary: dict[Cell, tuple[dict[str, PeerSummary], FloorSummary | None]],
    model: str = "mlp",
) -> list[Verdict]:
    """The targets of issue 6 (the MLP's) or of the CNN workload for every cell with an
    fnn run."""
    out = []
    for cell, (peers, floor) in summary.items():
        if model == "cnn":
            out += cnn_verdicts(cell, peers)
            continue
        fnn = peers.get("fnn")
        if fnn is None:
            continue
        bounds = {"torch": (TORCH_TARGET, False), "jax": (JAX_TARGET, False)}
        bounds["jax-scan"] = (JAX_TARGET, True)
        for name, (bound, aim) in bounds.items():
            if name in peers:
                ratio = fnn.median / peers[name].median
                out.append(Verdict(cell, f"fnn/{name}", ratio, bound, ratio <= bound, aim))
        if floor is not None and cell[1] == 1:
            ratio = fnn.median / floor.seconds
            out.append(Verdict(cell, "fnn/floor", ratio, FLOOR_TARGET, ratio <= FLOOR_TARGET))
        for name, p in peers.items():
            if name in bounds:  # the targets' (the numpy reference and the floor are none)
                diff = abs(fnn.accuracy - p.accuracy)
                tol = accuracy_tolerance(fnn, p)
                out.append(Verdict(cell, f"|test acc fnn - {name}|", diff, tol, diff <= tol))
    return out


def hardware(records: Iterable[dict[str, Any]], machine: dict[str, Any] | None = None) -> str:
    """The line printed beside every table: the CPU model (from ``machine``, the driver's
    :func:`train_speed.machine`) and the core type NumPy's BLAS chose for it (from the fnn
    peer's threadpoolctl record: OpenBLAS picks its kernels by core, so two CPUs of one
    name can run different ones)."""
    cpu = f"CPU: {machine['cpu']} ({machine['cpus']} CPUs)" if machine else "CPU: not recorded"
    blas = "NumPy's BLAS: not recorded (install threadpoolctl)"
    for r in records:
        for pool in r.get("blas", []):
            if r.get("peer") == "fnn" and pool.get("user_api") == "blas":
                blas = (
                    f"NumPy's BLAS: {pool['internal_api']} {pool['version']}, core type "
                    f"{pool.get('architecture')}"
                )
    return f"{cpu}; {blas}"


def slowdowns(records: Sequence[dict[str, Any]], skip: int = 1) -> str:
    """Each peer's median epoch with one competing CPU-bound process over its median on the
    quiet machine (``--busy``), per thread count, as text."""
    quiet = summarize([r for r in records if not r.get("busy")], skip)
    busy = summarize([r for r in records if r.get("busy")], skip)
    lines = ["slowdown with one competing CPU-bound process (busy median / quiet median):"]
    for cell, (peers, _) in busy.items():
        batch, threads = cell
        calm = quiet.get(cell, ({}, None))[0]
        parts = [
            f"{name} {p.median / calm[name].median:.2f}x ({calm[name].median:.3f} -> "
            f"{p.median:.3f} s)"
            for name, p in peers.items()
            if name in calm
        ]
        lines.append(
            f"  batch {batch}, {threads} thread{'s' if threads > 1 else ''}: " + "; ".join(parts)
        )
    return "\n".join(lines)


def render(
    records: Sequence[dict[str, Any]], skip: int = 1, machine: dict[str, Any] | None = None
) -> str:
    """All tables (each with the CPU and BLAS core type beside it), the verdicts and, when
    some runs had a competing process (``--busy``), their tables and the slowdowns."""
    quiet = [r for r in records if not r.get("busy")]
    text = _render(quiet, skip, hardware(records, machine))
    busy = [r for r in records if r.get("busy")]
    if not busy:
        return text
    loaded = _render(busy, skip, hardware(records, machine) + "; one competing process")
    return "\n\n".join(
        [text, "WITH ONE COMPETING CPU-BOUND PROCESS", loaded, slowdowns(records, skip)]
    )


def _render(records: Sequence[dict[str, Any]], skip: int, hardware_line: str) -> str:
    model = workload_model(records)
    summary = summarize(records, skip)
    parts = []
    if model == "cnn":
        parts.append(
            'CNN workload: "PyTorch" is the faster (by median) of torch (NCHW) and torch-cl '
            "(channels_last) in each table; targets: fnn <= "
            f"{CNN_TORCH_TARGET:.1f}x PyTorch (aim {CNN_TORCH_AIM:.1f}x) and <= "
            f"{CNN_JAX_TARGET:.1f}x JAX's jitted step; accuracies within "
            f"{CNN_ACCURACY_TOLERANCE} (or two standard errors)"
        )
    parts += [
        hardware_line + "\n" + table(cell, peers, floor, model)
        for cell, (peers, floor) in summary.items()
    ]
    parts.append("targets:\n" + "\n".join(str(v) for v in verdicts(summary, model)))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Print the report of a ``train_speed.py --json`` file."""
    paths = sys.argv[1:] if argv is None else argv
    if len(paths) != 1 or paths[0].startswith("-"):
        print("usage: python report.py out.json  (a train_speed.py --json file)", file=sys.stderr)
        return 0 if paths[:1] in (["-h"], ["--help"]) else 2
    try:
        saved = json.loads(Path(paths[0]).read_text())
    except (OSError, ValueError) as err:
        print(f"report.py: {paths[0]}: {err}", file=sys.stderr)
        return 2
    print(render(saved["records"], saved["settings"]["skip"], saved.get("machine")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
