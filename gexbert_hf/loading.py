"""Names, folders and hub ids -> model + tokenizer, checked once: the one place inference and commands load from.

- The checkpoints shipped inside the package are found by name (`resolve_model("tcga31-mirna")`; an existing folder
  of that name wins), usable offline right after `pip install`:

      from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer, pretrained_path
      model = GexBertForMaskedExpression.from_pretrained(pretrained_path("tcga31-mirna"))

- transformers and safetensors report a truncated `model.safetensors` as `SafetensorError`, invalid JSON as
  `OSError`, weights of another shape as `RuntimeError`: a traceback that names neither the folder nor what to do about
  it. Here each becomes one `ModelFileError` naming the file.
- A tokenizer with other genes but the same vocabulary size gives silently wrong output, and other mismatches fail
  deep inside torch with a bare `IndexError`; the model config's `tokenizer_fingerprint` lets both be refused by name
  (`check_tokenizer_matches`), and a model without the head a use needs is refused by name (`require_head`).
"""

from __future__ import annotations

import difflib
import json
import warnings
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from .configuration_gexbert import GexBertConfig
from .errors import (
    ExpressionInputError,
    GexBertError,
    ModelFileError,
    ModelHeadError,
    TokenizerMismatchError,
    one_line,
    preview,
)
from .levels_gexbert import NORMALIZATIONS
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
    GexBertPreTrainedModel,
)
from .tokenization_gexbert import TOKENIZER_CONFIG_NAME, GexBertTokenizer, fingerprint_of

# ----------------------------------------------------------------------------------------------------------------------
# shipped checkpoints by name
# ----------------------------------------------------------------------------------------------------------------------
# name -> (folder inside gexbert_hf/pretrained/, what it was trained on)
PRETRAINED_MODELS: dict[str, tuple[str, str]] = {
    "tcga31-mirna": ("tcga31-mirna", "TCGA pan-cancer miRNA (31 types, log2 RPM), train split"),
    "tcga13-mrna": ("tcga13-mrna", "TCGA 13 cohorts, 1,526 mRNAs as per-cohort z-scores, train split"),
}


# name -> data folders (by folder name; an `.h5ad` by its file stem) the checkpoint must never be judged on: their test
# patients are in its training data. tcga13-mrna was pretrained on tcga13_cbioportal_zscore's train split, which holds
# the BLCA, STAD and COADREAD patients of tcga3_xena_log2tpm's test split (another normalisation of the same tumours).
# Its own folder's test split is fine: the checkpoint never saw it. tcga31-mirna shares patients with tcga3 too, but
# reads miRNAs, none of which tcga3 measures: nothing of its training values can reach a score there.
MUST_NOT_JUDGE: dict[str, tuple[str, ...]] = {
    "tcga13-mrna": ("tcga3_xena_log2tpm",),
}


class UnknownPretrainedModelError(GexBertError, LookupError):
    """A name that is neither a shipped checkpoint nor an existing folder."""


class TrainingOverlapError(GexBertError, ValueError):
    """A checkpoint asked to judge data whose patients it was trained on."""


def pretrained_path(name: str) -> Path:
    """The folder of the shipped checkpoint `name` (one of `PRETRAINED_MODELS`)."""
    if name not in PRETRAINED_MODELS:
        raise UnknownPretrainedModelError(f"{name!r} is not a shipped GexBERT checkpoint; {shipped_names_hint(name)}")
    folder = Path(str(resources.files("gexbert_hf").joinpath("pretrained", PRETRAINED_MODELS[name][0])))
    if not (folder / "config.json").is_file():
        raise UnknownPretrainedModelError(f"{name}: the shipped checkpoint is missing from this installation "
                                          f"({folder}); reinstall gexbert-hf")
    return folder


def shipped_names_hint(name: str | Path) -> str:
    """`shipped: tcga13-mrna, tcga31-mirna; did you mean tcga31-mirna?`: what a mistyped `--model` could have been."""
    hint = f"shipped: {', '.join(sorted(PRETRAINED_MODELS))}"
    close = difflib.get_close_matches(Path(str(name)).name, sorted(PRETRAINED_MODELS), n=1, cutoff=0.6)
    return hint + (f"; did you mean {close[0]}?" if close else "")


def refuse_missing_model(name: str | Path) -> None:
    """A `--model` that is neither an existing folder nor a shipped name: refused in one line that lists the
    shipped names and suggests the closest, instead of "no config.json" in a folder that does not exist."""
    if not Path(resolve_model(name)).exists():
        raise UnknownPretrainedModelError(f"{name}: no such model folder, and not the name of a shipped checkpoint "
                                          f"({shipped_names_hint(name)})")


def resolve_model(name_or_path: str | Path) -> str | Path:
    """A shipped checkpoint's folder for its name; anything else (a folder, a hub repo id) unchanged.

    An existing folder wins over a shipped name, so a user's own `./tcga31-mirna` is never shadowed.
    """
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED_MODELS and not Path(name_or_path).exists():
        return pretrained_path(name_or_path)
    return name_or_path


def shipped_checkpoint(model: str | Path) -> str | None:
    """The shipped checkpoint `model` is, or descends from: its name, its folder, or any folder whose config carries
    the shipped checkpoint's tokenizer fingerprint (a copy, or a model fine-tuned from it); else None."""
    path = Path(resolve_model(model))
    fingerprint = _fingerprint(path)
    for name in PRETRAINED_MODELS:
        try:
            shipped = pretrained_path(name)
        except UnknownPretrainedModelError:  # not installed here: it cannot be the model either
            continue
        if path.resolve() == shipped.resolve() or (fingerprint is not None and fingerprint == _fingerprint(shipped)):
            return name
    return None


def shipped_name_of_fingerprint(fingerprint: str | None) -> str | None:
    """The shipped checkpoint whose tokenizer has `fingerprint` (so a model fine-tuned or adapted from it), else None."""
    if fingerprint is None:
        return None
    for name in PRETRAINED_MODELS:
        try:
            if _fingerprint(pretrained_path(name)) == fingerprint:
                return name
        except UnknownPretrainedModelError:  # not installed here
            continue
    return None


def _fingerprint(folder: Path) -> str | None:
    """The tokenizer fingerprint a model folder's config.json records; None without a readable one."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("tokenizer_fingerprint") if isinstance(config, dict) else None


def refuse_training_overlap(model: str | Path, data: str | Path) -> None:
    """Raise `TrainingOverlapError` when `model` is (or descends from) a shipped checkpoint that `MUST_NOT_JUDGE`
    keeps off the data folder (or `.h5ad` file) `data`."""
    name = shipped_checkpoint(model)
    folders = {Path(data).name.removesuffix(".h5ad"), Path(data).resolve().name.removesuffix(".h5ad")}  # a link too
    forbidden = sorted(folders & set(MUST_NOT_JUDGE.get(name, ())))
    if forbidden:
        shown = name if str(model) == name else f"{model} ({name})"
        raise TrainingOverlapError(f"{shown} must not be judged on {forbidden[0]}: that folder's test patients are in "
                                   f"{name}'s training data; judge it on another folder")



# ----------------------------------------------------------------------------------------------------------------------
# a model meets a tokenizer; the head a use needs
# ----------------------------------------------------------------------------------------------------------------------
def check_tokenizer_matches(tokenizer: GexBertTokenizer, config, source: str = "model") -> None:
    """Raise `TokenizerMismatchError` saying what differs when `tokenizer` was not made for `config`'s model.

    A config saved before fingerprints existed can only be checked for vocabulary size and level count: that
    passes with a warning."""
    differences = []
    if config.vocab_size != tokenizer.vocab_size:
        differences.append(f"vocabulary size {tokenizer.vocab_size} (the model's: {config.vocab_size})")
    if config.num_levels != tokenizer.num_levels:
        differences.append(f"{tokenizer.num_levels} levels (the model's: {config.num_levels})")
    expected = getattr(config, "tokenizer_fingerprint", None)
    if not differences and expected is not None and expected != tokenizer.fingerprint:
        differences.append(_fingerprint_difference(tokenizer, expected))
    if differences:
        raise TokenizerMismatchError(f"{source}: the tokenizer does not belong to this model: "
                                     f"{'; '.join(differences)}; use the tokenizer saved beside the model")
    if expected is None:
        warnings.warn("the model config has no tokenizer_fingerprint (saved by an older gexbert_hf): only its "
                      "vocabulary size and level count could be checked against the tokenizer", stacklevel=2)


def _fingerprint_difference(tokenizer: GexBertTokenizer, expected: str) -> str:
    """Same size and levels but another fingerprint: the normalisation if that alone explains it, else the genes."""
    for other in NORMALIZATIONS:
        if other != tokenizer.normalization and fingerprint_of(tokenizer.genes, tokenizer.num_levels, other) == expected:
            return f"normalization {tokenizer.normalization!r} (the model's: {other!r})"
    return (f"other genes or gene order (both {len(tokenizer.genes)} genes; tokenizer fingerprint "
            f"{tokenizer.fingerprint}, the model's {expected})")


HEADS = {"GexBertForMaskedExpression": "restoration", "GexBertForSequenceClassification": "classification",
         "GexBertForSurvival": "survival", "GexBertModel": "encoder",
         "OnnxMaskedExpression": "restoration"}  # onnx_export: the restoration head's graph run by ONNX Runtime
HEADS_FOR = {"imputation": ("restoration",), "prediction": ("classification", "survival")}
NEXT_STEP = {"imputation": "use a pretrained checkpoint (gexbert impute reads the masked-expression head)",
             "prediction": "fine-tune one with gexbert finetune; for a pretrained checkpoint use gexbert impute or "
                           "gexbert embed"}


def head_of(model) -> str | None:
    """The model's head (`HEADS` values), by class name along its class hierarchy: a model loaded as hub remote code
    (the same class from another module) is recognised too. The one place a head is told apart."""
    return next((HEADS[cls.__name__] for cls in type(model).__mro__ if cls.__name__ in HEADS), None)


def require_head(model, use: str) -> str:
    """The model's head, or `ModelHeadError` naming the model when it lacks the head `use` needs (`HEADS_FOR`)."""
    head = head_of(model)
    if head not in HEADS_FOR[use]:
        raise ModelHeadError(f"{model_name(model)}: {use} needs a {' or '.join(HEADS_FOR[use])} head, this is a "
                             f"{type(model).__name__}; {NEXT_STEP[use]}")
    return head


def model_name(model) -> str:
    """The folder a model was loaded from, else its class: what an error message can point to."""
    return str(getattr(model, "name_or_path", "") or type(model).__name__)



# ----------------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------------
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


__all__ = ["MODEL_CLASSES", "MUST_NOT_JUDGE", "PRETRAINED_MODELS", "TrainingOverlapError", "UnknownPretrainedModelError", "check_tokenizer_matches", "head_of", "load_config", "load_model_and_tokenizer", "load_weights", "model_name", "pretrained_path", "refuse_missing_model", "refuse_training_overlap", "require_head", "resolve_model", "shipped_checkpoint", "shipped_name_of_fingerprint", "shipped_names_hint"]
