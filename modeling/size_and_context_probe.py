"""A quick probe behind the benchmark's settings: how pretraining length, model width and the number of genes read
per inference pass move GexBERT's imputation on one folder's validation part (train split only), beside KNN and the
column mean on the same masked entries.

    OMP_NUM_THREADS=1 python modeling/size_and_context_probe.py tcga31_mirna_log2rpm --steps 3000 \
        --value_embedding continuous --hidden_size 64 --num_hidden_layers 3 --chunks 128,256,680

Prints per-gene standardised RMSE of the removed entries (lower is better) for 50% and 90% MCAR.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.study.baselines import impute_knn, mcar_mask
from gexbert_hf.study.benchmark import BenchmarkArguments
from gexbert_hf.study.benchmark_arguments import benchmark_pretraining
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.study.benchmark_pretraining import pretrain
from gexbert_hf.study.imputation_benchmark import chunked_distribution
from gexbert_hf.tokenization_gexbert import GexBertTokenizer


def score(filled: np.ndarray, truth: np.ndarray, removed: np.ndarray, scale: np.ndarray) -> float:
    """RMSE of the removed entries on per-gene standardised values."""
    return float(np.sqrt(np.mean((((filled - truth) / scale)[removed]) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a folder name under --data_root")
    parser.add_argument("--data_root", default="../shared/data")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--value_embedding", default="continuous")
    parser.add_argument("--mask_fraction", type=float, default=0.5)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_hidden_layers", type=int, default=3)
    parser.add_argument("--max_genes", type=int, default=128, help="genes sampled per sample and pretraining step")
    parser.add_argument("--chunks", default="256", help="comma-separated genes per inference pass ('all' allowed)")
    parser.add_argument("--rates", default="0.5,0.9")
    parser.add_argument("--rows", type=int, default=200, help="validation samples scored")
    options = parser.parse_args()
    torch.set_num_threads(1)

    data = load_folder(Path(options.data_root) / options.folder)
    tokenizer = GexBertTokenizer.fit(data.raw_train, normalization=data.normalization, num_levels=32)
    samples = EncodedSamples.from_frame(tokenizer, data.raw_train)
    arguments = BenchmarkArguments(data_dir="", output="", progress=False, hidden_size=options.hidden_size,
                                   num_hidden_layers=options.num_hidden_layers,
                                   pretraining=replace(benchmark_pretraining(), max_genes=options.max_genes))
    started = time.perf_counter()
    model, record = pretrain(tokenizer, samples, arguments, options.value_embedding, options.mask_fraction,
                             options.steps, "cpu")
    print(f"pretrained {record['steps']} steps in {time.perf_counter() - started:.0f} s, "
          f"final loss {record['final_loss']:.3f}", flush=True)
    model.eval()

    validation = data.raw_train[data.validation]
    validation = validation.iloc[np.random.default_rng(0).choice(len(validation), size=min(options.rows,
                                                                                            len(validation)),
                                                                  replace=False)]
    genes = list(validation.columns)
    truth = tokenizer.normalize(validation.to_numpy(), genes)
    fit_rows = tokenizer.normalize(data.raw_train[~data.validation].to_numpy(), genes)
    scale = np.nanstd(fit_rows, axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    reference = fit_rows[np.random.default_rng(0).choice(len(fit_rows), size=min(1500, len(fit_rows)),
                                                         replace=False)]
    chunks = [len(genes) if chunk == "all" else int(chunk) for chunk in options.chunks.split(",")]
    for rate in (float(value) for value in options.rates.split(",")):
        mask = mcar_mask(truth.shape, rate, np.random.default_rng([2, int(rate * 100)]))

        knn = impute_knn(reference, np.where(mask, np.nan, truth), k=15)
        print(f"MCAR {rate:.0%}: KNN {score(knn, truth, mask, scale):.3f}, column mean {score(np.where(mask, reference.mean(0), truth), truth, mask, scale):.3f}",
              flush=True)
        for chunk in chunks:
            t0 = time.perf_counter()
            mean = chunked_distribution(model, tokenizer, validation.mask(mask), [], chunk)["mean"]
            print(f"MCAR {rate:.0%}: GexBERT, {chunk} genes per pass {score(mean, truth, mask, scale):.3f} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
