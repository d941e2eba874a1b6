"""A quick probe behind the benchmark's fine-tuning settings: end-to-end `GexBertForSequenceClassification` from a
finished benchmark's pretrained model, on random panels, scored on train data only (the benchmark's validation part,
half of it for early stopping and half for the score; test samples are never read).

    OMP_NUM_THREADS=1 python modeling/finetune_probe.py reports/benchmark/tcga31_mirna_log2rpm \
        --panel_size 16 --panels 2 --variants 1.0:3,0.1:3,0.1:8

Each variant is `encoder_learning_rate_ratio:epochs`; prints the held-out accuracy of every panel and variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.inference import predict_classes
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.study.training_runs import finetune_in_memory


def _panel(genes, size: int, seed: int) -> list[str]:
    return sorted(np.random.default_rng([seed, 101]).choice(list(genes), size=size, replace=False).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a benchmark output folder holding results.json and model/")
    parser.add_argument("--panel_size", type=int, default=16)
    parser.add_argument("--panels", type=int, default=2)
    parser.add_argument("--variants", default="1.0:3,0.1:3,0.1:8")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    options = parser.parse_args()
    torch.set_num_threads(1)

    run = Path(options.run)
    results = run / "results.json"
    data_dir = json.loads(results.read_text())["arguments"]["data_dir"] if results.is_file() \
        else f"../shared/data/{run.name}"
    data = load_folder(data_dir)
    model = GexBertForMaskedExpression.from_pretrained(run / "model")
    tokenizer = GexBertTokenizer.from_pretrained(run / "model")
    labels = data.clinical_train[data.label_column].astype(str)
    names = sorted(labels.unique())
    y = labels.map({name: i for i, name in enumerate(names)}).to_numpy()

    validation_rows = np.flatnonzero(data.validation)
    rng = np.random.default_rng(11)
    stop_rows = np.sort(rng.choice(validation_rows, size=len(validation_rows) // 2, replace=False))
    score_rows = np.setdiff1d(validation_rows, stop_rows)
    fit_rows = np.flatnonzero(~data.validation)
    frame = data.raw_train

    def encoded(rows: np.ndarray, with_labels: bool = True) -> EncodedSamples:
        return EncodedSamples.from_frame(tokenizer, frame.iloc[rows], {"labels": y[rows]} if with_labels else None)

    train, stop, score = encoded(fit_rows), encoded(stop_rows), encoded(score_rows, with_labels=False)
    from sklearn.linear_model import LogisticRegression

    for panel_seed in range(options.panels):
        panel = _panel(frame.columns, options.panel_size, panel_seed)
        work = tokenizer.normalize(frame[panel].to_numpy(), panel)
        baseline = LogisticRegression(max_iter=2000).fit(np.nan_to_num(work[fit_rows]), y[fit_rows])
        accuracy = baseline.score(np.nan_to_num(work[score_rows]), y[score_rows])
        print(f"panel {panel_seed} ({options.panel_size} genes), logistic regression: held-out accuracy "
              f"{accuracy:.3f}", flush=True)
    variants = [(float(ratio), float(epochs)) for ratio, epochs in
                (variant.split(":") for variant in options.variants.split(","))]
    for panel_seed in range(options.panels):
        panel = _panel(frame.columns, options.panel_size, panel_seed)
        for ratio, epochs in variants:
            started = time.perf_counter()
            result = finetune_in_memory(model, tokenizer, train, stop, panel, class_names=names, epochs=epochs,
                                        batch_size=32, learning_rate=options.learning_rate,
                                        encoder_learning_rate_ratio=ratio, early_stopping_patience=2,
                                        seed=panel_seed, max_queries=64)
            probabilities = predict_classes(result.model, tokenizer, score, panel_genes=panel, query_unseen=True)
            accuracy = float((probabilities.argmax(1) == y[score_rows]).mean())
            print(f"panel {panel_seed} ({options.panel_size} genes), encoder lr ratio {ratio}, {epochs:g} epochs: "
                  f"held-out accuracy {accuracy:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
