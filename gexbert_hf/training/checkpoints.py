"""Atomic, verified checkpoints: written to a temporary directory, marked complete, then renamed into place.

A crash mid-write leaves only a `*.tmp` directory, which is ignored. The completion marker lists every file of the
checkpoint with its size and sha256, so a truncated, altered or missing file (weights, optimizer, scheduler, a
process's RNG state) makes the checkpoint invalid: it is skipped with a warning naming the file, and `--resume`
continues from the newest checkpoint that is complete, verified and readable. The marker also holds the run's
arguments, so a checkpoint of another run (other data, seed, model or length) is refused, not silently continued.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError

from ..errors import GexBertError

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"
COMPLETE_MARKER = "checkpoint_complete.json"
_STEP_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
Loaded = TypeVar("Loaded")


class ResumeMismatchError(GexBertError, ValueError):
    """`--resume` found a checkpoint of a different run (data, seed, model or training arguments)."""


def checkpoint_path(root: Path, step: int) -> Path:
    return root / f"{CHECKPOINT_PREFIX}{step:08d}"


def checkpoint_step(path: Path) -> int | None:
    """The step a `step-N` directory name stands for; None for anything else."""
    match = _STEP_NAME.match(path.name)
    return int(match.group(1)) if match else None


def temporary_checkpoint_dir(root: Path, step: int) -> Path:
    """Where a checkpoint is written before it is published (every process writes its own state files there)."""
    return root / f"{checkpoint_path(root, step).name}.tmp"


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def publish_checkpoint(root: Path, step: int, state: dict, keep_last: int) -> Path:
    """Record every file's size and hash in the marker, rename the checkpoint to `step-N`, prune older ones."""
    final = checkpoint_path(root, step)
    temporary = temporary_checkpoint_dir(root, step)
    files = {}
    for path in sorted(temporary.iterdir()):
        if path.name != COMPLETE_MARKER:
            _fsync(path)
            files[path.name] = file_digest(path)
    marker = temporary / COMPLETE_MARKER
    marker.write_text(json.dumps({"step": step, "files": files, **state}, indent=1))
    _fsync(marker)  # durable files and marker before the rename makes the checkpoint visible
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    prune_checkpoints(root, step, keep_last)
    return final


def prune_checkpoints(root: Path, newest_step: int, keep_last: int) -> None:
    """Keep the `keep_last` newest checkpoints up to `newest_step` (by step number, 0 = all).

    A checkpoint beyond `newest_step` is one a resumed run skipped as invalid and has now passed: it is removed.
    """
    checkpoints = list_checkpoints(root)
    stale = [path for path in checkpoints if checkpoint_step(path) > newest_step]
    current = [path for path in checkpoints if checkpoint_step(path) <= newest_step]
    for old in stale + (current[:-keep_last] if keep_last > 0 else []):
        shutil.rmtree(old, ignore_errors=True)


def list_checkpoints(root: Path) -> list[Path]:
    """`step-N` directories, oldest (lowest step) first."""
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.is_dir() and checkpoint_step(path) is not None]
    return sorted(found, key=checkpoint_step)


def _invalid(path: Path, reason: str) -> None:
    logger.warning("skipping checkpoint %s: %s", path, reason)


def read_checkpoint_state(path: Path, required: Iterable[str] = ()) -> dict | None:
    """The marker's state once every listed file (and each `required` one) is present with its recorded size and
    sha256; None, with a warning naming the file, when the checkpoint is incomplete or damaged."""
    try:
        state = json.loads((path / COMPLETE_MARKER).read_text())
        files = state["files"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        _invalid(path, f"no readable completion marker with a file list ({error!r})")
        return None
    absent = [name for name in required if name not in files]
    if absent:
        _invalid(path, f"{', '.join(absent)} not recorded in its completion marker")
        return None
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            _invalid(path, f"{name} is missing")
            return None
        if file.stat().st_size != expected.get("size"):
            _invalid(path, f"{name} has {file.stat().st_size} bytes, {expected.get('size')} were written")
            return None
        if file_digest(file)["sha256"] != expected.get("sha256"):
            _invalid(path, f"{name} does not match the sha256 recorded when it was written")
            return None
    return state


def latest_usable_checkpoint(
    root: Path, required: Iterable[str], load: Callable[[Path, dict], Loaded]
) -> tuple[Path, dict, Loaded] | None:
    """The newest checkpoint that verifies and that `load` can read, newest first; older ones are the fallback.

    `load` raises `SafetensorError`/`ValueError`/`OSError`/`KeyError` for an unreadable file (the checkpoint is
    skipped with a warning) and a `GexBertError` to stop the search (e.g. a checkpoint of another run).
    """
    required = list(required)
    for path in reversed(list_checkpoints(root)):
        state = read_checkpoint_state(path, required)
        if state is None:
            continue
        try:
            return path, state, load(path, state)
        except GexBertError:
            raise
        except (SafetensorError, ValueError, OSError, KeyError, TypeError, IndexError) as error:
            _invalid(path, f"unreadable state ({type(error).__name__}: {error})")
    return None


def check_same_run(recorded: dict | None, current: dict, path: Path) -> None:
    """Refuse to continue a checkpoint whose run arguments differ from the current ones, naming each difference."""
    if recorded is None:
        raise ResumeMismatchError(f"{path}: the checkpoint records no run arguments; it cannot be checked against "
                                  "this run, start again with --overwrite")
    differences = [f"{key}: checkpoint {recorded.get(key, '<absent>')!r}, now {current.get(key, '<absent>')!r}"
                   for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]
    if differences:
        raise ResumeMismatchError(
            f"{path} belongs to a different run; --resume continues only the same data, seed, model and training "
            f"arguments. Differences: {'; '.join(differences)}. Use the original arguments, or start again with "
            "--overwrite"
        )


CONFIG_FILE = "config.json"
STAGING_PREFIX = ".final-"


def save_final_model(output_dir: Path, write: Callable[[Path], None]) -> list[str]:
    """Let `write` save the final model (and tokenizer, card...) into a staging folder, check it, then move it in.

    `output_dir` also holds the run's checkpoints, metrics and whatever else its owner keeps there, so it cannot be
    swapped as a whole: the staging folder sits inside it (each `os.replace` stays on one filesystem, hence
    atomic) and the finished files are moved in one by one. `config.json` is what marks a finished model
    (`from_pretrained` reads it first; the commands refuse to overwrite a folder holding one), so an old one is
    removed before anything moves and the new one moves in last: a crash at any moment leaves either the complete
    new model or no `config.json` at all, never a config beside missing, partial or older weights.
    """
    import tempfile

    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output_dir))
    try:
        write(staging)
        names = _check_staged_model(staging)
        for name in names:
            _fsync(staging / name)
        (output_dir / CONFIG_FILE).unlink(missing_ok=True)
        for name in sorted(names, key=lambda name: name == CONFIG_FILE):
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _check_staged_model(staging: Path) -> list[str]:
    """The staged file names, once `config.json` parses and every safetensors header opens."""
    from safetensors import safe_open

    names = sorted(path.name for path in staging.iterdir())
    weights = [name for name in names if name.endswith(".safetensors")]
    if CONFIG_FILE not in names or not any(name.startswith("model") for name in weights):
        raise RuntimeError(f"the final save wrote {', '.join(names) or 'nothing'}: config.json or the weights are "
                           "missing; nothing was moved into the output folder")
    json.loads((staging / CONFIG_FILE).read_text())
    for name in weights:
        with safe_open(str(staging / name), framework="pt"):
            pass
    return names
