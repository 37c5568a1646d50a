"""What the example scripts share: their command line, the data, the end of a run (model
file, history table, test line), epoch timing and tables.

Every example takes ``--dataset {fashion-mnist,mnist}``, ``--data-dir``, ``--epochs``,
``--out``, ``--limit N`` (only the first N train and test examples, for a quick run) and
``--seed``. The data comes from :func:`fnn.data.load_dataset`, which finds (or
downloads) the four IDX files and verifies them; images become float32 in [0, 1].
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

import fnn
from fnn import data, plots

Array = np.ndarray[Any, Any]


def count(least: int) -> Callable[[str], int]:
    """An argparse type: an int of at least ``least`` (else a one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {value}")
        return value

    return parse


def make_out(out: Path) -> None:
    """Create the ``--out`` directory, or end with a one-line message saying why not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"--out {out}: {err.strerror or err}") from None


def parser(description: str | None, *, epochs: int, out: str) -> argparse.ArgumentParser:
    """The options every example takes; ``out`` names its directory under runs/examples."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="fashion-mnist")
    p.add_argument("--data-dir", type=Path, help="a directory holding the four IDX files")
    p.add_argument("--epochs", type=count(1), default=epochs, help=f"default {epochs}")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / out, help="output dir")
    p.add_argument(
        "--limit", type=count(20), help="use only the first N (>= 20) train and test examples"
    )
    p.add_argument("--seed", type=count(0), default=0)
    return p


@attrs.frozen(eq=False)
class Data:
    """Train and test images ``(n, 28, 28)`` float32 in [0, 1], int64 labels ``(n,)``."""

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array
    classes: list[str]


def setup(args: argparse.Namespace) -> Data:
    """Load ``--dataset`` (cut to ``--limit`` examples); create the ``--out`` directory."""
    try:
        ds = data.load_dataset(args.dataset, data_dir=args.data_dir)
    except FileNotFoundError as err:  # no copy found and no download: say where to look
        raise SystemExit(f"{err}\n(pass the directory with --data-dir)") from None
    make_out(args.out)
    n = args.limit
    print(f"{args.dataset}: {len(ds.x_train[:n])} train, {len(ds.x_test[:n])} test images")
    return Data(
        data.to_float(ds.x_train[:n]),
        ds.y_train[:n],
        data.to_float(ds.x_test[:n]),
        ds.y_test[:n],
        list(data.source(args.dataset).info.classes),  # type: ignore[union-attr]
    )


def report(
    args: argparse.Namespace,
    ds: Data,
    model: fnn.nn.Layer[Any, Any],
    state: fnn.TrainState[Any, Any],
    test: fnn.Evaluation,
    timer: fnn.callbacks.EpochTimes,
) -> dict[str, Any]:
    """The end of an example's run: save ``model`` with the trained params (and model
    state) to ``--out``/model.npz, print the history table and the test line.

    Returns:
        ``test_accuracy``, ``history``, ``epoch_seconds`` (the mean) and ``model`` (the
        file's path), what the examples' ``main`` returns to their tests.
    """
    path = fnn.io.save_model(
        args.out / "model.npz",
        model,
        state.params,
        in_shape=ds.x_train.shape[1:],
        model_state=state.model_state,
        metadata={"dataset": args.dataset, "classes": ds.classes},
    )
    print(fnn.callbacks.history_table(state.history, timer.seconds))
    print(f"test accuracy {test.accuracy:.4f}  test loss {test.loss:.4f}  wrote {path}")
    return {
        "test_accuracy": test.accuracy,
        "history": state.history,
        "epoch_seconds": timer.mean,
        "model": path,
    }


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; floats are printed with 4 decimals."""
    cells = [list(header)] + [
        [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)


def plot(draw: Callable[[], Path]) -> Path | None:
    """Run a plotting call; without matplotlib print a note and return None."""
    try:
        path = draw()
    except plots.PlottingUnavailableError as err:
        print(f"note: {err}")
        return None
    print(f"wrote {path}")
    return path
