"""One input builder (`inputs_gexbert`): the tokenizer, the collators and inference feed a model the same tensors, and
the no-package path gives `gexbert predict`'s numbers on a table with missing values."""

import numpy as np
import pandas as pd
import pytest
import torch
from remote_code import run_without_package

from gexbert_hf import GexBertForMaskedExpression, GexBertForSequenceClassification
from gexbert_hf.cli import main
from gexbert_hf.configuration_gexbert import MASK_LEVEL_ID, MISSING_LEVEL_ID
from gexbert_hf.data.collator import DataCollatorForExpressionFinetuning, panel_ids_and_queries
from gexbert_hf.data.samples import EncodedSamples, fetch_rows
from gexbert_hf.inference import impute
from gexbert_hf.inputs_gexbert import build_model_inputs, sample_tokens


@pytest.fixture()
def frame_with_nan(embedded_cohort):
    frame = embedded_cohort.expression.iloc[:12].copy()
    rng = np.random.default_rng(0)
    frame = frame.mask(rng.random(frame.shape) < 0.3)  # scattered NaN, in the panel and outside it
    frame.iloc[3, :] = np.nan
    frame.iloc[3, 5] = 1.0  # one sample with a single measured gene
    return frame


@pytest.fixture()
def panel_config(tiny_config, embedded_tokenizer):
    tiny_config.panel_genes = embedded_tokenizer.genes[5:25]
    tiny_config.query_unseen, tiny_config.max_queries, tiny_config.panel_seed = True, 12, 3
    tiny_config.num_labels = 3
    tiny_config.id2label = {0: "a", 1: "b", 2: "c"}
    tiny_config.label2id = {"a": 0, "b": 1, "c": 2}
    return tiny_config


def _assert_same(first, second):
    assert set(first) == set(second)
    for key in first:
        np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(second[key]), err_msg=key)


def test_tokenizer_collator_and_builder_give_identical_tensors(embedded_tokenizer, panel_config, frame_with_nan):
    tokenizer = embedded_tokenizer
    panel_ids, query_ids = panel_ids_and_queries(tokenizer, panel_config.panel_genes, True, 12, 3)
    encoded = tokenizer.encode(frame_with_nan)
    built = build_model_inputs(encoded["gene_ids"], encoded["level_ids"], encoded["values"], panel_ids=panel_ids,
                               query_ids=query_ids)
    collator = DataCollatorForExpressionFinetuning(tokenizer, panel_ids=panel_ids, query_ids=query_ids, seed=1)
    samples = EncodedSamples(encoded)
    collated = collator(fetch_rows(samples, range(len(samples))))
    try:
        called = tokenizer.use_inputs_of(panel_config)(frame_with_nan)
    finally:
        tokenizer.panel_ids = tokenizer.query_ids = None
    _assert_same(built, collated)
    _assert_same(built, called)
    assert not (built["level_ids"] == MISSING_LEVEL_ID).any()  # missing values are left out, never MISSING tokens
    assert (built["level_ids"] == MASK_LEVEL_ID).sum(1).eq(len(query_ids)).all()  # the queries, and only them
    lengths = built["attention_mask"].sum(1)
    measured = (frame_with_nan[panel_config.panel_genes].notna()).sum(1).to_numpy()
    np.testing.assert_array_equal(lengths.numpy(), 1 + measured + len(query_ids))


def test_restore_rule_puts_a_mask_query_where_each_value_is_missing(embedded_tokenizer, frame_with_nan):
    encoded = embedded_tokenizer.encode(frame_with_nan)
    row = sample_tokens(encoded["gene_ids"], encoded["level_ids"][0], encoded["values"][0], missing="restore")
    missing = frame_with_nan.iloc[0].isna().to_numpy()
    np.testing.assert_array_equal(row["input_ids"], encoded["gene_ids"])  # order kept, nothing dropped
    assert (row["level_ids"][missing] == MASK_LEVEL_ID).all() and (row["values"][missing] == 0).all()
    assert (row["level_ids"][~missing] == encoded["level_ids"][0][~missing]).all()


def test_impute_equals_the_model_on_the_tokenizers_restore_inputs(tiny_config, embedded_tokenizer, frame_with_nan):
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(tiny_config).eval()
    filled, _ = impute(model, embedded_tokenizer, frame_with_nan)
    with torch.no_grad():
        logits = model(**embedded_tokenizer(frame_with_nan, missing="restore")).level_logits[:, 1:]
    probabilities = torch.softmax(logits.float(), -1).numpy()
    gene_ids = embedded_tokenizer.convert_genes_to_ids(list(frame_with_nan.columns))
    mean, _ = embedded_tokenizer.level_distribution_moments(probabilities, gene_ids)
    missing = frame_with_nan.isna().to_numpy()
    np.testing.assert_allclose(filled.to_numpy()[missing], embedded_tokenizer.denormalize(mean)[missing], rtol=1e-6)


def test_exported_classifier_gives_predicts_numbers_without_the_package(panel_config, embedded_tokenizer,
                                                                        frame_with_nan, tmp_path):
    """The new user's trial: `AutoFeatureExtractor` + `AutoModelForSequenceClassification` (no package) and
    `gexbert predict` on a table with NaN, for a classifier fine-tuned on a panel with query genes."""
    torch.manual_seed(0)
    GexBertForSequenceClassification(panel_config).save_pretrained(tmp_path / "classifier")
    embedded_tokenizer.save_pretrained(tmp_path / "classifier")
    assert main(["export", "--model", str(tmp_path / "classifier"), "--output", str(tmp_path / "export")]) == 0
    frame_with_nan.rename_axis("sample").to_csv(tmp_path / "input.csv")
    assert main(["predict", "--model", str(tmp_path / "export"), "--input", str(tmp_path / "input.csv"),
                 "--output", str(tmp_path / "predicted.csv")]) == 0
    result = run_without_package(f"""
        import numpy as np, pandas as pd, torch
        from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification
        export = {str(tmp_path / "export")!r}
        tokenizer = AutoFeatureExtractor.from_pretrained(export, trust_remote_code=True)
        model = AutoModelForSequenceClassification.from_pretrained(export, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        frame = pd.read_csv("input.csv", index_col=0)
        with torch.no_grad():
            probabilities = torch.softmax(model(**tokenizer(frame)).logits, -1).numpy()
        expected = pd.read_csv("predicted.csv", index_col=0)
        np.testing.assert_allclose(probabilities, expected.filter(like="probability_").to_numpy(), rtol=1e-5,
                                   atol=1e-6)
        labels = [model.config.id2label[i] for i in probabilities.argmax(1)]
        assert labels == list(expected["predicted"]), (labels, list(expected["predicted"]))
        print("same labels", len(labels))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same labels 12" in result.stdout
    predicted = pd.read_csv(tmp_path / "predicted.csv", index_col=0)
    assert len(predicted) == 12


def test_imputation_gives_one_answer_on_every_path(model_dir, embedded_tokenizer, frame_with_nan, tmp_path):
    """`impute` (Python), `gexbert impute` (CLI) and the no-package path (`tokenizer(df, missing="restore")`, the
    model, `tokenizer.fill_missing`) fill the same cells with the same numbers."""
    from gexbert_hf import GexBertForMaskedExpression as Model
    from gexbert_hf import GexBertTokenizer

    frame = frame_with_nan.drop(index=frame_with_nan.index[3])
    model, tokenizer = Model.from_pretrained(model_dir).eval(), GexBertTokenizer.from_pretrained(model_dir)
    python, _ = impute(model, tokenizer, frame)
    frame.rename_axis("sample").to_csv(tmp_path / "input.csv")
    assert main(["impute", "--model", str(model_dir), "--input", str(tmp_path / "input.csv"), "--output",
                 str(tmp_path / "filled.csv"), "--only_input_genes"]) == 0
    cli = pd.read_csv(tmp_path / "filled.csv", index_col=0)
    np.testing.assert_allclose(cli.to_numpy(), python.to_numpy(), rtol=1e-6)
    python.to_csv(tmp_path / "python.csv")
    result = run_without_package(f"""
        import numpy as np, pandas as pd, torch
        from transformers import AutoFeatureExtractor, AutoModelForMaskedLM
        tokenizer = AutoFeatureExtractor.from_pretrained({str(model_dir)!r}, trust_remote_code=True)
        model = AutoModelForMaskedLM.from_pretrained({str(model_dir)!r}, trust_remote_code=True).eval()
        frame = pd.read_csv("input.csv", index_col=0)
        with torch.no_grad():
            logits = model(**tokenizer(frame, missing="restore")).level_logits
        filled = tokenizer.fill_missing(frame, logits)
        np.testing.assert_allclose(filled.to_numpy(), pd.read_csv("python.csv", index_col=0).to_numpy(), rtol=1e-5)
        assert not filled.isna().any().any()
        print("same imputation", filled.shape)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same imputation (11, " in result.stdout
