"""Callbacks for :func:`fnn.fit`: functions of an :class:`~fnn.train.Event`, run at the
edge of the pure training core (they may print, log or write files; they never change
the training state).

* :func:`progress_bar` — a bar per epoch with loss, accuracy and samples/s (tqdm when
  it is installed, a plain text bar otherwise);
* :func:`log_epochs` — one line per finished epoch to a logger or any function;
* :class:`EpochTimes` — each epoch's wall time (kept out of the pure training state);
* :class:`StepLosses` — the mean training loss of every ``every`` updates;
* :func:`checkpoint` — the whole training state after every epoch (``last.npz``) and the
  best ``keep_best`` epochs by a monitored metric, written atomically.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import _checks
from . import io as _io
from . import tree as _tree
from .train import Callback, EpochMetrics, Event

__all__ = [
    "LAST",
    "EpochTimes",
    "Fingerprints",
    "StepLosses",
    "checkpoint",
    "describe_epoch",
    "history_table",
    "log_epochs",
    "progress_bar",
    "tqdm_available",
]


def _metrics_text(loss: float, accuracy: float) -> str:
    text = f"loss {loss:.4f}"
    if not math.isnan(accuracy):
        text += f" acc {accuracy:.4f}"
    return text


def _validation_text(record: EpochMetrics) -> str:
    if math.isnan(record.val_loss):
        return ""
    text = f" val_loss {record.val_loss:.4f}"
    if not math.isnan(record.val_accuracy):
        text += f" val_acc {record.val_accuracy:.4f}"
    return text


def describe_epoch(record: EpochMetrics, epochs: int, seconds: float) -> str:
    """One line for a finished epoch: ``epoch 3/20 loss 0.3012 acc 0.8912 ... (1.23 s)``.

    Args:
        record: the epoch's metrics (``epoch`` 0-based; NaN accuracy or validation
            values are left out).
        epochs: the run's number of epochs.
        seconds: the epoch's wall time.

    Returns:
        The line, without a newline: what :func:`log_epochs` writes.

    >>> import fnn
    >>> describe_epoch(fnn.EpochMetrics(2, 0.30123, 0.8912), 20, 1.234)
    'epoch 3/20 loss 0.3012 acc 0.8912 (1.23 s)'
    >>> describe_epoch(fnn.EpochMetrics(2, 0.30123, float("nan"), 0.35, 0.87), 20, 1.234)
    'epoch 3/20 loss 0.3012 val_loss 0.3500 val_acc 0.8700 (1.23 s)'
    """
    return (
        f"epoch {record.epoch + 1}/{epochs} {_metrics_text(record.loss, record.accuracy)}"
        f"{_validation_text(record)} ({seconds:.2f} s)"
    )


def history_table(
    records: Sequence[EpochMetrics],
    seconds: Mapping[int, float] | None = None,
    *,
    steps: tuple[int, int] | None = None,
) -> str:
    """A plain-text table of a run's history, one row per epoch (``-`` where there is no
    validation, and for epochs without a recorded time); without the accuracy columns
    when no record counted accuracy (a language model's).

    Args:
        records: the epochs' metrics, e.g. ``state.history``.
        seconds: wall times by 0-based epoch, e.g. :attr:`EpochTimes.seconds`.
        steps: ``(eval_every, total)`` for a run of :func:`fnn.fit_steps`: each record is
            an interval, shown by the update it ends at.

    Returns:
        The table, lines joined by ``"\\n"`` (no final newline).

    >>> import fnn
    >>> records = [fnn.EpochMetrics(0, 0.5, 0.8), fnn.EpochMetrics(1, 0.25, 0.9, 0.3, 0.875)]
    >>> print(history_table(records, {1: 1.5}))
    epoch    loss  accuracy  val_loss  val_accuracy   seconds
        1  0.5000    0.8000          -             -         -
        2  0.2500    0.9000     0.3000        0.8750      1.50
    >>> nan = float("nan")
    >>> print(history_table([fnn.EpochMetrics(0, 2.5, nan, 2.25, nan)], steps=(500, 2000)))
     step    loss  val_loss   seconds
      500  2.5000    2.2500         -
    """
    times = seconds or {}
    counted = any(not (math.isnan(r.accuracy) and math.isnan(r.val_accuracy)) for r in records)
    head = "epoch" if steps is None else " step"
    lines = [f"{head}    loss  accuracy  val_loss  val_accuracy   seconds"]
    if not counted:
        lines = [f"{head}    loss  val_loss   seconds"]
    for r in records:
        at = r.epoch + 1 if steps is None else min((r.epoch + 1) * steps[0], steps[1])
        loss = f"{at:5d}  {r.loss:6.4f}  " + (f"{r.accuracy:8.4f}  " if counted else "")
        if math.isnan(r.val_loss):
            val = f"{'-':>8}" + (f"  {'-':>12}" if counted else "")
        else:
            val = f"{r.val_loss:8.4f}" + (f"  {r.val_accuracy:12.4f}" if counted else "")
        took = f"{times[r.epoch]:8.2f}" if r.epoch in times else f"{'-':>8}"
        lines.append(f"{loss} {val}  {took}")
    return "\n".join(lines)


def tqdm_available() -> bool:
    """Whether the optional ``tqdm`` package can be imported (what :func:`progress_bar`
    uses by default); it is looked up, not imported.

    >>> isinstance(tqdm_available(), bool)
    True
    """
    return importlib.util.find_spec("tqdm") is not None


def progress_bar(
    *, stream: TextIO | None = None, use_tqdm: bool | None = None, min_interval: float = 0.1
) -> Callback:
    """A progress bar per epoch showing loss, accuracy and samples/s.

    Args:
        stream: where to draw (default ``sys.stderr``).
        use_tqdm: use tqdm (default: when it is installed) or the plain text bar.
        min_interval: the plain bar redraws at most this often (seconds).

    Returns:
        A callback for :func:`fnn.fit`: it draws at ``batch_end`` and ends the line at
        ``epoch_end`` with the validation metrics and the epoch's seconds.

    >>> import fnn, io, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> out = io.StringIO()
    >>> bar = progress_bar(stream=out, use_tqdm=False)
    >>> _ = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x, y,
    ...             key=fnn.random.key(0), epochs=2, callbacks=[bar])
    >>> out.getvalue().count("\\n"), out.getvalue().split("\\r")[-1].split(" loss")[0]
    (2, 'epoch 2/2 [========================] 1/1')
    """
    out = stream
    if use_tqdm is None:
        use_tqdm = tqdm_available()
    if use_tqdm:
        return _tqdm_bar(out)
    return _plain_bar(out, min_interval)


def _plain_bar(stream: TextIO | None, min_interval: float) -> Callback:
    last_draw = [0.0]

    def draw(event: Event, final: str = "") -> None:
        out = stream or sys.stderr
        width = 24
        filled = width * event.batch // max(event.batches, 1)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        m = event.state.metrics
        rate = event.samples_per_second
        speed = f" {rate:,.0f} samples/s" if not math.isnan(rate) else ""
        line = (
            f"\repoch {event.epoch + 1}/{event.epochs} [{bar[:width]}] "
            f"{event.batch}/{event.batches} {_metrics_text(m.loss, m.accuracy)}{speed}{final}"
        )
        out.write(line)
        out.flush()

    def callback(event: Event) -> None:
        if event.kind == "batch_end":
            now = time.perf_counter()
            if now - last_draw[0] >= min_interval or event.batch == event.batches:
                last_draw[0] = now
                draw(event)
        elif event.kind == "epoch_end" and event.record is not None:
            draw(event, f"{_validation_text(event.record)} ({event.seconds:.2f} s)\n")

    return callback


def _tqdm_bar(stream: TextIO | None) -> Callback:
    from tqdm import tqdm

    bars: list[tqdm] = []

    def callback(event: Event) -> None:
        if event.kind == "epoch_begin":
            bars[:] = [
                tqdm(
                    total=event.batches,
                    desc=f"epoch {event.epoch + 1}/{event.epochs}",
                    unit="batch",
                    file=stream or sys.stderr,
                    leave=True,
                    mininterval=0.1,
                    dynamic_ncols=True,
                )
            ]
        elif event.kind == "batch_end" and bars:
            bar = bars[0]
            bar.update(event.batch - bar.n)
            m = event.state.metrics
            rate = event.samples_per_second
            bar.set_postfix_str(
                f"{_metrics_text(m.loss, m.accuracy)} {rate:,.0f} samples/s", refresh=False
            )
        elif event.kind == "epoch_end" and bars and event.record is not None:
            bar = bars.pop()
            m = event.state.metrics
            rate = event.samples_per_second
            speed = f" {rate:,.0f} samples/s" if not math.isnan(rate) else ""
            bar.set_postfix_str(
                f"{_metrics_text(m.loss, m.accuracy)}{speed}{_validation_text(event.record)}",
                refresh=True,
            )
            bar.close()

    return callback


class Fingerprints:
    """A callback that records the params' SHA-256 fingerprint (:func:`fnn.tree.fingerprint`)
    after each finished epoch (each validation interval of :func:`fnn.fit_steps`): where two
    runs that should be bit-identical part, epoch by epoch (``fnn replay`` compares them).

    Attributes:
        sha256: a dict from 0-based epoch numbers to the hex digest of the params at that
            epoch's end, filled at each ``epoch_end``.

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> prints = Fingerprints()
    >>> final = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1),
    ...                 x, y, key=fnn.random.key(0), epochs=2, callbacks=[prints])
    >>> sorted(prints.sha256), prints.sha256[1] == fnn.tree.fingerprint(final.params)
    ([0, 1], True)
    """

    def __init__(self) -> None:
        self.sha256: dict[int, str] = {}

    def __call__(self, event: Event) -> None:
        if event.kind == "epoch_end":
            self.sha256[event.epoch] = _tree.fingerprint(event.state.params)


class EpochTimes:
    """A callback that records each finished epoch's wall time, in seconds.

    ``times.seconds`` maps epoch numbers to seconds; ``times.mean`` is their mean.
    Timing is kept here, apart from the training state, so states stay bit-identical
    across runs.

    Attributes:
        seconds: a dict from 0-based epoch numbers to their wall time (float seconds),
            filled at each ``epoch_end``.

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> times = EpochTimes()
    >>> _ = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x, y,
    ...             key=fnn.random.key(0), epochs=2, callbacks=[times])
    >>> sorted(times.seconds), times.mean >= 0.0
    ([0, 1], True)
    """

    def __init__(self) -> None:
        self.seconds: dict[int, float] = {}

    def __call__(self, event: Event) -> None:
        if event.kind == "epoch_end":
            self.seconds[event.epoch] = event.seconds

    @property
    def mean(self) -> float:
        """The mean seconds per recorded epoch (NaN before the first)."""
        values = list(self.seconds.values())
        return sum(values) / len(values) if values else math.nan


class StepLosses:
    """A callback that records the mean training loss of every ``every`` updates: at each
    update whose number (``state.step``, counted over the whole run) is a multiple of
    ``every``, the mean loss of the batches since the previous record or since the epoch
    began, whichever is later (from the running sums of the state's metrics, so the
    values depend only on the run, not on when it was stopped and resumed).

    Attributes:
        every: updates between records (an int >= 1).
        losses: a dict from update numbers (1-based) to the mean loss, a float (the
            objective :func:`fnn.fit` minimizes: penalty included).

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> steps = StepLosses(2)
    >>> _ = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x, y,
    ...             key=fnn.random.key(0), epochs=2, batch_size=1, callbacks=[steps])
    >>> sorted(steps.losses)
    [2, 4, 6, 8]

    Args:
        every: updates between records.
        losses: records of an earlier part of the run (a resumed run's), kept.

    Raises:
        ValueError, TypeError: ``every`` is not an int >= 1.
    """

    def __init__(self, every: int, losses: Mapping[int, float] | None = None) -> None:
        self.every = _checks.positive_int(every, "every")
        self.losses: dict[int, float] = dict(losses or {})
        self._since = (0.0, 0)  # the running sums (loss_sum, count) at the last record

    def __call__(self, event: Event) -> None:
        metrics = event.state.metrics
        if event.kind == "epoch_begin":
            self._since = (0.0, 0)
        elif event.kind == "batch_end" and event.state.step % self.every == 0:
            loss_sum, count = self._since
            if metrics.count > count:
                self.losses[event.state.step] = (metrics.loss_sum - loss_sum) / (
                    metrics.count - count
                )
            self._since = (metrics.loss_sum, metrics.count)


def log_epochs(write: Callable[[str], None] | None = None) -> Callback:
    """Log one line per finished epoch (default: ``logging.getLogger("fnn").info``).

    Args:
        write: what each line (:func:`describe_epoch`, no newline) is given to.

    Returns:
        A callback for :func:`fnn.fit` that writes at each ``epoch_end``.

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> lines = []
    >>> _ = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x, y,
    ...             key=fnn.random.key(0), epochs=2, callbacks=[log_epochs(lines.append)])
    >>> [line.split(" (")[0] for line in lines]  # without the seconds
    ['epoch 1/2 loss 1.1813 acc 0.2500', 'epoch 2/2 loss 1.1637 acc 0.5000']
    """
    emit = write or logging.getLogger("fnn").info

    def callback(event: Event) -> None:
        if event.kind == "epoch_end" and event.record is not None:
            emit(describe_epoch(event.record, event.epochs, event.seconds))

    return callback


LAST = "last.npz"
"""The file name of the latest checkpoint in a checkpoint directory."""

_BEST = re.compile(r"^best-epoch(\d{4,})\.npz$")


def checkpoint(
    directory: str | os.PathLike[str],
    *,
    keep_best: int = 0,
    monitor: str = "val_loss",
    metadata: Mapping[str, Any] | Callable[[Event], Mapping[str, Any]] | None = None,
) -> Callback:
    """Save the whole training state at the end of every epoch.

    ``directory/last.npz`` always holds the latest state (each save replaces it
    atomically: a crash mid-save leaves the previous one intact). With ``keep_best=N``,
    the N best epochs by ``monitor`` (losses lower, accuracies higher; ``val_*`` falls
    back to the training metric without validation data) are kept as
    ``best-epoch0007.npz`` and so on, and worse ones are deleted. The callback keeps no
    memory between calls: it reads the scores back from the files' metadata, so it works
    the same after a resume.

    ``metadata`` (JSON data, see :func:`fnn.io.save`) is stored in every file beside the
    callback's own ``epoch``, ``monitor`` and ``value`` (None where the monitored metric
    was not measured, NaN: an accuracy without class labels): the run a checkpoint belongs to
    (``fnn train`` stores its run id and configuration, and ``--resume`` refuses a
    checkpoint of another run). It may be a function of the ``epoch_end`` event, called
    at each save, for what changes from epoch to epoch and must stay with the state it
    describes (``fnn train`` keeps its per-epoch fingerprints and times so, and finds them
    on resume even after a kill).

    Resume with ``fnn.fit(..., state=fnn.load(directory / "last.npz"))``.

    Args:
        directory: where the files go (made, parents included, at the first save).
        keep_best: how many best epochs to keep beside ``last.npz`` (0: none).
        monitor: ``"val_loss"``, ``"loss"``, ``"val_accuracy"`` or ``"accuracy"``.
        metadata: JSON data stored in every file, or a function giving it from the event.

    Returns:
        A callback for :func:`fnn.fit` that saves at each ``epoch_end``.

    Raises:
        ValueError: ``metadata`` sets ``epoch``, ``monitor`` or ``value`` (a function's
            result: at the save); an unknown
            ``monitor``; a negative ``keep_best``.
        TypeError: ``keep_best`` is not an int.

    >>> import fnn, os, tempfile, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save = checkpoint(tmp, keep_best=1, monitor="loss")
    ...     _ = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1),
    ...                 x, y, key=fnn.random.key(0), epochs=3, callbacks=[save])
    ...     sorted(os.listdir(tmp)), fnn.load(os.path.join(tmp, LAST)).epoch
    (['best-epoch0002.npz', 'last.npz'], 3)
    """
    root = Path(directory)

    def checked(found: Mapping[str, Any]) -> dict[str, Any]:
        clash = sorted({"epoch", "monitor", "value"} & set(found))
        if clash:
            raise ValueError(f"checkpoint metadata must not set the callback's own keys {clash}")
        return dict(found)

    fixed = None if callable(metadata) else checked(metadata or {})  # a function's: each save
    if keep_best:
        _checks.positive_int(keep_best, "keep_best")
    EpochMetrics(0, 0.0, 0.0).get(monitor)  # validates the name
    lower_is_better = monitor.endswith("loss")

    def score(record: EpochMetrics) -> float:
        value = record.get(monitor)
        if math.isnan(value) and monitor.startswith("val_"):
            value = record.get(monitor[4:])
        return value

    def callback(event: Event) -> None:
        if event.kind != "epoch_end" or event.record is None:
            return
        root.mkdir(parents=True, exist_ok=True)
        value = score(event.record)
        extra = checked(metadata(event)) if callable(metadata) else fixed
        recorded = value if math.isfinite(value) else None  # JSON has no NaN or inf
        meta = {**(extra or {}), "epoch": event.record.epoch, "monitor": monitor, "value": recorded}
        _io.save(root / LAST, event.state, metadata=meta)
        if not keep_best or not math.isfinite(value):
            return
        new = root / f"best-epoch{event.record.epoch:04d}.npz"
        kept: list[tuple[float, Path]] = [(value, new)]
        for path in root.iterdir():
            if _BEST.match(path.name) and path != new:
                with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
                    kept.append((float(_io.load_metadata(path)["value"]), path))
        kept.sort(key=lambda item: item[0] if lower_is_better else -item[0])
        if any(path == new for _, path in kept[:keep_best]):
            _io.save(new, event.state, metadata=meta)
        for _, path in kept[keep_best:]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    return callback
