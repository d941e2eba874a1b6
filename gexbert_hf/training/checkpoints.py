"""Atomic checkpoints: written to a temporary directory, marked complete, then renamed into place.

A crash mid-write leaves only a `*.tmp` directory, which is ignored; a checkpoint without its completion marker or
with unreadable state is skipped with a warning, so `--resume` always continues from the newest complete one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"
COMPLETE_MARKER = "checkpoint_complete.json"


def checkpoint_path(root: Path, step: int) -> Path:
    return root / f"{CHECKPOINT_PREFIX}{step:08d}"


def temporary_checkpoint_dir(root: Path, step: int) -> Path:
    """Where a checkpoint is written before it is published (every process writes its own state files there)."""
    return root / f"{checkpoint_path(root, step).name}.tmp"


def publish_checkpoint(root: Path, step: int, state: dict, keep_last: int) -> Path:
    """Mark the temporary checkpoint complete, rename it to `step-N`, and drop all but the last `keep_last`."""
    final = checkpoint_path(root, step)
    temporary = temporary_checkpoint_dir(root, step)
    marker = temporary / COMPLETE_MARKER
    marker.write_text(json.dumps({"step": step, **state}, indent=1))
    with open(marker) as handle:  # durable marker before the rename makes the checkpoint visible
        os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    if keep_last > 0:
        for old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete-looking checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [path for path in root.glob(f"{CHECKPOINT_PREFIX}*") if path.is_dir() and not path.name.endswith(".tmp")]
    return sorted(found, key=lambda path: path.name)


def read_checkpoint_state(path: Path) -> dict | None:
    """The marker's state, or None (with a warning) when the checkpoint is incomplete or corrupt."""
    marker = path / COMPLETE_MARKER
    try:
        state = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as error:
        logger.warning("skipping checkpoint %s: no readable completion marker (%s)", path, error)
        return None
    weights = list(path.glob("*.safetensors"))
    if not weights or any(weight.stat().st_size == 0 for weight in weights):
        logger.warning("skipping checkpoint %s: model weights missing or empty", path)
        return None
    return state


def latest_complete_checkpoint(root: Path) -> tuple[Path, dict] | None:
    for path in reversed(list_checkpoints(root)):
        state = read_checkpoint_state(path)
        if state is not None:
            return path, state
    return None
