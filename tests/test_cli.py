"""The `gexbert` command on files: impute, predict, export, and its refusals (never a traceback for bad input)."""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import GexBertForSequenceClassification
from gexbert_hf.cli import SUBCOMMANDS, main, make_parser
from gexbert_hf.commands.common import sidecar_path


@pytest.fixture()
def input_csv(embedded_cohort, tmp_path):
    frame = embedded_cohort.expression.iloc[:12, :30].copy()
    frame.iloc[0, 3] = np.nan
    frame.iloc[5, [1, 7, 9]] = np.nan
    frame["NOT_A_MODEL_GENE"] = 1.0
    path = tmp_path / "input.csv"
    frame.rename_axis("sample").to_csv(path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_subcommands_are_registered(capsys):
    assert {"pretrain", "finetune", "impute", "predict", "export", "demo", "build-dataset"} <= set(SUBCOMMANDS)
    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0


def test_impute_fills_every_value_writes_uncertainty_and_leaves_the_input_alone(model_dirs, input_csv, tmp_path,
                                                                                   embedded_tokenizer, capsys):
    before = _digest(input_csv)
    output = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(output), "--progress", "false"]) == 0
    assert _digest(input_csv) == before
    original = pd.read_csv(input_csv, index_col=0)
    filled = pd.read_csv(output, index_col=0)
    uncertainty = pd.read_csv(sidecar_path(output, "uncertainty"), index_col=0)
    model_genes = [gene for gene in filled.columns if gene != "NOT_A_MODEL_GENE"]
    assert set(model_genes) == set(embedded_tokenizer.genes)  # absent model genes restored too
    assert not filled[model_genes].isna().any().any()
    measured = original.columns[:30]
    observed = original[measured].notna().to_numpy()
    np.testing.assert_allclose(filled[measured].to_numpy()[observed], original[measured].to_numpy()[observed])
    assert (uncertainty[measured].to_numpy()[observed] == 0).all()
    assert (uncertainty[measured].to_numpy()[~observed] > 0).all()
    assert filled.loc[:, "NOT_A_MODEL_GENE"].eq(1.0).all()  # passed through untouched

    # never overwritten without consent, never the input itself
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(output)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(input_csv), "--overwrite"]) == 2
    assert _digest(input_csv) == before
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(output), "--overwrite", "--only_input_genes", "--progress", "false"]) == 0
    assert pd.read_csv(output, index_col=0).shape[1] == 31


def test_impute_refuses_bad_input_with_a_message(model_dirs, tmp_path, capsys):
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(tmp_path / "missing.csv"),
                 "--output", str(tmp_path / "out.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("sample,X200726_at\nA,1.0\nB,oops\n")
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(bad), "--output",
                 str(tmp_path / "out.csv")]) == 2
    assert "oops" in capsys.readouterr().err
    assert main(["impute", "--model", str(model_dirs["classifier"]), "--input", str(bad), "--output",
                 str(tmp_path / "out.tsv")]) == 2
    assert "masked-expression" in capsys.readouterr().err


def test_predict_classes_and_risks(model_dirs, input_csv, tmp_path):
    output = tmp_path / "classes.tsv"
    assert main(["predict", "--model", str(model_dirs["classifier"]), "--input", str(input_csv), "--output",
                 str(output)]) == 0
    table = pd.read_csv(output, sep="\t", index_col=0)
    assert list(table.columns) == ["predicted", "probability_negative", "probability_positive"]
    np.testing.assert_allclose(table.iloc[:, 1:].sum(1), 1.0, rtol=1e-5)
    assert len(table) == 12
    output = tmp_path / "risk.parquet"
    assert main(["predict", "--model", str(model_dirs["survival"]), "--input", str(input_csv), "--output",
                 str(output)]) == 0
    risk = pd.read_parquet(output)
    assert list(risk.columns) == ["risk"] and np.isfinite(risk["risk"]).all()
    assert main(["predict", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(tmp_path / "x.csv")]) == 2


def test_export_writes_a_hub_ready_folder(model_dirs, tmp_path, capsys):
    output = tmp_path / "export"
    assert main(["export", "--model", str(model_dirs["classifier"]), "--output", str(output)]) == 0
    names = {path.name for path in output.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "configuration_gexbert.py", "modeling_gexbert.py",
            "gexbert_tokenizer.json", "gexbert_tokenizer.safetensors"} <= names
    exported = GexBertForSequenceClassification.from_pretrained(output)
    original = GexBertForSequenceClassification.from_pretrained(model_dirs["classifier"])
    for name, tensor in original.state_dict().items():
        assert torch.equal(tensor, exported.state_dict()[name]), name
    assert main(["export", "--model", str(model_dirs["classifier"]), "--output", str(output)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "nothing"), "--output", str(tmp_path / "e2")]) == 2


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_prints_its_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert f"usage: gexbert {name}" in printed
    module, arguments, _ = SUBCOMMANDS[name]
    parser = make_parser(getattr(importlib.import_module(module), arguments), name)
    required = [action.option_strings[0] for action in parser._actions if action.required]
    first = printed.split("options:", 1)[1].split()[0]
    assert first == (required[0] if required else "-h,"), name  # its own required arguments lead, then the options
    if "--no_progress" in printed:  # says what it does, not the help (and inverted default) of --progress
        assert "--no_progress, --no-progress Turn off --progress" in " ".join(printed.split())


def test_no_switches_still_turn_their_option_off():
    from gexbert_hf.cli import make_parser
    from gexbert_hf.commands.impute import ImputeArguments

    parser = make_parser(ImputeArguments, "impute")
    required = ["--model", "m", "--input", "i.csv", "--output", "o.csv"]
    assert parser.parse_args_into_dataclasses(required)[0].progress is True
    assert parser.parse_args_into_dataclasses([*required, "--no_progress"])[0].progress is False


def test_predict_first_says_which_genes_the_model_needs(model_dirs, input_csv, embedded_tokenizer, tmp_path, capsys):
    panel = embedded_tokenizer.genes[:8]
    assert main(["predict", "--model", str(model_dirs["classifier"]), "--input", str(input_csv), "--output",
                 str(tmp_path / "classes.csv")]) == 0
    out = capsys.readouterr().out
    assert f"reads a panel of 8 genes (config.json panel_genes): {', '.join(panel[:5])} and 3 more" in out
    assert f"8 of them measured in {input_csv}" in out
    assert out.index("reads a panel of 8 genes") < out.index("predicted 12 samples")
    assert main(["predict", "--model", str(model_dirs["survival"]), "--input", str(input_csv), "--output",
                 str(tmp_path / "risk.csv")]) == 0
    assert f"reads any of its {len(embedded_tokenizer.genes)} genes" in capsys.readouterr().out


def test_exported_card_shows_the_panel_the_metrics_and_usage_that_fits_the_head(model_dirs, embedded_tokenizer,
                                                                                 tmp_path):
    import json
    import shutil

    source = tmp_path / "finetuned"
    shutil.copytree(model_dirs["classifier"], source)
    metrics = {"validation": {"eval_loss": 0.5, "eval_accuracy": 0.8125, "eval_runtime": 1.25},
               "test": {"accuracy": 0.75, "macro_f1": 0.7, "roc_auc": 0.9}}
    (source / "finetune_metrics.json").write_text(json.dumps(metrics))
    assert main(["export", "--model", str(source), "--output", str(tmp_path / "export")]) == 0
    exported = tmp_path / "export"
    assert json.loads((exported / "finetune_metrics.json").read_text()) == metrics
    card = (exported / "README.md").read_text()
    assert "## Gene panel" in card and ", ".join(embedded_tokenizer.genes[:8]) in card
    assert "| test | roc_auc | 0.9000 |" in card and "| validation | eval_accuracy | 0.8125 |" in card
    assert "eval_runtime" not in card
    assert "predict(model, tokenizer, expression_df)" in card and "gexbert predict" in card
    assert "impute" not in card and "{{" not in card and "\n\n\n" not in card
    assert "| labels | negative, positive |" in card

    assert main(["export", "--model", str(model_dirs["pretrained"]), "--output", str(tmp_path / "pretrained")]) == 0
    card = (tmp_path / "pretrained" / "README.md").read_text()
    assert "impute(model, tokenizer, expression_df)" in card and "embed(model, tokenizer, expression_df)" in card
    assert "## Gene panel" not in card and "Fine-tuning metrics" not in card and "| labels | none |" in card
    assert not (tmp_path / "pretrained" / "finetune_metrics.json").exists()
