"""GexBERT configuration.

This file travels with every checkpoint as hub remote code, so it imports nothing but transformers (and pathlib).
"""

from pathlib import Path

from transformers import PretrainedConfig

# Level ids below LEVEL_OFFSET are special tokens; expression level k is encoded as LEVEL_OFFSET + k.
PAD_LEVEL_ID = 0
MISSING_LEVEL_ID = 1
MASK_LEVEL_ID = 2
LEVEL_OFFSET = 3

VALUE_EMBEDDINGS = ("level", "continuous", "both")
POOLINGS = ("cls", "mean")
TIE_METHODS = ("breslow", "efron")


class GexBertConfig(PretrainedConfig):
    r"""
    Configuration of a GexBERT model: a set transformer over (gene, expression) tokens.

    Args:
        vocab_size (`int`): number of gene tokens including the special tokens (padding and CLS).
        num_levels (`int`): number of discrete expression levels per gene (the tokenizer's quantile bins).
        hidden_size (`int`): width of every token representation.
        num_hidden_layers (`int`): encoder depth.
        num_attention_heads (`int`): attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`): width of the feed-forward block (default `4 * hidden_size`).
        decoder_num_layers (`int`): transformer layers of the restoration decoder of `GexBertForMaskedExpression`.
        encoder_skips_queries (`bool`): the asymmetric masked-autoencoder layout (MAE / ReMasker) of
            `GexBertForMaskedExpression`: its encoder reads the measured tokens only (CLS, levels, MISSING) and the
            MASK tokens join in the decoder, so encoder compute shrinks with the masked share (a tenth at 90%).
            Off by default: the encoder reads every token, as every checkpoint before it was trained.
        hidden_act (`str`): activation of the feed-forward block.
        hidden_dropout_prob (`float`): dropout on embeddings and residual branches.
        attention_probs_dropout_prob (`float`): dropout on attention weights. Off by default: any attention dropout
            forces sdpa onto its math kernel during training, which materialises the genes x genes weights and made
            a 1,024-gene training step 3x slower on CPU (reports/speed), with no measured gain in restoration.
        classifier_dropout (`float`): dropout before the classification and survival heads.
        classifier_reads_values (`bool`): the classification head reads, beside the pooled embedding, one slot per
            vocabulary gene: the standardised value of each measured input gene and, for MASK queries and MISSING
            values, the expected level (share of the level range) restored by a decoder and level head carried
            over from the masked-expression checkpoint: the linear probe's inputs (`panel + restored -> LR`), so
            that `gexbert finetune` can start from the probe's solution. Off by default: the pooled embedding only,
            as every classifier saved before it.
        classifier_hidden_size (`int`): with `classifier_reads_values`, a one-hidden-layer MLP of this width on the
            same standardised features whose logits add to the linear classifier's (its output layer starts at zero,
            so the head starts as the linear probe); 0: the linear classifier alone.
        layer_norm_eps (`float`): epsilon of every LayerNorm.
        initializer_range (`float`): standard deviation of the normal weight initialisation.
        pooling (`str`): `"cls"` (the CLS token) or `"mean"` (mean over gene tokens) sample embedding.
        max_genes (`int`): genes sampled per sample and training step (attention cost grows with its square);
            inference accepts any number of genes.
        value_embedding (`str`): how a gene's value enters its token. `"level"`: the paper's embedding of the
            discretised level; `"continuous"`: a small MLP of the standardised value; `"both"`: their sum.
        regression_loss_weight (`float`): weight of the value-regression loss beside the level cross-entropy.
        survival_ties (`str`): tie handling of the Cox partial likelihood, `"breslow"` or `"efron"`.
        pad_token_id (`int`): gene id of padding. cls_token_id (`int`): gene id of the CLS token.
        tokenizer_fingerprint (`str`, *optional*): hash of the tokenizer's genes, level count and normalisation,
            set by `from_tokenizer`; loading, imputation and fine-tuning refuse a tokenizer whose fingerprint differs.
        panel_genes (`list[str]`, *optional*): the genes a fine-tuned head reads (set by `gexbert finetune` with a
            panel); prediction keeps only these and counts the absent ones as not measured. None: any gene.
        query_unseen (`bool`): the head was fine-tuned with every vocabulary gene outside `panel_genes` entering as a
            MASK query (restored, not read), and prediction does the same.
        max_queries (`int`, *optional*): at most this many such query genes (a `panel_seed` subsample); None: all.
        panel_seed (`int`): seed of the random panel and of the query subsample, so prediction draws the same genes.
        base_model (`str`, *optional*): name, hub id or path of the checkpoint this model was adapted or fine-tuned
            from, so a derived model says where its encoder came from.
        training_samples_hash (`dict`, *optional*): salted hashes of the training sample ids,
            `{"salt": str, "hashes": [str, ...]}`: lets a later evaluation refuse samples the model was trained on
            without shipping the ids themselves.
        adaptation (`dict`, *optional*): the recipe `gexbert adapt` used (its options and data description), so an
            adapted checkpoint can be reproduced.

    Every field has a default, so a `config.json` written before a field existed loads with that default.
    """

    model_type = "gexbert"

    def __init__(
        self,
        vocab_size: int = 1026,
        num_levels: int = 32,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int | None = None,
        decoder_num_layers: int = 1,
        encoder_skips_queries: bool = False,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.0,
        classifier_dropout: float = 0.1,
        classifier_reads_values: bool = False,
        classifier_hidden_size: int = 0,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        pooling: str = "mean",
        max_genes: int = 512,
        value_embedding: str = "level",
        regression_loss_weight: float = 1.0,
        survival_ties: str = "efron",
        pad_token_id: int = 0,
        cls_token_id: int = 1,
        tokenizer_fingerprint: str | None = None,
        panel_genes: list[str] | None = None,
        query_unseen: bool = False,
        max_queries: int | None = None,
        panel_seed: int = 0,
        base_model: str | None = None,
        training_samples_hash: dict | None = None,
        adaptation: dict | None = None,
        **kwargs,
    ):
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of num_attention_heads ({num_attention_heads})"
            )
        if value_embedding not in VALUE_EMBEDDINGS:
            raise ValueError(f"value_embedding must be one of {VALUE_EMBEDDINGS}, got {value_embedding!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if survival_ties not in TIE_METHODS:
            raise ValueError(f"survival_ties must be one of {TIE_METHODS}, got {survival_ties!r}")
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.num_levels = num_levels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size or 4 * hidden_size
        self.decoder_num_layers = decoder_num_layers
        self.encoder_skips_queries = encoder_skips_queries
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.classifier_dropout = classifier_dropout
        self.classifier_reads_values = classifier_reads_values
        self.classifier_hidden_size = classifier_hidden_size
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.pooling = pooling
        self.max_genes = max_genes
        self.value_embedding = value_embedding
        self.regression_loss_weight = regression_loss_weight
        self.survival_ties = survival_ties
        self.cls_token_id = cls_token_id
        self.tokenizer_fingerprint = tokenizer_fingerprint
        self.panel_genes = list(panel_genes) if panel_genes is not None else None
        self.query_unseen = query_unseen
        self.max_queries = max_queries
        self.panel_seed = panel_seed
        self.base_model = base_model
        self.training_samples_hash = training_samples_hash
        self.adaptation = adaptation

    @property
    def level_vocab_size(self) -> int:
        """Expression levels plus the padding, MISSING and MASK level tokens."""
        return self.num_levels + LEVEL_OFFSET

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "GexBertConfig":
        """Standard loading; a shipped checkpoint's name (`tcga31-mirna`) reads the package's own copy, offline."""
        return super().from_pretrained(shipped_checkpoint_folder(pretrained_model_name_or_path), **kwargs)

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "GexBertConfig":
        """A config whose vocabulary and levels match a fitted `GexBertTokenizer`, with its fingerprint recorded."""
        return cls(
            vocab_size=tokenizer.vocab_size,
            num_levels=tokenizer.num_levels,
            pad_token_id=tokenizer.pad_token_id,
            cls_token_id=tokenizer.cls_token_id,
            tokenizer_fingerprint=getattr(tokenizer, "fingerprint", None),
            **kwargs,
        )


# ----------------------------------------------------------------------------------------------------------------------
# shipped checkpoints by name, for every `from_pretrained` (config, models, tokenizer)
# ----------------------------------------------------------------------------------------------------------------------
def shipped_checkpoint_folder(name_or_path):
    """`"tcga31-mirna"` -> the package's own copy (`gexbert_hf/pretrained/tcga31-mirna`), so a shipped name loads
    offline instead of being looked up on the hub. Anything else comes back unchanged: a hub id (`owner/name`), an
    existing folder (a user's own `./tcga31-mirna` wins), and every name when this file runs as remote code, where
    no `pretrained` folder lies beside it."""
    if isinstance(name_or_path, str) and name_or_path and "/" not in name_or_path and "\\" not in name_or_path \
            and not Path(name_or_path).exists():
        folder = Path(__file__).resolve().parent / "pretrained" / name_or_path
        if (folder / "config.json").is_file():
            return str(folder)
    return name_or_path


__all__ = ["GexBertConfig", "shipped_checkpoint_folder"]
