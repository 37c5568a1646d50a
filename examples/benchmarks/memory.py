"""Peak memory of ``fnn train`` against the dataset's size plus 100 MB (issue 6).

Runs ``fnn train --dataset fashion-mnist --epochs 1 --quiet --no-plots --out <tmp>``
with the ``fnn`` console script beside this Python (or ``--fnn PATH``), takes the
process's peak RSS from ``os.wait4`` (``ru_maxrss``), and compares it with

* the dataset's size: the decompressed float32 training and test arrays the command
  holds (70,000 x 784 x 4 bytes, plus the int64 labels), plus 100 MB: the target;
* the raw uint8 images and labels plus 100 MB, for comparison;
* the peak RSS of ``python -c "import fnn"``: the interpreter and libraries alone.

Run: ``python examples/benchmarks/memory.py`` (exit status 1 when over the target).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fnn", default=str(Path(sys.executable).parent / "fnn"))
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        command = [args.fnn, "train", "--dataset", "fashion-mnist", "--epochs", str(args.epochs)]
        status, peak = peak_rss([*command, "--quiet", "--no-plots", "--out", tmp])
    if status != 0:
        print(f"fnn train failed with exit status {status}", file=sys.stderr)
        return 2
    _, baseline = peak_rss([sys.executable, "-c", "import fnn"])
    as_float = dataset_bytes(4)
    raw = dataset_bytes(1)
    budget = as_float + 100 * MB
    print(f"command: {' '.join(command)} --quiet --no-plots --out <tmp>")
    print(f"peak RSS of fnn train:                       {peak / MB:7.1f} MB")
    print(f"peak RSS of python -c 'import fnn':          {baseline / MB:7.1f} MB")
    print(f"dataset as float32 (train+test, as held):    {as_float / MB:7.1f} MB")
    print(f"dataset as raw uint8 (train+test):           {raw / MB:7.1f} MB")
    print(f"target: float32 dataset + 100 MB:            {budget / MB:7.1f} MB", end="  ")
    print("PASS" if peak <= budget else "FAIL")
    print(f"for comparison: raw uint8 dataset + 100 MB:  {(raw + 100 * MB) / MB:7.1f} MB", end="  ")
    print("under" if peak <= raw + 100 * MB else "over")
    return 0 if peak <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
