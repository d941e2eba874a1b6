"""Checks where a model meets a tokenizer and data: the two belong together, and what comes out is finite.

A tokenizer with other genes but the same vocabulary size gives silently wrong output, and other mismatches fail deep
inside torch with a bare `IndexError`; the model config's `tokenizer_fingerprint` lets both be refused by name. A
checkpoint with corrupt or diverged weights outputs NaN, which must stop a command before it writes anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .errors import ModelHeadError, NonFiniteOutputError, TokenizerMismatchError, preview
from .levels_gexbert import NORMALIZATIONS
from .tokenization_gexbert import GexBertTokenizer, fingerprint_of


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


def check_finite_output(values: np.ndarray, samples: Sequence, model) -> None:
    """Raise `NonFiniteOutputError` naming the model and samples when `values` (one row per sample) hold NaN or inf."""
    bad = ~np.isfinite(np.asarray(values, dtype=np.float64).reshape(len(samples), -1)).all(axis=1)
    if bad.any():
        raise NonFiniteOutputError(
            f"{model_name(model)}: the model outputs NaN or infinite values for {int(bad.sum())} of {len(samples)} "
            f"samples ({preview([samples[i] for i in np.flatnonzero(bad)])}); its weights are corrupt or diverged, and "
            "nothing is returned or written from them"
        )


HEADS = {"GexBertForMaskedExpression": "restoration", "GexBertForSequenceClassification": "classification",
         "GexBertForSurvival": "survival", "GexBertModel": "encoder"}
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


__all__ = ["check_finite_output", "check_tokenizer_matches", "head_of", "model_name", "require_head"]
