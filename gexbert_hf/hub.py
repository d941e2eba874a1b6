"""Sharing: Auto-class registration, the remote-code `auto_map`, and the model card every checkpoint carries.

How the card gets into a checkpoint: the model file travels as remote code and so imports nothing of this package,
and transformers has no save hook that writes a model card, or copies the remote code of a head without an Auto class
(survival). So `GexBertPreTrainedModel` declares two empty hooks, `checkpoint_completer` and `hub_uploader`, and
`register_auto_classes` (run on `import gexbert_hf`) fills them with `complete_checkpoint` and `push_checkpoint`:
every `save_pretrained` (ours, the Trainer's, a user's) and `push_to_hub` of a GexBERT then carries the card, the
full `auto_map` and the remote code, with no import from the model file back into the package. Loaded as remote code
without the package, the hooks stay empty and transformers' own save and upload apply.
"""

from __future__ import annotations

import json
import math
import re
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
from .errors import HubConnectionError, one_line
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertModel,
    GexBertPreTrainedModel,
)
from .pretrained import pretrained_path, shipped_name_of_fingerprint
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
# The tokenizer travels too (with its siblings and the errors it raises), so a checkpoint turns a table into inputs
# without the package.
REMOTE_CODE_FILES = ("configuration_gexbert.py", "modeling_gexbert.py", "tokenization_gexbert.py", "errors_gexbert.py",
                     "expression_input_gexbert.py", "levels_gexbert.py")
FINETUNE_METRICS_NAME = "finetune_metrics.json"  # written by `gexbert finetune` beside the model it saves
_LOAD = """checkpoint = "path/to/this/folder"  # or its hub repo id
tokenizer = GexBertTokenizer.from_pretrained(checkpoint)"""
# One usage example per head: what this checkpoint is for (prediction for a classifier, imputation for pretraining).
USAGE_EXAMPLES = {
    "GexBertForMaskedExpression": f"""```python
from gexbert_hf import GexBertTokenizer, GexBertForMaskedExpression, embed, impute

{_LOAD}
model = GexBertForMaskedExpression.from_pretrained(checkpoint)
filled, uncertainty = impute(model, tokenizer, expression_df)  # samples x genes, NaN = missing
embeddings = embed(model, tokenizer, expression_df)  # samples x hidden (an AnnData gets obsm["X_gexbert"])
```

Command line: `gexbert impute --model CHECKPOINT --input expression.tsv --output filled.tsv`.""",
    "GexBertForSequenceClassification": f"""```python
from gexbert_hf import GexBertTokenizer, GexBertForSequenceClassification
from gexbert_hf import predict

{_LOAD}
model = GexBertForSequenceClassification.from_pretrained(checkpoint)
predictions = predict(model, tokenizer, expression_df)  # columns: predicted, probability_<label>
```

Command line: `gexbert predict --model CHECKPOINT --input expression.tsv --output predictions.csv` (it first
prints the genes the model needs). `AutoModelForSequenceClassification.from_pretrained(checkpoint)` (after
`import gexbert_hf`, or with `trust_remote_code=True`) loads the same classifier; its inputs come from the
tokenizer above.""",
    "GexBertForSurvival": f"""```python
from gexbert_hf import GexBertTokenizer, GexBertForSurvival
from gexbert_hf import predict

{_LOAD}
model = GexBertForSurvival.from_pretrained(checkpoint)
risk = predict(model, tokenizer, expression_df)["risk"]  # Cox log hazard ratio, higher = earlier event
```

Command line: `gexbert predict --model CHECKPOINT --input expression.tsv --output risk.csv`.""",
    "GexBertModel": f"""```python
from gexbert_hf import GexBertTokenizer, GexBertModel, embed

{_LOAD}
model = GexBertModel.from_pretrained(checkpoint)
embeddings = embed(model, tokenizer, expression_df)  # samples x hidden (an AnnData gets obsm["X_gexbert"])
```""",
}
# what a head's forward returns, for the card's remote-code example
REMOTE_OUTPUTS = {"GexBertForMaskedExpression": "level_logits, value_predictions",
                  "GexBertForSequenceClassification": "logits (one per label)",
                  "GexBertForSurvival": "risk (Cox log hazard ratio)",
                  "GexBertModel": "last_hidden_state, pooler_output (the sample embedding)"}
# the hub's task of each fine-tuned head, for the `model-index` its test scores are filed under
MODEL_INDEX_TASKS = {"GexBertForSequenceClassification": ("tabular-classification", "tumour classification"),
                     "GexBertForSurvival": ("tabular-regression", "survival risk (Cox)")}
# what descends from a shipped checkpoint inherits: its weights come from TCGA patients' data
LICENCE_LINES = "license: other\nlicense_name: tcga-research-use-only"
DATA_TERMS = ("the weights derive from de-identified TCGA patient data released under TCGA's public consent and "
              "data-use terms; use them for research only and respect the TCGA publication guidelines. The "
              "package's apache-2.0 licence covers its code, not these weights.")
REMOTE_CODE_NOTE = ("Without the package: `AutoModel.from_pretrained(checkpoint, trust_remote_code=True)` loads the "
                    "encoder from the model files shipped in this folder.")


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
    GexBertPreTrainedModel.checkpoint_completer = complete_checkpoint  # see the module doc
    GexBertPreTrainedModel.hub_uploader = push_checkpoint


def full_auto_map() -> dict[str, str]:
    """Every Auto class a GexBERT checkpoint answers to, so any head's checkpoint loads as any other via remote
    code (`AutoModel.from_pretrained(dir_of_a_classifier, trust_remote_code=True)` gives the encoder)."""
    auto_map = {"AutoConfig": "configuration_gexbert.GexBertConfig"}
    auto_map.update({auto: f"modeling_gexbert.{model.__name__}" for auto, model in AUTO_CLASSES.items()})
    auto_map.update(GexBertTokenizer.auto_class_entry()["auto_map"])
    return auto_map


def render_model_card(model: PreTrainedModel, extra: dict[str, str] | None = None, metrics: dict | None = None) -> str:
    """`model_card.md` with the checkpoint's own facts filled in (architecture, size, genes, levels), a usage
    example for its head, its gene panel and, when given, its fine-tuning metrics (`finetune_metrics.json`).

    A model that descends from a shipped checkpoint (same tokenizer fingerprint) inherits its data terms (TCGA,
    research use only: `license: other`, never apache-2.0) and, unless it is that checkpoint, names it as
    `base_model`; test metrics go to the `model-index` of the front matter."""
    template = resources.files("gexbert_hf").joinpath(MODEL_CARD_TEMPLATE).read_text()
    config = model.config
    classifier = isinstance(model, GexBertForSequenceClassification)
    parent, is_parent = lineage(model)
    metrics = file_test_metrics(metrics)
    values = {
        "license": LICENCE_LINES if parent else "license: apache-2.0",
        "base_model": f"base_model: {parent}\nbase_model_relation: finetune" if parent and not is_parent else "",
        "model_index": model_index(type(model).__name__, (metrics or {}).get("test")),
        "remote_code": remote_code_example(type(model).__name__),
        "lineage": lineage_section(parent, is_parent),
        "model_class": type(model).__name__,
        "num_parameters": f"{model.num_parameters():,}",
        "num_genes": str(config.vocab_size - 2),
        "num_levels": str(config.num_levels),
        "hidden_size": str(config.hidden_size),
        "num_hidden_layers": str(config.num_hidden_layers),
        "num_attention_heads": str(config.num_attention_heads),
        "value_embedding": config.value_embedding,
        "pooling": config.pooling,
        "labels": ", ".join(config.id2label[i] for i in sorted(config.id2label)) if classifier else "none",
        "usage": usage_example(type(model).__name__),
        "panel": panel_section(config),
        "metrics": metrics_section(metrics),
    }
    values.update(extra or {})
    for key, value in values.items():
        if not value:  # an empty front-matter line goes altogether
            template = template.replace("{{" + key + "}}\n", "")
        template = template.replace("{{" + key + "}}", value)
    return re.sub(r"\n{3,}", "\n\n", template)  # a section this checkpoint lacks leaves no gap


def lineage(model: PreTrainedModel) -> tuple[str | None, bool]:
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


def model_index(model_class: str, test: dict | None) -> str:
    """The `model-index` block of the front matter: the held-out test scores, as the hub reads them."""
    from huggingface_hub import EvalResult, ModelCardData

    task = MODEL_INDEX_TASKS.get(model_class)
    scores = {name: value for name, value in (test or {}).items()
              if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and "runtime" not in name and "per_second" not in name}
    if task is None or not scores:
        return ""
    results = [EvalResult(task_type=task[0], task_name=task[1], dataset_type="custom", dataset_name="held-out test split",
                          dataset_split="test", metric_type=name, metric_value=float(value), metric_name=f"test {name}")
               for name, value in scores.items()]
    return ModelCardData(model_name=f"gexbert-{model_class}", eval_results=results).to_yaml().rstrip("\n")


def remote_code_example(model_class: str) -> str:
    """Loading this head without the package: the Auto class that matches it (survival has none: its class comes
    from the shipped code through transformers' dynamic-module loader)."""
    auto_class = next((auto for auto, model in AUTO_CLASSES.items() if model.__name__ == model_class), None)
    if auto_class is None:
        load = (f'model_class = get_class_from_dynamic_module("modeling_gexbert.{model_class}", checkpoint)\n'
                'model = model_class.from_pretrained(checkpoint)')
        imports = ("from transformers import AutoFeatureExtractor\n"
                   "from transformers.dynamic_module_utils import get_class_from_dynamic_module")
    else:
        load = f"model = {auto_class}.from_pretrained(checkpoint, trust_remote_code=True)"
        imports = f"from transformers import AutoFeatureExtractor, {auto_class}"
    return (f"```python\n{imports}\n\ntokenizer = AutoFeatureExtractor.from_pretrained(checkpoint, "
            f"trust_remote_code=True)  # the GexBERT tokenizer\n{load}\noutputs = model(**tokenizer(expression_df))"
            f"  # {REMOTE_OUTPUTS[model_class]}\n```")


def usage_example(model_class: str) -> str:
    """The card's `Use` section: code that fits the head, then how to load it without the package."""
    return USAGE_EXAMPLES.get(model_class, USAGE_EXAMPLES["GexBertModel"]) + "\n\n" + REMOTE_CODE_NOTE


def panel_section(config) -> str:
    """The genes a fine-tuned model reads (its `panel_genes`); nothing for a model that reads any gene."""
    panel = getattr(config, "panel_genes", None)
    if not panel:
        return ""
    queries = ("Every other vocabulary gene enters as a MASK query (restored, not read). "
               if getattr(config, "query_unseen", False) else "")
    return (f"## Gene panel\n\nThis model was fine-tuned on a panel of {len(panel)} genes and reads only these "
            f"genes; those an input lacks count as not measured. {queries}The list is also in `config.json` "
            f"(`panel_genes`).\n\n<details><summary>{len(panel)} panel genes</summary>\n\n"
            f"{', '.join(map(str, panel))}\n\n</details>")


def metrics_section(metrics: dict | None) -> str:
    """`finetune_metrics.json` (`{split: {metric: value}}`) as a table; speed counters are left out."""
    rows = [(split, name, value) for split, values in (metrics or {}).items() if isinstance(values, dict)
            for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and "runtime" not in name and "per_second" not in name]
    if not rows:
        return ""
    table = "\n".join(f"| {split} | {name} | {value:.4f} |" for split, name, value in rows)
    return (f"## Fine-tuning metrics\n\nAs measured by `gexbert finetune` (`{FINETUNE_METRICS_NAME}`, shipped beside "
            "this card): `validation` is the best epoch on the validation samples, `test` the held-out test split."
            f"\n\n| split | metric | value |\n|---|---|---|\n{table}")


def read_finetune_metrics(directory: str | Path) -> dict | None:
    """The `finetune_metrics.json` of a model directory, or None when it has none."""
    path = Path(directory) / FINETUNE_METRICS_NAME
    return json.loads(path.read_text()) if path.is_file() else None


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

    refuse_offline_push(repo_id)
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
            return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                     revision=revision, create_pr=create_pr)
    except Exception as error:
        if not is_connection_failure(error):
            raise
        raise HubConnectionError(f"push_to_hub {repo_id}: the Hugging Face Hub cannot be reached "
                                 f"({one_line(error)}); nothing was uploaded; {NOT_UPLOADED_HINT}") from None


def refuse_offline_push(repo_id: str) -> None:
    """An upload asked for in offline mode (`HF_HUB_OFFLINE=1`) fails at once, in one line: a command checks this
    before it trains, not after."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubConnectionError(f"push_to_hub {repo_id}: offline mode is on (HF_HUB_OFFLINE=1), nothing was "
                                 f"uploaded; {NOT_UPLOADED_HINT}")


NOT_UPLOADED_HINT = "save it locally with `model.save_pretrained(folder)` or `gexbert export`, and push when online"


def is_connection_failure(error: BaseException) -> bool:
    """No route to the hub: offline mode, DNS, refused or timed-out connections (the hub client's HTTP library
    raises its own transport errors, which are no `ConnectionError`)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "ConnectError", "ConnectTimeout", "Timeout", "NetworkError"})
