"""Training speed of fnn against PyTorch and JAX on the same model and data (issue 6).

The workload (the default): Fashion-MNIST, a 784-128-64-10 ReLU MLP (He-normal weights,
zero biases), softmax cross-entropy, Adam(1e-3), batch 128, float32, 6 epochs, each a
fresh permutation of the 60,000 training images (the last batch smaller), at 1 and 2
threads. The peers:

========  ==============================================================================
fnn       ``fnn.train_step`` + ``fnn.train_epoch`` over ``fnn.data.batches`` (``peer_fnn.py``)
torch     PyTorch eager, ``torch.optim.Adam(fused=True)`` (``peer_torch.py``)
jax       JAX, one ``jax.jit``-ed training step per batch (``peer_jax.py``)
jax-scan  JAX, a whole epoch as one jitted ``lax.scan`` (``peer_jax.py``)
numpy     not a target: the same training as one hand-tuned NumPy loop that overwrites
          preallocated buffers in place (``peer_numpy.py``), what NumPy calls can reach
          without fnn's contracts (new params and state every step, old ones untouched)
floor     not a peer: NumPy's float32 GEMM time at the step's exact shapes plus Adam's
          memory traffic over NumPy's copy bandwidth at the parameters' size, measured
          in the same run (``floor.py``)
========  ==============================================================================

Every peer runs in a process of its own (``run_peer.py``), with its thread count fixed
before NumPy, PyTorch or JAX is imported: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, XLA's flags, ``torch.set_num_threads``; one-thread runs are also
pinned to one CPU (the idlest when the process starts; ``--no-pin`` turns this off),
which is what limits XLA's thread pool. The peers take turns: for each round, for each
thread count and batch size, the floor and then every peer, the peers' order rotated from
round to round, so the machine's noise falls on all of them. Each peer times every epoch
with ``time.perf_counter()`` around the whole epoch (permutation, batch gathering and, for
JAX, waiting for the result), then evaluates the test set and reports its peak RSS. It
also reads the whole machine's busy CPU time around each epoch: when other processes took
more than ``--max-others`` cores (0.25) during a run's counted epochs, the run is
discarded (kept in the JSON, marked) and done again after a pause, at most ``--retries``
(2) times; the last try counts whatever the load.

The tables give, for each peer, the median epoch over epochs 2..E of every round (the
first epoch, with JIT compilation and cold caches, is left out), the quartiles, fnn's
median over the peer's (and the range of that ratio among rounds), the mean test accuracy
over rounds (and its standard deviation; the seed is the round number), the peak RSS
(median over rounds, the process's whole footprint: interpreter, libraries, data),
``cores``: CPU seconds over wall seconds while training, and ``others``: the cores other
processes took meanwhile. ``best`` is the lowest round median, what a quiet machine
gives. Then the targets, PASS/FAIL (on the medians):
fnn <= 0.9x PyTorch and <= 1.0x JAX (jitted step); fnn <= 2x the floor at one thread;
test accuracies equal within noise; and the aim fnn <= 1.0x JAX's whole-epoch scan.

The CNN workload (``--model cnn``): the same images as ``(28, 28, 1)``; conv 32 3x3
("valid"), ReLU, 2x2 max-pool; conv 64 3x3, ReLU, 2x2 max-pool; flatten (1600); dense 128,
ReLU; dropout 0.5 (training only); dense 10; the same loss, Adam(1e-3), batch 128,
float32, He-normal (fan_in) weights and zero biases, 6 epochs, each a fresh permutation of
the first ``--train-size`` training images (10,000 unless told: the figures it is
compared with were measured on 10,000 images an epoch; the MLP takes all 60,000). The
peers:

========  ==============================================================================
fnn       the same API over ``fnn.nn``'s layers (``nn.cnn()`` where fnn exports it): conv,
          max-pool, ReLU (ReLU and 2x2 max-pooling commute, so fnn pools first)
torch     PyTorch eager, ``Adam(fused=True)``, NCHW (PyTorch's default memory format)
torch-cl  the same with ``channels_last``: the model and every batch
jax       JAX, one jitted step: ``lax.conv_general_dilated`` (NHWC, HWIO),
          ``lax.reduce_window`` max-pooling, optax's ``adam``, dropout keys from
          ``jax.random``
========  ==============================================================================

No floor, no NumPy reference and no ``jax-scan`` for the CNN (``peer_jax.py`` says why).
The faster of ``torch`` and ``torch-cl`` (by median) is "PyTorch" for the CNN's targets:
fnn <= 1.0x PyTorch (and the aim fnn <= 0.7x) and fnn <= 0.5x JAX's jitted step, at every
thread count; test accuracies equal within 0.02 (or two standard errors): a few epochs
of 10,000 images with dropout leave the peers' accuracies further apart than the MLP's.

How to run it (PyTorch and JAX are never dependencies of fnn: use a venv of their own;
a peer whose library is missing is skipped with a note)::

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install -e . threadpoolctl
    /work/bench-venv/bin/pip install torch==2.13.0   # the CPU build on this machine's disk
    /work/bench-venv/bin/pip install jax jaxlib optax   # optax: the CNN's JAX peer
    /work/bench-venv/bin/python examples/benchmarks/train_speed.py --json bench.json
    /work/bench-venv/bin/python examples/benchmarks/train_speed.py \\
        --batch-sizes 32,512 --threads 1 --json bench-batch.json
    /work/bench-venv/bin/python examples/benchmarks/memory.py    # fnn train's peak RSS
    /work/bench-venv/bin/python examples/benchmarks/train_speed.py --model cnn \\
        --json bench-cnn.json
    /work/bench-venv/bin/python examples/benchmarks/memory.py --model cnn

Every table is printed with the CPU's model name and the core type NumPy's OpenBLAS
chose for it (threadpoolctl's ``architecture``, from the fnn peer's process).

A busy machine (``--busy``): every run is done twice, on the quiet machine and then beside
one competing CPU-bound process (a Python loop, ``SPIN``, on no CPU in particular,
started before the peer's process and stopped after it); the tables of the busy runs
follow, and then each peer's slowdown (busy median over quiet median) at each thread
count. A busy run is retried only when others took more than ``--max-others`` cores
beyond the competing process.

Options: ``--model mlp`` (or ``cnn``), ``--busy``, ``--train-size`` (60,000 for the MLP,
10,000 for the CNN), ``--batch-sizes 128,32,512``, ``--threads 1,2``, ``--epochs 6``,
``--rounds 5``, ``--peers fnn,torch,jax,jax-scan,numpy`` (the CNN's: ``fnn,torch,torch-cl,jax``),
``--no-floor``, ``--no-pin``, ``--max-others 0.25``,
``--retries 2``, ``--json out.json`` (every record, the settings, the machine and the
verdicts; ``python examples/benchmarks/report.py out.json`` prints the tables again).

How long: a process costs 5-10 s of start-up (imports, data, JIT) plus its epochs. On a
2-core VM the default run (batch 128, 1 and 2 threads, 4 peers, the NumPy reference and
the floor) takes 1.3-2 minutes a round, 7-11 minutes with the default 5 rounds;
``--batch-sizes 32,512 --threads 1`` about as long. Retries add to that when the machine is shared.
The CNN's default run (4 peers, 10,000 images, 1 and 2 threads) should take about 5
minutes a round there, 25 with 5 rounds (estimated from short one-thread runs: an epoch
of fnn ~5 s, PyTorch 4-5.5 s, JAX ~10.5 s).
The machine should be otherwise idle: with 2 cores, anything else running shows in the
2-thread numbers first (the ``others`` column says how much there was).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import report
import run_peer
from workload import DEFAULT_TRAIN_SIZES, TRAIN_SIZE

HERE = Path(__file__).resolve().parent

RETRY_PAUSE = 15.0
"""Seconds to wait before running again a peer that shared the machine with others."""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _peer_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in run_peer.PEERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown peers {unknown}; choose from {','.join(run_peer.PEERS)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Training speed of fnn against PyTorch and JAX (see the module docstring).",
    )
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="the workload")
    parser.add_argument(
        "--train-size",
        type=int,
        help="training images per epoch (default 60000 for the MLP, 10000 for the CNN)",
    )
    parser.add_argument("--batch-sizes", type=_int_list, default=[128], help="e.g. 128,32,512")
    parser.add_argument("--threads", type=_int_list, default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (first not counted)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of every peer, alternated")
    parser.add_argument(
        "--peers",
        type=_peer_list,
        help="default fnn,torch,jax,jax-scan,numpy (MLP) or fnn,torch,torch-cl,jax (CNN)",
    )
    parser.add_argument("--no-floor", action="store_true", help="do not measure the floor")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="run every peer also beside one competing CPU-bound process; print slowdowns",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin 1-thread runs")
    parser.add_argument("--json", type=Path, help="write every record and the summary here")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.25,
        help="run a peer again when other processes took more cores than this meanwhile",
    )
    parser.add_argument("--retries", type=int, default=2, help="at most this many times")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not counted)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.train_size is None:
        args.train_size = DEFAULT_TRAIN_SIZES[args.model]
    if not 1 <= args.train_size <= TRAIN_SIZE:
        parser.error(f"--train-size must be in 1..{TRAIN_SIZE}")
    allowed = run_peer.MODEL_PEERS[args.model]
    if args.peers is None:
        args.peers = list(allowed)
    elif other := [p for p in args.peers if p not in allowed]:
        parser.error(
            f"{','.join(other)} cannot run --model {args.model}; choose from {','.join(allowed)}"
        )
    return args


def available_peers(peers: list[str]) -> list[str]:
    """The peers whose library this Python can import; prints a note for the others."""
    found = []
    for peer in peers:
        module = run_peer.PEER_MODULES[peer]
        if importlib.util.find_spec(module) is None:
            print(f"note: skipping {peer}: {module} is not installed in {sys.executable}")
        else:
            found.append(peer)
    return found


def _busy_ticks() -> dict[int, int]:
    ticks = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in values]
                ticks[int(name[3:])] = sum(v) - v[3] - v[4]  # all but idle and iowait
    return ticks


def idlest_cpus(count: int, sample: float = 0.2) -> list[int]:
    """The ``count`` CPUs of this process's affinity that were least busy just now."""
    allowed = sorted(os.sched_getaffinity(0))
    try:
        before = _busy_ticks()
        time.sleep(sample)
        after = _busy_ticks()
    except OSError:
        return allowed[:count]
    return sorted(sorted(allowed, key=lambda c: after.get(c, 0) - before.get(c, 0))[:count])


def run_one(
    peer: str, batch: int, threads: int, args: argparse.Namespace, round_: int
) -> dict[str, Any]:
    """Run one peer (or the floor) in a fresh process and return its record."""
    cpus = ""
    if not args.no_pin and threads < len(os.sched_getaffinity(0)):
        cpus = ",".join(map(str, idlest_cpus(threads)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        command = [
            sys.executable,
            str(HERE / "run_peer.py"),
            peer,
            f"--threads={threads}",
            f"--batch-size={batch}",
            f"--epochs={args.epochs}",
            f"--seed={round_}",
            f"--model={args.model}",
            f"--train-size={args.train_size}",
            f"--out={out}",
        ]
        if cpus:
            command.append(f"--cpus={cpus}")
        env = {**os.environ, **run_peer.thread_env(threads)}
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=args.timeout
            )
            failure = done.stderr[-2000:] if done.returncode else ""
        except subprocess.TimeoutExpired:
            failure = f"timed out after {args.timeout} s"
        record: dict[str, Any]
        if failure or not out.exists():
            record = {
                "kind": "floor" if peer == "floor" else "peer",
                "peer": peer,
                "workload": {"batch_size": batch, "threads": threads, "model": args.model},
                "error": failure,
            }
        else:
            record = json.loads(out.read_text())
    record["round"] = round_
    record["process_seconds"] = time.perf_counter() - started
    return record


SPIN = "while True:\n    pass\n"
"""The competing process of ``--busy``: one CPU-bound Python loop, on no CPU in
particular."""


@contextlib.contextmanager
def competing_process(start: bool) -> Iterator[None]:
    """With ``start``, one CPU-bound process runs (``SPIN``) until the block ends."""
    if not start:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.5)  # let it take its core
        yield
    finally:
        spinner.terminate()
        spinner.wait()


def others(record: dict[str, Any], skip: int) -> float:
    """Cores other processes (and the hypervisor) took while the peer's counted epochs
    ran: the machine's busy CPU seconds minus the peer's own, over the wall seconds."""
    if record.get("error") or record["kind"] != "peer":
        return 0.0
    wall = sum(record["epoch_seconds"][skip:])
    busy = sum(record["epoch_machine_busy_seconds"][skip:])
    cpu = sum(record["epoch_cpu_seconds"][skip:])
    return max(busy - cpu, 0.0) / wall if wall > 0 else 0.0


def _progress(record: dict[str, Any], skip: int) -> str:
    w = record["workload"]
    head = f"round {record['round'] + 1}  batch {w['batch_size']}  {w['threads']} thr  "
    if record.get("error"):
        return head + f"{record['peer']}: FAILED\n{record['error']}"
    if record["kind"] == "floor":
        return head + f"floor {record['floor_epoch_seconds']:.3f} s/epoch"
    times = sorted(record["epoch_seconds"][skip:])
    return head + (
        f"{record['peer']:<8} {times[len(times) // 2]:.3f} s/epoch  "
        f"acc {record['test_accuracy']:.4f}  peak {record['peak_rss_bytes'] / 1e6:.0f} MB  "
        f"others {others(record, skip):.2f} cores"
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": run_peer.cpu_model(),
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "load_average": os.getloadavg(),
    }


def _versions(records: list[dict[str, Any]]) -> str:
    versions: dict[str, str] = {}
    blas = ""
    for r in records:
        versions.update(r.get("versions", {}))
        for pool in r.get("blas", []):
            if r.get("peer") == "fnn" and pool.get("user_api") == "blas":
                blas = f"{pool['internal_api']} {pool['version']} ({pool.get('architecture')})"
    text = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if k != "torch_threads")
    return text + (f"; NumPy's BLAS: {blas}" if blas else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skip = 1
    peers = available_peers(args.peers)
    units = [] if args.no_floor or args.model != "mlp" else ["floor"]
    if not peers and not units:
        print("nothing to run")
        return 1
    info = machine()
    print(
        f"{info['cpu']}, {info['cpus']} CPUs; Python {info['python']}; {info['platform']}",
        flush=True,
    )
    if info["OPENBLAS_CORETYPE"]:
        print(
            f"note: OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} is set: NumPy's BLAS may "
            "run a slower kernel than this CPU allows"
        )
    records: list[dict[str, Any]] = []
    loads = (False, True) if args.busy else (False,)
    began = time.perf_counter()
    for round_ in range(args.rounds):
        shift = round_ % len(peers) if peers else 0
        order = units + peers[shift:] + peers[:shift]
        for threads in args.threads:
            for batch in args.batch_sizes:
                for peer, loaded in ((p, b) for p in order for b in loads):
                    for attempt in range(args.retries + 1):
                        with competing_process(loaded):
                            record = run_one(peer, batch, threads, args, round_)
                        record["busy"] = loaded
                        busy = others(record, skip) - (1.0 if loaded else 0.0)
                        retry = busy > args.max_others and attempt < args.retries
                        record["discarded"] = retry
                        records.append(record)
                        print(_progress(record, skip), file=sys.stderr, flush=True)
                        if not retry:
                            break
                        print(
                            f"  other processes used {busy:.2f} cores during its epochs: "
                            f"run again in {RETRY_PAUSE:.0f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                        time.sleep(RETRY_PAUSE)
    elapsed = time.perf_counter() - began
    print(f"{_versions(records)}")
    print(
        f"{args.model.upper()} workload, {args.train_size} training images an epoch; "
        f"{args.rounds} rounds of {args.epochs} epochs; medians over epochs "
        f"{skip + 1}-{args.epochs} of every round; {elapsed / 60:.1f} minutes\n"
    )
    print(report.render(records, skip, info))
    if args.json is not None:
        summary = report.summarize(records, skip)
        saved = {
            "settings": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "skip": skip,
            },
            "machine": info,
            "seconds": elapsed,
            "records": records,
            "verdicts": [vars(v) for v in report.verdicts(summary, report.workload_model(records))],
        }
        args.json.write_text(json.dumps(saved, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
