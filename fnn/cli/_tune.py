"""``fnn tune``: a search over ``fnn train``'s options with Optuna (the optional extra
``fnn[tune]``; private, see :mod:`fnn.cli`).

``fnn tune --out DIR --trials 20 --param lr=1e-4..1e-1:log --param optimizer=adam,sgd
-- --epochs 5`` runs Optuna's study ``fnn`` in ``DIR/study.db``: each trial draws the
options, trains ``fnn train`` once per seed into ``DIR/trial-0007/seed=0`` (a run
directory with its own ``run.json``), and scores the mean over seeds of the best
validation accuracy (or loss) of the runs. With a pruner the seeds' runs go epoch by
epoch (``--stop-after``, then ``--resume``: the bits of a run that never stopped), each
epoch's mean validation metric reported to the pruner.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import experiments
from ._config import UsageError
from ._output import Output, printable
from ._rundir import RUN_FILE, read_run
from ._sweep import (
    checked_config,
    experiment_parser,
    flags,
    known_option,
    resume_options,
    run_train,
    seeds_of,
    train_options,
)

METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}
"""What a search scores a trial by (the best value of each run, the mean over seeds)."""


def add_parsers(commands: Any, imports: dict[str, Any]) -> None:
    """Add ``fnn tune`` to the command's subparsers."""
    tune = experiment_parser(
        commands,
        "tune",
        imports,
        "search fnn train's options with Optuna (pip install 'fnn[tune]')",
        "Search fnn train's options with an Optuna study kept in DIR/study.db: each trial "
        "trains one run per seed (--seeds) in DIR/trial-NNNN/seed=S and scores the mean of "
        "their best validation metric. Run again, the study goes on where it stopped.",
    )
    tune.add_argument("--trials", type=int, default=20, help="finished trials (default 20)")
    tune.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="OPTION=RANGE",
        help="a dimension: lr=1e-4..1e-1:log (a range of an option that takes a number; "
        ":log draws on a log scale) or optimizer=adam,sgd (choices)",
    )
    tune.add_argument(
        "--metric", default="val_accuracy", choices=sorted(METRICS), help="what to optimize"
    )
    tune.add_argument(
        "--sampler", default="tpe", choices=experiments.SAMPLERS, help="Optuna sampler"
    )
    tune.add_argument("--pruner", default="none", choices=experiments.PRUNERS, help="Optuna pruner")
    tune.add_argument("--sampler-seed", type=int, default=0, help="the sampler's seed")
    tune.add_argument("--storage", help="an Optuna storage URL (default DIR/study.db)")
    tune.add_argument("--study", default="fnn", help="the study's name (default fnn)")
    tune.add_argument(
        "--workers", type=int, default=1, help="trials at once, each in a process (default 1)"
    )


def _params(entries: list[str], train: list[str]) -> list[experiments.Param]:
    """The search space of ``--param`` entries.

    Raises:
        UsageError: a malformed entry, an option ``fnn train`` does not have or a search
            sets itself, or an option given twice.
    """
    if not entries:
        raise UsageError("give the search space: --param OPTION=LOW..HIGH or OPTION=A,B")
    found: list[experiments.Param] = []
    for entry in entries:
        name = entry.partition("=")[0].strip().removeprefix("--").replace("-", "_")
        option = known_option(name, f"--param {entry}", train, entries)
        if any(p.name == name for p in found):
            raise UsageError(f"--param {entry}: {option.flag} is given twice")
        numeric = {float: "float", int: "int"}.get(option.kind)
        try:
            found.append(experiments.parse_param(entry, numeric))
        except ValueError as err:
            raise UsageError(f"--param: {err}") from None
    return found


def _corners(params: list[experiments.Param]) -> list[dict[str, str]]:
    """Settings that check a space: each range's ends and each choice, the others at
    their first value."""
    first = {p.name: _ends(p)[0] for p in params}
    return [{**first, p.name: value} for p in params for value in _ends(p)]


def _ends(param: experiments.Param) -> tuple[str, ...]:
    if param.kind == "choice":
        return param.choices
    if param.kind == "int":
        return (str(int(param.low)), str(int(param.high)))
    return (repr(param.low), repr(param.high))


def tune_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn tune``."""
    train = train_options(args)
    if not 1 <= args.trials <= 100_000:
        raise UsageError(f"--trials must be an integer in [1, 100000], got {args.trials}")
    params = _params(args.param, train)
    seeds = seeds_of(args)
    configs = [checked_config(train, corner) for corner in _corners(params)]
    if any(c.general.get("validation_split", 0) <= 0 for c in configs):
        raise UsageError(
            f"fnn tune scores the validation metric {args.metric}: --validation-split must be "
            "above 0 (and a language model's runs are not searched yet)"
        )
    try:
        optuna = experiments.optuna_module()
    except experiments.TuneUnavailableError as err:
        raise UsageError(str(err)) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # fnn prints a line a trial
    spec = {
        "kind": "fnn tune",
        "params": [p.__repr__() for p in params],
        "seeds": list(seeds),
        "train": train,
        "metric": args.metric,
        "study": args.study,
    }
    maximize = METRICS[args.metric] == "maximize"

    def objective(trial: Any) -> float:
        setting = _as_flags({p.name: p.suggest(trial) for p in params})
        base = ["train", *train, *flags(setting), "--quiet"]
        epochs = int(checked_config(train, setting).general["epochs"])
        runs = {s: args.out / f"trial-{trial.number:04d}" / f"seed={s}" for s in seeds}
        trial.set_user_attr("runs", [str(d) for d in runs.values()])
        steps = range(1, epochs + 1) if args.pruner != "none" else [None]
        again = resume_options(train)  # a pruned trial's runs resume at each epoch
        stopped: set[int] = set()
        for step in steps:
            for seed, directory in runs.items():
                if seed in stopped:
                    continue
                if step is None or step == 1:
                    argv = [*base, "--seed", str(seed), "--out", str(directory)]
                else:
                    argv = ["train", "--resume", str(directory), "--quiet", *again]
                error = run_train(argv + ([] if step is None else ["--stop-after", str(step)]))
                if error is not None:
                    raise experiments.TrialFailedError(f"{directory}: {error}")
                if read_run(directory).get("stopped_early"):
                    stopped.add(seed)
            if step is not None:
                now = [(_curve(d, args.metric) or [math.nan])[-1] for d in runs.values()]
                trial.report(_mean(now), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            if len(stopped) == len(runs):
                break
        found = [_best(_curve(d, args.metric), maximize) for d in runs.values()]
        return _mean(found)

    def done(trial: Any) -> None:
        value = "" if trial.value is None else f", {args.metric} {trial.value:.4f}"
        shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in trial.params.items())
        line = f"trial {trial.number}: {trial.state.name.lower()}{value} ({shown})"
        out.write(printable(line) + "\n")

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {args.out}: {err.strerror or err}") from None
    try:
        with contextlib.ExitStack() as stack:
            experiments.begin_sweep(args.out, spec, None, stack)
            study = experiments.tune(
                objective,
                directory=args.out,
                trials=args.trials,
                direction=METRICS[args.metric],
                study_name=args.study,
                storage=args.storage,
                sampler_name=args.sampler,
                pruner_name=args.pruner,
                seed=args.sampler_seed,
                workers=args.workers,
                done=done,
            )
    except (experiments.SweepError, ValueError) as err:
        raise UsageError(str(err)) from None
    except experiments.WorkerDiedError as err:
        raise UsageError(f"{err}; run the same fnn tune again to go on") from None
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise UsageError(f"no trial of {args.out} completed; see the trials' runs there")
    best = study.best_trial
    shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in best.params.items())
    out.write(
        printable(
            f"best trial {best.number}: {args.metric} {best.value:.4f} with {shown} "
            f"({len(study.trials)} trials; runs in {args.out / f'trial-{best.number:04d}'}); "
            f"compare them with fnn compare {args.out}"
        )
        + "\n"
    )
    return 0


def _best(values: Sequence[float], maximize: bool) -> float:
    """The best of a run's values (highest or lowest), NaN entries left out; NaN for
    none."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return math.nan
    return max(kept) if maximize else min(kept)


def _mean(values: Sequence[float]) -> float:
    """The mean of ``values`` (NaN when any is NaN or there are none)."""
    return math.fsum(values) / len(values) if values else math.nan


def _as_flags(values: Mapping[str, Any]) -> dict[str, str]:
    """A trial's values as the text of command-line options (floats as ``repr``)."""
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in values.items()}


def _curve(directory: Path, metric: str) -> list[float]:
    """A run's ``metric`` per epoch, from its ``run.json``."""
    return (
        experiments.curve(read_run(directory), metric) if (directory / RUN_FILE).is_file() else []
    )


__all__ = ["METRICS", "add_parsers", "tune_command"]
