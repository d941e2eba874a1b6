"""A pretraining run's log: one JSON record per logged step in `metrics.jsonl` (always) and TensorBoard events
(when tensorboard is installed), written by the main process; after a resume the lines past the resumed step go."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class RunLog:
    """A run's log lines: throughput since the last line, and `metrics.jsonl` + TensorBoard where the run has an
    output folder (main process only)."""

    def __init__(self, output_dir: Path | None, step: int):
        self.writer = None if output_dir is None else _tensorboard_writer(output_dir, step + 1 if step else None)
        self.output_dir, self.started, self.samples = output_dir, time.perf_counter(), 0

    def record(self, step: int, loss: float, learning_rate: float) -> dict:
        """The record of `step`; the throughput window starts again."""
        elapsed = time.perf_counter() - self.started
        record = {"step": step, "loss": loss, "learning_rate": learning_rate,
                  "samples_per_second": self.samples / max(elapsed, 1e-9)}
        self.started, self.samples = time.perf_counter(), 0
        return record

    def write(self, record: dict) -> None:
        if self.output_dir is not None:
            _log(self.output_dir, record, self.writer)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def truncate_metrics(output_dir: Path, step: int) -> None:
    """Drop the records logged after the resumed step (they are logged again), atomically, so every step appears
    once; a line torn by the crash goes too."""
    path = output_dir / METRICS_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    rewritten = path.with_name(path.name + ".tmp")
    rewritten.write_text("".join(kept))
    os.replace(rewritten, path)


def _tensorboard_writer(output_dir: Path, purge_step: int | None = None):
    """`purge_step`: after a resume, events from that step on (the old run's tail) are dropped."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.jsonl always has everything
        return None
    return SummaryWriter(log_dir=str(output_dir / TENSORBOARD_DIR), purge_step=purge_step)


def _log(output_dir: Path, record: dict, writer) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    if writer is not None:
        for key, value in record.items():
            if key != "step":
                writer.add_scalar(f"pretrain/{key}", value, record["step"])
