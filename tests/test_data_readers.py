"""Readers: every layout parses to the same samples x genes frame; every bad input names file and row/column/sample."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pandas as pd
import pytest

from gexbert_hf.data.readers import (
    join_cohort,
    load_cohort,
    load_split,
    read_clinical,
    read_expression,
    read_split,
)
from gexbert_hf.errors import ClinicalInputError, ExpressionInputError

GENES = ["TP53", "EGFR", "MYC", "hsa-mir-21"]
SAMPLES = ["S1", "S2", "S3"]


@pytest.fixture
def matrix() -> pd.DataFrame:
    values = np.arange(12, dtype=np.float64).reshape(3, 4) + 0.5
    values[1, 2] = np.nan
    return pd.DataFrame(values, index=pd.Index(SAMPLES, name="sample"), columns=GENES)


def write_xena(path, matrix: pd.DataFrame) -> None:
    text = matrix.T.rename_axis("sample").to_csv(sep="\t")
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", ["expression.tsv", "expression.tsv.gz"])
def test_xena_plain_and_gzip(tmp_path, matrix, name):
    path = tmp_path / name
    write_xena(path, matrix)
    frame = read_expression(path)
    pd.testing.assert_frame_equal(frame, matrix, check_names=False)


@pytest.mark.parametrize("name", ["table.csv", "table.tsv", "table.parquet"])
def test_samples_x_genes_tables(tmp_path, matrix, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        matrix.to_parquet(path)
        frame = read_expression(path)
    elif name.endswith(".csv"):
        matrix.to_csv(path)
        frame = read_expression(path)
    else:  # a TSV is Xena by default; the orientation is explicit, or guessed from the clinical sample ids
        matrix.to_csv(path, sep="\t")
        frame = read_expression(path, orientation="samples_x_genes")
        pd.testing.assert_frame_equal(read_expression(path, sample_ids=SAMPLES), frame)
    pd.testing.assert_frame_equal(frame, matrix, check_names=False)


def test_h5ad(tmp_path, matrix):
    anndata = pytest.importorskip("anndata")
    path = tmp_path / "cohort.h5ad"
    anndata.AnnData(matrix.to_numpy(), obs=pd.DataFrame(index=SAMPLES), var=pd.DataFrame(index=GENES)).write_h5ad(path)
    pd.testing.assert_frame_equal(read_expression(path), matrix, check_names=False)


def test_duplicated_genes_aggregate(tmp_path):
    path = tmp_path / "dup.tsv"
    path.write_text("sample\tS1\tS2\nA\t1\t2\nA\t3\t4\nB\t5\t6\n")
    with pytest.raises(ExpressionInputError, match=r"dup\.tsv: duplicated genes: A \(lines 2, 3\)"):
        read_expression(path)
    frame = read_expression(path, aggregate="mean")
    assert frame.loc["S1", "A"] == 2.0 and frame.loc["S2", "A"] == 3.0 and list(frame.columns) == ["A", "B"]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("sample\tS1\tS2\nA\t1\tx7\nB\t5\t6\n", r"bad\.tsv: line 2, column 3 \(sample 'S2', gene 'A'\): non-numeric value 'x7'"),
        ("sample\tS1\tS1\nA\t1\t2\n", r"bad\.tsv: duplicated sample ids in the header: S1 \(columns 2, 3\)"),
        ("S1\tS2\n1\t2\n3\t4\n", r"bad\.tsv: no gene column: first column 'S1' holds numbers"),
        ("sample\nA\nB\n", r"bad\.tsv: header has 1 column; expected a gene column"),
        ("sample\tS1\tS2\nA\t1\tinf\n", r"bad\.tsv.*infinite value for gene 'A' in sample 'S2'"),
        ("sample\tS1\tS2\nA\t1\t\nB\t2\t\n", r"bad\.tsv.*no measured gene in sample\(s\) S2"),
        ("", r"bad\.tsv: empty file"),
    ],
    ids=["non-numeric", "duplicated-sample", "no-gene-column", "one-column", "inf", "empty-sample", "empty-file"],
)
def test_bad_xena_files_name_file_and_place(tmp_path, text, pattern):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ExpressionInputError, match=pattern):
        read_expression(path)


def test_bad_table_names_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("sample,A,B\nS1,1,2\nS1,3,4\n")
    with pytest.raises(ExpressionInputError, match=r"bad\.csv: duplicated samples: S1 \(lines 2, 3\)"):
        read_expression(path)


def test_missing_file(tmp_path):
    with pytest.raises(ExpressionInputError, match=r"nope\.tsv\.gz: no such file"):
        read_expression(tmp_path / "nope.tsv.gz")
    with pytest.raises(ClinicalInputError, match=r"nope\.tsv: no such file"):
        read_clinical(tmp_path / "nope.tsv")


def clinical_frame(**overrides) -> pd.DataFrame:
    table = pd.DataFrame({"type": ["a", "b", "a"], "time": [1.0, 2.0, 3.0], "event": [1, 0, 1]},
                         index=pd.Index(SAMPLES, name="sample"))
    for column, values in overrides.items():
        table[column] = values
    return table


def test_clinical_reader(tmp_path):
    path = tmp_path / "clinical.tsv"
    clinical_frame().to_csv(path, sep="\t")
    table = read_clinical(path)
    assert list(table.index) == SAMPLES and list(table.columns) == ["type", "time", "event"]
    path.write_text("sample\ttype\nS1\ta\nS2\tb\nS1\tc\n")
    with pytest.raises(ClinicalInputError, match=r"clinical\.tsv: duplicated sample ids: S1 \(lines 2, 4\)"):
        read_clinical(path)


@pytest.mark.parametrize(
    "overrides, columns, pattern",
    [
        ({}, {"label_column": "subtype"}, r"clin: no label column 'subtype'; columns are type, time, event"),
        ({}, {"time_column": "os", "event_column": "event"}, r"clin: no time column 'os'"),
        ({}, {"time_column": "time", "event_column": "dead"}, r"clin: no event column 'dead'"),
        ({"time": [1.0, -2.0, 3.0]}, {"time_column": "time", "event_column": "event"},
         r"clin: negative survival time in column 'time' for sample\(s\) S2"),
        ({"time": [1.0, np.nan, 3.0]}, {"time_column": "time", "event_column": "event"},
         r"clin: missing value in column\(s\) time for 1 sample\(s\): S2"),
        ({"time": ["1", "soon", "3"]}, {"time_column": "time", "event_column": "event"},
         r"clin: column 'time', sample 'S2': 'soon' is not a number"),
        ({"event": [1, 2, 0]}, {"time_column": "time", "event_column": "event"},
         r"clin: event column 'event' must hold 0/1, sample 'S2' has 2"),
        ({"type": ["a", None, "b"]}, {"label_column": "type"}, r"clin: missing value in column\(s\) type .*S2"),
    ],
    ids=["label", "time", "event", "negative-time", "missing-time", "text-time", "event-not-binary", "missing-label"],
)
def test_bad_clinical_columns(matrix, overrides, columns, pattern):
    with pytest.raises(ClinicalInputError, match=pattern):
        join_cohort(matrix, clinical_frame(**overrides), clinical_source="clin", **columns)


def test_missing_clinical_drop_and_keep(matrix):
    clinical = clinical_frame(time=[1.0, np.nan, 3.0])
    with pytest.warns(UserWarning, match="1 samples with a missing time are left out: S2"):
        dropped = join_cohort(matrix, clinical, time_column="time", event_column="event", missing_clinical="drop")
    assert list(dropped.expression.index) == ["S1", "S3"] and list(dropped.clinical.index) == ["S1", "S3"]
    kept = join_cohort(matrix, clinical, time_column="time", event_column="event", missing_clinical="keep")
    assert len(kept.expression) == 3 and np.isnan(kept.clinical.loc["S2", "time"])


def test_join_reports_unmatched_samples_with_counts(matrix):
    clinical = pd.DataFrame({"type": ["a", "b", "c"]}, index=pd.Index(["S2", "S3", "S9"], name="sample"))
    with pytest.warns(UserWarning) as caught:
        cohort = join_cohort(matrix, clinical, label_column="type", expression_source="expr", clinical_source="clin")
    messages = [str(warning.message) for warning in caught]
    assert "1 samples of expr are not in clin and are left out: S1" in messages
    assert "1 samples of clin are not in the expression and are left out: S9" in messages
    assert list(cohort.expression.index) == ["S2", "S3"]
    assert cohort.clinical["type"].tolist() == ["a", "b"]


def test_nothing_left_after_join(matrix):
    clinical = pd.DataFrame({"type": ["a"]}, index=pd.Index(["TCGA-01"], name="sample"))
    with pytest.raises(ClinicalInputError, match=r"nothing left after joining expr .* with clin .*TCGA-01"):
        join_cohort(matrix, clinical, label_column="type", expression_source="expr", clinical_source="clin")


def test_split_table(tmp_path):
    path = tmp_path / "split.tsv"
    path.write_text("sample\tsplit\nS1\ttrain\nS2\tTest\n")
    assert read_split(path).to_dict() == {"S1": "train", "S2": "test"}
    path.write_text("sample\tsplit\nS1\ttrain\nS2\tholdout\n")
    with pytest.raises(ClinicalInputError, match=r"split\.tsv: line 3, sample 'S2': split 'holdout'"):
        read_split(path)
    path.write_text("sample\tfold\nS1\t1\n")
    with pytest.raises(ClinicalInputError, match=r"split\.tsv: no column 'split'"):
        read_split(path)


def test_shared_folders_load_fast(shared_data_dir):
    cohorts = {}
    for name, shape in {"tcga31_mirna_log2rpm": (8320, 680), "tcga13_cbioportal_zscore": (5240, 1526)}.items():
        started = time.perf_counter()
        cohort = cohorts[name] = load_cohort(shared_data_dir / name)
        seconds = time.perf_counter() - started
        assert cohort.expression.shape == shape and cohort.expression.dtypes.eq(np.float64).all()
        assert cohort.clinical.index.equals(cohort.expression.index)
        assert seconds < 10, f"{name} took {seconds:.1f} s to load"
        split = load_split(shared_data_dir / name)
        assert set(split.index) == set(cohort.expression.index)
    tcga31 = cohorts["tcga31_mirna_log2rpm"]
    assert tcga31.clinical["os_months"].isna().sum() == 48  # documented gaps are kept, not dropped
    assert tcga31.expression.columns[0].startswith("hsa-")


def _gzip_of(matrix: pd.DataFrame | None) -> bytes:
    """A gzipped Xena file of 200 samples x 20 genes (random values: a damaged stream then fails to inflate)."""
    values = np.round(np.random.default_rng(0).gamma(2.0, 50.0, size=(200, 20)), 2)
    big = pd.DataFrame(values, columns=[f"G{j}" for j in range(20)], index=[f"S{i}" for i in range(200)])
    return gzip.compress((big if matrix is None else matrix).T.rename_axis("sample").to_csv(sep="\t").encode())


def _overwrite_a_third_in(data: bytes) -> bytes:
    start = len(data) // 3
    return data[:start] + b"x" * 40 + data[start + 40 :]


@pytest.mark.parametrize(
    "name, damage, reader, error, cause",
    [
        ("expression.tsv.gz", lambda: _gzip_of(None)[:-300], read_expression, ExpressionInputError, "EOFError"),
        ("expression.tsv.gz", lambda: _overwrite_a_third_in(_gzip_of(None)), read_expression, ExpressionInputError,
         "zlib.error"),
        ("expression.tsv.gz", lambda: b"sample\tS1\nA\t1\n", read_expression, ExpressionInputError, "BadGzipFile"),
        ("table.parquet", lambda: b"PAR1" + b"\x00" * 100, read_expression, ExpressionInputError, "ArrowInvalid"),
        ("table.csv", lambda: bytes(range(256)) * 4, read_expression, ExpressionInputError, "UnicodeDecodeError"),
        ("table.csv", lambda: b"sample,A,B\nS1,1,2,3,4\nS2,1\n", read_expression, ExpressionInputError,
         "ParserError"),
        ("cohort.h5ad", lambda: b"not hdf5" * 50, read_expression, ExpressionInputError, "OSError"),
        ("clinical.tsv.gz", lambda: _gzip_of(None)[:40], read_clinical, ClinicalInputError, "EOFError"),
        ("clinical.csv", lambda: b"", read_clinical, ClinicalInputError, "EmptyDataError"),
        ("split.tsv.gz", lambda: _gzip_of(None)[:40], read_split, ClinicalInputError, "EOFError"),
    ],
    ids=["truncated-gz", "corrupt-gz", "not-gz", "corrupt-parquet", "binary-csv", "ragged-csv", "corrupt-h5ad",
         "truncated-clinical", "empty-clinical", "truncated-split"],
)
def test_corrupt_files_raise_one_line_naming_the_file(tmp_path, name, damage, reader, error, cause):
    path = tmp_path / name
    path.write_bytes(damage())
    with pytest.raises(error, match=rf"^{path}: (cannot be read as|not a readable) .*\({cause}: ") as caught:
        reader(path)
    assert "\n" not in str(caught.value)


def test_corrupt_expression_through_the_cli_exits_2_and_writes_nothing(tmp_path, capsys):
    from gexbert_hf.cli import main

    expression = tmp_path / "expression.tsv.gz"
    expression.write_bytes(_gzip_of(None)[:-300])
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text("sample\ttype\n" + "".join(f"S{i}\t{'ab'[i % 2]}\n" for i in range(200)))
    assert main(["build-dataset", "--expression", str(expression), "--clinical", str(clinical), "--output",
                 str(tmp_path / "dataset")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and f"{expression}: cannot be read" in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clinical.tsv", "expression.tsv.gz"]
