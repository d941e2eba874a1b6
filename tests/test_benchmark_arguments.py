"""`gexbert benchmark`'s arguments nest the library's PretrainingOptions and FinetuningOptions: dotted flags and
nested JSON reach them alike, unknown and moved keys are refused by name, and the run's own settings stay its own."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gexbert_hf.cli import main, make_parser
from gexbert_hf.nested_arguments import ArgumentsError, arguments_from_dict
from gexbert_hf.study import benchmark
from gexbert_hf.study.benchmark_arguments import BenchmarkArguments, benchmark_finetuning
from gexbert_hf.training.options import FinetuningOptions, PretrainingOptions

REPOSITORY = Path(__file__).resolve().parents[1]
REQUIRED = ["--data_dir", "data", "--output", "out"]


def parse_flags(*flags: str) -> BenchmarkArguments:
    (arguments,) = make_parser(BenchmarkArguments, "benchmark").parse_args_into_dataclasses([*REQUIRED, *flags])
    return arguments


def parse_json(tmp_path: Path, values: dict) -> BenchmarkArguments:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"data_dir": "data", "output": "out", **values}))
    (arguments,) = make_parser(BenchmarkArguments, "benchmark").parse_json_file(str(path))
    return arguments


def test_the_defaults_are_the_benchmarks_own_settings():
    arguments = parse_flags()
    assert arguments == BenchmarkArguments(data_dir="data", output="out")
    assert (arguments.pretraining.batch_size, arguments.pretraining.learning_rate,
            arguments.pretraining.max_genes) == (32, 1e-3, 128)
    assert (arguments.finetuning.epochs, arguments.finetuning.learning_rate, arguments.finetuning.batch_size,
            arguments.finetuning.early_stopping_patience, arguments.finetuning.max_queries) == (4, 1e-3, 32, 2, 64)
    assert PretrainingOptions().max_genes is None and FinetuningOptions().epochs == 3  # not the options' defaults


def test_dotted_flags_and_nested_json_give_the_same_arguments(tmp_path):
    from_flags = parse_flags("--pretraining.learning_rate", "5e-4", "--pretraining.max_genes", "256",
                             "--finetuning.epochs", "8", "--no_finetuning.probe_init", "--seeds", "3")
    from_json = parse_json(tmp_path, {"seeds": 3, "pretraining": {"learning_rate": 5e-4, "max_genes": 256},
                                      "finetuning": {"epochs": 8, "probe_init": False}})
    assert from_flags == from_json
    assert from_json.pretraining.learning_rate == 5e-4 and from_json.pretraining.max_genes == 256
    assert from_json.pretraining.batch_size == 32  # a value left out keeps the benchmark's default
    assert from_json.finetuning.epochs == 8 and from_json.finetuning.probe_init is False
    assert from_json.finetuning.learning_rate == 1e-3 and from_json.seeds == 3


def test_unknown_nested_keys_are_refused_by_name(tmp_path):
    with pytest.raises(ArgumentsError, match=r"pretraining\.max_stepz: unknown key of PretrainingOptions"):
        parse_json(tmp_path, {"pretraining": {"max_stepz": 50}})
    with pytest.raises(ArgumentsError, match=r"--finetuning\.epoch: unknown key of FinetuningOptions"):
        parse_flags("--finetuning.epoch", "2")
    with pytest.raises(ArgumentsError, match="seedz: unknown key of BenchmarkArguments"):
        parse_json(tmp_path, {"seedz": 3})
    with pytest.raises(ArgumentsError, match="pretraining: expected an object of PretrainingOptions fields"):
        parse_json(tmp_path, {"pretraining": 5})


@pytest.mark.parametrize(("old", "new"), [("learning_rate", "pretraining.learning_rate"),
                                          ("batch_size", "pretraining.batch_size"),
                                          ("max_genes", "pretraining.max_genes"),
                                          ("finetune_epochs", "finetuning.epochs"),
                                          ("finetune_learning_rate", "finetuning.learning_rate"),
                                          ("finetune_encoder_lr_ratio", "finetuning.encoder_learning_rate_ratio")])
def test_old_flat_keys_say_where_they_moved(tmp_path, old, new):
    with pytest.raises(ArgumentsError, match=rf"^{old} moved to {new.replace('.', '[.]')} "):
        parse_json(tmp_path, {old: 1})
    with pytest.raises(ArgumentsError, match=rf"^--{old} moved to {new.replace('.', '[.]')} "):
        parse_flags(f"--{old}", "1")


def test_the_command_prints_the_moved_key_instead_of_a_traceback(tmp_path, capsys):
    config = tmp_path / "old.json"
    config.write_text(json.dumps({"data_dir": "data", "output": str(tmp_path / "out"), "finetune_epochs": 3}))
    assert main(["benchmark", str(config)]) == 2
    assert "gexbert benchmark: error: finetune_epochs moved to finetuning.epochs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_options_the_run_decides_are_refused_with_what_to_set_instead(tmp_path):
    with pytest.raises(ArgumentsError, match=r"pretraining\.max_steps is set by the benchmark \(from the time "
                                             r"budget \(set pretrain_minutes"):
        parse_json(tmp_path, {"pretraining": {"max_steps": 50}})
    with pytest.raises(ArgumentsError, match=r"pretraining\.seed is set by the benchmark \(from seed\)"):
        parse_flags("--pretraining.seed", "3")
    with pytest.raises(ArgumentsError, match=r"finetuning\.panel_seed is set by the benchmark .*benchmark_finetuning\(\)"):
        BenchmarkArguments(data_dir="data", output="out", finetuning=replace(benchmark_finetuning(), panel_seed=2))
    with pytest.raises(ArgumentsError, match=r"pretraining\.max_genes"):
        parse_json(tmp_path, {"pretraining": {"max_genes": None}})
    help_text = make_parser(BenchmarkArguments, "benchmark").format_help()
    assert "--pretraining.learning_rate" in help_text and "--pretraining.max_steps" not in help_text


def test_committed_configs_and_records_read_as_nested_arguments():
    configs = sorted((REPOSITORY / "modeling" / "configs").glob("*.json"))
    assert configs
    parser = make_parser(BenchmarkArguments, "benchmark")
    epochs = {}
    for path in configs:
        (arguments,) = parser.parse_json_file(str(path))
        epochs[path.stem] = arguments.finetuning.epochs
    assert epochs["tcga3_xena_log2tpm"] == 8 and epochs["tcga31_mirna_log2rpm_release_classification"] == 0
    for path in sorted((REPOSITORY / "reports" / "benchmark").glob("**/results.json")):
        recorded = json.loads(path.read_text())["arguments"]
        arguments = arguments_from_dict(BenchmarkArguments, recorded)
        assert arguments.pretraining.max_genes == recorded["pretraining"]["max_genes"], path


def test_fine_tuning_options_per_task_seed_and_mode(monkeypatch):
    """What the benchmark hands the training loop: the nested options with the run's own values replaced."""
    seen = []
    monkeypatch.setattr(benchmark, "finetune_in_memory",
                        lambda model, tokenizer, train, validation, panel, options, class_names=None:
                        seen.append(options))
    arguments = BenchmarkArguments(data_dir="data", output="out", max_queries=32,
                                   finetuning=replace(benchmark_finetuning(), epochs=6, learning_rate=5e-4,
                                                      batch_size=16))
    benchmark._finetune(None, None, None, None, ["A"], 3, arguments, class_names=["x", "y"])
    benchmark._finetune(None, None, None, None, ["A"], 4, arguments)
    arguments.quick = True
    benchmark._finetune(None, None, None, None, ["A"], 5, arguments, class_names=["x", "y"])
    classify, survival, quick = seen
    assert (classify.epochs, classify.learning_rate, classify.batch_size, classify.max_queries) == (6, 5e-4, 16, 32)
    assert (classify.seed, classify.panel_seed) == (3, 3)
    assert survival.batch_size == 32 and (survival.seed, survival.panel_seed) == (4, 4)
    assert quick.epochs == 1 and quick.seed == 5
    default = BenchmarkArguments(data_dir="data", output="out")
    benchmark._finetune(None, None, None, None, ["A"], 0, default)
    assert seen[-1].max_queries == 64 and seen[-1].batch_size == 64 and seen[-1].epochs == 4
