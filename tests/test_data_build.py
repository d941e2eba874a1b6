"""build_dataset / `gexbert build-dataset`: real folders, the embedded cohort, bad input writes nothing, scale."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pandas as pd
import pytest

from gexbert_hf.cli import main as gexbert
from gexbert_hf.configuration_gexbert import LEVEL_OFFSET
from gexbert_hf.data.build import SUMMARY_NAME, build_dataset
from gexbert_hf.data.cohorts import make_synthetic_cohort
from gexbert_hf.data.encoding import fit_tokenizer
from gexbert_hf.data.readers import load_split
from gexbert_hf.errors import ClinicalInputError, ExpressionInputError, OutputExistsError
from gexbert_hf.study.build_scale import measure_build_scale
from gexbert_hf.tokenization_gexbert import GexBertTokenizer

SURVIVAL = {"label_column": "cancer_type", "time_column": "os_months", "event_column": "os_event"}


def build_shared(folder, output, **options) -> dict:
    return build_dataset(folder / "expression.tsv.gz", folder / "clinical.tsv", output=output,
                         split=folder / "split.tsv", verbose=False, **options)


@pytest.fixture(scope="module")
def tcga31_build(shared_data_dir, tmp_path_factory):
    """The heaviest build (8,320 samples x 680 miRNAs), made once for the module."""
    output = tmp_path_factory.mktemp("tcga31") / "dataset"
    summary = build_shared(shared_data_dir / "tcga31_mirna_log2rpm", output, missing_clinical="keep", **SURVIVAL)
    return output, summary


def test_tcga31_counts_equal_split_file(shared_data_dir, tcga31_build):
    output, summary = tcga31_build
    split = load_split(shared_data_dir / "tcga31_mirna_log2rpm")
    built = datasets.load_from_disk(str(output))
    assert {name: built[name].num_rows for name in built} == split.value_counts().to_dict()
    assert set(built["test"]["sample"]) == set(split.index[split == "test"])
    assert built["train"].features["labels"].num_classes == 31 == len(summary["classes"])
    assert summary["genes"] == 680 and summary["normalization"] == "none"  # log2 values: used as given
    assert summary["missing_fraction"] == 0.0
    survival = np.concatenate([built[name]["survival_time"] for name in built])
    assert np.isnan(survival).sum() == 48  # the documented gaps, kept as asked
    assert json.loads((output / SUMMARY_NAME).read_text())["samples"] == 8320


def test_tcga3_build_and_train_only_tokenizer(shared_data_dir, tmp_path):
    folder = shared_data_dir / "tcga3_xena_log2tpm"
    summary = build_shared(folder, tmp_path / "out", **SURVIVAL)
    built = datasets.load_from_disk(str(tmp_path / "out"))
    split = load_split(folder)
    assert {name: built[name].num_rows for name in built} == {"train": 778, "test": 195}
    assert summary["splits"] == split.value_counts().to_dict()
    assert summary["classes"] == {"BLCA": 359, "COADREAD": 296, "STAD": 318} and summary["events"] == 334

    tokenizer = GexBertTokenizer.from_pretrained(tmp_path / "out")
    expression = pd.read_csv(folder / "expression.tsv.gz", sep="\t", index_col=0).T
    train = expression.loc[split.index[split == "train"]]
    reference = GexBertTokenizer.fit(train, normalization="none")  # fitted on train only
    np.testing.assert_allclose(tokenizer.level_edges, reference.level_edges)
    np.testing.assert_allclose(tokenizer.center, reference.center)

    row = built["test"][0]
    encoded = reference.encode(expression.loc[[row["sample"]]])
    np.testing.assert_array_equal(row["input_ids"], encoded["gene_ids"])
    np.testing.assert_array_equal(row["level_ids"], encoded["level_ids"][0])
    np.testing.assert_allclose(row["values"], encoded["values"][0], rtol=1e-6)


def test_embedded_cohort_build(embedded_cohort, tmp_path, capsys):
    summary = build_dataset(embedded_cohort, output=tmp_path / "gse7390", seed=1)
    assert "samples: 198 (train 158, test 40" in capsys.readouterr().out
    built = datasets.load_from_disk(str(tmp_path / "gse7390"))
    assert built["train"].num_rows + built["test"].num_rows == 198 and summary["genes"] == 76
    assert built["train"].features["labels"].names == sorted(embedded_cohort.clinical["er"].unique())
    assert summary["events"] == int(embedded_cohort.clinical["event"].sum())
    labels = np.asarray(built["test"]["labels"])  # stratified: the test share of each class is about 20 %
    counts = embedded_cohort.clinical["er"].value_counts().sort_index().to_numpy()
    np.testing.assert_allclose(np.bincount(labels, minlength=len(counts)), 0.2 * counts, atol=1)


def test_missing_values_stored_as_absent_and_log1p_chosen(tmp_path):
    cohort = make_synthetic_cohort(n_samples=60, n_genes=40, missing_fraction=0.1, seed=2)
    summary = build_dataset(cohort, output=tmp_path / "out", verbose=False)
    assert summary["normalization"] == "log1p" and abs(summary["missing_fraction"] - 0.1) < 0.03
    built = datasets.load_from_disk(str(tmp_path / "out"))
    tokenizer = GexBertTokenizer.from_pretrained(tmp_path / "out")
    for row in built["train"].select(range(5)):
        measured = cohort.expression.loc[row["sample"]].dropna().index
        assert tokenizer.convert_ids_to_genes(row["input_ids"]) == list(measured)
        assert min(row["level_ids"]) >= LEVEL_OFFSET


def test_chunked_fit_equals_plain_fit():
    cohort = make_synthetic_cohort(n_samples=80, n_genes=50, missing_fraction=0.05, seed=3)
    rows = np.arange(0, 80, 2)
    chunked = fit_tokenizer(cohort.expression, rows, normalization="log1p", num_levels=8, gene_chunk=7)
    assert np.isnan(cohort.expression.iloc[rows, 49:].to_numpy()).any()  # a sample with nothing in the last chunk
    plain = GexBertTokenizer.fit(cohort.expression.iloc[rows], normalization="log1p", num_levels=8)
    assert chunked.genes == plain.genes
    for name in ("level_edges", "level_values", "center", "scale"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(plain, name))


@pytest.fixture
def files(tmp_path, synthetic_cohort):
    """The synthetic cohort written as a user would bring it: Xena TSV, clinical TSV."""
    expression = tmp_path / "expression.tsv"
    synthetic_cohort.expression.T.rename_axis("sample").to_csv(expression, sep="\t")
    clinical = tmp_path / "clinical.tsv"
    synthetic_cohort.clinical.to_csv(clinical, sep="\t")
    return expression, clinical


def test_cli_build_and_overwrite(files, tmp_path, capsys):
    expression, clinical = files
    output = tmp_path / "built"
    argv = ["build-dataset", "--expression", str(expression), "--clinical", str(clinical), "--output", str(output),
            "--label_column", "cancer_type", "--time_column", "os_months", "--event_column", "os_event"]
    assert gexbert(argv) == 0
    first = datasets.load_from_disk(str(output))
    assert first["train"].num_rows + first["test"].num_rows == 120
    assert gexbert(argv) == 2
    error = capsys.readouterr().err  # the hint is in the syntax the user typed: a flag, not Python
    assert "already exists; pass --overwrite to replace it" in error and "overwrite=True" not in error
    assert gexbert([*argv, "--overwrite", "--seed", "5"]) == 0
    second = datasets.load_from_disk(str(output))
    assert set(second["test"]["sample"]) != set(first["test"]["sample"])  # replaced, with the new seed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["built", "clinical.tsv", "expression.tsv"]


def test_existing_output_is_kept(files, tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="mine: already exists"):
        build_dataset(*files, output=output, label_column="cancer_type")
    assert (output / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "change, error, pattern",
    [
        ({"label_column": "subtype"}, ClinicalInputError, r"clinical\.tsv: no label column 'subtype'"),
        ({"time_column": "os_months", "event_column": "dead"}, ClinicalInputError, r"no event column 'dead'"),
        ({"split": "unknown-samples"}, ClinicalInputError, r"split\.tsv: 1 sample\(s\) not in the joined cohort: X-1"),
        ({"expression": "missing"}, ExpressionInputError, r"nope\.tsv: no such file"),
        ({"clinical": "disjoint"}, ClinicalInputError, r"nothing left after joining"),
        ({"clinical": "negative"}, ClinicalInputError, r"negative survival time .* SYN-000000"),
        ({"expression": "text-cell"}, ExpressionInputError, r"expression\.tsv: line 2, column 2 .*'n/a!'"),
    ],
    ids=["label", "event", "split", "file", "join", "negative-time", "non-numeric"],
)
def test_bad_input_writes_nothing(files, tmp_path, synthetic_cohort, change, error, pattern):
    expression, clinical = files
    options = {"label_column": "cancer_type"}
    if change.get("split") == "unknown-samples":
        split = tmp_path / "split.tsv"
        split.write_text("sample\tsplit\nSYN-000000\ttrain\nX-1\ttest\n")
        options["split"] = split
    elif change.get("expression") == "missing":
        expression = tmp_path / "nope.tsv"
    elif change.get("expression") == "text-cell":
        lines = expression.read_text().splitlines()
        cells = lines[1].split("\t")
        lines[1] = "\t".join([cells[0], "n/a!", *cells[2:]])
        expression.write_text("\n".join(lines) + "\n")
    elif change.get("clinical") == "disjoint":
        synthetic_cohort.clinical.rename(index=lambda s: f"other-{s}").to_csv(clinical, sep="\t")
    elif change.get("clinical") == "negative":
        table = synthetic_cohort.clinical.copy()
        table.iloc[0, table.columns.get_loc("os_months")] = -1.0
        table.to_csv(clinical, sep="\t")
        options.update(time_column="os_months", event_column="os_event")
    else:
        options.update(change)
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(error, match=pattern):
        build_dataset(expression, clinical, output=tmp_path / "out", verbose=False, **options)
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no output, no leftover temp folder


def test_crash_leaves_nothing_half_written(files, tmp_path, monkeypatch):
    def fail(self, directory):
        raise RuntimeError("disk full")

    monkeypatch.setattr(GexBertTokenizer, "save_pretrained", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(*files, output=tmp_path / "out", label_column="cancer_type", verbose=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clinical.tsv", "expression.tsv"]


def test_scaled_down_scale_probe(tmp_path):
    """The reports/data_scale measurement at 1/30 of the cells: peak memory stays a small multiple of the matrix."""
    result = measure_build_scale(n_samples=1500, n_genes=5000, workdir=tmp_path, timeout=120)
    assert sum(result["splits"].values()) == 1500 and abs(result["splits"]["test"] - 300) <= 5
    allowance = 300 * 2**20  # library work buffers that do not grow with the matrix
    # Anonymous memory is what the process itself holds; total RSS also counts the Arrow files mapped back while
    # saving, page cache the kernel can drop at will, which made this check flaky on a fresh machine.
    assert result["peak_anon_bytes"] - result["baseline_anon_bytes"] < 3 * result["matrix_bytes"] + allowance
    assert result["peak_rss_bytes"] - result["baseline_rss_bytes"] < 3 * result["matrix_bytes"] + 2 * allowance
    assert result["dataset_disk_bytes"] > 1500 * 5000 * 9  # int32 id + int8 level + float32 value per gene
