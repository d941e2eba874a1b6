"""Sharing: Auto-class registration (run on `import gexbert_hf`) and the model-card helpers of the package.

What a saved checkpoint carries besides its weights (model card, full `auto_map`, remote code) is written by
`GexBertPreTrainedModel.save_pretrained` itself, from `checkpoint_gexbert` (which travels as remote code): a save
is the same whether or not this module was imported, and whether the model came from the package or as remote code.
The names below re-export it for the package's commands (`gexbert export` renders the card with fine-tuning metrics).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from .checkpoint_gexbert import (
    AUTO_MAP,
    FINETUNE_METRICS_NAME,
    REMOTE_CODE_FILES,
    USAGE_EXAMPLES,
    complete_checkpoint,
    metrics_section,
    panel_section,
    push_checkpoint,
    render_model_card,
    usage_example,
)
from .configuration_gexbert import GexBertConfig
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertModel,
)
from .tokenization_gexbert import AUTO_CLASS as TOKENIZER_AUTO_CLASS
from .tokenization_gexbert import GexBertTokenizer

# Masked-expression restoration is the closest fit to masked language modelling. Survival has no Auto class in
# transformers; its checkpoints load with `GexBertForSurvival.from_pretrained` or, via `auto_map`, remote code.
AUTO_CLASSES = {
    "AutoModel": GexBertModel,
    "AutoModelForMaskedLM": GexBertForMaskedExpression,
    "AutoModelForSequenceClassification": GexBertForSequenceClassification,
}


def register_auto_classes() -> None:
    """Register config and models with the local Auto classes and mark them for remote-code export."""
    AutoConfig.register(GexBertConfig.model_type, GexBertConfig, exist_ok=True)
    AutoModel.register(GexBertConfig, GexBertModel, exist_ok=True)
    AutoModelForMaskedLM.register(GexBertConfig, GexBertForMaskedExpression, exist_ok=True)
    AutoModelForSequenceClassification.register(GexBertConfig, GexBertForSequenceClassification, exist_ok=True)
    AutoFeatureExtractor.register(GexBertConfig, GexBertTokenizer, exist_ok=True)
    GexBertConfig.register_for_auto_class()
    GexBertTokenizer.register_for_auto_class(TOKENIZER_AUTO_CLASS)
    for auto_class, model_class in AUTO_CLASSES.items():
        model_class.register_for_auto_class(auto_class)


def full_auto_map() -> dict[str, str]:
    """Every Auto class a GexBERT checkpoint answers to, so any head's checkpoint loads as any other via remote
    code (`AutoModel.from_pretrained(dir_of_a_classifier, trust_remote_code=True)` gives the encoder)."""
    return dict(AUTO_MAP)


def read_finetune_metrics(directory: str | Path) -> dict | None:
    """The `finetune_metrics.json` of a model directory, or None when it has none."""
    path = Path(directory) / FINETUNE_METRICS_NAME
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = [
    "AUTO_CLASSES", "AUTO_MAP", "FINETUNE_METRICS_NAME", "REMOTE_CODE_FILES", "USAGE_EXAMPLES", "complete_checkpoint",
    "full_auto_map", "metrics_section", "panel_section", "push_checkpoint", "read_finetune_metrics",
    "register_auto_classes", "render_model_card", "usage_example",
]
