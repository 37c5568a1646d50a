"""A character-level LSTM language model on Tiny Shakespeare.

``serial(embedding(65, 64), lstm(256), dense(65))``: each character's id looked up in a
table of 64-wide vectors, an LSTM of 256 units over the window (PyTorch's equations and
initialization), and at every position a dense layer to the next character's logits.
Tiny Shakespeare split 90% / 10% in order; 1,000 updates on batches of 32 windows of 100
characters drawn at random from the training part; Adam with a learning rate
cosine-decayed from 2e-3 to 1e-4, the gradient clipped to global norm 1 (the usual
guard against a recurrent network's exploding gradients); the whole validation part evaluated every
250 updates, in consecutive windows of 100 (each read from a zero state, as in
training). Then 300 characters are drawn after "JULIET:" (temperature 0.8, seed 0). An
LSTM carries its state from one position to the next, so it decodes one character at a
time without a window (``context=None``): each new character costs one LSTM step.

Measured once at the defaults (2026-12-07, one BLAS thread on a 2-core AMD EPYC VM shared
with other jobs): validation loss 1.6757 (2.42 bits per character) after 1,000 updates,
140 s of training, validations included (0.12-0.17 s an update); 350,593 parameters. The
validation loss by interval: 1.8741, 1.7427, 1.6934, 1.6757.

The command line, the text (``--text``, ``--data-dir``), the training loop and the model
file (which ``fnn evaluate`` takes) are ``gpt_shakespeare.py``'s.

Run: ``python examples/char_lstm.py`` (``--steps 200`` for a quick look).
"""

from __future__ import annotations

from typing import Any

import gpt_shakespeare

import fnn
from fnn import nn, optim

CONTEXT = 100
PROMPT = "JULIET:"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = gpt_shakespeare.parser(__doc__, steps=1000, eval_every=250, out="char_lstm")
    args = p.parse_args(argv)
    text = gpt_shakespeare.setup(args, CONTEXT)
    vocab = text.vocab_size
    model = nn.serial(nn.embedding(vocab, 64), nn.lstm(256), nn.dense(vocab))
    optimizer = optim.chain(
        optim.clip_by_global_norm(1.0), optim.adam(optim.cosine_decay(2e-3, args.steps, 1e-4))
    )
    state, seconds = gpt_shakespeare.train(
        args, model, optimizer, text, context=CONTEXT, batch_size=32
    )
    ids = fnn.generate(  # context=None: no window, the LSTM's state carries the past
        model, state.params, text.encode(PROMPT), 300, key=fnn.random.key(0), temperature=0.8
    )
    sample = PROMPT + text.decode(ids)
    return gpt_shakespeare.finish(args, model, state, seconds, text, sample, CONTEXT)


if __name__ == "__main__":
    main()
