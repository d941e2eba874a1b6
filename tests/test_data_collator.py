"""DataCollatorForMaskedExpression: mask fraction, missing genes never targets, seeded reproducibility, panels."""

from __future__ import annotations

import pytest
import torch

from gexbert_hf.configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID
from gexbert_hf.data.cohorts import make_synthetic_cohort
from gexbert_hf.data.collator import DataCollatorForExpressionFinetuning, DataCollatorForMaskedExpression
from gexbert_hf.tokenization_gexbert import GexBertTokenizer


@pytest.fixture(scope="module")
def tokenized():
    """Tokenizer + 16 per-sample rows of a synthetic cohort where 20 % of the cells are missing."""
    cohort = make_synthetic_cohort(n_samples=40, n_genes=100, missing_fraction=0.2, seed=1)
    tokenizer = GexBertTokenizer.fit(cohort.expression, num_levels=8)
    encoded = tokenizer.encode(cohort.expression.iloc[:16])
    rows = [{"gene_ids": encoded["gene_ids"], "level_ids": encoded["level_ids"][i], "values": encoded["values"][i],
             "label": i % 3} for i in range(16)]
    return tokenizer, rows


def truth(rows):
    """(sample, gene id) -> (level id, value) of the rows given to the collator."""
    return {(s, int(g)): (int(level), float(value)) for s, row in enumerate(rows)
            for g, level, value in zip(row["gene_ids"], row["level_ids"], row["values"], strict=True)}


def test_mask_fraction_and_targets(tokenized):
    tokenizer, rows = tokenized
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=50, mask_fraction=0.2, seed=0,
                                                sample_keys={"label": "labels_class"})
    batch = collator(rows)
    known = truth(rows)
    assert batch["input_ids"].shape == (16, 51) and (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    for s in range(16):
        tokens = batch["attention_mask"][s].bool()
        assert tokens.sum() == 51  # CLS + max_genes: every sample has more than 50 measured genes
        targets = batch["labels"][s] != -100
        assert targets.sum() == 10  # round(0.2 * 50)
        assert (batch["level_ids"][s][targets] == MASK_LEVEL_ID).all()
        assert (batch["values"][s][targets] == 0).all()
        assert torch.isnan(batch["value_labels"][s][~targets]).all()
        for position in targets.nonzero().flatten().tolist():
            level, value = known[(s, int(batch["input_ids"][s, position]))]
            assert int(batch["labels"][s, position]) == level - LEVEL_OFFSET
            assert float(batch["value_labels"][s, position]) == pytest.approx(value)
        visible = tokens & ~targets
        visible[0] = False
        for position in visible.nonzero().flatten().tolist():
            level, _ = known[(s, int(batch["input_ids"][s, position]))]
            assert int(batch["level_ids"][s, position]) == level
    assert batch["labels_class"].tolist() == [i % 3 for i in range(16)]


def test_missing_genes_are_never_inputs_or_targets(tokenized):
    tokenizer, rows = tokenized
    known = truth(rows)
    batch = DataCollatorForMaskedExpression(tokenizer, mask_fraction=0.5, seed=3)(rows)
    assert not (batch["level_ids"] == MISSING_LEVEL_ID).any()
    for s in range(16):
        measured = int((rows[s]["level_ids"] >= LEVEL_OFFSET).sum())
        assert measured < 100  # the cohort has missing cells in every sample
        assert int(batch["attention_mask"][s].sum()) == measured + 1
        ids = batch["input_ids"][s][batch["attention_mask"][s].bool()][1:].tolist()
        assert all(known[(s, gene)][0] >= LEVEL_OFFSET for gene in ids)
    padded = batch["attention_mask"] == 0
    assert (batch["level_ids"][padded] == PAD_LEVEL_ID).all() and (batch["labels"][padded] == -100).all()


def test_reproducible_under_seed_and_resume(tokenized):
    tokenizer, rows = tokenized

    def collator(seed=0):
        return DataCollatorForMaskedExpression(tokenizer, max_genes=30, mask_fraction=0.15, seed=seed)

    first, second = collator(), collator()
    a1, a2 = first(rows), first(rows)
    b1 = second(rows)
    for key in ("input_ids", "level_ids", "labels"):
        assert torch.equal(a1[key], b1[key])
    assert not torch.equal(a1["input_ids"], a2["input_ids"])  # a new gene subset every step
    assert not torch.equal(a1["input_ids"], collator(seed=1)(rows)["input_ids"])
    resumed = collator()
    resumed.load_state_dict(first.state_dict())
    first_next = first(rows)
    assert torch.equal(resumed(rows)["input_ids"], first_next["input_ids"])


def test_panel_and_query_ids(tokenized):
    tokenizer, rows = tokenized
    panel = rows[0]["gene_ids"][:20]
    queries = rows[0]["gene_ids"][90:95]
    batch = DataCollatorForMaskedExpression(tokenizer, mask_fraction=0.0, panel_ids=panel, query_ids=queries)(rows)
    assert "labels" not in batch
    for s in range(16):
        ids = batch["input_ids"][s][batch["attention_mask"][s].bool()][1:]
        levels = batch["level_ids"][s][batch["attention_mask"][s].bool()][1:]
        queried = torch.isin(ids, torch.as_tensor(queries))
        assert queried.sum() == 5 and (levels[queried] == MASK_LEVEL_ID).all()
        assert torch.isin(ids[~queried], torch.as_tensor(panel)).all()
        assert (levels[~queried] >= LEVEL_OFFSET).all()
        assert ids[-5:].tolist() == queries.tolist()  # queries come after the measured panel genes


def test_invalid_settings(tokenized):
    tokenizer, _ = tokenized
    with pytest.raises(ValueError, match="mask_fraction"):
        DataCollatorForMaskedExpression(tokenizer, mask_fraction=1.0)
    with pytest.raises(ValueError, match="max_genes"):
        DataCollatorForMaskedExpression(tokenizer, max_genes=0)


# ----------------------------------------------------------------------------------------------------------------------
# the fine-tuning collator and the dataset column names (issue #13, section 2)
# ----------------------------------------------------------------------------------------------------------------------
def test_finetuning_collator_masks_nothing_and_passes_the_targets_through(tokenized):
    tokenizer, rows = tokenized
    samples = [{"sample": f"S{i}", "input_ids": row["gene_ids"], "level_ids": row["level_ids"],
                "values": row["values"], "labels": i % 2, "survival_time": 10.0 + i, "event": float(i % 2)}
               for i, row in enumerate(rows[:6])]
    batch = DataCollatorForExpressionFinetuning(tokenizer)(samples)
    assert set(batch) == {"input_ids", "level_ids", "values", "attention_mask", "labels", "survival_time", "event"}
    assert batch["labels"].tolist() == [0, 1, 0, 1, 0, 1] and batch["labels"].dtype == torch.int64
    assert batch["survival_time"].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    assert (batch["level_ids"] != MASK_LEVEL_ID).all()  # no restoration target in fine-tuning
    known = truth(rows[:6])
    for s in range(6):
        for gene, level in zip(batch["input_ids"][s, 1:], batch["level_ids"][s, 1:], strict=True):
            if gene != tokenizer.pad_token_id:
                assert known[(s, int(gene))][0] == int(level)
    with pytest.raises(TypeError):
        DataCollatorForExpressionFinetuning(tokenizer, mask_fraction=0.15)


def test_finetuning_collator_reads_the_label_aliases_and_legacy_columns(tokenized):
    tokenizer, rows = tokenized
    for alias in ("label", "label_ids"):
        samples = [{"gene_ids": row["gene_ids"], "level_ids": row["level_ids"], "values": row["values"], alias: 1}
                   for row in rows[:3]]
        assert DataCollatorForExpressionFinetuning(tokenizer)(samples)["labels"].tolist() == [1, 1, 1]


def test_datasets_built_with_the_old_column_names_are_renamed():
    import datasets

    from gexbert_hf.data.encoding import with_model_column_names

    legacy = datasets.Dataset.from_dict({"gene_ids": [[2, 3]], "level_ids": [[4, 5]], "label": [1]})
    assert with_model_column_names(legacy).column_names == ["input_ids", "level_ids", "labels"]
    renamed = with_model_column_names(datasets.DatasetDict({"train": legacy, "test": legacy}))
    assert renamed["test"].column_names == ["input_ids", "level_ids", "labels"]
    current = datasets.Dataset.from_dict({"input_ids": [[2, 3]], "labels": [0]})
    assert with_model_column_names(current) is current


def test_a_mask_rate_range_draws_each_samples_rate_and_always_leaves_one_gene_visible(tokenized):
    tokenizer, rows = tokenized
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=50, mask_fraction=0.1, max_mask_fraction=0.95,
                                                seed=3)
    counts = []
    for _ in range(6):
        batch = collator(rows)
        counts += (batch["labels"] != -100).sum(dim=1).tolist()
    assert min(counts) >= round(0.1 * 50) and max(counts) <= 49  # within the range; one of 50 genes stays visible
    assert len(set(counts)) > 10  # a rate per sample, not one per batch
    assert max(counts) >= 40 and min(counts) <= 15  # both ends of the range are met
    fixed = DataCollatorForMaskedExpression(tokenizer, max_genes=50, mask_fraction=0.5, seed=3)
    assert set((fixed(rows)["labels"] != -100).sum(dim=1).tolist()) == {25}
    with pytest.raises(ValueError, match="max_mask_fraction"):
        DataCollatorForMaskedExpression(tokenizer, mask_fraction=0.5, max_mask_fraction=0.3)
    with pytest.raises(ValueError, match="max_mask_fraction"):
        DataCollatorForMaskedExpression(tokenizer, mask_fraction=0.1, max_mask_fraction=1.0)
