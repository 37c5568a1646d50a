"""nanoGPT's own CPU run of the GPT workload: its modules and its training loop, in PyTorch.

``peer_torch_gpt.py`` is the lean peer written from the recipe (a function of a dict of
parameters, AdamW ``fused=True``). This one is the program nanoGPT's README runs
(``train.py config/train_shakespeare_char.py --device=cpu --compile=False ...``),
rewritten here as nanoGPT's ``model.py`` and ``train.py`` do the work on a CPU:

* the model is ``nn.Module`` objects as nanoGPT builds them: ``GPT`` holding a
  ``ModuleDict`` of the token and position ``Embedding``, a ``Dropout``, a ``ModuleList``
  of ``Block`` (``LayerNorm`` without a bias as ``F.layer_norm``,
  ``CausalSelfAttention``: ``c_attn`` and ``c_proj`` ``Linear`` without biases,
  ``scaled_dot_product_attention(is_causal=True)``, two ``Dropout``; ``MLP``: ``c_fc``,
  ``GELU()``, ``c_proj``, ``Dropout``), a final ``LayerNorm`` and the ``lm_head``
  ``Linear`` whose weight is the token embedding's; the dropouts have ``p=0.0`` (the
  recipe's ``--dropout=0.0``) and are called all the same, as nanoGPT calls them;
  weights from normal(0, 0.02), both ``c_proj`` from normal(0, 0.02 / sqrt(2 n_layer));
* the loss is ``F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)``;
* the optimizer is ``configure_optimizers``' on a CPU: AdamW over two groups (decay 0.1
  on the parameters of two or more dimensions, none on the rest) with no ``fused``
  argument, since nanoGPT passes ``fused=True`` only on CUDA (PyTorch's default
  for-each implementation then runs);
* each step, as nanoGPT's loop: set the group rates from ``get_lr``, the forward and the
  loss, the next batch read (nanoGPT's ``get_batch``: a ``np.memmap`` of the uint16
  token file opened anew, one slice per window stacked with ``torch.stack``), backward,
  ``clip_grad_norm_(model.parameters(), 1.0)``, ``optimizer.step()``,
  ``zero_grad(set_to_none=True)`` and ``loss.item()`` (the recipe's
  ``--log_interval=1``). Its ``GradScaler`` is disabled on a machine without CUDA (a
  pass-through) and its MFU estimate is a few float operations: both left out.

The windows are the ones given (``offsets``), as for the other peers, instead of
``torch.randint``. The validation loss is :func:`peer_torch_gpt.val_loss` of the
module's parameters (the same names), over the whole validation split.

PyTorch is imported inside :func:`train`. By hand::

    python examples/benchmarks/peer_nanogpt.py --steps 200 --threads 1
"""

from __future__ import annotations

import argparse
import importlib
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import peer_torch_gpt as peer


def build_model(torch: Any, vocab_size: int) -> Any:
    """nanoGPT's ``GPT`` for the recipe's sizes (no biases, dropout 0), its weights drawn
    from torch's global generator in nanoGPT's order (seed it first)."""
    nn, F = torch.nn, torch.nn.functional
    Module: Any = nn.Module
    c, heads = peer.N_EMBD, peer.N_HEAD

    class LayerNorm(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(c))

        def forward(self, x: Any) -> Any:
            return F.layer_norm(x, self.weight.shape, self.weight, None, peer.LN_EPS)

    class CausalSelfAttention(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.c_attn = nn.Linear(c, 3 * c, bias=False)
            self.c_proj = nn.Linear(c, c, bias=False)
            self.attn_dropout = nn.Dropout(0.0)
            self.resid_dropout = nn.Dropout(0.0)
            self.dropout = 0.0

        def forward(self, x: Any) -> Any:
            b, t, _ = x.size()
            q, k, v = self.c_attn(x).split(c, dim=2)
            k = k.view(b, t, heads, c // heads).transpose(1, 2)
            q = q.view(b, t, heads, c // heads).transpose(1, 2)
            v = v.view(b, t, heads, c // heads).transpose(1, 2)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0,
                is_causal=True,
            )  # fmt: skip
            y = y.transpose(1, 2).contiguous().view(b, t, c)
            return self.resid_dropout(self.c_proj(y))

    class MLP(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.c_fc = nn.Linear(c, 4 * c, bias=False)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * c, c, bias=False)
            self.dropout = nn.Dropout(0.0)

        def forward(self, x: Any) -> Any:
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.attn = LayerNorm(), CausalSelfAttention()
            self.ln_2, self.mlp = LayerNorm(), MLP()

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.transformer = nn.ModuleDict(
                {
                    "wte": nn.Embedding(vocab_size, c),
                    "wpe": nn.Embedding(peer.CONTEXT, c),
                    "drop": nn.Dropout(0.0),
                    "h": nn.ModuleList([Block() for _ in range(peer.N_LAYER)]),
                    "ln_f": LayerNorm(),
                }
            )
            self.lm_head = nn.Linear(c, vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # tied
            self.apply(self._init_weights)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, peer.INIT_STD / math.sqrt(2 * peer.N_LAYER))

        @staticmethod
        def _init_weights(module: Any) -> None:
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, peer.INIT_STD)

        def forward(self, idx: Any, targets: Any) -> tuple[Any, Any]:
            pos = torch.arange(0, idx.size(1), dtype=torch.long)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
            return logits, loss

    return GPT()


def configure_optimizer(torch: Any, model: Any) -> Any:
    """nanoGPT's ``configure_optimizers`` on a CPU: AdamW, decay on the parameters of two
    or more dimensions, no ``fused`` argument."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(peer.decay_groups(params), lr=peer.LR, betas=peer.BETAS)


def train(
    steps: int,
    threads: int,
    seed: int,
    text_path: str | Path,
    offsets: npt.NDArray[np.integer[Any]],
) -> peer.Result:
    """Train nanoGPT's model for ``steps`` steps on ``threads`` threads, step ``i`` on the
    windows starting at ``offsets[i]`` of the training split; the weights drawn after
    ``torch.manual_seed(seed)``. The result as :func:`peer_torch_gpt.train` gives it."""
    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(threads)
    text = peer.load_text(text_path)
    drawn: npt.NDArray[np.int64] = np.array(offsets, np.int64)[:steps]
    if drawn.ndim != 2 or len(drawn) < steps:
        raise ValueError(f"offsets must be ({steps}, batch), got shape {np.shape(offsets)}")
    torch.manual_seed(seed)
    model = build_model(torch, text.vocab_size)
    optimizer = configure_optimizer(torch, model)
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "train.bin"  # nanoGPT's prepared data: uint16 ids
        text.train.astype(np.uint16).tofile(token_file)

        def get_batch(ix: npt.NDArray[np.int64]) -> tuple[Any, Any]:
            data = np.memmap(token_file, dtype=np.uint16, mode="r")
            block = peer.CONTEXT
            x = torch.stack([torch.from_numpy(data[i : i + block].astype(np.int64)) for i in ix])
            y = torch.stack(
                [torch.from_numpy(data[i + 1 : i + 1 + block].astype(np.int64)) for i in ix]
            )
            return x, y

        batch = [get_batch(drawn[0])]

        def step(it: int) -> float:
            peer.set_lr(optimizer, it)
            _, loss = model(*batch[0])
            if it + 1 < steps:  # nanoGPT reads the next batch here, before the backward
                batch[0] = get_batch(drawn[it + 1])
            return peer.finish_step(torch, optimizer, model.parameters(), loss)

        timed = peer.timed_steps(steps, step)
    model.eval()
    params = dict(model.named_parameters())  # nanoGPT's names, as peer_torch_gpt's
    return peer.result(torch, timed, threads, seed, text, params, drawn)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=peer.LR_DECAY_ITERS)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text", default=str(peer.TEXT_PATH), help="the text to train on")
    args = parser.parse_args()
    text = peer.load_text(args.text)
    high = len(text.train) - peer.CONTEXT
    offsets = np.random.default_rng(args.seed).integers(0, high, (args.steps, peer.BATCH_SIZE))
    r = train(args.steps, args.threads, args.seed, args.text, offsets)
    print(f"nanoGPT's loop, torch {r.torch_version}, {r.threads} thread(s), {r.n_params:,} params")
    print(f"{r.steps} steps: median {r.median_step_ms:.2f} ms/step")
    print(f"final train loss {r.final_loss:.4f}, val loss (whole split) {r.val_loss:.4f}")


if __name__ == "__main__":
    main()
