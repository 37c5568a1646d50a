"""``fnn evaluate`` and ``fnn predict``: a saved model on test data or on pictures
(private; see :mod:`fnn.cli`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, io, losses, metrics
from .. import random as _random
from ..inference import evaluate, generate, predict_proba
from ._config import UsageError
from ._output import Output, printable
from ._rundir import MODEL_FILE

PREDICT_MAX_BYTES = 2**28
"""The most pixel data ``fnn predict`` reads from one IDX or ``.npy`` file: 256 MiB (over
340,000 images of 28x28), which take 1 GiB as float32; larger files are refused from
their header. ``fnn.data.read_images`` takes a larger ``max_bytes``."""


def _model_path(path: Path) -> Path:
    return path / MODEL_FILE if path.is_dir() else path


def _evaluation_data(args: argparse.Namespace, meta: dict[str, Any]) -> data.Dataset:
    """The dataset ``fnn evaluate`` uses: ``--data``, ``--dataset``, or the model file's."""
    if args.data is not None:
        if args.dataset is not None:
            raise UsageError("give --data or --dataset, not both")
        return data.load_directory(args.data)
    name = args.dataset or meta.get("dataset")
    if args.dataset is None and isinstance(meta.get("data"), str):
        return data.load_directory(meta["data"])
    if not isinstance(name, str):
        raise UsageError("the model file names no dataset: pass --dataset or --data")
    try:
        data.source(name)  # one a module registers says so, and how to import it
    except ValueError as err:
        where = "--dataset" if args.dataset is not None else "the model file's dataset"
        raise UsageError(f"{where}: {err}") from None
    return data.load_dataset(name, data_dir=args.data_dir, download=not args.no_download)


def _text_of(path: Path, meta: dict[str, Any], args: argparse.Namespace) -> data.Text:
    """The text a language model's file was trained on (its metadata names it), read and
    checked to be the same text (its SHA-256) with the same vocabulary.

    Raises:
        UsageError: the file is not a language model's, or the text differs.
    """
    source, chars = meta.get("text"), meta.get("chars")
    if not isinstance(source, str) or not isinstance(chars, str):
        raise UsageError(f"{path} is not a language model's file (no text in its metadata)")
    try:
        text = data.load_text(source, data_dir=args.data_dir, download=not args.no_download)
    except ValueError as err:
        raise UsageError(f"the text of {path}, {source}: {err}") from None
    except FileNotFoundError as err:
        raise UsageError(
            f"the text of {path}, {source}, is not found ({err}); give the directory that "
            "holds it with --data-dir"
        ) from None
    if text.sha256 != meta.get("sha256") or text.chars != chars:
        raise UsageError(
            f"{source} is not the text {path} was trained on (SHA-256 {text.sha256}, the "
            f"model file records {meta.get('sha256')})"
        )
    return text


def _evaluate_text(path: Path, meta: dict[str, Any], args: argparse.Namespace, out: Output) -> int:
    """``fnn evaluate`` of a language model: the loss over the whole validation part of
    its text, in windows of its context."""
    model, params, model_state = io.load_model(path)
    text = _text_of(path, meta, args)
    split = meta.get("validation_split")
    if not isinstance(split, float) or not 0 < split < 1:
        raise UsageError(f"{path} was trained without a validation part: nothing to evaluate")
    context = io.load_in_shape(path)[0]
    _, val_ids = data.split_text(text.ids, 1 - split)
    x, y = data.fixed_windows(val_ids, context)
    result = evaluate(
        model, losses.softmax_cross_entropy, params, x, y, 256, model_state=model_state
    )
    out.write(
        f"validation loss {result.loss:.4f} ({result.loss / math.log(2):.4f} bits per "
        f"character) over {x.size:,} characters in {len(x):,} windows of {context}\n"
    )
    return 0


def evaluate_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn evaluate MODEL``: test accuracy and loss, and a per-class report (a language
    model: its validation loss)."""
    path = _model_path(args.model)
    meta = io.load_metadata(path)
    if "text" in meta:
        if args.data is not None or args.dataset is not None:
            raise UsageError(f"{path} is a language model: it is evaluated on its own text")
        return _evaluate_text(path, meta, args, out)
    model, params, model_state = io.load_model(path)
    dataset = _evaluation_data(args, meta)
    image_shape = tuple(dataset.x_test.shape[1:])
    takes = io.load_in_shape(path)
    if takes != image_shape:
        raise UsageError(f"{path} takes images of shape {takes}, the dataset's are {image_shape}")
    outputs = model.output_shape(image_shape)[-1]
    if outputs != dataset.num_classes:
        raise UsageError(f"{path} has {outputs} outputs, the dataset {dataset.num_classes} classes")
    x_test = data.as_float_images(dataset.x_test)
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


def predict_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn predict MODEL INPUTS...``: the top classes of each image."""
    if args.top < 1:
        raise UsageError(f"--top must be an integer >= 1, got {args.top}")
    path = _model_path(args.model)
    meta = io.load_metadata(path)
    if "text" in meta:
        raise UsageError(
            f"{path} is a language model: it reads text, not pictures (fnn generate, fnn evaluate)"
        )
    model, params, model_state = io.load_model(path)
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


def generate_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn generate MODEL``: text from a language model, continuing ``--prompt``."""
    path = _model_path(args.model)
    meta = io.load_metadata(path)
    chars = meta.get("chars")
    if not isinstance(chars, str) or not chars:
        raise UsageError(f"{path} is not a language model's file (no vocabulary in its metadata)")
    model, params, model_state = io.load_model(path)
    in_shape = io.load_in_shape(path)
    prompt = args.prompt if args.prompt else chars[0]
    unknown = [c for c in prompt if c not in chars]
    if unknown:
        raise UsageError(f"--prompt: the model has no character {unknown[0]!r} in its vocabulary")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k must be an integer >= 1, got {args.top_k}")
    lookup = {c: i for i, c in enumerate(chars)}
    try:
        ids = generate(
            model,
            params,
            np.array([lookup[c] for c in prompt], np.int64),
            args.length,
            key=_random.key(args.seed),
            context=_longest(model, in_shape),
            temperature=args.temperature,
            top_k=args.top_k,
            model_state=model_state,
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    out.write(args.prompt + "".join(chars[i] for i in ids) + "\n")
    return 0


def _longest(model: Any, in_shape: tuple[int, ...]) -> int | None:
    """The longest sequence a model saved for ``in_shape`` takes: its length when a longer
    one is refused (a GPT's positions), None when any length is taken (a recurrent
    model)."""
    try:
        model.output_shape((2 * in_shape[0], *in_shape[1:]))
    except ValueError:
        return in_shape[0]
    return None


__all__ = ["PREDICT_MAX_BYTES", "evaluate_command", "generate_command", "predict_command"]
