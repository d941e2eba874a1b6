"""A quick probe behind the fine-tuning recipe: `finetune_classifier` from a checkpoint on random panels of a data
folder, scored on train data only (the benchmark's validation part of train: half of it for early stopping and the
probe's L2 choice, half for the score; test samples are never read), beside LR and an MLP on the raw panel.

    OMP_NUM_THREADS=1 python modeling/finetune_probe.py ../shared/data/tcga31_mirna_log2rpm --model tcga31-mirna \
        --panel_size 16 --panels 1 --variants "epochs=0;epochs=2,learning_rate=1e-4"

Each variant (`;`-separated) is a comma list of `FinetuningOptions` fields (`name=value`) over the defaults;
prints the held-out accuracy and macro-F1 of every panel and variant, and the seconds it took.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.inference import class_probabilities, predict
from gexbert_hf.loading import load_model_and_tokenizer
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.training.finetune import FinetuningOptions, finetune_classifier


def _panel(genes, size: int, seed: int) -> list[str]:
    return sorted(np.random.default_rng([seed, size]).choice(list(genes), size=size, replace=False).tolist())


def _variant(text: str) -> dict:
    fields = {item.name: item.type for item in dataclasses.fields(FinetuningOptions)}
    values = {}
    for part in filter(None, text.split(",")):
        name, value = part.split("=")
        kind = fields[name.strip()]
        values[name.strip()] = (value.strip().lower() in ("1", "true", "yes")) if "bool" in str(kind) else \
            (int(value) if kind in ("int", "int | None") else float(value))
    return values


def _scores(y: np.ndarray, predicted: np.ndarray) -> str:
    return f"accuracy {float((predicted == y).mean()):.3f} macro-F1 {f1_score(y, predicted, average='macro'):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="a data folder (expression.tsv.gz, clinical.tsv, split.tsv)")
    parser.add_argument("--model", default="tcga31-mirna")
    parser.add_argument("--panel_size", type=int, default=16)
    parser.add_argument("--panels", type=int, default=1)
    parser.add_argument("--first_panel", type=int, default=0)
    parser.add_argument("--variants", default="epochs=0;epochs=3")
    parser.add_argument("--baselines", action="store_true", help="also LR and MLP on the raw panel")
    parser.add_argument("--max_train", type=int, default=None, help="subsample the fitting rows (speed)")
    options = parser.parse_args()
    torch.set_num_threads(1)

    data = load_folder(options.data_dir)
    model, tokenizer = load_model_and_tokenizer(options.model)
    labels = data.clinical_train[data.label_column].astype(str)
    names = sorted(labels.unique())
    y = labels.map({name: i for i, name in enumerate(names)}).to_numpy()
    validation_rows = np.flatnonzero(data.validation)
    rng = np.random.default_rng(11)
    stop_rows = np.sort(rng.choice(validation_rows, size=len(validation_rows) // 2, replace=False))
    score_rows = np.setdiff1d(validation_rows, stop_rows)
    fit_rows = np.flatnonzero(~data.validation)
    if options.max_train:
        fit_rows = np.sort(rng.choice(fit_rows, size=options.max_train, replace=False))
    frame = data.raw_train

    def encoded(rows: np.ndarray, with_labels: bool = True) -> EncodedSamples:
        return EncodedSamples.from_frame(tokenizer, frame.iloc[rows], {"labels": y[rows]} if with_labels else None)

    train, stop, score = encoded(fit_rows), encoded(stop_rows), encoded(score_rows, with_labels=False)
    for panel_seed in range(options.first_panel, options.first_panel + options.panels):
        panel = _panel(frame.columns, options.panel_size, panel_seed)
        if options.baselines:
            work = np.nan_to_num(tokenizer.normalize(frame[panel].to_numpy(), panel))
            for name, learner in (("LR", LogisticRegression(max_iter=2000)),
                                  ("MLP", MLPClassifier((256,), alpha=0.1, max_iter=300, early_stopping=True,
                                                        random_state=panel_seed))):
                fitted = make_pipeline(StandardScaler(), learner).fit(work[fit_rows], y[fit_rows])
                print(f"panel {panel_seed} ({options.panel_size}) {name}: "
                      f"{_scores(y[score_rows], fitted.predict(work[score_rows]))}", flush=True)
        for text in options.variants.split(";"):
            settings = {"max_queries": 32, "early_stopping_patience": 2, "seed": panel_seed,
                        "panel_seed": panel_seed, "query_unseen": True, "progress": False, **_variant(text)}
            started = time.perf_counter()
            result = finetune_classifier(model, tokenizer, train, stop, names, FinetuningOptions(**settings),
                                         panel_genes=panel)
            probabilities = class_probabilities(predict(result.model, tokenizer, score))  # the config's panel
            kept = result.history[0].get("kept_probe") if result.history and "probe" in result.history[0] else None
            epochs = [entry["epoch"] for entry in result.history if "eval_loss" in entry and "epoch" in entry]
            print(f"panel {panel_seed} ({options.panel_size}) [{text}]: "
                  f"{_scores(y[score_rows], probabilities.argmax(1))} (kept probe {kept}, stop-half "
                  f"macro-F1 {result.metrics.get('macro_f1', float('nan')):.3f}, epochs {epochs[-1:] or 0}, "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
