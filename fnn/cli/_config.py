"""What a training run is: its options, its configuration, and the one check of both
(private; see :mod:`fnn.cli`).

The options come from three places, each written once: the command's own training
options (:data:`OPTIONS`), the chosen model recipe's (:mod:`fnn.recipes`) and the chosen
optimizer's (:data:`fnn.optim.OPTIMIZERS`), read from their signatures. Every value is
checked by building what it configures, with the library's own checks
(:func:`check_config`), before anything is read or written; a run's ``config`` holds
only the options that apply to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import _checks, data, nn, optim, parallel, recipes
from .. import random as _random
from .._checks import MAX_INT
from .._options import TRAINING, Option
from ..train import EarlyStopping


class UsageError(Exception):
    """A problem the user can fix (bad option, missing file): printed without a traceback."""


OPTIONS: tuple[Option, ...] = TRAINING
"""The command's own training options (the recipes and optimizers add theirs)."""

TEXT_ONLY = frozenset({"text", "steps", "eval_every"})
"""The general options of a language model's run (``--text``) alone."""

IMAGES_ONLY = frozenset({"dataset", "epochs", "patience", "augment", "limit", "log_every"})
"""The general options of a classifier's run alone: a language model trains by steps on
random windows of its text (no epochs, so no early stopping), never augmented."""

GENERAL = {o.name: o for o in OPTIONS}

SCHEDULES: dict[str, Callable[[Mapping[str, Any], int], optim.Schedule]] = {
    "constant": lambda g, total: optim.constant(g["lr"]),
    "inverse-time": lambda g, total: optim.inverse_time_decay(g["lr"], g["decay"]),
    "cosine": lambda g, total: optim.cosine_decay(g["lr"], total),
    "step": lambda g, total: optim.step_decay(g["lr"], 0.5, max(total // 4, 1)),
    "warmup-cosine": lambda g, total: optim.warmup_cosine(g["lr"], g["warmup"], total, g["min_lr"]),
}
"""The learning-rate schedules by name, each over the run's ``total`` updates, from the
general options (``lr``, and ``decay``, ``warmup`` and ``min_lr`` where they apply)."""

SCHEDULE_OPTIONS = {"decay": ("inverse-time",), "warmup": ("warmup-cosine",)}
SCHEDULE_OPTIONS["min_lr"] = ("warmup-cosine",)
"""The general options that apply to some schedules only."""

UNSET = {"limit": None, "log_every": 0}
"""The general options a config leaves out at these values (what runs recorded before
the options existed did), so that their run records stay the same."""

AUGMENTATIONS: dict[str, data.Augment] = {"flip": data.random_flip, "shift": data.random_shift}
"""The names ``--augment`` takes: left-right flips, and shifts of up to 2 pixels."""

_RENAMED = {"weight_init": "init"}
"""Config entries of runs recorded by earlier development versions of fnn 0.1.0 (before
the recipes' options came from their signatures) whose options have another name now."""


def model_options(model: str) -> tuple[Option, ...]:
    """The options of the model recipe called ``model``.

    Raises:
        UsageError: no such recipe.
    """
    try:
        return recipes.recipe(model).options
    except ValueError as err:
        raise UsageError(f"--model: {err}") from None


def optimizer_options(name: str) -> tuple[Option, ...]:
    """The options of the optimizer called ``name`` (its parameters but the learning rate).

    Raises:
        UsageError: no such optimizer.
    """
    try:
        return optim.optimizer_options(name)
    except ValueError as err:
        raise UsageError(f"--optimizer: {err}") from None


def chosen_optimizer(model: str, optimizer: str | None) -> str:
    """The optimizer a run of the recipe ``model`` trains with: ``optimizer`` if given,
    else the recipe's ``optimizer`` default (gpt's ``adamw``), else the command's
    (``adam``).

    Raises:
        UsageError: no such recipe.
    """
    if optimizer is not None:
        return optimizer
    model_options(model)  # an unknown recipe is named as --model's
    default = recipes.recipe(model).defaults.get("optimizer", GENERAL["optimizer"].default)
    return str(default)


def every_option() -> dict[str, list[Option]]:
    """Every option of every recipe and optimizer, by name (for the parser and for
    messages about options that do not apply)."""
    found: dict[str, list[Option]] = {}
    for name in recipes.RECIPES:
        for option in model_options(name):
            found.setdefault(option.name, []).append(option)
    for name in optim.OPTIMIZERS:
        for option in optimizer_options(name):
            found.setdefault(option.name, []).append(option)
    return found


@attrs.frozen
class Config:
    """Everything that determines a training run (a run's ``config`` in ``run.json``).

    Attributes:
        general: the command's own options (:data:`OPTIONS`), all of them, defaults
            filled in (the recipe's for ``lr``, ``epochs``, ``batch_size``), with
            ``decay`` only for the inverse-time schedule.
        model: the recipe's options, by name.
        optimizer: the optimizer's options, by name.
        data: the directory of a user's own data (``--data``), or None for the named
            ``dataset`` (for a directory, ``dataset`` is the directory's name).
    """

    general: Mapping[str, Any] = attrs.field(converter=dict)
    model: Mapping[str, Any] = attrs.field(converter=dict)
    optimizer: Mapping[str, Any] = attrs.field(converter=dict)
    data: str | None = None

    def __getitem__(self, name: str) -> Any:
        for part in (self.general, self.model, self.optimizer):
            if name in part:
                return part[name]
        raise KeyError(name)

    @property
    def unit(self) -> str:
        """What the run's length counts: ``"steps"`` for a language model (a ``text``),
        else ``"epochs"``; also the option that sets it."""
        return "steps" if "text" in self.general else "epochs"

    def evolve(self, **general: Any) -> Config:
        """This config with some general options changed."""
        return attrs.evolve(self, general={**self.general, **general})

    def to_json(self) -> dict[str, Any]:
        """The config as a flat JSON object: only the options that apply to the run."""
        out: dict[str, Any] = {}
        for options, values in (
            (OPTIONS, self.general),
            (model_options(self.general["model"]), self.model),
            (optimizer_options(self.general["optimizer"]), self.optimizer),
        ):
            for option in options:
                if option.name in values:
                    out[option.name] = option.to_json(values[option.name])
        if self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str) -> Config:
        """The config recorded in ``what`` (a run record or a checkpoint), each entry
        type-checked against its option. Entries of options that do not apply (records
        made before configs held only those) are left out.

        Raises:
            UsageError: not an object, an unknown entry, or an entry of the wrong type.
        """
        if not isinstance(obj, dict):
            raise UsageError(f"{what} has no config object")
        entries = {_RENAMED.get(k, k): v for k, v in obj.items()}
        given = {k: v for k, v in entries.items() if k in GENERAL}
        model = str(given.get("model", GENERAL["model"].default))
        opt = chosen_optimizer(model, given.get("optimizer"))
        parts: list[dict[str, Any]] = [{}, {}, {}]
        known = every_option()
        for i, options in enumerate((OPTIONS, model_options(model), optimizer_options(opt))):
            for option in options:
                if option.name in entries and entries[option.name] is not None:
                    try:
                        parts[i][option.name] = option.from_json(entries[option.name], what)
                    except ValueError as err:
                        raise UsageError(str(err)) from None
        unknown = sorted(str(k) for k in set(entries) - set(GENERAL) - set(known) - {"data"})
        if unknown:
            raise UsageError(f"{what} has unknown config entries {unknown}")
        directory = entries.get("data")
        if directory is not None and not isinstance(directory, str):
            raise UsageError(f"{what}: config entry 'data' must be a path, got {directory!r}")
        return complete(parts[0], parts[1], parts[2], directory)


def complete(
    general: Mapping[str, Any],
    model: Mapping[str, Any],
    optimizer: Mapping[str, Any],
    directory: str | None = None,
) -> Config:
    """A config from the options given: every general option (the recipe's defaults,
    then the command's, where one is not given), the recipe's and the optimizer's options
    with their defaults filled in.

    Raises:
        UsageError: an unknown recipe or optimizer.
    """
    values = {o.name: o.default for o in OPTIONS}
    given = {k: v for k, v in general.items() if v is not None}
    name = str(given.get("model", values["model"]))
    try:
        preferred = dict(recipes.recipe(name).defaults)
        recipes.check_defaults(name, preferred)  # its optimizer is registered by now
    except (ValueError, TypeError) as err:
        raise UsageError(f"--model: {err}") from None
    values.update({k: v for k, v in preferred.items() if k in GENERAL})
    values.update(given)
    for option, schedules in SCHEDULE_OPTIONS.items():
        if values["schedule"] not in schedules:
            values.pop(option, None)
    for option in IMAGES_ONLY if values.get("text") is not None else TEXT_ONLY:
        values.pop(option, None)
    for option, unset in UNSET.items():
        if option in values and values[option] == unset and option not in given:
            values.pop(option)
    model_values = {o.name: model.get(o.name, o.default) for o in model_options(name)}
    opt_values = {
        o.name: optimizer.get(o.name, preferred.get(o.name, o.default))
        for o in optimizer_options(str(values["optimizer"]))
    }
    return Config(values, model_values, opt_values, directory)


def build_model(config: Config, info: data.DataInfo, *, outputs: bool = True) -> nn.Layer[Any, Any]:
    """The model of a config for a dataset: its recipe's build with its options, checked
    (with ``outputs``) to give one score per class of ``info`` for an example of its
    shape: ``(num_classes,)``, a language model's ``(context, num_classes)``.

    Raises:
        UsageError: the recipe refuses an option (its own check's message) or returns no
            layer, or a model that does not take the data's examples or gives other
            outputs (naming the recipe and both shapes).
    """
    name = config.general["model"]
    try:
        model = recipes.recipe(name).model(info, **config.model)
    except (ValueError, TypeError) as err:
        raise UsageError(f"--model {name}: {err}") from None
    if not outputs:
        return model
    classes = (info.num_classes,)
    expected = (*info.in_shape, *classes) if "text" in config.general else classes
    try:
        shape = model.output_shape(info.in_shape)
    except (ValueError, TypeError) as err:
        raise UsageError(
            f"--model {name}: the model does not take the data's examples of shape "
            f"{info.in_shape}: {err}"
        ) from None
    if shape != expected:
        raise UsageError(
            f"--model {name}: the model's output for one example has shape {shape}, but the "
            f"data has {info.num_classes} classes: expected {expected} (one score per class)"
        )
    return model


def total_updates(config: Config, steps_per_epoch: int) -> int:
    """The updates of a whole run: a language model's ``steps``, a classifier's epochs of
    ``steps_per_epoch``."""
    g = config.general
    return int(g["steps"]) if "steps" in g else max(g["epochs"] * steps_per_epoch, 1)


def build_optimizer(config: Config, steps_per_epoch: int | None) -> optim.Optimizer[Any]:
    """The optimizer of a config (with the L2 penalty's gradient in front when asked, and
    the global-norm clipping before both), its learning rate following the config's
    schedule over the whole run. ``steps_per_epoch``: a classifier's updates per epoch,
    or None where they are not known yet (a plan's check, before the data are read): the
    warm-up of ``warmup-cosine`` is then checked against the run's updates when they are.

    Raises:
        UsageError: the optimizer, the schedule, the clipping or the L2 penalty refuses a
            value; a warm-up of as many updates as the run has or more.
    """
    g = config.general
    total = total_updates(config, steps_per_epoch or 1)
    warmup = g.get("warmup") if g["schedule"] == "warmup-cosine" else None
    if isinstance(warmup, int) and warmup >= total:
        if "steps" not in g and steps_per_epoch is None:
            total = warmup + 1  # the updates are not known yet: checked when they are
        else:
            run = (
                f"--steps {total}"
                if "steps" in g
                else f"--epochs {g['epochs']} of {steps_per_epoch} updates each"
            )
            raise UsageError(
                f"--schedule warmup-cosine: --warmup {warmup} must be fewer than the run's "
                f"{total} updates ({run})"
            )
    try:
        if g["schedule"] not in SCHEDULES:
            raise ValueError(f"expected one of {', '.join(SCHEDULES)}, got {g['schedule']!r}")
        _checks.positive(g["lr"], "lr")
        schedule = SCHEDULES[g["schedule"]](g, total)
    except (ValueError, TypeError) as err:
        raise UsageError(f"--schedule {g['schedule']} with --lr {g['lr']}: {err}") from None
    try:
        rule = optim.optimizer(g["optimizer"])(schedule, **config.optimizer)
        rule = optim.chain(optim.add_l2(g["l2"]), rule) if g["l2"] else rule
    except (ValueError, TypeError) as err:
        raise UsageError(f"--optimizer {g['optimizer']}: {err}") from None
    return optim.chain(optim.clip_by_global_norm(g["clip"]), rule) if g["clip"] else rule


def build_augment(config: Config) -> data.Augment | None:
    """The augmentation of a config's training batches (None for none)."""
    names = config.general.get("augment", ())
    return data.augmentation(*(AUGMENTATIONS[n] for n in names)) if names else None


_GENERAL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: _checks.positive(v, "the learning rate"),
    "batch_size": lambda v: _checks.positive_int(v, "batch_size"),
    "epochs": lambda v: _checks.positive_int(v, "epochs"),
    "seed": _random.key,
    "validation_split": lambda v: _checks.fraction(v, "validation_split"),
    "patience": lambda v: v == 0 or _patience(v),
    "decay": lambda v: optim.inverse_time_decay(1.0, v),
    "l2": lambda v: v == 0 or optim.add_l2(v),
    "shards": lambda v: parallel.check_plan(v, None),
    "clip": lambda v: v == 0 or _clip_norm(v),
    "min_lr": lambda v: _not_negative(v, "min_lr"),
    "steps": lambda v: _checks.positive_int(v, "steps"),
    "eval_every": lambda v: _checks.positive_int(v, "eval_every"),
    "limit": lambda v: _checks.positive_int(v, "limit"),
    "log_every": lambda v: v == 0 or _checks.positive_int(v, "log_every"),
}
"""The library's own check of each general option that has one."""


_NO_DEFAULT = ("lr", "batch_size", "epochs", "steps", "eval_every")
"""The general options the command has no default for: the recipe's, else a flag's."""


def _not_negative(value: Any, what: str) -> float:
    """``value`` if it is a finite number >= 0 (a rate a schedule ends at)."""
    number = _checks.real(value, what)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def _patience(value: Any) -> EarlyStopping:
    try:
        return EarlyStopping(patience=value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"0 (no early stopping) or {err}") from None


def _clip_norm(value: float) -> object:
    """``--clip``'s check: 0 (no clipping) or what ``clip_by_global_norm`` takes."""
    try:
        return optim.clip_by_global_norm(value)
    except ValueError:
        raise ValueError(
            f"the norm to clip to must be a finite number > 0, or 0 for no clipping, got {value}"
        ) from None


def text_for_a_classifier(config: Config) -> str | None:
    """What is wrong with ``config`` when it gives ``--text`` to a model that is not a
    language model (one without a ``context``), else None."""
    g = config.general
    if g.get("text") is not None and not isinstance(config.model.get("context"), int):
        return f"--text: --model {g['model']} is not a language model (it has no --context)"
    return None


def check_config(config: Config, info: data.DataInfo | None) -> None:
    """Check every value of ``config`` with the library's own checks, by building what it
    configures: each general option, the dataset's name, the model (for ``info``, the
    dataset's when it is known before reading it), the optimizer and its schedule.
    Nothing is read or written.

    Raises:
        UsageError: naming the option and the library's message.
    """
    g = config.general
    context = config.model.get("context")
    wrong_text = text_for_a_classifier(config)
    if wrong_text is not None:  # what else it says would not apply
        raise UsageError(wrong_text)
    missing = [GENERAL[n].flag for n in _NO_DEFAULT if n in g and g[n] is None]
    if missing:
        raise UsageError(
            f"--model {g['model']} gives no default for {', '.join(missing)} (the command has "
            f"none): pass {' '.join(f'{flag} VALUE' for flag in missing)}"
        )
    bad = []
    for name, check in _GENERAL_CHECKS.items():
        if name in g:
            try:
                check(g[name])
            except (ValueError, TypeError) as err:
                bad.append(f"{GENERAL[name].flag}: {err}")
    unknown = [n for n in g.get("augment", ()) if n not in AUGMENTATIONS]
    if unknown:
        bad.append(
            f"--augment: unknown {unknown[0]!r}; expected names from {sorted(AUGMENTATIONS)}"
        )
    if not bad and g["shards"] > g["batch_size"]:
        bad.append(f"--shards: at most the batch size {g['batch_size']}, got {g['shards']}")
    if "text" not in g and context is not None:
        bad.append(f"--model {g['model']} is a language model: give --text (a file or a name)")
    elif "dataset" in g and config.data is None:
        try:
            data.source(g["dataset"])
        except (ValueError, TypeError) as err:
            bad.append(f"--dataset: {err}")
    if bad:
        raise UsageError("; ".join(bad))
    build_optimizer(config, None)  # a classifier's updates per epoch come with its data
    if info is not None:
        build_model(config, info)
    else:  # the shapes come with the data: the recipe checks its own options now
        build_model(config, data.DataInfo((28, 28), tuple("0123456789")), outputs=False)


def data_info(config: Config) -> data.DataInfo | None:
    """What is known of a config's data before reading it: a language model's windows
    (a placeholder vocabulary: the text's comes when it is read), a registered dataset's
    shapes and classes; None for a directory or a dataset that is not registered
    (:func:`check_config` says so)."""
    g = config.general
    if "text" in g:
        context = config.model.get("context")
        return data.DataInfo((context,), ("a", "b")) if isinstance(context, int) else None
    if config.data is not None or g["dataset"] not in data.DATASETS:
        return None
    return data.source(g["dataset"]).info


def resolved(path: Path) -> str:
    """A path as a config records it: absolute, symbolic links resolved."""
    return str(path.resolve())


__all__ = [
    "AUGMENTATIONS",
    "GENERAL",
    "IMAGES_ONLY",
    "MAX_INT",
    "OPTIONS",
    "SCHEDULES",
    "SCHEDULE_OPTIONS",
    "TEXT_ONLY",
    "Config",
    "UsageError",
    "build_augment",
    "build_model",
    "build_optimizer",
    "check_config",
    "chosen_optimizer",
    "complete",
    "data_info",
    "every_option",
    "model_options",
    "optimizer_options",
    "resolved",
    "total_updates",
]
