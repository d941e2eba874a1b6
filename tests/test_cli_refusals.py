"""Bad arguments and broken checkpoints through the `gexbert` command: one error line naming the file or argument,
exit 2, nothing written (issue #14, items 6 and 10)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch

from gexbert_hf import GexBertConfig, GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertTokenizer
from gexbert_hf.cli import main
from gexbert_hf.data.build import build_dataset


def error_line(capsys) -> str:
    """The command's single error line (warnings may precede it on stderr)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture()
def cohort_files(synthetic_cohort, tmp_path):
    """The synthetic cohort as files: samples x genes CSV and a clinical TSV."""
    expression, clinical = tmp_path / "expression.csv", tmp_path / "clinical.tsv"
    synthetic_cohort.expression.to_csv(expression)
    synthetic_cohort.clinical.to_csv(clinical, sep="\t")
    return expression, clinical


def test_build_dataset_log1p_on_a_negative_value_names_the_sample_id(synthetic_cohort, cohort_files, tmp_path, capsys):
    """The message used to name the row number among the training samples (`sample '5'`)."""
    expression, clinical = cohort_files
    frame = synthetic_cohort.expression.copy()
    frame.loc["SYN-000042", "GENE00003"] = -2.5
    frame.to_csv(expression)
    assert main(["build-dataset", "--expression", str(expression), "--clinical", str(clinical), "--output",
                 str(tmp_path / "dataset"), "--label_column", "cancer_type", "--normalization", "log1p"]) == 2
    line = error_line(capsys)
    assert f"{expression}: normalization='log1p' needs non-negative values" in line
    assert "gene 'GENE00003' is -2.5 in sample 'SYN-000042' (1 negative cells)" in line
    assert not (tmp_path / "dataset").exists()


@pytest.fixture(scope="module")
def datasets_and_model(synthetic_cohort, tmp_path_factory):
    """Three built datasets (normal, one training sample, one gene) and an untrained model of the normal one."""
    cohort, tmp_path = synthetic_cohort, tmp_path_factory.mktemp("built")
    built = {}
    built["normal"] = tmp_path / "normal"
    build_dataset(cohort, output=built["normal"], verbose=False)
    one_train = pd.Series("test", index=cohort.expression.index)
    one_train.iloc[0] = "train"
    built["one-sample"] = tmp_path / "one-sample"
    build_dataset(cohort, output=built["one-sample"], split=one_train, verbose=False)
    built["one-gene"] = tmp_path / "one-gene"
    build_dataset(cohort.expression.iloc[:, :1], cohort.clinical, output=built["one-gene"],
                  label_column="cancer_type", verbose=False)
    built["other-genes"] = tmp_path / "other-genes"
    build_dataset(cohort.expression.rename(columns={cohort.expression.columns[4]: "OTHER"}), cohort.clinical,
                  output=built["other-genes"], label_column="cancer_type", verbose=False)
    tokenizer = GexBertTokenizer.from_pretrained(built["normal"])
    model_dir = tmp_path / "pretrained"
    GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, hidden_size=16, num_hidden_layers=1,
                                                            num_attention_heads=2)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return built, model_dir


@pytest.mark.parametrize(
    "dataset, options, named",
    [
        ("normal", ["--batch_size", "500"], r"--batch_size 500 does not fit its train split of .*normal \(86 samples\)"),  # 96 less the 10 carved out for validation
        ("one-sample", ["--batch_size", "1"], r"--dataset .*one-sample: its train split holds 1 sample\(s\)"),
        ("one-gene", ["--batch_size", "8"], r"--dataset .*one-gene: 1 gene; masked-expression pretraining"),
    ],
    ids=["batch-larger-than-train", "single-sample", "single-gene"],
)
def test_pretrain_refuses_a_training_set_it_cannot_use(datasets_and_model, tmp_path, capsys, dataset, options, named):
    built, _ = datasets_and_model
    output = tmp_path / "run"
    assert main(["pretrain", "--dataset", str(built[dataset]), "--output_dir", str(output), "--preset", "tiny",
                 "--max_steps", "2", "--progress", "false", *options]) == 2
    assert re.search(named, error_line(capsys))
    assert not output.exists()


@pytest.mark.parametrize(
    "dataset, options, named",
    [
        ("normal", ["--batch_size", "90"], r"--batch_size 90 does not fit its train split less validation of "),
        ("one-sample", [], r"--dataset .*one-sample: its train split \(samples with a target\) holds 1 sample"),
    ],
    ids=["batch-larger-than-train", "single-sample"],
)
def test_finetune_refuses_a_training_set_it_cannot_use(datasets_and_model, tmp_path, capsys, dataset, options, named):
    built, model_dir = datasets_and_model
    output = tmp_path / "classifier"
    assert main(["finetune", "classify", "--model", str(model_dir), "--dataset", str(built[dataset]),
                 "--output_dir", str(output), "--epochs", "1", "--progress", "false", *options]) == 2
    assert re.search(named, error_line(capsys))
    assert not output.exists()


def test_predict_refuses_a_checkpoint_whose_weights_give_nan(embedded_tokenizer, embedded_cohort, tmp_path, capsys):
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    model = GexBertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "model")
    embedded_tokenizer.save_pretrained(tmp_path / "model")
    source = tmp_path / "input.csv"
    embedded_cohort.expression.iloc[:5].rename_axis("sample").to_csv(source)
    output = tmp_path / "predictions.csv"
    assert main(["predict", "--model", str(tmp_path / "model"), "--input", str(source), "--output", str(output)]) == 2
    line = error_line(capsys)
    assert f"{tmp_path / 'model'}: the model outputs NaN or infinite values for 5 of 5 samples" in line
    assert not output.exists()


@pytest.mark.parametrize("damage", ["truncated-weights", "other-genes-same-count"])
def test_finetune_refuses_a_damaged_or_foreign_model(datasets_and_model, tmp_path, capsys, damage):
    """A truncated model.safetensors used to give a SafetensorError traceback; a model folder without its tokenizer
    fine-tuned on a dataset of other genes (same count) used to train silently on mismatched gene ids."""
    import shutil

    built, model_dir = datasets_and_model
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    dataset = built["normal"]
    if damage == "truncated-weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-64])
        named = rf"{folder}: cannot load the model weights \(SafetensorError: "
    else:
        for path in folder.glob("gexbert_tokenizer.*"):
            path.unlink()
        dataset = built["other-genes"]
        named = rf"{folder}: the tokenizer does not belong to this model: other genes"
    output = tmp_path / "classifier"
    assert main(["finetune", "classify", "--model", str(folder), "--dataset", str(dataset), "--output_dir",
                 str(output), "--epochs", "1", "--progress", "false"]) == 2
    assert re.search(named, error_line(capsys))
    assert not output.exists()
