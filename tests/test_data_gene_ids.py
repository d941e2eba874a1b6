"""Orientation and gene ids: tables either way round, transposed input refused by name, Ensembl versions, id maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import ExpressionInputError, GexBertConfig, GexBertForMaskedExpression, GexBertTokenizer, impute
from gexbert_hf.cli import main as gexbert
from gexbert_hf.data.readers import read_expression

BARCODES = [f"TCGA-{site}-{patient:04d}-01" for site, patient in zip(["A1", "B2", "C3", "D4", "E5"], range(5))]
SYMBOLS = ["TP53", "EGFR", "MYC", "KRAS", "BRCA1", "PTEN"]
ENSEMBL = ["ENSG00000141510", "ENSG00000146648", "ENSG00000136997", "ENSG00000133703", "ENSG00000012048",
           "ENSG00000171862"]


@pytest.fixture()
def expression() -> pd.DataFrame:
    """Samples x genes, TCGA barcodes x gene symbols."""
    values = np.random.default_rng(0).gamma(2.0, 20.0, size=(len(BARCODES), len(SYMBOLS))).round(3)
    return pd.DataFrame(values, index=pd.Index(BARCODES, name="sample"), columns=SYMBOLS)


# ----------------------------------------------------------------------------------------------------------------------
# the tokenizer
# ----------------------------------------------------------------------------------------------------------------------
def test_fit_refuses_a_genes_x_samples_table(expression):
    with pytest.raises(ExpressionInputError, match=r"column names look like sample ids \(TCGA sample barcodes such "
                                                   r"as TCGA-A1-0000-01.*is the table transposed\?"):
        GexBertTokenizer.fit(expression.T, num_levels=4)


def test_ensembl_version_suffixes_are_stripped(expression):
    versioned = expression.set_axis([f"{gene}.{i + 3}" for i, gene in enumerate(ENSEMBL)], axis=1)
    tokenizer = GexBertTokenizer.fit(versioned, num_levels=4)
    assert tokenizer.genes == ENSEMBL
    other_release = expression.set_axis([f"{gene}.{i + 9}" for i, gene in enumerate(ENSEMBL)], axis=1)
    for frame in (other_release, expression.set_axis(ENSEMBL, axis=1)):
        np.testing.assert_array_equal(tokenizer(frame, return_tensors="np")["input_ids"],
                                      tokenizer(versioned, return_tensors="np")["input_ids"])
    # a vocabulary saved with versions still matches unversioned input
    old = GexBertTokenizer(list(versioned.columns), tokenizer.normalization, tokenizer.level_edges,
                           tokenizer.level_values, tokenizer.center, tokenizer.scale)
    np.testing.assert_array_equal(old(expression.set_axis(ENSEMBL, axis=1), return_tensors="np")["level_ids"],
                                  tokenizer(versioned, return_tensors="np")["level_ids"])
    twice = versioned.set_axis([*versioned.columns[:-1], f"{ENSEMBL[0]}.99"], axis=1)
    with pytest.raises(ExpressionInputError, match=rf"same vocabulary gene .*{ENSEMBL[0]}"):
        tokenizer(twice)


def test_model_impute_keeps_the_input_names_of_versioned_ids(expression):
    tokenizer = GexBertTokenizer.fit(expression.set_axis(ENSEMBL, axis=1), num_levels=4)
    model = GexBertForMaskedExpression(GexBertConfig.from_tokenizer(tokenizer, hidden_size=16, num_hidden_layers=1,
                                                                    num_attention_heads=2)).eval()
    versioned = expression.set_axis([f"{gene}.7" for gene in ENSEMBL], axis=1)
    versioned.iloc[0, 1] = np.nan
    filled, _ = impute(model, tokenizer, versioned)
    assert list(filled.columns) == list(versioned.columns) and not filled.isna().any().any()


def test_no_known_gene_names_the_ids_the_model_expects(expression):
    tokenizer = GexBertTokenizer.fit(expression, num_levels=4)
    with pytest.raises(ExpressionInputError, match=r"none of its 6 genes is in the tokenizer vocabulary: it holds "
                                                   r"Ensembl gene ids such as ENSG00000141510\.2, .*; the model "
                                                   r"expects gene symbols such as TP53, EGFR, MYC\. Map the ids.*"
                                                   r"--gene_map"):
        tokenizer(expression.set_axis([f"{gene}.2" for gene in ENSEMBL], axis=1))
    with pytest.raises(ExpressionInputError, match=r"The column names look like sample ids: is the table transposed"):
        tokenizer(expression.T)


# ----------------------------------------------------------------------------------------------------------------------
# the readers
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["genes.csv", "genes.parquet", "samples.tsv", "samples.tsv.gz", "samples.csv"])
def test_orientation_is_read_from_the_ids(tmp_path, expression, name):
    """A CSV may be genes x samples and a TSV samples x genes: TCGA barcodes and gene symbols say which."""
    path = tmp_path / name
    table = expression.T.rename_axis("gene") if name.startswith("genes") else expression
    if name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, sep="," if ".csv" in name else "\t")
    pd.testing.assert_frame_equal(read_expression(path), expression, check_names=False)


def test_the_vocabulary_decides_over_the_file_format(tmp_path):
    """Generic sample ids and probe-like gene ids give no pattern; the model's vocabulary does."""
    frame = pd.DataFrame(np.arange(6.0).reshape(2, 3) + 1, index=["s1", "s2"], columns=["g1", "g2", "g3"])
    path = tmp_path / "samples_x_genes.tsv"
    frame.rename_axis("sample").to_csv(path, sep="\t")
    assert list(read_expression(path).columns) == ["s1", "s2"]  # no evidence: a TSV is Xena genes x samples
    pd.testing.assert_frame_equal(read_expression(path, vocabulary=["g2", "g9"]), frame, check_names=False)
    pd.testing.assert_frame_equal(read_expression(path, orientation="samples_x_genes"), frame, check_names=False)


def test_ambiguous_orientation_is_refused(tmp_path):
    path = tmp_path / "correlation.csv"
    pd.DataFrame(np.eye(5) + 0.5, index=BARCODES, columns=BARCODES).to_csv(path)
    with pytest.raises(ExpressionInputError, match=r"correlation\.csv: cannot tell which axis holds the samples.*"
                                                   r"TCGA sample barcodes.*--orientation"):
        read_expression(path)
    assert read_expression(path, orientation="samples_x_genes").shape == (5, 5)


def test_gene_map_file(tmp_path, expression):
    table = tmp_path / "ensembl.csv"
    expression.set_axis([f"{gene}.5" for gene in ENSEMBL], axis=1).to_csv(table)
    mapping = tmp_path / "map.tsv"
    mapping.write_text("ensembl_id\tsymbol\n" + "".join(f"{e}\t{s}\n" for e, s in zip(ENSEMBL, SYMBOLS)))
    pd.testing.assert_frame_equal(read_expression(table, gene_map=mapping), expression, check_names=False)
    pd.testing.assert_frame_equal(read_expression(table, vocabulary=SYMBOLS, gene_map=dict(zip(ENSEMBL, SYMBOLS))),
                                  expression, check_names=False)

    bad = tmp_path / "bad.tsv"
    for text, pattern in (
        ("".join(f"{e}\t{s}\n" for e, s in zip(ENSEMBL, SYMBOLS)), r"bad\.tsv: its first line .* looks like a "
                                                                    r"mapping, not a header"),
        (f"from\tto\n{ENSEMBL[0]}\tTP53\n{ENSEMBL[0]}\tP53\n", r"bad\.tsv: ids mapped to several targets: ENSG0+141510"),
        ("from\tto\nENSG00000000001\tA\n", r"none of its 6 genes .* is in the first column of the gene-id mapping"),
        (f"from\tto\tnote\n{ENSEMBL[0]}\tTP53\tx\n", r"bad\.tsv: a gene-id mapping has two columns"),
        (f"from\tto\n{ENSEMBL[0]}\tTP53\n{ENSEMBL[1]}\tTP53\n", r"duplicated genes: TP53; pass aggregate="),
    ):
        bad.write_text(text)
        with pytest.raises(ExpressionInputError, match=pattern):
            read_expression(table, gene_map=bad)


def test_transposed_anndata_is_refused(tmp_path, expression):
    anndata = pytest.importorskip("anndata")
    path = tmp_path / "transposed.h5ad"
    anndata.AnnData(expression.T.to_numpy(), obs=pd.DataFrame(index=SYMBOLS),
                    var=pd.DataFrame(index=BARCODES)).write_h5ad(path)
    with pytest.raises(ExpressionInputError, match=r"transposed\.h5ad: the AnnData looks transposed"):
        read_expression(path, vocabulary=SYMBOLS)


# ----------------------------------------------------------------------------------------------------------------------
# the commands
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".tsv", ".tsv.gz", ".txt", ".csv", ".parquet"])
def test_impute_reads_its_own_output_back(model_dir, embedded_cohort, tmp_path, suffix):
    source = tmp_path / "input.csv"
    frame = embedded_cohort.expression.iloc[:6, :20].copy()
    frame.iloc[1, 2] = np.nan
    frame.rename_axis("sample").to_csv(source)
    first, second = tmp_path / f"first{suffix}", tmp_path / f"second{suffix}"
    for given, written in ((source, first), (first, second), (first.with_name(f"first.uncertainty{suffix}"),
                                                            tmp_path / f"third{suffix}")):
        # the uncertainty file is read as a table too, but it is not expression: the scale check would refuse it
        off = ["--scale_check", "off"] if "uncertainty" in given.name else []
        assert gexbert(["impute", "--model", str(model_dir), "--input", str(given), "--output", str(written),
                        "--progress", "false", *off]) == 0
    once, twice = read_expression(first), read_expression(second)
    pd.testing.assert_frame_equal(twice, once)  # nothing left to impute: the values come back unchanged
    assert once.shape == (6, embedded_cohort.expression.shape[1]) and list(once.index) == list(frame.index)


def test_impute_orientation_and_gene_ids(model_dir, embedded_cohort, embedded_tokenizer, tmp_path, capsys):
    frame = embedded_cohort.expression.iloc[:5, :20]
    xena = tmp_path / "xena.csv"  # genes x samples, in a format that defaults to samples x genes
    frame.T.rename_axis("sample").to_csv(xena)
    out = tmp_path / "out.csv"
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(xena), "--output", str(out),
                    "--only_input_genes", "--progress", "false"]) == 0
    # read by its gene names, written back the same way round (genes x samples)
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col=0), frame.T, check_names=False)
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(xena), "--output", str(tmp_path / "x.csv"),
                    "--orientation", "samples_x_genes"]) == 2
    err = capsys.readouterr().err
    assert "none of its 5 genes is in the tokenizer vocabulary" in err and "Affymetrix probe ids such as" in err

    renamed = tmp_path / "renamed.csv"
    frame.set_axis([f"ENSG{i:011d}.3" for i in range(20)], axis=1).rename_axis("sample").to_csv(renamed)
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(renamed), "--output", str(out),
                    "--overwrite"]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gexbert impute: error:")]
    assert "Ensembl gene ids" in line and "--gene_map" in line
    assert f"the model expects Affymetrix probe ids such as {', '.join(embedded_tokenizer.genes[:3])}" in line
    mapping = tmp_path / "map.tsv"
    mapping.write_text("ensembl\tprobe\n" + "".join(f"ENSG{i:011d}\t{gene}\n" for i, gene in enumerate(frame.columns)))
    assert gexbert(["impute", "--model", str(model_dir), "--input", str(renamed), "--output", str(out),
                    "--overwrite", "--gene_map", str(mapping), "--only_input_genes", "--progress", "false"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col=0), frame, check_names=False)


def test_predict_reads_a_samples_x_genes_tsv(embedded_tokenizer, embedded_cohort, tmp_path):
    """Its help says samples x genes; a TSV used to be read as genes x samples whatever it held."""
    from gexbert_hf import GexBertForSurvival

    directory = tmp_path / "survival"
    torch.manual_seed(0)
    GexBertForSurvival(GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2)).save_pretrained(directory)
    embedded_tokenizer.save_pretrained(directory)
    frame = embedded_cohort.expression.iloc[:7, :30]
    risks = {}
    for name, table in (("samples.tsv", frame), ("genes.tsv", frame.T)):
        table.rename_axis("sample").to_csv(tmp_path / name, sep="\t")
        output = tmp_path / f"risk-{name}"
        assert gexbert(["predict", "--model", str(directory), "--input", str(tmp_path / name), "--output",
                        str(output)]) == 0
        risks[name] = pd.read_csv(output, sep="\t", index_col=0)
    assert list(risks["samples.tsv"].index) == list(frame.index)
    pd.testing.assert_frame_equal(risks["samples.tsv"], risks["genes.tsv"])
