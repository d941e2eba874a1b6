"""`gexbert bench-speed --quick`: every section runs, and the files it writes hold what the report promises."""

import json

import numpy as np
import pytest
import torch

from gexbert_hf import GexBertTokenizer
from gexbert_hf.cli import SUBCOMMANDS
from gexbert_hf.outputs import OUTPUT_MARKER, read_marker
from gexbert_hf.study.speed import (
    NO_ATTENTION,
    SpeedBenchmarkArguments,
    build_model,
    make_batch,
    run_memory_point,
    run_speed_benchmark,
    training_flops,
)

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, decoder_num_layers=1)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("speed")
    results = run_speed_benchmark(SpeedBenchmarkArguments(output_dir=str(directory), quick=True, point_seconds=0.2))
    return directory, results


def test_quick_run_writes_report_json_and_plots(quick_run):
    directory, results = quick_run
    for name in ("report.md", "results.json", "throughput.png", "scaling.png", "imputation.png"):
        path = directory / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert (directory / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hidden = {path.name for path in directory.glob(".*")}
    assert hidden == {OUTPUT_MARKER}, "atomic writes left temporary files behind"  # the marker is issue #14's
    assert {"report.md", "results.json", "throughput.png"} <= set(read_marker(directory)["files"])
    stored = json.loads((directory / "results.json").read_text())
    assert stored["quick"] is True and len(stored["load_start"]) == 3
    report = (directory / "report.md").read_text()
    for heading in ("## Targets", "## 1-2. Training step", "## 5. Training step against genes", "## 4. The full",
                    "## 3. Imputation", "## 6. CUDA", "Quick mode"):
        assert heading in report
    if not torch.cuda.is_available():
        assert "**Not run**" in report and stored["cuda"]["run"] is False


def test_comparison_rows_cover_every_point_and_dtype(quick_run):
    _, results = quick_run
    plan = results["plan"]
    points = {(row["genes"], row["batch"], row["dtype"]) for row in results["comparison"]}
    assert points == {(g, b, d) for g, b in plan["compare_points"] for d in plan["dtypes"]}
    for row in results["comparison"]:
        assert len(row["step_s"]["gexbert"]) == len(row["step_s"]["bert"]) == row["repeats"] >= 1
        assert row["ratio"] == pytest.approx(row["median_step_s"]["bert"] / row["median_step_s"]["gexbert"])
        assert row["tokens_per_s"]["gexbert"] == pytest.approx(row["samples_per_s"]["gexbert"] * row["genes"])
    assert len(results["comparison_memory"]) == 2 * len(results["comparison"])
    assert all(m["peak_mb"] > 0 and m["delta_mb"] >= 0 for m in results["comparison_memory"])
    assert len(results["targets"]) == len(results["comparison"]) + 3
    dropout = results["attention_dropout"]["median_step_s"]
    assert len(dropout) == 4 and all(value > 0 for value in dropout.values())
    assert all(isinstance(t["met"], bool) for t in results["targets"])


def test_scaling_imputation_and_full_transcriptome_sections(quick_run):
    _, results = quick_run
    scaling = results["scaling"]
    assert [row["genes"] for row in scaling["rows"]] == results["plan"]["sweep_lengths"]
    assert all(0.0 <= row["attention_share"] <= 1.0 for row in scaling["rows"])
    assert set(scaling["fit"]) == {"a", "b", "c"}
    methods = [m["method"] for m in results["imputation"]["methods"]]
    assert any(m.startswith("GexBERT") for m in methods) and any("KNN" in m for m in methods)
    assert any("Iterative" in m for m in methods) and any("SoftImpute" in m for m in methods)
    assert results["imputation"]["model_trained"] is False  # quick mode: synthetic genes, an untrained tiny model
    assert all(m["all_filled"] and m["samples_per_s"] > 0 for m in results["imputation"]["methods"])
    # issue 22: the int8 lever and the KNN baseline (k=10 fitted on train) timed in the same run, and the
    # thread count each row ran with (the suite pins one thread)
    assert any("int8" in m for m in methods) and "KNNImputer (k=10, fitted on train)" in methods
    assert all(m["threads"] == torch.get_num_threads() for m in results["imputation"]["methods"])
    assert results["imputation"]["removed_fraction"] == pytest.approx(0.5, abs=0.05)
    full = results["full_transcriptome"]
    assert {r["dtype"] for r in full["inference"]} == {"fp32", "bf16"}
    assert all(r["finite"] and r["tokens"] == full["genes"] + 1 for r in full["inference"])
    assert full["bf16_max_probability_error"] < 0.1
    assert full["subsampled_training"]["tokens_per_sample"] == full["subsampled_training"]["max_genes"] + 1


def test_memory_point_in_a_fresh_process():
    spec = {"kind": "train", "model": "gexbert", "architecture": TINY, "vocab_size": 40, "length": 16, "batch": 2,
            "dtype": "fp32", "steps": 1}
    result = run_memory_point(spec, isolate=True)
    assert result["isolated"] is True and result["peak_mb"] >= result["baseline_mb"] > 0
    assert len(result["step_s"]) == 1


def test_both_models_train_on_their_batches_and_no_attention_backend_is_selectable():
    for kind in ("gexbert", "bert"):
        model = build_model(kind, TINY, 40, 16, seed=0)
        loss = model(**make_batch(kind, 40, 2, 16, seed=0)).loss
        assert torch.isfinite(loss)
    model = build_model("gexbert", TINY, 40, 16, seed=0, attn_implementation=NO_ATTENTION)
    assert model.config._attn_implementation == NO_ATTENTION
    assert torch.isfinite(model(**make_batch("gexbert", 40, 2, 16, seed=0)).loss)
    # attention FLOPs grow with the square of the genes per sample
    short, long = (training_flops(TINY, "gexbert", 40, 1, length) for length in (64, 128))
    assert 2 < long / short < 4


def test_cli_registers_bench_speed():
    assert SUBCOMMANDS["bench-speed"] == ("gexbert_hf.study.speed", "SpeedBenchmarkArguments",
                                          "run_speed_benchmark")


def test_the_imputation_timing_uses_the_given_checkpoint_with_its_own_tokenizer(model_dir):
    from gexbert_hf.study.speed.measure import _imputation_model
    from gexbert_hf.study.speed.plan import make_plan

    args = SpeedBenchmarkArguments(model=str(model_dir))
    model, tokenizer, checkpoint = _imputation_model(make_plan(args), args, None, "none")
    assert checkpoint == str(model_dir) and not model.training
    assert tokenizer.genes == GexBertTokenizer.from_pretrained(model_dir).genes
    assert model.config.tokenizer_fingerprint == tokenizer.fingerprint


def test_lever_variants_fill_every_hole_and_refuse_unknown_names(model_dir, embedded_cohort):
    from gexbert_hf.loading import load_model_and_tokenizer
    from gexbert_hf.study.speed.levers import make_imputer, parse_variant

    assert parse_variant("int8/passes256") == ("int8", 256, "embedding")
    assert parse_variant("fp32/random64") == ("fp32", 64, "random") and parse_variant("fp32") == ("fp32", None,
                                                                                                 "embedding")
    for bad in ("fp16", "int8/chunks4"):
        with pytest.raises(ValueError, match="variant"):
            parse_variant(bad)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    frame = embedded_cohort.expression.iloc[:6]
    masked = frame.mask(np.random.default_rng(0).random(frame.shape) < 0.5)
    quantized: dict = {}
    filled = make_imputer(model, tokenizer, "int8/passes8", quantized)(masked)
    assert "int8" in quantized and filled.shape == frame.shape and not filled.isna().any().any()


def test_synthetic_wide_profile_is_timed_with_its_peak_memory():
    from gexbert_hf.study.speed.levers_command import synthetic_profile

    result = synthetic_profile(300, "int8/passes32")
    assert result["genes"] == 300 and result["all_filled"] and result["seconds"] > 0 and result["peak_mib"] > 100


def test_onnx_lever_table_pools_both_passes_and_compares_with_torch_at_the_same_thread_count():
    from gexbert_hf.study.speed.levers_report import onnx_lines

    def row(method, threads, seconds):
        return {"method": method, "threads": threads, "samples": 10, "seconds": seconds, "load_1min": 1.0}

    speed = {"genes": 5, "export_seconds": 1.0, "onnx_mib": 1.0, "onnx_int8_mib": 0.5,
             "rows": [row("torch fp32", 1, 2.0), row("ORT fp32 fused", 1, 1.0), row("ORT fp32 fused", 1, 3.0),
                      row("torch fp32", 1, 2.0), row("torch fp32", 2, 1.0), row("ORT fp32 fused", 2, 2.0),
                      row("ORT fp32 fused", 2, 2.0), row("torch fp32", 2, 1.0)]}
    text = "\n".join(onnx_lines({"m speed": speed}))
    assert "| ORT fp32 fused | 1 | 10 | 5.00 | 1.00 |" in text  # 20 samples in 4 s against torch's 20 in 4 s
    assert "| ORT fp32 fused | 2 | 10 | 5.00 | 0.50 |" in text  # against torch's 20 in 2 s at 2 threads


def test_levers_merge_only_their_own_records_and_replace_rows_only_when_told(tmp_path):
    from gexbert_hf.cli import main
    from gexbert_hf.study.speed.levers import LeverOutputError, _merge, claim_key

    section = tmp_path / "speed.json"
    _merge(section, "tcga13-mrna, threads 1", [{"samples_per_s": 4.0}], replace=False)
    _merge(section, "tcga13-mrna, threads 2", [{"samples_per_s": 6.0}], replace=False)  # other keys are kept
    with pytest.raises(LeverOutputError, match="pass --overwrite"):
        claim_key(section, "tcga13-mrna, threads 1", replace=False)
    _merge(section, "tcga13-mrna, threads 1", [{"samples_per_s": 4.5}], replace=True)
    assert json.loads(section.read_text()) == {"tcga13-mrna, threads 1": [{"samples_per_s": 4.5}],
                                               "tcga13-mrna, threads 2": [{"samples_per_s": 6.0}]}
    foreign = tmp_path / "theirs" / "profile.json"
    foreign.parent.mkdir()
    foreign.write_text("[1, 2, 3]")
    with pytest.raises(LeverOutputError, match="not a bench-levers record"):
        claim_key(foreign, "20000 genes", replace=True)
    assert foreign.read_text() == "[1, 2, 3]"
    assert main(["bench-levers", "--section", "profile", "--output_dir", str(foreign.parent)]) == 2  # before any work
