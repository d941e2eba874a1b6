"""The measurements of `gexbert bench-speed`, one function per report section, each returning its rows."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ...configuration_gexbert import GexBertConfig
from ...modeling_gexbert import GexBertForMaskedExpression
from .memory import run_memory_point
from .models import NO_ATTENTION, build_model, make_batch, training_flops, training_step
from .plan import PEAK_BF16_TFLOPS, Plan, SpeedBenchmarkArguments


def compare_training(plan: Plan, args: SpeedBenchmarkArguments, device: torch.device, architecture: dict,
                     log: Callable[[str], None]) -> list[dict]:
    """GexBERT vs BERT training steps, interleaved step by step, at each (genes, batch) point and dtype."""
    max_length = max(length for length, _ in plan.compare_points)
    models = {kind: build_model(kind, architecture, plan.vocab_size, max_length, args.seed).to(device).train()
              for kind in ("gexbert", "bert")}
    optimizers = {kind: torch.optim.AdamW(model.parameters(), lr=1e-4) for kind, model in models.items()}
    parameters = {kind: sum(p.numel() for p in model.parameters()) for kind, model in models.items()}
    rows = []
    for length, batch in plan.compare_points:
        inputs = {kind: {k: v.to(device) for k, v in make_batch(kind, plan.vocab_size, batch, length,
                                                                 args.seed + length).items()} for kind in models}
        for dtype in plan.dtypes:
            load_before = os.getloadavg()[0]
            estimate = {kind: min(training_step(models[kind], optimizers[kind], inputs[kind], dtype, device)
                                  for _ in range(plan.warmup_steps)) for kind in models}
            slowest = max(estimate.values())
            # a step longer than the budget is timed once per model: a shared 2-core machine cannot afford more
            repeats = int(np.clip(round(args.point_seconds / slowest), 1 if slowest > 2 * args.point_seconds
                                  else plan.min_repeats, 12))
            times: dict[str, list[float]] = {kind: [] for kind in models}
            for repeat in range(repeats):
                for kind in (("gexbert", "bert") if repeat % 2 == 0 else ("bert", "gexbert")):
                    times[kind].append(training_step(models[kind], optimizers[kind], inputs[kind], dtype, device))
            median = {kind: float(np.median(values)) for kind, values in times.items()}
            paired = [b / g for g, b in zip(times["gexbert"], times["bert"], strict=True)]
            row = {"genes": length, "batch": batch, "dtype": dtype, "device": device.type, "repeats": repeats,
                   "step_s": times, "median_step_s": median,
                   "samples_per_s": {k: batch / v for k, v in median.items()},
                   "tokens_per_s": {k: batch * length / v for k, v in median.items()},
                   "ratio": median["bert"] / median["gexbert"], "paired_ratio_median": float(np.median(paired)),
                   "flops_per_step": {k: training_flops(architecture, k, plan.vocab_size, batch, length)
                                      for k in models},
                   "parameters": parameters, "load_before": load_before, "load_after": os.getloadavg()[0]}
            rows.append(row)
            log(f"compare {length} genes x {batch} {dtype}: GexBERT {median['gexbert']:.3f}s BERT "
                f"{median['bert']:.3f}s per step, ratio {row['ratio']:.2f} ({repeats} interleaved repeats)")
    return rows


def attention_dropout_cost(plan: Plan, args: SpeedBenchmarkArguments, log: Callable[[str], None]) -> dict:
    """What attention-probability dropout costs: with it, sdpa cannot use its fused CPU kernel for training and falls
    back to the math path (the L x L weights materialised, a Bernoulli mask drawn for them). Found by profiling."""
    length, batch = plan.compare_points[len(plan.compare_points) // 2]
    device = torch.device("cpu")
    variants = {"GexBERT, attention dropout 0.1": ("gexbert", 0.1),
                "GexBERT, attention dropout 0 (default)": ("gexbert", 0.0),
                "BERT, attention dropout 0.1 (default)": ("bert", 0.1),
                "BERT, attention dropout 0": ("bert", 0.0)}
    models, optimizers, inputs = {}, {}, {}
    for name, (kind, dropout) in variants.items():
        architecture = {**plan.architecture, "attention_probs_dropout_prob": dropout}
        model = build_model(kind, architecture, plan.vocab_size, length, args.seed)
        models[name], optimizers[name] = model.train(), torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs[name] = make_batch(kind, plan.vocab_size, batch, length, args.seed + length)
    for name in variants:  # warm-up
        training_step(models[name], optimizers[name], inputs[name], "fp32", device)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(max(plan.min_repeats, 2)):
        for name in (list(variants) if repeat % 2 == 0 else list(variants)[::-1]):
            times[name].append(training_step(models[name], optimizers[name], inputs[name], "fp32", device))
    medians = {name: float(np.median(values)) for name, values in times.items()}
    log("attention dropout: " + ", ".join(f"{name} {value:.2f}s" for name, value in medians.items()))
    return {"genes": length, "batch": batch, "dtype": "fp32", "step_s": times, "median_step_s": medians,
            "load": os.getloadavg()[0]}


def measure_compare_memory(plan: Plan, args: SpeedBenchmarkArguments, architecture: dict,
                           log: Callable[[str], None]) -> list[dict]:
    rows = []
    for length, batch in plan.compare_points:
        for dtype in plan.dtypes:
            for kind in ("gexbert", "bert"):
                spec = {"kind": "train", "model": kind, "architecture": architecture, "vocab_size": plan.vocab_size,
                        "length": length, "batch": batch, "dtype": dtype, "steps": 1}
                result = run_memory_point(spec, args.isolate_memory)
                rows.append({"genes": length, "batch": batch, "dtype": dtype, "model": kind, **result})
                log(f"memory {kind} {length} x {batch} {dtype}: peak {result['peak_mb']:.0f} MiB "
                    f"(+{result['delta_mb']:.0f} MiB over the built model)")
    return rows


def scaling_sweep(plan: Plan, args: SpeedBenchmarkArguments, log: Callable[[str], None]) -> dict:
    """GexBERT training step at batch 1 against genes per sample, with and without attention; fit a + bL + cL^2."""
    device = torch.device("cpu")
    rows = []
    models = {impl: build_model("gexbert", plan.architecture, plan.vocab_size, 0, args.seed, impl).train()
              for impl in ("sdpa", NO_ATTENTION)}
    optimizers = {impl: torch.optim.AdamW(model.parameters(), lr=1e-4) for impl, model in models.items()}
    budget = args.point_seconds * (0.4 if not args.quick else 1.0)
    for length in plan.sweep_lengths:
        inputs = make_batch("gexbert", plan.vocab_size, 1, length, args.seed + length)
        row: dict = {"genes": length, "load_before": os.getloadavg()[0]}
        for impl, model in models.items():
            first = training_step(model, optimizers[impl], inputs, "fp32", device)  # warm-up, also an estimate
            repeats = int(np.clip(round(budget / first), 1, 10))
            if first > budget:  # long steps: the warm-up is the only run worth its time; keep it as the measure
                times = [first]
            else:
                times = [training_step(model, optimizers[impl], inputs, "fp32", device) for _ in range(repeats)]
            row["sdpa_s" if impl == "sdpa" else "no_attention_s"] = float(np.median(times))
            row[f"repeats_{'sdpa' if impl == 'sdpa' else 'no_attention'}"] = len(times)
        row["attention_share"] = max(0.0, 1.0 - row["no_attention_s"] / row["sdpa_s"])
        row["load_after"] = os.getloadavg()[0]
        rows.append(row)
        log(f"sweep {length} genes: {row['sdpa_s']:.3f}s per step, {row['no_attention_s']:.3f}s without attention "
            f"(attention {100 * row['attention_share']:.0f}%)")
    lengths = np.array([row["genes"] for row in rows], dtype=float)
    seconds = np.array([row["sdpa_s"] for row in rows])
    design = np.stack([np.ones_like(lengths), lengths, lengths**2], axis=1)
    # relative least squares: every length weighs the same, not only the slowest
    coefficients, *_ = np.linalg.lstsq(design / seconds[:, None], np.ones_like(seconds), rcond=None)
    a, b, c = (float(value) for value in coefficients)
    crossover_fit = _positive_root(c, -b, -a)  # c L^2 = a + b L
    shares = [row["attention_share"] for row in rows]
    crossover_measured = _interpolate_crossing(lengths, np.array(shares), 0.5)
    return {"rows": rows, "fit": {"a": a, "b": b, "c": c}, "crossover_fit_genes": crossover_fit,
            "crossover_measured_genes": crossover_measured, "batch": 1, "dtype": "fp32"}


def _positive_root(a: float, b: float, c: float) -> float | None:
    if a <= 0:
        return None
    disc = b * b - 4 * a * c
    return None if disc < 0 else float((-b + math.sqrt(disc)) / (2 * a))


def _interpolate_crossing(x: np.ndarray, y: np.ndarray, level: float) -> float | None:
    """First x where y crosses `level`, interpolated in log x."""
    for i in range(1, len(x)):
        if y[i - 1] < level <= y[i]:
            fraction = (level - y[i - 1]) / (y[i] - y[i - 1])
            return float(2 ** (math.log2(x[i - 1]) + fraction * (math.log2(x[i]) - math.log2(x[i - 1]))))
    return float(x[0]) if len(y) and y[0] >= level else None


def full_transcriptome(plan: Plan, args: SpeedBenchmarkArguments, log: Callable[[str], None]) -> dict:
    """One `full_genes`-gene profile through the small model (fp32 and bf16), and subsampled training on such
    profiles; bf16's deviation from fp32 is checked on a shorter profile."""
    vocab = plan.full_genes + 2
    inference = []
    for dtype in plan.dtypes:
        spec = {"kind": "infer", "architecture": plan.architecture, "vocab_size": vocab, "genes": plan.full_genes + 1,
                "dtype": dtype}
        load = os.getloadavg()[0]
        result = run_memory_point(spec, args.isolate_memory) | {"dtype": dtype, "tokens": plan.full_genes + 1,
                                                                 "load_before": load}
        inference.append(result)
        log(f"{plan.full_genes}-gene profile, inference {dtype}: {result['seconds']:.2f}s, peak "
            f"{result['peak_mb']:.0f} MiB (+{result['delta_mb']:.0f} MiB)")
    model = build_model("gexbert", plan.architecture, vocab, 0, args.seed).eval()
    check = make_batch("gexbert", vocab, 1, min(2048, plan.full_genes), seed=4)
    check = {k: check[k] for k in ("input_ids", "level_ids")}
    with torch.inference_mode():
        reference = torch.softmax(model(**check).level_logits.float(), -1)
        with torch.autocast("cpu", torch.bfloat16):
            lowered = torch.softmax(model(**check).level_logits.float(), -1)
    bf16_error = float((reference - lowered).abs().max())
    spec = {"kind": "subsample_train", "architecture": plan.architecture, "genes": plan.full_genes,
            "max_genes": plan.subsample_max_genes, "batch": plan.subsample_batch, "dtype": "fp32", "steps": 3,
            "vocab_size": vocab}
    training = run_memory_point(spec, args.isolate_memory)
    log(f"training on {plan.full_genes}-gene profiles, {plan.subsample_max_genes} genes drawn per sample and step, "
        f"batch {plan.subsample_batch}: {np.median(training['step_s']):.2f}s per step, peak "
        f"{training['peak_mb']:.0f} MiB")
    return {"genes": plan.full_genes, "inference": inference, "bf16_max_probability_error": bf16_error,
            "bf16_check_genes": int(check["input_ids"].shape[1]),
            "subsampled_training": training | {"genes": plan.full_genes, "max_genes": plan.subsample_max_genes,
                                               "batch": plan.subsample_batch}}


def _imputation_data(plan: Plan, args: SpeedBenchmarkArguments):
    """(train, test) samples x genes: the shared cohort's split, or a small synthetic cohort in quick mode."""
    if plan.imputation_synthetic:
        from ...data.cohorts import make_synthetic_cohort

        expression = make_synthetic_cohort(n_samples=120, n_genes=64, seed=args.seed).expression
        return expression.iloc[:80], expression.iloc[80:], "synthetic (quick mode)", "log1p"
    from ...data.readers import load_split, read_xena_tsv

    data_dir = Path(args.data_dir)
    expression = read_xena_tsv(data_dir / "expression.tsv.gz")
    split = load_split(data_dir).reindex(expression.index)
    # cBioPortal z-scores are already centred and scaled, and negative: no log transform
    return (expression.loc[split.eq("train").to_numpy()], expression.loc[split.eq("test").to_numpy()],
            str(data_dir), "none")


SOFT_PENALTY = 0.2  # the penalty the tcga13 benchmark chose on its validation part
ARCHITECTURE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "decoder_num_layers")


def _imputation_model(plan: Plan, args: SpeedBenchmarkArguments, train, normalization: str):
    """(model, tokenizer, checkpoint name or None): the `--model` checkpoint with its own tokenizer, or (quick mode,
    or no `--model`) an untrained model of the plan's shape on a tokenizer fitted on `train`."""
    from ...loading import resolve_model
    from ...tokenization_gexbert import GexBertTokenizer

    if args.model and not args.quick:
        folder = resolve_model(args.model)
        return (GexBertForMaskedExpression.from_pretrained(folder, attn_implementation="sdpa").eval(),
                GexBertTokenizer.from_pretrained(folder), args.model)
    tokenizer = GexBertTokenizer.fit(train, normalization=normalization)
    torch.manual_seed(args.seed)
    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, attn_implementation="sdpa",
                                                                    **plan.architecture)).eval()
    return model, tokenizer, None


def imputation(plan: Plan, args: SpeedBenchmarkArguments, log: Callable[[str], None]) -> dict:
    """Impute the test split with half of its values removed: GexBERT (small, untrained) vs scikit-learn."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer

    from ...fast_inference import cpu_autocast, quantize_linear_int8
    from ...inference import impute
    from ..baselines import impute_knn, impute_soft

    start = time.perf_counter()
    train, test, source, normalization = _imputation_data(plan, args)
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    holes = rng.random(test.shape) < 0.5
    masked = test.mask(holes)
    start = time.perf_counter()
    model, tokenizer, checkpoint = _imputation_model(plan, args, train, normalization)
    tokenizer_fit_s = time.perf_counter() - start
    log(f"imputation data: {source}, {len(train)} train / {len(test)} test samples x {test.shape[1]} genes "
        f"(load {load_s:.1f}s, model and tokenizer {tokenizer_fit_s:.1f}s: {checkpoint or 'untrained'})")
    methods = []

    def timed(name: str, n_samples: int, function: Callable[[], np.ndarray], note: str) -> None:
        load = os.getloadavg()[0]
        begin = time.perf_counter()
        filled = np.asarray(function())
        seconds = time.perf_counter() - begin
        methods.append({"method": name, "samples": n_samples, "seconds": seconds, "samples_per_s": n_samples / seconds,
                        "all_filled": bool(np.isfinite(filled).all()), "note": note, "load_before": load,
                        "threads": torch.get_num_threads()})
        log(f"imputation {name}: {n_samples} samples in {seconds:.1f}s = {n_samples / seconds:.1f} samples/s")

    quantized = quantize_linear_int8(model)

    def gexbert(frame, dtype: str):
        with cpu_autocast("bf16" if dtype == "bf16" else "fp32"):
            chosen = quantized if dtype == "int8" else model
            return impute(chosen, tokenizer, frame, batch_size=args.imputation_batch_size)[0].to_numpy()

    tokens = test.shape[1] + 1
    name = "GexBERT tiny (quick mode)" if args.quick else f"GexBERT {checkpoint}" if checkpoint else "GexBERT small"
    first = masked.iloc[: args.imputation_samples or len(masked)]
    # `impute` runs fp32 (one answer on every path; bf16 is an opt-in lever): the target is judged on that path
    timed(f"{name}, fp32 (impute's default)", len(first), lambda: gexbert(first, "fp32"),
          f"{tokens} tokens per sample (every gene, half of them MASK queries), batch {args.imputation_batch_size}; "
          f"the first {len(first)} test samples (per-sample cost does not depend on the cohort size)")
    subset = masked.iloc[: args.imputation_fp32_samples]
    timed(f"{name}, bf16 autocast", len(subset), lambda: gexbert(subset, "bf16"),
          f"fast_inference.cpu_autocast (an opt-in lever; slower without native bf16 units); the first {len(subset)} "
          "test samples")
    timed(f"{name}, int8 dynamic", len(subset), lambda: gexbert(subset, "int8"),
          f"fast_inference.quantize_linear_int8 (transformer Linear layers int8); the first {len(subset)} test samples")
    timed("KNNImputer (k=5)", len(test), lambda: KNNImputer(n_neighbors=5).fit_transform(masked.to_numpy()),
          "fit_transform on the masked test matrix")
    timed("KNNImputer (k=10, fitted on train)", len(test),
          lambda: impute_knn(train.to_numpy(), masked.to_numpy(), k=10), "the issue's baseline: fit on the train "
          "split, transform the masked test matrix")
    timed(f"SoftImpute (penalty {SOFT_PENALTY})", len(test),
          lambda: impute_soft(train.to_numpy(), masked.to_numpy(), SOFT_PENALTY, seed=args.seed),
          "standardised by train, 2,000 train rows beside the masked test matrix (as in the benchmark)")
    iterative = IterativeImputer(max_iter=plan.iterative_max_iter, n_nearest_features=plan.iterative_nearest_features,
                                 random_state=args.seed)
    timed(f"IterativeImputer (BayesianRidge, {plan.iterative_max_iter} rounds, "
          f"{plan.iterative_nearest_features} nearest features)", len(test),
          lambda: iterative.fit_transform(masked.to_numpy()), "fit_transform on the masked test matrix")
    return {"source": source, "train_samples": len(train), "test_samples": len(test), "genes": test.shape[1],
            "removed_fraction": float(holes.mean()), "load_s": load_s, "tokenizer_fit_s": tokenizer_fit_s,
            "model_trained": checkpoint is not None, "checkpoint": checkpoint,
            "architecture": {key: getattr(model.config, key) for key in ARCHITECTURE_KEYS}, "methods": methods,
            "gexbert_whole_split_s_estimate": len(test) / methods[0]["samples_per_s"]}


def cuda_section(plan: Plan, args: SpeedBenchmarkArguments, log: Callable[[str], None]) -> dict:
    """The comparison on the GPU with the `base` preset in bf16, plus model FLOPs utilisation."""
    if not torch.cuda.is_available():
        return {"run": False, "reason": "torch.cuda.is_available() is False on this machine"}
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    cuda_plan = Plan(**{**asdict(plan), "dtypes": ["bf16"],
                        "compare_points": [(256, 64), (1024, 16), (4096, 4)]})
    rows = compare_training(cuda_plan, args, device, plan.base_architecture, log)
    for row in rows:
        achieved = {k: row["flops_per_step"][k] / row["median_step_s"][k] / 1e12 for k in ("gexbert", "bert")}
        row["achieved_tflops"] = achieved
        row["mfu"] = {k: (v / peak if peak else None) for k, v in achieved.items()}
    memory = []
    for length, batch in cuda_plan.compare_points:
        for kind in ("gexbert", "bert"):
            spec = {"kind": "train", "model": kind, "architecture": plan.base_architecture,
                    "vocab_size": plan.vocab_size, "length": length, "batch": batch, "dtype": "bf16", "steps": 2,
                    "device": "cuda"}
            memory.append({"genes": length, "model": kind, **run_memory_point(spec, isolate=False)})
    return {"run": True, "device": name, "peak_bf16_tflops": peak, "architecture": plan.base_architecture,
            "rows": rows, "memory": memory}
