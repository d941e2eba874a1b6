"""AnnData everywhere a DataFrame goes: tokenizer, model.impute, build-dataset (obs as clinical), impute to .h5ad."""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import pandas as pd
import pytest

from gexbert_hf import ExpressionInputError, GexBertForMaskedExpression, GexBertTokenizer, impute
from gexbert_hf.cli import main as gexbert
from gexbert_hf.data.build import build_dataset
from gexbert_hf.data.readers import read_clinical, read_expression

anndata = pytest.importorskip("anndata")
sparse = pytest.importorskip("scipy.sparse")


def cohort_anndata(cohort, samples: int = 40):
    """The embedded cohort as a scverse user holds it: obs = clinical, var_names = ids, symbols in a var column,
    sparse X = a scaled copy (not what the model was fitted on), the fitted values in layer `log`."""
    expression = cohort.expression.iloc[:samples]
    genes = list(expression.columns)
    adata = anndata.AnnData(
        sparse.csr_matrix(expression.to_numpy() * 10),
        obs=cohort.clinical.iloc[:samples].assign(er=lambda t: pd.Categorical(t["er"])),
        var=pd.DataFrame({"gene_symbols": genes}, index=[f"feature_{i}" for i in range(len(genes))]),
    )
    adata.layers["log"] = expression.to_numpy(copy=True)  # never a view of the session-wide cohort
    return adata


@pytest.fixture()
def adata(embedded_cohort):
    return cohort_anndata(embedded_cohort)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------------
# tokenizer and model
# ----------------------------------------------------------------------------------------------------------------------
def test_tokenizer_reads_an_anndata_layer_and_gene_column(adata, embedded_cohort, embedded_tokenizer):
    frame = embedded_cohort.expression.iloc[:40]
    expected = embedded_tokenizer(frame, return_tensors="np")
    got = embedded_tokenizer(adata, layer="log", gene_column="gene_symbols", return_tensors="np")
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    # X (sparse, densified chunk by chunk) under var_names: the same numbers, other gene names
    from gexbert_hf.expression_input_gexbert import as_expression_frame

    x = as_expression_frame(adata)
    assert list(x.columns) == list(adata.var_names) and list(x.index) == list(adata.obs_names)
    np.testing.assert_allclose(x.to_numpy(), frame.to_numpy() * 10)


def test_fit_on_anndata_equals_fit_on_its_frame(adata, embedded_cohort):
    from_frame = GexBertTokenizer.fit(embedded_cohort.expression.iloc[:40], normalization="none", num_levels=8)
    from_anndata = GexBertTokenizer.fit(adata, layer="log", gene_column="gene_symbols", normalization="none",
                                        num_levels=8)
    assert from_anndata.genes == from_frame.genes
    np.testing.assert_array_equal(from_anndata.level_edges, from_frame.level_edges)


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"layer": "counts"}, r"no layer 'counts'; its layers are log"),
        ({"gene_column": "symbol"}, r"no var column 'symbol'; var columns are gene_symbols"),
    ],
)
def test_anndata_options_name_what_is_missing(adata, embedded_tokenizer, options, pattern):
    with pytest.raises(ExpressionInputError, match=pattern):
        embedded_tokenizer(adata, **options)


def test_model_impute_takes_an_anndata(adata, embedded_cohort, embedded_tokenizer, tiny_config):
    model = GexBertForMaskedExpression(tiny_config).eval()
    frame = embedded_cohort.expression.iloc[:40].copy()
    frame.iloc[2, 5] = np.nan
    adata.layers["log"][2, 5] = np.nan
    filled, uncertainty = impute(model, embedded_tokenizer, adata, layer="log", gene_column="gene_symbols")
    expected, expected_uncertainty = impute(model, embedded_tokenizer, frame)
    assert list(filled.index) == list(adata.obs_names) and filled.index.name == "sample"
    np.testing.assert_allclose(filled.to_numpy(), expected.to_numpy())
    np.testing.assert_allclose(uncertainty.to_numpy(), expected_uncertainty.to_numpy())
    assert not filled.isna().any().any() and uncertainty.iloc[2, 5] > 0


# ----------------------------------------------------------------------------------------------------------------------
# build-dataset: obs columns as labels, survival time and event
# ----------------------------------------------------------------------------------------------------------------------
def test_build_dataset_takes_labels_time_and_event_from_obs(adata, embedded_cohort, tmp_path):
    path = tmp_path / "cohort.h5ad"
    adata.write_h5ad(path)
    output = tmp_path / "built"
    assert gexbert(["build-dataset", "--expression", str(path), "--output", str(output), "--layer", "log",
                    "--gene_column", "gene_symbols", "--label_column", "er", "--time_column", "time",
                    "--event_column", "event", "--normalization", "none"]) == 0
    built = datasets.concatenate_datasets(list(datasets.load_from_disk(str(output)).values()))
    tokenizer = GexBertTokenizer.from_pretrained(output)
    assert tokenizer.genes == list(embedded_cohort.expression.columns)
    clinical = embedded_cohort.clinical.loc[built["sample"]]
    names = built.features["labels"].names
    assert [names[label] for label in built["labels"]] == clinical["er"].tolist()
    np.testing.assert_allclose(built["survival_time"], clinical["time"].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(built["event"], clinical["event"].to_numpy())


def test_build_dataset_from_an_anndata_object_and_h5ad_as_clinical(adata, embedded_cohort, tmp_path):
    summary = build_dataset(adata, output=tmp_path / "from-object", layer="log", gene_column="gene_symbols",
                            label_column="er", verbose=False)
    assert summary["samples"] == 40 and summary["classes"] == embedded_cohort.clinical["er"].iloc[:40].value_counts(
    ).sort_index().to_dict()
    path = tmp_path / "cohort.h5ad"
    adata.write_h5ad(path)
    obs = read_clinical(path)  # was a UnicodeDecodeError
    assert list(obs.index) == list(adata.obs_names) and obs["er"].tolist() == adata.obs["er"].astype(str).tolist()
    frame = embedded_cohort.expression.iloc[:40]
    table = tmp_path / "expression.csv"
    frame.rename_axis("sample").to_csv(table)
    summary = build_dataset(table, path, output=tmp_path / "from-files", label_column="er", time_column="time",
                            event_column="event", verbose=False)
    assert summary["events"] == int(embedded_cohort.clinical["event"].iloc[:40].sum())


def test_build_dataset_without_clinical_needs_an_anndata(embedded_cohort, tmp_path):
    from gexbert_hf import ClinicalInputError

    with pytest.raises(ClinicalInputError, match=r"needs a clinical table .*AnnData"):
        build_dataset(embedded_cohort.expression, output=tmp_path / "out", label_column="er", verbose=False)


# ----------------------------------------------------------------------------------------------------------------------
# impute: .h5ad in, .h5ad out
# ----------------------------------------------------------------------------------------------------------------------
def test_impute_writes_layers_into_a_copy_of_the_input_anndata(adata, embedded_cohort, embedded_tokenizer, model_dir,
                                                                 tmp_path):
    from gexbert_hf.data.anndata import IMPUTED_LAYER, RESTORED_COLUMN, UNCERTAINTY_LAYER

    adata = adata[:12, :30].copy()
    adata.layers["log"][5, [1, 7]] = np.nan
    adata.obsm["X_pca"] = np.ones((12, 2))
    adata.uns["study"] = "GSE7390"
    source = tmp_path / "cohort.h5ad"
    adata.write_h5ad(source)
    before = _digest(source)
    output = tmp_path / "imputed.h5ad"
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(source), "--output", str(output),
                    "--layer", "log", "--gene_column", "gene_symbols", "--progress", "false"]) == 0
    assert _digest(source) == before and not (tmp_path / "imputed.uncertainty.h5ad").exists()
    result = anndata.read_h5ad(output)
    restored = [gene for gene in embedded_tokenizer.genes if gene not in set(adata.var["gene_symbols"])]
    assert list(result.var_names) == list(adata.var_names) + restored  # input order kept, restored genes appended
    assert list(result.obs_names) == list(adata.obs_names)
    assert result.obs["er"].tolist() == adata.obs["er"].tolist() and result.uns["study"] == "GSE7390"
    assert result.obsm["X_pca"].shape == (12, 2)
    assert result.var[RESTORED_COLUMN].tolist() == [False] * 30 + [True] * len(restored)
    np.testing.assert_allclose(result.X[:, :30].toarray(), adata.X.toarray())  # X as given
    imputed, uncertainty = result.layers[IMPUTED_LAYER], result.layers[UNCERTAINTY_LAYER]
    assert not np.isnan(imputed).any()
    observed = ~np.isnan(adata.layers["log"])
    np.testing.assert_allclose(imputed[:, :30][observed], adata.layers["log"][observed])
    assert (uncertainty[:, :30][observed] == 0).all() and (uncertainty[:, :30][~observed] > 0).all()
    assert (uncertainty[:, 30:] > 0).all()

    table = tmp_path / "table.csv"  # a table input gives an AnnData built from it
    embedded_cohort.expression.iloc[:4, :10].rename_axis("sample").to_csv(table)
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(table), "--output",
                    str(tmp_path / "from-table.h5ad"), "--progress", "false"]) == 0
    built = anndata.read_h5ad(tmp_path / "from-table.h5ad")
    assert built.shape == (4, len(embedded_tokenizer.genes)) and np.isnan(built.X[:, 10:]).all()
    back = read_expression(tmp_path / "from-table.h5ad", layer=IMPUTED_LAYER)  # the output reads back as input
    assert back.shape == (4, len(embedded_tokenizer.genes)) and not back.isna().any().any()
