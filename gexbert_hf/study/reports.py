"""Report writing of the study: markdown tables, JSON that survives numpy types and NaN, Agg-backend PNG plots.

Used by the benchmark, the demo, the speed benchmark and the build-scale measurement, so every report formats
numbers the same way. Every file is written atomically (a temporary file beside it, then a rename), so a reader never
sees half a report, and every plot ends in `finish_plot`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..outputs import file_beside


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


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a file."""
    with file_beside(Path(path)) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | Path, data) -> Path:
    """`data` as indented strict JSON (numpy types converted, NaN as null), written atomically."""
    return atomic_write(path, json.dumps(to_jsonable(data), indent=1))


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


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish_plot(fig, ax, path: str | Path, title: str, xlabel: str | None = None, ylabel: str | None = None,
                grid: Mapping | None = None, legend_size: int | None = 8) -> Path:
    """Labels, title, legend (`legend_size` None: none) and grid (`grid` None: none; else `ax.grid` options), tight
    layout, then an atomic PNG write; frees the figure."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    if grid is not None:
        ax.grid(alpha=0.3, **grid)
    if legend_size is not None:
        ax.legend(fontsize=legend_size)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    pyplot().close(fig)
    return atomic_write(path, buffer.getvalue())


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
    plt = pyplot()
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
    return finish_plot(fig, ax, path, title, xlabel, ylabel, grid={})


def bar_plot(path: str | Path, labels: Sequence[str], groups: Mapping[str, Sequence[float]], ylabel: str,
             title: str, errors: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Grouped bars: one group per label, one bar per key of `groups`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.4, 0.45 * len(labels) * max(1, len(groups)) / 2), 4.2))
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(groups.items()):
        yerr = None if errors is None else errors.get(name)
        ax.bar(x + i * width - 0.4 + width / 2, values, width, yerr=yerr, label=name, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    return finish_plot(fig, ax, path, title, ylabel=ylabel, grid={"axis": "y"}, legend_size=7)


def heatmap(path: str | Path, matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
            title: str, colorbar_label: str = "") -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.22 * len(col_labels) + 2), max(4, 0.22 * len(row_labels) + 1.5)))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels, fontsize=6)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return finish_plot(fig, ax, path, title, legend_size=None)


def scatter_plot(path: str | Path, points: np.ndarray, groups: Sequence[str], xlabel: str, ylabel: str,
                 title: str) -> Path:
    """A 2-D map, one colour per group (e.g. a class label), groups in sorted order for a stable legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    groups = np.asarray([str(group) for group in groups])
    for group in sorted(set(groups)):
        chosen = groups == group
        ax.scatter(points[chosen, 0], points[chosen, 1], s=18, alpha=0.8, label=f"{group} (n={chosen.sum()})")
    return finish_plot(fig, ax, path, title, xlabel, ylabel, grid={})
