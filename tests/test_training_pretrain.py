"""Pretraining: real-data learning, exact resume, corrupt-checkpoint skipping, the fp16-on-CPU refusal, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from short_runs import short_pretraining_options

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.cli import main
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.training import pretrain as pretrain_module
from gexbert_hf.training import run_log as run_log_module
from gexbert_hf.training.checkpoints import list_checkpoints
from gexbert_hf.training.presets import build_config
from gexbert_hf.training.pretrain import (
    TrainingArgumentError,
    evaluate_restoration,
    make_accelerator,
    pretrain_model,
)


def test_pretraining_lowers_held_out_restoration_loss_on_tcga(shared_data_dir, tmp_path):
    from gexbert_hf.data.readers import load_cohort, load_split

    folder = shared_data_dir / "tcga3_xena_log2tpm"
    cohort = load_cohort(folder)
    split = load_split(folder).reindex(cohort.expression.index)
    train = cohort.expression[(split == "train").to_numpy()]
    genes = list(train.var().sort_values(ascending=False).index[:96])  # keep the test to seconds
    fit, held_out = train.iloc[:600][genes], train.iloc[600:][genes]
    tokenizer = GexBertTokenizer.fit(fit, normalization="none", num_levels=16)
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(build_config(tokenizer, "tiny", max_genes=48))
    train_samples, eval_samples = EncodedSamples.from_frame(tokenizer, fit), EncodedSamples.from_frame(tokenizer, held_out)
    before = evaluate_restoration(model, tokenizer, eval_samples, 64, 48, 0.3)["eval_loss"]
    result = pretrain_model(model, tokenizer, train_samples,
                            short_pretraining_options(max_steps=80, batch_size=32, eval_steps=40, save_steps=0, max_genes=48,
                                     logging_steps=20),
                            eval_samples=eval_samples, output_dir=tmp_path)
    assert result.eval_loss < before - 0.1, (before, result.eval_loss)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged] == [20, 40, 60, 80]
    assert {"loss", "learning_rate", "samples_per_second", "eval_loss"} <= set(logged[-1])


def _run(embedded_tokenizer, tiny_config, samples, output_dir, resume=False, **overrides):
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(tiny_config)
    return pretrain_model(model, embedded_tokenizer, samples, short_pretraining_options(**overrides), output_dir=output_dir,
                          resume=resume).model


def test_resume_after_a_crash_ends_with_identical_weights(embedded_cohort, embedded_tokenizer, tiny_config, tmp_path,
                                                          monkeypatch, caplog):
    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:100])
    reference = _run(embedded_tokenizer, tiny_config, samples, tmp_path / "uninterrupted")

    original_log = run_log_module._log

    def crash_at_step_10(output_dir, record, writer):
        if record["step"] == 10:
            raise KeyboardInterrupt("simulated crash")
        original_log(output_dir, record, writer)

    monkeypatch.setattr(run_log_module, "_log", crash_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        _run(embedded_tokenizer, tiny_config, samples, tmp_path / "interrupted")
    monkeypatch.setattr(run_log_module, "_log", original_log)
    root = tmp_path / "interrupted" / "checkpoints"
    assert [path.name for path in list_checkpoints(root)] == ["step-00000004", "step-00000008"]
    # a half-written newer checkpoint (no completion marker, empty weights) must be skipped with a warning
    corrupt = root / "step-00000009"
    corrupt.mkdir()
    (corrupt / "model.safetensors").write_bytes(b"")
    resumed = _run(embedded_tokenizer, tiny_config, samples, tmp_path / "interrupted", resume=True)
    assert "skipping checkpoint" in caplog.text

    expected, actual = reference.state_dict(), resumed.state_dict()
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_pretraining_without_an_output_folder_writes_nothing_and_learns_the_same(
        embedded_cohort, embedded_tokenizer, tiny_config, tmp_path, monkeypatch):
    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:100])
    on_disk = _run(embedded_tokenizer, tiny_config, samples, tmp_path / "run", save_steps=0)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    result = pretrain_model(GexBertForMaskedExpression(tiny_config), embedded_tokenizer, samples,
                            short_pretraining_options(save_steps=0))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]  # nothing written beside the other run
    assert [record["step"] for record in result.history] == list(range(2, 13, 2))
    for name, weights in on_disk.state_dict().items():
        assert torch.equal(weights, result.model.state_dict()[name]), name
    with pytest.raises(TrainingArgumentError, match="output_dir"):
        pretrain_model(result.model, embedded_tokenizer, samples, short_pretraining_options(), resume=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed where CUDA exists")
def test_fp16_on_cpu_is_refused_not_ignored(tmp_path, capsys):
    with pytest.raises(TrainingArgumentError, match="fp16.*CUDA"):
        make_accelerator("fp16")
    code = main(["pretrain", "--dataset", str(tmp_path), "--output_dir", str(tmp_path / "out"),
                 "--mixed_precision", "fp16"])
    assert code == 2 and "error" in capsys.readouterr().err


def test_pretrain_command_writes_a_loadable_model_and_refuses_to_overwrite(synthetic_cohort, tmp_path, capsys):
    from gexbert_hf.data.build import build_dataset

    dataset = tmp_path / "dataset"
    build_dataset(synthetic_cohort, output=dataset, verbose=False)
    output = tmp_path / "model"
    arguments = ["pretrain", "--dataset", str(dataset), "--output_dir", str(output), "--preset", "tiny",
                 "--max_steps", "6", "--batch_size", "16", "--save_steps", "3", "--logging_steps", "3",
                 "--eval_steps", "3", "--progress", "false"]
    assert main(arguments) == 0
    model = GexBertForMaskedExpression.from_pretrained(output)
    tokenizer = GexBertTokenizer.from_pretrained(output)
    assert model.config.vocab_size == tokenizer.vocab_size
    assert (output / "README.md").is_file() and (output / "metrics.jsonl").is_file()
    # the salted hashes of the training samples, which `gexbert evaluate` checks a cohort against
    from gexbert_hf.training.sample_hashes import shared_samples

    record = model.config.training_samples_hash
    assert 0 < record["n_samples"] < len(synthetic_cohort.expression)
    assert len(shared_samples(record, synthetic_cohort.expression.index)) == record["n_samples"]
    assert main(arguments) == 2
    assert "already holds a trained model" in capsys.readouterr().err
    assert main(["pretrain", "--dataset", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "x")]) == 2
    assert np.isfinite(json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])["eval_loss"])


def _with_unusable_test_split(source, target, validation=None):
    """The dataset at `source` with a test split no model can read (gene ids outside the vocabulary, NaN values)."""
    import shutil

    import datasets

    splits = datasets.load_from_disk(str(source))
    garbage = splits["test"].map(lambda row: {"input_ids": [10**6] * len(row["input_ids"]),
                                              "values": [float("nan")] * len(row["values"])})
    parts = {"train": splits["train"], "test": garbage}
    if validation is not None:
        parts["validation"] = validation
    datasets.DatasetDict(parts).save_to_disk(str(target))
    for path in list(source.glob("gexbert_tokenizer.*")) + list(source.glob("*.py")) + [source / "preprocessor_config.json"]:
        shutil.copy(path, target / path.name)
    return splits


@pytest.mark.parametrize("with_validation", [False, True])
def test_pretraining_holds_out_validation_and_never_reads_test(synthetic_cohort, tmp_path, monkeypatch, capsys,
                                                               with_validation):
    from gexbert_hf.data.build import build_dataset

    built = tmp_path / "built"
    build_dataset(synthetic_cohort, output=built, verbose=False)
    original = _with_unusable_test_split(built, tmp_path / "dataset")
    if with_validation:  # a dataset that has its own validation split keeps it and its whole train
        validation = original["train"].select(range(10))
        original = _with_unusable_test_split(built, tmp_path / "dataset_v", validation)
    seen = {}
    real_pretrain_model = pretrain_module.pretrain_model

    def spy(model, tokenizer, train_samples, options, eval_samples=None, **run):
        seen["train"], seen["eval"] = list(train_samples["sample"]), list(eval_samples["sample"])
        return real_pretrain_model(model, tokenizer, train_samples, options, eval_samples, **run)

    monkeypatch.setattr(pretrain_module, "pretrain_model", spy)
    dataset = tmp_path / ("dataset_v" if with_validation else "dataset")
    assert main(["pretrain", "--dataset", str(dataset), "--output_dir", str(tmp_path / "model"), "--preset", "tiny",
                 "--max_steps", "4", "--batch_size", "16", "--save_steps", "0", "--logging_steps", "2",
                 "--eval_steps", "2", "--progress", "false"]) == 0
    train_ids, test_ids = set(original["train"]["sample"]), set(original["test"]["sample"])
    assert not set(seen["eval"]) & test_ids and not set(seen["train"]) & test_ids
    if with_validation:
        assert seen["eval"] == list(validation["sample"]) and set(seen["train"]) == train_ids
        assert "held-out restoration on the validation split" in capsys.readouterr().out
    else:
        assert len(seen["eval"]) == round(0.1 * len(train_ids)) and not set(seen["eval"]) & set(seen["train"])
        assert set(seen["eval"]) | set(seen["train"]) == train_ids
        assert "carved from train" in capsys.readouterr().out
    last = json.loads((tmp_path / "model" / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(last["eval_loss"])


def test_max_seconds_stops_the_run_logs_the_last_step_and_evaluates_it(embedded_cohort, embedded_tokenizer,
                                                                        tiny_config, tmp_path):
    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:100])
    torch.manual_seed(0)
    result = pretrain_model(GexBertForMaskedExpression(tiny_config), embedded_tokenizer, samples,
                            short_pretraining_options(max_steps=10_000, logging_steps=1000, eval_steps=1000, max_seconds=1.0,
                                     save_steps=0), eval_samples=samples, output_dir=tmp_path / "run")
    assert 0 < result.steps < 10_000 and result.seconds < 30
    assert result.history[-1]["step"] == result.steps and "eval_loss" in result.history[-1]
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["step"] == result.steps


def test_a_mask_rate_range_trains_and_joins_the_run_fingerprint_only_when_set(embedded_cohort, embedded_tokenizer,
                                                                               tiny_config):
    from gexbert_hf.training.pretrain import evaluation_mask_fraction
    from gexbert_hf.training.train_state import run_arguments

    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:100])
    ranged = short_pretraining_options(mask_fraction=0.2, max_mask_fraction=0.9, save_steps=0)
    result = pretrain_model(GexBertForMaskedExpression(tiny_config), embedded_tokenizer, samples, ranged)
    assert np.isfinite(result.final_loss)
    assert evaluation_mask_fraction(ranged) == pytest.approx(0.55)
    assert run_arguments(tiny_config, embedded_tokenizer, samples, ranged, 64, 1)["max_mask_fraction"] == 0.9
    assert "max_mask_fraction" not in run_arguments(tiny_config, embedded_tokenizer, samples, short_pretraining_options(), 64, 1)
