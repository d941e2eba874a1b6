"""Checkpoints and final saves (issue #14, items 3, 7, 8, 9): resume never unpickles, a damaged checkpoint is
skipped with a warning naming the file, another run's checkpoint is refused, `--overwrite` clears the old
run (and only it), metrics hold each step once, and a crash during the final save leaves no half-written model."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from short_runs import short_pretraining_options

from gexbert_hf import GexBertConfig, GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.cli import main
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.training import run_log as run_log_module
from gexbert_hf.training.checkpoints import (
    COMPLETE_MARKER,
    ResumeMismatchError,
    file_digest,
    list_checkpoints,
    publish_checkpoint,
    save_final_model,
    temporary_checkpoint_dir,
)
from gexbert_hf.training.pretrain import pretrain_model


@pytest.fixture(scope="module")
def samples(embedded_cohort, embedded_tokenizer):
    return EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:100])


def _run(tokenizer, samples, output_dir, resume=False, **overrides):
    """A tiny run with dropout on, so an exact resume also needs the restored torch RNG state."""
    config = GexBertConfig.from_tokenizer(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=64, hidden_dropout_prob=0.1)
    torch.manual_seed(0)
    return pretrain_model(GexBertForMaskedExpression(config), tokenizer, samples, short_pretraining_options(**overrides),
                          output_dir=output_dir, resume=resume)


@pytest.fixture(scope="module")
def crashed_run(embedded_tokenizer, samples, tmp_path_factory):
    """(weights of an uninterrupted 12-step run, folder of the same run killed while logging step 12).

    The killed run holds checkpoints at steps 4 and 8 and metrics up to step 10."""
    folder = tmp_path_factory.mktemp("runs")
    reference = _run(embedded_tokenizer, samples, folder / "uninterrupted").model.state_dict()
    original_log = run_log_module._log

    def crash_at_step_12(output_dir, record, writer):
        if record["step"] == 12:
            raise KeyboardInterrupt("simulated crash")
        original_log(output_dir, record, writer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_log_module, "_log", crash_at_step_12)
        with pytest.raises(KeyboardInterrupt):
            _run(embedded_tokenizer, samples, folder / "crashed")
    assert [path.name for path in list_checkpoints(folder / "crashed" / "checkpoints")] == [
        "step-00000004", "step-00000008"]
    return reference, folder / "crashed"


def _copy(crashed_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(crashed_run[1], run)
    return run


def _assert_same_weights(expected: dict, model: torch.nn.Module) -> None:
    actual = model.state_dict()
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def _logged_steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_is_exact_and_logs_each_step_once(crashed_run, embedded_tokenizer, samples, tmp_path):
    run = _copy(crashed_run, tmp_path)
    result = _run(embedded_tokenizer, samples, run, resume=True)
    _assert_same_weights(crashed_run[0], result.model)
    assert _logged_steps(run) == [2, 4, 6, 8, 10, 12]  # step 10 was logged before the crash and again after
    assert [record["step"] for record in result.history] == [2, 4, 6, 8, 10, 12]


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("name", "damage"), [
    ("model.safetensors", _truncate),
    ("optimizer.safetensors", _truncate),
    ("scheduler.safetensors", _flip_last_byte),
    ("process_0.safetensors", lambda path: path.unlink()),  # the RNG states
])
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning_naming_the_file(
        crashed_run, embedded_tokenizer, samples, tmp_path, caplog, name, damage):
    run = _copy(crashed_run, tmp_path)
    damage(run / "checkpoints" / "step-00000008" / name)
    result = _run(embedded_tokenizer, samples, run, resume=True)
    assert "skipping checkpoint" in caplog.text and "step-00000008" in caplog.text and name in caplog.text
    _assert_same_weights(crashed_run[0], result.model)  # continued exactly from step 4
    assert _logged_steps(run) == [2, 4, 6, 8, 10, 12]
    assert [path.name for path in list_checkpoints(run / "checkpoints")] == ["step-00000004", "step-00000008"]


class _Payload:
    """Unpickling this creates `sentinel`: proof that code ran."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return open, (self.sentinel, "w")


@pytest.mark.parametrize("doctored", ["pickle files", "optimizer"])
def test_resume_never_unpickles_a_doctored_checkpoint(crashed_run, embedded_tokenizer, samples, tmp_path, caplog,
                                                      doctored):
    run = _copy(crashed_run, tmp_path)
    sentinel = tmp_path / "code-ran"
    newest = run / "checkpoints" / "step-00000008"
    if doctored == "pickle files":  # what Accelerate's load_state unpickled
        for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl"):
            (newest / name).write_bytes(pickle.dumps(_Payload(sentinel)))
    else:
        for optimizer_file in newest.glob("optimizer*"):
            torch.save({"state": _Payload(sentinel)}, optimizer_file)
    marker = json.loads((newest / COMPLETE_MARKER).read_text())
    if "files" in marker:  # a tamperer who also rewrites the recorded sizes and hashes
        marker["files"] = {path.name: file_digest(path) for path in newest.iterdir() if path.name != COMPLETE_MARKER}
        (newest / COMPLETE_MARKER).write_text(json.dumps(marker))
    result = _run(embedded_tokenizer, samples, run, resume=True)
    assert not sentinel.exists()
    if doctored == "optimizer":  # not a safetensors file: skipped, the run continues from step 4
        assert "skipping checkpoint" in caplog.text and "optimizer.safetensors" in caplog.text
    _assert_same_weights(crashed_run[0], result.model)


@pytest.mark.parametrize(("overrides", "named"), [
    ({"seed": 1}, "seed: checkpoint 0, now 1"),
    ({"max_steps": 16}, "max_steps: checkpoint 12, now 16"),
    ({"mask_fraction": 0.5}, "mask_fraction"),
    ({"rows": 90}, "train_samples"),
])
def test_resume_refuses_a_checkpoint_of_another_run(crashed_run, embedded_tokenizer, embedded_cohort, samples,
                                                    tmp_path, overrides, named):
    run = _copy(crashed_run, tmp_path)
    before = sorted(path.name for path in (run / "checkpoints").rglob("*"))
    rows = overrides.pop("rows", None)
    if rows is not None:
        samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[:rows])
    with pytest.raises(ResumeMismatchError, match=named):
        _run(embedded_tokenizer, samples, run, resume=True, **overrides)
    assert sorted(path.name for path in (run / "checkpoints").rglob("*")) == before


def test_pruning_orders_by_step_number_and_drops_checkpoints_a_resume_went_past(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (2, 4, 8):  # step 8: a damaged checkpoint the resumed run skipped
        (root / f"step-{step:08d}").mkdir(parents=True)
    temporary = temporary_checkpoint_dir(root, 6)
    temporary.mkdir()
    (temporary / "model.safetensors").write_bytes(b"weights")
    publish_checkpoint(root, 6, {}, keep_last=2)
    assert [path.name for path in list_checkpoints(root)] == ["step-00000004", "step-00000006"]
    for step in (99_999_999, 100_000_000):
        (root / f"step-{step:08d}").mkdir()
    assert [path.name for path in list_checkpoints(root)][-2:] == ["step-99999999", "step-100000000"]


@pytest.fixture(scope="module")
def dataset(synthetic_cohort, tmp_path_factory):
    from gexbert_hf.data.build import build_dataset

    folder = tmp_path_factory.mktemp("dataset") / "dataset"
    build_dataset(synthetic_cohort, output=folder, verbose=False)
    return folder


def _pretrain_command(dataset, output, *extra):
    return ["pretrain", "--dataset", str(dataset), "--output_dir", str(output), "--preset", "tiny",
            "--batch_size", "16", "--progress", "false", *extra]


def test_overwrite_clears_the_old_run_and_nothing_else(dataset, tmp_path, capsys):
    output = tmp_path / "model"
    assert main(_pretrain_command(dataset, output, "--max_steps", "9", "--save_steps", "3", "--logging_steps",
                                  "3", "--seed", "1")) == 0
    (output / "notes.txt").write_text("mine")
    assert main(_pretrain_command(dataset, output, "--max_steps", "4", "--save_steps", "2", "--logging_steps", "2",
                                  "--overwrite")) == 0
    assert [path.name for path in list_checkpoints(output / "checkpoints")] == ["step-00000002"]
    assert _logged_steps(output) == [2, 4]
    assert (output / "notes.txt").read_text() == "mine"
    GexBertForMaskedExpression.from_pretrained(output)
    assert main(_pretrain_command(dataset, output, "--max_steps", "4", "--resume", "--overwrite")) == 2
    assert "pass one of them" in capsys.readouterr().err


def test_a_crash_during_the_final_pretrain_save_leaves_no_model_and_resume_finishes(dataset, tmp_path,
                                                                                     monkeypatch):
    from gexbert_hf import GexBertPreTrainedModel

    output = tmp_path / "model"
    arguments = _pretrain_command(dataset, output, "--max_steps", "4", "--save_steps", "2", "--logging_steps", "2")

    def disk_full(model, directory):
        raise OSError("disk full")

    with monkeypatch.context() as patch:  # fails after transformers wrote config.json and the weights
        patch.setattr(GexBertPreTrainedModel, "checkpoint_completer", disk_full)  # what hub.py attaches
        with pytest.raises(OSError, match="disk full"):
            main(arguments)
    assert not (output / "config.json").exists() and not (output / "model.safetensors").exists()
    assert not list(output.glob(".final-*"))
    assert main([*arguments, "--resume"]) == 0
    model, tokenizer = GexBertForMaskedExpression.from_pretrained(output), GexBertTokenizer.from_pretrained(output)
    assert model.config.vocab_size == tokenizer.vocab_size


def test_a_crash_during_the_final_finetune_save_leaves_no_model(embedded_tokenizer, embedded_cohort, tmp_path,
                                                                 monkeypatch):
    import numpy as np

    from gexbert_hf.training.finetune import FinetuningOptions, finetune_classifier

    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=4, intermediate_size=64, max_genes=64)
    torch.manual_seed(0)
    pretrained = GexBertForMaskedExpression(config)
    labels = (embedded_cohort.clinical["er"] == "positive").to_numpy(np.int64)
    train, validation = (EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression.iloc[rows],
                                                   {"label": labels[rows]}) for rows in (slice(0, 130),
                                                                                         slice(130, 198)))
    options = FinetuningOptions(epochs=1, batch_size=32, progress=False)

    trainer_save = GexBertTokenizer.save_pretrained

    def disk_full_at_the_final_save(self, directory):  # the Trainer's own checkpoints save the tokenizer too
        if Path(directory).name.startswith("checkpoint-"):
            return trainer_save(self, directory)
        raise OSError("disk full")

    # the final save writes the tokenizer after the model's config and weights
    monkeypatch.setattr(GexBertTokenizer, "save_pretrained", disk_full_at_the_final_save)
    with pytest.raises(OSError, match="disk full"):
        finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"], options,
                            embedded_tokenizer.genes[:16], output_dir=tmp_path)
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob(".final-*"))


def test_a_failed_final_save_keeps_the_previous_model(tmp_path):
    (tmp_path / "config.json").write_text('{"old": true}')
    (tmp_path / "model.safetensors").write_bytes(b"old weights")

    def half_written(folder):
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError):
        save_final_model(tmp_path, half_written)
    assert (tmp_path / "config.json").read_text() == '{"old": true}'
    assert (tmp_path / "model.safetensors").read_bytes() == b"old weights"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
