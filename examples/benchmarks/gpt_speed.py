"""GPT training speed: fnn against two PyTorch eager peers on nanoGPT's CPU recipe.

The workload is ``peer_torch_gpt.py``'s: character-level Tiny Shakespeare, a GPT of 4
layers, 4 heads, 128 wide, windows of 64, no biases, tied embedding, exact GELU; AdamW
1e-3 (0.9, 0.99, decay 0.1 on the matrices), gradients clipped to norm 1, warm-up 100
then cosine to 1e-4 at 2,000, batches of 12, float32. fnn trains it as ``fnn train
--model gpt`` does: ``nn.gpt``, ``optim.chain(optim.clip_by_global_norm(1.0),
optim.adamw(optim.warmup_cosine(...), b2=0.99, weight_decay=0.1, weights_only=True))``,
one ``fnn.train_step`` per batch, accuracy not counted; no ``fnn.runtime`` call but the
thread count, as a user's script makes none (``train_step`` keeps freed memory itself;
``--keep-freed-memory`` calls ``fnn.runtime.keep_freed_memory()`` first, as ``fnn
train`` does). The PyTorch peers: ``torch``, the lean one written from the recipe
(``peer_torch_gpt.py``: functions of a dict of parameters, AdamW ``fused=True``,
PyTorch's fastest on a CPU), and ``nanogpt``, nanoGPT's own program as it runs on a CPU
(``peer_nanogpt.py``: its ``nn.Module`` model with its zero-rate dropouts, its
``get_batch`` from a memory-mapped token file, the for-each AdamW that its
``configure_optimizers`` picks without CUDA, ``loss.item()`` every step). All train from
the same windows: the offsets are drawn once here (``--seed``) and fed to each; each
step's time includes cutting its windows out of the text.

Each (peer, thread count, round) runs in a process of its own, its thread count fixed
before NumPy or PyTorch loads (``run_peer.thread_env``); within a round the thread counts
and peers take turns, so a busy minute on a shared machine falls on all of them. At ``T >
1`` threads fnn runs three ways: ``fnn`` with ``T`` BLAS threads
(``fnn.runtime.set_blas_threads(T)``); ``fnn-shards``, ``T`` shards of each batch on
``T`` threads with one BLAS thread (``fnn.train_step(..., shards=T, threads=T)``); and
``fnn-mpi``, the same ``T`` shards on ``T`` processes (``mpirun -n T``, one shard and one
BLAS thread each, ``fnn.train_step(..., shards=T, comm=fnn.parallel.world())``: the bits
of ``fnn-shards``), where the shards do not queue for one GIL. It needs Open MPI's
``mpirun`` and mpi4py, and is left out, with a note, without them, and at more threads
than the CPUs this process may use (it binds a process to each). The ratios are taken for
the faster of ``fnn`` and ``fnn-shards`` (threads of one process), and for ``fnn-mpi`` on
a line of its own. Its CPU time is that of all its processes, and counts the time a
process spends polling while it waits for the others in a reduction (Open MPI waits
busily): about processes x wall time, whatever the work. PyTorch:
``torch.set_num_threads(T)``.

Printed per thread count: each peer's median ms/step (of the steps after the first 10;
the median over rounds of that), the 10th percentile of its steps (the median over
rounds: on a shared machine, whose neighbours' load comes in bursts of seconds, the steps
outside the bursts) and its median CPU time per step (the process's, all its threads: on
a shared machine, the work without the waits for a core; at more than one thread it
counts every thread, spinning ones too); fnn/torch and fnn/nanoGPT in time, in CPU time
and by the 10th percentiles; each peer's final training loss (the last step's batch) and
whole-split validation loss; and fnn's step split: the step (with ``T`` BLAS threads, one
shard) timed alone as the best of several passes over 10 batches, against every matrix
product of it timed alone at the step's shapes and layouts (:func:`step_products`; best
of several loops): ``rest = step - products`` (the elementwise work, the optimizer,
Python). Also the CPU (:func:`run_peer.cpu_model`) and the load average before and after.

Run (PyTorch is never an fnn dependency; ``pip install -e '.[oracle]'`` brings it)::

    python examples/benchmarks/gpt_speed.py                       # 200 steps, 1 and 2 threads
    python examples/benchmarks/gpt_speed.py --steps 100 --rounds 3 --json gpt.json
    python examples/benchmarks/gpt_speed.py --threads 1 --peers fnn --steps 50
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import peer_nanogpt
import peer_torch_gpt as peer
import run_peer
from cnn_split import best_seconds
from parallel_speed import mpirun_command

HERE = Path(__file__).resolve().parent
PEERS = ("fnn", "fnn-shards", "fnn-mpi", "torch", "nanogpt")
"""``fnn-shards`` and ``fnn-mpi`` run only at more than one thread; ``torch`` is the lean
PyTorch peer (``peer_torch_gpt.py``, AdamW fused), ``nanogpt`` nanoGPT's own modules and
loop on a CPU (``peer_nanogpt.py``, its for-each AdamW)."""
THREADED = ("fnn", "fnn-shards")
"""fnn's peers that run in one process (the ratios take the faster)."""
TORCH_PEERS = {"torch": "torch", "nanogpt": "nanoGPT"}
"""The PyTorch peers and the name of each in the ratios."""
SKIP = 10
"""Steps left out of a run's median (warm-up: the first call checks the batch, caches
fill); fewer when a run is short."""


# -- the products of one step ---------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    """One matrix product ``a @ b`` of the step (stacked for attention's heads)."""

    name: str
    a: npt.NDArray[np.float32]
    b: npt.NDArray[np.float32]

    @property
    def flops(self) -> int:
        """``2 m k n`` for each matrix of the stack."""
        stack = int(np.prod(self.a.shape[:-2])) if self.a.ndim > 2 else 1
        return 2 * stack * int(self.a.shape[-2]) * int(self.a.shape[-1]) * int(self.b.shape[-1])


def step_products(
    batch: int = peer.BATCH_SIZE,
    context: int = peer.CONTEXT,
    features: int = peer.N_EMBD,
    heads: int = peer.N_HEAD,
    layers: int = peer.N_LAYER,
    vocab: int = 65,
) -> list[Product]:
    """Every matrix product of one fnn training step of ``nn.gpt(vocab, context, layers,
    heads, features)`` on ``batch`` windows, on random float32 arrays of the shapes and
    layouts the layers use (transposes as views, attention's keys, queries and values as
    views of the fused projection, as ``fnn/nn/_attention.py`` makes them). The
    embedding's input gradient is never computed; the tied table's gradient is its
    lookup's plus the output's product."""
    rng = np.random.default_rng(0)
    n, c, t, dh = batch * context, features, context, features // heads

    def rand(*shape: int) -> npt.NDArray[np.float32]:
        return rng.standard_normal(shape, dtype=np.float32)

    def dense(name: str, rows: int, inp: int, out: int) -> list[Product]:
        x, w, dy = rand(rows, inp), rand(inp, out), rand(rows, out)
        return [
            Product(f"{name} forward", x, w),
            Product(f"{name} dw", x.T, dy),
            Product(f"{name} dx", dy, w.T),
        ]

    qkv = rand(batch, t, 3, heads, dh)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    probs = rand(batch, heads, t, t)  # (keys, queries)
    do = rand(batch, t, heads, dh).transpose(0, 2, 1, 3)
    attention = [
        Product("attention scores", k, rand(batch, heads, dh, t)),
        Product("attention p v", probs.swapaxes(-1, -2), v),
        Product("attention dv", probs, do),
        Product("attention dp", v, rand(batch, heads, dh, t)),
        Product("attention dk", probs, q),
        Product("attention dq", probs.swapaxes(-1, -2), k),
    ]
    block = [
        *dense("qkv", n, c, 3 * c),
        *attention,
        *dense("attention out", n, c, c),
        *dense("mlp up", n, c, 4 * c),
        *dense("mlp down", n, 4 * c, c),
    ]
    h, table, dlogits = rand(n, c), rand(vocab, c), rand(n, vocab)
    tied = [
        Product("logits", h, table.T),
        Product("logits dh", dlogits, table),
        Product("logits dtable", dlogits.T, h),
    ]
    return block * layers + tied


# -- the peers (each in a process of its own) -------------------------------------------------


def windows(
    text: peer.Text, offsets: npt.NDArray[np.int64], step: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The inputs and targets ``(batch, CONTEXT)`` of step ``step``."""
    idx = offsets[step][:, None] + np.arange(peer.CONTEXT)
    return text.train[idx], text.train[idx + 1]


def fnn_val_loss(model: Any, params: Any, val: npt.NDArray[np.int64]) -> float:
    """:func:`peer_torch_gpt.val_loss` in fnn: the mean cross-entropy over the whole split
    in non-overlapping windows of ``CONTEXT``."""
    import fnn

    count = (len(val) - 1) // peer.CONTEXT
    idx = np.arange(count)[:, None] * peer.CONTEXT + np.arange(peer.CONTEXT)
    total = 0.0
    for start in range(0, count, peer.EVAL_BATCH):
        rows = idx[start : start + peer.EVAL_BATCH]
        logits = model.apply(params, val[rows])
        value, _ = fnn.losses.softmax_cross_entropy(logits, val[rows + 1])
        total += value * rows.size
    return total / max(count * peer.CONTEXT, 1)


def run_fnn(
    steps: int,
    threads: int,
    shards: int,
    seed: int,
    text_path: str | Path,
    offsets: npt.NDArray[np.int64],
    keep_freed_memory: bool = False,
    split: bool = True,
    comm: Any = None,
) -> dict[str, Any] | None:
    """Train the recipe's GPT with fnn for ``steps`` steps on the windows at ``offsets``;
    with ``split``, then time the step alone and its matrix products alone. With ``comm``
    (an MPI communicator: the shards on its processes, ``threads`` being 1), the record
    is the first process's, its CPU times those of all the processes, and None elsewhere."""
    import fnn
    from fnn import losses, nn, optim

    if keep_freed_memory:
        fnn.runtime.keep_freed_memory()
    fnn.runtime.set_blas_threads(1 if shards > 1 else threads)
    text = peer.load_text(text_path)
    model = nn.gpt(text.vocab_size, peer.CONTEXT, peer.N_LAYER, peer.N_HEAD, peer.N_EMBD)
    key = fnn.random.key(seed)
    params = model.init(key, (peer.CONTEXT,))
    schedule = optim.warmup_cosine(
        peer.LR, peer.WARMUP_ITERS, peer.LR_DECAY_ITERS, final=peer.MIN_LR
    )
    b1, b2 = peer.BETAS
    opt = optim.chain(
        optim.clip_by_global_norm(peer.GRAD_CLIP),
        optim.adamw(schedule, b1, b2, peer.EPS, peer.WEIGHT_DECAY, weights_only=True),
    )
    step = fnn.train_step(
        model,
        losses.softmax_cross_entropy,
        opt,
        shards=shards,
        comm=comm,
        threads=threads if shards > 1 else 1,
        accuracy=False,
    )
    state = fnn.train_state(opt, params, key)

    def train_one(i: int) -> float:
        nonlocal state
        x, y = windows(text, offsets, i)
        before = state.metrics.loss_sum
        state = step(state, (x, y))
        return (state.metrics.loss_sum - before) / len(x)

    seconds, step_seconds, step_cpu_seconds, step_losses = peer.timed_steps(steps, train_one)
    if comm is not None:  # every process's CPU time, step by step
        step_cpu_seconds = [sum(each) for each in zip(*comm.allgather(step_cpu_seconds))]
        if comm.Get_rank():
            return None
    record: dict[str, Any] = {
        "seconds": seconds,
        "step_seconds": step_seconds,
        "step_cpu_seconds": step_cpu_seconds,
        "losses": step_losses,
        "val_loss": fnn_val_loss(model, state.opt.params, text.val),
        "n_params": fnn.tree.size(params),
        "processes": fnn.parallel.rank_and_size(comm)[1],
        "numpy_version": np.__version__,
    }
    if split and shards == 1 and comm is None:
        record["split"] = step_split(step, state, text, offsets)
    return record


def step_split(step: Any, state: Any, text: peer.Text, offsets: Any) -> dict[str, Any]:
    """The step timed alone (the best of 5 passes over 10 batches, from ``state``) and
    each of its matrix products timed alone (:func:`step_products`)."""
    batches = [windows(text, offsets, i % len(offsets)) for i in range(10)]

    def passes() -> None:
        s = state
        for batch in batches:
            s = step(s, batch)

    step_seconds = best_seconds(passes, loops=1, repeat=5) / len(batches)
    rows: list[dict[str, Any]] = []
    for p in step_products(len(offsets[0]), vocab=text.vocab_size):
        seconds = best_seconds(functools.partial(np.matmul, p.a, p.b))
        rows.append({"product": p.name, "seconds": seconds, "flops": p.flops})
    products = sum(float(row["seconds"]) for row in rows)
    return {
        "step_seconds": step_seconds,
        "product_seconds": products,
        "rest_seconds": step_seconds - products,
        "flops": sum(int(row["flops"]) for row in rows),
        "products": rows,
    }


def run_torch(
    steps: int,
    threads: int,
    seed: int,
    text_path: str | Path,
    offsets: npt.NDArray[np.int64],
    nanogpt: bool = False,
) -> dict[str, Any]:
    """Train the recipe's GPT with a PyTorch peer on the windows at ``offsets``: the lean
    one, or with ``nanogpt`` nanoGPT's modules and loop."""
    train = peer_nanogpt.train if nanogpt else peer.train
    r = train(steps, threads, seed, text_path, offsets)
    return {
        "seconds": r.seconds,
        "step_seconds": r.step_seconds,
        "step_cpu_seconds": r.step_cpu_seconds,
        "losses": r.losses,
        "val_loss": r.val_loss,
        "n_params": r.n_params,
        "torch_version": r.torch_version,
    }


def child(args: argparse.Namespace) -> dict[str, Any] | None:
    """The run of one peer at one thread count, in this process (None on the processes
    of an ``fnn-mpi`` run but the first)."""
    offsets = np.load(args.offsets)
    record: dict[str, Any] | None
    if args.child in TORCH_PEERS:
        record = run_torch(
            args.steps, args.child_threads, args.seed, args.text, offsets, args.child == "nanogpt"
        )
    else:
        import fnn

        on_processes = args.child == "fnn-mpi"
        shards = 1 if args.child == "fnn" else args.child_threads
        comm = fnn.parallel.world() if on_processes else None
        with fnn.parallel.abort_on_error(comm):  # an error on one process ends them all
            record = run_fnn(
                args.steps,
                1 if on_processes else args.child_threads,
                shards,
                args.seed,
                args.text,
                offsets,
                keep_freed_memory=args.keep_freed_memory,
                split=not args.no_split,
                comm=comm,
            )
    return None if record is None else {"peer": args.child, "threads": args.child_threads, **record}


def can_run_processes() -> str | None:
    """Why ``fnn-mpi`` cannot run here (no ``mpirun``, one that is not Open MPI's, whose
    options the command passes, or no mpi4py), or None."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        return "no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True, check=False)
    if "Open MPI" not in version.stdout + version.stderr:
        return f"{mpirun} is not Open MPI's"
    if importlib.util.find_spec("mpi4py") is None:
        return "no mpi4py (pip install -e '.[mpi]')"
    return None


def cores() -> int:
    """The CPUs this process may run on: ``fnn-mpi`` binds a process to each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


RUN_TIMEOUT = 900
"""Seconds a run may take before the benchmark ends it (a process of ``fnn-mpi`` left
waiting for another, say), plus one per step."""


# -- the report ----------------------------------------------------------------------------------


def median_ms(record: dict[str, Any], key: str = "step_seconds") -> float:
    """The median step time of a run in ms (``key="step_cpu_seconds"``: CPU time), its
    first :data:`SKIP` steps left out (fewer for a short run)."""
    times: list[float] = record[key]
    skip = min(SKIP, len(times) // 4)
    return 1000.0 * statistics.median(times[skip:])


def tenth_ms(record: dict[str, Any]) -> float:
    """The 10th percentile of a run's step times in ms (the first :data:`SKIP` steps left
    out): on a shared machine, whose neighbours' load comes in bursts of seconds that slow
    whichever peer runs then, the steps outside the bursts."""
    times: list[float] = record["step_seconds"]
    kept = sorted(times[min(SKIP, len(times) // 4) :])
    return 1000.0 * kept[(len(kept) - 1) // 10]


def summarize(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per thread count and peer: the median over rounds of each run's median ms/step, the
    last run's final training loss and validation loss, and fnn's split (of its runs)."""
    out: dict[int, dict[str, Any]] = {}
    for r in records:
        entry = out.setdefault(r["threads"], {}).setdefault(
            r["peer"], {"ms": [], "p10": [], "cpu": [], "loss": None, "val": None, "split": []}
        )
        entry["ms"].append(median_ms(r))
        entry["p10"].append(tenth_ms(r))
        if r.get("step_cpu_seconds"):
            entry["cpu"].append(median_ms(r, "step_cpu_seconds"))
        entry["loss"], entry["val"] = r["losses"][-1], r["val_loss"]
        if "split" in r:
            entry["split"].append(r["split"])
    for peers in out.values():
        for entry in peers.values():
            entry["median_ms"] = statistics.median(entry["ms"])
            entry["p10_ms"] = statistics.median(entry["p10"])
            entry["median_cpu_ms"] = statistics.median(entry["cpu"]) if entry["cpu"] else None
    return out


def report(summary: dict[int, dict[str, Any]]) -> str:
    """The printed table: ms/step, ratios, losses and fnn's split per thread count."""
    lines = []
    for threads in sorted(summary):
        peers = summary[threads]
        lines.append(f"{threads} thread(s):")
        for name in PEERS:
            if name not in peers:
                continue
            e = peers[name]
            rounds = ", ".join(f"{ms:.1f}" for ms in e["ms"])
            cpu = "" if e["median_cpu_ms"] is None else f", CPU {e['median_cpu_ms']:.1f} ms/step"
            lines.append(
                f"  {name:<11} {e['median_ms']:7.1f} ms/step (rounds: {rounds}; p10 "
                f"{e['p10_ms']:.1f}){cpu}; final train loss {e['loss']:.4f}, val loss "
                f"{e['val']:.4f}"
            )
        threaded = [n for n in THREADED if n in peers]
        ours = [min(threaded, key=lambda n: peers[n]["median_ms"])] if threaded else []
        ours += ["fnn-mpi"] * ("fnn-mpi" in peers)
        for other in (name for name in TORCH_PEERS if name in peers):
            for best in ours:
                ratio = peers[best]["median_ms"] / peers[other]["median_ms"]
                cpus = peers[best]["median_cpu_ms"], peers[other]["median_cpu_ms"]
                in_cpu = f"; in CPU time {cpus[0] / cpus[1]:.2f}" if None not in cpus else ""
                p10 = peers[best]["p10_ms"] / peers[other]["p10_ms"]
                label = "fnn/" + TORCH_PEERS[other]
                lines.append(f"  {label:<11} {ratio:.2f} ({best}){in_cpu}; by p10 {p10:.2f}")
        for s in peers.get("fnn", {}).get("split", [])[-1:]:
            step, prod = s["step_seconds"], s["product_seconds"]
            lines.append(
                f"  fnn step split: {1e3 * step:.1f} ms = matrix products {1e3 * prod:.1f} ms "
                f"({prod / step:.0%}; {s['flops'] / 1e9:.2f} GFLOP at "
                f"{s['flops'] / prod / 1e9:.0f} GFLOP/s) + the rest {1e3 * (step - prod):.1f} ms"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per run")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each peer and count")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"of {', '.join(PEERS)}")
    parser.add_argument("--seed", type=int, default=0, help="the windows and the weights")
    parser.add_argument("--text", default=str(peer.TEXT_PATH), help="the text to train on")
    parser.add_argument("--json", type=Path, help="write the records and summary here")
    parser.add_argument("--no-split", action="store_true", help="skip fnn's step split")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call fnn.runtime.keep_freed_memory() first in the fnn runs (as fnn train does)",
    )
    parser.add_argument("--child", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--offsets", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in str(args.threads).split(",")]
    args.peers = [p for p in str(args.peers).split(",") if p]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(PEERS)}")
    if args.steps < 1 or args.rounds < 1 or min(args.threads) < 1:
        parser.error("--steps, --rounds and every thread count must be >= 1")
    return args


def runs(args: argparse.Namespace) -> list[tuple[int, str]]:
    """``(threads, peer)`` of one round, in the order they run."""
    return [
        (threads, name)
        for threads in args.threads
        for name in args.peers
        if not (name in ("fnn-shards", "fnn-mpi") and threads == 1)
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        record = child(args)
        if record is not None:
            print(json.dumps(record))
        return 0
    text = peer.load_text(args.text)
    high = len(text.train) - peer.CONTEXT
    offsets = np.random.default_rng(args.seed).integers(0, high, (args.steps, peer.BATCH_SIZE))
    cpu, load_before = run_peer.cpu_model(), os.getloadavg()
    why_not = can_run_processes() if "fnn-mpi" in args.peers else None
    if why_not is not None:
        print(f"note: fnn-mpi left out: {why_not}", flush=True)
        args.peers.remove("fnn-mpi")
    too_many = [t for t in args.threads if t > cores()] if "fnn-mpi" in args.peers else []
    if too_many:
        print(
            f"note: fnn-mpi left out at {', '.join(map(str, too_many))} thread(s): more "
            f"processes than the {cores()} CPUs this process may use",
            flush=True,
        )
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "offsets.npy"
        np.save(path, offsets)
        for round_ in range(args.rounds):
            for threads, name in runs(args):
                if name == "fnn-mpi" and threads in too_many:
                    continue
                blas = 1 if name in ("fnn-shards", "fnn-mpi") else threads
                env = {**os.environ, **run_peer.thread_env(blas)}
                command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
                if name == "fnn-mpi":
                    command = [*mpirun_command(threads), *command]
                command += ["--child-threads", str(threads), "--offsets", str(path)]
                command += ["--steps", str(args.steps), "--seed", str(args.seed)]
                command += ["--text", str(args.text)]
                command += ["--no-split"] * args.no_split
                command += ["--keep-freed-memory"] * args.keep_freed_memory
                limit = RUN_TIMEOUT + args.steps
                try:
                    done = subprocess.run(
                        command, env=env, capture_output=True, text=True, timeout=limit
                    )
                except subprocess.TimeoutExpired:
                    raise SystemExit(
                        f"the {name} run at {threads} thread(s) did not end in {limit} s"
                    ) from None
                if done.returncode:
                    sys.stderr.write(done.stderr)
                    raise SystemExit(f"the {name} run at {threads} thread(s) failed")
                record = json.loads(done.stdout.splitlines()[-1])
                record["round"] = round_
                records.append(record)
                print(
                    f"round {round_}, {threads} thread(s), {name}: {median_ms(record):.1f} "
                    f"ms/step (CPU {median_ms(record, 'step_cpu_seconds'):.1f}), final loss "
                    f"{record['losses'][-1]:.4f}",
                    flush=True,
                )
    load_after = os.getloadavg()
    summary = summarize(records)
    print(f"CPU: {cpu}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{args.steps} steps of the same windows for each peer, {args.rounds} round(s)")
    print(report(summary))
    if args.json:
        payload = {"cpu": cpu, "load": [load_before, load_after], "records": records}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
