"""One look for every figure: method order, colours, smoothing, fonts and sizes (defined here only).

Smoothing: an exponential moving average with bias correction (as TensorBoard's "smoothing" slider),
    s_t = EMA_WEIGHT * s_{t-1} + (1 - EMA_WEIGHT) * x_t,   shown value s_t / (1 - EMA_WEIGHT**n_t),
where n_t counts the finite values seen so far (missing steps are skipped, not treated as zero).
EMA_WEIGHT = 0.6 keeps spikes visible (a gradient-norm spike is damped to 40 % at its step) while
removing step-to-step sampling noise. Each seed is smoothed, then the mean over seeds is drawn with a
band from the smallest to the largest seed (no band for a single seed; no raw curves, to keep the
panels readable).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

EMA_WEIGHT = 0.6

# Okabe-Ito colour-blind-safe palette (plus two darker tones for TGPO variants).
VERMILLION, ORANGE, SKY_BLUE, BLUISH_GREEN = "#D55E00", "#E69F00", "#56B4E9", "#009E73"
YELLOW, BLUE, REDDISH_PURPLE, GREY, BLACK = "#F0E442", "#0072B2", "#CC79A7", "#7F7F7F", "#000000"
DARK_RED, BROWN = "#9E1B32", "#8C564B"

# Legend order and colour of every series label the paper uses; the same label has the same colour
# in every figure. Labels not listed here come after these, in the order the config gives, with a
# colour from SPARE_COLOURS chosen by a hash of the label (stable across figures and runs).
METHOD_STYLES: tuple[tuple[str, str], ...] = (
    ("TGPO", VERMILLION),
    ("TGPO-annealing", DARK_RED),
    ("TGPO_R", REDDISH_PURPLE),
    ("Ours", VERMILLION),
    ("Constant Weight", ORANGE),
    ("Aggressive Annealing", BLUE),
    ("Continuous Annealing", BLUISH_GREEN),
    ("In-Family", BLUE),
    ("Cross-Family", VERMILLION),
    ("In-Family (sequence RKL)", BLUE),
    ("Cross-Family (sequence RKL)", VERMILLION),
    ("In-Family (token RKL)", SKY_BLUE),
    ("Cross-Family (token RKL)", ORANGE),
    ("RKL", BLUE),
    ("OP Distill", BLUE),
    ("KDRL", SKY_BLUE),
    ("GRPO++", BLUISH_GREEN),
    ("LUFFY", ORANGE),
    ("SFT", GREY),
    ("SimpleRL-Zero", BROWN),
    ("PRIME-Zero", YELLOW),
    ("Oat-Zero", BLACK),
)
SPARE_COLOURS = (BROWN, GREY, YELLOW, BLACK, REDDISH_PURPLE, SKY_BLUE)

FULL_WIDTH_IN = 7.0  # a two-column paper's text width
COLUMN_WIDTH_IN = 3.4  # one column
PANEL_HEIGHT_IN = 2.3
PNG_DPI = 200

RC_PARAMS = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # TrueType in the PDF: editable text, accepted by publishers
    "ps.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}

_ORDER = {label.casefold(): index for index, (label, _) in enumerate(METHOD_STYLES)}
_COLOURS = {label.casefold(): colour for label, colour in METHOD_STYLES}


def colour_of(label: str) -> str:
    """The colour of a series label (same label, same colour, in every figure)."""
    key = label.casefold()
    if key in _COLOURS:
        return _COLOURS[key]
    digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    return SPARE_COLOURS[digest % len(SPARE_COLOURS)]


def in_method_order(labels: Sequence[str]) -> list[int]:
    """Indices of `labels` sorted into the legend order (known labels first, others as given)."""
    return sorted(range(len(labels)), key=lambda index: (_ORDER.get(labels[index].casefold(), len(_ORDER)), index))


def ema(values: Iterable[float], weight: float = EMA_WEIGHT) -> np.ndarray:
    """Bias-corrected exponential moving average; NaN inputs are skipped (their output repeats the last)."""
    values = np.asarray(list(values), dtype=float)
    smoothed = np.full_like(values, np.nan)
    running, seen = 0.0, 0
    for index, value in enumerate(values):
        if math.isfinite(value):
            running = weight * running + (1.0 - weight) * value
            seen += 1
        if seen:
            smoothed[index] = running / (1.0 - weight**seen)
    return smoothed


def apply_style() -> None:
    matplotlib.rcParams.update(RC_PARAMS)
