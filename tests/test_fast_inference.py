"""The CPU imputation levers of issue 22 (gexbert_hf/fast_inference.py): int8 dynamic quantization within a stated
tolerance of fp32, bounded-context passes that are `impute` when the profile fits and read bounded groups when it
does not, and the bf16 capability check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gexbert_hf import ExpressionInputError, GexBertForMaskedExpression, fast_inference, impute
from gexbert_hf.fast_inference import (
    cpu_autocast,
    cpu_has_native_bf16,
    gene_groups,
    impute_in_passes,
    quantize_linear_int8,
    quantized_linear_names,
)

# int8 tolerance on the restored values (working scale) of this tiny untrained model; on the shipped tcga13-mrna
# (z-scores) the mean change was 0.013, the largest 1.2, and RMSE / per-gene r moved by <= 0.0005 at 50/70/90% MCAR
# (reports/speed_release/levers/report.md)
INT8_MAX_ABS_CHANGE = 0.25
INT8_MEAN_ABS_CHANGE = 0.03


@pytest.fixture()
def model(tiny_config):
    torch.manual_seed(0)
    return GexBertForMaskedExpression(tiny_config).eval()


@pytest.fixture()
def holed(embedded_cohort):
    frame = embedded_cohort.expression.iloc[:12]
    holes = np.random.default_rng(0).random(frame.shape) < 0.5
    return frame.mask(holes), holes


def test_quantized_copy_runs_int8_blocks_and_leaves_the_model_untouched(model):
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    names = quantized_linear_names(model)
    blocks = model.config.num_hidden_layers + model.config.decoder_num_layers
    assert len(names) == 4 * blocks  # qkv, attention output, intermediate, feed-forward output per block
    quantized = quantize_linear_int8(model)
    modules = dict(quantized.named_modules())
    assert all(isinstance(modules[name], torch.ao.nn.quantized.dynamic.Linear) for name in names)
    assert isinstance(modules["level_head"], torch.nn.Linear)  # the 32-level head stays fp32
    assert all(isinstance(module, torch.nn.Linear) for name, module in model.named_modules() if name in names)
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_int8_imputation_matches_fp32_within_tolerance(model, embedded_tokenizer, holed):
    masked, holes = holed
    reference = impute(model, embedded_tokenizer, masked)[0].to_numpy()
    quantized = impute(quantize_linear_int8(model), embedded_tokenizer, masked)[0].to_numpy()
    change = np.abs(quantized - reference)[holes]
    assert change.max() < INT8_MAX_ABS_CHANGE and change.mean() < INT8_MEAN_ABS_CHANGE
    assert change.max() > 0  # the int8 path really ran
    np.testing.assert_array_equal(quantized[~holes], reference[~holes])


def test_passes_equal_impute_when_the_profile_fits_in_one(model, embedded_tokenizer, holed):
    masked, _ = holed
    whole = impute(model, embedded_tokenizer, masked)
    passes = impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=10_000)
    for ours, theirs in zip(passes, whole, strict=True):
        assert ours.equals(theirs)


def test_bounded_passes_read_bounded_groups_and_fill_like_impute(model, embedded_tokenizer, holed, monkeypatch):
    masked, holes = holed
    widths = []

    def recording_impute(model, tokenizer, frame, *args, **kwargs):
        widths.append(frame.shape[1] + len(kwargs.get("genes") or []))
        return impute(model, tokenizer, frame, *args, **kwargs)

    monkeypatch.setattr(fast_inference, "impute", recording_impute)
    filled, uncertainty = impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=8)
    n_genes = masked.shape[1]
    assert len(widths) > 1 and sum(widths) == n_genes and max(widths) <= 2 * 8 / 0.5 * 1.2
    whole = impute(model, embedded_tokenizer, masked)[0]
    assert filled.index.equals(whole.index) and filled.columns.equals(whole.columns)
    assert not filled.isna().any().any()
    np.testing.assert_array_equal(filled.to_numpy()[~holes], masked.to_numpy()[~holes])
    assert (uncertainty.to_numpy()[~holes] == 0).all() and (uncertainty.to_numpy()[holes] > 0).all()
    again = impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=8)[0]
    assert again.equals(filled)  # seeded groups: the same call, the same imputation
    assert not np.allclose(filled.to_numpy()[holes], whole.to_numpy()[holes])  # a narrower context really was read


def test_bounded_passes_restore_requested_absent_genes(model, embedded_tokenizer, embedded_cohort):
    panel = embedded_cohort.expression.iloc[:4, :30]
    wanted = list(embedded_cohort.expression.columns[40:46])
    filled, uncertainty = impute_in_passes(model, embedded_tokenizer, panel, genes=wanted, measured_per_pass=6)
    assert list(filled.columns) == [*panel.columns, *wanted]
    assert not filled[wanted].isna().any().any() and (uncertainty[wanted].to_numpy() > 0).all()


def test_gene_groups_partition_the_genes_in_balanced_seeded_groups():
    groups = gene_groups(100, 0.5, 10)
    assert len(groups) == 5 and sorted(np.concatenate(groups).tolist()) == list(range(100))
    assert {len(group) for group in groups} == {20}
    assert all(np.array_equal(a, b) for a, b in zip(groups, gene_groups(100, 0.5, 10), strict=True))
    assert len(gene_groups(100, 0.1, 10)) == 1  # sparse profiles: few measured genes, the whole profile fits
    with pytest.raises(ExpressionInputError, match="measured_per_pass"):
        gene_groups(100, 0.5, 0)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    without, with_amx = tmp_path / "avx2", tmp_path / "amx"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16(without) and cpu_has_native_bf16(with_amx)
    assert not cpu_has_native_bf16(tmp_path / "absent")
    with pytest.raises(ValueError, match="dtype"):
        cpu_autocast("fp16")


def test_embedding_grouping_keeps_similar_genes_together_in_balanced_groups(model, embedded_tokenizer, holed):
    rng = np.random.default_rng(0)
    centres = np.zeros((4, 8))
    centres[:, 0] = [0, 10, 20, 30]
    vectors = np.repeat(centres, 25, axis=0) + rng.normal(size=(100, 8))  # 4 clusters of 25 genes
    shuffled = rng.permutation(100)
    groups = [shuffled[g] for g in gene_groups(100, 0.5, 12, vectors=vectors[shuffled])]  # 5 groups of 20
    assert sorted(np.concatenate(groups).tolist()) == list(range(100)) and {len(g) for g in groups} == {20}
    assert max(len(set((group // 25).tolist())) for group in groups) <= 2  # one cluster, or the seam of two

    def spread(partition):
        return np.mean([vectors[group, 0].std() for group in partition])  # along the axis the clusters differ

    assert spread(groups) < 0.5 * spread(gene_groups(100, 0.5, 12))  # far tighter than seeded random groups
    masked, _ = holed
    random = impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=8, grouping="random")[0]
    by_embedding = impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=8)[0]
    assert by_embedding.columns.equals(random.columns) and not by_embedding.equals(random)
    with pytest.raises(ExpressionInputError, match="grouping"):
        impute_in_passes(model, embedded_tokenizer, masked, measured_per_pass=8, grouping="alphabetical")
