#!/usr/bin/env python
"""Three (four) ways to decode a hidden value from one forward pass, on the validation rows and masks of
`modeling/pretrain_release_gpu.py`'s validation.json, for each shipped checkpoint and the previous (CPU) release:

    OMP_NUM_THREADS=1 python modeling/decoding_probe.py --data_root ../shared/data \
        --output reports/pretraining_gpu/decoding.json

- `level_mean`: the mean of the predicted level distribution (what `gexbert_hf.inference.impute` returns);
- `value_head`: the regression head's standardised value, mapped back with `tokenizer.unstandardize`;
- `average`: the mean of the two;
- `level_median`: the median level of the distribution (its central interval of zero width).

Every measured gene is context (whole profiles, as validation.json). KNN (`impute_knn`, the k the benchmark tuned
on this folder, every train-minus-validation row as reference) fills the same cells, for reference. Scores: RMSE on
the working scale and mean per-gene r over the hidden cells. The previous release is read from git (`--previous`);
it was pretrained on every train row, the validation rows included, so its validation scores are not held out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.configuration_gexbert import MASK_LEVEL_ID
from gexbert_hf.expression_input_gexbert import as_expression_frame
from gexbert_hf.inference import forward_batches
from gexbert_hf.inputs_gexbert import build_model_inputs
from gexbert_hf.metrics import per_gene_pearson, rmse
from gexbert_hf.study.baselines import impute_knn
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.study.imputation_benchmark import mean_per_gene_r
from gexbert_hf.study.release_validation import VALIDATION_RATES, validation_mask

REPOSITORY = Path(__file__).resolve().parents[1]
FOLDERS = {"tcga31_mirna_log2rpm": "tcga31-mirna", "tcga13_cbioportal_zscore": "tcga13-mrna"}
STAGE2_RUNS = {"tcga31_mirna_log2rpm": "tcga31_stage2", "tcga13_cbioportal_zscore": "tcga13_stage2"}
DECODINGS = ("level_mean", "value_head", "average", "level_median")
PREVIOUS_COMMIT = "980711d"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_root", type=Path, default=REPOSITORY.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "reports" / "pretraining_gpu" / "decoding.json")
    parser.add_argument("--rows", type=int, default=400, help="validation rows scored (validation.json: 400)")
    parser.add_argument("--previous", default=PREVIOUS_COMMIT, help="the commit holding the previous release")
    parser.add_argument("--folders", default=",".join(FOLDERS))
    parser.add_argument("--batch_size", type=int, default=32)
    return parser.parse_args(argv)


def decoded_values(model, tokenizer: GexBertTokenizer, masked: pd.DataFrame, batch_size: int
                   ) -> dict[str, np.ndarray]:
    """Every decoding of every cell of `masked` (NaN = hidden, a MASK token), working scale, in its column order."""
    encoded = tokenizer.encode_known(tokenizer.select_known(as_expression_frame(masked)))
    if encoded["genes"] != list(masked.columns):
        raise ValueError("the validation genes are not the model's vocabulary in the same order")
    gene_ids = encoded["gene_ids"]
    level_ids = np.where(np.isnan(encoded["normalized"]), MASK_LEVEL_ID, encoded["level_ids"])

    def read(outputs, batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probabilities = torch.softmax(outputs.level_logits[:, 1:].float(), dim=-1).cpu().numpy()
        mean, _ = tokenizer.level_distribution_moments(probabilities, gene_ids)
        median, _ = tokenizer.level_distribution_interval(probabilities, gene_ids, coverage=0.0)
        value = tokenizer.unstandardize(outputs.value_predictions[:, 1:].float().cpu().numpy(), gene_ids)
        return mean, value, median

    parts = forward_batches(model, len(level_ids), batch_size,
                            lambda rows: build_model_inputs(gene_ids, level_ids[rows], encoded["values"][rows],
                                                            missing="restore"),
                            read)
    mean, value, median = (np.concatenate(part) for part in zip(*parts))
    return {"level_mean": mean, "value_head": value, "average": (mean + value) / 2, "level_median": median}


def scores(truth: np.ndarray, predicted: np.ndarray, hidden: np.ndarray) -> dict[str, float]:
    """RMSE and mean per-gene r as validation.json has them (genes with an undefined r left out: `genes_scored`
    counts the rest), and the benchmark's mean per-gene r (`per_gene_r_benchmark`: a gene whose prediction does
    not vary counts 0, as a discrete read-out such as the median can make it)."""
    r = per_gene_pearson(truth, predicted, hidden)
    return {"rmse": rmse(truth, predicted, hidden), "per_gene_r": float(np.nanmean(r)),
            "genes_scored": int(np.isfinite(r).sum()),
            "per_gene_r_benchmark": mean_per_gene_r(truth, predicted, hidden)}


def tail_weight(truth: np.ndarray, top: float = 0.001) -> dict[str, float]:
    """How much a few cells weigh in a squared error: the share of the summed squared (centred) working-scale values
    held by the `top` fraction of cells, and the largest absolute centred value."""
    centred = np.abs(truth - np.nanmean(truth, axis=0))
    squares = np.sort(centred[~np.isnan(centred)] ** 2)[::-1]
    return {"top_fraction": top, "share_of_squares": float(squares[: max(1, int(top * len(squares)))].sum()
                                                           / squares.sum()),
            "max_abs_centred": float(np.sqrt(squares[0]))}


def score_model(folder: Path, tokenizer: GexBertTokenizer, rows: pd.DataFrame, truth: np.ndarray,
                masks: dict[str, np.ndarray], batch_size: int) -> dict:
    """Every decoding of the checkpoint in `folder` scored at every rate."""
    model = GexBertForMaskedExpression.from_pretrained(folder).float().eval()
    started = time.perf_counter()
    record: dict = {"parameters": model.num_parameters(), "hidden_size": model.config.hidden_size,
                    "num_hidden_layers": model.config.num_hidden_layers}
    for rate, hidden in masks.items():
        decoded = decoded_values(model, tokenizer, rows.mask(hidden), batch_size)
        record[rate] = {name: scores(truth, decoded[name], hidden) for name in DECODINGS}
    record["seconds"] = time.perf_counter() - started
    return record


def previous_release(commit: str, destination: Path) -> Path:
    """The shipped checkpoints as of `commit`, unpacked under `destination`."""
    archive = subprocess.run(["git", "archive", commit, "gexbert_hf/pretrained"], cwd=REPOSITORY, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination / "gexbert_hf" / "pretrained"


def git_json(commit: str, path: str) -> dict:
    return json.loads(subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPOSITORY, check=True,
                                     capture_output=True, text=True).stdout)


def previous_record(commit: str, folder: str) -> dict:
    """How the previous release was pretrained, from its benchmark run's results.json at `commit`."""
    results = git_json(commit, f"reports/benchmark/{folder}/release/results.json")
    pretraining, arguments = results["pretraining"], results["arguments"]
    # a record written since the benchmark nests its options keeps them under "pretraining"; `commit` may be older
    trained = arguments["pretraining"] if "pretraining" in arguments else arguments
    return {"commit": commit, "source": f"reports/benchmark/{folder}/release/results.json",
            "device": results["machine"]["device"], "torch_threads": results["machine"]["torch_threads"],
            "steps": pretraining["steps"], "train_seconds": pretraining["seconds"],
            "batch_size": trained["batch_size"], "max_genes": trained["max_genes"],
            "mask_fraction": pretraining["mask_fraction"], "final_loss": pretraining["final_loss"],
            "pretrained_rows": results["data"]["n_train"], "validation_rows_in_pretraining": True,
            "knn_k": results["imputation"]["chosen"]["KNN_k"]}


def probe_folder(data_root: Path, folder: str, previous: Path, commit: str, n_rows: int, batch_size: int) -> dict:
    data = load_folder(data_root / folder, seed=0)
    shipped = REPOSITORY / "gexbert_hf" / "pretrained" / FOLDERS[folder]
    tokenizer = GexBertTokenizer.from_pretrained(shipped)
    if GexBertTokenizer.from_pretrained(previous / FOLDERS[folder]).fingerprint != tokenizer.fingerprint:
        raise ValueError(f"{folder}: the previous release's tokenizer differs from the shipped one")
    genes = list(data.raw_train.columns)
    rows = data.raw_train[data.validation].iloc[:n_rows]
    truth = tokenizer.normalize(rows.to_numpy(), genes)
    masks = {f"mcar{int(rate * 100)}": validation_mask(truth, rate) for rate in VALIDATION_RATES}
    before = previous_record(commit, folder)
    types = data.clinical_train[data.label_column] if data.label_column else None
    record: dict = {"rows": len(rows), "genes": len(genes), "hidden_cells": {k: int(m.sum()) for k, m in masks.items()},
                    "truth_tail": tail_weight(truth),
                    "types_in_rows": int(types[data.validation].iloc[:n_rows].nunique()) if types is not None else None,
                    "types_in_validation": int(types[data.validation].nunique()) if types is not None else None}

    reference = tokenizer.normalize(data.raw_train[~data.validation].to_numpy(), genes)
    started = time.perf_counter()
    knn = {rate: scores(truth, impute_knn(reference, np.where(hidden, np.nan, truth), k=before["knn_k"]), hidden)
           for rate, hidden in masks.items()}
    record["knn"] = {"k": before["knn_k"], "k_source": f"{commit}:{before['source']} imputation.chosen.KNN_k",
                     "reference_rows": len(reference), "seconds": time.perf_counter() - started, **knn}

    stage2 = json.loads((REPOSITORY / "reports" / "pretraining_gpu" / STAGE2_RUNS[folder] / "validation.json")
                        .read_text())
    current = score_model(shipped, tokenizer, rows, truth, masks, batch_size)
    current.update(checkpoint=f"gexbert_hf/pretrained/{FOLDERS[folder]}", run=STAGE2_RUNS[folder],
                   level_mean_minus_validation_json={
                       rate: current[rate]["level_mean"]["rmse"] - stage2["validation"][rate]["rmse"]
                       for rate in masks} if len(rows) == stage2["validation_rows"] else None)
    old = score_model(previous / FOLDERS[folder], tokenizer, rows, truth, masks, batch_size)
    old.update(checkpoint=f"{commit}:gexbert_hf/pretrained/{FOLDERS[folder]}", pretraining=before)
    record["models"] = {"shipped": current, "previous_release": old}
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    result: dict = {"description": __doc__.split("\n\n")[0].replace("\n", " "), "decodings": list(DECODINGS),
                    "masks": "validation_mask(truth, rate, seed 0) of modeling/pretrain_release_gpu.py",
                    "validation_rows": "load_folder(seed 0) validation part, first rows", "torch_threads": 1,
                    "folders": {}}
    with tempfile.TemporaryDirectory() as scratch:
        previous = previous_release(args.previous, Path(scratch))
        for folder in args.folders.split(","):
            result["folders"][folder] = probe_folder(args.data_root, folder, previous, args.previous, args.rows,
                                                     args.batch_size)
            print(folder, json.dumps(result["folders"][folder]), flush=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
