"""``fnn replay RUN``: rerun a recorded run from its ``run.json`` in a new directory and
say whether it repeats bit for bit, or where it parts and what differs (private; see
:mod:`fnn.cli`).

The replay checks the data first (the SHA-256 of its files against the record's), then
trains the run's configuration as the run was trained: in stages where the record says
the run was resumed with another target (``target_changes``) or under other conditions
(``condition_changes``: each stage on the run's ``--threads`` then), each stage stopped
where the run's next began, so a stopped run's replay stops where the run did. It then
compares the replay's record with the run's, epoch by epoch (for a language model,
validation interval by interval): the metrics (every bit of their float64 values) and the
params' fingerprints (``epoch_params_sha256``, where both records hold one), then the
final params' fingerprint. The report names the first epoch that differs, or says
``bit-identical``, and lists the recorded conditions (:mod:`fnn.cli._conditions`) and
versions that differ from the replaying machine's.
"""

from __future__ import annotations

import argparse
import io as _textio
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import data, parallel
from ._conditions import BIT_DECIDING, changes, describe, differences, target_changes
from ._config import Config, UsageError
from ._output import Output, printable
from ._rundir import RUN_FILE, read_run
from ._train import load_data, train

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
"""The metrics of an epoch's record that a replay compares."""


@attrs.frozen
class Stage:
    """One ``fnn train`` of a replay: the target (epochs, or a language model's steps) the
    run had then, the epochs (intervals) after which the stage stops (None: at the
    target), and the ``--threads`` it ran on."""

    target: int
    stop_after: int | None
    threads: int


def stages(record: Mapping[str, Any], config: Config, threads: int | None) -> list[Stage]:
    """The ``fnn train`` calls that retrace a run: a new run, then a resume wherever the
    record says the target or the conditions changed; ``threads`` (``--threads`` given
    to the replay) replaces the recorded thread counts."""
    unit = config.unit
    targets: dict[int, int] = {}
    for change in target_changes(record, unit):
        targets.setdefault(0, change[unit][0])
        targets[change["after"]] = change[unit][1]
    recorded = record.get("conditions")
    first = recorded.get("threads") if isinstance(recorded, dict) else None
    counts = {0: first if isinstance(first, int) else 1}
    for change in changes(record):
        pair = change["changed"].get("threads")
        if pair is not None and isinstance(pair[1], int):
            counts[change["after"]] = pair[1]
    bounds = sorted({0, *targets, *counts})
    done = len(record.get("epochs") or [])
    out: list[Stage] = []
    target, count = targets.get(0, int(config.general[unit])), counts[0]
    for i, begin in enumerate(bounds):
        target = targets.get(begin, target)
        count = counts.get(begin, count)
        end = bounds[i + 1] if i + 1 < len(bounds) else done
        out.append(Stage(target, end, count if threads is None else threads))
    return out


def _check_data(config: Config, record: Mapping[str, Any], args: argparse.Namespace) -> None:
    """Refuse data whose SHA-256 differs from what the run recorded, before training.

    Raises:
        UsageError: naming the data and both checksums.
    """
    recorded = record.get("data")
    recorded = recorded.get("sha256") if isinstance(recorded, dict) else None
    g = config.general
    if "text" in g:
        try:
            text = data.load_text(g["text"], data_dir=args.data_dir, download=not args.no_download)
        except (ValueError, FileNotFoundError) as err:
            raise UsageError(f"the run's text {g['text']}: {err}") from None
        found: Any = text.sha256
        what = f"the text {g['text']}"
    else:
        found = dict(load_data(config, args).sha256)
        what = f"the data of {config.data or g['dataset']}"
    if found != recorded:
        raise UsageError(
            f"{what} differ from the run's (SHA-256 {found}, the run recorded {recorded}): "
            "a replay needs the run's data"
        )


def add_parser(commands: Any, imports: Mapping[str, Any]) -> None:
    """Add ``fnn replay`` to the command's subparsers (``imports``: ``--import``'s
    settings)."""
    cmd = commands.add_parser(
        "replay",
        help="rerun a recorded run and say whether it repeats bit for bit",
        allow_abbrev=False,
    )
    cmd.add_argument("--import", **imports)
    cmd.add_argument("run", type=Path, help="the run directory (its run.json)")
    cmd.add_argument("--out", type=Path, help="where the replay trains (default RUN-replay)")
    cmd.add_argument(
        "--threads", type=int, help="threads per process (default: the run's, as recorded)"
    )
    cmd.add_argument(
        "--shards", type=int, help="another shard count than the run's (to see what it changes)"
    )
    cmd.add_argument("--data-dir", type=Path, help="directory holding the dataset's files")
    cmd.add_argument("--no-download", action="store_true", help="never download the data")
    cmd.add_argument(
        "--timeout", type=float, default=parallel.DEFAULT_TIMEOUT, help="as fnn train's"
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


def replay_command(args: argparse.Namespace, out: Output) -> int:
    """``fnn replay RUN``: 0 when the replay is bit-identical to the run, 1 when it differs
    (the report says where and under which other conditions).

    Raises:
        UsageError: no finished run record, a replay directory that is the run's, data
            that changed, or anything ``fnn train`` refuses.
    """
    source: Path = args.run
    record = read_run(source)
    config = Config.from_json(record.get("config"), str(source / RUN_FILE))
    if not isinstance(record.get("epochs"), list) or not record["epochs"]:
        raise UsageError(
            f"{source / RUN_FILE} records no trained epochs to compare: finish the run with "
            f"fnn train --resume {source} first"
        )
    if args.shards is not None:
        config = config.evolve(shards=args.shards)
    target: Path = args.out or source.with_name(source.name + "-replay")
    if target.resolve() == source.resolve():
        raise UsageError(f"--out {target} is the run's own directory: replay into another")
    _check_data(config, record, args)
    unit = config.unit
    quiet = Output(_textio.StringIO())  # the report is the replay's output
    for i, stage in enumerate(stages(record, config, args.threads)):
        train_args = argparse.Namespace(
            resume=target if i else None,
            out=target,
            epochs=stage.target if unit == "epochs" else None,
            steps=stage.target if unit == "steps" else None,
            stop_after=stage.stop_after,
            threads=stage.threads,
            quiet=args.quiet,
            no_plots=True,
            data_dir=args.data_dir,
            no_download=args.no_download,
            timeout=args.timeout,
            allow_changed_conditions=i > 0,  # the run's own changes, or the replay's --threads
            # its record names the run from the first write on (a replay stopped half-way
            # too), so that fnn compare over a tree holding both counts the run once
            replay_of=str(source.resolve()),
        )
        train(train_args, None if i else config.evolve(**{unit: stage.target}), quiet)
    again = read_run(target)
    text, same = report(record, again, source, target, unit)
    for line in text.splitlines():
        out.write(printable(line) + "\n")
    return 0 if same else 1


def _equal(a: Any, b: Any) -> bool:
    """Whether two recorded metrics are the same float64 (NaN equal to NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and json.dumps(a) == json.dumps(b)


def first_difference(
    recorded: Mapping[str, Any], replayed: Mapping[str, Any]
) -> tuple[int, list[str]] | None:
    """The first epoch (0-based) at which two run records differ, with what differs there
    in words, or None when every epoch and the final params agree."""
    ours, theirs = recorded.get("epochs") or [], replayed.get("epochs") or []
    prints: list[dict[str, Any]] = []
    for r in (recorded, replayed):
        found = r.get("epoch_params_sha256")
        prints.append(found if isinstance(found, dict) else {})
    for i in range(max(len(ours), len(theirs))):
        if i >= len(ours) or i >= len(theirs):
            shorter = "the run" if i >= len(ours) else "the replay"
            return i, [f"{shorter} ends after {i} epochs"]
        what = [
            f"{name} {ours[i].get(name)!r} (recorded) vs {theirs[i].get(name)!r} (replay)"
            for name in METRICS
            if not _equal(ours[i].get(name), theirs[i].get(name))
        ]
        a, b = prints[0].get(str(i)), prints[1].get(str(i))
        if a is not None and b is not None and a != b:
            what.append(f"params sha256 {a[:12]}... (recorded) vs {b[:12]}... (replay)")
        if what:
            return i, what
    a, b = recorded.get("params_sha256"), replayed.get("params_sha256")
    if a != b:
        return len(ours) - 1, [f"the final params sha256 {a} (recorded) vs {b} (replay)"]
    return None


def _where(i: int, replayed: Mapping[str, Any], unit: str) -> str:
    """Epoch ``i`` (0-based) in words: ``epoch 2``, or a language model's interval."""
    if unit == "epochs":
        return f"epoch {i + 1}"
    config = replayed.get("config")
    every, steps = (config.get("eval_every"), config.get("steps")) if config else (None, None)
    if isinstance(every, int) and isinstance(steps, int):
        return f"eval interval {i + 1} (updates {i * every + 1}-{min((i + 1) * every, steps)})"
    return f"eval interval {i + 1}"


def report(
    recorded: Mapping[str, Any], replayed: Mapping[str, Any], source: Path, target: Path, unit: str
) -> tuple[str, bool]:
    """The replay's report and whether it is bit-identical to the run."""
    count = len(recorded.get("epochs") or [])
    intervals = "epochs" if unit == "epochs" else "eval intervals"
    found = first_difference(recorded, replayed)
    lines = [f"replay of {source} in {target}:"]
    if found is None:
        lines[0] += (
            f" bit-identical ({count} {intervals}, params sha256 {recorded.get('params_sha256')})"
        )
    else:
        i, what = found
        lines[0] += f" differs from {_where(i, replayed, unit)} on (of {count} recorded)"
        lines += [f"  {line}" for line in what]
    was = recorded.get("conditions")
    now = replayed.get("conditions")
    changed = differences(
        was if isinstance(was, dict) else {}, now if isinstance(now, dict) else {}
    )
    bits = {k: v for k, v in changed.items() if k in BIT_DECIDING}
    rest = {k: v for k, v in changed.items() if k not in BIT_DECIDING}
    if bits:
        lines.append(
            f"conditions that decide the bits and differ: {describe(bits, 'recorded', 'here')}"
        )
    if rest:
        lines.append(f"other conditions that differ: {describe(rest, 'recorded', 'here')}")
    if not changed:
        lines.append("no recorded condition differs from this machine's")
    versions = [r.get("versions") for r in (recorded, replayed)]
    if isinstance(versions[0], dict) and isinstance(versions[1], dict):
        other = differences(versions[0], versions[1])
        if other:
            lines.append(f"versions that differ: {describe(other, 'recorded', 'here')}")
    if changes(recorded):
        lines.append(
            f"the run itself changed conditions when resumed: {recorded['condition_changes']}"
        )
    return "\n".join(lines), found is None


__all__ = ["METRICS", "Stage", "first_difference", "replay_command", "report", "stages"]
