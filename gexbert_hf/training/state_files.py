"""Training state on disk without pickle: tensors in a safetensors file, everything else as JSON in its header.

Optimizer, scheduler, RNG and collator states are nested dicts, lists and tuples of tensors, arrays and scalars.
`write_state_file` stores each tensor under a generated key and the structure around them as a JSON "skeleton" in
the safetensors metadata; `read_state_file` rebuilds it. Reading a doctored file can fail, but never runs code.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

SKELETON_KEY = "gexbert_state"
_TENSOR, _ARRAY, _TUPLE, _ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"


class StateFileError(ValueError):
    """A state file whose structure is not one `write_state_file` wrote."""


def _flatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able skeleton of `value`; tensors are moved into `tensors` and referenced by key."""
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()  # clone: safetensors refuses shared storage
        return {_TENSOR: key}
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_flatten(item, tensors) for item in value]}
    if isinstance(value, list):
        return [_flatten(item, tensors) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("__") for key in value):
            return {key: _flatten(item, tensors) for key, item in value.items()}
        return {_ITEMS: [[_flatten(key, tensors), _flatten(item, tensors)] for key, item in value.items()]}
    raise TypeError(f"cannot store a {type(value).__name__} in a training state file")


def _rebuild(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, list):
        return [_rebuild(item, tensors) for item in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if _TENSOR in skeleton:
        if skeleton[_TENSOR] not in tensors:
            raise StateFileError(f"tensor {skeleton[_TENSOR]!r} is referenced but not stored")
        return tensors[skeleton[_TENSOR]]
    if _ARRAY in skeleton:
        return np.asarray(skeleton[_ARRAY], dtype=np.dtype(skeleton["dtype"]))
    if _TUPLE in skeleton:
        return tuple(_rebuild(item, tensors) for item in skeleton[_TUPLE])
    if _ITEMS in skeleton:
        return {_hashable(_rebuild(key, tensors)): _rebuild(item, tensors) for key, item in skeleton[_ITEMS]}
    return {key: _rebuild(item, tensors) for key, item in skeleton.items()}


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict, torch.Tensor, np.ndarray)):
        raise StateFileError(f"a dict key of type {type(key).__name__} is not valid here")
    return key


def write_state_file(path: Path, state: Any) -> None:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors)
    save_file(tensors, str(path), metadata={SKELETON_KEY: json.dumps(skeleton)})


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file; `StateFileError` naming the file when it is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        return load_file(str(path)), metadata
    except SafetensorError as error:
        raise StateFileError(f"{path.name}: not a readable safetensors file ({error})") from error


def read_state_file(path: Path) -> Any:
    """The state `write_state_file` stored; `StateFileError` naming the file on anything else."""
    tensors, metadata = read_tensors(path)
    if SKELETON_KEY not in metadata:
        raise StateFileError(f"{path.name}: no {SKELETON_KEY} entry in its header")
    try:
        skeleton = json.loads(metadata[SKELETON_KEY])
    except json.JSONDecodeError as error:
        raise StateFileError(f"{path.name}: unreadable state skeleton ({error})") from error
    try:
        return _rebuild(skeleton, tensors)
    except (KeyError, TypeError, ValueError) as error:  # StateFileError included
        raise StateFileError(f"{path.name}: malformed state ({error!r})") from error


def capture_rng_states() -> dict[str, Any]:
    """Python, numpy, torch CPU and (where present) CUDA generator states of this process."""
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
