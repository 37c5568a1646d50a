"""Sweep speed: 8 runs of ``fnn train``'s default MLP (3 epochs each, seeds 0-7) by
``fnn sweep --workers 2`` against the same 8 run one after another, each a ``fnn
train`` process of its own (as a user without ``fnn sweep`` would run them).

It prints the wall time of each way, their ratio (target: the sweep at most 0.55x the
runs one after another, on 2 cores), and the pool's own cost per run: the core-seconds
the sweep's workers spent outside the runs (forking, waiting for the last run, the
parent's bookkeeping), ``(workers x sweep wall - sum of the runs' times) / runs``, each
run's time as the sweep measured it around its ``fnn train`` (data read, training, test,
files) (target: under 1 s). It also gives the CPU seconds each way took (the same work
done twice: when they agree but the wall ratio is above 1 / workers, the cores were not
all the sweep's), and names the CPU and the load average: the machine may be shared, so
the figures are those of one run, the ratio measured within it.

Run: ``python examples/benchmarks/sweep_speed.py`` (``--runs 8 --epochs 3 --workers 2``;
``--rounds 3`` measures both ways three times, each round the one way right after the
other, and prints the medians too; ``--json PATH`` saves the figures; any options after
``--`` go to every ``fnn train``, e.g. ``-- --data DIR --limit 1000``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import run_peer

ROOT = Path(__file__).resolve().parents[2]


def fnn_command(*args: str) -> list[str]:
    """``python -m fnn ARGS`` with this checkout's fnn first on the path: ``-P`` keeps the
    current directory (where another checkout's ``fnn/`` may be) off it (Python 3.11;
    before, the directory comes first)."""
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", "fnn", *args]


def timed(command: Sequence[str]) -> tuple[float, float, str]:
    """Run ``command`` (from the current directory, so that relative paths given after
    ``--`` mean what they mean to the user; this checkout's fnn first on the path); its
    wall seconds, its CPU seconds
    (user and system, of it and every process it waited for) and its stdout.

    Raises:
        SystemExit: the command failed (its stderr).
    """
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return seconds, cpu, done.stdout


def run_seconds(stdout: str) -> list[float]:
    """Each run's seconds from ``fnn sweep``'s lines (``... trained, ... (4.21 s)``)."""
    return [
        float(s) for s in re.findall(r": (?:trained|resumed), .*\((\d+\.\d+) s\)$", stdout, re.M)
    ]


def measure(
    runs: int, epochs: int, workers: int, train: Sequence[str], root: Path
) -> dict[str, Any]:
    """The figures of one measurement in ``root``: the runs one after another, then the
    sweep."""
    options = ["--epochs", str(epochs), "--no-plots", *train]
    one_by_one = one_by_one_cpu = 0.0
    for seed in range(runs):
        out = root / "alone" / f"seed={seed}"
        seconds, cpu, _ = timed(
            fnn_command("train", "--out", str(out), "--seed", str(seed), "--quiet", *options)
        )
        one_by_one += seconds
        one_by_one_cpu += cpu
    sweep, sweep_cpu, stdout = timed(
        fnn_command("sweep", "--out", str(root / "sweep"), "--seeds", f"0-{runs - 1}",
                    "--workers", str(workers), "--", *options)
    )  # fmt: skip
    inside = run_seconds(stdout)
    if len(inside) != runs:
        raise SystemExit(f"expected {runs} runs in the sweep's output, got:\n{stdout}")
    same = all(
        json.loads((root / "alone" / f"seed={s}" / "run.json").read_text())["params_sha256"]
        == json.loads((root / "sweep" / f"seed={s}" / "run.json").read_text())["params_sha256"]
        for s in range(runs)
    )
    return {
        "runs": runs,
        "epochs": epochs,
        "workers": workers,
        "one_by_one_seconds": one_by_one,
        "sweep_seconds": sweep,
        "one_by_one_cpu_seconds": one_by_one_cpu,
        "sweep_cpu_seconds": sweep_cpu,
        "ratio": sweep / one_by_one,
        "run_seconds": inside,
        "overhead_per_run": (workers * sweep - sum(inside)) / runs,
        "same_bits": same,
        "cpu": run_peer.cpu_model(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }


def report(found: dict[str, Any]) -> str:
    """The figures as lines of text, with the targets' verdicts."""
    ratio, overhead = found["ratio"], found["overhead_per_run"]
    return "\n".join([
        f"{found['cpu']}, {found['cores']} cores, load average "
        + " ".join(f"{x:.2f}" for x in found["load_average"]),
        f"{found['runs']} runs of {found['epochs']} epochs one after another: "
        f"{found['one_by_one_seconds']:.1f} s",
        f"fnn sweep --workers {found['workers']}: {found['sweep_seconds']:.1f} s",
        f"CPU seconds (user + system): one after another {found['one_by_one_cpu_seconds']:.1f}"
        f", the sweep {found['sweep_cpu_seconds']:.1f}",
        f"ratio {ratio:.3f} (target <= 0.55: {'met' if ratio <= 0.55 else 'missed'})",
        f"the pool's own cost per run {overhead:.2f} s (target < 1 s: "
        f"{'met' if overhead < 1 else 'missed'})",
        f"every run's params the bits of fnn train alone: {found['same_bits']}",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="measurements (default 1)")
    parser.add_argument("--json", type=Path, help="write the figures here (a list of rounds)")
    parser.add_argument("train", nargs=argparse.REMAINDER, help="-- and fnn train's options")
    args = parser.parse_args(argv)
    train = args.train[1:] if args.train[:1] == ["--"] else args.train
    rounds = []
    for round_ in range(args.rounds):  # each round both ways, one right after the other
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(measure(args.runs, args.epochs, args.workers, train, Path(tmp)))
        print(f"round {round_ + 1}:\n{report(rounds[-1])}\n", flush=True)
    ratios = sorted(r["ratio"] for r in rounds)
    overheads = sorted(r["overhead_per_run"] for r in rounds)
    print(
        f"median of {len(rounds)} rounds: ratio {statistics.median(ratios):.3f}, the pool's "
        f"own cost per run {statistics.median(overheads):.2f} s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(rounds, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
