"""GexBertTokenizer: fitting, encoding, bad input, queries, persistence and decoding."""

import numpy as np
import pandas as pd
import pytest

from gexbert_hf import ExpressionInputError, GexBertTokenizer
from gexbert_hf.configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID


@pytest.fixture()
def counts():
    rng = np.random.default_rng(0)
    data = rng.poisson(rng.uniform(1, 200, size=12), size=(40, 12)).astype(float)
    return pd.DataFrame(data, index=[f"S{i}" for i in range(40)], columns=[f"G{j}" for j in range(12)])


def test_fit_builds_vocabulary_and_per_gene_levels(counts):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    assert tokenizer.genes == list(counts.columns)
    assert tokenizer.vocab_size == 12 + 2
    assert tokenizer.level_edges.shape == (12, 7) and tokenizer.level_values.shape == (12, 8)
    assert np.all(np.diff(tokenizer.level_edges, axis=1) >= 0)
    encoded = tokenizer.encode(counts)
    levels = encoded["level_ids"] - LEVEL_OFFSET
    assert levels.min() >= 0 and levels.max() <= 7
    # quantile levels: each level of a gene holds roughly an equal share of the training samples
    shares = np.bincount(levels[:, 3], minlength=8) / 40
    assert shares.max() < 0.35


def test_levels_are_robust_to_extreme_outliers():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(200, 3))
    values[0, 0] = 3.7e4  # tcga13 holds z-scores this large
    frame = pd.DataFrame(values, columns=["A", "B", "C"])
    tokenizer = GexBertTokenizer.fit(frame, normalization="none", num_levels=10)
    levels = tokenizer.encode(frame)["level_ids"][:, 0] - LEVEL_OFFSET
    assert np.bincount(levels, minlength=10).min() >= 15  # the outlier did not squash the others into one level
    assert abs(tokenizer.center[0]) < 0.3 and 0.7 < tokenizer.scale[0] < 1.3  # winsorised scale
    assert tokenizer.encode(frame)["values"][0, 0] == pytest.approx(tokenizer.value_clip)


def test_call_returns_model_inputs_with_cls_and_leaves_missing_values_out(counts):
    """The one rule for a missing value (inputs_gexbert): left out of the input, or a MASK query in its place when
    it is to be restored; never the untrained MISSING token."""
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    batch = counts.iloc[:3].copy()
    batch.iloc[1, 2] = np.nan
    inputs = tokenizer(batch, return_tensors="pt")
    assert set(inputs) == {"input_ids", "level_ids", "values", "attention_mask"}
    assert tuple(inputs["input_ids"].shape) == (3, 13)
    assert (inputs["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert tokenizer.convert_ids_to_genes(inputs["input_ids"][1].tolist()).count("G2") == 0  # left out
    assert inputs["attention_mask"][1].sum() == 12 and inputs["attention_mask"][[0, 2]].all()
    assert not (inputs["level_ids"] == MISSING_LEVEL_ID).any()
    restore = tokenizer(batch, return_tensors="pt", missing="restore")
    assert restore["level_ids"][1, 3] == MASK_LEVEL_ID and restore["values"][1, 3] == 0.0
    assert restore["attention_mask"].all()


def test_queries_enter_as_mask_tokens(counts):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    inputs = tokenizer(counts.iloc[:2, :5], queries=["G9", "G2"], return_tensors="np")
    genes = tokenizer.convert_ids_to_genes(inputs["input_ids"][0])
    assert genes[0] == "[CLS]" and genes[-2:] == ["G9", "G2"] and genes.count("G2") == 1
    assert list(inputs["level_ids"][0, -2:]) == [MASK_LEVEL_ID, MASK_LEVEL_ID]
    with pytest.raises(ExpressionInputError, match="NOT_A_GENE"):
        tokenizer(counts.iloc[:2], queries=["NOT_A_GENE"])


def test_pad_pads_ragged_samples_per_batch(counts):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    features = [
        {"input_ids": [2, 3, 4], "level_ids": [3, 4, 5], "values": [0.1, 0.2, 0.3]},
        {"input_ids": [5], "level_ids": [6], "values": [0.5]},
    ]
    batch = tokenizer.pad(features, return_tensors="np")
    assert batch["input_ids"].shape == (2, 4)
    assert list(batch["attention_mask"][1]) == [1, 1, 0, 0]
    assert batch["input_ids"][1, 2] == tokenizer.pad_token_id and batch["level_ids"][1, 3] == PAD_LEVEL_ID


def test_unknown_genes_are_dropped_with_one_warning(counts):
    tokenizer = GexBertTokenizer.fit(counts.iloc[:, :8], normalization="log1p", num_levels=8)
    with pytest.warns(UserWarning, match=r"4 of 12 genes are unknown.*G8") as caught:
        inputs = tokenizer(counts.iloc[:2], return_tensors="np")
    assert len(caught) == 1
    assert inputs["input_ids"].shape == (2, 9)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.assign(G1=f["G1"].astype(object).where(f.index != "S3", "high")), r"'high'.*G1.*S3"),
        (lambda f: f.assign(G2=f["G2"].where(f.index != "S4", np.inf)), r"infinite.*G2.*S4"),
        (lambda f: f.rename(columns={"G5": "G4"}), r"duplicated genes: G4"),
        (lambda f: f.rename(index={"S1": "S0"}), r"duplicated sample ids: S0"),
        (lambda f: f.mask(f.index.to_series().eq("S7"), axis=0), r"no measured gene.*S7"),
        (lambda f: f.assign(G3=-f["G3"] - 1), r"log1p.*non-negative.*G3"),
    ],
    ids=["non-numeric", "inf", "duplicated-gene", "duplicated-sample", "empty-sample", "negative-for-log1p"],
)
def test_bad_input_raises_naming_the_culprit(counts, mutate, message):
    with pytest.raises(ExpressionInputError, match=message):
        GexBertTokenizer.fit(mutate(counts), normalization="log1p")


def test_numpy_input_needs_matching_gene_names(counts):
    with pytest.raises(ExpressionInputError, match="11 gene names for 12 columns"):
        GexBertTokenizer.fit(counts.to_numpy(), genes=list(counts.columns[:11]))
    tokenizer = GexBertTokenizer.fit(counts.to_numpy(), genes=list(counts.columns), num_levels=4)
    assert tokenizer.genes == list(counts.columns)


def test_duplicated_genes_can_be_aggregated(counts):
    frame = counts.rename(columns={"G5": "G4"})
    tokenizer = GexBertTokenizer.fit(frame, normalization="log1p", num_levels=4, aggregate="mean")
    assert tokenizer.genes.count("G4") == 1 and len(tokenizer.genes) == 11


def test_save_and_load_round_trip_exactly(counts, tmp_path):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    tokenizer.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.bin"))
    loaded = GexBertTokenizer.from_pretrained(tmp_path)
    assert loaded.genes == tokenizer.genes and loaded.normalization == "log1p"
    for name in ("level_edges", "level_values", "center", "scale"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tokenizer, name))
    a, b = tokenizer(counts, return_tensors="np"), loaded(counts, return_tensors="np")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_predicted_levels_decode_to_the_original_scale(counts):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=16)
    encoded = tokenizer.encode(counts)
    one_hot = np.eye(16)[encoded["level_ids"] - LEVEL_OFFSET]
    mean, std = tokenizer.level_distribution_moments(one_hot, encoded["gene_ids"])
    assert np.allclose(std, 0.0)
    restored = tokenizer.denormalize(mean)
    relative = np.abs(restored - counts.to_numpy()) / (counts.to_numpy() + 1)
    assert np.median(relative) < 0.1  # a level's value sits inside its quantile bin


def test_interval_widens_with_uncertainty(counts):
    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=16)
    gene_ids = tokenizer.convert_genes_to_ids(["G0"])
    sharp = np.zeros((1, 16))
    sharp[0, 8] = 1.0
    flat = np.full((1, 16), 1 / 16)
    sharp_low, sharp_high = tokenizer.level_distribution_interval(sharp, gene_ids)
    flat_low, flat_high = tokenizer.level_distribution_interval(flat, gene_ids)
    assert sharp_low == sharp_high
    assert flat_low < sharp_low and flat_high > sharp_high


def test_zero_inflated_gene_keeps_rare_values_in_their_own_level():
    """97% zeros make every quantile edge 0; the zeros and the rare expressed values must still get different
    levels, and each level must decode to its training mean (not to the tie value)."""
    values = np.zeros((200, 2))
    values[:6, 0] = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    values[:, 1] = np.arange(200)
    tokenizer = GexBertTokenizer.fit(pd.DataFrame(values, columns=["rare", "dense"]), normalization="none",
                                     num_levels=8)
    levels = tokenizer.encode(pd.DataFrame(values, columns=["rare", "dense"]))["level_ids"][:, 0] - LEVEL_OFFSET
    assert len(set(levels[:6])) == 1 and levels[0] != levels[6]
    assert tokenizer.level_values[0, levels[0]] == pytest.approx(7.5)  # median (= mean) of the expressed values
    assert tokenizer.level_values[0, levels[6]] == 0.0
    assert tokenizer.level_values[1, 0] == pytest.approx(np.arange(25).mean())  # a level decodes to its mean


@pytest.mark.parametrize("normalization", ["none", "log1p"])
def test_one_extreme_training_value_does_not_poison_the_decoded_levels(normalization):
    """One 1e300 cell used to make its gene's top level decode to ~1e298 (the mean of that level)."""
    rng = np.random.default_rng(2)
    values = rng.gamma(2.0, 20.0, size=(200, 3))
    values[7, 1] = 1e300
    frame = pd.DataFrame(values, columns=["A", "B", "C"])
    tokenizer = GexBertTokenizer.fit(frame, normalization=normalization, num_levels=16)
    others = np.delete(values[:, 1], 7)
    decoded = tokenizer.denormalize(tokenizer.level_values[1])
    assert others.min() - 1e-9 <= decoded.min() and decoded.max() <= others.max() + 1e-9
    assert tokenizer.encode(frame)["level_ids"][7, 1] - LEVEL_OFFSET == 15  # it still lands in the top level


def test_no_tcga13_gene_decodes_above_its_99th_percentile(shared_data_dir):
    """On the real tcga13 train split DEFA5's top level decoded to 338 (z-score) with a 99th percentile of 4.3."""
    from gexbert_hf.data.encoding import fit_tokenizer
    from gexbert_hf.data.readers import load_cohort, load_split

    folder = shared_data_dir / "tcga13_cbioportal_zscore"
    cohort, split = load_cohort(folder), load_split(folder)
    rows = cohort.expression.index.get_indexer(split.index[split == "train"])
    tokenizer = fit_tokenizer(cohort.expression, rows, normalization="none", num_levels=32)
    train = cohort.expression.iloc[rows][tokenizer.genes]
    q99 = np.nanquantile(train.to_numpy(), 0.99, axis=0)
    assert tokenizer.level_values[tokenizer.genes.index("DEFA5"), -1] < 4.3
    assert (tokenizer.level_values[:, -1] <= q99).all()
    q01 = np.nanquantile(train.to_numpy(), 0.01, axis=0)
    assert (tokenizer.level_values[:, 0] >= q01).all()


def test_config_records_the_tokenizer_fingerprint_and_a_mismatch_is_refused_by_name(counts):
    from gexbert_hf import GexBertConfig
    from gexbert_hf.errors import TokenizerMismatchError
    from gexbert_hf.loading import check_tokenizer_matches

    tokenizer = GexBertTokenizer.fit(counts, normalization="log1p", num_levels=8)
    config = GexBertConfig.from_tokenizer(tokenizer, hidden_size=16, num_attention_heads=2)
    assert config.tokenizer_fingerprint == tokenizer.fingerprint
    assert GexBertConfig.from_dict(config.to_dict()).tokenizer_fingerprint == tokenizer.fingerprint  # saved
    check_tokenizer_matches(tokenizer, config)
    renamed = GexBertTokenizer.fit(counts.rename(columns={"G3": "OTHER"}), normalization="log1p", num_levels=8)
    others = {
        "other genes": renamed,
        "levels": GexBertTokenizer.fit(counts, normalization="log1p", num_levels=6),
        "vocabulary size": GexBertTokenizer.fit(counts.iloc[:, :10], normalization="log1p", num_levels=8),
        "normalization 'none'": GexBertTokenizer.fit(counts, normalization="none", num_levels=8),
    }
    for difference, other in others.items():
        with pytest.raises(TokenizerMismatchError, match=f"my-model: the tokenizer does not belong.*{difference}"):
            check_tokenizer_matches(other, config, source="my-model")
    config.tokenizer_fingerprint = None  # a checkpoint saved before fingerprints: warn, still check the sizes
    with pytest.warns(UserWarning, match="no tokenizer_fingerprint"):
        check_tokenizer_matches(renamed, config)
    with pytest.raises(TokenizerMismatchError, match="levels"):
        check_tokenizer_matches(others["levels"], config)


@pytest.mark.parametrize("damage", ["truncated-arrays", "invalid-json", "missing-arrays"])
def test_damaged_tokenizer_files_raise_one_error_naming_the_file(counts, tmp_path, damage):
    from gexbert_hf.errors import ModelFileError

    GexBertTokenizer.fit(counts, num_levels=4).save_pretrained(tmp_path)
    arrays, config = tmp_path / "gexbert_tokenizer.safetensors", tmp_path / "gexbert_tokenizer.json"
    if damage == "truncated-arrays":
        arrays.write_bytes(arrays.read_bytes()[:-20])
    elif damage == "invalid-json":
        config.write_text(config.read_text()[:40])
    else:
        arrays.unlink()
    damaged = config if damage == "invalid-json" else arrays
    with pytest.raises(ModelFileError, match=rf"{damaged.name}: .*\(\w+Error: ") as caught:
        GexBertTokenizer.from_pretrained(tmp_path)
    assert "\n" not in str(caught.value)
