"""Summaries of run directories: grouped by the options that differ, mean ± standard
deviation over seeds (private; see :mod:`fnn.experiments`)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .._atomic import write_bytes_atomic
from ._sweep import RUN_FILE, SweepError, records_of

METRICS = {
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
    "best_val_accuracy": "best val accuracy",
    "best_val_loss": "best val loss",
    "seconds": "seconds",
}
"""What a summary gives per setting, by name, with the heading of its column."""


@attrs.frozen(eq=False)
class RunRecord:
    """A run directory and its ``run.json``."""

    directory: Path
    record: Mapping[str, Any]


@attrs.frozen
class Stat:
    """A metric over the seeds of a setting: the mean, the sample standard deviation
    (``ddof=1``; NaN for one seed) and how many seeds had it (NaN for none)."""

    mean: float
    std: float
    count: int

    def text(self, digits: int = 4) -> str:
        """``0.8123 ± 0.0042``, ``0.8123`` for one seed, ``-`` for none."""
        if self.count == 0:
            return "-"
        if self.count == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@attrs.frozen(eq=False)
class Setting:
    """The runs of one setting (one value of each option that differs).

    Attributes:
        options: ``{option: value}`` of the options that differ between the settings.
        runs: the runs, in the order given.
        seeds: their seeds (None where a record has none).
        stats: ``{metric: Stat}`` for each of :data:`METRICS`.
    """

    options: Mapping[str, Any]
    runs: tuple[RunRecord, ...]
    seeds: tuple[int | None, ...]
    stats: Mapping[str, Stat]

    @property
    def label(self) -> str:
        """``optimizer=adam lr=0.001`` (``all runs`` when no option differs)."""
        return " ".join(f"{k}={_shown(v)}" for k, v in self.options.items()) or "all runs"


@attrs.frozen(eq=False)
class Summary:
    """Runs grouped by setting.

    Attributes:
        differing: the options whose values differ between runs (seeds aside); a
            setting shows ``-`` for an option its runs do not record.
        settings: one :class:`Setting` per distinct combination, in first-seen order.
    """

    differing: tuple[str, ...]
    settings: tuple[Setting, ...]

    def metrics(self) -> list[str]:
        """The metrics some run has (of :data:`METRICS`)."""
        return [m for m in METRICS if any(s.stats[m].count for s in self.settings)]


def find_runs(paths: Sequence[str | os.PathLike[str]]) -> list[RunRecord]:
    """The runs under ``paths``: a directory holding ``run.json`` is a run; any other
    directory (a sweep's) is searched for runs below it, in name order, leaving out a
    replay found there beside the run it replays (its record's ``replay_of``, which
    ``fnn replay`` writes, names a run found too: the same run again, not another seed).

    Raises:
        SweepError: a path that is not a directory, a directory with no run, or a
            ``run.json`` that is not a JSON object.
    """
    found: list[RunRecord] = []
    for each in paths:
        path = Path(each)
        if not path.is_dir():
            raise SweepError(f"{path} is not a directory")
        if (path / RUN_FILE).is_file():
            found.append(RunRecord(path, records_of(path)))
            continue
        runs = [RunRecord(d, records_of(d)) for d in sorted(p.parent for p in path.rglob(RUN_FILE))]
        if not runs:
            raise SweepError(f"{path} holds no {RUN_FILE}: not a run or a sweep directory")
        here = {r.directory.resolve() for r in runs}
        found.extend(r for r in runs if _replayed(r.record) not in here)
    return found


def _replayed(record: Mapping[str, Any]) -> Path | None:
    """The run a replay's record names (``replay_of``), resolved; None for another run."""
    source = record.get("replay_of")
    return Path(source).resolve() if isinstance(source, str) and source else None


def summarize(runs: Sequence[RunRecord]) -> Summary:
    """Group runs by the options that differ between them (a run's ``config``, its
    ``seed`` aside; an option only some runs record, such as an optimizer's own, differs
    when two runs that record it hold different values; a run without it has a value of
    its own, ``-``) and
    give per setting the mean, standard deviation and count over its runs of each of
    :data:`METRICS`: ``test.accuracy``, ``test.loss``, the best (highest) validation
    accuracy and best (lowest) validation loss of its ``epochs``, and
    ``timing.wall_seconds``.

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("summarize needs at least one run")
    configs = [_config(r.record) for r in runs]
    names: list[str] = []
    for config in configs:
        names += [k for k in config if k not in names]
    differing = tuple(n for n in names if len({_key(c[n]) for c in configs if n in c}) > 1)
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        key = _key([[n in config, config.get(n)] for n in differing])
        groups.setdefault(key, []).append(i)
    settings = []
    for members in groups.values():
        first = configs[members[0]]
        options = {n: first.get(n, "-") for n in differing}
        chosen = tuple(runs[i] for i in members)
        seeds = tuple(_seed(r.record) for r in chosen)
        values = [_metrics(r.record) for r in chosen]
        stats = {m: _stat([v[m] for v in values]) for m in METRICS}
        settings.append(Setting(options, chosen, seeds, stats))
    return Summary(differing, tuple(settings))


def _config(record: Mapping[str, Any]) -> dict[str, Any]:
    config = record.get("config")
    found = dict(config) if isinstance(config, Mapping) else {}
    found.pop("seed", None)
    return found


def _seed(record: Mapping[str, Any]) -> int | None:
    config = record.get("config")
    seed = record.get("seed", config.get("seed") if isinstance(config, Mapping) else None)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda v: f"<{id(v)}>")


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _number(value: Any) -> float:
    """A finite float, or NaN for anything else (absent, null, text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


def _get(record: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        record = record.get(key) if isinstance(record, Mapping) else None  # type: ignore[assignment]
    return record


def curve(record: Mapping[str, Any], metric: str) -> list[float]:
    """A run's ``metric`` per epoch (``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``) from its ``epochs``, NaN where absent."""
    epochs = record.get("epochs")
    if not isinstance(epochs, list):
        return []
    return [_number(e.get(metric)) if isinstance(e, Mapping) else math.nan for e in epochs]


def _metrics(record: Mapping[str, Any]) -> dict[str, float]:
    val_acc = [v for v in curve(record, "val_accuracy") if not math.isnan(v)]
    val_loss = [v for v in curve(record, "val_loss") if not math.isnan(v)]
    return {
        "test_accuracy": _number(_get(record, "test", "accuracy")),
        "test_loss": _number(_get(record, "test", "loss")),
        "best_val_accuracy": max(val_acc) if val_acc else math.nan,
        "best_val_loss": min(val_loss) if val_loss else math.nan,
        "seconds": _number(_get(record, "timing", "wall_seconds")),
    }


def _stat(values: Sequence[float]) -> Stat:
    kept = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if kept.size == 0:
        return Stat(math.nan, math.nan, 0)
    std = float(kept.std(ddof=1)) if kept.size > 1 else math.nan
    return Stat(float(kept.mean()), std, int(kept.size))


def _rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    metrics = summary.metrics()
    header = [*summary.differing, "runs", *(METRICS[m] for m in metrics)]
    rows = []
    for s in summary.settings:
        digits = {"seconds": 2}
        cells = [s.stats[m].text(digits.get(m, 4)) for m in metrics]
        rows.append([*(_shown(s.options[n]) for n in summary.differing), str(len(s.runs)), *cells])
    return header, rows


def table(summary: Summary) -> str:
    """The summary as a plain-text table: a column per differing option, the runs'
    count, and ``mean ± std`` of each metric some run has."""
    header, rows = _rows(summary)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def markdown_table(summary: Summary) -> str:
    """The summary as a Markdown table (the cells of :func:`table`)."""
    header, rows = _rows(summary)
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in lines)


def write_csv(summary: Summary, path: str | os.PathLike[str]) -> Path:
    """Write the summary as CSV, atomically: a row per setting, a column per differing
    option, ``runs``, ``seeds`` (space-separated), and ``<metric>_mean``,
    ``<metric>_std`` and ``<metric>_count`` for every metric of :data:`METRICS`
    (empty where not a number). Returns the path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    stats = [f"{m}_{part}" for m in METRICS for part in ("mean", "std", "count")]
    writer.writerow([*summary.differing, "runs", "seeds", *stats])
    for s in summary.settings:
        numbers = []
        for m in METRICS:
            stat = s.stats[m]
            numbers += [_cell(stat.mean), _cell(stat.std), str(stat.count)]
        seeds = " ".join("" if x is None else str(x) for x in s.seeds)
        options = [_shown(s.options[n]) for n in summary.differing]
        writer.writerow([*options, len(s.runs), seeds, *numbers])
    return write_bytes_atomic(path, buffer.getvalue().encode())


def _cell(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


__all__ = [
    "METRICS",
    "RunRecord",
    "Setting",
    "Stat",
    "Summary",
    "curve",
    "find_runs",
    "markdown_table",
    "plot_curves",
    "plot_finals",
    "summarize",
    "table",
    "write_csv",
]


def plot_curves(summary: Summary, path: str | os.PathLike[str]) -> Path | None:
    """Draw per setting the validation accuracy per epoch (the training loss for runs
    without validation) as the mean over seeds with a band of one standard deviation
    (:func:`fnn.plots.bands`). Returns the path, or None when no run has epochs.

    Raises:
        fnn.plots.PlottingUnavailableError: matplotlib is not installed.
    """
    from .. import plots

    for metric, label in (("val_accuracy", "validation accuracy"), ("loss", "training loss")):
        curves = {
            s.label: [c for c in (curve(r.record, metric) for r in s.runs) if _measured(c)]
            for s in summary.settings
        }
        curves = {k: v for k, v in curves.items() if v}
        if curves:
            return plots.bands(curves, path, ylabel=label, log_scale=metric == "loss")
    return None


def _measured(values: Sequence[float]) -> bool:
    return bool(values) and not all(math.isnan(v) for v in values)


def plot_finals(summary: Summary, path: str | os.PathLike[str]) -> Path | None:
    """Draw per setting each seed's test accuracy as a dot and their mean ± standard
    deviation (:func:`fnn.plots.dots`). Returns the path, or None when no run has one.

    Raises:
        fnn.plots.PlottingUnavailableError: matplotlib is not installed.
    """
    from .. import plots

    values = {
        s.label: [v for v in (_metrics(r.record)["test_accuracy"] for r in s.runs) if v == v]
        for s in summary.settings
    }
    values = {k: v for k, v in values.items() if v}
    return plots.dots(values, path, ylabel="test accuracy") if values else None
