"""The ``fnn`` command: ``fnn train``, ``fnn evaluate``, ``fnn predict``, ``fnn generate``,
``fnn replay``, and for experiments ``fnn sweep`` (``fnn train`` over a grid of options
and seeds, on every core or MPI process), ``fnn compare`` (mean ± std per setting of any
runs) and ``fnn tune`` (a search with Optuna).

``fnn train --dataset fashion-mnist`` trains the default 784-128-64-10 ReLU MLP with
Adam, shows progress, prints a per-epoch table and the test accuracy, and writes into
its output directory:

* ``model.npz`` — the architecture (a JSON spec of fnn layer names and numbers) and the
  parameters, loadable by ``fnn evaluate`` and ``fnn predict`` (no code is run);
* ``run.json`` — the configuration (the options that apply to the run), a run id, seed,
  library versions, the conditions that decide the bits (the BLAS library, version, core
  and threads, the CPU, NumPy, Python, shards; :mod:`fnn.cli._conditions`), data
  checksums, per-epoch metrics and params' fingerprints, test metrics and a SHA-256
  fingerprint of the final params;
* ``checkpoints/last.npz`` — the whole training state after the latest epoch, with the
  run id and configuration it belongs to, for ``fnn train --resume DIR``;
* ``curves.png`` and ``confusion.png`` — plots, when matplotlib is installed.

``fnn train --resume DIR`` refuses to go on under other conditions that decide the bits
unless ``--allow-changed-conditions`` (recorded); ``fnn replay DIR`` reruns a recorded run
and reports ``bit-identical`` or the first epoch that differs (:mod:`fnn.cli._replay`).

The command is built from registries: ``--model`` names a recipe (:mod:`fnn.recipes`),
``--optimizer`` an optimizer (:data:`fnn.optim.OPTIMIZERS`), ``--dataset`` a dataset
(:data:`fnn.data.DATASETS`), and each brings its own options (``--hidden``,
``--weight-decay``); ``--import MODULE`` (a module name or a ``.py`` file) imports a
user's registrations first. Everything the command is given is checked with the
library's own checks before it reads data, writes a file or trains; an error a user can
cause ends with one line on stderr and exit status 2 (130 when interrupted), while a
bug in fnn shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from .. import __version__, _options, data, io, optim, parallel, recipes
from .._registry import IMPORT_HINT
from ..train import NonFiniteLossError
from . import _config, _output, _replay, _rundir, _sweep, _train, _tune, _use
from ._conditions import cpu_model as cpu_model
from ._config import AUGMENTATIONS as AUGMENTATIONS
from ._config import OPTIONS as OPTIONS
from ._config import SCHEDULES as SCHEDULES
from ._config import Config as Config
from ._config import UsageError as UsageError
from ._config import build_model as build_model
from ._config import check_config as check_config
from ._config import complete as complete
from ._output import printable as printable
from ._rundir import MAX_RUN_RECORD as MAX_RUN_RECORD
from ._train import TRAINING_COPIES as TRAINING_COPIES
from ._train import check_memory as check_memory
from ._train import thread_plan as thread_plan
from ._use import PREDICT_MAX_BYTES as PREDICT_MAX_BYTES

__all__ = [
    "AUGMENTATIONS",
    "MAX_RUN_RECORD",
    "OPTIONS",
    "PREDICT_MAX_BYTES",
    "SCHEDULES",
    "TRAINING_COPIES",
    "USER_ERRORS",
    "Config",
    "UsageError",
    "build_model",
    "check_config",
    "check_memory",
    "complete",
    "cpu_model",
    "main",
    "printable",
    "thread_plan",
]

USER_ERRORS = (UsageError, io.FormatError, data.DataError, NonFiniteLossError, OSError)
"""The errors the command reports in one line: its own usage errors, files that are not
fnn or data files, a diverged run, and the file system's errors (a missing file, no
permission, a full disk). Anything else is a bug and keeps its traceback."""


def _value(option: _options.Option) -> Callable[[str], object]:
    """An argparse type for ``option``: its parse, with the message argparse prints."""

    def parse(text: str) -> object:
        try:
            return option.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{option.flag} ")) from None

    parse.__name__ = option.name
    return parse


def _add(group: argparse._ArgumentGroup, option: _options.Option, help: str) -> None:
    if option.kind is bool:
        action = argparse.BooleanOptionalAction
        group.add_argument(option.flag, action=action, default=None, help=help)
    else:
        group.add_argument(option.flag, type=_value(option), default=None, help=help)


def _help(option: _options.Option) -> str:
    """The help line of a recipe's or optimizer's option: its docstring's, else (a
    function without an ``Args:`` entry for it) its default."""
    return option.help or f"(default {option.to_json(option.default)})"


def _mixed(options: Sequence[_options.Option]) -> bool:
    """Whether the recipes' and optimizers' options of one name take values of several
    kinds (a user's ``hidden: int`` beside mlp's ``hidden: tuple[int, ...]``): the
    command line's value is then parsed by the chosen one's kind (:func:`_parsed`)."""
    return len({o.kind for o in options}) > 1


def _add_mixed(
    group: argparse._ArgumentGroup, options: Sequence[_options.Option], help: str
) -> None:
    """A flag of several kinds: its text kept (True for a bare flag, False for its
    ``--no-`` form where one of them is a bool), parsed once the owner is chosen."""
    flag = options[0].flag
    if any(o.kind is bool for o in options):
        group.add_argument(flag, nargs="?", const=True, default=None, help=help)
        group.add_argument(
            f"--no-{flag[2:]}", dest=options[0].name, action="store_const", const=False
        )
    else:
        group.add_argument(flag, default=None, help=help)


def _parsed(value: object, option: _options.Option, owner: str) -> object:
    """The value of a flag of several kinds (:func:`_add_mixed`) for the chosen owner's
    ``option``.

    Raises:
        UsageError: a value that is not of the option's kind (naming the owner).
    """
    if isinstance(value, bool):
        if option.kind is bool:
            return value
        shown = option.flag if value else f"--no-{option.flag[2:]}"
        raise UsageError(f"{shown}: {owner} expects {option.flag} VALUE, {option.expects()}")
    try:
        return option.parse(str(value))
    except ValueError as err:
        raise UsageError(f"{err} (for {owner})") from None


class _Parser(argparse.ArgumentParser):
    """argparse, its errors one line (a :class:`UsageError`) rather than usage and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fnn",
        description="Train, evaluate and use fnn models on MNIST-family data or your own.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"fnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    imports = {
        "dest": "imports",
        "action": "append",
        "default": [],
        "metavar": "MODULE",
        "help": "import a module (or a .py file) that registers models, datasets, "
        "optimizers or layers first",
    }

    train_cmd = commands.add_parser(
        "train", help="train a model and write it with its run record", allow_abbrev=False
    )
    train_cmd.add_argument("--import", **imports)  # type: ignore[arg-type]
    general = train_cmd.add_argument_group("training")
    for option in OPTIONS:
        default = "" if option.default is None else f" (default {option.to_json(option.default)})"
        _add(general, option, option.help + default)
    general.add_argument(
        "--data",
        type=Path,
        help="train on your own data: a directory of the four IDX files, of x_train.npy, "
        "y_train.npy, x_test.npy, y_test.npy, or of data.npz (see fnn.data.load_directory)",
    )
    own = train_cmd.add_argument_group("options of the model recipes and optimizers")
    for name, options in sorted(_config.every_option().items()):
        owners = _owners(name)  # in the order of every_option's: recipes, then optimizers
        helps = [_help(o) for o in options]
        if _mixed(options):  # one name, values of several kinds: each owner's own
            text = " ".join(
                f"{who}: {o.expects()}, {h}" for who, o, h in zip(owners, options, helps)
            )
            _add_mixed(own, options, text)
        elif len(set(helps)) == 1:
            _add(own, options[0], f"{helps[0]} [{', '.join(sorted(set(owners)))}]")
        else:  # one name, several meanings: each owner's own
            _add(own, options[0], " ".join(f"{who}: {h}" for who, h in zip(owners, helps)))
    run = train_cmd.add_argument_group("the run")
    run.add_argument("--data-dir", type=Path, help="directory holding the dataset's files")
    run.add_argument("--no-download", action="store_true", help="never download the data")
    run.add_argument(
        "--out",
        type=Path,
        help="output directory (default runs/<dataset>); a new run replaces the run there",
    )
    run.add_argument(
        "--resume", type=Path, help="continue (or finish) the run saved in this directory"
    )
    run.add_argument(
        "--stop-after",
        type=int,
        help="stop after this many epochs of the run (resume later with --resume)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per process (default 1: small models gain little from more, and lose "
        "much on a busy machine): with two or more shards a process, up to this many of "
        "them run at once, one thread each, and BLAS gets one thread; else all go to BLAS "
        "(a recipe that trains on shards on threads, as gpt and cnn do, takes this many "
        "shards when a run starts without --shards: at most the batch size, not under "
        "mpirun, not for a model with batch norm)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=parallel.DEFAULT_TIMEOUT,
        help="under mpirun: end the job when a process waits this many seconds for the "
        f"others (default {parallel.DEFAULT_TIMEOUT:g}; 0: wait forever)",
    )
    run.add_argument(
        "--allow-changed-conditions",
        action="store_true",
        help="with --resume: train on although a condition that decides the bits (the BLAS, "
        "its threads, the CPU, NumPy, Python) differs from the run's; run.json records it",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")

    evaluate_cmd = commands.add_parser(
        "evaluate", help="evaluate a saved model on test data", allow_abbrev=False
    )
    evaluate_cmd.add_argument("--import", **imports)  # type: ignore[arg-type]
    evaluate_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    evaluate_cmd.add_argument("--dataset", help="a registered dataset")
    evaluate_cmd.add_argument("--data", type=Path, help="a directory of your own data")
    evaluate_cmd.add_argument(
        "--data-dir", type=Path, help="directory holding the dataset's (or the text's) files"
    )
    evaluate_cmd.add_argument("--no-download", action="store_true")

    predict_cmd = commands.add_parser(
        "predict", help="class probabilities for images", allow_abbrev=False
    )
    predict_cmd.add_argument("--import", **imports)  # type: ignore[arg-type]
    predict_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    predict_cmd.add_argument("inputs", type=Path, nargs="+", help="PNG, IDX or NPY files")
    predict_cmd.add_argument("--invert", action="store_true", help="dark objects on light")
    predict_cmd.add_argument("--top", type=int, default=3, help="classes to show per image")
    generate_cmd = commands.add_parser(
        "generate", help="text from a language model", allow_abbrev=False
    )
    generate_cmd.add_argument("--import", **imports)  # type: ignore[arg-type]
    generate_cmd.add_argument("model", type=Path, help="a run directory or a model .npz")
    generate_cmd.add_argument("--prompt", default="", help="the text to continue")
    generate_cmd.add_argument(
        "--length", type=int, default=500, help="characters to generate (default 500)"
    )
    generate_cmd.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divide the logits by this (default 1; 0: always the most likely character)",
    )
    generate_cmd.add_argument(
        "--top-k", type=int, help="draw from the k most likely characters only (default all)"
    )
    generate_cmd.add_argument(
        "--seed", type=int, default=0, help="the seed of the draws (same seed, same text)"
    )
    _replay.add_parser(commands, imports)
    _sweep.add_parsers(commands, imports)
    _tune.add_parsers(commands, imports)
    return parser


def _owners(name: str) -> list[str]:
    """The recipes and optimizers that take the option ``name``."""
    found = [
        f"--model {r}"
        for r in recipes.RECIPES
        if any(o.name == name for o in _config.model_options(r))
    ]
    found += [
        f"--optimizer {o}"
        for o in optim.OPTIMIZERS
        if any(x.name == name for x in _config.optimizer_options(o))
    ]
    return found


def _given(argv: Sequence[str]) -> set[str]:
    """The long options present on a command line (abbreviations are refused)."""
    return {token.split("=", 1)[0] for token in argv if token.startswith("--")}


def _config_from_args(args: argparse.Namespace) -> Config:
    """The configuration a command line asks for (its values not yet checked).

    Raises:
        UsageError: an option that does not apply to the chosen model and optimizer, or
            ``--data`` with ``--dataset``.
    """
    general = {o.name: getattr(args, o.name) for o in OPTIONS}
    directory = None
    if args.data is not None:
        if args.dataset is not None or args.data_dir is not None:
            raise UsageError("give --data (your own data) or --dataset/--data-dir, not both")
        directory, general["dataset"] = _config.resolved(args.data), args.data.resolve().name
    model = str(general["model"] or OPTIONS[1].default)
    mine = {o.name: o for o in _config.model_options(model)}
    opt = _config.chosen_optimizer(model, general["optimizer"])
    theirs = {o.name: o for o in _config.optimizer_options(opt)}
    every = _config.every_option()
    given = {n: getattr(args, n) for n in every if getattr(args, n) is not None}
    stray = sorted(set(given) - set(mine) - set(theirs))
    if stray:
        name = stray[0]
        raise UsageError(
            f"--{name.replace('_', '-')} applies to {' or '.join(_owners(name))}, not to "
            f"--model {model} with --optimizer {opt}"
        )
    parts: list[dict[str, object]] = [{}, {}]
    for part, options, owner in ((0, mine, f"--model {model}"), (1, theirs, f"--optimizer {opt}")):
        for k, v in given.items():
            if k in options:
                parts[part][k] = _parsed(v, options[k], owner) if _mixed(every[k]) else v
    config = complete(general, parts[0], parts[1], directory)
    config = _threads_as_shards(config, args, model)
    wrong_text = _config.text_for_a_classifier(config)
    if wrong_text is not None:  # before the options a classifier's run would have taken
        raise UsageError(wrong_text)
    unused = [n for n, v in general.items() if v is not None and n not in config.general]
    if unused:
        flag = _config.GENERAL[unused[0]].flag
        if unused[0] in _config.SCHEDULE_OPTIONS:
            schedules = " or ".join(_config.SCHEDULE_OPTIONS[unused[0]])
            raise UsageError(f"{flag} applies to --schedule {schedules} only")
        kind = "a language model's (--text)" if unused[0] in _config.TEXT_ONLY else "a classifier's"
        raise UsageError(f"{flag} applies to {kind} runs only, not to --model {model}'s")
    return config


def _threads_as_shards(config: Config, args: argparse.Namespace, model: str) -> Config:
    """``config`` with ``shards`` set to ``--threads`` (at most a valid batch size) where
    the recipe trains on shards on threads (:attr:`fnn.recipes.Recipe.shards_on_threads`),
    the command line gives ``--threads T > 1`` and no ``--shards``, the recipe names no
    shard count of its own, and the run is on one process (not one of the processes of an
    ``mpirun`` job, whose shards the command line counts; a run of ``fnn sweep`` under
    ``mpirun`` is ``alone``, on one process), and the model keeps no state (batch norm's
    statistics would otherwise be taken per shard, a change of meaning, not only of
    speed); else ``config``. The shard count is chosen here, when a run starts, and
    recorded in its config: a resume keeps it."""
    threads = getattr(args, "threads", None)
    if not (isinstance(threads, int) and threads > 1) or args.shards is not None:
        return config
    chosen = recipes.recipe(model)
    if not chosen.shards_on_threads or "shards" in chosen.defaults:
        return config
    if not getattr(args, "alone", False) and parallel.launched_processes() > 1:
        return config
    if _keeps_state(config):  # batch norm's statistics would be taken per shard
        return config
    batch = config.general.get("batch_size")
    if isinstance(batch, int) and batch >= 1:
        threads = min(threads, batch)
    return config.evolve(shards=threads)


def _keeps_state(config: Config) -> bool:
    """Whether the config's model keeps model state (batch norm), or might: True where
    the model cannot be built yet (data not known before it is read, an option the recipe
    refuses, which the checks name later)."""
    info = _config.data_info(config)
    if info is None:
        return True
    try:
        return build_model(config, info).stateful
    except UsageError:
        return True


def _import(names: Sequence[str]) -> None:
    """Import the modules (or ``.py`` files) the command line names, for their
    registrations: a module name is looked up in the current directory first, as under
    ``python -m fnn`` (:func:`_current_directory_first`); a file's own directory goes first
    on ``sys.path``, as under ``python file.py``, so that it imports the modules beside it.

    Raises:
        UsageError: a module that cannot be imported or raises when imported (naming it,
            the error and the line of the user's code it came from); an error other than
            a ValueError or TypeError raised within fnn's own code is a bug in fnn and
            keeps its traceback.
    """
    for name in names:
        try:
            if not (name.endswith(".py") or os.sep in name):
                _current_directory_first()
                importlib.import_module(name)
            else:
                _import_file(Path(name))
        except (ImportError, OSError, SyntaxError) as err:
            raise UsageError(f"--import {name}: {type(err).__name__}: {err}") from None
        except Exception as err:
            where, in_fnn = _origin(err)
            if in_fnn and not isinstance(err, (ValueError, TypeError)):
                raise
            at = f" (at {where})" if where else ""
            raise UsageError(f"--import {name}: {type(err).__name__}: {err}{at}") from None


def _import_file(path: Path) -> None:
    """Import the ``.py`` file ``path`` as the module of its stem, its directory first on
    ``sys.path`` (unless there).

    Raises:
        ImportError: not a Python file; or what importing it raises.
    """
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    _first_on_path(os.path.abspath(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(path.stem, module)
    spec.loader.exec_module(module)


def _origin(err: BaseException) -> tuple[str, bool]:
    """Where ``err`` comes from: ``file:line`` of the innermost frame of its traceback in
    a user's code (the line that raised, or that called fnn; "" for none), and whether it
    was raised within fnn's own package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith("<")]
    users = [f for f in frames if not os.path.abspath(f.filename).startswith(package)]
    where = f"{users[-1].filename}:{users[-1].lineno}" if users else ""
    return where, bool(frames) and frames[-1] not in users


def _current_directory_first() -> None:
    """Put the current directory first on ``sys.path`` unless it is there, as ``python -m``
    does: the ``fnn`` script's ``sys.path[0]`` is the directory of the script itself."""
    _first_on_path(os.getcwd())


def _first_on_path(directory: str) -> None:
    """Put ``directory`` first on ``sys.path`` unless it is there."""
    if not any(os.path.abspath(entry or os.curdir) == directory for entry in sys.path):
        sys.path.insert(0, directory)


def _imports(argv: Sequence[str]) -> list[str]:
    """The values of ``--import`` on a command line.

    Raises:
        UsageError: ``--import`` before the command's name (where argparse would take its
            value for the command).
    """
    found = []
    for i, token in enumerate(argv):
        if token == "--import" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif token.startswith("--import="):
            found.append(token.split("=", 1)[1])
        else:
            continue
        if _first_word(argv[:i]) is None:
            name = _command(argv) or "train"
            raise UsageError(
                f"--import goes after the command's name: fnn {name} --import {found[-1]}"
            )
    return found


def _first_word(argv: Sequence[str]) -> str | None:
    """The first word of a command line that is neither an option nor ``--import``'s
    value (where argparse looks for the command's name); None for none."""
    for i, token in enumerate(argv):
        if not token.startswith("-") and (i == 0 or argv[i - 1] != "--import"):
            return token
    return None


def _command(argv: Sequence[str]) -> str | None:
    """The command a command line names (``train``, ``evaluate``, ``predict``), or None."""
    word = _first_word(argv)
    return word if word in _commands() else None


def _train_command(args: argparse.Namespace, out: _output.Output) -> int:
    if args.resume is not None:
        foreign = sorted(_given(args.argv) - _train.RESUME_OPTIONS)
        if foreign:
            record = args.resume / _rundir.RUN_FILE
            raise UsageError(
                f"--resume continues the run's own configuration ({record}); "
                f"{', '.join(foreign)} cannot change it: start a new run with --out instead"
            )
        return _train.train(args, None, out)
    return _train.train(args, _config_from_args(args), out)


def _commands() -> dict[str, Callable[[argparse.Namespace, _output.Output], int]]:
    """The commands by name."""
    return {
        "train": _train_command,
        "evaluate": _use.evaluate_command,
        "predict": _use.predict_command,
        "generate": _use.generate_command,
        "replay": _replay.replay_command,
        "sweep": _sweep.sweep_command,
        "compare": _sweep.compare_command,
        "tune": _tune.tune_command,
    }


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``fnn`` command; returns the exit status: 0 on success, 2 for an error the
    user can fix (:data:`USER_ERRORS`, reported in one line on stderr), 130 when
    interrupted. Any other exception is a bug in fnn and propagates with its traceback.
    Printing to a closed or broken stream never fails a run."""
    stream = _output.Output(out if out is not None else sys.stdout)
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = _command(arguments)
    prog = "fnn" if command is None else f"fnn {command}"
    errors = _output.Output(sys.stderr)
    try:
        _import(_imports(arguments))
        args = _parser().parse_args(arguments)
        args.argv = arguments
        return _commands()[args.command](args, stream)
    except USER_ERRORS as err:
        text = str(err)
        if command is not None:  # how to import a module, in this command's own words
            text = text.replace(IMPORT_HINT, f"fnn {command} --import MODULE")
        lines = (printable(line.strip()) for line in text.splitlines())
        errors.write(f"{prog}: error: {' '.join(filter(None, lines))}\n")
        return 2
    except KeyboardInterrupt:
        errors.write(f"{prog}: interrupted\n")
        return 130
