"""The ``fnn`` command: ``fnn train``, ``fnn evaluate`` and ``fnn predict``.

``fnn train --dataset fashion-mnist`` trains the default 784-128-64-10 ReLU MLP with
Adam, shows progress, prints a per-epoch table and the test accuracy, and writes into
its output directory:

* ``model.npz`` — the architecture (a JSON spec of fnn layer names and numbers) and the
  parameters, loadable by ``fnn evaluate`` and ``fnn predict`` (no code is run);
* ``run.json`` — the configuration, seed, library versions, data checksums, per-epoch
  metrics, test metrics and a SHA-256 fingerprint of the final parameters;
* ``checkpoints/last.npz`` — the whole training state after the latest epoch, for
  ``fnn train --resume DIR`` (which continues bit-identically);
* ``curves.png`` and ``confusion.png`` — plots, when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io as _textio
import json
import platform
import sys
import time
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
from ._types import Array
from .train import Callback, EarlyStopping, TrainState, evaluate, fit, predict_proba

OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "nesterov", "adagrad", "rmsprop")
MODELS = ("mlp", "cnn")
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "mlp": {"lr": 2e-3, "epochs": 20, "batch_size": 128},
    "cnn": {"lr": 1e-3, "epochs": 15, "batch_size": 64},
}
"""The learning rate, epochs and batch size each model trains with unless told otherwise."""
SCHEDULES = ("constant", "inverse-time", "cosine", "step")

MODEL_FILE = "model.npz"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"


class UsageError(Exception):
    """A problem the user can fix (bad option, missing file): printed without a traceback."""


@attrs.frozen
class Config:
    """Everything that determines a training run (saved in ``run.json``)."""

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

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["hidden"] = list(self.hidden)
        out["augment"] = list(self.augment)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Config:
        if not isinstance(obj, dict):
            raise UsageError("run.json has no config object")
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(obj) - known
        if unknown:
            raise UsageError(f"run.json has unknown config keys {sorted(unknown)}")
        values = dict(obj)
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        if "augment" in values:
            values["augment"] = tuple(str(a) for a in values["augment"])
        return cls(**values)


def build_model(config: Config, image_shape: tuple[int, ...] = (28, 28)) -> nn.Layer[Any]:
    """The model of a config: the MLP (flatten, then dense + activation per hidden size,
    dense(10)) or the CNN of :func:`fnn.nn.cnn` (with batch norm, dropout and padding as
    asked)."""
    if config.model == "cnn":
        return nn.cnn(
            image_shape,
            10,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
            padding=config.padding,
        )
    if config.model != "mlp":
        raise UsageError(f"unknown model {config.model!r}; expected one of {MODELS}")
    if config.batch_norm:
        raise UsageError("--batch-norm applies to --model cnn")
    return nn.mlp((*config.hidden, 10), config.activation, weight_init=config.weight_init)


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
        prog="fnn", description="Train, evaluate and use fnn models on MNIST-family data."
    )
    parser.add_argument("--version", action="version", version=f"fnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = Config()

    train = commands.add_parser("train", help="train a model and write it with its run record")
    train.add_argument("--dataset", choices=sorted(data.DATASETS), default=defaults.dataset)
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
        choices=("valid", "same"),
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
    train.add_argument("--out", type=Path, help="output directory (default runs/<dataset>)")
    train.add_argument("--resume", type=Path, help="continue the run saved in this directory")
    train.add_argument(
        "--stop-after",
        type=int,
        help="stop after this many epochs of the run (resume later with --resume)",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1: small models gain little from more, and lose much "
        "on a busy machine)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")

    evaluate_cmd = commands.add_parser("evaluate", help="evaluate a saved model on test data")
    evaluate_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    evaluate_cmd.add_argument("--dataset", choices=sorted(data.DATASETS))
    evaluate_cmd.add_argument("--data-dir", type=Path)
    evaluate_cmd.add_argument("--no-download", action="store_true")

    predict_cmd = commands.add_parser("predict", help="class probabilities for images")
    predict_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    predict_cmd.add_argument("inputs", type=Path, nargs="+", help="PNG, IDX or NPY files")
    predict_cmd.add_argument("--invert", action="store_true", help="dark objects on light")
    predict_cmd.add_argument("--top", type=int, default=3, help="classes to show per image")
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    values = {f.name: getattr(args, f.name) for f in attrs.fields(Config)}
    if values["model"] != "cnn" and values["padding"] is not None:
        raise UsageError("--padding applies to --model cnn")
    for name, default in MODEL_DEFAULTS[values["model"]].items():
        if values[name] is None:
            values[name] = default
    values = {name: value for name, value in values.items() if value is not None}
    try:
        return Config(**values)
    except (TypeError, ValueError) as err:  # pragma: no cover - attrs does no validation
        raise UsageError(str(err)) from None


def _load_data(name: str, data_dir: Path | None, no_download: bool) -> data.Dataset:
    return data.load_dataset(name, data_dir=data_dir, download=not no_download)


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


def _read_run(directory: Path) -> dict[str, Any]:
    path = directory / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {directory} an fnn run directory?") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path} does not hold a run record")
    return record


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


def _train_on(
    args: argparse.Namespace, out: TextIO, comm: parallel.Communicator | None, lead: bool
) -> int:
    if not runtime.set_blas_threads(args.threads):
        out.write("note: NumPy's BLAS is not OpenBLAS; --threads had no effect\n")
    runtime.keep_freed_memory()  # where glibc is: no page faults for each step's arrays
    if args.resume is not None:
        run = _read_run(args.resume)
        config = Config.from_json(run.get("config"))
        if args.epochs is not None:  # extending a run: the schedule spans the new total
            config = attrs.evolve(config, epochs=args.epochs)
        directory = args.resume
    else:
        config = _config_from_args(args)
        directory = args.out or Path("runs") / config.dataset
    directory.mkdir(parents=True, exist_ok=True)

    dataset = _load_data(config.dataset, args.data_dir, args.no_download)
    checksums = dict(dataset.sha256)
    x_train, y_train = data.to_float(dataset.x_train), dataset.y_train
    x_test, y_test = data.to_float(dataset.x_test), dataset.y_test
    del dataset  # the uint8 images: only the float32 copies are needed from here on
    n_fit = len(x_train) - round(len(x_train) * config.validation_split)
    steps_per_epoch = data.num_batches(n_fit, config.batch_size, False)

    model = build_model(config, x_train.shape[1:])
    optimizer = build_optimizer(config, steps_per_epoch)
    key = _random.key(config.seed)
    state: TrainState[Any] | None = None
    if args.resume is not None:
        state = _load_checkpoint(directory / CHECKPOINTS / callbacks.LAST)
        _tree.assert_same_structure(
            model.init(key, x_train.shape[1:]), state.params, "the checkpoint and the model"
        )
        out.write(f"resuming {directory} after epoch {state.epoch}\n")
    elif lead:
        _write_json(directory / RUN_FILE, {"config": config.to_json(), "seed": config.seed})

    times = callbacks.EpochTimes()
    hooks: list[Callback] = [times]
    if lead:
        hooks.append(callbacks.checkpoint(directory / CHECKPOINTS))
    if lead and not args.quiet:
        hooks.append(callbacks.progress_bar())
    stop = EarlyStopping(patience=config.patience) if config.patience > 0 else None
    began = time.perf_counter()
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
        callbacks=hooks,
    )
    wall = time.perf_counter() - began
    test = evaluate(
        model,
        losses.softmax_cross_entropy,
        final.params,
        x_test,
        y_test,
        model_state=final.model_state,
    )
    predictions = predict_proba(model, final.params, x_test, model_state=final.model_state).argmax(
        axis=1
    )
    matrix = metrics.confusion_matrix(y_test, predictions, 10)

    out.write(callbacks.history_table(final.history, times.seconds) + "\n")
    out.write(f"test accuracy {test.accuracy:.4f}  test loss {test.loss:.4f}\n")
    if not lead:
        return 0

    classes = list(data.DATASETS[config.dataset].classes)
    io.save_model(
        directory / MODEL_FILE,
        model,
        final.params,
        in_shape=x_train.shape[1:],
        model_state=final.model_state,
        metadata={"dataset": config.dataset, "classes": classes},
    )
    previous = _read_run(directory).get("timing") or {}
    record = {
        "config": config.to_json(),
        "seed": config.seed,
        "versions": _versions(),
        "data": {"dataset": config.dataset, "sha256": checksums},
        "epochs": [attrs.asdict(r) for r in final.history],
        "stopped_early": final.stopped,
        "test": {"loss": test.loss, "accuracy": test.accuracy},
        "confusion_matrix": matrix.tolist(),
        "params_sha256": _tree.fingerprint(final.params),
        "timing": {
            "epoch_seconds": {
                **previous.get("epoch_seconds", {}),
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
    out.write(f"wrote {directory / MODEL_FILE}, {directory / RUN_FILE}\n")
    return 0


def _load_checkpoint(path: Path) -> TrainState[Any]:
    if not path.is_file():
        raise UsageError(f"{path} not found: nothing to resume")
    state = io.load(path)
    if not isinstance(state, TrainState):
        raise UsageError(f"{path} does not hold a training state")
    return state


def _model_path(path: Path) -> Path:
    return path / MODEL_FILE if path.is_dir() else path


def _evaluate(args: argparse.Namespace, out: TextIO) -> int:
    model, params, model_state = io.load_model(_model_path(args.model))
    meta = io.load_metadata(_model_path(args.model))
    name = args.dataset or meta.get("dataset")
    if not isinstance(name, str) or name not in data.DATASETS:
        raise UsageError("the model file names no dataset: pass --dataset")
    dataset = _load_data(name, args.data_dir, args.no_download)
    x_test = data.to_float(dataset.x_test)
    result = evaluate(
        model,
        losses.softmax_cross_entropy,
        params,
        x_test,
        dataset.y_test,
        model_state=model_state,
    )
    labels = predict_proba(model, params, x_test, model_state=model_state).argmax(axis=1)
    matrix = metrics.confusion_matrix(dataset.y_test, labels, 10)
    report = metrics.precision_recall(matrix)
    out.write(f"test accuracy {result.accuracy:.4f}  test loss {result.loss:.4f}\n")
    out.write("class          precision  recall      f1  support\n")
    for i, cls in enumerate(data.DATASETS[name].classes):
        out.write(
            f"{cls:<13}  {report.precision[i]:9.4f}  {report.recall[i]:6.4f}  "
            f"{report.f1[i]:6.4f}  {report.support[i]:7d}\n"
        )
    return 0


def read_images(path: Path, invert: bool = False) -> Array:
    """Images ``(n, 28, 28)`` float32 in [0, 1] from a PNG (or other Pillow format), an
    IDX file (raw or gzip) or a ``.npy`` array of shape ``(28, 28)`` or ``(n, 28, 28)``.

    Pixel values above 1 are taken as 0-255 and scaled. ``invert`` turns dark-on-light
    pictures into the light-on-dark style of MNIST.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    head = path.read_bytes()[:8]
    if head.startswith(b"\x89PNG") or path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
        array = _read_picture(path)
    elif head.startswith(b"\x93NUMPY"):
        array = np.load(path, allow_pickle=False)
    else:
        array = data.read_idx(path)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ValueError(
            f"{path}: expected images of shape (28, 28) or (n, 28, 28), got {array.shape}"
        )
    if array.dtype.kind not in "uif":
        raise TypeError(f"{path}: expected numeric pixels, got dtype {array.dtype}")
    images = array.astype(np.float32)
    if images.size and float(images.max()) > 1.0:
        images /= 255.0
    if not np.isfinite(images).all():
        raise ValueError(f"{path}: pixels must be finite")
    return 1.0 - images if invert else images


def _read_picture(path: Path) -> Array:
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(
            f"{path}: reading pictures needs Pillow; install it with: pip install 'fnn[image]' "
            "(or pass an IDX or .npy file)"
        ) from None
    with Image.open(path) as picture:
        gray = picture.convert("L")
        if gray.size != (28, 28):
            gray = gray.resize((28, 28), Image.Resampling.LANCZOS)
        return np.asarray(gray, dtype=np.uint8)


def _predict(args: argparse.Namespace, out: TextIO) -> int:
    model, params, model_state = io.load_model(_model_path(args.model))
    meta = io.load_metadata(_model_path(args.model))
    raw_classes = meta.get("classes")
    classes = [str(c) for c in raw_classes] if isinstance(raw_classes, list) else []
    top = max(1, int(args.top))
    for path in args.inputs:
        images = read_images(path, args.invert)
        probs = predict_proba(model, params, images, model_state=model_state)
        for i, row in enumerate(probs):
            order = np.argsort(-row, kind="stable")[:top]
            names = [classes[k] if k < len(classes) else str(k) for k in order]
            shown = ", ".join(f"{n} {row[k]:.4f}" for n, k in zip(names, order))
            label = f"{path}[{i}]" if len(probs) > 1 else str(path)
            out.write(f"{label}: {shown}\n")
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``fnn`` command; returns the exit status (0 success, 2 usage or data error)."""
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    commands = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return commands[args.command](args, stream)
    except (UsageError, FileNotFoundError, ValueError, TypeError) as err:
        sys.stderr.write(f"fnn {args.command}: error: {err}\n")
        return 2
