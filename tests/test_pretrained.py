"""The shipped checkpoints load offline by name, in Python and on the command line, and are what their cards say."""

import functools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexbert_hf import (
    PRETRAINED_MODELS,
    GexBertForMaskedExpression,
    GexBertTokenizer,
    impute,
    pretrained_path,
    resolve_model,
)
from gexbert_hf.cli import main as gexbert
from gexbert_hf.loading import UnknownPretrainedModelError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = {"tcga31-mirna": "tcga31_mirna_log2rpm", "tcga13-mrna": "tcga13_cbioportal_zscore"}


def _rows(name: str, tokenizer: GexBertTokenizer, count: int = 6) -> pd.DataFrame:
    """A few real test-split profiles when the shared data is here; else profiles at each gene's level values."""
    if (DATA / FOLDERS[name]).is_dir():
        return _test_profiles(name).iloc[:count][tokenizer.genes].copy()
    levels = tokenizer.denormalize(np.nanmedian(tokenizer.level_values, axis=1))
    return pd.DataFrame(np.tile(levels, (count, 1)), columns=tokenizer.genes)


@functools.cache
def _test_profiles(name: str) -> pd.DataFrame:
    from gexbert_hf.data.readers import load_split, read_expression

    folder = DATA / FOLDERS[name]
    split = load_split(folder)
    return read_expression(folder / "expression.tsv.gz").loc[split.index[split == "test"][:8]]


@pytest.mark.parametrize("name", sorted(PRETRAINED_MODELS))
def test_shipped_checkpoint_loads_by_name_and_imputes(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = pretrained_path(name)
    model = GexBertForMaskedExpression.from_pretrained(folder)
    tokenizer = GexBertTokenizer.from_pretrained(folder)
    assert model.config.tokenizer_fingerprint == tokenizer.fingerprint
    truth = _rows(name, tokenizer)
    hidden = truth.copy()
    hidden.iloc[:, ::2] = np.nan  # half of every profile missing
    filled, uncertainty = impute(model, tokenizer, hidden)
    assert filled.shape == truth.shape and np.isfinite(filled.to_numpy()).all()
    spread = uncertainty.iloc[:, ::2].to_numpy()  # 0 only where a gene's predicted level holds one training value
    assert (spread >= 0).all() and (spread > 0).mean() > 0.9
    kept = truth.iloc[:, 1::2].to_numpy()
    measured = ~np.isnan(kept)  # measured values come back as given
    np.testing.assert_array_equal(filled.iloc[:, 1::2].to_numpy()[measured], kept[measured])
    card = (folder / "README.md").read_text()
    assert "## Training data and provenance" in card and "Test-split imputation" in card and "KNN" in card


def test_every_shipped_checkpoint_fits_the_size_budget():
    sizes = [path.stat().st_size for name in PRETRAINED_MODELS for path in pretrained_path(name).iterdir()]
    assert sum(sizes) < 25 * 2**20


def test_command_line_takes_the_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = GexBertTokenizer.from_pretrained(pretrained_path("tcga31-mirna"))
    rows = _rows("tcga31-mirna", tokenizer, count=3)
    rows.iloc[:, :100] = np.nan
    source = tmp_path / "panel.csv"
    rows.rename_axis("sample").to_csv(source)
    assert gexbert(["impute", "--model", "tcga31-mirna", "--input", str(source), "--output",
                    str(tmp_path / "filled.csv"), "--progress", "false"]) == 0
    filled = pd.read_csv(tmp_path / "filled.csv", index_col=0)
    assert filled.shape == rows.shape and not filled.isna().any().any()


def test_a_users_own_folder_of_that_name_wins_and_unknown_names_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tcga31-mirna").mkdir()
    assert resolve_model("tcga31-mirna") == "tcga31-mirna"
    assert resolve_model("elsewhere/model") == "elsewhere/model"
    with pytest.raises(UnknownPretrainedModelError, match="tcga13-mrna, tcga31-mirna"):
        pretrained_path("tcga99-rna")
    assert os.path.isdir(pretrained_path("tcga13-mrna"))


def test_shipped_checkpoint_pushes_like_any_other(monkeypatch):
    import huggingface_hub

    uploaded = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kwargs: type("Url", (), {"repo_id": repo_id})())

    def upload_folder(self, repo_id, folder_path, **kwargs):
        uploaded["files"] = sorted(path.name for path in Path(folder_path).iterdir())
        uploaded["config"] = json.loads((Path(folder_path) / "config.json").read_text())
        return "commit-url"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    folder = pretrained_path("tcga13-mrna")
    model = GexBertForMaskedExpression.from_pretrained(folder)
    assert model.push_to_hub("someone/gexbert-tcga13", tokenizer=GexBertTokenizer.from_pretrained(folder)) \
        == "commit-url"
    assert {"model.safetensors", "config.json", "README.md", "gexbert_tokenizer.safetensors"} <= set(uploaded["files"])
    assert uploaded["config"]["tokenizer_fingerprint"] == model.config.tokenizer_fingerprint


def test_shipped_checkpoints_are_recognised_and_kept_off_the_folders_they_trained_on(model_dir, tmp_path):
    from gexbert_hf.loading import MUST_NOT_JUDGE, TrainingOverlapError, refuse_training_overlap, shipped_checkpoint

    assert {name: shipped_checkpoint(name) for name in PRETRAINED_MODELS} == {name: name for name in PRETRAINED_MODELS}
    assert shipped_checkpoint(pretrained_path("tcga13-mrna")) == "tcga13-mrna"
    assert shipped_checkpoint(model_dir) is None and shipped_checkpoint(tmp_path / "nothing") is None
    assert MUST_NOT_JUDGE["tcga13-mrna"] == ("tcga3_xena_log2tpm",)
    (tmp_path / "tcga3_xena_log2tpm").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "tcga3_xena_log2tpm")  # another name for the same folder
    for data in ("tcga3_xena_log2tpm", "alias", "tcga3_xena_log2tpm.h5ad"):
        with pytest.raises(TrainingOverlapError, match="must not be judged on tcga3_xena_log2tpm"):
            refuse_training_overlap("tcga13-mrna", tmp_path / data)
    refuse_training_overlap("tcga13-mrna", tmp_path / "tcga13_cbioportal_zscore")  # its own test split is fine
    refuse_training_overlap(model_dir, tmp_path / "tcga3_xena_log2tpm")  # an unrelated model is not refused
