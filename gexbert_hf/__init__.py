"""gexbert_hf: GexBERT, a transformers-native foundation model for bulk tumour transcriptomes."""

import warnings

# first: importing .threads sets OMP_WAIT_POLICY=PASSIVE before the imports below load torch's OpenMP runtime
from . import threads  # noqa: F401
from .configuration_gexbert import GexBertConfig
from .data.collator import DataCollatorForExpressionFinetuning, DataCollatorForMaskedExpression
from .errors import ClinicalInputError, ExpressionInputError, GexBertError, OutputExistsError
from .hub import register_auto_classes
from .inference import embed, impute, predict, predict_distribution
from .loading import PRETRAINED_MODELS, pretrained_path, resolve_model
from .metrics import concordance_index
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
    GexBertPreTrainedModel,
    MaskedExpressionOutput,
    SurvivalOutput,
    cox_partial_log_likelihood_loss,
)
from .threads import configure_threads
from .tokenization_gexbert import GexBertTokenizer

register_auto_classes()


def _silence_expected_warnings() -> None:
    """torch's DataLoader warns "'pin_memory' argument is set as true but no accelerator is found" on every epoch of
    a CPU run of transformers' Trainer, whose default pins memory: nothing is wrong and there is nothing to do."""
    warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true but no accelerator",
                            category=UserWarning)


_silence_expected_warnings()

__version__ = "0.1.0"

__all__ = [
    "GexBertConfig",
    "GexBertTokenizer",
    "DataCollatorForExpressionFinetuning",
    "DataCollatorForMaskedExpression",
    "GexBertModel",
    "GexBertPreTrainedModel",
    "GexBertForMaskedExpression",
    "GexBertForSequenceClassification",
    "GexBertForSurvival",
    "MaskedExpressionOutput",
    "SurvivalOutput",
    "concordance_index",
    "cox_partial_log_likelihood_loss",
    "GexBertError",
    "ExpressionInputError",
    "ClinicalInputError",
    "OutputExistsError",
    "configure_threads",
    "embed",
    "impute",
    "predict",
    "predict_distribution",
    "PRETRAINED_MODELS",
    "pretrained_path",
    "resolve_model",
]
