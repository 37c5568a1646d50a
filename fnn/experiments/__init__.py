"""Experiments: sweeps over settings and seeds, their summaries, and searches.

* :func:`sweep` runs a training function over a grid of settings and a set of seeds,
  each run in its own directory with its own ``run.json``, on a pool of worker
  processes (one per core by default) or over an MPI job's processes; started again, it
  skips the finished runs. ``fnn sweep`` does the same for ``fnn train``.
* :func:`summarize` groups run directories (any: a sweep's, ``fnn train``'s, made by
  hand) by the options that differ and gives per setting the mean, standard deviation
  and count over seeds of the test accuracy and loss, the best validation metric and
  the time; :func:`markdown_table` and :func:`write_csv` write it, and
  :func:`plot_curves` and :func:`plot_finals` draw it. ``fnn compare`` does all four.
"""

from ._grid import expand as expand
from ._grid import parse_seeds as parse_seeds
from ._grid import run_name as run_name
from ._pool import WorkerDiedError as WorkerDiedError
from ._pool import default_workers as default_workers
from ._pool import run_tasks as run_tasks
from ._sweep import SWEEP_FILE as SWEEP_FILE
from ._sweep import Run as Run
from ._sweep import SweepError as SweepError
from ._sweep import begin_sweep as begin_sweep
from ._sweep import sweep as sweep

__all__ = [
    "SWEEP_FILE",
    "Run",
    "SweepError",
    "WorkerDiedError",
    "begin_sweep",
    "default_workers",
    "expand",
    "parse_seeds",
    "run_name",
    "run_tasks",
    "sweep",
]
