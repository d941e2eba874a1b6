"""Output ownership (issue #14): `--overwrite` replaces only what an earlier run of the same gexbert command wrote,
never a folder holding an input or the source model, and never a file where a folder is expected or the reverse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HfArgumentParser

from gexbert_hf import GexBertConfig, GexBertForMaskedExpression, GexBertForSequenceClassification
from gexbert_hf.cli import SUBCOMMANDS, main
from gexbert_hf.errors import OutputExistsError
from gexbert_hf.outputs import OUTPUT_MARKER, claim_output_dir, read_marker
from gexbert_hf.training.finetune import FinetuneArguments
from gexbert_hf.training.pretrain import PretrainArguments, check_output_dir

REPOSITORY = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file below `root` with its bytes: what "left untouched" is checked against."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _one_error_line(capsys) -> str:
    """The CLI's one `gexbert CMD: error: ...` line (loading bars aside), never a traceback."""
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith("gexbert ")]
    assert len(lines) == 1 and "Traceback" not in error, error
    return lines[0]


@pytest.fixture(scope="module")
def models(embedded_tokenizer, tmp_path_factory):
    """A tiny classifier and a tiny masked-expression model, saved with their tokenizer."""
    root = tmp_path_factory.mktemp("owned-models")
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64)
    dirs = {}
    for name, cls, extra in (("classifier", GexBertForSequenceClassification,
                              {"id2label": {0: "a", 1: "b"}, "label2id": {"a": 0, "b": 1}}),
                             ("pretrained", GexBertForMaskedExpression, {})):
        torch.manual_seed(0)
        cls(GexBertConfig.from_dict({**config.to_dict(), **extra})).save_pretrained(root / name)
        embedded_tokenizer.save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


@pytest.fixture()
def cohort_files(synthetic_cohort, tmp_path):
    """Expression, clinical and split tables in one folder `d/`, as a user keeps them."""
    folder = tmp_path / "d"
    folder.mkdir()
    synthetic_cohort.expression.T.rename_axis("sample").to_csv(folder / "expression.tsv", sep="\t")
    synthetic_cohort.clinical.to_csv(folder / "clinical.tsv", sep="\t")
    samples = synthetic_cohort.expression.index
    split = np.where(np.arange(len(samples)) % 4 == 0, "test", "train")
    (folder / "split.tsv").write_text("sample\tsplit\n" + "".join(f"{s}\t{v}\n" for s, v in zip(samples, split,
                                                                                                   strict=True)))
    return folder


def _build_argv(folder: Path, output: Path) -> list[str]:
    return ["build-dataset", "--expression", str(folder / "expression.tsv"), "--clinical", str(folder / "clinical.tsv"),
            "--split", str(folder / "split.tsv"), "--label_column", "cancer_type", "--output", str(output)]


# ----------------------------------------------------------------------------------------------------------------------
# issue #14, item 1: export
# ----------------------------------------------------------------------------------------------------------------------
def test_export_overwrite_never_removes_a_folder_holding_the_model(models, tmp_path, capsys):
    project = tmp_path / "p"
    model = project / "runs" / "m"
    shutil.copytree(models["classifier"], model)
    (project / "notes.txt").write_text("mine")
    before = _tree(project)
    assert main(["export", "--model", str(model), "--output", str(project), "--overwrite"]) == 2
    assert f"{project}: contains the model {model}" in _one_error_line(capsys)
    assert _tree(project) == before
    assert [path.name for path in tmp_path.iterdir()] == ["p"]  # no staging folder left behind


def test_export_overwrite_through_a_symlink_to_the_models_parent_is_refused(models, tmp_path, capsys):
    project = tmp_path / "p"
    shutil.copytree(models["classifier"], project / "m")
    link = tmp_path / "link"
    link.symlink_to(project)
    before = _tree(project)
    assert main(["export", "--model", str(project / "m"), "--output", str(link), "--overwrite"]) == 2
    assert "contains the model" in _one_error_line(capsys)
    assert _tree(project) == before


def test_export_overwrite_refuses_a_folder_gexbert_did_not_write(models, tmp_path, capsys):
    output = tmp_path / "hub"
    output.mkdir()
    (output / "config.json").write_text("{}")
    (output / "notes.txt").write_text("mine")
    before = _tree(output)
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output), "--overwrite"]) == 2
    assert f"{output}: not written by gexbert" in _one_error_line(capsys)
    assert _tree(output) == before


def test_export_overwrite_replaces_its_own_files_and_keeps_the_rest(models, tmp_path):
    output = tmp_path / "hub"
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output)]) == 0
    marker = read_marker(output)
    assert marker["command"] == "export" and {"config.json", "model.safetensors"} <= set(marker["files"])
    (output / "notes.txt").write_text("mine")
    (output / "model.safetensors").write_bytes(b"stale")  # a file the export listed: replaced
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output), "--overwrite"]) == 0
    assert (output / "notes.txt").read_text() == "mine"
    assert GexBertForSequenceClassification.from_pretrained(output).config.id2label == {0: "a", 1: "b"}
    assert "notes.txt" not in read_marker(output)["files"]


def test_export_overwrite_refuses_an_unlisted_file_it_would_replace(models, tmp_path, capsys):
    output = tmp_path / "hub"
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output)]) == 0
    marker = json.loads((output / OUTPUT_MARKER).read_text())
    marker["files"].remove("README.md")  # as if the user had written README.md themselves
    (output / OUTPUT_MARKER).write_text(json.dumps(marker))
    before = _tree(output)
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output), "--overwrite"]) == 2
    assert "README.md, not written by gexbert export" in _one_error_line(capsys)
    assert _tree(output) == before


# ----------------------------------------------------------------------------------------------------------------------
# issue #14, item 10: a file where a folder is expected, and the reverse
# ----------------------------------------------------------------------------------------------------------------------
def test_export_overwrite_onto_a_file_is_refused_by_name(models, tmp_path, capsys):
    target = tmp_path / "hub"
    target.write_text("not a folder")
    assert main(["export", "--model", str(models["classifier"]), "--output", str(target), "--overwrite"]) == 2
    assert f"{target}: is a file, and --output names a folder" in _one_error_line(capsys)
    assert target.read_text() == "not a folder" and [path.name for path in tmp_path.iterdir()] == ["hub"]


def test_impute_overwrite_onto_a_folder_is_refused_by_name(models, embedded_cohort, tmp_path, capsys):
    source = tmp_path / "input.csv"
    embedded_cohort.expression.iloc[:6, :20].rename_axis("sample").to_csv(source)
    target = tmp_path / "filled.csv"
    target.mkdir()
    (target / "inside.txt").write_text("mine")
    before = _tree(tmp_path)
    assert main(["impute", "--model", str(models["pretrained"]), "--input", str(source), "--output", str(target),
                 "--overwrite", "--progress", "false"]) == 2
    assert f"{target}: is a folder, and --output names a file" in _one_error_line(capsys)
    assert _tree(tmp_path) == before and sorted(path.name for path in tmp_path.iterdir()) == ["filled.csv",
                                                                                                "input.csv"]


def test_predict_below_a_file_is_refused_by_name(models, embedded_cohort, tmp_path, capsys):
    source = tmp_path / "input.csv"
    embedded_cohort.expression.iloc[:6, :20].rename_axis("sample").to_csv(source)
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    assert main(["predict", "--model", str(models["classifier"]), "--input", str(source), "--output",
                 str(blocker / "predictions.csv")]) == 2
    assert f"{blocker} is a file, not a folder" in _one_error_line(capsys)
    assert blocker.read_text() == "a file"


# ----------------------------------------------------------------------------------------------------------------------
# issue #14, item 2: build-dataset
# ----------------------------------------------------------------------------------------------------------------------
def test_build_dataset_overwrite_never_removes_its_input_files(cohort_files, capsys):
    before = _tree(cohort_files)
    assert main([*_build_argv(cohort_files, cohort_files), "--overwrite"]) == 2
    assert f"{cohort_files}: contains --expression" in _one_error_line(capsys)
    assert _tree(cohort_files) == before
    assert [path.name for path in cohort_files.parent.iterdir()] == ["d"]


def test_build_dataset_overwrite_keeps_files_it_did_not_write(cohort_files, tmp_path, capsys):
    import datasets

    output = tmp_path / "built"
    assert main(_build_argv(cohort_files, output)) == 0
    (output / "notes.txt").write_text("mine")
    assert main([*_build_argv(cohort_files, output), "--overwrite"]) == 0
    assert (output / "notes.txt").read_text() == "mine"
    assert datasets.load_from_disk(str(output))["train"].num_rows == 90
    listed = read_marker(output)["files"]
    assert "dataset_dict.json" in listed and "notes.txt" not in listed
    assert all((output / name).is_file() for name in listed)


def test_build_dataset_overwrite_refuses_a_folder_gexbert_did_not_write(cohort_files, tmp_path, capsys):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    assert main([*_build_argv(cohort_files, output), "--overwrite"]) == 2
    assert f"{output}: not written by gexbert" in _one_error_line(capsys)
    assert _tree(output) == {"notes.txt": b"keep me"}


def test_a_folder_written_by_another_command_is_refused(models, cohort_files, tmp_path, capsys):
    output = tmp_path / "hub"
    assert main(["export", "--model", str(models["classifier"]), "--output", str(output)]) == 0
    before = _tree(output)
    assert main([*_build_argv(cohort_files, output), "--overwrite"]) == 2
    assert f"{output}: written by gexbert export, not build-dataset" in _one_error_line(capsys)
    assert _tree(output) == before


# ----------------------------------------------------------------------------------------------------------------------
# report folders: demo, benchmark, bench-speed
# ----------------------------------------------------------------------------------------------------------------------
REPORT_COMMANDS = {
    "demo": lambda output, data: ["demo", "--quick", "--output", str(output), "--progress", "false"],
    "benchmark": lambda output, data: ["benchmark", "--data_dir", str(data), "--output", str(output), "--quick",
                                       "--progress", "false"],
    "bench-speed": lambda output, data: ["bench-speed", "--quick", "--output_dir", str(output)],
}


@pytest.mark.parametrize("command", sorted(REPORT_COMMANDS))
def test_report_commands_never_overwrite_an_existing_folder_without_consent(command, tmp_path, capsys):
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("mine")
    argv = REPORT_COMMANDS[command](report, tmp_path / "no-data")
    assert main(argv) == 2
    assert f"{report}: already exists; pass --overwrite" in _one_error_line(capsys)
    assert main([*argv, "--overwrite"]) == 2
    assert f"{report}: not written by gexbert" in _one_error_line(capsys)
    assert _tree(report) == {"report.md": b"mine"}


def test_benchmark_output_holding_the_pretrained_model_is_refused(models, tmp_path, capsys):
    output = tmp_path / "run"
    shutil.copytree(models["pretrained"], output / "model")
    before = _tree(output)
    assert main(["benchmark", "--data_dir", str(tmp_path / "no-data"), "--output", str(output), "--overwrite",
                 "--pretrained_model", str(output / "model")]) == 2
    assert f"{output}: contains --pretrained_model" in _one_error_line(capsys)
    assert _tree(output) == before


def test_committed_report_folders_are_marked_for_their_command():
    """The documented commands (README, Makefile, modeling/configs) rerun into these folders with --overwrite."""
    folders = {"reports/demo": "demo", "reports/speed": "bench-speed"}
    for config in sorted((REPOSITORY / "modeling" / "configs").glob("*.json")):
        settings = json.loads(config.read_text())
        assert settings.get("overwrite") is True, config.name
        folders[settings["output"]] = "benchmark"
    for folder, command in folders.items():
        marker = read_marker(REPOSITORY / folder)
        assert marker is not None and marker["command"] == command, folder
        assert "report.md" in marker["files"] and "results.json" in marker["files"], folder
        assert not {"notes.md", "run.log"} & set(marker["files"]), folder
    assert "--overwrite" in (REPOSITORY / "Makefile").read_text().split("gexbert demo", 1)[1].splitlines()[0]


# ----------------------------------------------------------------------------------------------------------------------
# pretrain and finetune: the flag's one spelling, and their run folders
# ----------------------------------------------------------------------------------------------------------------------
def test_every_subcommand_with_an_output_takes_overwrite():
    import importlib

    for name, (module, arguments, _) in SUBCOMMANDS.items():
        fields = getattr(importlib.import_module(module), arguments).__dataclass_fields__
        assert "overwrite" in fields, name


def test_the_old_spelling_still_works_with_a_future_warning():
    with pytest.warns(FutureWarning, match="--overwrite_output_dir is deprecated; use --overwrite"):
        (parsed,) = HfArgumentParser(PretrainArguments).parse_args_into_dataclasses(
            ["--output_dir", "x", "--overwrite_output_dir"])
    assert parsed.overwrite is True
    with pytest.warns(FutureWarning):
        assert FinetuneArguments(task="classify", model="m", output_dir="x", overwrite_output_dir=True).overwrite
    (parsed,) = HfArgumentParser(FinetuneArguments).parse_args_into_dataclasses(
        ["--task", "classify", "--model", "m", "--output_dir", "x", "--overwrite"])
    assert parsed.overwrite is True and parsed.overwrite_output_dir is False


def test_pretrain_overwrite_refuses_a_folder_holding_its_dataset(synthetic_cohort, tmp_path, capsys):
    from gexbert_hf.data.build import build_dataset

    runs = tmp_path / "runs"
    build_dataset(synthetic_cohort, output=runs / "data", verbose=False)
    before = _tree(runs)
    assert main(["pretrain", "--dataset", str(runs / "data"), "--output_dir", str(runs), "--overwrite",
                 "--preset", "tiny", "--max_steps", "1", "--batch_size", "16", "--progress", "false"]) == 2
    assert f"{runs}: contains --dataset" in _one_error_line(capsys)
    assert _tree(runs) == before


def test_run_folders_are_marked_and_every_rank_may_claim_a_fresh_one(tmp_path):
    output = tmp_path / "run"
    check_output_dir(output, resume=False, overwrite=False)
    check_output_dir(output, resume=False, overwrite=False)  # a second process of the same launch
    assert read_marker(output)["command"] == "pretrain"
    (output / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        check_output_dir(output, resume=False, overwrite=False)
    check_output_dir(output, resume=True, overwrite=False)
    check_output_dir(output, resume=False, overwrite=True)
    assert (output / "metrics.jsonl").is_file()  # what a run folder holds is pretrain's own business


# ----------------------------------------------------------------------------------------------------------------------
# the ownership rules themselves
# ----------------------------------------------------------------------------------------------------------------------
def test_writing_lists_what_a_run_wrote_and_overwrite_removes_only_that(tmp_path):
    output = tmp_path / "report"
    with claim_output_dir(output, "demo").writing() as folder:
        (folder / "report.md").write_text("one")
        (folder / "plots").mkdir()
        (folder / "plots" / "a.png").write_bytes(b"png")
    assert read_marker(output)["files"] == ["plots/a.png", "report.md"] and read_marker(output)["complete"]
    (output / "notes.md").write_text("mine")
    (output / "plots" / "mine.png").write_bytes(b"mine")
    with claim_output_dir(output, "demo", overwrite=True).writing() as folder:
        assert not (folder / "report.md").exists() and not (folder / "plots" / "a.png").exists()
        (folder / "report.md").write_text("two")
    assert read_marker(output)["files"] == ["report.md"]
    assert _tree(output) == {".gexbert-output.json": (output / OUTPUT_MARKER).read_bytes(), "notes.md": b"mine",
                             "plots/mine.png": b"mine", "report.md": b"two"}


def test_a_crashed_run_keeps_its_partial_files_listed(tmp_path):
    output = tmp_path / "report"
    with pytest.raises(RuntimeError), claim_output_dir(output, "benchmark").writing() as folder:
        (folder / "results.json").write_text("{}")
        raise RuntimeError("killed")
    marker = read_marker(output)
    assert marker["files"] == ["results.json"] and marker["complete"] is False
    with claim_output_dir(output, "benchmark", overwrite=True).writing():
        pass
    assert not (output / "results.json").exists()


def test_a_marker_listing_files_outside_its_folder_is_refused(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    output = tmp_path / "report"
    output.mkdir()
    (output / OUTPUT_MARKER).write_text(json.dumps({"command": "demo", "files": ["../precious.txt"]}))
    (output / "report.md").write_text("old")
    with pytest.raises(OutputExistsError, match=r"lists \.\./precious\.txt, outside the folder"):
        claim_output_dir(output, "demo", overwrite=True)
    (output / OUTPUT_MARKER).write_text("{not json")
    with pytest.raises(OutputExistsError, match="unreadable"):
        claim_output_dir(output, "demo", overwrite=True)
    assert outside.read_text() == "mine" and (output / "report.md").read_text() == "old"
