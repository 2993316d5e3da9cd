"""Training-dynamics panels (Figures 2, 4, 5, 6): metric vs step, mean over seeds with a band.

Each series is an experiment; each seed's curve is smoothed (figures.style.ema), then averaged over
the seeds present at each step; the band spans the smoothed seeds' minimum to maximum (only where
>= 2 seeds have the step; a range stays positive on the log-scale gradient-norm axis). Every figure is written as PDF (vector, fonts embedded) and PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd

from figures import style
from figures.results import load_training_curves
from figures.spec import SeriesSpec, figure_series, not_run_note
from tgpo.results.io import atomic_path

STEP_LABEL = "Training step"


@dataclass(frozen=True)
class Panel:
    metric: str  # metrics.jsonl key, e.g. "critic/score/mean"
    title: str  # e.g. "Training reward"
    ylabel: str  # with the unit, e.g. "Response length (tokens)"
    log_y: bool = False


SCORE = Panel("critic/score/mean", "Training reward", "Mean verifier reward (0-1)")
LENGTH = Panel("response_length/mean", "Response length", "Mean response length (tokens)")
GRAD_NORM = Panel("actor/grad_norm", "Gradient norm", "Gradient L2 norm (log scale)", log_y=True)
GUIDANCE_WEIGHT = Panel("tgpo/guidance_weight", "Guidance weight", "Guidance weight $w_t$")


@dataclass
class Curve:
    """One series on one metric: steps [S], smoothed mean [S], band min/max over seeds [S], raw mean [S]."""

    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    raw: np.ndarray
    n_seeds: int


def curve_of(label: str, long: pd.DataFrame, metric: str, smooth: bool = True) -> Curve:
    """Aggregate a long frame (step, seed, metric, value) of one experiment into a Curve."""
    table = long[long["metric"] == metric].pivot_table(index="step", columns="seed", values="value", aggfunc="mean")
    table = table.sort_index()
    smoothed = (
        table.apply(lambda column: pd.Series(style.ema(column.to_numpy()), index=column.index)) if smooth else table
    )
    smoothed = smoothed.where(table.notna())  # no values past a seed's last step
    counts = smoothed.notna().sum(axis=1).to_numpy()
    several = counts >= 2
    low = np.where(several, smoothed.min(axis=1).to_numpy(), np.nan)
    high = np.where(several, smoothed.max(axis=1).to_numpy(), np.nan)
    return Curve(
        label,
        table.index.to_numpy(),
        smoothed.mean(axis=1).to_numpy(),
        low,
        high,
        table.mean(axis=1).to_numpy(),
        int(table.shape[1]),
    )


def draw(ax, curves: Sequence[Curve], panel: Panel, *, legend_lines: bool = True) -> None:
    """Draw curves on `ax`: the min-max band over seeds (when several) and the smoothed mean."""
    for curve in curves:
        colour = style.colour_of(curve.label)
        if np.isfinite(curve.low).any():
            ax.fill_between(curve.steps, curve.low, curve.high, color=colour, alpha=0.18, linewidth=0)
        ax.plot(curve.steps, curve.mean, color=colour, label=curve.label if legend_lines else None)
    ax.set_title(panel.title)
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(panel.ylabel)
    if panel.log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.margins(x=0)


def ordered_series(series: Sequence[SeriesSpec]) -> list[SeriesSpec]:
    return [series[index] for index in style.in_method_order([entry.label for entry in series])]


def load_series_curves(
    output: str, spec: Mapping, runs_dir: str | Path, panels: Sequence[Panel]
) -> list[dict[str, Curve]]:
    """Per series (legend order): metric -> Curve. Raises MissingResultsError for missing inputs."""
    series = ordered_series(figure_series(output, spec))
    duplicated = sorted({entry.label for entry in series if [s.label for s in series].count(entry.label) > 1})
    if duplicated:
        raise ValueError(f"report.{output}: series labels must be distinct, repeated: {duplicated}")
    metrics = [panel.metric for panel in panels]
    long_frames = load_training_curves(output, runs_dir, {entry.experiment: entry.seeds for entry in series}, metrics)
    return [
        {
            panel.metric: curve_of(
                entry.label, long_frames[entry.experiment], panel.metric, smooth=panel is not GUIDANCE_WEIGHT
            )
            for panel in panels
        }
        for entry in series
    ]


def panel_row_figure(
    output: str, spec: Mapping, runs_dir: str | Path, out_dir: str | Path, panels: Sequence[Panel]
) -> dict[str, Path]:
    """One row of panels sharing one legend above them (Figures 2, 4, 6)."""
    per_series = load_series_curves(output, spec, runs_dir, panels)
    style.apply_style()
    figure, axes = plt.subplots(1, len(panels), figsize=(style.FULL_WIDTH_IN, style.PANEL_HEIGHT_IN))
    for ax, panel in zip(np.atleast_1d(axes), panels):
        draw(ax, [curves[panel.metric] for curves in per_series], panel)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False)
    figure.tight_layout()
    add_note(figure, spec)
    return save(figure, out_dir, output)


def add_note(figure, spec: Mapping) -> None:
    """Write the series a selection left out under the panels (figures.spec.not_run_note)."""
    note = not_run_note(spec)
    if note:
        figure.text(0.995, 0.005, note, ha="right", va="bottom", fontsize=5, style="italic", color="0.35")


def save(figure, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write <out_dir>/<name>.pdf and .png atomically (no timestamps in the PDF: same inputs, same bytes)."""
    out_dir = Path(out_dir)
    paths = {"pdf": out_dir / f"{name}.pdf", "png": out_dir / f"{name}.png"}
    with atomic_path(paths["pdf"]) as tmp:
        figure.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
    with atomic_path(paths["png"]) as tmp:
        figure.savefig(tmp, format="png", dpi=style.PNG_DPI)
    plt.close(figure)
    return paths
