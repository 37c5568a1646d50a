"""Callbacks for :func:`fnn.fit`: functions of an :class:`~fnn.train.Event`, run at the
edge of the pure training core (they may print, log or write files; they never change
the training state).

* :func:`progress_bar` — a bar per epoch with loss, accuracy and samples/s (tqdm when
  it is installed, a plain text bar otherwise);
* :func:`log_epochs` — one line per finished epoch to a logger or any function.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .train import Callback, EpochMetrics, Event


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
    """One line for a finished epoch: ``epoch 3/20 loss 0.3012 acc 0.8912 ... (1.2 s)``."""
    return (
        f"epoch {record.epoch + 1}/{epochs} {_metrics_text(record.loss, record.accuracy)}"
        f"{_validation_text(record)} ({seconds:.2f} s)"
    )


def tqdm_available() -> bool:
    """Whether the optional ``tqdm`` package can be imported."""
    return importlib.util.find_spec("tqdm") is not None


def progress_bar(
    *, stream: TextIO | None = None, use_tqdm: bool | None = None, min_interval: float = 0.1
) -> Callback:
    """A progress bar per epoch showing loss, accuracy and samples/s.

    Args:
        stream: where to draw (default ``sys.stderr``).
        use_tqdm: use tqdm (default: when it is installed) or the plain text bar.
        min_interval: the plain bar redraws at most this often (seconds).
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
            bar.set_postfix_str(
                f"{_metrics_text(m.loss, m.accuracy)}{_validation_text(event.record)}",
                refresh=True,
            )
            bar.close()

    return callback


def log_epochs(write: Callable[[str], None] | None = None) -> Callback:
    """Log one line per finished epoch (default: ``logging.getLogger("fnn").info``)."""
    emit = write or logging.getLogger("fnn").info

    def callback(event: Event) -> None:
        if event.kind == "epoch_end" and event.record is not None:
            emit(describe_epoch(event.record, event.epochs, event.seconds))

    return callback
