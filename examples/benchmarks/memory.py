"""Peak memory of ``fnn train`` against the dataset's size plus a margin (issue 6).

Runs ``fnn train --dataset fashion-mnist --epochs 1 --quiet --no-plots --out <tmp>``
(with ``--model cnn`` after it for ``--model cnn``) with the ``fnn`` console script beside
this Python (or ``--fnn PATH``), takes the process's peak RSS from ``os.wait4``
(``ru_maxrss``), and compares it with

* the dataset's size: the decompressed float32 training and test arrays the command
  holds (70,000 x 784 x 4 bytes, plus the int64 labels), plus the model's margin: 100 MB
  for the MLP, 500 MB for the CNN (whose activations, patch buffers and their gradients
  for a batch and for evaluation take hundreds of MB): the target;
* the raw uint8 images and labels plus the same margin, for comparison;
* the peak RSS of ``python -c "import fnn"``: the interpreter and libraries alone.

``--model gpt`` measures the language model instead (issue 23): ``fnn train --model gpt``,
nanoGPT's CPU recipe on Tiny Shakespeare (2,000 steps by default; ``--data-dir`` where
``tinyshakespeare.txt`` is), against a flat target of 400 MB.

Run: ``python examples/benchmarks/memory.py`` (the MLP), ``python
examples/benchmarks/memory.py --model cnn`` or ``... --model gpt --data-dir ../shared/data``;
exit status 1 when over the target, 2 when ``fnn train`` failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MB = 10**6
TRAIN, TEST, PIXELS = 60_000, 10_000, 28 * 28

MARGINS = {"mlp": 100 * MB, "cnn": 500 * MB}
"""What each model may take beyond the float32 dataset: the target is dataset + margin."""

GPT_TARGET = 400 * MB
"""The peak RSS the language model's whole run may take (its text is 1.1 MB)."""


def peak_rss(command: list[str]) -> tuple[int, int]:
    """Run ``command``; return its exit status and its peak RSS in bytes."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024


def dataset_bytes(itemsize: int) -> int:
    """Images of ``itemsize`` bytes a pixel plus int64 labels (uint8 labels in the raw
    files: use ``itemsize == 1`` for them)."""
    label_size = 8 if itemsize > 1 else 1
    return (TRAIN + TEST) * (PIXELS * itemsize + label_size)


def train_command(fnn: str, epochs: int, model: str = "mlp") -> list[str]:
    """The ``fnn train`` command measured (without its output options)."""
    command = [fnn, "train", "--dataset", "fashion-mnist", "--epochs", str(epochs)]
    return command if model == "mlp" else [*command, "--model", model]


def gpt_command(fnn: str, steps: int, data_dir: str | None) -> list[str]:
    """The ``fnn train --model gpt`` command measured (without its output options)."""
    command = [fnn, "train", "--model", "gpt", "--steps", str(steps)]
    return command if data_dir is None else [*command, "--data-dir", data_dir]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fnn", default=str(Path(sys.executable).parent / "fnn"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--model",
        choices=[*sorted(MARGINS), "gpt"],
        default="mlp",
        help="mlp (target: dataset + 100 MB), cnn (dataset + 500 MB) or gpt (400 MB)",
    )
    parser.add_argument("--steps", type=int, default=2000, help="the GPT's steps")
    parser.add_argument("--data-dir", help="where tinyshakespeare.txt is, for the GPT")
    return parser.parse_args(argv)


def train_peaks(command: list[str]) -> tuple[int, int] | None:
    """The peak RSS (bytes) of ``command`` (an ``fnn train`` run, quiet, into a temporary
    directory) and of ``python -c 'import fnn'``; None, said on stderr, when the run
    failed."""
    with tempfile.TemporaryDirectory() as tmp:
        status, peak = peak_rss([*command, "--quiet", "--no-plots", "--out", tmp])
    if status != 0:
        print(f"fnn train failed with exit status {status}", file=sys.stderr)
        return None
    _, baseline = peak_rss([sys.executable, "-c", "import fnn"])
    return peak, baseline


def gpt_main(args: argparse.Namespace) -> int:
    """The language model's peak RSS against :data:`GPT_TARGET`."""
    command = gpt_command(args.fnn, args.steps, args.data_dir)
    peaks = train_peaks(command)
    if peaks is None:
        return 2
    peak, baseline = peaks
    print(f"command: {' '.join(command)} --quiet --no-plots --out <tmp>")
    print(f"peak RSS of fnn train:                       {peak / MB:7.1f} MB")
    print(f"peak RSS of python -c 'import fnn':          {baseline / MB:7.1f} MB")
    print(f"target:                                      {GPT_TARGET / MB:7.1f} MB", end="  ")
    print("PASS" if peak <= GPT_TARGET else "FAIL")
    return 0 if peak <= GPT_TARGET else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model == "gpt":
        return gpt_main(args)
    command = train_command(args.fnn, args.epochs, args.model)
    peaks = train_peaks(command)
    if peaks is None:
        return 2
    peak, baseline = peaks
    as_float = dataset_bytes(4)
    raw = dataset_bytes(1)
    margin = MARGINS[args.model]
    budget = as_float + margin
    plus = f"+ {margin // MB} MB:"
    print(f"command: {' '.join(command)} --quiet --no-plots --out <tmp>")
    print(f"peak RSS of fnn train:                       {peak / MB:7.1f} MB")
    print(f"peak RSS of python -c 'import fnn':          {baseline / MB:7.1f} MB")
    print(f"dataset as float32 (train+test, as held):    {as_float / MB:7.1f} MB")
    print(f"dataset as raw uint8 (train+test):           {raw / MB:7.1f} MB")
    print(f"{'target: float32 dataset ' + plus:<45}{budget / MB:7.1f} MB", end="  ")
    print("PASS" if peak <= budget else "FAIL")
    print(
        f"{'for comparison: raw uint8 dataset ' + plus:<45}{(raw + margin) / MB:7.1f} MB", end="  "
    )
    print("under" if peak <= raw + margin else "over")
    return 0 if peak <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
