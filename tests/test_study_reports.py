"""Report writing of the study: every file is written atomically and every plot goes through one finisher."""

from __future__ import annotations

import json

import numpy as np

from gexbert_hf.study.reports import atomic_write, bar_plot, finish_plot, heatmap, pyplot, write_json
from gexbert_hf.study.rss import process_memory


def test_atomic_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "report.md"
    atomic_write(path, "first")
    atomic_write(path, b"second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]


def test_write_json_is_strict_json(tmp_path):
    path = write_json(tmp_path / "results.json", {"r": np.float32(0.5), "missing": float("nan"),
                                                  "rows": np.arange(2)})
    assert json.loads(path.read_text()) == {"r": 0.5, "missing": None, "rows": [0, 1]}


def test_finish_plot_labels_and_writes_a_png_and_nothing_else(tmp_path):
    fig, ax = pyplot().subplots()
    ax.plot([1, 2], [3, 4], label="a line")
    path = finish_plot(fig, ax, tmp_path / "plot.png", "title", "x", "y", grid={"axis": "y"})
    assert ax.get_title() == "title" and ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    assert ax.get_legend() is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bar_plot(tmp_path / "bars.png", ["a", "b"], {"m": [1.0, 2.0]}, "score", "bars")
    heatmap(tmp_path / "heat.png", np.eye(2), ["r1", "r2"], ["c1", "c2"], "heat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.png", "heat.png", "plot.png"]


def test_process_memory_reads_the_resident_set_and_its_peak():
    memory = process_memory()
    assert set(memory) == {"VmRSS", "RssAnon", "VmHWM"}
    assert memory["VmHWM"] >= memory["VmRSS"] > 0
