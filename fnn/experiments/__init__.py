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
* :func:`tune` runs an Optuna study (the optional extra ``fnn[tune]``) in a search's
  directory (``study.db``, SQLite) on worker processes, with Optuna's samplers and
  pruners; ``fnn tune`` searches ``fnn train``'s options with it.
"""

from ._grid import expand as expand
from ._grid import parse_seeds as parse_seeds
from ._grid import run_name as run_name
from ._pool import WorkerDiedError as WorkerDiedError
from ._pool import default_workers as default_workers
from ._pool import run_tasks as run_tasks
from ._summary import METRICS as METRICS
from ._summary import RunRecord as RunRecord
from ._summary import Setting as Setting
from ._summary import Stat as Stat
from ._summary import Summary as Summary
from ._summary import curve as curve
from ._summary import find_runs as find_runs
from ._summary import markdown_table as markdown_table
from ._summary import plot_curves as plot_curves
from ._summary import plot_finals as plot_finals
from ._summary import summarize as summarize
from ._summary import table as table
from ._summary import write_csv as write_csv
from ._sweep import SWEEP_FILE as SWEEP_FILE
from ._sweep import Run as Run
from ._sweep import SweepError as SweepError
from ._sweep import begin_sweep as begin_sweep
from ._sweep import sweep as sweep
from ._tune import PRUNERS as PRUNERS
from ._tune import SAMPLERS as SAMPLERS
from ._tune import STUDY_FILE as STUDY_FILE
from ._tune import Param as Param
from ._tune import TrialFailedError as TrialFailedError
from ._tune import TuneUnavailableError as TuneUnavailableError
from ._tune import optuna_module as optuna_module
from ._tune import parse_param as parse_param
from ._tune import tune as tune

__all__ = [
    "METRICS",
    "PRUNERS",
    "SAMPLERS",
    "STUDY_FILE",
    "SWEEP_FILE",
    "Param",
    "Run",
    "RunRecord",
    "Setting",
    "Stat",
    "Summary",
    "SweepError",
    "TrialFailedError",
    "TuneUnavailableError",
    "WorkerDiedError",
    "begin_sweep",
    "default_workers",
    "curve",
    "expand",
    "find_runs",
    "markdown_table",
    "optuna_module",
    "parse_param",
    "parse_seeds",
    "plot_curves",
    "plot_finals",
    "run_name",
    "run_tasks",
    "summarize",
    "sweep",
    "table",
    "tune",
    "write_csv",
]
