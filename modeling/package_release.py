"""Ship a trained model as a named checkpoint inside the package (gexbert_hf/pretrained/NAME/).

    bash modeling/gpu_release_runs.sh DATA_ROOT OUT 6.8                 # GPU lease: stage 1 (six designs)
    bash modeling/gpu_release_continue.sh DATA_ROOT STAGE1 OUT 3.6       # GPU lease: stage 2 of the chosen design
    python modeling/package_release.py --name tcga31-mirna --model RUN2/model \
        --training reports/pretraining_gpu/tcga31_w128_range reports/pretraining_gpu/tcga31_stage2
    gexbert benchmark modeling/configs/tcga31_mirna_log2rpm_release.json   # test split, --pretrained_model NAME
    python modeling/package_release.py --name tcga31-mirna --training ... \
        --benchmark reports/benchmark/tcga31_mirna_log2rpm/release        # the card gets the test metrics

The model folder is loaded and saved again with this version of the package (config, safetensors weights,
tokenizer), checked to load and to impute finite values, and given a model card written from the training records
(`validation.json` of each stage: recipe, steps, device, validation scores) and, once measured, the benchmark's
test-split imputation metrics against the baselines of the same run. Without `--model` only the card is rewritten.
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
from gexbert_hf.input_scale import expected_input
from gexbert_hf.loading import PRETRAINED_MODELS, check_tokenizer_matches, pretrained_path

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


def stage_line(record: dict) -> str:
    """One training stage of the recipe, from its validation.json."""
    arguments = record["arguments"]
    rate = (f"per-sample mask rate drawn from [{arguments['mask_fraction']}, {arguments['max_mask_fraction']}]"
            if arguments.get("max_mask_fraction") not in (None, "None") else f"mask rate {arguments['mask_fraction']}")
    start = "from the previous stage" if arguments.get("init_from") not in (None, "None") else "from scratch"
    return (f"- {start}: {record['steps']:,} steps in {record['train_seconds'] / 60:.1f} min on one {record['device']} "
            f"(bf16), batch {arguments['batch_size']}, peak lr {arguments['learning_rate']}, {rate}, whole profiles; "
            f"held-out restoration loss {record['eval_loss']:.3f}")


def validation_table(records: list[dict]) -> str:
    """Validation RMSE / per-gene r after each stage (the benchmark's validation part, never test)."""
    rates = list(records[0]["validation"])
    lines = ["| after | " + " | ".join(f"{rate} RMSE / r" for rate in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for number, record in enumerate(records, 1):
        cells = [f"{record['validation'][rate]['rmse']:.3f} / {record['validation'][rate]['per_gene_r']:.3f}"
                 for rate in rates]
        lines.append(f"| stage {number} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_section(results: dict | None, benchmark: Path | None) -> str:
    if results is None:
        return "Not measured yet: run the benchmark command above, then this script with `--benchmark`."
    return (f"RMSE on the working scale (lower is better) / mean per-gene Pearson r (higher is better), on "
            f"{results['imputation']['n_test_rows']} test samples, mean over {len(results['imputation']['seeds'])} "
            f"masks, GexBERT reading the whole profile:\n\n{imputation_table(results)}\n\nThe full report, with "
            f"plots and the verdicts, is `{benchmark}/report.md` in the repository. Where a baseline is better, it "
            f"is better: read the verdicts before relying on this checkpoint.")


def model_card(name: str, model: GexBertForMaskedExpression, records: list[dict], results: dict | None,
               benchmark: Path | None) -> str:
    config, folder = model.config, records[0]["data"]
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

Every `gexbert` command that takes `--model` accepts `{name}`; `gexbert evaluate --model {name} --data_dir DIR`
judges it on your own cohort.

## Input it expects

{expected_input(GexBertTokenizer.from_pretrained(pretrained_path(name)))}. Input on another scale is refused at the door
of every command (counts into a log-scale model, log values into a z-score model) with the transform to apply; a
milder shift (another platform or lab) is warned about: adapt the checkpoint to that cohort with `gexbert adapt`.

## Training data and provenance

{PROVENANCE[name]}

Pretrained on the train split of `{folder}` less the validation part the benchmark carves from it (20%, seed 0), on
which the design was chosen. {CONSENT}

## Recipe

{config.hidden_size} wide, {config.num_hidden_layers} encoder layers, {config.num_attention_heads} heads,
{config.decoder_num_layers} decoder layer, {config.num_levels} expression levels, value embedding
`{config.value_embedding}`, {model.num_parameters():,} parameters; trained in two stages with
`modeling/pretrain_release_gpu.py` (driven by `modeling/gpu_release_runs.sh` and `modeling/gpu_release_continue.sh`):

{chr(10).join(stage_line(record) for record in records)}

The design (whole profiles and a per-sample mask rate against 128-gene subsets at a fixed rate, width) was chosen
on the validation part: `reports/pretraining_gpu/README.md`. Validation scores (RMSE on the working scale / mean
per-gene r of hidden values at each MCAR rate):

{validation_table(records)}

## Test-split imputation against the baselines (same run)

{test_section(results, benchmark)}
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
    parser.add_argument("--model", type=Path, help="the trained model folder to ship (omit: rewrite the card only)")
    parser.add_argument("--training", required=True, type=Path, nargs="+",
                        help="each training stage's record folder (validation.json), in order")
    parser.add_argument("--benchmark", type=Path, help="a `gexbert benchmark --pretrained_model NAME` output")
    args = parser.parse_args(argv)
    records = [json.loads((folder / "validation.json").read_text()) for folder in args.training]
    results = json.loads((args.benchmark / "results.json").read_text()) if args.benchmark else None
    target = PACKAGE_DIR / PRETRAINED_MODELS[args.name][0]
    source = args.model if args.model is not None else target
    with tempfile.TemporaryDirectory(dir=PACKAGE_DIR.parent) as staging:
        staging = Path(staging)
        model = GexBertForMaskedExpression.from_pretrained(source)
        tokenizer = GexBertTokenizer.from_pretrained(source)
        check_tokenizer_matches(tokenizer, model.config, source=str(source))
        model.save_pretrained(staging)  # re-saved, so the files are this package version's
        tokenizer.save_pretrained(staging)
        for code in staging.glob("*.py"):  # inside the package, the package is the code: one copy, not two;
            code.unlink()                  # save_pretrained / push_to_hub write these files again for the hub
        (staging / "README.md").write_text(model_card(args.name, model, records, results, args.benchmark))
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
