"""The scale check at the door: input on another scale than the checkpoint's is refused, a milder shift is warned
about once, and the checkpoint's own kind of data passes silently."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertTokenizer
from gexbert_hf.inference import embed, impute, predict
from gexbert_hf.input_scale import InputScaleError, assess_input_scale, check_input_scale
from gexbert_hf.loading import load_model_and_tokenizer


@pytest.fixture(scope="module")
def model(embedded_tokenizer):
    from gexbert_hf import GexBertConfig

    torch.manual_seed(0)
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32)
    return GexBertForMaskedExpression(config).eval()


def _verdict(tokenizer, frame):
    known = tokenizer.select_known(frame)
    encoded = tokenizer.encode_known(known)
    return assess_input_scale(tokenizer, encoded["normalized"], encoded["gene_ids"] - 2)


def test_the_checkpoints_own_kind_of_data_passes_silently(model, embedded_tokenizer, embedded_cohort):
    frame = embedded_cohort.expression.iloc[:40].copy()
    frame.iloc[:, :5] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        impute(model, embedded_tokenizer, frame)
        impute(model, embedded_tokenizer, frame.iloc[:1])  # one sample: no spread to judge, no false alarm
    assert _verdict(embedded_tokenizer, frame).status == "ok"


def test_counts_into_a_log_model_are_refused_naming_scale_look_and_transform(model, embedded_tokenizer,
                                                                             embedded_cohort):
    counts = np.round(2 ** embedded_cohort.expression.iloc[:30] * 50)  # unlogged, integer: raw counts
    with pytest.raises(InputScaleError) as refused:
        impute(model, embedded_tokenizer, counts)
    message = str(refused.value)
    assert "raw counts" in message and "log2" in message and "expects log-scale expression" in message
    assert "--scale_check warn" in message
    with pytest.warns(UserWarning, match="not on the checkpoint's scale"):
        filled, _ = impute(model, embedded_tokenizer, counts, scale_check="warn")  # explicit: proceed anyway
    assert filled.shape == counts.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        impute(model, embedded_tokenizer, counts, scale_check="off")


def test_a_milder_shift_warns_once_with_numbers_and_points_to_adapt(model, embedded_tokenizer, embedded_cohort):
    shifted = embedded_cohort.expression.iloc[:40] + 2.0 * embedded_tokenizer.scale.mean()
    with pytest.warns(UserWarning) as caught:
        impute(model, embedded_tokenizer, shifted)
    messages = [str(warning.message) for warning in caught if "gexbert adapt" in str(warning.message)]
    assert len(messages) == 1 and "training SDs" in messages[0]


def test_z_scores_into_a_log_model_and_log_values_into_a_z_model_are_refused(embedded_tokenizer, embedded_cohort):
    frame = embedded_cohort.expression
    zscores = (frame - frame.mean()) / frame.std()
    known = embedded_tokenizer.select_known(zscores)
    encoded = embedded_tokenizer.encode_known(known)
    with pytest.raises(InputScaleError, match="per-gene z-scores"):
        check_input_scale(embedded_tokenizer, known.to_numpy(), encoded["normalized"], encoded["gene_ids"] - 2, "z")
    z_model = GexBertTokenizer.fit(zscores, normalization="none", num_levels=16)
    known = z_model.select_known(frame)
    encoded = z_model.encode_known(known)
    with pytest.raises(InputScaleError, match="z-score each gene"):
        check_input_scale(z_model, known.to_numpy(), encoded["normalized"], encoded["gene_ids"] - 2, "logs")


def test_predict_and_embed_check_the_scale_too(model, tiny_config, embedded_tokenizer, embedded_cohort):
    counts = np.round(2 ** embedded_cohort.expression.iloc[:20] * 50)
    with pytest.raises(InputScaleError):
        embed(model, embedded_tokenizer, counts)
    tiny_config.num_labels = 2
    classifier = GexBertForSequenceClassification(tiny_config).eval()
    with pytest.raises(InputScaleError):
        predict(classifier, embedded_tokenizer, counts)
    assert len(predict(classifier, embedded_tokenizer, counts, scale_check="off")) == 20


def _test_split(folder, limit: int | None = 300) -> pd.DataFrame:
    expression = pd.read_csv(folder / "expression.tsv.gz", sep="\t", index_col=0).T
    split = pd.read_csv(folder / "split.tsv", sep="\t", index_col=0)["split"]
    return expression.loc[split.index[split == "test"].intersection(expression.index)[:limit]]


def test_shipped_checkpoints_know_their_scale_on_real_data(shared_data_dir):
    _, mirna = load_model_and_tokenizer("tcga31-mirna")
    _, mrna = load_model_and_tokenizer("tcga13-mrna")
    whole_test = _test_split(shared_data_dir / "tcga31_mirna_log2rpm", limit=None)
    log2rpm = whole_test.iloc[:300]
    assert _verdict(mirna, log2rpm).status == "ok"
    clinical = pd.read_csv(shared_data_dir / "tcga31_mirna_log2rpm" / "clinical.tsv", sep="\t", index_col=0)
    for cancer_type in ("TGCT", "KICH", "BRCA"):  # one type of a pan-cancer model: the furthest, the narrowest
        one_type = whole_test.loc[whole_test.index.intersection(clinical.index[clinical["cancer_type"] == cancer_type])]
        assert _verdict(mirna, one_type).status == "ok", cancer_type
    assert _verdict(mirna, 2 ** log2rpm - 1).status == "wrong_scale"  # unlogged RPM
    assert _verdict(mirna, np.round((2 ** log2rpm - 1) * 20)).status == "wrong_scale"  # counts
    assert _verdict(mirna, log2rpm + 2.0).status == "shifted"  # another platform's offset: warn, point to adapt
    assert _verdict(mrna, _test_split(shared_data_dir / "tcga13_cbioportal_zscore")).status == "ok"
    assert _verdict(mrna, _test_split(shared_data_dir / "tcga3_xena_log2tpm")).status == "wrong_scale"  # log2 TPM
    assert "log2(RPM + 1)" in mirna.expression_scale and "z-scores" in mrna.expression_scale


def test_the_commands_refuse_the_wrong_scale_in_one_line_and_proceed_when_told(model_dir, embedded_cohort, tmp_path,
                                                                               capsys):
    from gexbert_hf.cli import main

    counts = np.round(2 ** embedded_cohort.expression.iloc[:20] * 50).rename_axis("sample")
    counts.to_csv(tmp_path / "counts.csv")
    arguments = ["impute", "--model", str(model_dir), "--input", str(tmp_path / "counts.csv"), "--output"]
    assert main([*arguments, str(tmp_path / "filled.csv")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "raw counts" in error and "log2" in error
    assert not (tmp_path / "filled.csv").exists()
    assert main([*arguments, str(tmp_path / "filled.csv"), "--scale_check", "warn", "--no_progress"]) == 0
    for command in ("predict", "embed"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--scale_check" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["impute", "--help"])
    assert "tcga31-mirna expects log2(RPM + 1)" in " ".join(capsys.readouterr().out.split())


def test_adaptation_takes_any_per_gene_shift_but_not_another_kind_of_values(embedded_tokenizer, embedded_cohort):
    """adapt refits each gene's levels, which undoes a shift of any size; unlogged values it refuses like the rest."""
    frame = embedded_cohort.expression
    far = frame * 1.3 + 3.0  # far beyond the training range, but still log-scale values
    known = embedded_tokenizer.select_known(far)
    encoded = embedded_tokenizer.encode_known(known)
    args = (known.to_numpy(), encoded["normalized"], encoded["gene_ids"] - 2, "cohort")
    with pytest.raises(InputScaleError):
        check_input_scale(embedded_tokenizer, *args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_input_scale(embedded_tokenizer, *args, for_adaptation=True).status == "shifted"
    counts = np.round(2 ** frame * 50)
    known = embedded_tokenizer.select_known(counts)
    encoded = embedded_tokenizer.encode_known(known)
    with pytest.raises(InputScaleError, match="raw counts"):
        check_input_scale(embedded_tokenizer, known.to_numpy(), encoded["normalized"], encoded["gene_ids"] - 2,
                          "cohort", for_adaptation=True)
