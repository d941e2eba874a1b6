"""`modeling/design_table.py`: the design README renders every run recorded in reports/pretraining_gpu, matches
the committed README, and refuses a record that lacks a field it needs."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
RUNS = REPOSITORY / "reports" / "pretraining_gpu"


def design_table():
    spec = importlib.util.spec_from_file_location("design_table", REPOSITORY / "modeling" / "design_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_run_is_rendered_and_the_readme_is_current():
    runs = sorted(path.parent.name for path in RUNS.glob("*/validation.json"))
    assert runs, "no runs recorded"
    text = design_table().render(RUNS)
    for run in runs:
        assert f"`{run}`" in text
    for data in json.loads((RUNS / "decoding.json").read_text())["folders"]:
        assert f"## {data}" in text and f"### {data}" in text
    assert (RUNS / "README.md").read_text() == text, "rerun python modeling/design_table.py"


@pytest.mark.parametrize(("file", "path"), [
    ("tcga31_w128_range/validation.json", ["eval_loss"]),
    ("tcga13_stage2/validation.json", ["validation", "mcar90", "per_gene_r"]),
    ("tcga31_w192_range/validation.json", ["arguments", "batch_size"]),
    ("decoding.json", ["folders", "tcga13_cbioportal_zscore", "models", "previous_release", "pretraining", "steps"]),
    ("decoding.json", ["folders", "tcga31_mirna_log2rpm", "models", "shipped", "mcar70", "value_head"]),
    ("cuda_precision_check.json", ["bf16", "final_loss"]),
])
def test_a_missing_field_fails(tmp_path, file, path):
    module = design_table()
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy, ignore=shutil.ignore_patterns("metrics.jsonl", "run.log", "README.md"))
    record = json.loads((copy / file).read_text())
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    (copy / file).write_text(json.dumps(record))
    with pytest.raises(module.MissingField, match=path[-1]):
        module.render(copy)
