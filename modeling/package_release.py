"""Ship a kept benchmark model as a named checkpoint inside the package (gexbert_hf/pretrained/NAME/).

    gexbert benchmark modeling/configs/tcga31_mirna_log2rpm_release.json
    python modeling/package_release.py --name tcga31-mirna --run reports/benchmark/tcga31_mirna_log2rpm/release

The run's `model/` folder is loaded and saved again with this version of the package (config, safetensors weights,
tokenizer, remote-code files), checked to load and to impute finite values, and given a model card written from the run's results.json: training data and its
provenance, recipe, steps, and the test-split imputation metrics against the baselines run in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer, impute
from gexbert_hf.checks import check_tokenizer_matches
from gexbert_hf.pretrained import PRETRAINED_MODELS

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "gexbert_hf" / "pretrained"
PROVENANCE = {
    "tcga31-mirna": ("`tcga31_mirna_log2rpm`: 8,320 primary tumours (one per patient) from 31 TCGA projects x 680 "
                     "miRNA precursors measured in at least 90% of samples, log2(RPM + 1), Illumina HiSeq 2000. "
                     "Source: the public TCGA Firehose 2015-11-01 Level-3 miRNA-seq data as distributed by the "
                     "Bioconductor RTCGA.miRNASeq package (GPL-2)."),
    "tcga13-mrna": ("`tcga13_cbioportal_zscore`: 5,240 primary tumours from 13 TCGA projects x 1,526 genes, "
                    "cBioPortal mRNA z-scores (RSEM-based) computed within each cancer type. Source: the public "
                    "TCGA data as distributed by the mahmoodlab/PORPOISE repository (GPLv3). Per-project "
                    "z-scores: do not use this checkpoint for cancer-type classification."),
}
CONSENT = ("Trained on the train part (80%, stratified by cancer type, seed 0) of the fixed split only; the test "
           "part judged it. TCGA data are de-identified patient data released under TCGA's public consent and "
           "data-use terms; the weights are derived data and carry no sample values, but use them for research "
           "only and respect the TCGA publication guidelines.")


def imputation_table(results: dict) -> str:
    """Mean test-split RMSE and per-gene r of GexBERT and each baseline, per scenario (ties within 1e-3)."""
    per = results["imputation"]["per_scenario"]
    methods = list(next(iter(per.values()))["methods"])
    lines = ["| scenario | " + " | ".join(f"{m} RMSE / r" for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for scenario, entry in per.items():
        cells = [f"{np.mean(entry['methods'][m]['rmse']):.3f} / {np.nanmean(entry['methods'][m]['per_gene_r']):.3f}"
                 for m in methods]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(name: str, results: dict, run: Path) -> str:
    pre, data = results["pretraining"], results["data"]
    config = pre["config"]
    return f"""---
library_name: transformers
tags: [gexbert, transcriptomics, cancer, imputation, tcga]
---

# GexBERT `{name}`

{PRETRAINED_MODELS[name][1]}. A masked-expression autoencoder (GexBERT, Jiang & Hassanpour 2025): one token per
measured gene (gene-identity + expression-level embedding), learned MISSING and MASK tokens, no positions.

## Load it (offline, after `pip install gexbert-hf`)

```python
from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer, impute, pretrained_path

folder = pretrained_path("{name}")
model = GexBertForMaskedExpression.from_pretrained(folder)
tokenizer = GexBertTokenizer.from_pretrained(folder)
filled, uncertainty = impute(model, tokenizer, expression_df)   # samples x genes, NaN = missing
```

Every `gexbert` command that takes `--model` accepts `{name}`.

## Training data and provenance

{PROVENANCE[name]}

Pretrained on all {data['n_train']} training samples ({data['n_validation']} of them also form the validation
part on which the benchmark makes its choices), normalisation `{data['normalization']}`. {CONSENT}

## Recipe

`gexbert benchmark modeling/configs/{run.parent.name}_release.json` then
`python modeling/package_release.py --name {name} --run {run}`: {pre['steps']:,} pretraining steps
({pre['seconds'] / 60:.0f} minutes on a shared 2-core CPU, one torch thread), batch 32, AdamW lr 1e-3 with cosine
decay, mask fraction {pre['mask_fraction']}, {config['max_genes']} genes sampled per sample and step;
{config['hidden_size']} wide, {config['num_hidden_layers']} encoder layers, {config['num_attention_heads']} heads,
{config['decoder_num_layers']} decoder layer, {config['num_levels']} expression levels, {pre['n_parameters']:,}
parameters.

## Test-split imputation against the baselines (same run; mean over {len(results['imputation']['seeds'])} masks)

RMSE on the working scale (lower is better) / mean per-gene Pearson r (higher is better), on
{results['imputation']['n_test_rows']} test samples, GexBERT reading the whole profile:

{imputation_table(results)}

The full report, with plots and the verdicts, is `{run}/report.md` in the repository. Where a baseline is better,
it is better: this CPU-trained checkpoint does not beat KNN / SoftImpute everywhere.
"""


def check_loads(folder: Path) -> None:
    """The shipped folder loads and imputes finite values for a few synthetic rows of its own genes."""
    model = GexBertForMaskedExpression.from_pretrained(folder)
    tokenizer = GexBertTokenizer.from_pretrained(folder)
    values = np.tile(np.nanmedian(tokenizer.level_values, axis=1), (3, 1))  # each gene at its middle level value
    values[:, ::2] = np.nan
    frame = pd.DataFrame(tokenizer.denormalize(values), columns=tokenizer.genes)
    filled, _ = impute(model, tokenizer, frame)
    if not np.isfinite(filled.to_numpy()).all():
        raise SystemExit(f"{folder}: the packaged model imputes non-finite values")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, choices=sorted(PRETRAINED_MODELS))
    parser.add_argument("--run", required=True, type=Path, help="a benchmark output folder with model/ kept")
    args = parser.parse_args(argv)
    results = json.loads((args.run / "results.json").read_text())
    target = PACKAGE_DIR / PRETRAINED_MODELS[args.name][0]
    with tempfile.TemporaryDirectory(dir=PACKAGE_DIR.parent) as staging:
        staging = Path(staging)
        model = GexBertForMaskedExpression.from_pretrained(args.run / "model")
        tokenizer = GexBertTokenizer.from_pretrained(args.run / "model")
        check_tokenizer_matches(tokenizer, model.config, source=str(args.run / "model"))
        model.save_pretrained(staging)  # re-saved, so the remote-code files are this package version's
        tokenizer.save_pretrained(staging)
        for code in staging.glob("*.py"):  # inside the package, the package is the code: one copy, not two;
            code.unlink()                  # save_pretrained / push_to_hub write these files again for the hub
        (staging / "README.md").write_text(model_card(args.name, results, args.run))
        check_loads(staging)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, target)
    size = sum(path.stat().st_size for path in target.iterdir()) / 2**20
    print(f"shipped {args.name} -> {target} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
