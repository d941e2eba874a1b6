"""`gexbert predict` and `gexbert embed` write tables or `.h5ad` (predictions as obs columns, vectors in obsm)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gexbert_hf.cli import main
from gexbert_hf.inference import embed
from gexbert_hf.loading import load_model_and_tokenizer

anndata = pytest.importorskip("anndata")


@pytest.fixture()
def inputs(expression_csv, tmp_path):
    """The same 9 profiles as a CSV table and as an `.h5ad` (with an obs column of its own that must survive)."""
    frame, table = expression_csv(9, 30, (2, [0, 5]))
    adata = anndata.AnnData(frame.to_numpy(), obs=pd.DataFrame({"site": list("abcabcabc")}, index=frame.index),
                            var=pd.DataFrame(index=frame.columns))
    h5ad = tmp_path / "input.h5ad"
    adata.write_h5ad(h5ad)
    return frame, table, h5ad


@pytest.mark.parametrize("model, columns", [("classifier", ["predicted", "probability_negative",
                                                            "probability_positive"]),
                                            ("survival", ["risk"])])
def test_predict_writes_h5ad_with_the_predictions_in_obs(model, columns, model_dirs, inputs, tmp_path):
    frame, table, h5ad = inputs
    argv = ["predict", "--model", str(model_dirs[model]), "--no_progress"]
    assert main([*argv, "--input", str(table), "--output", str(tmp_path / "p.csv")]) == 0
    expected = pd.read_csv(tmp_path / "p.csv", index_col=0)
    for source in (table, h5ad):
        output = tmp_path / f"from_{source.suffix[1:]}.h5ad"
        assert main([*argv, "--input", str(source), "--output", str(output)]) == 0
        written = anndata.read_h5ad(output)
        assert list(written.obs_names) == list(frame.index)
        for column in columns:
            values = written.obs[f"gexbert_{column}"]
            if column == "predicted":
                assert list(values.astype(str)) == list(expected[column].astype(str))
            else:
                np.testing.assert_allclose(values.to_numpy(float), expected[column].to_numpy(), rtol=1e-6)
        if source == h5ad:
            assert list(written.obs["site"]) == list("abcabcabc")  # the input's own obs kept
            np.testing.assert_array_equal(np.asarray(written.X), anndata.read_h5ad(h5ad).X)


def test_embed_writes_tables_and_h5ad_obsm(model_dirs, inputs, tmp_path, capsys):
    frame, table, h5ad = inputs
    model, tokenizer = load_model_and_tokenizer(model_dirs["pretrained"])
    expected = embed(model, tokenizer, frame)
    argv = ["embed", "--model", str(model_dirs["pretrained"]), "--no_progress"]
    assert main([*argv, "--input", str(table), "--output", str(tmp_path / "e.csv")]) == 0
    assert "embedded 9 samples in 32 dimensions (mean pooling)" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "e.csv", index_col=0)
    assert list(written.columns) == [f"gexbert_{i}" for i in range(32)] and list(written.index) == list(frame.index)
    np.testing.assert_allclose(written.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)
    assert main([*argv, "--input", str(h5ad), "--output", str(tmp_path / "e.parquet")]) == 0
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "e.parquet").to_numpy(), expected.to_numpy(), rtol=1e-5,
                               atol=1e-6)
    assert main([*argv, "--input", str(h5ad), "--output", str(tmp_path / "e.h5ad")]) == 0
    result = anndata.read_h5ad(tmp_path / "e.h5ad")
    assert result.obsm["X_gexbert"].shape == (9, 32) and list(result.obs["site"]) == list("abcabcabc")
    np.testing.assert_allclose(result.obsm["X_gexbert"], expected.to_numpy(), rtol=1e-5, atol=1e-6)
    assert main([*argv, "--input", str(table), "--output", str(tmp_path / "cls.csv"), "--pooling", "cls"]) == 0
    assert not np.allclose(pd.read_csv(tmp_path / "cls.csv", index_col=0).to_numpy(), expected.to_numpy())
    assert main([*argv, "--input", str(table), "--output", str(tmp_path / "e.csv")]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err
