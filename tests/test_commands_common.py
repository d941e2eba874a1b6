"""What a new user hit on the file commands (issue 20, item 5): one set of common flags, `--device`, outputs the
same way round as the input and readable under the user's umask, a mistyped model name, the top-level help and
version, and one miRNA never returned twice under two spellings."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import GexBertTokenizer, __version__, pretrained_path
from gexbert_hf.cli import SUBCOMMANDS, main, make_parser
from gexbert_hf.commands.common import resolve_device, sidecar_path
from gexbert_hf.commands.embed import EmbedArguments
from gexbert_hf.commands.export import ExportArguments
from gexbert_hf.commands.impute import ImputeArguments
from gexbert_hf.commands.predict import PredictArguments
from gexbert_hf.errors import DeviceError
from gexbert_hf.expression_input_gexbert import spelling_key

COMMON_FLAGS = ["--batch_size", "8", "--device", "cpu", "--no_progress", "--threads", "1", "--overwrite"]


@pytest.fixture()
def input_csv(expression_csv):
    return expression_csv(10, 25, (1, [2, 4]))[1]


@pytest.fixture()
def umask():
    """Set a umask for one test, then put the previous one back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------------------------------------------------------------
# the common flags
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, arguments_class", [("impute", ImputeArguments), ("predict", PredictArguments),
                                                   ("embed", EmbedArguments)])
def test_every_command_that_runs_the_model_takes_the_same_flags(name, arguments_class):
    required = ["--model", "m", "--input", "i.csv", "--output", "o.csv"]
    (parsed,) = make_parser(arguments_class, name).parse_args_into_dataclasses([*required, *COMMON_FLAGS])
    assert (parsed.batch_size, parsed.device, parsed.progress, parsed.threads, parsed.overwrite) == (8, "cpu", False,
                                                                                                    1, True)
    (export,) = make_parser(ExportArguments, "export").parse_args_into_dataclasses(["--model", "m", "--output", "o",
                                                                                     "--overwrite"])
    assert export.overwrite is True


def test_predict_takes_no_progress_and_device_as_impute_does(model_dirs, input_csv, tmp_path):
    from gexbert_hf.threads import configure_threads

    flags = [flag if flag != "1" else "2" for flag in COMMON_FLAGS]  # --threads 2, against the tests' one thread
    try:
        for name, model in (("predict", "classifier"), ("impute", "pretrained"), ("embed", "survival")):
            output = tmp_path / f"{name}.csv"
            assert main([name, "--model", str(model_dirs[model]), "--input", str(input_csv), "--output", str(output),
                         *flags]) == 0, name
            assert len(pd.read_csv(output, index_col=0)) == 10
            assert torch.get_num_threads() == 2 and configure_threads() == 2  # kept by the loops after it
    finally:
        configure_threads(1)


def test_device_is_checked_before_anything_is_loaded(model_dirs, input_csv, tmp_path, capsys):
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(DeviceError, match="expected one of auto, cpu, cuda"):
        resolve_device("tpu")
    argv = ["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
            str(tmp_path / "out.csv")]
    assert main([*argv, "--device", "gpu0"]) == 2
    assert "--device 'gpu0': expected one of auto, cpu, cuda" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*argv, "--device", "cuda"]) == 2
        assert "no CUDA device is available here; use --device cpu" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


# ----------------------------------------------------------------------------------------------------------------------
# outputs: orientation, formats, permissions
# ----------------------------------------------------------------------------------------------------------------------
def test_a_genes_x_samples_input_gives_a_genes_x_samples_filled_table(model_dirs, input_csv, tmp_path):
    frame = pd.read_csv(input_csv, index_col=0)
    transposed = tmp_path / "genes_by_samples.tsv"
    frame.T.rename_axis("gene").to_csv(transposed, sep="\t")
    argv = ["impute", "--model", str(model_dirs["pretrained"]), "--only_input_genes", "--no_progress"]
    assert main([*argv, "--input", str(input_csv), "--output", str(tmp_path / "rows.tsv")]) == 0
    assert main([*argv, "--input", str(transposed), "--output", str(tmp_path / "columns.tsv")]) == 0
    by_rows = pd.read_csv(tmp_path / "rows.tsv", sep="\t", index_col=0)
    by_columns = pd.read_csv(tmp_path / "columns.tsv", sep="\t", index_col=0)
    assert by_columns.index.name == "gene" and list(by_columns.index) == list(frame.columns)
    assert list(by_columns.columns) == list(frame.index)  # samples stay columns
    np.testing.assert_allclose(by_columns.T.to_numpy(), by_rows.to_numpy())
    uncertainty = pd.read_csv(sidecar_path(tmp_path / "columns.tsv", "uncertainty"), sep="\t", index_col=0)
    assert uncertainty.shape == by_columns.shape and uncertainty.index.name == "gene"
    assert (uncertainty.loc[frame.columns[2], frame.index[1]] > 0) and (uncertainty.iloc[0, 0] == 0)


def test_an_unknown_output_format_names_every_format_h5ad_included(model_dirs, input_csv, tmp_path, capsys):
    for name, model in (("impute", "pretrained"), ("predict", "classifier"), ("embed", "pretrained")):
        assert main([name, "--model", str(model_dirs[model]), "--input", str(input_csv), "--output",
                     str(tmp_path / "out.xlsx")]) == 2
        error = capsys.readouterr().err
        assert "output format unknown" in error and ".h5ad" in error and ".parquet" in error, name
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert ".h5ad" in capsys.readouterr().out


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_honour_the_umask(mask, umask, model_dirs, input_csv, tmp_path):
    umask(mask)
    output = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(model_dirs["pretrained"]), "--input", str(input_csv), "--output",
                 str(output), "--no_progress"]) == 0
    assert main(["export", "--model", str(model_dirs["classifier"]), "--output", str(tmp_path / "export")]) == 0
    for path in (output, sidecar_path(output, "uncertainty"), tmp_path / "export" / "config.json",
                 tmp_path / "export" / ".gexbert-output.json"):
        assert _mode(path) == 0o666 & ~mask, path  # not 0600, as tempfile made them
    assert _mode(tmp_path / "export") == 0o777 & ~mask  # not 0700, as mkdtemp made it


# ----------------------------------------------------------------------------------------------------------------------
# model names, help, version
# ----------------------------------------------------------------------------------------------------------------------
def test_a_mistyped_model_name_lists_the_shipped_names_and_suggests_the_closest(input_csv, tmp_path, capsys):
    for argv in (["impute", "--input", str(input_csv), "--output", str(tmp_path / "o.csv")],
                 ["export", "--output", str(tmp_path / "export")]):
        assert main([*argv, "--model", "tcga31-mirnaa"]) == 2
        error = capsys.readouterr().err
        assert "tcga31-mirnaa: no such model folder" in error
        assert "shipped: tcga13-mrna, tcga31-mirna; did you mean tcga31-mirna?" in error
        assert "Traceback" not in error
    assert main(["impute", "--input", str(input_csv), "--output", str(tmp_path / "o.csv"), "--model", "nothing"]) == 2
    assert "did you mean" not in capsys.readouterr().err  # nothing close: the list alone


def test_top_level_help_describes_every_subcommand_and_version_exists(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for name in SUBCOMMANDS:
        line = next(line for line in printed.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(name, 1)[1].strip()) > 20, line  # a description, not just the name
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"gexbert-hf {__version__} (transformers ")
    assert main(["no-such-command"]) == 2
    assert "unknown subcommand 'no-such-command'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------------
# one miRNA, two spellings
# ----------------------------------------------------------------------------------------------------------------------
def test_a_half_known_id_set_never_returns_one_mirna_twice(tmp_path, monkeypatch, capsys):
    """Some ids spelt another way (R's make.names dots, upper case): before, each was passed through unknown while
    its vocabulary spelling was restored as an absent gene, so the output held the same miRNA twice."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = GexBertTokenizer.from_pretrained(pretrained_path("tcga31-mirna"))
    levels = tokenizer.denormalize(np.nanmedian(tokenizer.level_values, axis=1))
    frame = pd.DataFrame(np.tile(levels, (4, 1)), columns=tokenizer.genes,
                         index=[f"S{i}" for i in range(4)]).iloc[:, :200]
    respelt = {"hsa-mir-21": "HSA-MIR-21", "hsa-mir-155": "hsa.mir.155", "hsa-let-7a-1": "hsa_let_7a_1"}
    frame = frame.drop(columns=[name for name in respelt if name in frame.columns]).join(pd.DataFrame({alias: [1.5, 2.5, np.nan, 3.5] for alias in respelt.values()},
                                    index=frame.index))
    source = tmp_path / "mirna.csv"
    frame.rename_axis("sample").to_csv(source)
    assert all(tokenizer.vocabulary_name(alias) == name for name, alias in respelt.items())
    output = tmp_path / "filled.csv"
    assert main(["impute", "--model", "tcga31-mirna", "--input", str(source), "--output", str(output),
                 "--no_progress"]) == 0
    filled = pd.read_csv(output, index_col=0)
    keys = [spelling_key(column) for column in filled.columns]
    assert len(keys) == len(set(keys)) == len(tokenizer.genes)  # every miRNA once
    assert set(respelt.values()) <= set(filled.columns) and not set(respelt) & set(filled.columns)
    np.testing.assert_array_equal(filled["HSA-MIR-21"].iloc[[0, 1, 3]], [1.5, 2.5, 3.5])  # measured values read
    assert np.isfinite(filled["HSA-MIR-21"].iloc[2])  # and the missing one filled
    assert "unknown to the model passed through" not in capsys.readouterr().out

    both = frame.assign(**{"hsa-mir-21": 1.0})  # one miRNA under two spellings in one input: refused by name
    both.rename_axis("sample").to_csv(source)
    assert main(["impute", "--model", "tcga31-mirna", "--input", str(source), "--output",
                 str(tmp_path / "both.csv"), "--no_progress"]) == 2
    assert "HSA-MIR-21" in capsys.readouterr().err
