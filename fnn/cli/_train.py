"""``fnn train``: plan a run, train it, and finish it, from any point (private; see
:mod:`fnn.cli`).

A run goes through three phases, each of which a later ``fnn train --resume DIR`` picks up
where it stopped:

1. **plan**: every option is checked with the library's own checks before any file is
   read or written (:func:`fnn.cli._config.check_config`); then the run directory is
   locked (one writer per directory) and, for a new run, the earlier run's files are
   removed and ``run.json`` records the configuration, the run id and the data's
   checksums;
2. **train**: ``fnn.fit``, with a checkpoint of the whole training state after every
   epoch;
3. **finish**: the test set is evaluated, ``model.npz`` and then ``run.json`` (with the
   results and the params' fingerprint) are written, then the plots; only then is
   anything printed. ``--resume`` of a run whose training is complete does only what is
   left of this phase.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io as _textio
import json
import math
import platform
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np

from .. import (
    __version__,
    callbacks,
    data,
    io,
    losses,
    metrics,
    nn,
    parallel,
    plots,
    runtime,
)
from .. import random as _random
from .. import tree as _tree
from .._types import Array
from ..inference import evaluate, predict_proba
from ..train import (
    Callback,
    EarlyStopping,
    Event,
    NonFiniteLossError,
    TrainState,
    batch_shortfall,
    fit,
    fit_steps,
)
from ._conditions import run_entries
from ._config import (
    Config,
    UsageError,
    build_augment,
    build_model,
    build_optimizer,
    check_config,
    data_info,
)
from ._output import Output, printable
from ._rundir import (
    CHECKPOINTS,
    MODEL_FILE,
    PLOTS,
    RUN_FILE,
    STEPS_FILE,
    check_out,
    checkpoint_of,
    finished,
    forget_run,
    prepare_out,
    read_run,
    run_lock,
    write_json,
)

TRAINING_COPIES = 6
"""How many float32 copies of the parameters training holds at once, about: the params,
their gradient, Adam's two moments, the update and the checkpoint being written."""

RESUME_OPTIONS = frozenset(
    {"--resume", "--epochs", "--steps", "--stop-after", "--threads", "--quiet", "--no-plots"}
    | {"--data-dir", "--no-download", "--import", "--timeout", "--allow-changed-conditions"}
)
"""The options ``--resume`` takes: the rest of the configuration is the run's own."""


@attrs.frozen(eq=False)
class Plan:
    """A checked run: its configuration, its directory and, for ``--resume``, its record."""

    config: Config
    directory: Path
    record: dict[str, Any] | None


def train(args: argparse.Namespace, config: Config | None, out: Output) -> int:
    """``fnn train``; under ``mpirun -n N`` (N > 1) every process trains its shards and
    only process 0 prints and writes; an error on any process aborts them all."""
    try:  # args.alone: one of a sweep's runs, a job of its own in an MPI process
        world = None if getattr(args, "alone", False) else parallel.world()
        comm = parallel.with_timeout(world, args.timeout)
    except ImportError as err:  # started by mpirun without mpi4py
        raise UsageError(str(err)) from None
    except (ValueError, TypeError) as err:
        raise UsageError(f"--timeout: {err}") from None
    lead = parallel.rank_and_size(comm)[0] == 0  # the one process that prints and writes
    report = lambda text: sys.stderr.write(f"fnn train: error on {text}")  # noqa: E731
    with parallel.abort_on_error(comm, report):
        plan = _plan(args, config)  # every option checked before anything is touched
        if not lead:
            return _run(_prepare(plan, args, comm), args, Output(_textio.StringIO()), comm, False)
        check_out(plan.directory)
        if plan.record is not None:  # a run to resume: its directory is there to lock
            with run_lock(plan.directory):
                return _run(_prepare(plan, args, comm), args, out, comm, True)
        ready = _prepare(plan, args, comm)  # the data read, the model checked: no file written
        prepare_out(plan.directory)
        with run_lock(plan.directory):
            return _run(ready, args, out, comm, True)


def _plan(args: argparse.Namespace, config: Config | None) -> Plan:
    """The checked run to train; nothing is written."""
    for option, value in (("--stop-after", args.stop_after), ("--threads", args.threads)):
        if value is not None and not 1 <= value <= 2**31 - 1:
            raise UsageError(f"{option} must be an integer in [1, 2**31), got {value}")
    record = None
    if args.resume is None and getattr(args, "allow_changed_conditions", False):
        raise UsageError("--allow-changed-conditions applies to --resume only")
    if args.resume is None:
        assert config is not None
        directory = args.out or Path("runs") / run_name(config)
    else:
        directory, record = args.resume, read_run(args.resume)
        config = Config.from_json(record.get("config"), str(args.resume / RUN_FILE))
        if args.epochs is not None or args.steps is not None:  # the schedule spans it
            length = config.unit
            given = args.steps if length == "steps" else args.epochs
            if given is None:
                other = "--epochs" if length == "steps" else "--steps"
                raise UsageError(f"{other} does not apply: the run counts {length}")
            config = config.evolve(**{length: given})
    info = data_info(config)
    check_config(config, info)
    if info is not None:  # the model's size, before the data is read
        check_params(build_model(config, info), info.in_shape, runtime.memory_limit())
    return Plan(config, directory, record)


def run_name(config: Config) -> str:
    """The directory under ``runs/`` a run goes to by default: its dataset's name, or its
    text's (a file's name without its suffix)."""
    g = config.general
    return Path(g["text"]).stem if "text" in g else str(g["dataset"])


def load_data(config: Config, args: argparse.Namespace) -> data.Dataset:
    """The dataset of a config: a user's directory (``config.data``) or a named dataset."""
    if config.data is not None:
        return data.load_directory(config.data)
    return data.load_dataset(
        config.general["dataset"], data_dir=args.data_dir, download=not args.no_download
    )


def _check_same_data(config: Config, record: dict[str, Any] | None, sums: dict[str, str]) -> None:
    """On resume, refuse a user's data whose files changed since the run began (a named
    dataset's files are verified by their known checksums when read)."""
    if record is None or config.data is None:
        return
    recorded = record.get("data")
    recorded = recorded.get("sha256") if isinstance(recorded, dict) else None
    if recorded != sums:
        where = config.data or config.general["dataset"]
        raise UsageError(
            f"the data of {where} changed since the run began (SHA-256 of its files {sums}, "
            f"the run recorded {recorded}): resume with the same files"
        )


def check_params(model: nn.Layer[Any, Any], in_shape: tuple[int, ...], memory: int | None) -> int:
    """Refuse a model whose parameters alone would not fit in ``memory`` bytes in training,
    counted from the model's declaration (nothing allocated): training holds about
    :data:`TRAINING_COPIES` float32 copies of them. Returns those bytes.

    Raises:
        UsageError: naming the parameter count, the memory it needs and the limit.
    """
    try:
        shapes = model.shapes(in_shape)
    except (ValueError, TypeError) as err:
        raise UsageError(f"the model cannot take inputs of shape {in_shape}: {err}") from None
    count = _tree.size(shapes.params)
    params = count * 4 * TRAINING_COPIES
    if memory is not None and params > memory:
        raise UsageError(
            f"the model has {count:,} parameters: training it takes about "
            f"{params / 2**30:,.1f} GiB, more than the {memory / 2**30:,.1f} GiB this "
            "process may use; choose a smaller model"
        )
    return params


def check_memory(
    model: nn.Layer[Any, Any], in_shape: tuple[int, ...], batch_size: int, memory: int | None
) -> None:
    """Refuse a model whose training would not fit in ``memory`` bytes, before training:
    its parameters (:func:`check_params`), and what a batch's activations, residuals and
    gradients take, measured by one training step and one inference of two examples
    under ``tracemalloc`` and scaled to ``batch_size`` (and to the 1,024 examples of an
    evaluation chunk).

    Raises:
        UsageError: naming what the training needs and the limit.
    """
    params = check_params(model, in_shape, memory)
    if memory is None:
        return
    key = _random.key(0)
    p, state = model.init(key, in_shape), model.init_state(in_shape)
    reads_floats = model.declared(in_shape).ids is None

    def peak(rows: int, train: bool) -> float:
        """The most memory a training step (or an inference) of ``rows`` examples took."""
        x = np.zeros((rows, *in_shape), np.float32 if reads_floats else np.int64)
        tracemalloc.start()
        try:
            if train:
                y, _, residuals = model.forward(p, x, state, key if model.stochastic else None)
                model.backward(p, residuals, np.ones_like(y), False, _tree.buffers_like(p))
            else:
                model.infer(p, x, state)
            return float(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    # What each example adds (the slope from 2 to 4 examples) and what does not grow.
    per_example, fixed = [], []
    for train in (True, False):
        two, four = peak(2, train), peak(4, train)
        per_example.append(max(four - two, 0.0) / 2)
        fixed.append(max(two - 2 * per_example[-1], 0.0))
    training = fixed[0] + per_example[0] * batch_size
    evaluating = fixed[1] + per_example[1] * 1024
    need = params + max(training, evaluating)
    if need > memory:
        raise UsageError(
            f"training the model on batches of {batch_size} takes about {need / 2**30:,.1f} "
            f"GiB ({per_example[0] / 2**20:,.1f} MiB of activations an example), more than "
            f"the {memory / 2**30:,.1f} GiB this process may use; choose a smaller "
            "--batch-size or model"
        )


@attrs.frozen(eq=False)
class Ready:
    """A run ready to train: its plan, data, model, optimizer and, on resume, the state
    from its checkpoint; nothing of it has been written yet."""

    plan: Plan
    model: nn.Layer[Any, Any]
    info: data.DataInfo
    train_set: tuple[Array, Array]
    test_set: tuple[Array, Array]
    optimizer: Any
    data_record: dict[str, Any]
    state: TrainState[Any, Any] | None
    text: TextRun | None = None


@attrs.frozen(eq=False)
class TextRun:
    """What a language model's run trains on: the training part of its text as ids, the
    validation part cut into windows (None without validation), its vocabulary."""

    train_ids: Array
    validation: tuple[Array, Array] | None
    chars: str
    context: int


def _described(array: Array) -> list[Any]:
    """An array's shape and dtype, as JSON data (what processes compare)."""
    return [list(array.shape), str(array.dtype)]


def _prepare(plan: Plan, args: argparse.Namespace, comm: Any) -> Ready:
    """Read the data and check it, build the model and the optimizer, read the checkpoint
    to resume: everything but writing."""
    config, record = plan.config, plan.record
    g = config.general
    thread_plan(args.threads, g["shards"], comm, resuming=record is not None)
    if "text" in g:
        return _prepare_text(plan, args, comm)
    dataset = load_data(config, args)
    sums = dict(dataset.sha256)
    _check_same_data(config, record, sums)
    in_shape = tuple(dataset.x_train.shape[1:])
    info = data.DataInfo(in_shape, dataset.classes)
    if info.num_classes < 2:
        raise UsageError(f"the dataset has {info.num_classes} class: a classifier needs at least 2")
    model = build_model(config, info)
    check_memory(model, in_shape, g["batch_size"], runtime.memory_limit())
    limit = g.get("limit")
    if limit is not None and limit > len(dataset.x_train):
        raise UsageError(f"--limit {limit} is more than the {len(dataset.x_train)} training images")
    raw_train, y_train = dataset.x_train[:limit], dataset.y_train[:limit]
    raw_test, y_test = dataset.x_test, dataset.y_test
    del dataset  # each uint8 array is let go once its float32 copy is made: a lower peak
    x_train = data.as_float_images(raw_train)
    del raw_train
    x_test = data.as_float_images(raw_test)
    del raw_test
    n_val = round(len(x_train) * g["validation_split"])
    n_fit = len(x_train) - n_val
    if n_fit < 1 or (g["validation_split"] > 0 and n_val < 1):
        part = "training" if n_fit < 1 else "validation"
        raise UsageError(
            f"--validation-split {g['validation_split']} of {len(x_train)} training "
            f"images leaves no {part} images"
        )
    short = batch_shortfall(model, in_shape, n_fit, g["batch_size"], shards=g["shards"])
    if short is not None:  # fit's own check, made before any file is written
        shards = f" with --shards {g['shards']}" if g["shards"] > 1 else ""
        fewer = " or fewer --shards" if g["shards"] > 1 else ""
        raise UsageError(
            f"--batch-size {g['batch_size']}{shards}: {short}: choose another --batch-size"
            f"{fewer} for the {n_fit} training images"
        )
    optimizer = build_optimizer(config, data.num_batches(n_fit, g["batch_size"], False))
    data_record: dict[str, Any] = {"dataset": g["dataset"], "sha256": sums}
    if config.data is not None:
        data_record["directory"] = config.data
    params = model.shapes(in_shape).params
    state = _resumed(plan, args, params, "epochs", lambda st: st.epoch, g["epochs"])
    arrays = [_described(a) for a in (x_train, y_train, x_test, y_test)]
    _agree(
        plan,
        args,
        comm,
        state,
        {"sha256": sums, "classes": list(info.classes), "arrays": arrays},
        params,
    )
    return Ready(
        plan, model, info, (x_train, y_train), (x_test, y_test), optimizer, data_record, state
    )


def _resumed(
    plan: Plan,
    args: argparse.Namespace,
    params: Any,
    unit: str,
    done: Any,
    target: int,
) -> TrainState[Any, Any] | None:
    """The training state to resume (None for a new run), after checking that the target
    (``target`` ``unit``, of which the state has made ``done(state)``) is not below what
    the run has trained, and that ``--stop-after`` leaves something to train."""
    config, directory, record = plan.config, plan.directory, plan.record
    if record is None:
        return None
    state = checkpoint_of(directory, record, config, params)
    made = int(done(state))
    if made > target:  # run.json would record a target the run has passed
        given = f"--{unit} {target}"
        if (args.epochs if unit == "epochs" else args.steps) is None:
            given = f"the target of {directory / RUN_FILE}, {target} {unit},"
        raise UsageError(
            f"{given} is below the {made} {unit} the run has trained; give --{unit} {made} or more"
        )
    every = config.general.get("eval_every") if unit == "steps" else None
    if isinstance(every, int) and made < target and made % every:
        raise UsageError(
            f"--steps {target}: the run ended on a short interval ({made} updates in "
            f"intervals of --eval-every {every}), which more updates cannot continue "
            "bit-identically; train a new run with the steps wanted"
        )
    if args.stop_after is not None and args.stop_after <= state.epoch and made < target:
        raise UsageError(
            f"--stop-after {args.stop_after} leaves nothing to train: the run has trained "
            f"{state.epoch} {'epochs' if unit == 'epochs' else 'intervals'} already"
        )
    return state


def _agree(
    plan: Plan,
    args: argparse.Namespace,
    comm: Any,
    state: TrainState[Any, Any] | None,
    data_facts: dict[str, Any],
    params: Any,
) -> None:
    """Every process the same run, or every process stops saying what differs."""
    resume = None
    if plan.record is not None and state is not None:
        resume = [str(plan.record["run_id"]), state.epoch, _tree.fingerprint(state)]
    parallel.agree(
        comm,
        {
            "config": plan.config.to_json(),
            "stop_after": args.stop_after,
            "data": data_facts,
            "params": [_described(leaf) for leaf in _tree.leaves(params)],
            "resume": resume,
        },
        what="fnn train's setup",
    )


def _prepare_text(plan: Plan, args: argparse.Namespace, comm: Any) -> Ready:
    """:func:`_prepare` for a language model: the text read and split (the first part to
    train on, the last ``validation_split`` cut into windows to validate on), the model
    built for its vocabulary."""
    config, record = plan.config, plan.record
    g = config.general
    try:
        text = data.load_text(g["text"], data_dir=args.data_dir, download=not args.no_download)
    except ValueError as err:
        raise UsageError(f"--text {g['text']}: {err}") from None
    except FileNotFoundError as err:
        raise UsageError(
            f"--text {g['text']} is not found ({err}); give the directory that holds it with "
            "--data-dir, or a path"
        ) from None
    if record is not None:
        recorded = record.get("data")
        recorded = recorded.get("sha256") if isinstance(recorded, dict) else None
        if recorded != text.sha256:
            raise UsageError(
                f"the text {g['text']} changed since the run began (SHA-256 {text.sha256}, "
                f"the run recorded {recorded}): resume with the same text"
            )
    context = int(config.model["context"])
    info = data.DataInfo((context,), tuple(text.chars))
    model = build_model(config, info)
    check_memory(model, (context,), g["batch_size"], runtime.memory_limit())
    fraction = 1 - g["validation_split"]
    train_ids, val_ids = data.split_text(text.ids, fraction) if fraction < 1 else (text.ids, None)
    for part, ids in (("training", train_ids), ("validation", val_ids)):
        if ids is not None and len(ids) < context + 1:
            raise UsageError(
                f"--validation-split {g['validation_split']} of the {len(text.ids)} characters "
                f"of {g['text']} leaves {len(ids)} for {part}, fewer than a window of "
                f"--context {context} + 1"
            )
    validation = None if val_ids is None else data.fixed_windows(val_ids, context)
    optimizer = build_optimizer(config, 1)
    data_record = {"text": g["text"], "sha256": text.sha256, "characters": len(text.ids)}
    params = model.shapes((context,)).params
    state = _resumed(plan, args, params, "steps", lambda st: st.step, g["steps"])
    facts = {"sha256": text.sha256, "chars": text.chars}
    _agree(plan, args, comm, state, facts, params)
    empty = np.empty((0, context), np.int64)
    run = TextRun(train_ids, validation, text.chars, context)
    return Ready(
        plan, model, info, (empty, empty), (empty, empty), optimizer, data_record, state, run
    )


def _run(ready: Ready, args: argparse.Namespace, out: Output, comm: Any, lead: bool) -> int:
    plan, model, state = ready.plan, ready.model, ready.state
    config, directory, record = plan.config, plan.directory, plan.record
    g = config.general
    workers, blas = thread_plan(args.threads, g["shards"], comm, resuming=record is not None)
    if not runtime.set_blas_threads(blas):
        out.write("note: NumPy's BLAS is not OpenBLAS; --threads had no effect on it\n")
    runtime.keep_freed_memory()  # where glibc is: no page faults for each step's arrays
    data_record = ready.data_record
    entries = run_entries(record, state, config, args, comm)  # a refusal writes nothing
    if record is not None and state is not None:
        run_id = str(record["run_id"])
        unit, made = ("step", state.step) if ready.text else ("epoch", state.epoch)
        total = g[f"{unit}s"]
        done = state.stopped or made >= total
        out.write(
            f"resuming {printable(str(directory))} after {unit} {made} of "
            f"{total}{' (training complete)' if done else ''}\n"
        )
    else:
        run_id = uuid.uuid4().hex
    if lead:
        begun = {
            **(record or {}),
            "config": config.to_json(),
            "seed": g["seed"],
            "run_id": run_id,
            "data": data_record,
            **entries,
        }
        replay_of = getattr(args, "replay_of", None)  # fnn replay's runs say so from the start
        if replay_of is not None:
            begun["replay_of"] = replay_of
        if record is None:
            forget_run(directory)
        if record is None or record != begun:
            write_json(directory / RUN_FILE, begun)  # the target a later --resume resumes to
        record = begun

    times = callbacks.EpochTimes()
    prints = callbacks.Fingerprints()
    hooks: list[Callback] = [times, prints]
    checkpoints = directory / CHECKPOINTS
    earlier = _progress(checkpoints / callbacks.LAST, state)
    prints.sha256.update(earlier.sha256)
    times.seconds.update(earlier.seconds)
    if lead:
        identity = {"run_id": run_id, "config": config.to_json()}

        def metadata(event: Event) -> dict[str, Any]:
            """The run's identity, and what a resume needs of the epochs so far (after a
            kill, too): their fingerprints and times, and the training's wall time."""
            return {
                **identity,
                "epoch_params_sha256": {str(e): v for e, v in prints.sha256.items()},
                "epoch_seconds": {str(e): v for e, v in times.seconds.items()},
                "wall_seconds": earlier.wall + (time.perf_counter() - began),
            }

        hooks.append(callbacks.checkpoint(checkpoints, metadata=metadata))
    if lead and g.get("log_every"):  # saved before each checkpoint: resumed with it
        hooks[1:1] = _step_hooks(directory, g["log_every"], state)
    if lead and not args.quiet:
        hooks.append(callbacks.progress_bar(stream=Output(sys.stderr)))  # type: ignore[arg-type]
    stop = EarlyStopping(patience=g["patience"]) if g.get("patience", 0) > 0 else None
    began = time.perf_counter()  # the training's (the checkpoints' metadata reads it)
    try:
        if ready.text is not None:
            final = _fit_text(ready, args, comm, workers, hooks)
        else:
            final = fit(
                model,
                losses.softmax_cross_entropy,
                ready.optimizer,
                *ready.train_set,
                key=_random.key(g["seed"]),
                epochs=min(g["epochs"], args.stop_after or g["epochs"]),
                batch_size=g["batch_size"],
                validation_split=g["validation_split"],
                early_stopping=stop,
                state=state,
                augment=build_augment(config),
                shards=g["shards"],
                comm=comm,
                threads=workers,
                callbacks=hooks,
            )
    except NonFiniteLossError as err:
        last = checkpoints / callbacks.LAST
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint yet"
        raise NonFiniteLossError(f"training diverged: {err}; {kept}") from None
    wall = earlier.wall + (time.perf_counter() - began)
    return _finish(ready, args, out, comm, lead, final, record, (times, prints), wall)


class Progress(NamedTuple):
    """What a run's checkpoint says of the epochs (intervals) before it."""

    sha256: dict[int, str]  # the params' fingerprint after each
    seconds: dict[int, float]  # each one's wall time
    wall: float  # the training's wall time up to the checkpoint, over all its stages


def _progress(path: Path, state: TrainState[Any, Any] | None) -> Progress:
    """The fingerprints, times and wall time stored with the checkpoint ``path`` that
    ``state`` was resumed from, for the epochs it has made (none for a new run, or a
    checkpoint written before fnn kept them there)."""
    if state is None or not path.is_file():
        return Progress({}, {}, 0.0)
    meta = io.load_metadata(path)

    def entries(name: str, kind: type | tuple[type, ...]) -> dict[int, Any]:
        found = meta.get(name)
        if not isinstance(found, dict):
            return {}
        return {
            int(k): v
            for k, v in found.items()
            if k.isdigit()
            and int(k) < state.epoch
            and isinstance(v, kind)
            and not isinstance(v, bool)
        }

    found = meta.get("wall_seconds")
    wall = float(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else 0.0
    return Progress(
        entries("epoch_params_sha256", str),
        {e: float(v) for e, v in entries("epoch_seconds", (int, float)).items()},
        wall if math.isfinite(wall) and wall >= 0 else 0.0,
    )


def _step_hooks(directory: Path, every: int, state: TrainState[Any, Any] | None) -> list[Callback]:
    """``--log-every``: a :class:`fnn.callbacks.StepLosses` (holding the records of the
    updates ``state`` has made, on resume) and a callback writing its records to
    ``checkpoints/steps.json`` at each epoch's end."""
    kept = {}
    path = directory / CHECKPOINTS / STEPS_FILE
    if state is not None and path.is_file():
        done = state.step
        kept = {int(s): float(v) for s, v in _step_record(path) if int(s) <= done}
    record = callbacks.StepLosses(every, kept)

    def save(event: Event) -> None:
        if event.kind == "epoch_end":
            write_json(path, sorted(record.losses.items()))

    return [record, save]


def _step_record(path: Path) -> list[Any]:
    """The records of ``checkpoints/steps.json``: ``[[update, mean loss], ...]``.

    Raises:
        UsageError: a file that holds something else.
    """
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p)
            for p in found
        ):
            return found
    except (ValueError, UnicodeDecodeError):
        pass
    raise UsageError(f"{path} does not hold fnn train's --log-every records")


def _fit_text(
    ready: Ready, args: argparse.Namespace, comm: Any, workers: int, hooks: list[Callback]
) -> TrainState[Any, Any]:
    """A language model's training: ``steps`` updates on random windows of the text
    (``--stop-after N``: the first ``N`` validation intervals), the whole validation part
    evaluated after each interval."""
    g, text = ready.plan.config.general, ready.text
    assert text is not None
    every, steps = g["eval_every"], g["steps"]
    if args.stop_after is not None:
        steps = min(steps, args.stop_after * every)
    ids, context, batch = text.train_ids, text.context, g["batch_size"]
    return fit_steps(
        ready.model,
        losses.softmax_cross_entropy,
        ready.optimizer,
        lambda key: data.random_windows(key, ids, context, batch),
        key=_random.key(g["seed"]),
        steps=steps,
        eval_every=every,
        validation_data=text.validation,
        state=ready.state,
        shards=g["shards"],
        comm=comm,
        threads=workers,
        callbacks=hooks,
    )


def _finish(
    ready: Ready,
    args: argparse.Namespace,
    out: Output,
    comm: Any,
    lead: bool,
    final: TrainState[Any, Any],
    record: dict[str, Any] | None,
    logs: tuple[callbacks.EpochTimes, callbacks.Fingerprints],
    wall: float,
) -> int:
    """The final phase: what is left of evaluating, writing ``model.npz`` and ``run.json``
    and drawing the plots, then the report, printed last."""
    times, prints = logs
    plan, model, info = ready.plan, ready.model, ready.info
    directory, config = plan.directory, plan.config
    fingerprint = _tree.fingerprint(final.params)
    previous = read_run(directory) if (directory / RUN_FILE).is_file() else {}
    matrix = None
    done = finished(directory, previous, fingerprint)  # a finished run's files are kept
    if not done:
        if ready.text is None:
            results, matrix, metadata = _image_results(ready, comm, final)
        else:
            results, metadata = _text_results(ready, final), _text_metadata(ready)
        if not lead:
            return 0
        io.save_model(
            directory / MODEL_FILE,
            model,
            final.params,
            in_shape=info.in_shape,
            model_state=final.model_state,
            metadata=metadata,
        )
        timing = previous.get("timing") if isinstance(previous.get("timing"), dict) else {}
        earlier = timing.get("epoch_seconds") if isinstance(timing, dict) else None
        known = previous.get("epoch_params_sha256")
        fingerprints = {
            **(known if isinstance(known, dict) else {}),
            **{str(e): s for e, s in prints.sha256.items()},
        }
        previous = {
            **(record or previous),
            "versions": _versions(),
            "epochs": [attrs.asdict(r) for r in final.history],
            "epoch_params_sha256": {
                e: s for e, s in fingerprints.items() if e.isdigit() and int(e) < final.epoch
            },
            "stopped_early": final.stopped,
            **results,
            "params_sha256": fingerprint,
            **_steps_result(directory, config),
            "timing": {
                "epoch_seconds": {
                    **(earlier if isinstance(earlier, dict) else {}),
                    **{str(e): s for e, s in times.seconds.items()},
                },
                "wall_seconds": wall,
            },
        }
        write_json(directory / RUN_FILE, previous)
        redraw = True
    elif lead:
        kept = previous.get("confusion_matrix")
        matrix, redraw = (None if kept is None else np.asarray(kept)), False
    if not lead:
        return 0
    every = None if ready.text is None else config.general["eval_every"]
    _plots(directory, args, out, final, matrix, info, redraw, every)
    seconds = {int(k): v for k, v in previous.get("timing", {}).get("epoch_seconds", {}).items()}
    g = config.general
    steps = None if ready.text is None else (g["eval_every"], g["steps"])
    out.write(callbacks.history_table(final.history, seconds, steps=steps) + "\n")
    if ready.text is None:
        test_result = previous["test"]
        out.write(
            f"test accuracy {test_result['accuracy']:.4f}  test loss {test_result['loss']:.4f}\n"
        )
    else:
        found = previous["validation"]
        out.write(
            f"validation loss {found['loss']:.4f} ({found['bits_per_character']:.4f} bits per "
            "character)\n"
        )
    verb = "kept (the run was finished)" if done else "wrote"
    out.write(printable(f"{verb} {directory / MODEL_FILE}, {directory / RUN_FILE}") + "\n")
    return 0


def _steps_result(directory: Path, config: Config) -> dict[str, Any]:
    """``--log-every K``'s entry of ``run.json``: ``{"steps": {"every": K, "loss": [[update,
    mean loss of the K updates ending there], ...]}}``; nothing without it."""
    every = config.general.get("log_every")
    if not every:
        return {}
    path = directory / CHECKPOINTS / STEPS_FILE
    return {"steps": {"every": every, "loss": _step_record(path) if path.is_file() else []}}


def _image_results(
    ready: Ready, comm: Any, final: TrainState[Any, Any]
) -> tuple[dict[str, Any], Array, dict[str, Any]]:
    """A classifier's test results (each process evaluates its share of the chunks), its
    confusion matrix and its model file's metadata."""
    x_test, y_test = ready.test_set
    model, info, config = ready.model, ready.info, ready.plan.config
    test = evaluate(
        model,
        losses.softmax_cross_entropy,
        final.params,
        x_test,
        y_test,
        model_state=final.model_state,
        comm=comm,
    )
    probs = predict_proba(model, final.params, x_test, model_state=final.model_state)
    matrix = metrics.confusion_matrix(y_test, probs.argmax(axis=1), info.num_classes)
    results = {
        "test": {"loss": test.loss, "accuracy": test.accuracy},
        "confusion_matrix": matrix.tolist(),
    }
    metadata = {
        "dataset": config.general["dataset"],
        "data": config.data,
        "classes": list(info.classes),
    }
    return results, matrix, metadata


def _text_results(ready: Ready, final: TrainState[Any, Any]) -> dict[str, Any]:
    """A language model's results: its loss on the whole validation part, measured after
    the last update (NaN without validation), in nats and in bits per character, and the
    last interval's training loss."""
    last = final.history[-1]
    return {
        "validation": {"loss": last.val_loss, "bits_per_character": last.val_loss / math.log(2)},
        "train_loss": last.loss,
    }


def _text_metadata(ready: Ready) -> dict[str, Any]:
    """What ``fnn evaluate`` and ``fnn generate`` need of a language model's text: its
    name (or path), vocabulary, checksum and validation split."""
    assert ready.text is not None
    g = ready.plan.config.general
    return {
        "text": g["text"],
        "chars": ready.text.chars,
        "sha256": ready.data_record["sha256"],
        "validation_split": g["validation_split"],
    }


def _plots(
    directory: Path,
    args: argparse.Namespace,
    out: Output,
    final: TrainState[Any, Any],
    matrix: Array | None,
    info: data.DataInfo,
    redraw: bool,
    updates: int | None = None,
) -> None:
    """Draw the run's curves and (for a classifier) confusion matrix (those missing,
    unless ``redraw``); ``updates``: a language model's updates per record."""
    if args.no_plots:
        return
    paths = [directory / name for name in PLOTS][: 1 if matrix is None else 2]
    if not redraw and all(p.is_file() for p in paths):
        return
    try:
        plots.history(final.history, paths[0], updates=updates)
        if matrix is not None:
            plots.confusion_matrix(matrix, paths[1], list(info.classes))
    except plots.PlottingUnavailableError as err:
        out.write(f"note: {err}\n")


def thread_plan(threads: int, shards: int, comm: Any, *, resuming: bool = False) -> tuple[int, int]:
    """:func:`fnn.parallel.thread_plan` for ``--threads`` and ``--shards``.

    Raises:
        UsageError: the processes of ``comm`` do not divide ``shards`` (saying what to do:
            another ``--shards`` for a new run; for a resumed run, whose shards are part of
            its configuration, a process count that divides them).
    """
    try:
        return parallel.thread_plan(threads, shards, comm)
    except ValueError as err:
        size = parallel.rank_and_size(comm)[1]
        fix = (
            f"resume it on a number of processes that divides its {shards} shards"
            if resuming
            else f"on {size} processes give --shards {size} or a multiple of it (one shard "
            "is the default)"
        )
        raise UsageError(f"--shards {shards}: {err}; {fix}") from None


def _versions() -> dict[str, str]:
    return {
        "fnn": __version__,
        "numpy": np.__version__,
        "attrs": importlib.metadata.version("attrs"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


__all__ = [
    "RESUME_OPTIONS",
    "TRAINING_COPIES",
    "Plan",
    "Ready",
    "TextRun",
    "check_memory",
    "check_params",
    "load_data",
    "run_name",
    "thread_plan",
    "train",
]
