"""impute(model, tokenizer, data): NaN filled, measured values untouched, absent genes restored, uncertainty reported."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import ExpressionInputError, GexBertForMaskedExpression, GexBertTokenizer, impute
from gexbert_hf.inference import predict_distribution


@pytest.fixture()
def model(tiny_config):
    return GexBertForMaskedExpression(tiny_config).eval()


def test_impute_fills_every_nan_and_keeps_measured_values(model, embedded_tokenizer, embedded_cohort):
    frame = embedded_cohort.expression.iloc[:8].copy()
    rng = np.random.default_rng(0)
    holes = rng.random(frame.shape) < 0.5
    with_nans = frame.mask(holes)
    filled, uncertainty = impute(model, embedded_tokenizer, with_nans)
    assert filled.shape == frame.shape and list(filled.columns) == list(frame.columns)
    assert list(filled.index) == list(frame.index)
    assert not filled.isna().any().any()
    np.testing.assert_array_equal(filled.to_numpy()[~holes], frame.to_numpy()[~holes])
    assert (uncertainty.to_numpy()[~holes] == 0).all() and (uncertainty.to_numpy()[holes] > 0).all()
    # restored values lie within the training range of their gene
    low, high = embedded_cohort.expression.min().to_numpy(), embedded_cohort.expression.max().to_numpy()
    restored = filled.to_numpy()
    assert ((restored >= low - 1e-9) & (restored <= high + 1e-9)).all()
    assert with_nans.isna().sum().sum() == holes.sum()  # the input was not modified


def test_impute_restores_genes_absent_from_the_panel(model, embedded_tokenizer, embedded_cohort):
    panel = embedded_cohort.expression.iloc[:5, :16]
    wanted = list(embedded_cohort.expression.columns[40:42])
    restored = impute(model, embedded_tokenizer, panel, genes=wanted)[0]
    assert list(restored.columns) == list(panel.columns) + wanted
    assert not restored[wanted].isna().any().any()


def test_impute_refuses_genes_the_model_does_not_know(model, embedded_tokenizer, embedded_cohort):
    with pytest.raises(ExpressionInputError, match="ESR1"):
        impute(model, embedded_tokenizer, embedded_cohort.expression.iloc[:2], genes=["ESR1"])


def test_log1p_tokenizer_returns_values_on_the_input_scale():
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(50, size=(30, 6)).astype(float), columns=list("ABCDEF"))
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    from gexbert_hf import GexBertConfig

    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, hidden_size=16, num_hidden_layers=1,
                                                                    num_attention_heads=2)).eval()
    with_nan = counts.copy()
    with_nan.iloc[0, 0] = np.nan
    filled, _ = impute(model, tokenizer, with_nan)
    assert 20 < filled.iloc[0, 0] < 100  # counts around 50, not log-scale values around 4
    assert filled.iloc[1, 1] == counts.iloc[1, 1]


def test_predictive_interval_contains_the_mean(model, embedded_tokenizer, embedded_cohort):
    frame = embedded_cohort.expression.iloc[:4].copy()
    frame.iloc[:, :10] = np.nan
    restored = predict_distribution(model, embedded_tokenizer, frame, coverage=0.8)
    assert (restored.lower <= restored.upper).all()
    assert np.isnan(restored.observed[:, :10]).all() and not np.isnan(restored.observed[:, 10:]).any()


def test_one_extreme_training_value_does_not_poison_imputed_values():
    """A 1e300 cell in the training data used to make every imputed value of its gene ~1e298."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(200, 6))
    values[11, 2] = 1e300
    train = pd.DataFrame(values, columns=list("ABCDEF"))
    tokenizer = GexBertTokenizer.fit(train, normalization="none", num_levels=16)
    from gexbert_hf import GexBertConfig

    torch_model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(
        tokenizer, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)).eval()
    holes = train.iloc[:20].copy()
    holes["C"] = np.nan
    filled, _ = impute(torch_model, tokenizer, holes)
    others = np.delete(values[:, 2], 11)
    assert filled["C"].between(others.min(), others.max()).all()


@pytest.mark.parametrize("index", [pd.RangeIndex(6), pd.Index([30, 10, 20, 50, 40, 60], name="patient")],
                         ids=["range-index", "int-index"])
def test_impute_keeps_the_callers_index_so_fillna_fills(model, embedded_tokenizer, embedded_cohort, index):
    """`impute` used to return the index as strings ('0', '1', ...), so `df.fillna(filled)` filled nothing."""
    frame = embedded_cohort.expression.iloc[:6, :20].set_axis(index).rename_axis(columns="gene")
    with_nans = frame.mask(np.random.default_rng(4).random(frame.shape) < 0.3)
    filled, uncertainty = impute(model, embedded_tokenizer, with_nans)
    for result in (filled, uncertainty):
        pd.testing.assert_index_equal(result.index, with_nans.index, exact=True)
        pd.testing.assert_index_equal(result.columns, with_nans.columns, exact=True)
    assert not with_nans.fillna(filled).isna().any().any()


def test_impute_keeps_non_string_gene_labels():
    counts = pd.DataFrame(np.random.default_rng(5).poisson(30, size=(40, 5)).astype(float), columns=[11, 12, 13, 14, 15])
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=4)
    from gexbert_hf import GexBertConfig

    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, hidden_size=16, num_hidden_layers=1,
                                                                    num_attention_heads=2)).eval()
    holes = counts.iloc[:4].copy()
    holes.iloc[1, 2] = np.nan
    filled = impute(model, tokenizer, holes)[0]
    assert list(filled.columns) == [11, 12, 13, 14, 15]
    assert not holes.fillna(filled).isna().any().any()


def test_a_tokenizer_with_other_genes_of_the_same_size_is_refused(model, embedded_tokenizer, embedded_cohort):
    """Same vocabulary size, other genes: imputation used to run and return silently wrong values."""
    from gexbert_hf.errors import TokenizerMismatchError

    expression = embedded_cohort.expression
    other = GexBertTokenizer.fit(expression.rename(columns={expression.columns[0]: "OTHER_GENE"}),
                                 normalization="none", num_levels=16)
    assert other.vocab_size == embedded_tokenizer.vocab_size
    with pytest.raises(TokenizerMismatchError, match="other genes"):
        impute(model, other, expression.iloc[:3].rename(columns={expression.columns[0]: "OTHER_GENE"}))


def test_nan_weights_raise_instead_of_returning_nan(model, embedded_tokenizer, embedded_cohort):
    from gexbert_hf.errors import NonFiniteOutputError

    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.level_head.weight.fill_(float("nan"))
    frame = embedded_cohort.expression.iloc[:3].copy()
    frame.iloc[0, 0] = np.nan
    with pytest.raises(NonFiniteOutputError, match=r"NaN or infinite values for 3 of 3 samples"):
        impute(broken, embedded_tokenizer, frame)


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]


@pytest.mark.parametrize("damage", ["nan-weights", "truncated-weights", "other-genes-tokenizer"])
def test_impute_command_refuses_a_broken_checkpoint_and_writes_nothing(model, embedded_tokenizer, embedded_cohort,
                                                                       tmp_path, capsys, damage):
    from gexbert_hf.cli import main

    folder = tmp_path / "model"
    broken = copy.deepcopy(model)
    if damage == "nan-weights":
        with torch.no_grad():
            broken.level_head.weight.fill_(float("nan"))
    broken.save_pretrained(folder)
    embedded_tokenizer.save_pretrained(folder)
    if damage == "truncated-weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "other-genes-tokenizer":
        expression = embedded_cohort.expression
        GexBertTokenizer.fit(expression.rename(columns={expression.columns[5]: "OTHER_GENE"}), normalization="none",
                             num_levels=16).save_pretrained(folder)
    source = tmp_path / "input.csv"
    embedded_cohort.expression.iloc[:4, :10].rename_axis("sample").to_csv(source)
    output = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(folder), "--input", str(source), "--output", str(output),
                 "--progress", "false"]) == 2
    (line,) = _error_lines(capsys)
    assert str(folder) in line
    assert {path.name for path in tmp_path.iterdir()} == {"model", "input.csv"}  # nothing written


def test_impute_command_names_a_truncated_gzip_input(model, embedded_tokenizer, embedded_cohort, tmp_path, capsys):
    from gexbert_hf.cli import main

    folder = tmp_path / "model"
    model.save_pretrained(folder)
    embedded_tokenizer.save_pretrained(folder)
    source = tmp_path / "input.csv.gz"
    embedded_cohort.expression.iloc[:40].rename_axis("sample").to_csv(source)
    source.write_bytes(source.read_bytes()[:-200])
    assert main(["impute", "--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out.csv"),
                 "--progress", "false"]) == 2
    (line,) = _error_lines(capsys)
    assert f"{source}: cannot be read" in line and "EOFError" in line
    assert not (tmp_path / "out.csv").exists()


@pytest.fixture()
def validation_counts(monkeypatch):
    """How often a matrix is validated (`as_expression_frame`, wherever it is called from) and matched to the
    vocabulary (`select_known`)."""
    import gexbert_hf.data.readers as readers
    import gexbert_hf.expression_input_gexbert as expression_input
    import gexbert_hf.inference as inference
    import gexbert_hf.tokenization_gexbert as tokenization

    counts = {"validated": 0, "matched": 0}
    validate, match = tokenization.as_expression_frame, GexBertTokenizer.select_known

    def counting_validate(*args, **kwargs):
        counts["validated"] += 1
        return validate(*args, **kwargs)

    def counting_match(self, *args, **kwargs):
        counts["matched"] += 1
        return match(self, *args, **kwargs)

    for module in (tokenization, expression_input, inference, readers):
        if hasattr(module, "as_expression_frame"):
            monkeypatch.setattr(module, "as_expression_frame", counting_validate)
    monkeypatch.setattr(GexBertTokenizer, "select_known", counting_match)
    return counts


def test_imputation_validates_and_matches_the_matrix_once(model, embedded_tokenizer, embedded_cohort, tmp_path,
                                                          validation_counts):
    from gexbert_hf.cli import main

    frame = embedded_cohort.expression.iloc[:6].mask(np.eye(6, 76, dtype=bool))
    impute(model, embedded_tokenizer, frame, genes=None, batch_size=2)
    assert validation_counts == {"validated": 1, "matched": 1}
    folder, source = tmp_path / "model", tmp_path / "input.csv"
    model.save_pretrained(folder)
    embedded_tokenizer.save_pretrained(folder)
    frame.iloc[:, :40].rename_axis("sample").to_csv(source)
    validation_counts.update(validated=0, matched=0)
    assert main(["impute", "--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out.csv"),
                 "--progress", "false"]) == 0
    assert validation_counts == {"validated": 1, "matched": 1}  # the reader's validation is the only one


def test_a_validated_frame_edited_into_bad_values_is_validated_again(model, embedded_tokenizer, embedded_cohort,
                                                                    validation_counts):
    from gexbert_hf.expression_input_gexbert import as_expression_frame, is_validated_frame

    frame = as_expression_frame(embedded_cohort.expression.iloc[:4])
    assert is_validated_frame(frame) and is_validated_frame(frame.drop(columns=frame.columns[:3]))
    validation_counts.update(validated=0)
    impute(model, embedded_tokenizer, frame.mask(np.eye(4, 76, dtype=bool)), batch_size=2)
    assert validation_counts["validated"] == 0  # the mark travels through mask(); nothing to check again
    assert not is_validated_frame(frame.set_axis(range(76), axis=1))  # labels that are no longer strings
    edited = frame.copy()
    edited.iloc[1, 2] = np.inf
    assert not is_validated_frame(edited)
    with pytest.raises(ExpressionInputError, match="infinite value for gene"):
        impute(model, embedded_tokenizer, edited)
    assert validation_counts["validated"] == 1
