"""Shared report writing: markdown tables, JSON that survives numpy types and NaN, and Agg-backend PNG plots.

Used by the benchmark (and open to the demo and speed reports) so every report formats numbers the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def to_jsonable(value):
    """numpy scalars/arrays -> Python, NaN/inf -> None (strict JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(data), indent=1))
    return path


def fmt(value, digits: int = 3) -> str:
    """A number for a table: fixed digits, '–' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def mean_spread(values: Sequence[float], digits: int = 3) -> str:
    """'mean ± sd (n)' over seeds/panels; one value prints alone."""
    array = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(array) == 0:
        return "–"
    if len(array) == 1:
        return fmt(array[0], digits)
    return f"{array.mean():.{digits}f} ± {array.std(ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; cells are str()-ed as given."""
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Tight layout, write the PNG (creating its folder), free the figure."""
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def line_plot(
    path: str | Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    xticklabels: Sequence[str] | None = None,
) -> Path:
    """One line per method: `{name: (x, mean, spread or None)}`, spread drawn as error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, (x, mean, spread) in series.items():
        style = "-o" if name.lower().startswith("gexbert") else "--s"
        ax.errorbar(x, mean, yerr=spread, fmt=style, capsize=3, markersize=4, label=name,
                    linewidth=2.0 if name.lower().startswith("gexbert") else 1.2)
    if logx:
        ax.set_xscale("log", base=2)
    if xticklabels is not None:  # x values are positions 0..n-1 of these labels
        ax.set_xticks(range(len(xticklabels)))
        ax.set_xticklabels(list(xticklabels))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bar_plot(path: str | Path, labels: Sequence[str], groups: Mapping[str, Sequence[float]], ylabel: str,
             title: str, errors: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Grouped bars: one group per label, one bar per key of `groups`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.4, 0.45 * len(labels) * max(1, len(groups)) / 2), 4.2))
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(groups.items()):
        yerr = None if errors is None else errors.get(name)
        ax.bar(x + i * width - 0.4 + width / 2, values, width, yerr=yerr, label=name, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def heatmap(path: str | Path, matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
            title: str, colorbar_label: str = "") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.22 * len(col_labels) + 2), max(4, 0.22 * len(row_labels) + 1.5)))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels, fontsize=6)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return _save(fig, path)


def scatter_plot(path: str | Path, points: np.ndarray, groups: Sequence[str], xlabel: str, ylabel: str,
                 title: str) -> Path:
    """A 2-D map, one colour per group (e.g. a class label), groups in sorted order for a stable legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    groups = np.asarray([str(group) for group in groups])
    for group in sorted(set(groups)):
        chosen = groups == group
        ax.scatter(points[chosen, 0], points[chosen, 1], s=18, alpha=0.8, label=f"{group} (n={chosen.sum()})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
