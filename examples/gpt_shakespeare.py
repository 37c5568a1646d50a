"""nanoGPT's character-level Shakespeare on its CPU recipe, through the library.

The run of nanoGPT's README for a CPU ("I only have a macbook"): ``fnn.nn.gpt`` with 4
layers of 4 heads, 128 wide, a context of 64 characters, no dropout, no biases, the output
layer tied to the embedding; Tiny Shakespeare split 90% / 10% in order; 2,000 updates on
batches of 12 windows drawn at random from the training part; AdamW (learning rate 1e-3,
betas 0.9 and 0.99, weight decay 0.1 on the matrices only) after clipping the gradient to
global norm 1, the rate warmed up over 100 updates, then cosine-decayed to 1e-4 at update
2,000; the whole validation part evaluated every 500 updates. Then 500 characters are
drawn after "ROMEO:" (temperature 0.8, top-k 200, seed 0), and the model is saved with
its text's name, vocabulary and checksum, so that ``fnn evaluate`` and ``fnn generate``
take its file as they take one written by ``fnn train``.

This is ``fnn train --model gpt`` as a script: at the defaults the two train the same
params, bit for bit (same seed, same machine, one BLAS thread). ``--steps N`` trains the
first N updates of that run (the schedule stays the one of 2,000 updates).

The text: ``--text`` takes a known text's name (``tinyshakespeare``, checked against its
SHA-256) or a UTF-8 file's path. A known text is looked for in ``--data-dir``, by default
``../shared/data`` beside the repository when that directory exists, then where
``fnn.data.load_text`` always looks (``$FNN_DATA``, the cache), and downloaded when it
is nowhere.

Run: ``python examples/gpt_shakespeare.py`` (``--steps 200`` for a quick look).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import count, make_out

import fnn
from fnn import losses, nn, optim

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""``../shared/data`` seen from the repository's root: where the project keeps its data."""

CONTEXT = 64
"""The characters the model reads (nanoGPT's ``block_size``)."""

PROMPT = "ROMEO:"


def parser(
    description: str | None, *, steps: int, eval_every: int, out: str
) -> argparse.ArgumentParser:
    """The options of the text examples; ``out`` names the directory under runs/examples."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--text",
        default=fnn.data.TINY_SHAKESPEARE.name,
        help="a known text's name (tinyshakespeare, the default) or a UTF-8 file's path",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help=f"where to look for a known text first (default {SHARED_DATA} if it exists)",
    )
    p.add_argument("--steps", type=count(1), default=steps, help=f"updates (default {steps})")
    p.add_argument(
        "--eval-every",
        type=count(1),
        default=eval_every,
        help=f"updates between validations (default {eval_every})",
    )
    p.add_argument("--out", type=Path, default=Path("runs/examples") / out, help="output dir")
    p.add_argument("--threads", type=count(1), default=1, help="BLAS threads (default 1)")
    p.add_argument("--seed", type=count(0), default=0, help="the run's seed (default 0)")
    return p


def setup(args: argparse.Namespace, context: int = CONTEXT) -> fnn.data.Text:
    """BLAS threads and glibc's memory as ``fnn train`` sets them, the ``--out``
    directory, and the text of ``--text`` (a known one looked for in ``--data-dir``),
    refused in one line when too short for windows of ``context + 1`` on both sides of
    a 90/10 split."""
    fnn.runtime.set_blas_threads(args.threads)
    fnn.runtime.keep_freed_memory()
    data_dir = args.data_dir
    if data_dir is None and args.text == fnn.data.TINY_SHAKESPEARE.name and SHARED_DATA.is_dir():
        data_dir = SHARED_DATA
    try:
        text = fnn.data.load_text(args.text, data_dir=data_dir)
    except FileNotFoundError as err:  # no copy found and no download: say where to look
        raise SystemExit(f"{err}\n(pass its directory with --data-dir)") from None
    except ValueError as err:  # not UTF-8 text, too large, ...
        raise SystemExit(f"--text {args.text}: {err}") from None
    if len(text.ids) < 10 * (context + 1):
        raise SystemExit(
            f"--text {args.text}: {len(text.ids)} characters, too few for windows of "
            f"{context + 1} in a 90/10 split (give at least {10 * (context + 1)})"
        )
    make_out(args.out)
    print(f"{text.name}: {len(text.ids):,} characters, {text.vocab_size} distinct")
    return text


def log_intervals(steps: int) -> fnn.Callback:
    """A callback that prints a line at the end of each interval of updates: the updates
    made, the interval's mean training loss and the validation loss, and the interval's
    time (the progress bar shows the updates within an interval)."""

    def callback(event: fnn.Event) -> None:
        if event.kind == "epoch_end" and event.record is not None:
            r = event.record
            print(
                f"step {event.state.step}/{steps}: train loss {r.loss:.4f}, "
                f"val loss {r.val_loss:.4f} ({event.seconds:.1f} s)"
            )

    return callback


def train(
    args: argparse.Namespace,
    model: nn.Layer[Any, Any],
    optimizer: optim.Optimizer[Any],
    text: fnn.data.Text,
    *,
    context: int,
    batch_size: int,
) -> tuple[fnn.TrainState[Any, Any], float]:
    """``--steps`` updates on batches of random windows of the first 90% of the text, the
    last 10% evaluated whole every ``--eval-every`` updates; the final state and the
    seconds it took."""
    train_ids, val_ids = fnn.data.split_text(text.ids, 0.9)
    began = time.perf_counter()
    state = fnn.fit_steps(
        model,
        losses.softmax_cross_entropy,
        optimizer,
        lambda key: fnn.data.random_windows(key, train_ids, context, batch_size),
        key=fnn.random.key(args.seed),
        steps=args.steps,
        eval_every=args.eval_every,
        validation_data=fnn.data.fixed_windows(val_ids, context),
        callbacks=[fnn.callbacks.progress_bar(), log_intervals(args.steps)],
    )
    return state, time.perf_counter() - began


def finish(
    args: argparse.Namespace,
    model: nn.Layer[Any, Any],
    state: fnn.TrainState[Any, Any],
    seconds: float,
    text: fnn.data.Text,
    sample: str,
    context: int,
) -> dict[str, Any]:
    """Save the model, with what ``fnn evaluate`` and ``fnn generate`` read of its text
    (its name or path, vocabulary, checksum and validation share); print the outcome and
    the text drawn; return them."""
    metadata = {"text": args.text, "chars": text.chars, "sha256": text.sha256}
    metadata["validation_split"] = 0.1  # the share split_text leaves for validation
    path = fnn.io.save_model(
        args.out / "model.npz", model, state.params, in_shape=(context,), metadata=metadata
    )
    val_loss = state.history[-1].val_loss
    print(
        f"{fnn.tree.size(state.params):,} parameters, {state.step} updates in {seconds:.0f} s: "
        f"validation loss {val_loss:.4f}\n\n{sample}\n\nwrote {path}"
    )
    return {
        "val_loss": val_loss,
        "history": state.history,
        "text": sample,
        "seconds": seconds,
        "model": path,
        "params_sha256": fnn.tree.fingerprint(state.params),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser(__doc__, steps=2000, eval_every=500, out="gpt_shakespeare").parse_args(argv)
    text = setup(args)
    model = nn.gpt(text.vocab_size, context=CONTEXT, layers=4, heads=4, features=128)
    optimizer = optim.chain(
        optim.clip_by_global_norm(1.0),
        optim.adamw(
            optim.warmup_cosine(1e-3, 100, 2000, 1e-4),
            b2=0.99,
            weight_decay=0.1,
            weights_only=True,  # the tables and matrices: nanoGPT decays params of 2 dims
        ),
    )
    state, seconds = train(args, model, optimizer, text, context=CONTEXT, batch_size=12)
    ids = fnn.generate(
        model,
        state.params,
        text.encode(PROMPT),
        500,
        key=fnn.random.key(0),
        context=CONTEXT,
        temperature=0.8,
        top_k=200,
    )
    return finish(args, model, state, seconds, text, PROMPT + text.decode(ids), CONTEXT)


if __name__ == "__main__":
    main()
