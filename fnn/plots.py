"""PNG plots of training curves and confusion matrices (needs the optional matplotlib).

Install it with ``pip install 'fnn[plot]'``. Without it, the functions here raise
:class:`PlottingUnavailableError` (an ``ImportError``) whose message says how to get it; the
``fnn`` command catches that, prints the message and carries on.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import write_bytes_atomic
from ._types import Array
from .train import EpochMetrics

__all__ = ["PlottingUnavailableError", "bands", "compare", "confusion_matrix", "dots", "history"]


class PlottingUnavailableError(ImportError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlottingUnavailableError(
            "matplotlib is not installed, so no PNG plots were drawn; "
            "install it with: pip install 'fnn[plot]'"
        ) from None
    return plt


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return write_bytes_atomic(path, buffer.getvalue())


def history(
    records: Sequence[EpochMetrics], path: str | os.PathLike[str], *, updates: int | None = None
) -> Path:
    """Plot loss (and accuracy, where any was counted) per epoch, train and, when
    present, validation, to a PNG. With ``updates``, each record is an interval of that
    many updates (:func:`fnn.fit_steps`) and the x axis counts updates.

    Returns:
        The path written.
    """
    if not records:
        raise ValueError("history needs at least one epoch record")
    plt = _pyplot()
    x = [(r.epoch + 1) * (updates or 1) for r in records]
    names = ["loss"]
    if not all(math.isnan(r.get(n)) for r in records for n in ("accuracy", "val_accuracy")):
        names.append("accuracy")
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    try:
        for ax, name in zip(axes[0], names):
            ax.plot(x, [r.get(name) for r in records], "o-", label=f"train {name}")
            val = [r.get("val_" + name) for r in records]
            if not all(math.isnan(v) for v in val):
                ax.plot(x, val, "s--", label=f"validation {name}")
            ax.set_xlabel("update" if updates else "epoch")
            ax.set_ylabel(name)
            ax.set_title(f"{name} per {'interval' if updates else 'epoch'}")
            ax.grid(alpha=0.3)
            ax.legend()
        return _save(figure, path)
    finally:
        plt.close(figure)


def compare(
    histories: Mapping[str, Sequence[EpochMetrics]],
    path: str | os.PathLike[str],
    *,
    metric: str = "loss",
    title: str | None = None,
    log_scale: bool | None = None,
) -> Path:
    """Plot one metric per epoch for several runs (optimizers, activations, ...) to a PNG:
    the training metric solid, the validation metric (when recorded) dashed.

    ``log_scale`` defaults to true for losses.

    Returns:
        The path written.
    """
    if not histories or not all(histories.values()):
        raise ValueError("compare needs at least one run, each with at least one epoch")
    EpochMetrics(0, 0.0, 0.0).get(metric)  # validates the name
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.5))
    try:
        validation = False
        for name, records in histories.items():
            epochs = [r.epoch + 1 for r in records]
            (line,) = ax.plot(epochs, [r.get(metric) for r in records], "o-", label=name)
            val = [r.get("val_" + metric) for r in records]
            if not all(math.isnan(v) for v in val):  # as history draws it: NaN left out
                ax.plot(epochs, val, "s--", color=line.get_color())
                validation = True
        what = f"{metric} (solid: train, dashed: validation)" if validation else metric
        log = log_scale if log_scale is not None else metric == "loss"
        _per_epoch(ax, what, title or f"{metric} per epoch", log)
        return _save(figure, path)
    finally:
        plt.close(figure)


def _per_epoch(ax: Any, ylabel: str, title: str, log_scale: bool) -> None:
    """Label an axes of values per epoch: whole epochs on x, a grid, the legend."""
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if log_scale:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()


def bands(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str | None = None,
    log_scale: bool = False,
) -> Path:
    """Plot per label the mean over seeds of a curve per epoch, with a band of one
    standard deviation (``ddof=1``) either side, to a PNG. A label's curves are cut to
    the shortest of them (a run stopped early); NaN values are left out of the mean.

    Args:
        curves: ``{label: [one seed's values per epoch, ...]}``.
        path: the PNG to write.
        ylabel: what the values are.
        title: the plot's title (default: ``ylabel`` per epoch).
        log_scale: a logarithmic y axis.

    Returns:
        The path written.

    Raises:
        ValueError: no labels, or a label without a curve of at least one value.
    """
    if not curves or not all(c and min(len(v) for v in c) for c in curves.values()):
        raise ValueError("bands needs at least one label, each with curves of 1 or more values")
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for label, runs in curves.items():
            length = min(len(v) for v in runs)
            values = np.array([list(v)[:length] for v in runs], dtype=np.float64)
            epochs = np.arange(1, length + 1)
            mean, std = _mean_and_std(values)
            (line,) = ax.plot(epochs, mean, "o-", label=f"{label} ({len(runs)} seeds)")
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        _per_epoch(ax, ylabel, title or f"{ylabel} per epoch", log_scale)
        return _save(figure, path)
    finally:
        plt.close(figure)


def _mean_and_std(values: Array) -> tuple[Array, Array]:
    """Column means and sample standard deviations (``ddof=1``) of ``values``, NaN
    entries left out: NaN for a column without values, 0 for a column of one."""
    kept = ~np.isnan(values)
    count = kept.sum(axis=0)
    filled = np.where(kept, values, 0.0)
    mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
    squares = np.where(kept, (values - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(squares / np.maximum(count - 1, 1))
    return mean, np.where(count > 0, std, np.nan)


def dots(
    values: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str | None = None,
) -> Path:
    """Plot per label each seed's value as a dot and their mean ± standard deviation
    (``ddof=1``, NaN values left out; no bar for a single value) as a bar, to a PNG (a
    final accuracy per setting, say).

    Returns:
        The path written.

    Raises:
        ValueError: no labels, or a label without values.
    """
    if not values or not all(len(v) for v in values.values()):
        raise ValueError("dots needs at least one label, each with at least one value")
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(values) + 2), 4.5))
    try:
        for i, found in enumerate(values.values()):
            ys = np.asarray(found, dtype=np.float64)
            jitter = np.linspace(-0.12, 0.12, len(ys)) if len(ys) > 1 else np.zeros(1)
            ax.plot(i + jitter, ys, "o", alpha=0.6, color=f"C{i % 10}")
            mean, std = _mean_and_std(ys[:, None])  # NaN left out, as in bands
            ax.errorbar([i + 0.3], mean, yerr=std, fmt="_", color="black", capsize=4)
        ax.set_xticks(range(len(values)), list(values), rotation=20, ha="right")
        ax.set(ylabel=ylabel, title=title or f"{ylabel}: seeds (dots), mean ± std (bars)")
        ax.grid(alpha=0.3, axis="y")
        return _save(figure, path)
    finally:
        plt.close(figure)


def confusion_matrix(
    matrix: Array, path: str | os.PathLike[str], class_names: Sequence[str] | None = None
) -> Path:
    """Plot a confusion matrix (rows: true classes, columns: predictions) to a PNG: counts
    (integers) are written as such, other values (a row-normalised matrix) with two
    decimals, and NaN (a class without examples) as ``nan``.

    Returns:
        The path written.
    """
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"expected a square confusion matrix, got {getattr(matrix, 'shape', None)}"
        )
    n = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"expected {n} class names, got {len(names)}")
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.65 * n))
    try:
        image = ax.imshow(matrix, cmap="Blues")
        figure.colorbar(image, ax=ax)
        ax.set_xticks(range(n), names, rotation=45, ha="right")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        finite = matrix[np.isfinite(matrix)] if matrix.size else matrix
        threshold = finite.max() / 2 if finite.size else 0
        whole = bool(np.all(np.isfinite(matrix) & (np.asarray(matrix) % 1 == 0)))
        for i in range(n):
            for j in range(n):
                value = matrix[i, j]
                color = "white" if value > threshold else "black"
                if not np.isfinite(value):
                    label = "nan" if np.isnan(value) else str(value)
                else:
                    label = str(int(value)) if whole else f"{float(value):.2f}"
                ax.text(j, i, label, ha="center", va="center", color=color)
        ax.set_title("confusion matrix")
        return _save(figure, path)
    finally:
        plt.close(figure)
