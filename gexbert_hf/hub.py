"""Sharing: Auto-class registration, the remote-code `auto_map`, and the model card every checkpoint carries."""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
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
MODEL_CARD_TEMPLATE = "model_card.md"
# The tokenizer travels too (with the errors it raises), so a checkpoint turns a table into inputs without the package.
REMOTE_CODE_FILES = ("configuration_gexbert.py", "modeling_gexbert.py", "tokenization_gexbert.py", "errors_gexbert.py")


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
    auto_map = {"AutoConfig": "configuration_gexbert.GexBertConfig"}
    auto_map.update({auto: f"modeling_gexbert.{model.__name__}" for auto, model in AUTO_CLASSES.items()})
    auto_map.update(GexBertTokenizer.auto_class_entry()["auto_map"])
    return auto_map


def render_model_card(model: PreTrainedModel, extra: dict[str, str] | None = None) -> str:
    """`model_card.md` with the checkpoint's own facts filled in (architecture, size, genes, levels)."""
    template = resources.files("gexbert_hf").joinpath(MODEL_CARD_TEMPLATE).read_text()
    config = model.config
    values = {
        "model_class": type(model).__name__,
        "num_parameters": f"{model.num_parameters():,}",
        "num_genes": str(config.vocab_size - 2),
        "num_levels": str(config.num_levels),
        "hidden_size": str(config.hidden_size),
        "num_hidden_layers": str(config.num_hidden_layers),
        "num_attention_heads": str(config.num_attention_heads),
        "value_embedding": config.value_embedding,
        "pooling": config.pooling,
        "labels": ", ".join(config.id2label[i] for i in sorted(config.id2label)) if config.num_labels else "none",
    }
    values.update(extra or {})
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def complete_checkpoint(model: PreTrainedModel, save_directory: str | Path) -> None:
    """After `save_pretrained`: README.md from the model card, the full `auto_map`, and the remote-code files, so
    that every head (survival included, which has no Auto class to trigger the copy) and the tokenizer travel."""
    directory = Path(save_directory)
    (directory / "README.md").write_text(render_model_card(model))
    package = resources.files("gexbert_hf")
    for name in REMOTE_CODE_FILES:
        target = directory / name
        if not target.exists():
            target.write_text(package.joinpath(name).read_text())
    config_path = directory / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        config["auto_map"] = full_auto_map()
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def push_checkpoint(
    model: PreTrainedModel,
    repo_id: str,
    tokenizer=None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload GexBERT model",
    revision: str | None = None,
    create_pr: bool = False,
) -> object:
    """Upload model (safetensors, remote code, model card) and tokenizer with the standard hub client.

    transformers' own `push_to_hub` replaces README.md with a generic card fetched from the hub; this keeps ours.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                 revision=revision, create_pr=create_pr)
