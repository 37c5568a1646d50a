from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fnn import plots
from fnn.train import EpochMetrics
from tests.support.optional import needs_matplotlib

RECORDS = [EpochMetrics(0, 0.9, 0.7, 0.8, 0.72), EpochMetrics(1, 0.5, 0.85, 0.6, 0.8)]


@needs_matplotlib
def test_history_and_confusion_plots_are_pngs(tmp_path: Path) -> None:
    curves = plots.history(RECORDS, tmp_path / "curves.png")
    matrix = np.array([[5, 1], [2, 7]])
    confusion = plots.confusion_matrix(matrix, tmp_path / "confusion.png", ["cat", "dog"])
    for path in (curves, confusion):
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "curves.png"]


def test_bad_plot_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one epoch"):
        plots.history([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="square confusion matrix"):
        plots.confusion_matrix(np.zeros((2, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="expected 2 class names, got 1"):
        plots.confusion_matrix(np.zeros((2, 2)), tmp_path / "x.png", ["a"])


def test_without_matplotlib_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(plots.PlottingUnavailableError, match=r"pip install 'fnn\[plot\]'"):
        plots.history(RECORDS, tmp_path / "curves.png")
    assert not list(tmp_path.iterdir())


@needs_matplotlib
def test_compare_runs(tmp_path: Path) -> None:
    other = [EpochMetrics(0, 1.2, 0.6), EpochMetrics(1, 0.7, 0.8)]
    path = plots.compare({"sgd": RECORDS, "adam": other}, tmp_path / "c.png", metric="accuracy")
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="at least one run"):
        plots.compare({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        plots.compare({"a": RECORDS}, tmp_path / "x.png", metric="f1")


@needs_matplotlib
def test_bands_and_dots_are_pngs(tmp_path: Path) -> None:
    curves = {"adam": [[0.5, 0.7], [0.6, 0.8, 0.9]], "sgd": [[0.4, float("nan")]]}
    drawn = plots.bands(curves, tmp_path / "bands.png", ylabel="accuracy")
    dotted = plots.dots({"adam": [0.8, 0.9, 0.85], "sgd": [0.7]}, tmp_path / "dots.png",
                        ylabel="test accuracy")  # fmt: skip
    for path in (drawn, dotted):
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="bands needs at least one label"):
        plots.bands({"adam": [[]]}, tmp_path / "x.png", ylabel="a")
    with pytest.raises(ValueError, match="dots needs at least one label"):
        plots.dots({"adam": []}, tmp_path / "x.png", ylabel="a")
    assert not (tmp_path / "x.png").exists()


@needs_matplotlib
def test_dots_bars_leave_nan_out_as_bands_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seed whose value is NaN (a run without that metric) is left out of the bar's mean
    and spread, not turned into a NaN bar."""
    import matplotlib.axes

    drawn: list[tuple[float, float]] = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self: Any, x: Any, y: Any, yerr: Any = None, **kw: Any) -> Any:
        drawn.append((float(np.ravel(y)[0]), float(np.ravel(yerr)[0])))
        return original(self, x, y, yerr=yerr, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    plots.dots({"adam": [0.8, float("nan"), 0.9], "sgd": [0.7]}, tmp_path / "d.png", ylabel="a")
    assert drawn[0][0] == pytest.approx(0.85) and drawn[0][1] == pytest.approx(0.0707, abs=1e-4)
    assert drawn[1] == (0.7, 0.0)


@needs_matplotlib
def test_a_normalised_matrix_and_a_partial_validation_curve_are_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fractions are labelled as fractions (every cell read 0 before), a NaN row (a class
    without examples) as nan; compare draws a validation curve with a NaN in it, as
    history does, rather than leaving the whole curve out."""
    from matplotlib.axes import Axes

    shown: list[str] = []
    real_text = Axes.text

    def text(self: Any, x: float, y: float, s: str, *args: Any, **kwargs: Any) -> Any:
        shown.append(s)
        return real_text(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(Axes, "text", text)
    plots.confusion_matrix(np.array([[0.75, 0.25], [np.nan, np.nan]]), tmp_path / "m.png")
    assert shown == ["0.75", "0.25", "nan", "nan"]
    partial = [EpochMetrics(0, 1.0, 0.5, float("nan"), 0.5), EpochMetrics(1, 0.8, 0.6, 0.9, 0.6)]
    lines: list[int] = []
    real_save = plots._save

    def save(figure: Any, path: Any) -> Any:
        lines.append(len(figure.axes[0].lines))
        return real_save(figure, path)

    monkeypatch.setattr(plots, "_save", save)
    plots.compare({"a": partial}, tmp_path / "c.png")
    assert lines == [2]  # train and validation


def test_import_fnn_brings_plots_without_matplotlib() -> None:
    """The README writes fnn.plots.history(...) after import fnn; matplotlib itself is
    imported at the first plot, not by import fnn."""
    import subprocess

    code = "import sys, fnn; print(callable(fnn.plots.history), 'matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]
