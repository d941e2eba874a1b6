"""`gexbert adapt` and `adapt_model` on the embedded GSE7390 cohort with a tiny model: the adapted checkpoint loads as
every `--model` does, its card names the parent, level edges move only for the genes the cohort measures, scattered
missing cells are never targets, and a folder gexbert did not write is never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexbert_hf.cli import main
from gexbert_hf.data.collator import DataCollatorForMaskedExpression
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.loading import load_model_and_tokenizer
from gexbert_hf.training.adapt import (
    AdaptationError,
    AdaptationRecipe,
    adapt_model,
    freeze_for_recipe,
    refit_level_statistics,
)
from gexbert_hf.training.sample_hashes import shared_samples, training_sample_hashes

FAST = AdaptationRecipe(learning_rate=1e-3, batch_size=16, max_genes=None)


def shifted_cohort(expression: pd.DataFrame, genes_kept: int = 50, nan_share: float = 0.05) -> pd.DataFrame:
    """The embedded cohort as another platform: offsets per gene, some genes not measured, scattered NaN."""
    rng = np.random.default_rng(3)
    frame = expression.iloc[:, :genes_kept] * 1.3 + rng.normal(0, 1, genes_kept)
    return frame.mask(rng.random(frame.shape) < nan_share)


@pytest.fixture(scope="module")
def cohort_folder(embedded_cohort, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort") / "shifted"
    folder.mkdir()
    frame = shifted_cohort(embedded_cohort.expression)
    frame.T.rename_axis("sample").to_csv(folder / "expression.tsv.gz", sep="\t")
    test = np.random.default_rng(0).random(len(frame)) < 0.25
    pd.DataFrame({"sample": frame.index, "split": np.where(test, "test", "train")}).to_csv(
        folder / "split.tsv", sep="\t", index=False)
    return folder


@pytest.fixture(scope="module")
def adapted_dir(model_dir, cohort_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("adapted") / "out"
    code = main(["adapt", "--model", str(model_dir), "--data_dir", str(cohort_folder), "--output", str(output),
                 "--steps", "6", "--batch_size", "16", "--max_genes", "0", "--learning_rate", "1e-3",
                 "--no_progress"])
    assert code == 0
    return output


def test_adapted_checkpoint_loads_and_records_its_parent(adapted_dir, model_dir, cohort_folder):
    model, tokenizer = load_model_and_tokenizer(adapted_dir)
    parent, parent_tokenizer = load_model_and_tokenizer(model_dir)
    assert tokenizer.genes == parent_tokenizer.genes
    assert model.config.tokenizer_fingerprint == parent.config.tokenizer_fingerprint
    changed = [name for name, tensor in model.state_dict().items()
               if not np.allclose(tensor.numpy(), parent.state_dict()[name].numpy())]
    assert changed, "six steps at lr 1e-3 must move some weights"
    config = json.loads((adapted_dir / "config.json").read_text())
    assert config["base_model"] == str(model_dir)
    train = (pd.read_csv(cohort_folder / "split.tsv", sep="\t")["split"] == "train").sum()
    assert config["adaptation"]["n_samples"] == train
    assert config["adaptation"]["steps"] == 6
    assert config["training_samples_hash"]["n_samples"] == train


def test_card_names_parent_cohort_size_and_recipe(adapted_dir, model_dir):
    card = (adapted_dir / "README.md").read_text()
    record = json.loads((adapted_dir / "config.json").read_text())["adaptation"]
    assert f"base_model: {model_dir}" in card
    assert f"Adapted from `{model_dir}`" in card
    assert f"{record['n_samples']} unlabelled samples" in card
    assert "learning rate 0.001" in card and "weights moved: all" in card


def test_edges_refitted_only_for_measured_genes(embedded_cohort, embedded_tokenizer):
    frame = shifted_cohort(embedded_cohort.expression, genes_kept=50)
    frame.iloc[20:, 3] = np.nan  # gene 3: 20 measured values, below the refit threshold of 25 used here
    adapted, refitted = refit_level_statistics(embedded_tokenizer, frame, min_measured=25)
    measured = set(frame.columns) - {frame.columns[3]}
    assert set(refitted) == measured
    for gene in embedded_tokenizer.genes:
        row = embedded_tokenizer.gene_to_index[gene]
        same = np.array_equal(adapted.level_edges[row], embedded_tokenizer.level_edges[row])
        assert same == (gene not in measured), gene
    assert adapted.fingerprint == embedded_tokenizer.fingerprint
    # a refitted gene's edges are the cohort's quantiles: its median lies between the middle levels
    gene = frame.columns[0]
    row = embedded_tokenizer.gene_to_index[gene]
    middle = adapted.level_edges[row][adapted.num_levels // 2 - 2 : adapted.num_levels // 2 + 1]
    assert middle[0] <= frame[gene].median() <= middle[-1]


def test_scattered_missing_cells_are_never_targets(embedded_cohort, embedded_tokenizer):
    frame = shifted_cohort(embedded_cohort.expression, nan_share=0.3)
    adapted, _ = refit_level_statistics(embedded_tokenizer, frame)
    samples = EncodedSamples.from_frame(adapted, frame)
    collator = DataCollatorForMaskedExpression(adapted, mask_fraction=0.15, max_mask_fraction=0.95, seed=1)
    batch = collator(samples.rows(range(64)))
    targets = batch["labels"] != -100
    assert targets.sum() > 0
    gene_column = {gene: j for j, gene in enumerate(frame.columns)}
    names = adapted.convert_ids_to_genes(batch["input_ids"][targets].tolist())
    rows = np.nonzero(targets.numpy())[0]
    measured = [not np.isnan(frame.iloc[row, gene_column[name]]) for row, name in zip(rows, names, strict=True)]
    assert all(measured)


def test_adapt_model_leaves_the_parent_untouched(embedded_cohort, model_dir):
    model, tokenizer = load_model_and_tokenizer(model_dir)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    result = adapt_model(model, tokenizer, shifted_cohort(embedded_cohort.expression), FAST, steps=2,
                         progress=False, parent="tiny")
    assert result.record["steps"] == 2 and result.record["genes_refitted"] == 50
    assert all(np.array_equal(before[name], tensor) for name, tensor in model.state_dict().items())
    assert np.array_equal(tokenizer.level_edges, load_model_and_tokenizer(model_dir)[1].level_edges)


def test_top_and_heads_recipes_freeze_the_lower_layers(model_dir):
    model, _ = load_model_and_tokenizer(model_dir)
    total = sum(parameter.numel() for parameter in model.parameters())
    heads = freeze_for_recipe(model, "heads")
    assert 0 < heads < total
    assert not any(parameter.requires_grad for parameter in model.gexbert.embeddings.parameters())
    with pytest.raises(AdaptationError, match="trainable"):
        freeze_for_recipe(model, "everything")


def test_refuses_to_overwrite_a_folder_gexbert_did_not_write(model_dir, cohort_folder, tmp_path, capsys):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("my notes")
    code = main(["adapt", "--model", str(model_dir), "--data_dir", str(cohort_folder), "--output", str(output),
                 "--steps", "1", "--overwrite", "--no_progress"])
    assert code == 2
    assert "not written by gexbert" in capsys.readouterr().err
    assert (output / "notes.txt").read_text() == "my notes" and len(list(output.iterdir())) == 1


def test_training_sample_hashes_find_shared_patients():
    record = training_sample_hashes(["TCGA-AB-1234", "TCGA-CD-5678", "GSM1"], salt="s")
    assert record["n_samples"] == 3 and "TCGA-AB-1234" not in json.dumps(record)
    # another aliquot of the same patient counts; an unrelated sample does not; another salt matches nothing
    assert shared_samples(record, ["TCGA-AB-1234-01A", "TCGA-EF-0000", "gsm1"]) == ["TCGA-AB-1234-01A", "gsm1"]
    assert shared_samples(training_sample_hashes(["TCGA-AB-1234"], salt="t") | {"salt": "u"}, ["TCGA-AB-1234"]) == []
