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

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from . import _options, _registry, nn, optim
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
            defaults hold for the others. The command has none for ``lr``,
            ``batch_size`` and ``epochs`` (a language model's ``steps`` and
            ``eval_every``): a run of a recipe that gives none must give them as flags.
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

    def model(self, data: DataInfo, **options: Any) -> nn.Layer[Any, Any]:
        """The recipe's model for ``data``: ``build(data, **options)``, checked to be a
        layer.

        Raises:
            TypeError: the build function returned something other than an
                :class:`fnn.nn.Layer` (or refused an option's type).
            ValueError: the build function refused an option's value.
        """
        model = self.build(data, **options)
        if not isinstance(model, nn.Layer):
            raise TypeError(
                f"the recipe {self.name!r} ({_registry.origin(self.build)}) must return an "
                f"fnn.nn.Layer, got {type(model).__name__}"
            )
        return model

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
            and its optimizer's own options, ``weight_decay``, ``b2``, ...: those of the
            optimizer it names, else of ``adam``, the command's). Give ``lr``,
            ``epochs`` and ``batch_size`` (``steps``, ``eval_every`` and ``batch_size``
            for a language model): the command has no defaults of its own for them, and
            a run of a recipe without them must give them as flags.

    The decorated function is called ``build(data, **options)`` with a
    :class:`fnn.data.DataInfo` and returns an :class:`fnn.nn.Layer` whose output for one
    example is one score per class (``(data.num_classes,)``; a language model's,
    ``(context, data.num_classes)``): ``fnn train`` refuses another before training.
    Every other parameter must have a default and be annotated ``bool``, ``int``,
    ``float``, ``str``, ``tuple[int, ...]`` or ``tuple[str, ...]``: those are its
    options, and none can be named like one of ``fnn train``'s own flags (``seed``,
    ``epochs``, ``clip``, ``out``, ...), like a registered optimizer's option (they would
    share the run's ``config`` entry), or so that its flag clashes with another
    registered option's (``no_tied`` beside gpt's bool ``tied``: both ``--no-tied``),
    nor start with ``_``. Their ranges are the model's own (a ValueError from the layers
    becomes a usage error of the command).

    Raises:
        ValueError: a bad name, one taken by another recipe, an option named like a flag
            of ``fnn train`` or an optimizer's option, or whose flag another option has,
            or an unknown optimizer in ``defaults``.
        TypeError: an option without a default or of another type, a default that is no
            option of the command or of the recipe's optimizer (a misspelt name) or of
            another type, or ``shards_on_threads`` not a bool.

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

    check_defaults(name, defaults, registering=True)

    def decorate(build: F) -> F:
        options = _options.options_after_first(build, "the dataset's DataInfo")
        recipes = {f"recipe {k!r}": r.options for k, r in RECIPES.items()}
        optimizers = {f"optimizer {k!r}": optim.optimizer_options(k) for k in optim.OPTIMIZERS}
        _options.check_names(options, f"recipe {name!r}", recipes, optimizers)
        _RECIPES.add(name, Recipe(name, build, options, dict(defaults), shards_on_threads))
        return build

    return decorate


def check_defaults(name: str, defaults: Mapping[str, Any], *, registering: bool = False) -> None:
    """Refuse defaults ``fnn train`` could not take: a name that is neither one of its
    training options nor an option of the recipe's optimizer (its ``optimizer`` default,
    else the command's), or a value of another type. ``registering``: the recipe is being
    registered, and its optimizer may not be yet (a later ``--import`` registers it):
    then only the training options' defaults are checked, the rest when the command
    builds the run's configuration.

    Raises:
        ValueError: an unknown optimizer.
        TypeError: an unknown name (the message lists the known ones) or a bad value.
    """
    general = {o.name: o for o in _options.TRAINING}
    chosen = defaults.get("optimizer", general["optimizer"].default)
    own: tuple[_options.Option, ...] = ()
    try:
        own = optim.optimizer_options(chosen)  # looks the optimizer up
    except ValueError as err:
        if not registering:
            raise ValueError(f"recipe {name!r}: optimizer={chosen!r}: {err}") from None
        defaults = {k: v for k, v in defaults.items() if k in general}
    known = {**general, **{o.name: o for o in own}}
    for key, value in defaults.items():
        if key not in known:
            raise TypeError(
                f"recipe {name!r}: no default can be called {key!r}: it names no option "
                f"of fnn train nor of its optimizer {chosen}; expected one of: "
                f"{', '.join(sorted(known))}"
            )
        try:
            known[key].from_json(known[key].to_json(value), f"recipe {name!r}")
        except ValueError:
            raise TypeError(
                f"recipe {name!r}: the default {key}={value!r} must be {known[key].expects()}"
            ) from None


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
