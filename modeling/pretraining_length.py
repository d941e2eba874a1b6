"""What longer pretraining buys: pretrain GexBERT for several lengths on one folder's train split (the benchmark's
architecture and measured value embedding / mask rate) and score each on the validation part with the benchmark's
own validation metric. Merges the numbers into that folder's results.json (key `pretraining_length`), where the
report picks them up (`report_from_json`).

    OMP_NUM_THREADS=1 python modeling/pretraining_length.py reports/benchmark/tcga3_xena_log2tpm 2000 4000
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.nested_arguments import arguments_from_dict
from gexbert_hf.study.benchmark import BenchmarkArguments, report_from_json
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.study.benchmark_pretraining import pretrain, validation_scores
from gexbert_hf.study.reports import write_json
from gexbert_hf.tokenization_gexbert import GexBertTokenizer


def main(folder: str, steps: list[int]) -> None:
    torch.set_num_threads(1)
    output = Path(folder)
    results = json.loads((output / "results.json").read_text())
    arguments = arguments_from_dict(BenchmarkArguments, {**results["arguments"], "progress": False})
    data = load_folder(arguments.data_dir, seed=arguments.seed)
    tokenizer = GexBertTokenizer.fit(data.raw_train, normalization=data.normalization,
                                     num_levels=arguments.num_levels)
    samples = EncodedSamples.from_frame(tokenizer, data.raw_train)
    embedding = results["pretraining"]["value_embedding"]
    mask = results["pretraining"]["mask_fraction"]
    runs = [{"steps": results["pretraining"]["steps"], "seconds": results["pretraining"]["seconds"],
             "final_loss": results["pretraining"]["final_loss"], "validation": results["pretraining"]["validation"],
             "source": "the benchmark's main pretraining"}]
    for count in steps:
        started = time.perf_counter()
        model, record = pretrain(tokenizer, samples, arguments, embedding, mask, count, "cpu")
        runs.append({"steps": record["steps"], "seconds": record["seconds"], "final_loss": record["final_loss"],
                     "validation": validation_scores(model, tokenizer, data, chunk=2 * arguments.pretraining.max_genes),
                     "source": "modeling/pretraining_length.py"})
        print(f"{count} steps: {runs[-1]['validation']} ({time.perf_counter() - started:.0f} s)", flush=True)
    results["pretraining_length"] = {"value_embedding": embedding, "mask_fraction": mask, "runs": runs}
    write_json(output / "results.json", results)
    report_from_json(output)


if __name__ == "__main__":
    main(sys.argv[1], [int(value) for value in sys.argv[2:]])
