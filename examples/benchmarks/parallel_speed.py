"""Data-parallel speed: fnn with ``S`` shards on 1 and on ``N`` MPI processes, against JAX.

Each round runs, every one in a fresh process (``run_peer.py``) and taking turns: fnn with
``--shards S`` in one process (one BLAS thread, pinned to one CPU); the same on ``mpirun
-n N`` (one BLAS thread per process, each bound to a core); and JAX's jitted step at
``N`` threads (for the CNN also PyTorch with ``channels_last`` at ``N`` threads). It
prints per-epoch medians (epochs 2 onwards), the ratios fnn on N / fnn on 1 (target <=
0.65 for N = 2) and fnn on N / JAX (target <= 1.0), and, in a run of its own under
``mpirun -n N``, what one step's reduction costs on a vector of the model's parameter
count: :func:`fnn.parallel.reduce_shards` (point-to-point in a fixed order, or partners
swapping their sums when N is a power of two) against MPI's ``Allreduce``, and, when N is
a power of two, what training does instead: :func:`fnn.parallel.reduce_scatter_shards`
then :func:`fnn.parallel.gather_spans` of three slices (params and Adam's two moments).

``--table`` prints a model of scaling to 1-64 processes from figures measured here, in
this process (one BLAS thread): the gradient time of a shard of ``128 / N`` rows
(``fnn.forward_backward``), Adam's update of the whole parameter vector, the rest of a
step (``fnn.train_step`` of 128 rows minus those two: batch, flat buffers, metrics) and
one full-vector level of the reduction (a swap with a partner and one addition:
:func:`fnn.parallel.reduce_shards` on 2 processes). With ``N`` a power of two each
process updates ``1 / N`` of the parameters, the reduce-scatter moves ``(1 - 1/N)`` of a
vector and the gather of params and Adam's two moments three times that, so
``step(N) = gradient(128 / N) + rest + update / N + 4 (1 - 1/N) level`` for a global
batch of 128, and ``gradient(128) + ...`` for 128 rows per process. Between machines a
level costs more (the vector's bytes over the network); ``--level-us`` sets it.

Needs Open MPI's ``mpirun`` and mpi4py (``pip install 'fnn[mpi]'``); JAX is skipped when
absent. Run: ``python examples/benchmarks/parallel_speed.py`` (``--model cnn``,
``--rounds 3``, ``--json PATH``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PARAMS = {"mlp": 109_386, "cnn": 225_034}
"""The parameter counts of the two workloads (the reduced vector's length)."""


def mpirun_command(processes: int) -> list[str]:
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise SystemExit("needs mpirun (apt-get install openmpi-bin libopenmpi-dev)")
    return [mpirun, "--allow-run-as-root", "--bind-to", "core", "-n", str(processes)]


def run(
    name: str, launch: list[str], peer: list[str], args: argparse.Namespace, round_: int
) -> dict[str, Any]:
    """``run_peer.py`` with the arguments ``peer``, started by ``launch`` (``mpirun ...``
    or nothing); its record, or the error."""
    sys.path.insert(0, str(HERE))
    import run_peer

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        full = [*launch, sys.executable, str(HERE / "run_peer.py"), *peer]
        full += [f"--epochs={args.epochs}", f"--seed={round_}", f"--model={args.model}"]
        full += [f"--train-size={args.train_size}", f"--out={out}"]
        threads = args.processes if peer[0] != "fnn" else 1
        env = {**os.environ, **run_peer.thread_env(threads)}
        done = subprocess.run(full, env=env, capture_output=True, text=True, check=False)
        if done.returncode or not out.exists():
            return {"name": name, "error": done.stderr[-2000:]}
        record: dict[str, Any] = json.loads(out.read_text())
    record["name"] = name
    return record


def median_epoch(record: dict[str, Any]) -> float:
    return float(statistics.median(record["epoch_seconds"][1:]))


def reduction_seconds(processes: int, size: int, repeats: int = 300) -> dict[str, float]:
    """Time reduce_shards and Allreduce of ``size`` float32 on ``processes`` processes."""
    command = mpirun_command(processes)
    child = [sys.executable, __file__, "--reduce-child", str(size), str(repeats)]
    done = subprocess.run([*command, *child], capture_output=True, text=True, check=True)
    out: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def reduce_child(size: int, repeats: int) -> None:
    """Under mpirun: the best time of each reduction over ``repeats`` (rank 0 prints)."""
    import numpy as np

    import fnn

    fnn.runtime.keep_freed_memory()  # as a training step does (none is made here)
    comm: Any = fnn.parallel.world()
    rank, processes = fnn.parallel.rank_and_size(comm)
    shards = processes
    vector = np.full(size, rank + 1, np.float32)
    template = [vector]
    mine = {s: [vector] for s in fnn.parallel.owned_shards(shards, comm)}
    nonempty = [True] * shards
    result = np.empty_like(vector)

    def best(action: Any) -> float:
        times = []
        for _ in range(repeats):
            comm.Barrier()
            began = time.perf_counter()
            action()
            times.append(time.perf_counter() - began)
        return min(times)

    tree = best(lambda: fnn.parallel.reduce_shards(mine, shards, nonempty, template, comm))
    allreduce = best(lambda: comm.Allreduce(vector, result))
    times = {"reduce_shards": tree, "allreduce": allreduce}
    if fnn.parallel.scatters(comm):
        vectors = {s: v[0] for s, v in mine.items()}

        def scatter_and_gather() -> None:
            part, _ = fnn.parallel.reduce_scatter_shards(vectors, shards, comm)
            fnn.parallel.gather_spans([part, part, part], size, comm)

        times["scatter_gather"] = best(scatter_and_gather)
    if rank == 0:
        print(json.dumps(times))


def best_of(action: Any, repeat: int = 30) -> float:
    """The least time of ``action()`` over ``repeat`` calls (after one warm-up)."""
    action()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def scaling_table(model: str, level_seconds: float, how: str = "measured") -> str:
    """The modelled step times of the module docstring, as a Markdown table, from parts
    timed in this process on one BLAS thread (``how``: where the reduction level's cost
    came from)."""
    import numpy as np

    import fnn
    from fnn import losses, optim

    fnn.runtime.set_blas_threads(1)  # the model's parts are one process's, on one thread

    sys.path.insert(0, str(HERE))
    import peer_fnn
    import workload as wl

    fnn.runtime.keep_freed_memory()  # as a training step does: its parts are timed alone
    net, in_shape = peer_fnn.build_model(wl.Workload(model=model))
    key = fnn.random.key(0)
    params = net.init(key, in_shape)
    pipeline = fnn.forward_backward(net, losses.softmax_cross_entropy)
    images = fnn.random.uniform(key, (128, *in_shape))
    labels = fnn.random.permutation(key, 128) % 10
    run_key = key if net.stochastic else None
    gradient = {
        rows: best_of(
            lambda rows=rows: pipeline(params, images[:rows], labels[:rows], None, run_key)
        )
        for rows in (128, 64, 32, 16, 8, 4, 2)
    }
    opt = optim.adam(1e-3)
    train = fnn.train_step(net, losses.softmax_cross_entropy, opt)
    state = fnn.train_state(opt, params, key)
    leaves, treedef = fnn.tree.flatten(params)
    layout = fnn.tree.layout_of(leaves, treedef)
    flat_grads = np.full(layout.size, 1e-3, layout.dtype)
    after_one = opt.update_flat(state.opt, flat_grads, layout, leaves)  # step 1: a step that
    leaves = fnn.tree.leaves(after_one.params)  # does not sweep tiny moments (1 in 16 do)
    update = best_of(lambda: opt.update_flat(after_one, flat_grads, layout, leaves))
    # the step less its timed parts: a difference of separately timed bests, which noise
    # can take below zero; no part of a step takes negative time
    rest = max(best_of(lambda: train(state, (images, labels))) - gradient[128] - update, 0.0)
    one = gradient[128] + rest + update
    lines = [
        f"{model.upper()}: gradient of 128 rows {gradient[128] * 1e3:.2f} ms, Adam "
        f"{update * 1e3:.2f} ms, the rest {rest * 1e3:.2f} ms (at least 0), a full-vector "
        f"reduction level {level_seconds * 1e6:.0f} us ({how}); one BLAS thread",
        "",
        "| processes | rows per shard | gradient ms | update ms | communication ms | step ms "
        "| speed-up | 128 rows per process: step ms | throughput x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in (1, 2, 4, 8, 16, 32, 64):
        talk = 4 * (1 - 1 / n) * level_seconds
        step = gradient[128 // n] + rest + update / n + talk
        weak = gradient[128] + rest + update / n + talk
        lines.append(
            f"| {n} | {128 // n} | {gradient[128 // n] * 1e3:.3f} | {update / n * 1e3:.3f} | "
            f"{talk * 1e3:.3f} | {step * 1e3:.3f} | {one / step:.2f} | {weak * 1e3:.3f} | "
            f"{n * one / weak:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--train-size", type=int, help="default 60,000 (MLP), 10,000 (CNN)")
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--table", action="store_true", help="print the scaling model only")
    parser.add_argument(
        "--level-us", type=float, help="a reduction level's cost (default: measured)"
    )
    parser.add_argument("--reduce-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rounds", "epochs", "processes", "shards", "train_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.level_us is not None and not args.level_us >= 0:
        parser.error(f"--level-us must be >= 0, got {args.level_us}")
    if args.reduce_child:
        reduce_child(*args.reduce_child)
        return 0
    if args.table:
        if args.level_us is not None:
            level, how = args.level_us * 1e-6, "given"
        else:
            level, how = reduction_seconds(2, PARAMS[args.model])["reduce_shards"], "measured"
        print(scaling_table(args.model, level, how))
        return 0
    if importlib.util.find_spec("mpi4py") is None:
        raise SystemExit("needs mpi4py: pip install 'fnn[mpi]'")
    if args.train_size is None:
        args.train_size = 60_000 if args.model == "mlp" else 10_000
    n, s = args.processes, args.shards
    jobs = {
        f"fnn S={s} x1": ["taskset", "-c", "0"] if shutil.which("taskset") else [],
        f"fnn S={s} x{n}": mpirun_command(n),
    }
    peers = {name: ["fnn", f"--shards={s}"] for name in jobs}
    if importlib.util.find_spec("jax") is not None:
        jobs[f"jax {n} thr"] = []
        peers[f"jax {n} thr"] = ["jax", f"--threads={n}"]
    if args.model == "cnn" and importlib.util.find_spec("torch") is not None:
        jobs[f"torch-cl {n} thr"] = []  # PyTorch's faster format for the CNN
        peers[f"torch-cl {n} thr"] = ["torch-cl", f"--threads={n}"]
    records = []
    for round_ in range(args.rounds):
        names = list(jobs)
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            record = run(name, jobs[name], peers[name], args, round_)
            records.append(record)
            shown = "FAILED " + record["error"] if "error" in record else (
                f"{median_epoch(record):.3f} s/epoch  acc {record['test_accuracy']:.4f}"
            )  # fmt: skip
            print(f"round {round_ + 1}  {name:<14} {shown}", file=sys.stderr, flush=True)
    reduction = reduction_seconds(n, PARAMS[args.model])
    medians = {
        name: statistics.median(median_epoch(r) for r in records if r["name"] == name)
        for name in jobs
        if any(r["name"] == name and "error" not in r for r in records)
    }
    print(f"{args.model.upper()} workload, batch 128 in {s} shards, {args.train_size} images")
    for name, seconds in medians.items():
        print(f"  {name:<14} {seconds:.3f} s/epoch")
    one, many = medians.get(f"fnn S={s} x1"), medians.get(f"fnn S={s} x{n}")
    if one and many:
        verdict = "PASS" if many / one <= 0.65 else "FAIL"
        print(f"  fnn on {n} / fnn on 1: {many / one:.2f} (target <= 0.65: {verdict})")
    torch = medians.get(f"torch-cl {n} thr")
    if many and torch:
        print(f"  fnn on {n} / PyTorch (channels_last) at {n} threads: {many / torch:.2f}")
    jax = medians.get(f"jax {n} thr")
    if many and jax:
        verdict = "PASS" if many / jax <= 1.0 else "FAIL"
        print(f"  fnn on {n} / JAX at {n} threads: {many / jax:.2f} (target <= 1.0: {verdict})")
    shared = reduction.get("scatter_gather")
    print(
        f"  one reduction of {PARAMS[args.model]:,} float32 on {n} processes: reduce_shards "
        f"{reduction['reduce_shards'] * 1e6:.0f} us, "
        f"Allreduce {reduction['allreduce'] * 1e6:.0f} us"
        + ("" if shared is None else f"; reduce-scatter + gather of 3: {shared * 1e6:.0f} us")
    )
    if args.json:
        args.json.write_text(
            json.dumps({"records": records, "medians": medians, "reduction": reduction}) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
