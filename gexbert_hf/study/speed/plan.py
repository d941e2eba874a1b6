"""What `gexbert bench-speed` measures: its arguments, the targets of the issue, and the sizes of one run."""

from __future__ import annotations

from dataclasses import dataclass, field

# Dense bf16 peak of common accelerators, for model FLOPs utilisation; anything else needs --peak_tflops.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
TARGET_RATIO = 1.0
TARGET_IMPUTATION_SAMPLES_PER_S = 50.0
TARGET_FULL_PROFILE_S = 10.0
TARGET_FULL_PROFILE_GIB = 4.0


@dataclass
class SpeedBenchmarkArguments:
    """Arguments of `gexbert bench-speed` (flags, a JSON file or Python)."""

    output_dir: str = field(default="reports/speed", metadata={"help": "where report.md, results.json and PNGs go"})
    data_dir: str = field(
        default="../shared/data/tcga13_cbioportal_zscore",
        metadata={"help": "cohort for the imputation timing (expression.tsv.gz + split.tsv); quick mode uses "
                          "synthetic data instead"},
    )
    quick: bool = field(default=False, metadata={"help": "tiny sizes and synthetic data: seconds, for tests"})
    seed: int = field(default=0, metadata={"help": "seed of weights, inputs and the imputation mask"})
    point_seconds: float = field(default=5.0, metadata={"help": "measured seconds per model and comparison point"})
    isolate_memory: bool = field(
        default=True, metadata={"help": "peak memory in a fresh subprocess per point (quick mode: in process)"}
    )
    model: str | None = field(default="tcga13-mrna", metadata={
        "help": "the checkpoint that imputes (a shipped name or a folder; its own tokenizer); none: an untrained "
                "model of the small shape with a tokenizer fitted on the train split. Quick mode: always untrained"})
    imputation_batch_size: int = field(default=32, metadata={"help": "samples per imputation forward pass"})
    imputation_samples: int | None = field(
        default=256, metadata={"help": "test samples GexBERT imputes in bf16 (None = the whole split); the "
                                       "scikit-learn imputers always take the whole split"}
    )
    imputation_fp32_samples: int = field(default=64, metadata={"help": "test samples GexBERT imputes in fp32"})
    peak_tflops: float | None = field(default=None, metadata={"help": "accelerator bf16 peak, for MFU on CUDA"})
    render_only: bool = field(
        default=False, metadata={"help": "re-render report.md and the plots from output_dir/results.json, no measuring "
                                         "(implies --overwrite of that bench-speed report)"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an earlier bench-speed report in output_dir "
                                                             "(only the files it wrote)"})
    num_threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads (None = torch's default). On a machine shared with other work, use "
                          "fewer threads than cores: oversubscribed OpenMP threads wait at barriers for descheduled "
                          "peers and steps get several times slower"},
    )


@dataclass
class Plan:
    """Sizes of one run: the full plan measures the issue's points; the quick plan only exercises the code."""

    architecture: dict
    base_architecture: dict
    vocab_size: int
    compare_points: list[tuple[int, int]]  # (genes per sample, batch)
    dtypes: list[str]
    sweep_lengths: list[int]
    full_genes: int
    subsample_max_genes: int
    subsample_batch: int
    imputation_synthetic: bool
    iterative_max_iter: int
    iterative_nearest_features: int
    min_repeats: int
    warmup_steps: int


def make_plan(args: SpeedBenchmarkArguments) -> Plan:
    small = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
                 decoder_num_layers=1)
    base = dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048,
                decoder_num_layers=1)
    if args.quick:
        tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    decoder_num_layers=1)
        return Plan(tiny, tiny, 130, [(32, 4), (64, 2)], ["fp32", "bf16"], [32, 64, 128, 256], 2000, 128, 4,
                    True, 1, 8, 1, 1)
    # 1,528 = the 1,526 genes of tcga13 plus PAD and CLS: BERT's MLM head projects onto a vocabulary that size.
    return Plan(small, base, 1528, [(256, 16), (1024, 4), (4096, 1)], ["fp32", "bf16"],
                [256, 512, 1024, 2048, 4096, 8192], 20000, 1024, 8, False, 3, 64, 2, 1)


def default_imputation_row(methods: list[dict]) -> dict:
    """The GexBERT row of `impute`'s own path (fp32; runs stored before that row was first were ordered bf16 first)."""
    gexbert = [method for method in methods if method["method"].startswith("GexBERT")]
    return next((method for method in gexbert if method["method"].split(", ")[-1].startswith("fp32")), gexbert[0])
