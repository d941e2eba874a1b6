"""Names, folders and hub ids -> model + tokenizer, checked once: the one place inference and commands load from.

transformers and safetensors report a truncated `model.safetensors` as `SafetensorError`, invalid JSON as `OSError`,
weights of another shape as `RuntimeError`: a traceback that names neither the folder nor what to do about it. Here
each becomes one `ModelFileError` naming the file, and the tokenizer is checked against the model's config once.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from .checks import check_tokenizer_matches
from .configuration_gexbert import GexBertConfig
from .errors import ExpressionInputError, ModelFileError, one_line, preview
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
    GexBertPreTrainedModel,
)
from .pretrained import refuse_missing_model, resolve_model
from .tokenization_gexbert import TOKENIZER_CONFIG_NAME, GexBertTokenizer

UNREADABLE = (OSError, ValueError, RuntimeError, SafetensorError)
MODEL_CLASSES = {cls.__name__: cls for cls in (GexBertForMaskedExpression, GexBertForSequenceClassification,
                                               GexBertForSurvival, GexBertModel)}


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


@contextmanager
def quiet_weight_loading():
    """transformers' "Loading weights" bar off while a checkpoint of a few MB loads (it flashes past in a command's
    output and buries the one line that matters), and back as it was."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model_and_tokenizer(model_dir: str | Path) -> tuple[GexBertPreTrainedModel, GexBertTokenizer]:
    """The head a directory was saved with (its `architectures`) and the tokenizer beside it, which must be the
    model's own (`TokenizerMismatchError` otherwise); unreadable files raise `ModelFileError` naming them.
    `model_dir` is a folder or the name of a shipped checkpoint (`tcga31-mirna`)."""
    refuse_missing_model(model_dir)
    path = Path(resolve_model(model_dir))
    if not (path / "config.json").is_file():
        raise ExpressionInputError(f"{path}: not a GexBERT model directory (no config.json)")
    if not (path / TOKENIZER_CONFIG_NAME).is_file():
        raise ExpressionInputError(f"{path}: no GexBERT tokenizer ({TOKENIZER_CONFIG_NAME}) beside the model")
    config = load_config(GexBertConfig, path)
    architecture = (config.architectures or ["GexBertModel"])[0]
    if architecture not in MODEL_CLASSES:
        raise ExpressionInputError(f"{path}: unknown architecture {architecture!r}; expected one of "
                                   f"{preview(sorted(MODEL_CLASSES))}")
    tokenizer = GexBertTokenizer.from_pretrained(path)
    check_tokenizer_matches(tokenizer, config, source=str(path))
    with quiet_weight_loading():
        model = load_weights(MODEL_CLASSES[architecture], path)
    model.eval()
    return model, tokenizer


__all__ = ["MODEL_CLASSES", "load_config", "load_model_and_tokenizer", "load_weights"]
