"""Sharing: Auto-class registration (run on `import gexbert_hf`) and the model-card helpers of the package.

What a saved checkpoint carries besides its weights (model card, full `auto_map`, remote code) is written by
`GexBertPreTrainedModel.save_pretrained` itself, from `checkpoint_gexbert` (which travels as remote code): a save
is the same whether or not this module was imported, and whether the model came from the package or as remote code.
The names below re-export it for the package's commands (`gexbert export` renders the card with fine-tuning metrics).
"""

from __future__ import annotations

import json
import re
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
    is_connection_failure,
    metrics_section,
    model_index,
    panel_section,
    push_checkpoint,
    refuse_offline_push,
    remote_code_example,
    usage_example,
)
from .checkpoint_gexbert import render_model_card as render_card_of
from .configuration_gexbert import GexBertConfig
from .loading import pretrained_path, shipped_name_of_fingerprint
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


# what descends from a shipped checkpoint inherits: its weights come from TCGA patients' data
LICENCE_LINES = "license: other\nlicense_name: tcga-research-use-only"
DATA_TERMS = ("the weights derive from de-identified TCGA patient data released under TCGA's public consent and "
              "data-use terms; use them for research only and respect the TCGA publication guidelines. The "
              "package's apache-2.0 licence covers its code, not these weights.")


def render_model_card(model, extra: dict[str, str] | None = None, metrics: dict | None = None) -> str:
    """The checkpoint's card (`checkpoint_gexbert.render_model_card`) with what only the package knows: a model that
    descends from a shipped checkpoint (same tokenizer fingerprint) inherits its data terms (TCGA, research use
    only: `license: other`, never apache-2.0), names it as `base_model` unless it is that checkpoint, and quotes
    its provenance; test metrics (older runs filed them under validation) go to the `model-index`."""
    parent, is_parent = lineage(model)
    values = {}
    if parent:
        values["license"] = LICENCE_LINES
        values["lineage"] = lineage_section(parent, is_parent)
        if not is_parent:
            values["base_model"] = f"base_model: {parent}\nbase_model_relation: finetune"
    values.update(extra or {})
    return render_card_of(model, values, file_test_metrics(metrics))


def lineage(model) -> tuple[str | None, bool]:
    """The shipped checkpoint `model` descends from (its tokenizer fingerprint), and whether it is that checkpoint
    itself (loaded from its folder); `(None, False)` for a model of its own."""
    parent = shipped_name_of_fingerprint(getattr(model.config, "tokenizer_fingerprint", None))
    if parent is None:
        return None, False
    loaded_from = str(getattr(model, "name_or_path", "") or "")
    return parent, bool(loaded_from) and Path(loaded_from).resolve() == pretrained_path(parent).resolve()


def lineage_section(parent: str | None, is_parent: bool) -> str:
    """The parent's own `Training data and provenance` (with its data terms), quoted from its shipped card."""
    if parent is None:
        return ""
    card = (pretrained_path(parent) / "README.md").read_text()
    match = re.search(r"## Training data and provenance\n(.*?)(?=\n## |\Z)", card, flags=re.S)
    provenance = match.group(1).strip() if match else ""
    what = "is the shipped checkpoint" if is_parent else "descends from the shipped checkpoint"
    return (f"## Parent checkpoint and data terms\n\nThis model {what} `{parent}` (gexbert_hf) and carries its "
            f"terms: {DATA_TERMS}\n\nThe parent's training data, as its card states it:\n\n{provenance}")


def file_test_metrics(metrics: dict | None) -> dict | None:
    """`finetune_metrics.json` with every `test_*` score under `test`: older runs filed them under `validation`."""
    if not metrics:
        return metrics
    filed = {split: dict(values) for split, values in metrics.items() if isinstance(values, dict)}
    for split, values in list(filed.items()):
        if split == "test":
            continue
        for name in [name for name in values if name.startswith("test_")]:
            filed.setdefault("test", {}).setdefault(name.removeprefix("test_"), values.pop(name))
    return filed


def read_finetune_metrics(directory: str | Path) -> dict | None:
    """The `finetune_metrics.json` of a model directory, or None when it has none."""
    path = Path(directory) / FINETUNE_METRICS_NAME
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = [
    "AUTO_CLASSES", "AUTO_MAP", "FINETUNE_METRICS_NAME", "REMOTE_CODE_FILES", "USAGE_EXAMPLES", "complete_checkpoint",
    "file_test_metrics", "full_auto_map", "is_connection_failure", "lineage", "lineage_section", "metrics_section",
    "model_index", "panel_section", "push_checkpoint", "read_finetune_metrics", "refuse_offline_push",
    "register_auto_classes", "remote_code_example", "render_model_card", "usage_example",
]
