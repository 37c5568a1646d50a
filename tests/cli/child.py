"""``fnn ARGS...`` in a process of its own, as a user runs it, on test_cli's synthetic
stand-in for the named datasets, with a fault to inject (what the tests in this package
run with ``subprocess``):

    python tests/cli/child.py [--kill-at N --kill-when before|after] [--hold SECONDS]
                              [--count-writes FILE] -- ARGS...

``--kill-at N`` SIGKILLs the process at its N-th atomic write (every file fnn writes ends
with an ``os.replace``), just before or just after the rename; ``--count-writes FILE``
appends a line per write; ``--hold S`` sleeps S seconds in place of training, after
printing ``holding`` (the run directory's lock held).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fnn
import fnn.cli
from fnn.cli import _train
from tests.test_cli import synthetic


def main(argv: list[str]) -> int:
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-when", choices=("before", "after"), default="after")
    parser.add_argument("--count-writes", type=Path)
    parser.add_argument("--hold", type=float)
    options = parser.parse_args(argv[:split])
    fnn.data.load_dataset = lambda name, **kwargs: synthetic(name)
    real_replace = os.replace
    writes = [0]

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        writes[0] += 1
        if options.count_writes is not None:
            with options.count_writes.open("a") as log:
                log.write(f"{dst}\n")
        if options.kill_at == writes[0] and options.kill_when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if options.kill_at == writes[0] and options.kill_when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    if options.hold is not None:

        def hold(*args: Any, **kwargs: Any) -> Any:
            print("holding", flush=True)
            time.sleep(options.hold)
            raise KeyboardInterrupt

        _train.fit = hold  # type: ignore[attr-defined]
    return fnn.cli.main(argv[split + 1 :])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
