"""``fnn sweep``: ``fnn train`` over a grid of options and a set of seeds (private; see
:mod:`fnn.cli`).

``fnn sweep --out DIR --seeds 0-4 --grid optimizer=adam,momentum --grid lr=1e-3,1e-2 --
--epochs 5 --limit 10000`` checks every setting as ``fnn train`` would, writes
``DIR/sweep.json`` (what the sweep is), then runs ``fnn train --out DIR/<name>`` for each
setting and seed (``<name>`` as ``optimizer=adam,lr=1e-3,seed=0``) on a pool of worker
processes, one per core by default, each run with ``--threads`` (default 1) threads as
``fnn train`` alone would use them (BLAS threads, or shards on threads for a recipe that
asks for them), or spread over the processes of ``mpirun -n N``, each run alone on its
process. Started again with the same
options, it skips the finished runs and resumes the others (``fnn train --resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import io as _textio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .. import experiments, parallel, plots
from .._atomic import write_bytes_atomic
from .._options import Option
from ..experiments import SweepError, WorkerDiedError
from ._config import (
    GENERAL,
    Config,
    UsageError,
    check_config,
    chosen_optimizer,
    data_info,
    every_option,
    model_options,
    optimizer_options,
)
from ._output import Output, printable
from ._rundir import CHECKPOINTS, RUN_FILE, finished, read_run

FIXED = {
    "--out": "each run's --out is DIR/<name>",
    "--resume": "fnn sweep resumes its runs itself",
    "--seed": "give the seeds with --seeds",
    "--stop-after": "a sweep's runs train to the end",
}
"""The ``fnn train`` options a sweep sets itself, and why."""

PASSED_ON_RESUME = frozenset(
    {"--threads", "--no-plots", "--data-dir", "--no-download", "--import", "--timeout"}
)
"""The options of the sweep's ``fnn train`` options that a resumed run is given again."""


def add_parsers(commands: Any, imports: dict[str, Any]) -> None:
    """Add ``fnn sweep`` to the command's subparsers."""
    sweep = experiment_parser(
        commands,
        "sweep",
        imports,
        "train over a grid of options and seeds, on every core (or MPI process)",
        "Run fnn train for every setting of a grid and every seed, each run in DIR/<name> "
        "with its own run.json; run again, it skips finished runs and resumes interrupted "
        "ones.",
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="OPTION=V1,V2",
        help="an fnn train option and its values (repeat for a product); values of "
        "options that hold lists (--hidden) are separated by / (hidden=128,64/256)",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        help="worker processes (default one per core; 1: one run after another in this "
        "process); under mpirun each process is a worker",
    )
    compare = commands.add_parser(
        "compare",
        help="mean ± std over seeds of runs grouped by the options that differ",
        allow_abbrev=False,
        description="Group the runs (run directories, or directories holding runs, such as "
        "a sweep's) by the options that differ and give per setting the mean ± standard "
        "deviation over its runs of the test accuracy and loss, the best validation "
        "accuracy and loss, and the time; write it as comparison.csv and comparison.md, "
        "and draw curves.png (a band over seeds per setting) and finals.png (each seed's "
        "test accuracy as a dot).",
    )
    compare.add_argument("runs", type=Path, nargs="+", help="run or sweep directories")
    compare.add_argument(
        "--out", type=Path, help="where the files go (default: the first directory given)"
    )
    compare.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")


def experiment_parser(
    commands: Any, name: str, imports: dict[str, Any], help: str, description: str
) -> argparse.ArgumentParser:
    """A subparser for a command that runs ``fnn train`` many times: its ``--import``,
    ``--out``, ``--seeds`` and the ``fnn train`` options after ``--``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        allow_abbrev=False,
        description=f"{description} Everything after -- is given to every fnn train.",
    )
    parser.add_argument("--import", **imports)
    parser.add_argument("--out", type=Path, required=True, help=f"the {name}'s directory")
    parser.add_argument(
        "--seeds", default="0", help="seeds and ranges like 0-4 or 0,3,7 (default 0)"
    )
    parser.add_argument("train", nargs=argparse.REMAINDER, help="-- and fnn train's options")
    return parser


def train_options(args: argparse.Namespace) -> list[str]:
    """The ``fnn train`` options after ``--``, and the seeds, of ``fnn sweep`` or ``fnn
    tune``.

    Raises:
        UsageError: an option the command sets itself (:data:`FIXED`), malformed seeds
            or a number of workers out of range.
    """
    train = list(args.train[1:] if args.train[:1] == ["--"] else args.train)
    given = {token.split("=", 1)[0] for token in train if token.startswith("--")}
    for flag, why in FIXED.items():
        if flag in given:
            raise UsageError(f"{flag} cannot be given to the {args.command}'s runs: {why}")
    if args.workers is not None and not 1 <= args.workers <= 4096:
        raise UsageError(f"--workers must be an integer in [1, 4096], got {args.workers}")
    return train


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    """The seeds of ``--seeds``.

    Raises:
        UsageError: malformed seeds.
    """
    try:
        return experiments.parse_seeds(args.seeds)
    except ValueError as err:
        raise UsageError(f"--seeds: {err}") from None


def known_option(
    name: str, entry: str, train: Sequence[str], entries: Sequence[str] = ()
) -> Option:
    """The ``fnn train`` option ``name`` names (``lr``, ``batch-size``) in an entry of
    ``--grid`` or ``--param``, which ``train`` (the options after ``--``) does not set.
    A recipe's or optimizer's option is the one of those the runs choose (by ``train``
    and by the ``model`` and ``optimizer`` values of ``entries``, all the entries; a
    recipe's own optimizer where none is given): its kind says how its values are read
    (``hidden`` is a tuple for mlp, maybe an int for a user's recipe).

    Raises:
        UsageError: an option the command sets itself, one ``fnn train`` does not have,
            one ``train`` sets too, or one of several kinds for the recipes and
            optimizers the runs choose.
    """
    flag = "--" + name.replace("_", "-")
    if flag in FIXED:
        raise UsageError(f"{entry}: {FIXED[flag]}")
    every = every_option()
    if name not in GENERAL and name not in every:
        if flag in PASSED_ON_RESUME | {"--quiet"}:
            raise UsageError(
                f"{entry}: {flag} is how a run is trained, not a setting of it; give it "
                "to every run after --"
            )
        raise UsageError(f"{entry}: fnn train has no option {flag}")
    if flag in {token.split("=", 1)[0] for token in train}:
        raise UsageError(f"{entry}: {flag} is given twice")
    if name in GENERAL:
        return GENERAL[name]
    found = _chosen_options(name, train, entries)
    kinds = sorted({o.expects() for o in found})
    if len(kinds) > 1:
        raise UsageError(
            f"{entry}: {flag} expects {' or '.join(kinds)} for the recipes and optimizers "
            "these runs choose: search them apart"
        )
    return found[0] if found else every[name][0]  # the config's check refuses it


def _chosen_options(name: str, train: Sequence[str], entries: Sequence[str]) -> list[Option]:
    """The options called ``name`` of the recipes and optimizers the runs of ``train``
    and ``entries`` choose."""
    models = _values(entries, "model") or (
        _given_value(train, "--model") or GENERAL["model"].default,
    )
    optimizers = _values(entries, "optimizer") or (_given_value(train, "--optimizer"),)
    found = []
    for model in models:
        found += [o for o in model_options(model) if o.name == name]
        for opt in optimizers:
            owner = optimizer_options(chosen_optimizer(model, opt))
            found += [o for o in owner if o.name == name]
    return found


def _values(entries: Sequence[str], name: str) -> tuple[str, ...]:
    """The values the entry of ``name`` among ``entries`` (``NAME=V1,V2``) gives."""
    for entry in entries:
        key, _, text = entry.partition("=")
        if key.strip().removeprefix("--").replace("-", "_") == name:
            return tuple(v.strip() for v in text.split(",") if v.strip())
    return ()


def _given_value(argv: Sequence[str], flag: str) -> str | None:
    """The value ``argv`` gives ``flag`` (``--model gpt`` or ``--model=gpt``), or None."""
    for option in _options_of(argv):
        key, eq, value = option[0].partition("=")
        if key == flag and (eq or len(option) > 1):
            return value if eq else option[1]
    return None


@attrs.frozen
class SweepRun:
    """One run of a sweep: its name, directory and ``fnn train`` options when new."""

    name: str
    directory: Path
    argv: tuple[str, ...]
    resume: tuple[str, ...]


def sweep_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn sweep``."""
    train = train_options(args)
    grid = parse_grid(args.grid, train)
    seeds = seeds_of(args)
    runs = plan_runs(args.out, grid, seeds, train)
    spec = {
        "kind": "fnn sweep",
        "grid": [[n, list(v)] for n, v in grid.items()],
        "seeds": list(seeds),
        "train": train,
    }
    try:
        comm = parallel.world()
    except ImportError as err:
        raise UsageError(str(err)) from None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {args.out}: {err.strerror or err}") from None
    rank, size = parallel.rank_and_size(comm)
    share = len(range(rank, len(runs), size))  # the runs this process runs
    who = f"process {rank}: " if size > 1 else ""
    counts = {"trained": 0, "resumed": 0, "skipped": 0, "failed": 0}
    failures: list[str] = []

    def done(index: int, result: dict[str, Any]) -> None:
        counts[result["status"]] += 1
        if result["status"] == "failed":
            failures.append(f"{result['name']}: {result['error']}")
        n = sum(counts.values())
        line = f"{who}[{n}/{share}] {result['name']}: {_said(result)}"
        out.write(printable(line) + "\n")

    try:
        with contextlib.ExitStack() as stack:
            experiments.begin_sweep(args.out, spec, comm, stack)
            experiments.run_tasks(
                train_one,
                runs,
                workers=args.workers or experiments.default_workers(),
                comm=comm,
                done=done,
            )
    except SweepError as err:
        raise UsageError(str(err)) from None
    except WorkerDiedError as err:
        raise UsageError(f"{err}; run the same fnn sweep again to resume") from None
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    out.write(printable(f"{who}{args.out}: {summary}; compare with fnn compare {args.out}") + "\n")
    if failures:
        raise UsageError(f"{len(failures)} of {share} runs failed; the first, {failures[0]}")
    return 0


def compare_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn compare``."""
    try:
        summary = experiments.summarize(experiments.find_runs(args.runs))
    except SweepError as err:
        raise UsageError(str(err)) from None
    target = args.out or args.runs[0]
    target.mkdir(parents=True, exist_ok=True)
    csv_path = experiments.write_csv(summary, target / "comparison.csv")
    md_path = target / "comparison.md"
    write_bytes_atomic(md_path, (experiments.markdown_table(summary) + "\n").encode())
    written = [csv_path, md_path]
    if not args.no_plots:
        try:
            for draw, name in (
                (experiments.plot_curves, "curves.png"),
                (experiments.plot_finals, "finals.png"),
            ):
                drawn = draw(summary, target / name)
                written += [] if drawn is None else [drawn]
        except plots.PlottingUnavailableError as err:
            out.write(f"note: {err}\n")
    runs = sum(len(s.runs) for s in summary.settings)
    out.write(printable(f"{runs} runs, {len(summary.settings)} settings") + "\n")
    out.write("\n".join(printable(line) for line in experiments.table(summary).splitlines()))
    out.write("\n" + printable(f"wrote {', '.join(map(str, written))}") + "\n")
    return 0


def _said(result: dict[str, Any]) -> str:
    """What a finished run's line says."""
    if result["status"] == "failed":
        return f"failed: {result['error']}"
    if result["status"] == "skipped":
        return "finished before, skipped"
    accuracy, loss = result.get("accuracy"), result.get("validation_loss")
    if accuracy is not None:
        score = f", test accuracy {accuracy:.4f}"
    elif loss is not None:  # a language model's run
        score = f", validation loss {loss:.4f}"
    else:
        score = ""
    return f"{result['status']}{score} ({result['seconds']:.2f} s)"


def parse_grid(entries: Sequence[str], train: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The grid of ``--grid NAME=V1,V2`` entries: ``{name: values as text}``.

    Raises:
        UsageError: a malformed entry, an option ``fnn train`` does not have or a sweep
            sets itself, an option given twice, or a value given twice.
    """
    grid: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        name, sep, text = entry.partition("=")
        name = name.strip().removeprefix("--").replace("-", "_")
        if not sep or not name or not text.strip():
            raise UsageError(f"--grid expects OPTION=V1,V2,..., got {entry!r}")
        option = known_option(name, f"--grid {entry}", train, entries)
        if name in grid:
            raise UsageError(f"--grid {entry}: {option.flag} is given twice")
        separator = "/" if option.kind in (tuple, list) else ","
        values = tuple(v.strip() for v in text.split(separator))
        if any(not v for v in values) or len(set(values)) != len(values):
            raise UsageError(f"--grid {entry}: expected distinct values separated by {separator!r}")
        grid[name] = values
    return grid


def flags(setting: dict[str, str]) -> list[str]:
    """The ``fnn train`` options of a setting (a bool option's ``--x`` or ``--no-x``)."""
    flags: list[str] = []
    for name, value in setting.items():
        flag = "--" + name.replace("_", "-")
        option = GENERAL.get(name) or every_option()[name][0]
        if option.kind is bool and value.lower() in ("true", "false"):
            flags.append(flag if value.lower() == "true" else f"--no-{flag[2:]}")
        else:
            flags += [flag, value]
    return flags


def plan_runs(
    root: Path, grid: dict[str, tuple[str, ...]], seeds: Sequence[int], train: Sequence[str]
) -> list[SweepRun]:
    """Every run of the sweep, each setting checked as ``fnn train`` checks its options
    (nothing is read or written).

    Raises:
        UsageError: a setting ``fnn train`` would refuse, naming the setting; two settings
            that are one configuration (``lr=0.001,1e-3``), naming both.
    """
    resume = resume_options(train)
    runs = []
    seen: dict[str, dict[str, str]] = {}  # each configuration's first setting
    for setting in experiments.expand(grid):
        config = json.dumps(checked_config(train, setting).to_json(), sort_keys=True)
        if config in seen:
            raise UsageError(
                f"the settings {' '.join(flags(seen[config]))} and {' '.join(flags(setting))} "
                "are the same configuration: give each value once"
            )
        seen[config] = setting
        for seed in seeds:
            name = experiments.run_name(setting, seed)
            directory = root / name
            argv = ("train", *train, *flags(setting), "--seed", str(seed))
            argv += ("--out", str(directory), "--quiet")
            again = ("train", "--resume", str(directory), "--quiet", *resume)
            runs.append(SweepRun(name, directory, argv, again))
    return runs


def checked_config(train: Sequence[str], setting: dict[str, str]) -> Config:
    """The configuration of ``fnn train`` with the options ``train`` and ``setting``,
    checked as ``fnn train`` checks it (nothing is read or written).

    Raises:
        UsageError: what ``fnn train`` would refuse, naming the setting.
    """
    from . import _config_from_args, _parser  # the command's own parser and checks

    shown = " ".join(flags(setting)) or "the options after --"
    try:
        args = _parser().parse_args(["train", *train, *flags(setting)])
        args.alone = True  # as run_train runs it: alone, even under mpirun
        config = _config_from_args(args)
        check_config(config, data_info(config))
    except UsageError as err:
        raise UsageError(f"the setting {shown}: {err}") from None
    return config


def resume_options(train: Sequence[str]) -> tuple[str, ...]:
    """The words of ``train`` (``fnn train``'s options) that a resumed run is given again:
    those of :data:`PASSED_ON_RESUME`, each with its value (``--threads 2``)."""
    kept = [t for t in _options_of(train) if t[0].split("=", 1)[0] in PASSED_ON_RESUME]
    return sum(kept, ())


def _options_of(argv: Sequence[str]) -> list[tuple[str, ...]]:
    """A command line's options, each with its value when it takes one as the next word."""
    found: list[tuple[str, ...]] = []
    for token in argv:
        if token.startswith("--") or not found:
            found.append((token,))
        else:
            found[-1] = (*found[-1], token)
    return found


def train_one(run: SweepRun) -> dict[str, Any]:
    """One run of a sweep (in a worker): skipped when finished, resumed when it has a
    checkpoint, else trained from its start; returns what the sweep reports of it."""
    directory = run.directory
    record = read_run(directory) if (directory / RUN_FILE).is_file() else None
    if record is not None and finished(directory, record, str(record.get("params_sha256"))):
        return {"name": run.name, "status": "skipped"}
    resuming = record is not None and (directory / CHECKPOINTS / "last.npz").is_file()
    began = os.times().elapsed
    error = run_train(run.resume if resuming else run.argv)
    if error is not None:
        return {"name": run.name, "status": "failed", "error": error}
    finished_record = read_run(directory)
    test, validation = finished_record.get("test"), finished_record.get("validation")
    return {
        "name": run.name,
        "status": "resumed" if resuming else "trained",
        "accuracy": test.get("accuracy") if isinstance(test, dict) else None,
        "validation_loss": validation.get("loss") if isinstance(validation, dict) else None,
        "seconds": os.times().elapsed - began,
    }


def run_train(argv: Sequence[str]) -> str | None:
    """``fnn train`` in this process, alone (not a part of an MPI job), printing
    nothing; returns None, or the one line of an error a user can cause."""
    from . import USER_ERRORS, _parser, _train_command

    try:
        args = _parser().parse_args(list(argv))
        args.argv, args.alone = list(argv), True
        _train_command(args, Output(_textio.StringIO()))
    except USER_ERRORS as err:
        return " ".join(printable(line.strip()) for line in str(err).splitlines())
    return None


__all__ = [
    "FIXED",
    "SweepRun",
    "add_parsers",
    "checked_config",
    "compare_command",
    "experiment_parser",
    "known_option",
    "seeds_of",
    "train_options",
    "parse_grid",
    "flags",
    "plan_runs",
    "resume_options",
    "run_train",
    "sweep_command",
]
