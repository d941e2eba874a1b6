"""Fresh-process runs for `levers.py` (run as `python -m gexbert_hf.study.speed.levers_command ...`):

- `MODEL INPUT VARIANT OUTPUT`: what `gexbert impute --only_input_genes` does (load, read, impute, write the filled
  table and its uncertainty sidecar), with the fast levers of VARIANT (e.g. `int8/passes256`): the whole command's
  cost with the levers as its default would be.
- `--profile GENES VARIANT`: one synthetic GENES-gene profile, half missing, through an untrained model of
  tcga13-mrna's shape; prints {"seconds", "peak_mib"} as the last line of JSON.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

from ...fast_inference import impute_in_passes, quantize_linear_int8
from ...inference import impute
from ..rss import process_memory, reset_peak_rss


def _prepare(model, variant: str):
    from .levers import parse_variant

    dtype, per_pass, grouping = parse_variant(variant)
    if dtype == "bf16":
        raise ValueError("the fast flow runs fp32 or int8 (bf16 autocast is slower on CPUs without bf16 units)")
    return (quantize_linear_int8(model) if dtype == "int8" else model), (per_pass, grouping)


def _impute(model, tokenizer, frame, passes: tuple[int | None, str], genes=None):
    per_pass, grouping = passes
    if per_pass is None:
        return impute(model, tokenizer, frame, genes=genes)
    return impute_in_passes(model, tokenizer, frame, genes=genes, measured_per_pass=per_pass, grouping=grouping)


def fast_impute_file(model_name: str, source: str, variant: str, output: str) -> None:
    from ...commands.common import read_input, sidecar_path, write_table
    from ...commands.impute import ImputeArguments
    from ...loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_name)
    model, passes = _prepare(model, variant)
    arguments = ImputeArguments(model=model_name, input=source, output=output, only_input_genes=True)
    frame = read_input(arguments, Path(source), tokenizer)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown to the tokenizer vocabulary.*")
        filled, uncertainty = _impute(model, tokenizer, frame, passes)
    write_table(filled, output)
    write_table(uncertainty, sidecar_path(output, "uncertainty"))


def synthetic_profile(genes: int, variant: str) -> dict:
    from ...configuration_gexbert import GexBertConfig
    from ...data.cohorts import make_synthetic_cohort
    from ...loading import load_config, resolve_model
    from ...modeling_gexbert import GexBertForMaskedExpression
    from ...tokenization_gexbert import GexBertTokenizer

    cohort = make_synthetic_cohort(n_samples=40, n_genes=genes, seed=0).expression
    tokenizer = GexBertTokenizer.fit(cohort, normalization="log1p")
    shape = load_config(GexBertConfig, resolve_model("tcga13-mrna"))
    architecture = {key: getattr(shape, key) for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                         "intermediate_size", "decoder_num_layers")}
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, attn_implementation="sdpa",
                                                                    **architecture)).eval()
    model, passes = _prepare(model, variant)
    profile = cohort.iloc[:1].copy()
    profile.iloc[0, ::2] = float("nan")
    reset_peak_rss()
    begin = time.perf_counter()
    filled = _impute(model, tokenizer, profile, passes)[0]
    seconds = time.perf_counter() - begin
    return {"seconds": seconds, "peak_mib": process_memory()["VmHWM"] / 2**20, "genes": genes,
            "all_filled": bool(filled.notna().all().all())}


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "--profile":
        print(json.dumps(synthetic_profile(int(sys.argv[2]), sys.argv[3])))
    else:
        fast_impute_file(*sys.argv[1:5])
