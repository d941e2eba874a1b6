"""What every saved GexBERT checkpoint carries besides its weights: the model card (README.md), the full `auto_map`
and the remote code, written by `GexBertPreTrainedModel.save_pretrained` itself.

This file travels with the model as hub remote code (`modeling_gexbert` imports it), so it imports only the standard
library (and `huggingface_hub`, a transformers dependency, when uploading): a checkpoint saved by a model loaded with
`trust_remote_code=True` in a process without gexbert_hf gets the same card and `auto_map` as one saved with the
package installed.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

from .errors_gexbert import HubConnectionError, one_line

FINETUNE_METRICS_NAME = "finetune_metrics.json"  # written by `gexbert finetune` beside the model it saves
# The model code, and the tokenizer's (with its siblings and the errors it raises), so a checkpoint turns a table
# into inputs and predictions without the package.
REMOTE_CODE_FILES = ("configuration_gexbert.py", "modeling_gexbert.py", "checkpoint_gexbert.py",
                     "tokenization_gexbert.py", "errors_gexbert.py", "expression_input_gexbert.py",
                     "levels_gexbert.py", "inputs_gexbert.py")
# Every Auto class a GexBERT checkpoint answers to, so any head's checkpoint loads as any other via remote code
# (`AutoModel.from_pretrained(dir_of_a_classifier, trust_remote_code=True)` gives the encoder). Masked-expression
# restoration is the closest fit to masked language modelling; survival has no Auto class in transformers.
AUTO_MAP = {
    "AutoConfig": "configuration_gexbert.GexBertConfig",
    "AutoModel": "modeling_gexbert.GexBertModel",
    "AutoModelForMaskedLM": "modeling_gexbert.GexBertForMaskedExpression",
    "AutoModelForSequenceClassification": "modeling_gexbert.GexBertForSequenceClassification",
    "AutoFeatureExtractor": "tokenization_gexbert.GexBertTokenizer",
}
MODEL_CARD_TEMPLATE = """---
library_name: transformers
{{license}}
pipeline_tag: feature-extraction
{{base_model}}
tags:
  - gexbert
  - transcriptomics
  - bulk-rna-seq
  - gene-expression
  - cancer
  - biology
datasets:
  - TCGA
metrics:
  - accuracy
  - f1
  - concordance_index
  - rmse
{{model_index}}
---

# GexBERT ({{model_class}})

A transformer autoencoder for bulk tumour transcriptomes (Jiang & Hassanpour, 2025), built with
[gexbert_hf](https://pypi.org/project/gexbert-hf/). Each sample is a *set* of tokens, one per measured gene:
a gene-identity embedding plus an embedding of that gene's expression ({{value_embedding}} value embedding).
There is no positional encoding. A missing value is left out of the input, or enters as a MASK token where it is
to be restored (imputation), as do genes to restore.

| | |
|---|---|
| parameters | {{num_parameters}} |
| genes in the vocabulary | {{num_genes}} |
| expression levels | {{num_levels}} |
| hidden size / layers / heads | {{hidden_size}} / {{num_hidden_layers}} / {{num_attention_heads}} |
| sample embedding | {{pooling}} pooling |
| labels | {{labels}} |

## Use

{{usage}}

{{panel}}

Without the package, the code shipped in this folder does the same work:

{{remote_code}}

{{lineage}}

{{metrics}}

## Intended use and limits

- Research on bulk RNA-seq / miRNA-seq profiles: tumour-type classification from small gene panels, restoration of
  unmeasured prognostic genes for survival models, and imputation of missing values.
- The tokenizer's expression levels are fitted on the training cohort: profiles from another platform or
  normalisation must be brought to the same scale (or the tokenizer refitted) before use.
- Not a diagnostic device. Predictions on a new cohort must be validated on that cohort.
- Trained on TCGA-derived data; TCGA under-represents many populations, and so may this model.

## Training data and evaluation

See the `reports/` folder of the gexbert_hf repository for the benchmark protocol (fixed TCGA train/test split,
baselines run in the same run) and every number measured, including those where GexBERT loses.
"""

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
REMOTE_AUTO_CLASS = {"GexBertForMaskedExpression": "AutoModelForMaskedLM",
                     "GexBertForSequenceClassification": "AutoModelForSequenceClassification",
                     "GexBertModel": "AutoModel"}
# the hub's task of each fine-tuned head, for the `model-index` its test scores are filed under
MODEL_INDEX_TASKS = {"GexBertForSequenceClassification": ("tabular-classification", "tumour classification"),
                     "GexBertForSurvival": ("tabular-regression", "survival risk (Cox)")}
NOT_UPLOADED_HINT = "save it locally with `model.save_pretrained(folder)` or `gexbert export`, and push when online"
REMOTE_CODE_NOTE = ("Without the package: `AutoModel.from_pretrained(checkpoint, trust_remote_code=True)` loads the "
                    "encoder from the model files shipped in this folder.")



def render_model_card(model, extra: dict[str, str] | None = None, metrics: dict | None = None) -> str:
    """The model card with the checkpoint's own facts filled in (architecture, size, genes, levels), a usage
    example for its head (with the package and without), its gene panel and, when given, its fine-tuning metrics
    (`finetune_metrics.json`; test scores also as the front matter's `model-index`). `extra` overrides any field:
    the package adds the parent checkpoint's terms and provenance (`gexbert_hf.hub.render_model_card`)."""
    config = model.config
    model_class = type(model).__name__
    classifier = model_class == "GexBertForSequenceClassification"
    base_model = getattr(config, "base_model", None)
    values = {
        "license": "license: apache-2.0",
        "base_model": f"base_model: {base_model}" if base_model else "",
        "model_index": model_index(model_class, (metrics or {}).get("test")),
        "remote_code": remote_code_example(model_class),
        "lineage": "",
        "model_class": model_class,
        "num_parameters": f"{model.num_parameters():,}",
        "num_genes": str(config.vocab_size - 2),
        "num_levels": str(config.num_levels),
        "hidden_size": str(config.hidden_size),
        "num_hidden_layers": str(config.num_hidden_layers),
        "num_attention_heads": str(config.num_attention_heads),
        "value_embedding": config.value_embedding,
        "pooling": config.pooling,
        "labels": ", ".join(config.id2label[i] for i in sorted(config.id2label)) if classifier else "none",
        "usage": usage_example(model_class),
        "panel": panel_section(config),
        "metrics": metrics_section(metrics),
    }
    values.update(extra or {})
    card = MODEL_CARD_TEMPLATE
    for key, value in values.items():
        if not value:  # an empty front-matter line goes altogether
            card = card.replace("{{" + key + "}}\n", "")
        card = card.replace("{{" + key + "}}", value)
    return re.sub(r"\n{3,}", "\n\n", card)  # a section this checkpoint lacks leaves no gap


def remote_code_example(model_class: str) -> str:
    """Loading this head without the package: the Auto class that matches it (survival has none: its class comes
    from the shipped code through transformers' dynamic-module loader)."""
    auto_class = REMOTE_AUTO_CLASS.get(model_class)
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
            f"  # {REMOTE_OUTPUTS.get(model_class, REMOTE_OUTPUTS['GexBertModel'])}\n```")


def model_index(model_class: str, test: dict | None) -> str:
    """The `model-index` block of the front matter: the held-out test scores, as the hub reads them."""
    task = MODEL_INDEX_TASKS.get(model_class)
    scores = {name: value for name, value in (test or {}).items()
              if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and "runtime" not in name and "per_second" not in name}
    if task is None or not scores:
        return ""
    from huggingface_hub import EvalResult, ModelCardData  # a transformers dependency

    results = [EvalResult(task_type=task[0], task_name=task[1], dataset_type="custom", dataset_name="held-out test split",
                          dataset_split="test", metric_type=name, metric_value=float(value), metric_name=f"test {name}")
               for name, value in scores.items()]
    return ModelCardData(model_name=f"gexbert-{model_class}", eval_results=results).to_yaml().rstrip("\n")


def usage_example(model_class: str) -> str:
    """The card's `Use` section: code that fits the head, then how to load it without the package."""
    return USAGE_EXAMPLES.get(model_class, USAGE_EXAMPLES["GexBertModel"]) + "\n\n" + REMOTE_CODE_NOTE


def panel_section(config) -> str:
    """The genes a fine-tuned model reads (its `panel_genes`); nothing for a model that reads any gene."""
    panel = config.panel_genes
    if not panel:
        return ""
    queries = ("Every other vocabulary gene enters as a MASK query (restored, not read). "
               if config.query_unseen else "")
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


def complete_checkpoint(model, save_directory: str | Path) -> None:
    """After transformers' `save_pretrained`: README.md from the model card, the full `auto_map`, and the remote-code
    files beside this module, so that every head (survival included, which has no Auto class to trigger
    transformers' copy) and the tokenizer travel. Files already in the folder are left as they are."""
    directory = Path(save_directory)
    (directory / "README.md").write_text(render_model_card(model))
    code_dir = Path(__file__).parent
    for name in REMOTE_CODE_FILES:
        source, target = code_dir / name, directory / name
        if source.is_file() and not target.exists():  # as remote code: only the files that were fetched
            target.write_text(source.read_text())
    config_path = directory / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        config["auto_map"] = dict(AUTO_MAP)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def push_checkpoint(
    model,
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


def is_connection_failure(error: BaseException) -> bool:
    """No route to the hub: offline mode, DNS, refused or timed-out connections (the hub client's HTTP library
    raises its own transport errors, which are no `ConnectionError`)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "ConnectError", "ConnectTimeout", "Timeout", "NetworkError"})


__all__ = ["AUTO_MAP", "FINETUNE_METRICS_NAME", "REMOTE_CODE_FILES", "complete_checkpoint", "is_connection_failure",
           "model_index", "push_checkpoint", "refuse_offline_push", "remote_code_example",
           "render_model_card"]
