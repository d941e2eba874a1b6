"""Peak memory of one speed point: RSS of a fresh process (CPU) or the CUDA allocator's peak.

`run_memory_point` starts that fresh process as `python -m gexbert_hf.study.speed.worker '<json spec>'`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from ...configuration_gexbert import GexBertConfig
from ...modeling_gexbert import GexBertForMaskedExpression
from ..rss import process_memory, reset_peak_rss
from .models import build_model, make_batch, synchronize, training_step


class PeakMemory:
    """Context manager: peak memory above the level at entry, in MiB (RSS on CPU, allocator on CUDA)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_mb = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            reset_peak_rss()
            self.baseline_mb = process_memory()["VmRSS"] / 2**20
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = process_memory()["VmHWM"] / 2**20
        self.delta_mb = self.peak_mb - self.baseline_mb


def memory_worker(spec: dict) -> dict:
    """One memory point, meant to run in a fresh process: `train`, `infer` or `subsample_train`."""
    device = torch.device(spec.get("device", "cpu"))
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    architecture, vocab_size = spec["architecture"], spec["vocab_size"]
    if spec["kind"] == "train":
        model = build_model(spec["model"], architecture, vocab_size, spec["length"], seed=0).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs = {k: v.to(device) for k, v in make_batch(spec["model"], vocab_size, spec["batch"], spec["length"],
                                                         seed=1).items()}
        with PeakMemory(device) as memory:
            times = [training_step(model, optimizer, inputs, spec["dtype"], device) for _ in range(spec["steps"])]
        return {"baseline_mb": memory.baseline_mb, "peak_mb": memory.peak_mb, "delta_mb": memory.delta_mb,
                "step_s": times}
    if spec["kind"] == "infer":
        model = build_model("gexbert", architecture, vocab_size, spec["genes"], seed=0).to(device).eval()
        warm = make_batch("gexbert", vocab_size, 1, min(1024, spec["genes"]), seed=2)
        inputs = make_batch("gexbert", vocab_size, 1, spec["genes"], seed=3)
        keep = ("input_ids", "level_ids")
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=spec["dtype"] == "bf16"):
            model(**{k: warm[k].to(device) for k in keep})
            with PeakMemory(device) as memory:
                synchronize(device)
                start = time.perf_counter()
                logits = model(**{k: inputs[k].to(device) for k in keep}).level_logits
                synchronize(device)
                seconds = time.perf_counter() - start
        return {"baseline_mb": memory.baseline_mb, "peak_mb": memory.peak_mb, "delta_mb": memory.delta_mb,
                "seconds": seconds, "finite": bool(torch.isfinite(logits).all())}
    if spec["kind"] == "subsample_train":
        return _subsample_training(spec, device)
    raise ValueError(f"unknown memory point kind {spec['kind']!r}")


def _subsample_training(spec: dict, device: torch.device) -> dict:
    """Training on full-transcriptome profiles: the collator draws `max_genes` measured genes per sample and step."""
    from ...data.collator import DataCollatorForMaskedExpression
    from ...tokenization_gexbert import GexBertTokenizer

    rng = np.random.default_rng(0)
    genes = [f"GENE{index:05d}" for index in range(spec["genes"])]
    profiles = rng.lognormal(2.0, 1.5, size=(max(32, spec["batch"]), spec["genes"]))
    tokenizer = GexBertTokenizer.fit(profiles, genes=genes, normalization="log1p")
    encoded = tokenizer.encode(profiles, genes=genes)
    samples = [{"input_ids": encoded["gene_ids"], "level_ids": encoded["level_ids"][row],
                "values": encoded["values"][row]} for row in range(len(profiles))]
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=spec["max_genes"], mask_fraction=0.15)
    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, attn_implementation="sdpa",
                                                                    **spec["architecture"])).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step_s, collate_s = [], []

    def step(index: int) -> None:
        start = time.perf_counter()
        rows = [(index * spec["batch"] + offset) % len(samples) for offset in range(spec["batch"])]
        batch = {k: v.to(device) for k, v in collator([samples[row] for row in rows]).items()}
        collate_s.append(time.perf_counter() - start)
        step_s.append(training_step(model, optimizer, batch, spec["dtype"], device) + collate_s[-1])

    step(0)  # warm-up
    step_s.clear()
    collate_s.clear()
    with PeakMemory(device) as memory:
        for index in range(1, 1 + spec["steps"]):
            step(index)
    return {"baseline_mb": memory.baseline_mb, "peak_mb": memory.peak_mb, "delta_mb": memory.delta_mb,
            "step_s": step_s, "collate_s": collate_s, "tokens_per_sample": spec["max_genes"] + 1}


def run_memory_point(spec: dict, isolate: bool) -> dict:
    """`memory_worker` in a fresh Python process (so earlier points leave nothing in the allocator), or in this one."""
    spec = {"threads": torch.get_num_threads(), **spec}
    if not isolate:
        return memory_worker(spec) | {"isolated": False}
    command = [sys.executable, "-m", "gexbert_hf.study.speed.worker", json.dumps(spec)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"memory point {spec} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1]) | {"isolated": True}
