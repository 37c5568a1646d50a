"""The pre-norm transformer block and ``gpt``, the decoder-only language model built of
them, as ``cnn`` is for images: every piece a registered layer, so a GPT's spec is short
and its file rebuilds it."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

from .. import _checks
from ._activations import gelu
from ._attention import AnyAttentionParams, attention
from ._dense import DenseParams, WeightParams, dense
from ._embedding import EmbeddingParams, PositionalParams, embedding, positional_embedding
from ._embedding import tied as tied_model
from ._init import Initializer, describe, initializer_of
from ._layer import Layer
from ._norm import LayerNormParams, ScaleParams, layer_norm
from ._pool import dropout as dropout_layer
from ._registry import register
from ._residual import residual
from ._serial import serial

Norm = LayerNormParams | ScaleParams
"""A layer norm's params: with a bias (``bias=True``) or without."""

BlockParams = tuple[
    tuple[tuple[Norm | AnyAttentionParams | None, ...], None],
    tuple[tuple[Norm | DenseParams | WeightParams | None, ...], None],
]
"""A :func:`transformer_block`'s params: two :func:`residual` blocks (identity shortcut),
each a :func:`serial` of a norm, its layers and, with dropout, a dropout layer."""

GPTBody = tuple[PositionalParams | BlockParams | Norm | None, ...]
"""The params of a :func:`gpt`'s body: the positions' table, a dropout's ``None`` (with
dropout), one :data:`BlockParams` per block, the final norm's."""

TiedGPTParams = tuple[EmbeddingParams, GPTBody]
"""A tied :func:`gpt`'s params (the default): the embedding, whose table is also the
output layer's, then the body."""

GPTParams = tuple[EmbeddingParams, GPTBody, WeightParams]
"""An untied :func:`gpt`'s params (``tied=False``): the embedding, the body, the output
layer's matrix."""


def _dropped(layers: list[Layer[Any, Any]], rate: float) -> list[Layer[Any, Any]]:
    """``layers`` followed by dropout at ``rate`` (nothing when it is 0)."""
    return [*layers, dropout_layer(rate)] if rate else layers


def _named(init: str | Initializer, what: str) -> str | Initializer:
    """``init`` by its name when fnn can name it (so the specs of the parts stay JSON)."""
    return describe(initializer_of(init, what)) or init


@register("transformer_block")
def transformer_block(
    features: int,
    heads: int,
    *,
    hidden: int | None = None,
    causal: bool = False,
    dropout: float = 0.0,
    bias: bool = True,
    weight_init: str | Initializer = "glorot_uniform",
    out_init: str | Initializer | None = None,
) -> Layer[BlockParams, None]:
    """A pre-norm transformer block (GPT-2's, Radford et al., 2019) over ``(batch, time,
    features)``:

    ``h = x + drop(attention(layer_norm(x)))``, ``y = h + drop(mlp(layer_norm(h)))`` with
    ``mlp(z) = dense(features)(gelu(dense(hidden)(z)))`` (the exact GELU).

    Args:
        features: the width of the residual stream (the input's last axis).
        heads: the attention's heads, dividing ``features``.
        hidden: the MLP's width (default ``4 * features``).
        causal: whether a position attends only to itself and earlier ones (a decoder).
        dropout: the rate of dropout on the attention weights and after each branch, in
            ``[0, 1)`` (0: none; the block is then deterministic).
        bias: whether the dense layers, the attention's projections and the layer norms
            have biases (GPT-2 has them; nanoGPT's ``bias=False`` drops them).
        weight_init: the initializer of the matrices (``"normal(0.02)"`` is GPT-2's).
        out_init: the initializer of the two projections back into the residual stream
            (the attention's output and the MLP's second layer; GPT-2 scales them to
            ``"normal(<0.02 / sqrt(2 * layers)>)"``); None: ``weight_init``.

    Shapes: ``(batch, time, features)`` in and out. Params: the tuple of two
    :func:`residual` blocks' (each a :func:`serial` of the norm, the layers and dropout).
    Backward: the layers' own, through the residual sums.

    >>> import fnn, numpy as np
    >>> block = fnn.nn.transformer_block(8, 2, causal=True)
    >>> params = block.init(fnn.random.key(0), (5, 8))
    >>> block.apply(params, np.ones((3, 5, 8), np.float32)).shape
    (3, 5, 8)
    """
    width = _checks.positive_int(features, "transformer_block features")
    inner = width * 4 if hidden is None else _checks.positive_int(hidden, "hidden")
    init = _named(weight_init, "weight_init")
    out = init if out_init is None else _named(out_init, "out_init")
    attend = attention(
        heads, causal, dropout, bias=bias, weight_init=init, out_init=out
    )  # checks heads, causal, dropout and bias
    mlp = [dense(inner, bias=bias, weight_init=init), gelu(approximate=False)]
    mlp.append(dense(width, bias=bias, weight_init=out))
    block: Layer[BlockParams, None] = serial(
        residual(serial(layer_norm(bias=bias), *_dropped([attend], dropout))),
        residual(serial(layer_norm(bias=bias), *_dropped(mlp, dropout))),
    )
    return block


@overload
def gpt(
    vocab: int,
    context: int,
    layers: int,
    heads: int,
    features: int,
    dropout: float = 0.0,
    bias: bool = False,
    tied: Literal[True] = True,
) -> Layer[TiedGPTParams, None]: ...


@overload
def gpt(
    vocab: int,
    context: int,
    layers: int,
    heads: int,
    features: int,
    dropout: float = 0.0,
    bias: bool = False,
    *,
    tied: Literal[False],
) -> Layer[GPTParams, None]: ...


@overload
def gpt(
    vocab: int,
    context: int,
    layers: int,
    heads: int,
    features: int,
    dropout: float = 0.0,
    bias: bool = False,
    tied: bool = True,
) -> Layer[TiedGPTParams | GPTParams, None]: ...


@register("gpt")
def gpt(
    vocab: int,
    context: int,
    layers: int,
    heads: int,
    features: int,
    dropout: float = 0.0,
    bias: bool = False,
    tied: bool = True,
) -> Layer[Any, None]:
    """A GPT (Radford et al., 2018, 2019) as nanoGPT builds it: token ids ``(batch,
    time)``, ``time <= context``, to next-token logits ``(batch, time, vocab)``.

    ``h = embedding(ids) + positions``, dropout, ``layers`` causal
    :func:`transformer_block`\\ s, a final layer norm, and the output ``h @ table.T`` with
    the embedding's table (:func:`tied`; or a dense layer of its own with
    ``tied=False``). Initialized as GPT-2: every matrix and both tables from
    ``normal(0.02)``, the projections back into the residual stream from
    ``normal(0.02 / sqrt(2 * layers))``, biases zero, norms one.

    Args:
        vocab: the number of token ids.
        context: the longest sequence (nanoGPT's ``block_size``).
        layers: the number of blocks (``n_layer``).
        heads: the attention heads of each block (``n_head``), dividing ``features``.
        features: the width (``n_embd``).
        dropout: the rate of every dropout (``dropout``; 0 for none).
        bias: biases in the dense layers, projections and layer norms (nanoGPT's
            ``bias``; its Shakespeare recipe has none).
        tied: the output reuses the embedding's table (nanoGPT ties them).

    Params: :data:`TiedGPTParams` (tied), :data:`GPTParams` (``tied=False``); no state.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.gpt(vocab=65, context=16, layers=2, heads=2, features=32)
    >>> params = model.init(fnn.random.key(0), (16,))
    >>> fnn.tree.size(params)  # 65*32 + 16*32 + 2 * (4*32*32 + 8*32*32 + 2*32) + 32
    27328
    >>> model.apply(params, np.zeros((1, 16), np.int64)).shape
    (1, 16, 65)
    """
    count = _checks.positive_int(layers, "gpt layers")
    width = _checks.positive_int(features, "gpt features")
    std = f"normal({0.02 / math.sqrt(2 * count)!r})"
    blocks = [
        transformer_block(
            width,
            heads,
            causal=True,
            dropout=dropout,
            bias=bias,
            weight_init="normal(0.02)",
            out_init=std,
        )
        for _ in range(count)
    ]
    body: Layer[GPTBody, None] = serial(
        *_dropped([positional_embedding(context, weight_init="normal(0.02)")], dropout),
        *blocks,
        layer_norm(bias=bias),
    )
    if tied:
        return tied_model(vocab, width, body, weight_init="normal(0.02)")
    untied: Layer[GPTParams, None] = serial(
        embedding(vocab, width, weight_init="normal(0.02)"),
        body,
        dense(vocab, bias=False, weight_init="normal(0.02)"),
    )
    return untied
