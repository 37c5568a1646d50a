"""The ``fnn`` command: ``fnn train``, ``fnn evaluate`` and ``fnn predict``.

``fnn train --dataset fashion-mnist`` trains the default 784-128-64-10 ReLU MLP with
Adam, shows progress, prints a per-epoch table and the test accuracy, and writes into
its output directory:

* ``model.npz`` — the architecture (a JSON spec of fnn layer names and numbers) and the
  parameters, loadable by ``fnn evaluate`` and ``fnn predict`` (no code is run);
* ``run.json`` — the configuration, a run id, seed, library versions, data checksums,
  per-epoch metrics, test metrics and a SHA-256 fingerprint of the final parameters;
* ``checkpoints/last.npz`` — the whole training state after the latest epoch, with the
  run id and configuration it belongs to, for ``fnn train --resume DIR`` (which
  continues bit-identically, and refuses a checkpoint of another run or configuration);
* ``curves.png`` and ``confusion.png`` — plots, when matplotlib is installed.

``fnn train --data DIR`` trains on a user's own data (:func:`fnn.data.load_directory`):
any image size, any number of classes. Everything the command is given is checked before
it reads data, writes a file or trains; an error a user can cause ends with one line on
stderr and exit status 2 (130 when interrupted), while a bug in fnn shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io as _textio
import json
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
import numpy as np

from . import (
    __version__,
    callbacks,
    data,
    io,
    losses,
    metrics,
    nn,
    optim,
    parallel,
    plots,
    runtime,
)
from . import random as _random
from . import tree as _tree
from ._atomic import write_bytes_atomic
from ._files import open_regular
from ._types import Array
from .inference import evaluate, predict_proba
from .train import (
    Callback,
    EarlyStopping,
    NonFiniteLossError,
    TrainState,
    fit,
)

OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "nesterov", "adagrad", "rmsprop")
MODELS = ("mlp", "cnn")
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "mlp": {"lr": 2e-3, "epochs": 20, "batch_size": 128},
    "cnn": {"lr": 1e-3, "epochs": 15, "batch_size": 64},
}
"""The learning rate, epochs and batch size each model trains with unless told otherwise."""
SCHEDULES = ("constant", "inverse-time", "cosine", "step")
PADDINGS = ("valid", "same")

MODEL_FILE = "model.npz"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"

RESUME_OPTIONS = frozenset(
    {"--resume", "--epochs", "--stop-after", "--threads", "--quiet", "--no-plots"}
    | {"--data-dir", "--no-download"}
)
"""The options ``--resume`` takes: the rest of the configuration is the run's own."""

PREDICT_MAX_BYTES = 2**28
"""The most pixel data ``fnn predict`` reads from one IDX or ``.npy`` file: 256 MiB (over
340,000 images of 28x28), which take 1 GiB as float32; larger files are refused from
their header. ``fnn.data.read_images`` takes a larger ``max_bytes``."""

TRAINING_COPIES = 6
"""How many float32 copies of the parameters training holds at once, about: the params,
their gradient, Adam's two moments, the update and the checkpoint being written."""


class UsageError(Exception):
    """A problem the user can fix (bad option, missing file): printed without a traceback."""


USER_ERRORS = (UsageError, io.FormatError, data.DataError, NonFiniteLossError, OSError)
"""The errors the command reports in one line: its own usage errors, files that are not
fnn or data files, a diverged run, and the file system's errors (a missing file, no
permission, a full disk). Anything else is a bug and keeps its traceback."""


@attrs.frozen
class Config:
    """Everything that determines a training run (saved in ``run.json``).

    ``data`` is the directory of a user's own data (``--data``), ``None`` for the named
    ``dataset``; for a directory, ``dataset`` is the directory's name.
    """

    dataset: str = "fashion-mnist"
    model: str = "mlp"
    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    weight_init: str = "he_normal"
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    schedule: str = "cosine"
    decay: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.01
    batch_size: int = 128
    epochs: int = 20
    seed: int = 0
    validation_split: float = 0.1
    patience: int = 0
    batch_norm: bool = False
    dropout: float = 0.5
    padding: str = "same"
    augment: tuple[str, ...] = ()
    shards: int = 1
    data: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["hidden"] = list(self.hidden)
        out["augment"] = list(self.augment)
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str = RUN_FILE) -> Config:
        """The config recorded in ``what`` (a run record or a checkpoint), its entries
        checked against the types of the fields; missing entries take their defaults.

        Raises:
            UsageError: not an object, an unknown entry, or an entry of the wrong type.
        """
        if not isinstance(obj, dict):
            raise UsageError(f"{what} has no config object")
        defaults = cls()
        unknown = sorted(set(obj) - {f.name for f in attrs.fields(cls)})
        if unknown:
            raise UsageError(f"{what} has unknown config keys {unknown}")
        values: dict[str, Any] = {}
        for name, value in obj.items():
            default = getattr(defaults, name)
            if isinstance(default, tuple):
                ok = isinstance(value, list) and all(
                    isinstance(v, type(default[0]) if default else str) and type(v) is not bool
                    for v in value
                )
                value = tuple(value) if ok else value
            elif default is None:
                ok = value is None or isinstance(value, str)
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                try:
                    value = float(value) if ok else value
                except OverflowError:
                    ok = False
            else:
                ok = isinstance(value, type(default)) and not isinstance(value, bool)
            if not ok:
                raise UsageError(
                    f"{what}: config entry {name!r} must be like {default!r}, got {value!r}"
                )
            values[name] = value
        return cls(**values)


def _option(name: str) -> str:
    """The command-line option of a config field."""
    return "--init" if name == "weight_init" else "--" + name.replace("_", "-")


def check_config(config: Config) -> None:
    """Check every value of ``config`` against its range, and the model it describes
    (names of activation and initializer; for a named dataset, its size against
    :func:`fnn.runtime.memory_limit`), before anything is read or run.

    Raises:
        UsageError: naming each option out of range, what it must be and what it is.
    """
    c = config

    def at_least(value: float, low: float) -> bool:
        return math.isfinite(value) and value >= low

    rules = [
        ("dataset", c.data is not None or c.dataset in data.DATASETS, sorted(data.DATASETS)),
        ("model", c.model in MODELS, f"one of {MODELS}"),
        ("hidden", bool(c.hidden) and min(c.hidden) >= 1, "positive sizes like 128,64"),
        ("optimizer", c.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
        ("lr", at_least(c.lr, 0.0) and c.lr > 0, "a positive number"),
        ("momentum", 0.0 <= c.momentum < 1.0, "in [0, 1)"),
        ("schedule", c.schedule in SCHEDULES, f"one of {SCHEDULES}"),
        ("decay", at_least(c.decay, 0.0), "a number >= 0"),
        ("l2", at_least(c.l2, 0.0), "a number >= 0"),
        ("weight_decay", at_least(c.weight_decay, 0.0), "a number >= 0"),
        ("batch_size", c.batch_size >= 1, "an integer >= 1"),
        ("epochs", c.epochs >= 1, "an integer >= 1"),
        ("seed", 0 <= c.seed < 2**63, "an integer in [0, 2**63)"),
        ("validation_split", 0.0 <= c.validation_split < 1.0, "in [0, 1)"),
        ("patience", c.patience >= 0, "an integer >= 0 (0: no early stopping)"),
        ("dropout", 0.0 <= c.dropout < 1.0, "in [0, 1)"),
        ("padding", c.padding in PADDINGS, f"one of {PADDINGS}"),
        ("augment", set(c.augment) <= set(AUGMENTATIONS), f"a list of {sorted(AUGMENTATIONS)}"),
        ("shards", 1 <= c.shards <= c.batch_size, f"in [1, the batch size {c.batch_size}]"),
    ]
    bad = [
        f"{_option(name)} must be {expected}, got {getattr(c, name)!r}"
        for name, ok, expected in rules
        if not ok
    ]
    if c.model != "cnn" and c.batch_norm:
        bad.append("--batch-norm applies to --model cnn")
    if bad:
        raise UsageError("; ".join(bad))
    if c.data is None:  # a named dataset: its image shape and classes are known already
        spec = data.DATASETS[c.dataset]
        check_model_size(
            build_model(c, spec.image_shape, spec.num_classes),
            spec.image_shape,
            runtime.memory_limit(),
        )
    else:  # the constructors check --activation and --init; the shapes come with the data
        build_model(c)


def build_model(
    config: Config, image_shape: tuple[int, ...] = (28, 28), classes: int = 10
) -> nn.Layer[Any]:
    """The model of a config for images of ``image_shape`` and ``classes`` classes: the MLP
    (flatten, then dense + activation per hidden size, dense(classes)) or the CNN of
    :func:`fnn.nn.cnn` (with batch norm, dropout and padding as asked).

    Raises:
        UsageError: an unknown model, activation or initializer, or an image shape the
            model cannot take.
    """
    try:
        if config.model == "cnn":
            return nn.cnn(
                image_shape,
                classes,
                dropout=config.dropout,
                batch_norm=config.batch_norm,
                padding=config.padding,
            )
        if config.model != "mlp":
            raise UsageError(f"unknown model {config.model!r}; expected one of {MODELS}")
        if config.batch_norm:
            raise UsageError("--batch-norm applies to --model cnn")
        return nn.mlp((*config.hidden, classes), config.activation, weight_init=config.weight_init)
    except (ValueError, TypeError) as err:  # the layer constructors' checks of their options
        raise UsageError(str(err)) from None


def check_model_size(
    model: nn.Layer[Any], image_shape: tuple[int, ...], memory: int | None
) -> None:
    """Refuse a model whose training would not fit in ``memory`` bytes, before allocating.

    The parameters are counted from :attr:`fnn.nn.Layer.shapes` (nothing is allocated);
    training holds about :data:`TRAINING_COPIES` float32 copies of them. ``memory`` is
    :func:`fnn.runtime.memory_limit` (physical memory or ``ulimit -v``, the smaller).

    Raises:
        UsageError: naming the parameter count, the memory it needs and the limit.
    """
    try:
        count = _tree.size(model.shapes(image_shape).params)
    except (ValueError, TypeError) as err:
        raise UsageError(f"the model cannot take images of shape {image_shape}: {err}") from None
    need = count * 4 * TRAINING_COPIES
    if memory is not None and need > memory:
        raise UsageError(
            f"the model has {count:,} parameters: training it takes about "
            f"{need / 2**30:,.1f} GiB, more than the {memory / 2**30:,.1f} GiB this process "
            "may use; choose smaller --hidden sizes"
        )


def build_schedule(config: Config, steps_per_epoch: int) -> optim.Schedule:
    """The learning-rate schedule of a config, over its whole run."""
    total = max(config.epochs * steps_per_epoch, 1)
    if config.schedule == "constant":
        return optim.constant(config.lr)
    if config.schedule == "inverse-time":
        return optim.inverse_time_decay(config.lr, config.decay)
    if config.schedule == "cosine":
        return optim.cosine_decay(config.lr, total)
    if config.schedule == "step":
        return optim.step_decay(config.lr, 0.5, max(total // 4, 1))
    raise UsageError(f"unknown schedule {config.schedule!r}; expected one of {SCHEDULES}")


def build_optimizer(config: Config, steps_per_epoch: int) -> optim.Optimizer:
    """The optimizer of a config (with the L2 penalty's gradient in front when asked)."""
    lr = build_schedule(config, steps_per_epoch)
    rules = {
        "adam": lambda: optim.adam(lr),
        "adamw": lambda: optim.adamw(lr, weight_decay=config.weight_decay),
        "sgd": lambda: optim.sgd(lr),
        "momentum": lambda: optim.sgd(lr, momentum=config.momentum),
        "nesterov": lambda: optim.sgd(lr, momentum=config.momentum, nesterov=True),
        "adagrad": lambda: optim.adagrad(lr),
        "rmsprop": lambda: optim.rmsprop(lr),
    }
    if config.optimizer not in rules:
        raise UsageError(f"unknown optimizer {config.optimizer!r}; expected one of {OPTIMIZERS}")
    rule = rules[config.optimizer]()
    return optim.chain(optim.add_l2(config.l2), rule) if config.l2 else rule


AUGMENTATIONS: dict[str, data.Augment] = {"flip": data.random_flip, "shift": data.random_shift}
"""The names ``--augment`` takes: left-right flips, and shifts of up to 2 pixels."""


def build_augment(config: Config) -> data.Augment | None:
    """The augmentation of a config's training batches (None for none)."""
    unknown = [name for name in config.augment if name not in AUGMENTATIONS]
    if unknown:
        raise UsageError(f"unknown augmentation {unknown[0]!r}; expected {sorted(AUGMENTATIONS)}")
    if not config.augment:
        return None
    return data.augmentation(*(AUGMENTATIONS[name] for name in config.augment))


def _augment(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if names == ("none",):
        return ()
    bad = [name for name in names if name not in AUGMENTATIONS]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected none or a list of {', '.join(sorted(AUGMENTATIONS))}, got {text!r}"
        )
    return names


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,64, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 128,64, got {text!r}")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnn",
        description="Train, evaluate and use fnn models on MNIST-family data or your own.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"fnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = Config()

    train = commands.add_parser(
        "train", help="train a model and write it with its run record", allow_abbrev=False
    )
    train.add_argument(
        "--dataset",
        choices=sorted(data.DATASETS),
        help=f"a named dataset (default {defaults.dataset})",
    )
    train.add_argument(
        "--data",
        type=Path,
        help="train on your own data: a directory of the four IDX files, of x_train.npy, "
        "y_train.npy, x_test.npy, y_test.npy, or of data.npz (see fnn.data.load_directory)",
    )
    train.add_argument(
        "--model", choices=MODELS, default=defaults.model, help="mlp (default) or cnn"
    )
    train.add_argument(
        "--batch-norm", action="store_true", help="batch norm after the CNN's conv and dense"
    )
    train.add_argument(
        "--dropout", type=float, default=defaults.dropout, help="the CNN's dropout rate"
    )
    train.add_argument(
        "--padding",
        choices=PADDINGS,
        help=f"the CNN's conv padding (default {defaults.padding})",
    )
    train.add_argument(
        "--augment",
        type=_augment,
        help="flip and/or shift each training batch, e.g. flip,shift; none (the default)",
    )
    train.add_argument(
        "--shards",
        type=int,
        help="split each batch into this many shards, summed in a fixed order (default 1); "
        "under mpirun -n N, N dividing it, each process computes shards / N of them",
    )
    train.add_argument("--data-dir", type=Path, help="directory holding the four IDX files")
    train.add_argument("--no-download", action="store_true", help="never download the data")
    train.add_argument("--hidden", type=_hidden, default=defaults.hidden, help="e.g. 128,64")
    train.add_argument("--activation", default=defaults.activation)
    train.add_argument("--init", dest="weight_init", default=defaults.weight_init)
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    train.add_argument(
        "--lr", type=float, help="learning rate (default 2e-3 for the MLP, 1e-3 for the CNN)"
    )
    train.add_argument("--momentum", type=float, default=defaults.momentum)
    train.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    train.add_argument("--decay", type=float, default=defaults.decay, help="inverse-time decay")
    train.add_argument("--l2", type=float, default=defaults.l2, help="L2 penalty on weights")
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--batch-size", type=int, help="default 128 for the MLP, 64 for the CNN")
    train.add_argument("--epochs", type=int, help="total epochs (default 20 MLP, 15 CNN)")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--validation-split", type=float, default=defaults.validation_split)
    train.add_argument("--patience", type=int, default=defaults.patience, help="0: no early stop")
    train.add_argument(
        "--out",
        type=Path,
        help="output directory (default runs/<dataset>); a new run replaces the run there",
    )
    train.add_argument(
        "--resume",
        type=Path,
        help="continue the run saved in this directory, with its own configuration",
    )
    train.add_argument(
        "--stop-after",
        type=int,
        help="stop after this many epochs of the run (resume later with --resume)",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per process (default 1: small models gain little from more, and lose "
        "much on a busy machine): with two or more shards a process, up to this many of "
        "them run at once, one thread each, and BLAS gets one thread; else all go to BLAS",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")

    evaluate_cmd = commands.add_parser(
        "evaluate", help="evaluate a saved model on test data", allow_abbrev=False
    )
    evaluate_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    evaluate_cmd.add_argument("--dataset", choices=sorted(data.DATASETS))
    evaluate_cmd.add_argument("--data", type=Path, help="a directory of your own data")
    evaluate_cmd.add_argument("--data-dir", type=Path)
    evaluate_cmd.add_argument("--no-download", action="store_true")

    predict_cmd = commands.add_parser(
        "predict", help="class probabilities for images", allow_abbrev=False
    )
    predict_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    predict_cmd.add_argument("inputs", type=Path, nargs="+", help="PNG, IDX or NPY files")
    predict_cmd.add_argument("--invert", action="store_true", help="dark objects on light")
    predict_cmd.add_argument("--top", type=int, default=3, help="classes to show per image")
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    values: dict[str, Any] = {f.name: getattr(args, f.name, None) for f in attrs.fields(Config)}
    if values["model"] != "cnn" and values["padding"] is not None:
        raise UsageError("--padding applies to --model cnn")
    if args.data is not None:
        if args.dataset is not None or args.data_dir is not None:
            raise UsageError("give --data (your own data) or --dataset/--data-dir, not both")
        path = args.data.resolve()
        values["data"], values["dataset"] = str(path), path.name
    for name, default in MODEL_DEFAULTS[values["model"]].items():
        if values[name] is None:
            values[name] = default
    values = {name: value for name, value in values.items() if value is not None}
    return Config(**values)


def _load_data(name: str, data_dir: Path | None, no_download: bool) -> data.Dataset:
    return data.load_dataset(name, data_dir=data_dir, download=not no_download)


def _load_config_data(config: Config, args: argparse.Namespace) -> data.Dataset:
    """The dataset of a config: a user's directory (``config.data``) or a named dataset."""
    if config.data is not None:
        return data.load_directory(config.data)
    return _load_data(config.dataset, args.data_dir, args.no_download)


def _versions() -> dict[str, str]:
    return {
        "fnn": __version__,
        "numpy": np.__version__,
        "attrs": importlib.metadata.version("attrs"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


MAX_RUN_RECORD = 64 * 2**20
"""The largest ``run.json`` read (a record of thousands of epochs takes well under 1 MB)."""


def _read_run(directory: Path) -> dict[str, Any]:
    """The run record of ``directory``, read only from a regular file of at most
    :data:`MAX_RUN_RECORD` bytes."""
    path = directory / RUN_FILE
    try:
        with open_regular(path, data.DataError) as file:
            text = file.read(MAX_RUN_RECORD + 1)
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {directory} an fnn run directory?") from None
    if len(text) > MAX_RUN_RECORD:
        raise UsageError(f"{path} is larger than the {MAX_RUN_RECORD} bytes of a run record")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path} does not hold a run record")
    return record


def _given_options(argv: Sequence[str]) -> set[str]:
    """The long options present on a command line (abbreviations are refused by the parser)."""
    return {token.split("=", 1)[0] for token in argv if token.startswith("--")}


def _train(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn train``; under ``mpirun -n N`` (N > 1) every process trains its shards and
    only process 0 prints and writes; an error on any process aborts them all."""
    try:
        comm = parallel.world()
    except ImportError as err:  # started by mpirun without mpi4py
        raise UsageError(str(err)) from None
    lead = parallel.rank_and_size(comm)[0] == 0  # the one process that prints and writes
    with parallel.abort_on_error(
        comm, lambda text: sys.stderr.write(f"fnn train: error on {text}")
    ):
        return _train_on(args, out if lead else _textio.StringIO(), comm, lead)


def _run_config(args: argparse.Namespace) -> tuple[Config, Path, dict[str, Any] | None]:
    """The checked config of the run to train, its directory, and for ``--resume`` the
    run's record; nothing is written."""
    for option, value in (("--stop-after", args.stop_after), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be an integer >= 1, got {value}")
    if args.resume is None:
        config = _config_from_args(args)
        check_config(config)
        return config, args.out or Path("runs") / config.dataset, None
    foreign = sorted(_given_options(args.argv) - RESUME_OPTIONS)
    if foreign:
        raise UsageError(
            f"--resume continues the run's own configuration ({args.resume / RUN_FILE}); "
            f"{', '.join(foreign)} cannot change it: start a new run with --out instead"
        )
    run = _read_run(args.resume)
    config = Config.from_json(run.get("config"), str(args.resume / RUN_FILE))
    if args.epochs is not None:  # extending a run: the schedule spans the new total
        config = attrs.evolve(config, epochs=args.epochs)
    check_config(config)
    return config, args.resume, run


def _check_out(directory: Path) -> None:
    """Refuse an output directory the run could not write into, before anything happens.

    Raises:
        UsageError: the path or one of the files fnn writes there is of the wrong kind, or
            the nearest existing directory is not writable.
    """
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--out {directory} exists and is not a directory")
    for name, is_dir in ((MODEL_FILE, False), (RUN_FILE, False), (CHECKPOINTS, True)):
        path = directory / name
        if path.exists() and path.is_dir() != is_dir:
            kind = "is not a directory" if is_dir else "is a directory"
            raise UsageError(f"{path} {kind}: fnn train writes its {name} there")
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot create {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into {existing}: permission denied")


def _prepare_out(directory: Path) -> None:
    """Create the output directory and its checkpoint directory and write a probe file in
    each (removed at once), so that an unwritable place fails before training.

    Raises:
        UsageError: the directory cannot be created or written into.
    """
    for place in (directory, directory / CHECKPOINTS):
        try:
            place.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=place):
                pass
        except OSError as err:
            raise UsageError(f"cannot write into {place}: {err.strerror or err}") from None


def _forget_run(directory: Path) -> None:
    """Remove the checkpoint and model of an earlier run in ``directory`` (a new run
    replaces it), so that ``--resume`` cannot find the one nor ``fnn evaluate`` the other
    beside the new run's record."""
    for path in (directory / CHECKPOINTS / callbacks.LAST, directory / MODEL_FILE):
        if path.is_symlink() or path.is_file():
            path.unlink()


def _checkpoint_of(
    directory: Path, run: dict[str, Any], config: Config, expected: Any
) -> TrainState[Any]:
    """The checkpoint to resume, after checking it belongs to the run in ``directory``.

    Raises:
        UsageError: no checkpoint, a checkpoint of another run (its run id differs from
            ``run.json``'s), of another configuration (naming the options that differ), or
            holding something else than a training state of params like ``expected`` (a
            tree of :attr:`fnn.nn.Layer.shapes` placeholders).
    """
    path = directory / CHECKPOINTS / callbacks.LAST
    if not path.is_file():
        raise UsageError(f"{path} not found: nothing to resume")
    meta = io.load_metadata(path)
    run_id = run.get("run_id")
    if not isinstance(run_id, str):
        raise UsageError(
            f"{directory / RUN_FILE} carries no run id (written before runs had one), so "
            "its checkpoint cannot be matched to it: start a new run"
        )
    if meta.get("run_id") != run_id:
        raise UsageError(
            f"{path} is not a checkpoint of the run in {directory / RUN_FILE} (its run id is "
            f"{meta.get('run_id')!r}, the run's {run_id!r}): it is left from another run; "
            "start a new run instead"
        )
    saved = Config.from_json(meta.get("config"), str(path))
    differ = [
        f"{_option(f.name)} {getattr(saved, f.name)!r} (run.json: {getattr(config, f.name)!r})"
        for f in attrs.fields(Config)
        if f.name != "epochs" and getattr(saved, f.name) != getattr(config, f.name)
    ]
    if differ:
        raise UsageError(f"{path} was trained with another configuration: {', '.join(differ)}")
    state = io.load(path)
    if not isinstance(state, TrainState):
        raise UsageError(f"{path} does not hold a training state")
    found = _tree.mismatch(expected, state.params)
    if found is not None:
        raise UsageError(f"{path} does not hold the params of the run's model: {found}")
    return state


def _check_progress(done: int, epochs: int, stop_after: int | None) -> None:
    """On resume, refuse a run with nothing left to train: its ``epochs`` (or
    ``--stop-after``) already reached."""
    if epochs <= done:
        raise UsageError(
            f"the run has trained {done} epochs of its {epochs} already: nothing to train; "
            f"extend it with --epochs N, N > {done}"
        )
    if stop_after is not None and stop_after <= done:
        raise UsageError(
            f"--stop-after {stop_after} leaves nothing to train: the run has trained {done} "
            "epochs already"
        )


def _check_same_data(config: Config, run: dict[str, Any] | None, checksums: dict[str, str]) -> None:
    """On resume, refuse a user's data directory whose files changed since the run began."""
    if run is None or config.data is None:
        return
    record = run.get("data")
    recorded = record.get("sha256") if isinstance(record, dict) else None
    if recorded != checksums:
        raise UsageError(
            f"the data in {config.data} changed since the run began (SHA-256 of its files "
            f"{checksums}, the run recorded {recorded}): resume with the same files"
        )


def thread_plan(threads: int, shards: int, comm: parallel.Communicator | None) -> tuple[int, int]:
    """:func:`fnn.parallel.thread_plan` for ``--threads`` and ``--shards``.

    Raises:
        UsageError: the processes of ``comm`` do not divide ``shards``.
    """
    try:
        return parallel.thread_plan(threads, shards, comm)
    except ValueError as err:
        raise UsageError(f"--shards {shards}: {err}") from None


def _train_on(
    args: argparse.Namespace, out: TextIO, comm: parallel.Communicator | None, lead: bool
) -> int:
    config, directory, run = _run_config(args)
    if lead:
        _check_out(directory)
    workers, blas = thread_plan(args.threads, config.shards, comm)
    if not runtime.set_blas_threads(blas):
        out.write("note: NumPy's BLAS is not OpenBLAS; --threads had no effect on it\n")
    runtime.keep_freed_memory()  # where glibc is: no page faults for each step's arrays

    dataset = _load_config_data(config, args)
    checksums = dict(dataset.sha256)
    _check_same_data(config, run, checksums)
    data_record: dict[str, Any] = {"dataset": config.dataset, "sha256": checksums}
    if config.data is not None:
        data_record["directory"] = config.data
    image_shape = tuple(dataset.x_train.shape[1:])
    model = build_model(config, image_shape, dataset.num_classes)
    check_model_size(model, image_shape, runtime.memory_limit())
    x_train, y_train = _float_images(dataset.x_train), dataset.y_train
    x_test, y_test = _float_images(dataset.x_test), dataset.y_test
    classes, num_classes = list(dataset.classes), dataset.num_classes
    del dataset  # the uint8 images: only the float32 copies are needed from here on
    n_val = round(len(x_train) * config.validation_split)
    n_fit = len(x_train) - n_val
    if n_fit < 1 or (config.validation_split > 0 and n_val < 1):
        part = "training" if n_fit < 1 else "validation"
        raise UsageError(
            f"--validation-split {config.validation_split} of {len(x_train)} training "
            f"images leaves no {part} images"
        )
    steps_per_epoch = data.num_batches(n_fit, config.batch_size, False)
    optimizer = build_optimizer(config, steps_per_epoch)
    key = _random.key(config.seed)

    state: TrainState[Any] | None = None
    if run is not None:
        state = _checkpoint_of(directory, run, config, model.shapes(image_shape).params)
        _check_progress(state.epoch, config.epochs, args.stop_after)
        run_id = str(run["run_id"])
        out.write(f"resuming {printable(str(directory))} after epoch {state.epoch}\n")
    else:
        run_id = uuid.uuid4().hex
    if lead:
        _prepare_out(directory)
        if run is None:
            _forget_run(directory)
            _write_json(
                directory / RUN_FILE,
                {
                    "config": config.to_json(),
                    "seed": config.seed,
                    "run_id": run_id,
                    "data": data_record,
                },
            )

    times = callbacks.EpochTimes()
    hooks: list[Callback] = [times]
    checkpoints = directory / CHECKPOINTS
    if lead:
        identity = {"run_id": run_id, "config": config.to_json()}
        hooks.append(callbacks.checkpoint(checkpoints, metadata=identity))
    if lead and not args.quiet:
        hooks.append(callbacks.progress_bar())
    stop = EarlyStopping(patience=config.patience) if config.patience > 0 else None
    began = time.perf_counter()
    try:
        final = fit(
            model,
            losses.softmax_cross_entropy,
            optimizer,
            x_train,
            y_train,
            key=key,
            epochs=min(config.epochs, args.stop_after or config.epochs),
            batch_size=config.batch_size,
            validation_split=config.validation_split,
            early_stopping=stop,
            state=state,
            augment=build_augment(config),
            shards=config.shards,
            comm=comm,
            threads=workers,
            callbacks=hooks,
        )
    except NonFiniteLossError as err:
        last = checkpoints / callbacks.LAST
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint yet"
        raise NonFiniteLossError(f"training diverged: {err}; {kept}") from None
    wall = time.perf_counter() - began
    test = evaluate(
        model,
        losses.softmax_cross_entropy,
        final.params,
        x_test,
        y_test,
        model_state=final.model_state,
        comm=comm,  # each process evaluates its share of the chunks
    )
    out.write(callbacks.history_table(final.history, times.seconds) + "\n")
    out.write(f"test accuracy {test.accuracy:.4f}  test loss {test.loss:.4f}\n")
    if not lead:
        return 0
    predictions = predict_proba(model, final.params, x_test, model_state=final.model_state).argmax(
        axis=1
    )
    matrix = metrics.confusion_matrix(y_test, predictions, num_classes)

    io.save_model(
        directory / MODEL_FILE,
        model,
        final.params,
        in_shape=image_shape,
        model_state=final.model_state,
        metadata={
            "dataset": config.dataset,
            "data": config.data,
            "classes": classes,
        },
    )
    previous = (run or {}).get("timing")
    previous = previous if isinstance(previous, dict) else {}
    earlier = previous.get("epoch_seconds")
    record = {
        "config": config.to_json(),
        "run_id": run_id,
        "seed": config.seed,
        "versions": _versions(),
        "data": data_record,
        "epochs": [attrs.asdict(r) for r in final.history],
        "stopped_early": final.stopped,
        "test": {"loss": test.loss, "accuracy": test.accuracy},
        "confusion_matrix": matrix.tolist(),
        "params_sha256": _tree.fingerprint(final.params),
        "timing": {
            "epoch_seconds": {
                **(earlier if isinstance(earlier, dict) else {}),
                **{str(e): s for e, s in times.seconds.items()},
            },
            "wall_seconds": wall,
        },
    }
    _write_json(directory / RUN_FILE, record)
    if not args.no_plots:
        try:
            plots.history(final.history, directory / "curves.png")
            plots.confusion_matrix(matrix, directory / "confusion.png", classes)
        except plots.PlottingUnavailableError as err:
            out.write(f"note: {err}\n")
    out.write(printable(f"wrote {directory / MODEL_FILE}, {directory / RUN_FILE}") + "\n")
    return 0


def _float_images(images: Array) -> Array:
    """float32 images in [0, 1]: uint8 ones scaled, float ones (a directory's) as float32."""
    return data.to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


def _model_path(path: Path) -> Path:
    return path / MODEL_FILE if path.is_dir() else path


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: one line, every control or non-printable
    character (escape sequences included) shown as its Python escape."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _evaluation_data(args: argparse.Namespace, meta: dict[str, Any]) -> data.Dataset:
    """The dataset ``fnn evaluate`` uses: ``--data``, ``--dataset``, or the model file's."""
    if args.data is not None:
        if args.dataset is not None:
            raise UsageError("give --data or --dataset, not both")
        return data.load_directory(args.data)
    name = args.dataset or meta.get("dataset")
    if args.dataset is None and isinstance(meta.get("data"), str):
        return data.load_directory(meta["data"])
    if not isinstance(name, str) or name not in data.DATASETS:
        raise UsageError("the model file names no known dataset: pass --dataset or --data")
    return _load_data(name, args.data_dir, args.no_download)


def _evaluate(args: argparse.Namespace, out: TextIO) -> int:
    path = _model_path(args.model)
    model, params, model_state = io.load_model(path)
    meta = io.load_metadata(path)
    dataset = _evaluation_data(args, meta)
    image_shape = tuple(dataset.x_test.shape[1:])
    takes = io.load_in_shape(path)
    if takes != image_shape:
        raise UsageError(f"{path} takes images of shape {takes}, the dataset's are {image_shape}")
    outputs = model.output_shape(image_shape)[-1]
    if outputs != dataset.num_classes:
        raise UsageError(f"{path} has {outputs} outputs, the dataset {dataset.num_classes} classes")
    x_test = _float_images(dataset.x_test)
    result = evaluate(
        model,
        losses.softmax_cross_entropy,
        params,
        x_test,
        dataset.y_test,
        model_state=model_state,
    )
    labels = predict_proba(model, params, x_test, model_state=model_state).argmax(axis=1)
    matrix = metrics.confusion_matrix(dataset.y_test, labels, outputs)
    report = metrics.precision_recall(matrix)
    out.write(f"test accuracy {result.accuracy:.4f}  test loss {result.loss:.4f}\n")
    out.write("class          precision  recall      f1  support\n")
    for i, cls in enumerate(dataset.classes):
        out.write(
            f"{printable(cls):<13}  {report.precision[i]:9.4f}  {report.recall[i]:6.4f}  "
            f"{report.f1[i]:6.4f}  {report.support[i]:7d}\n"
        )
    return 0


def _predict(args: argparse.Namespace, out: TextIO) -> int:
    if args.top < 1:
        raise UsageError(f"--top must be an integer >= 1, got {args.top}")
    path = _model_path(args.model)
    model, params, model_state = io.load_model(path)
    meta = io.load_metadata(path)
    raw_classes = meta.get("classes")
    classes = [printable(str(c)) for c in raw_classes] if isinstance(raw_classes, list) else []
    image_shape = io.load_in_shape(path)
    for source in args.inputs:
        images = data.read_images(
            source, args.invert, image_shape=image_shape, max_bytes=PREDICT_MAX_BYTES
        )
        probs = predict_proba(model, params, images, model_state=model_state)
        for i, row in enumerate(probs):
            order = np.argsort(-row, kind="stable")[: args.top]
            names = [classes[k] if k < len(classes) else str(k) for k in order]
            shown = ", ".join(f"{n} {row[k]:.4f}" for n, k in zip(names, order))
            label = printable(f"{source}[{i}]" if len(probs) > 1 else str(source))
            out.write(f"{label}: {shown}\n")
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``fnn`` command; returns the exit status: 0 on success, 2 for an error the
    user can fix (:data:`USER_ERRORS`, reported in one line on stderr), 130 when
    interrupted. Any other exception is a bug in fnn and propagates with its traceback."""
    stream = out or sys.stdout
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    args.argv = arguments
    commands = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return commands[args.command](args, stream)
    except USER_ERRORS as err:
        lines = (printable(line.strip()) for line in str(err).splitlines())
        sys.stderr.write(f"fnn {args.command}: error: {' '.join(filter(None, lines))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"fnn {args.command}: interrupted\n")
        return 130
