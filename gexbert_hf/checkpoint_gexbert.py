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
license: apache-2.0
pipeline_tag: feature-extraction
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
---

# GexBERT ({{model_class}})

A transformer autoencoder for bulk tumour transcriptomes (Jiang & Hassanpour, 2025), built with
[gexbert_hf](https://pypi.org/project/gexbert-hf/). Each sample is a *set* of tokens, one per measured gene:
a gene-identity embedding plus an embedding of that gene's expression ({{value_embedding}} value embedding).
There is no positional encoding. Missing values enter as a MISSING token, genes to restore as a MASK token.

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

```python
from transformers import AutoFeatureExtractor, AutoModelForMaskedLM

tokenizer = AutoFeatureExtractor.from_pretrained(checkpoint, trust_remote_code=True)  # the GexBERT tokenizer
model = AutoModelForMaskedLM.from_pretrained(checkpoint, trust_remote_code=True)
outputs = model(**tokenizer(expression_df))  # level_logits, value_predictions
```

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
REMOTE_CODE_NOTE = ("Without the package: `AutoModel.from_pretrained(checkpoint, trust_remote_code=True)` loads the "
                    "encoder from the model files shipped in this folder.")



def render_model_card(model, extra: dict[str, str] | None = None, metrics: dict | None = None) -> str:
    """The model card with the checkpoint's own facts filled in (architecture, size, genes, levels), a usage
    example for its head, its gene panel and, when given, its fine-tuning metrics (`finetune_metrics.json`)."""
    config = model.config
    model_class = type(model).__name__
    classifier = model_class == "GexBertForSequenceClassification"
    values = {
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
        card = card.replace("{{" + key + "}}", value)
    return re.sub(r"\n{3,}", "\n\n", card)  # a section this checkpoint lacks leaves no gap


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

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                 revision=revision, create_pr=create_pr)


__all__ = ["AUTO_MAP", "FINETUNE_METRICS_NAME", "REMOTE_CODE_FILES", "complete_checkpoint", "push_checkpoint",
           "render_model_card"]
