"""Loading a saved model folder: a file that cannot be read becomes one `ModelFileError` naming it.

transformers and safetensors report a truncated `model.safetensors` as `SafetensorError`, invalid JSON as `OSError`,
weights of another shape as `RuntimeError`: a traceback that names neither the folder nor what to do about it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import ModelFileError, one_line

UNREADABLE = (OSError, ValueError, RuntimeError, SafetensorError)


def load_config(config_class, directory: str | Path):
    """`config_class.from_pretrained(directory)`, refusing an unreadable `config.json` by name."""
    path = Path(directory)
    try:
        return config_class.from_pretrained(str(path))
    except UNREADABLE as error:
        raise ModelFileError(f"{path / 'config.json'}: not a readable model config ({one_line(error)})") from error


def load_weights(model_class, directory: str | Path, **kwargs):
    """`model_class.from_pretrained(directory, **kwargs)`, refusing missing, truncated or foreign weights by name."""
    path = Path(directory)
    try:
        return model_class.from_pretrained(str(path), **kwargs)
    except torch.OutOfMemoryError:
        raise
    except UNREADABLE as error:
        raise ModelFileError(f"{path}: cannot load the model weights ({one_line(error)}); is model.safetensors "
                             "complete and saved with this config.json?") from error


__all__ = ["load_config", "load_weights"]
