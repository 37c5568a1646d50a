"""The PyTorch peer of the GPT workload: nanoGPT's CPU recipe for character-level Tiny
Shakespeare, in PyTorch eager mode.

The recipe (nanoGPT's README, "I only have a macbook": ``config/train_shakespeare_char.py``
with ``--device=cpu --compile=False --block_size=64 --batch_size=12 --n_layer=4
--n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``; ``bias``
is ``False`` by default in nanoGPT's ``train.py``):

* data: the sorted distinct characters of the text are the vocabulary (65 for Tiny
  Shakespeare), the first 90% of the characters train, the rest validate; each step
  takes ``BATCH_SIZE`` (12) random windows of ``CONTEXT + 1`` (65) characters of the
  training split, an input and its next-character target (nanoGPT's ``get_batch``:
  offsets uniform in ``[0, len(train) - CONTEXT)``).
* model: GPT with a tied token embedding and output head (65 x 128), a learned position
  embedding (64 x 128), ``N_LAYER`` (4) pre-norm blocks: ``x + attn(ln_1(x))`` then
  ``x + mlp(ln_2(x))``, the attention ``N_HEAD`` (4) heads of
  ``scaled_dot_product_attention(is_causal=True)`` between a fused QKV projection
  (``c_attn``) and an output projection (``c_proj``), the MLP 128 -> 512 -> 128 with exact
  (erf) GELU; a final ``ln_f``. No biases anywhere (``Linear`` or ``LayerNorm``); layer
  norms have eps 1e-5 and weights of ones; every matrix is drawn from normal(0, 0.02)
  except the residual projections (both ``c_proj``), normal(0, 0.02 / sqrt(2 N_LAYER)).
  804,096 parameters; dropout 0 (none).
* training: cross-entropy over every position, AdamW (lr 1e-3, betas (0.9, 0.99), eps
  1e-8) with weight decay 0.1 on the matrices (``dim >= 2``) and none on the layer norms
  (nanoGPT's ``configure_optimizers``), the gradients clipped to global norm 1.0, the
  learning rate of nanoGPT's ``get_lr``: ``LR * (it + 1) / (WARMUP + 1)`` for the first
  100 steps, then cosine from 1e-3 down to 1e-4 at step 2000; float32.

The model is written as functions of a dict of parameters named as nanoGPT names them
(``transformer.h.0.attn.c_attn.weight`` and so on) rather than as ``nn.Module`` subclasses, over
the same ``torch.nn.functional`` calls nanoGPT's modules make (``embedding``,
``layer_norm``, ``linear``, ``scaled_dot_product_attention``, ``gelu``,
``cross_entropy``). AdamW is ``fused=True`` (PyTorch's fastest on CPU, as the other
PyTorch peers use; nanoGPT only fuses on CUDA: ``fused=False`` gives its for-loop AdamW,
the same update). nanoGPT runs ``max_iters + 1`` steps (0 to 2000, the last at the
minimum rate); here ``steps`` means ``steps`` (0 to ``steps - 1``).

The validation loss is over the whole validation split, not nanoGPT's estimate from 20
random batches: window ``i`` is ``val[64 i : 64 i + 65]`` for every ``i`` that fits, the
input its first 64 characters and the target its last 64; the mean cross-entropy over
all those tokens (nanoGPT's own step-2000 model scores about 1.898 so).

``train`` is the API of a benchmark harness; ``offsets`` lets it feed this peer and fnn
the very same windows (the offsets drawn here are in the result, to replay elsewhere).
PyTorch is imported inside :func:`train` (it is not a dependency of fnn; mypy sees it as
``Any``). By hand::

    python examples/benchmarks/peer_torch_gpt.py --steps 2000 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

TEXT_PATH = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare.txt"
"""Tiny Shakespeare, beside the repository: ``../shared/data/tinyshakespeare.txt``."""

CONTEXT = 64
"""Characters of context (nanoGPT's ``block_size``)."""
N_LAYER, N_HEAD, N_EMBD = 4, 4, 128
BATCH_SIZE = 12
LR, MIN_LR = 1e-3, 1e-4
WARMUP_ITERS, LR_DECAY_ITERS = 100, 2000
BETAS, EPS = (0.9, 0.99), 1e-8
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
TRAIN_FRACTION = 0.9
LN_EPS = 1e-5
INIT_STD = 0.02
EVAL_BATCH = 256
"""Validation windows per forward pass."""

I64 = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class Text:
    """The text encoded as character ids: ``chars`` (the vocabulary, sorted), the
    training split and the validation split."""

    chars: str
    train: I64
    val: I64

    @property
    def vocab_size(self) -> int:
        return len(self.chars)


def load_text(path: str | Path = TEXT_PATH) -> Text:
    """The text at ``path`` as ids into its sorted distinct characters, split 90/10."""
    text = Path(path).read_text(encoding="utf-8")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab = np.unique(codes)
    ids = np.searchsorted(vocab, codes).astype(np.int64)
    n = int(len(ids) * TRAIN_FRACTION)
    return Text("".join(map(chr, vocab.tolist())), ids[:n], ids[n:])


def get_lr(it: int) -> float:
    """nanoGPT's ``get_lr``: linear warmup, then cosine decay to ``MIN_LR``."""
    if it < WARMUP_ITERS:
        return LR * (it + 1) / (WARMUP_ITERS + 1)
    if it > LR_DECAY_ITERS:
        return MIN_LR
    ratio = (it - WARMUP_ITERS) / (LR_DECAY_ITERS - WARMUP_ITERS)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def init_params(torch: Any, vocab_size: int) -> dict[str, Any]:
    """The GPT's parameters (``requires_grad``), in nanoGPT's ``named_parameters`` order
    and names, drawn from torch's global generator (seed it first). The token embedding
    ``transformer.wte.weight`` is also the output head (tied)."""
    c = N_EMBD

    def normal(*shape: int, std: float = INIT_STD) -> Any:
        return torch.nn.Parameter(torch.empty(shape).normal_(0.0, std))

    def ones(n: int) -> Any:
        return torch.nn.Parameter(torch.ones(n))

    proj_std = INIT_STD / math.sqrt(2 * N_LAYER)
    params = {
        "transformer.wte.weight": normal(vocab_size, c),
        "transformer.wpe.weight": normal(CONTEXT, c),
    }
    for layer in range(N_LAYER):
        h = f"transformer.h.{layer}."
        params[h + "ln_1.weight"] = ones(c)
        params[h + "attn.c_attn.weight"] = normal(3 * c, c)
        params[h + "attn.c_proj.weight"] = normal(c, c, std=proj_std)
        params[h + "ln_2.weight"] = ones(c)
        params[h + "mlp.c_fc.weight"] = normal(4 * c, c)
        params[h + "mlp.c_proj.weight"] = normal(c, 4 * c, std=proj_std)
    params["transformer.ln_f.weight"] = ones(c)
    return params


def forward(torch: Any, params: dict[str, Any], idx: Any) -> Any:
    """The logits ``(b, t, vocab)`` of the GPT for the ids ``idx`` ``(b, t)``."""
    F = torch.nn.functional
    b, t = idx.shape
    c, heads = N_EMBD, N_HEAD
    pos = torch.arange(t, dtype=torch.long)
    wte = params["transformer.wte.weight"]
    x = F.embedding(idx, wte) + F.embedding(pos, params["transformer.wpe.weight"])
    for layer in range(N_LAYER):
        h = f"transformer.h.{layer}."
        a = F.layer_norm(x, (c,), params[h + "ln_1.weight"], None, LN_EPS)
        q, k, v = F.linear(a, params[h + "attn.c_attn.weight"]).split(c, dim=2)
        q = q.view(b, t, heads, c // heads).transpose(1, 2)
        k = k.view(b, t, heads, c // heads).transpose(1, 2)
        v = v.view(b, t, heads, c // heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        x = x + F.linear(y, params[h + "attn.c_proj.weight"])
        m = F.layer_norm(x, (c,), params[h + "ln_2.weight"], None, LN_EPS)
        m = F.gelu(F.linear(m, params[h + "mlp.c_fc.weight"]))
        x = x + F.linear(m, params[h + "mlp.c_proj.weight"])
    x = F.layer_norm(x, (c,), params["transformer.ln_f.weight"], None, LN_EPS)
    return F.linear(x, wte)


def loss_fn(torch: Any, params: dict[str, Any], x: Any, y: Any) -> Any:
    """Mean cross-entropy of the next-character predictions over every position."""
    logits = forward(torch, params, x)
    return torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))


def val_loss(torch: Any, params: dict[str, Any], val: I64, batch: int = EVAL_BATCH) -> float:
    """Mean cross-entropy over the whole split ``val`` in non-overlapping windows: window
    ``i`` is ``val[64 i : 64 i + 65]``, input its first 64 ids, target its last 64."""
    n = (len(val) - 1) // CONTEXT
    data = torch.from_numpy(val)
    cols = torch.arange(CONTEXT)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, n, batch):
            idx = torch.arange(start, min(start + batch, n))[:, None] * CONTEXT + cols
            x, y = data[idx], data[idx + 1]
            logits = forward(torch, params, x)
            loss = torch.nn.functional.cross_entropy(
                logits.view(-1, logits.size(-1)), y.view(-1), reduction="sum"
            )
            total += float(loss.item())
            count += y.numel()
    return total / count


def decay_groups(weights: list[Any]) -> list[dict[str, Any]]:
    """nanoGPT's AdamW groups: ``WEIGHT_DECAY`` on the parameters of two or more
    dimensions (matrices and embeddings), none on the rest (layer norms)."""
    return [
        {"params": [p for p in weights if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p in weights if p.dim() < 2], "weight_decay": 0.0},
    ]


def set_lr(opt: Any, it: int) -> None:
    """Every group's learning rate to :func:`get_lr` of step ``it``, as nanoGPT's loop."""
    lr = get_lr(it)
    for group in opt.param_groups:
        group["lr"] = lr


def finish_step(torch: Any, opt: Any, weights: Any, loss: Any) -> float:
    """The end of a training step from its ``loss``: backward, the gradients clipped to
    global norm ``GRAD_CLIP``, the AdamW step, the gradients dropped
    (``zero_grad(set_to_none=True)``); returns the loss as a float (``loss.item()``)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(weights, GRAD_CLIP)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.item())


def timed_steps(
    steps: int, step: Callable[[int], float]
) -> tuple[float, list[float], list[float], list[float]]:
    """``step(it)`` (one training step, returning its loss) for ``it`` in
    ``range(steps)``: ``(seconds, step_seconds, step_cpu_seconds, losses)``, the wall
    time of them all, then each step's wall time, CPU time (the process's) and loss."""
    step_seconds: list[float] = []
    step_cpu_seconds: list[float] = []
    losses: list[float] = []
    begin = time.perf_counter()
    for it in range(steps):
        t0, cpu0 = time.perf_counter(), time.process_time()
        losses.append(step(it))
        step_seconds.append(time.perf_counter() - t0)
        step_cpu_seconds.append(time.process_time() - cpu0)
    return time.perf_counter() - begin, step_seconds, step_cpu_seconds, losses


def result(
    torch: Any,
    timed: tuple[float, list[float], list[float], list[float]],
    threads: int,
    seed: int,
    text: Text,
    params: dict[str, Any],
    offsets: I64,
) -> Result:
    """The :class:`Result` of a run: ``timed`` is :func:`timed_steps`' output, ``params``
    the trained GPT's parameters by nanoGPT's names (the validation loss is taken of
    them, their sizes counted)."""
    seconds, step_seconds, step_cpu_seconds, losses = timed
    return Result(
        steps=len(losses),
        threads=threads,
        seed=seed,
        seconds=seconds,
        step_seconds=step_seconds,
        losses=losses,
        val_loss=val_loss(torch, params, text.val),
        offsets=offsets,
        n_params=sum(int(p.numel()) for p in params.values()),
        vocab_size=text.vocab_size,
        torch_version=str(torch.__version__),
        step_cpu_seconds=step_cpu_seconds,
    )


@dataclasses.dataclass(frozen=True)
class Result:
    """One training run: ``seconds`` the wall time of the whole training loop (data
    loading, model building and the validation pass excluded), ``step_seconds`` each
    step's, ``losses`` each step's training loss (its batch's), ``val_loss`` over the
    whole validation split after the last step (see :func:`val_loss`), ``offsets``
    ``(steps, BATCH_SIZE)`` the windows' start in the training split at each step, and
    ``step_cpu_seconds`` each step's CPU time (the process's, all its threads: on a busy
    machine the work a step took, without the waits for a core)."""

    steps: int
    threads: int
    seed: int
    seconds: float
    step_seconds: list[float]
    losses: list[float]
    val_loss: float
    offsets: I64
    n_params: int
    vocab_size: int
    torch_version: str
    step_cpu_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def final_loss(self) -> float:
        """The training loss of the last step (on its batch of 12 x 64 tokens)."""
        return self.losses[-1]

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def median_step_ms(self) -> float:
        return 1000.0 * statistics.median(self.step_seconds)


def train(
    steps: int,
    threads: int,
    seed: int = 0,
    text_path: str | Path = TEXT_PATH,
    offsets: npt.NDArray[np.integer[Any]] | None = None,
    fused: bool = True,
) -> Result:
    """Train the recipe's GPT for ``steps`` steps on ``threads`` threads
    (``torch.set_num_threads``); the weights drawn after ``torch.manual_seed(seed)``.

    ``offsets`` ``(steps, batch)``: each step's window starts in the training split, in
    ``[0, len(train) - CONTEXT)`` (rows past ``steps`` are ignored; the recipe's batch is
    ``BATCH_SIZE``, another width trains on that many windows a step); when ``None``,
    drawn as nanoGPT does (``torch.randint``) from a ``torch.Generator`` seeded with
    ``seed``. ``fused``: ``torch.optim.AdamW(fused=...)``.
    """
    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(threads)
    text = load_text(text_path)
    high = len(text.train) - CONTEXT
    if offsets is None:
        generator = torch.Generator().manual_seed(seed)
        offsets = torch.randint(high, (steps, BATCH_SIZE), generator=generator).numpy()
    drawn: I64 = np.array(offsets, np.int64)
    if drawn.ndim != 2 or len(drawn) < steps or not drawn.shape[1]:
        raise ValueError(f"offsets must be ({steps}, batch), got shape {drawn.shape}")
    drawn = drawn[:steps]
    if drawn.size and (drawn.min() < 0 or drawn.max() >= high):
        raise ValueError(f"offsets must be in [0, {high}), got {drawn.min()}..{drawn.max()}")
    data = torch.from_numpy(text.train)
    starts = torch.from_numpy(drawn)
    cols = torch.arange(CONTEXT)

    torch.manual_seed(seed)
    params = init_params(torch, text.vocab_size)
    weights = list(params.values())
    opt = torch.optim.AdamW(decay_groups(weights), lr=LR, betas=BETAS, eps=EPS, fused=fused)

    def step(it: int) -> float:
        idx = starts[it][:, None] + cols
        x, y = data[idx], data[idx + 1]
        set_lr(opt, it)
        return finish_step(torch, opt, weights, loss_fn(torch, params, x, y))

    return result(torch, timed_steps(steps, step), threads, seed, text, params, drawn)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=LR_DECAY_ITERS, help="training steps")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text", default=str(TEXT_PATH), help="the text to train on")
    args = parser.parse_args()
    r = train(args.steps, args.threads, args.seed, args.text)
    print(
        f"torch {r.torch_version}, {r.threads} thread(s), {r.n_params:,} params, "
        f"vocab {r.vocab_size}, seed {r.seed}"
    )
    print(
        f"{r.steps} steps in {r.seconds:.2f} s: {r.steps_per_second:.2f} steps/s, "
        f"{1000 * r.seconds / r.steps:.2f} ms/step (median {r.median_step_ms:.2f})"
    )
    tail = r.losses[-100:]
    print(f"final train loss {r.final_loss:.4f} (mean of last {len(tail)}: {np.mean(tail):.4f})")
    print(f"val loss (whole split) {r.val_loss:.4f}")


if __name__ == "__main__":
    main()
