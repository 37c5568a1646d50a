"""Model recipes: the models ``fnn train --model NAME`` builds, registered as layers are.

A recipe is a function ``build(data, **options) -> Layer`` that makes a model for a
dataset (:class:`fnn.data.DataInfo`: one example's shape and the class names), registered
with :func:`register` under a name, with the training settings it prefers (learning rate,
epochs, batch size). Its keyword parameters are its options, written once: their types,
defaults and help lines (from the docstring's ``Args:``) become ``fnn train``'s flags
(``--hidden 256,128``) and the entries of a run's ``config``. Adding a model to the command
is one registration; a user's own recipe, in a module the command imports with
``fnn train --import mymodule``, works the same way.

>>> import fnn
>>> sorted(fnn.recipes.RECIPES)
['cnn', 'gpt', 'mlp']
>>> recipe = fnn.recipes.recipe("mlp")
>>> [o.name for o in recipe.options], recipe.defaults["lr"]
(['hidden', 'activation', 'init'], 0.002)
>>> recipe.build(fnn.data.DataInfo((28, 28), "0123456789")).output_shape((28, 28))
(10,)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from . import _options, _registry, nn
from .data import DataInfo

__all__ = ["RECIPES", "Recipe", "cnn", "gpt", "mlp", "recipe", "register"]

F = TypeVar("F", bound=Callable[..., nn.Layer[Any, Any]])


@attrs.frozen(eq=False)
class Recipe:
    """A registered model recipe.

    Attributes:
        name: the name ``fnn train --model`` takes.
        build: ``build(data: DataInfo, **options) -> Layer``.
        options: the build function's options (keyword parameters with defaults).
        defaults: the training settings the recipe prefers, by ``fnn train`` option name
            (``{"lr": 2e-3, "epochs": 20, "batch_size": 128}``); the command's own
            defaults hold for the others.
        shards_on_threads: how ``fnn train --threads T`` (``T > 1``) without ``--shards``
            uses the threads of a run on one process: True, ``T`` shards of each batch on
            ``T`` threads with one BLAS thread (as ``--shards T --threads T``; at most
            the batch size in shards; not under ``mpirun``, whose job counts its shards
            with ``--shards``, nor when the recipe's defaults name a shard count, nor for
            a model that keeps state, whose batch statistics shards would change), for a
            model whose step has much work besides its matrix products; False (the
            default), one shard whose products get ``T`` BLAS threads. The count is
            chosen when a run starts and recorded in its config.
    """

    name: str
    build: Callable[..., nn.Layer[Any, Any]]
    options: tuple[_options.Option, ...]
    defaults: Mapping[str, Any]
    shards_on_threads: bool = False

    @property
    def summary(self) -> str:
        """The first line of the build function's docstring."""
        return (self.build.__doc__ or "").strip().splitlines()[0] if self.build.__doc__ else ""


_RECIPES = _registry.Registry[Recipe]("model recipe", lambda r: _registry.origin(r.build))

RECIPES: Mapping[str, Recipe] = _RECIPES.view
"""Every registered recipe by name (a read-only live view)."""


def register(name: str, *, shards_on_threads: bool = False, **defaults: Any) -> Callable[[F], F]:
    """Register a model recipe under ``name`` (a decorator).

    Args:
        name: the name ``fnn train --model`` takes; never rename a registered recipe
            (run records name it).
        shards_on_threads: ``fnn train --threads T`` without ``--shards`` trains ``T``
            shards on ``T`` threads (:attr:`Recipe.shards_on_threads`); measure before
            you set it: it pays where a step has much elementwise work besides its
            products.
        **defaults: the training settings the recipe prefers, by ``fnn train`` option
            name (``lr``, ``epochs``, ``batch_size``, ``optimizer``, ``schedule``, ...,
            and its optimizer's own options, ``weight_decay``, ``b2``, ...).

    The decorated function is called ``build(data, **options)`` with a
    :class:`fnn.data.DataInfo`; every other parameter must have a default and be
    annotated ``bool``, ``int``, ``float``, ``str`` or ``tuple[int, ...]``: those are its
    options. Their ranges are the model's own (a ValueError from the layers becomes a
    usage error of the command).

    Raises:
        ValueError: a bad name, or one taken by another recipe.
        TypeError: an option without a default or of another type, or
            ``shards_on_threads`` not a bool.

    >>> import fnn
    >>> @fnn.recipes.register("tiny", lr=1e-2)
    ... def tiny(data: fnn.data.DataInfo, *, width: int = 8) -> fnn.nn.Layer[Any, Any]:
    ...     '''A one-hidden-layer MLP.'''
    ...     return fnn.nn.mlp((width, data.num_classes))
    >>> [(o.flag, o.default) for o in fnn.recipes.recipe("tiny").options]
    [('--width', 8)]
    """
    _RECIPES.check_name(name)
    if not isinstance(shards_on_threads, bool):
        raise TypeError(
            f"recipe {name!r}: shards_on_threads must be True or False, got {shards_on_threads!r}"
        )

    def decorate(build: F) -> F:
        options = _options.options_of(build, skip=(next(iter(_parameters(build))),))
        _RECIPES.add(name, Recipe(name, build, options, dict(defaults), shards_on_threads))
        return build

    return decorate


def _parameters(build: Callable[..., Any]) -> list[str]:
    names = list(inspect.signature(build).parameters)
    if not names:
        raise TypeError(f"a recipe takes the dataset's DataInfo first: {_registry.origin(build)}")
    return names


def recipe(name: str) -> Recipe:
    """The recipe registered as ``name``.

    Raises:
        ValueError: no such recipe (the message lists the registered ones).
    """
    return _RECIPES.get(name)


@register("mlp", lr=2e-3, epochs=20, batch_size=128)
def mlp(
    data: DataInfo,
    *,
    hidden: tuple[int, ...] = (128, 64),
    activation: str = "relu",
    init: str = "he_normal",
) -> nn.Layer[Any, Any]:
    """The multilayer perceptron: flatten, then dense and activation per hidden size,
    then dense(classes) (:func:`fnn.nn.mlp`).

    Args:
        hidden: the hidden layers' sizes, e.g. 128,64.
        activation: the hidden activation (relu, tanh, sigmoid, gelu, ...).
        init: the dense layers' weight initializer (he_normal, glorot_uniform, ...).
    """
    return nn.mlp((*hidden, data.num_classes), activation, weight_init=init)


@register("cnn", shards_on_threads=True, lr=1e-3, epochs=15, batch_size=64)
def cnn(
    data: DataInfo,
    *,
    batch_norm: bool = False,
    dropout: float = 0.5,
    padding: str = "same",
) -> nn.Layer[Any, Any]:
    """The small CNN of :func:`fnn.nn.cnn`: two 3x3 conv blocks with max-pooling, then
    dense 128, dropout and dense(classes).

    Args:
        batch_norm: batch norm after each conv and the hidden dense layer.
        dropout: the dropout rate before the last layer.
        padding: the convolutions' padding, same or valid.
    """
    return nn.cnn(
        data.in_shape, data.num_classes, dropout=dropout, batch_norm=batch_norm, padding=padding
    )


@register(
    "gpt",
    shards_on_threads=True,  # 37.9 against 54.7 ms a step on two cores (README, Speed)
    text="tinyshakespeare",
    steps=2000,
    eval_every=500,
    batch_size=12,
    lr=1e-3,
    optimizer="adamw",
    b2=0.99,
    weight_decay=0.1,
    weights_only=True,
    schedule="warmup-cosine",
    warmup=100,
    min_lr=1e-4,
    clip=1.0,
)
def gpt(
    data: DataInfo,
    *,
    context: int = 64,
    layers: int = 4,
    heads: int = 4,
    features: int = 128,
    dropout: float = 0.0,
    bias: bool = False,
    tied: bool = True,
) -> nn.Layer[Any, Any]:
    """A character-level GPT (:func:`fnn.nn.gpt`) with nanoGPT's CPU recipe for Tiny
    Shakespeare as its defaults: 4 layers of 4 heads, 128 wide, windows of 64, batches of
    12, 2,000 updates of AdamW (betas 0.9, 0.99; weight decay 0.1 on the matrices),
    warm-up 100 then cosine to 1e-4, gradients clipped to norm 1.

    Args:
        context: the window of characters the model reads (nanoGPT's block_size).
        layers: the transformer blocks (n_layer).
        heads: the attention heads of each block (n_head).
        features: the width (n_embd).
        dropout: the rate of every dropout (0: none).
        bias: biases in the dense layers, projections and layer norms.
        tied: the output layer reuses the embedding's table.
    """
    return nn.gpt(data.num_classes, context, layers, heads, features, dropout, bias, tied)
