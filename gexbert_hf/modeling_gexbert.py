"""GexBERT: a set transformer autoencoder over bulk expression profiles (Jiang & Hassanpour, 2025).

A sample is a set of tokens, one per measured gene: gene-identity embedding + expression embedding, no positions.
Reads top to bottom in the shape of transformers' BERT / ESM: embeddings -> attention -> layer -> encoder ->
PreTrainedModel -> base model -> heads. Every forward takes transformers' keyword arguments (`TransformersKwargs`)
and passes them on; hidden states and attention weights are recorded by transformers' output capturing
(`_can_record_outputs`), `return_dict=False` tuples come from `can_return_tuple`.
This file travels with every checkpoint as hub remote code, so it imports only torch, transformers and its siblings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, can_return_tuple, logging
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .checkpoint_gexbert import complete_checkpoint, push_checkpoint
from .configuration_gexbert import (
    LEVEL_OFFSET,
    MASK_LEVEL_ID,
    MISSING_LEVEL_ID,
    PAD_LEVEL_ID,
    GexBertConfig,
    shipped_checkpoint_folder,
)

logger = logging.get_logger(__name__)

# What a forward accepts beyond its named inputs. transformers hands unknown keywords on to the attention function,
# which ignores them, so a misspelt `atention_mask` would run unmasked without a word: GexBERT refuses them by name.
FORWARD_KWARGS = frozenset(TransformersKwargs.__optional_keys__ | TransformersKwargs.__required_keys__)
# The targets of every GexBERT head: a head ignores the others' (one fine-tuning batch carries each sample's labels,
# survival time and event, whichever head reads it).
TARGET_NAMES = frozenset({"labels", "value_labels", "survival_time", "event"})


def forward_kwargs(model: nn.Module, kwargs: dict) -> dict:
    """`kwargs` without other heads' targets; `TypeError` naming any keyword that is neither a named input, a
    GexBERT target nor a `TransformersKwargs` key."""
    unknown = sorted(set(kwargs) - FORWARD_KWARGS - TARGET_NAMES)
    if unknown:
        raise TypeError(f"{type(model).__name__}.forward() got unexpected keyword argument(s) "
                        f"{', '.join(map(repr, unknown))}; it takes input_ids, level_ids, values, attention_mask, the "
                        f"targets {', '.join(sorted(TARGET_NAMES))} and transformers' {', '.join(sorted(FORWARD_KWARGS))}")
    return {key: value for key, value in kwargs.items() if key not in TARGET_NAMES}


# ----------------------------------------------------------------------------------------------------------------------
# Output dataclasses
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class MaskedExpressionOutput(ModelOutput):
    """Output of `GexBertForMaskedExpression`.

    loss: level cross-entropy + `regression_loss_weight` * value MSE, over target tokens only.
    level_logits: `(batch, genes, num_levels)` scores of each expression level; softmax gives the predictive
        distribution whose spread is the uncertainty of a restored value.
    value_predictions: `(batch, genes)` regression of the standardised value.
    pooler_output: `(batch, hidden)` the encoder's pooled sample embedding (`config.pooling`), read from the same
        pass, so restoring genes and embedding the sample cost one forward.
    With `config.encoder_skips_queries`, `pooler_output`, `hidden_states` and `attentions` are the encoder's over the
    measured tokens only (CLS first, then the measured genes in input order), as that layout's encoder sees them.
    """

    loss: torch.Tensor | None = None
    level_loss: torch.Tensor | None = None
    value_loss: torch.Tensor | None = None
    level_logits: torch.Tensor | None = None
    value_predictions: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SurvivalOutput(ModelOutput):
    """Output of `GexBertForSurvival`: `risk` is a log hazard ratio per sample (higher = earlier event)."""

    loss: torch.Tensor | None = None
    risk: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Embeddings
# ----------------------------------------------------------------------------------------------------------------------


class GexBertEmbeddings(nn.Module):
    """Token = gene-identity embedding + expression embedding. No positional embedding: a profile is a set."""

    def __init__(self, config: GexBertConfig):
        super().__init__()
        self.value_embedding = config.value_embedding
        self.gene_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        # Levels 0..2 are PAD / MISSING / MASK; they are used in every mode, since a missing or masked value has no
        # number to project.
        self.level_embeddings = nn.Embedding(config.level_vocab_size, config.hidden_size, padding_idx=PAD_LEVEL_ID)
        if config.value_embedding in ("continuous", "both"):
            self.value_projection = nn.Sequential(
                nn.Linear(1, config.hidden_size), nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)
            )
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        expression = self.level_embeddings(level_ids)
        if self.value_embedding != "level":
            if values is None:
                raise ValueError(f"value_embedding={self.value_embedding!r} needs the `values` input")
            has_value = (level_ids >= LEVEL_OFFSET).unsqueeze(-1)
            projected = self.value_projection(values.unsqueeze(-1).to(expression.dtype))
            if self.value_embedding == "continuous":
                expression = torch.where(has_value, projected, expression)
            else:
                expression = expression + projected * has_value
        embeddings = self.gene_embeddings(input_ids) + expression
        return self.dropout(self.LayerNorm(embeddings))


# ----------------------------------------------------------------------------------------------------------------------
# Attention and layers
# ----------------------------------------------------------------------------------------------------------------------


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; the only implementation that can return the attention weights."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attn_weights = attn_weights.masked_fill(~attention_mask, torch.finfo(attn_weights.dtype).min)
        else:
            attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class GexBertAttention(nn.Module):
    """Multi-head self-attention: query/key/value projection, the attention function transformers' interface picks
    (`config._attn_implementation`: sdpa, eager, ...), output projection."""

    def __init__(self, config: GexBertConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False  # a profile is a set: every gene sees every gene
        self.dropout = config.attention_probs_dropout_prob
        # Query, key and value in one fused projection (rows q | k | v): three small matmuls cost more than one on
        # CPU and GPU alike. The weight name `qkv` is what the shipped checkpoints hold.
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # sdpa never materialises attention weights: a pass that records them runs eager
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self, query, key, value, attention_mask,
            dropout=self.dropout if self.training else 0.0, scaling=self.scaling, **kwargs,
        )
        return self.output(attn_output.reshape(batch, length, -1)), attn_weights


class GexBertLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm transformer block: trains stably at the higher learning rates short pretraining budgets need."""

    def __init__(self, config: GexBertConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GexBertAttention(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.feed_forward_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attended, _ = self.attention(self.attention_norm(hidden_states), attention_mask, **kwargs)
        hidden_states = hidden_states + self.dropout(attended)
        feed_forward = self.feed_forward_output(self.activation(self.intermediate(self.feed_forward_norm(hidden_states))))
        return hidden_states + self.dropout(feed_forward)


class GexBertEncoder(nn.Module):
    """A stack of layers and the final LayerNorm (pre-LN blocks leave their sum unnormalised)."""

    def __init__(self, config: GexBertConfig, num_layers: int):
        super().__init__()
        self.layer = nn.ModuleList([GexBertLayer(config) for _ in range(num_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutput:
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask, **kwargs)
        return BaseModelOutput(last_hidden_state=self.final_norm(hidden_states))


def expand_attention_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """`(batch, genes)` 1/0 mask -> `(batch, 1, 1, genes)` boolean key mask; None when nothing is padded, so that
    sdpa can pick its fastest kernel."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


# ----------------------------------------------------------------------------------------------------------------------
# Pretrained model base
# ----------------------------------------------------------------------------------------------------------------------


def _not_a_load_report(record) -> bool:
    """A logging filter: transformers' missing / unexpected keys table is left out (`from_pretrained` judges it)."""
    return "LOAD REPORT" not in str(record.msg)


class GexBertPreTrainedModel(PreTrainedModel):
    config_class = GexBertConfig
    config: GexBertConfig
    base_model_prefix = "gexbert"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # The losses are means over their own targets (no `num_items_in_batch`), so the Trainer must scale them for
    # gradient accumulation itself.
    accepts_loss_kwargs = False
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["GexBertEmbeddings", "GexBertLayer"]
    # The encoder's, as before the output capturing: hidden_states[0] the embeddings, then each layer's output
    # (the last one before `final_norm`, see `GexBertModel.forward`).
    _can_record_outputs = {"hidden_states": GexBertLayer, "attentions": OutputRecorder(GexBertAttention, index=1)}

    # What `save_pretrained` writes after transformers' files (model card, full `auto_map`, remote code): set here,
    # not by any import, so a save is the same with or without the package. A class attribute so that a caller can
    # swap it (a test simulating a full disk); it is called as `checkpoint_completer(model, save_directory)`.
    checkpoint_completer = complete_checkpoint

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Normal(0, `initializer_range`) weights and zero biases for linear maps and embeddings (the padding row
        zeroed), unit LayerNorms; the `transformers.initialization` functions skip weights loaded from a checkpoint."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """transformers' `save_pretrained`, then the model card, the full `auto_map` and the remote code."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self.checkpoint_completer(save_directory)

    def push_to_hub(self, repo_id: str, *, tokenizer=None, **kwargs):
        """Upload weights, remote code, this model's card and, when given, `tokenizer` (transformers' own upload
        would replace the card with a generic one). Options: `private`, `token`, `commit_message`, `revision`,
        `create_pr`."""
        return push_checkpoint(self, repo_id, tokenizer=tokenizer, **kwargs)

    # ------------------------------------------------------------------------------------------------------------------
    # from_pretrained: shipped checkpoints by name, and a load report only when something is really amiss
    # ------------------------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Standard loading; a shipped checkpoint's name (`tcga31-mirna`) reads the package's own copy, offline.

        A head built from another head's checkpoint (a classifier from a pretrained masked model) lacks its new
        weights and leaves the other head's aside: expected, so transformers' load report is not printed for it.
        Encoder weights missing or unexpected still are, as one warning."""
        path = shipped_checkpoint_folder(pretrained_model_name_or_path)
        if kwargs.get("output_loading_info"):
            return super().from_pretrained(path, *args, **kwargs)
        transformers_logger = logging.get_logger("transformers.modeling_utils")  # its level gates other checks
        transformers_logger.addFilter(_not_a_load_report)
        try:
            model, info = super().from_pretrained(path, *args, output_loading_info=True, **kwargs)
        finally:
            transformers_logger.removeFilter(_not_a_load_report)
        encoder, bare = f"{cls.base_model_prefix}.", isinstance(model, GexBertModel)  # the bare encoder: no prefix
        amiss = {"missing": sorted(key for key in info["missing_keys"] if bare or key.startswith(encoder)),
                 "unexpected": sorted(key for key in info["unexpected_keys"] if key.startswith(encoder))}
        if any(amiss.values()):
            logger.warning(f"{cls.__name__} from {path}: encoder weights " + "; ".join(
                f"{kind}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                for kind, keys in amiss.items() if keys))
        return model

    def _encode(self, input_ids, level_ids, values, attention_mask, output_hidden_states, output_attentions
                ) -> BaseModelOutputWithPooling:
        """A head's pass through its encoder, always as a `ModelOutput` (the head decides what it returns)."""
        return self.gexbert(input_ids, level_ids, values, attention_mask, output_hidden_states=output_hidden_states,
                            output_attentions=output_attentions, return_dict=True)


# ----------------------------------------------------------------------------------------------------------------------
# Base model
# ----------------------------------------------------------------------------------------------------------------------


class GexBertModel(GexBertPreTrainedModel):
    """Encoder returning per-gene hidden states and a pooled sample embedding (`config.pooling`)."""

    def __init__(self, config: GexBertConfig):
        super().__init__(config)
        self.embeddings = GexBertEmbeddings(config)
        self.encoder = GexBertEncoder(config, config.num_hidden_layers)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.gene_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.gene_embeddings = value

    def pool(self, last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None,
             pooling: str | None = None) -> torch.Tensor:
        """CLS token, or the mean over gene tokens (CLS and padding excluded); `pooling` defaults to the config's."""
        if (pooling or self.config.pooling) == "cls":
            return last_hidden_state[:, 0]
        weights = torch.ones(last_hidden_state.shape[:2], device=last_hidden_state.device, dtype=last_hidden_state.dtype)
        if attention_mask is not None:
            weights = weights * attention_mask.to(last_hidden_state.dtype)
        weights[:, 0] = 0.0  # the CLS token
        weights = weights.unsqueeze(-1)
        return (last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    # hidden_states[-1] stays the last layer's output before `final_norm` (what every release returned); the
    # normalised one is `last_hidden_state`
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids: `(batch, genes)` gene ids, position 0 being the CLS token (the tokenizer adds it).
        level_ids: `(batch, genes)` expression level ids (special ids below `LEVEL_OFFSET`: PAD, MISSING, MASK).
        values: `(batch, genes)` standardised values; used by the continuous value embedding.
        attention_mask: `(batch, genes)` 1 for real tokens, 0 for padding.
        """
        kwargs = forward_kwargs(self, kwargs)
        if input_ids.shape != level_ids.shape:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and level_ids {tuple(level_ids.shape)} differ")
        if kwargs.get("output_attentions") is None:  # the config's choice reaches the attention layers too
            kwargs["output_attentions"] = self.config.output_attentions
        embeddings = self.embeddings(input_ids, level_ids, values)
        encoded = self.encoder(embeddings, expand_attention_mask(attention_mask), **kwargs)
        return BaseModelOutputWithPooling(last_hidden_state=encoded.last_hidden_state,
                                          pooler_output=self.pool(encoded.last_hidden_state, attention_mask))


# ----------------------------------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------------------------------


class GexBertForMaskedExpression(GexBertPreTrainedModel):
    """Encoder + restoration decoder: predicts the level distribution and the value of masked and queried genes."""

    def __init__(self, config: GexBertConfig):
        super().__init__(config)
        self.gexbert = GexBertModel(config)
        self.decoder = GexBertEncoder(config, config.decoder_num_layers)
        self.level_head = nn.Linear(config.hidden_size, config.num_levels)
        self.value_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
        value_labels: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs],
    ) -> MaskedExpressionOutput:
        r"""
        labels: `(batch, genes)` target level index in `[0, num_levels)`, -100 where there is no target.
        value_labels: `(batch, genes)` target standardised value, NaN where there is no target.
        """
        kwargs = forward_kwargs(self, kwargs)
        if self.config.encoder_skips_queries:
            outputs, decoded = self._encode_measured_then_decode(input_ids, level_ids, values, attention_mask, **kwargs)
        else:
            outputs = self.gexbert(input_ids, level_ids, values, attention_mask, return_dict=True, **kwargs)
            decoded = self.decoder(outputs.last_hidden_state, expand_attention_mask(attention_mask)).last_hidden_state
        level_logits = self.level_head(decoded)
        value_predictions = self.value_head(decoded).squeeze(-1)
        loss, level_loss, value_loss = self._restoration_loss(level_logits, value_predictions, labels, value_labels)
        return MaskedExpressionOutput(
            loss=loss, level_loss=level_loss, value_loss=value_loss, level_logits=level_logits,
            value_predictions=value_predictions, pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )

    def _restoration_loss(self, level_logits: torch.Tensor, value_predictions: torch.Tensor,
                          labels: torch.Tensor | None, value_labels: torch.Tensor | None) -> tuple:
        """(loss, level loss, value loss): level cross-entropy + `regression_loss_weight` * value MSE over the
        target tokens; without any target a zero that still carries a gradient path (DDP ranks stay in step)."""
        loss = level_loss = value_loss = None
        if labels is not None:
            level_loss = nn.functional.cross_entropy(
                level_logits.float().reshape(-1, self.config.num_levels), labels.reshape(-1), ignore_index=-100
            ) if bool((labels != -100).any()) else level_logits.sum() * 0.0
            loss = level_loss
        if value_labels is not None:
            has_target = torch.isfinite(value_labels)
            value_loss = (nn.functional.mse_loss(value_predictions.float()[has_target], value_labels[has_target].float())
                          if bool(has_target.any()) else value_predictions.sum() * 0.0)
            weighted = self.config.regression_loss_weight * value_loss
            loss = weighted if loss is None else loss + weighted
        return loss, level_loss, value_loss

    def _encode_measured_then_decode(self, input_ids, level_ids, values, attention_mask,
                                     **kwargs: Unpack[TransformersKwargs]
                                     ) -> tuple[BaseModelOutputWithPooling, torch.Tensor]:
        """MAE layout: the encoder reads only CLS and the measured tokens, so its cost shrinks with the masked share;
        the MASK queries (their input embeddings) join the encoded tokens in the decoder. Each row is reordered
        measured | queries | padding (a stable sort keeps CLS first), the encoder takes the leading columns, and the
        decoder output returns to the input's token order, so heads and loss see the usual layout."""
        real = torch.ones_like(level_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        query = real & (level_ids == MASK_LEVEL_ID)
        order = torch.sort(query.long() + 2 * (~real).long(), dim=1, stable=True).indices
        ids, levels = input_ids.gather(1, order), level_ids.gather(1, order)
        vals = None if values is None else values.gather(1, order)
        counts = (real & ~query).sum(1)
        width = int(counts.max())
        measured = torch.arange(ids.shape[1], device=ids.device) < counts[:, None]  # in the reordered rows
        outputs = self.gexbert(ids[:, :width], levels[:, :width], None if vals is None else vals[:, :width],
                               measured[:, :width].long(), return_dict=True, **kwargs)
        encoded = nn.functional.pad(outputs.last_hidden_state, (0, 0, 0, ids.shape[1] - width))
        tokens = torch.where(measured.unsqueeze(-1), encoded, self.gexbert.embeddings(ids, levels, vals))
        decoded = self.decoder(tokens, expand_attention_mask(real.gather(1, order))).last_hidden_state
        return outputs, decoded.gather(1, order.argsort(1).unsqueeze(-1).expand_as(decoded))


class GexBertForSequenceClassification(GexBertPreTrainedModel):
    """Pooled sample embedding -> classes (single-label, multi-label or regression, as BERT's head).

    With `config.classifier_reads_values` the head reads `classifier_features` instead: the pooled embedding and one
    slot per vocabulary gene (measured value, or the expected level the restoration decoder gives a MASK query),
    standardised by the `feature_shift` / `feature_scale` buffers, into the linear classifier plus, with
    `config.classifier_hidden_size`, an MLP branch whose logits add to it; the decoder and level head keep the names
    of `GexBertForMaskedExpression`'s, so `from_pretrained` of a masked-expression checkpoint fills them.
    """

    def __init__(self, config: GexBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.gexbert = GexBertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        width = config.hidden_size
        if getattr(config, "classifier_reads_values", False):
            self.decoder = GexBertEncoder(config, config.decoder_num_layers)
            self.level_head = nn.Linear(config.hidden_size, config.num_levels)
            width += config.vocab_size
            self.register_buffer("feature_shift", torch.zeros(width))
            self.register_buffer("feature_scale", torch.ones(width))
        self.classifier = nn.Linear(width, config.num_labels)
        hidden = getattr(config, "classifier_hidden_size", 0) if getattr(config, "classifier_reads_values", False) else 0
        if hidden:  # a nonlinear branch beside the linear classifier (see the config)
            self.classifier_mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(),
                                                nn.Dropout(config.classifier_dropout),
                                                nn.Linear(hidden, config.num_labels))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """transformers' initialisation, and the identity standardisation where a checkpoint has none (a
        masked-expression checkpoint loaded into this head)."""
        super()._init_weights(module)
        if module is self and hasattr(self, "feature_scale"):
            self.feature_shift.zero_()
            self.feature_scale.fill_(1.0)

    def classifier_features(self, outputs: BaseModelOutputWithPooling, input_ids: torch.Tensor,
                            level_ids: torch.Tensor, values: torch.Tensor | None,
                            attention_mask: torch.Tensor | None) -> torch.Tensor:
        """What the classifier reads: the pooled embedding, and with `classifier_reads_values` one slot per
        vocabulary gene: the input's standardised value for a measured gene, the expected level restored by the
        decoder (as a share of the level range) for a MASK query or a MISSING value, 0 for genes absent from the
        sample; standardised by the head's buffers."""
        pooled = outputs.pooler_output
        if not getattr(self.config, "classifier_reads_values", False):
            return pooled
        decoded = self.decoder(outputs.last_hidden_state, expand_attention_mask(attention_mask)).last_hidden_state
        levels = torch.arange(self.config.num_levels, device=decoded.device, dtype=torch.float32)
        restored = torch.softmax(self.level_head(decoded).float(), -1) @ levels / (self.config.num_levels - 1)
        measured = torch.zeros_like(restored) if values is None else values.float()
        slot = torch.where(level_ids >= LEVEL_OFFSET, measured, restored)
        real = level_ids >= MISSING_LEVEL_ID  # gene tokens (CLS carries a level id below, as padding)
        if attention_mask is not None:
            real = real & attention_mask.bool()
        genes = torch.zeros(slot.shape[0], self.config.vocab_size, device=slot.device, dtype=slot.dtype)
        genes = genes.scatter_add(1, input_ids, torch.where(real, slot, torch.zeros_like(slot)))
        features = torch.cat([pooled.float(), genes], dim=-1)
        return ((features - self.feature_shift) / self.feature_scale).to(pooled.dtype)

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        kwargs = forward_kwargs(self, kwargs)
        outputs = self.gexbert(input_ids, level_ids, values, attention_mask, return_dict=True, **kwargs)
        features = self.classifier_features(outputs, input_ids, level_ids, values, attention_mask)
        logits = self.classifier(self.dropout(features))
        if hasattr(self, "classifier_mlp"):
            logits = logits + self.classifier_mlp(features)
        loss = None if labels is None else self._classification_loss(logits, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """BERT's choice: regression for one label, cross-entropy for integer labels, else multi-label BCE."""
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
        if self.config.problem_type == "single_label_classification":
            return nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())


def cox_partial_log_likelihood_loss(
    risk: torch.Tensor, survival_time: torch.Tensor, event: torch.Tensor, ties: str = "efron"
) -> torch.Tensor:
    """Negative Cox partial log-likelihood, averaged over events.

    Breslow: each event is compared with everyone still at risk. Efron: tied events progressively leave the risk set.
    A batch without events gives a zero loss that still carries a gradient path (so DDP ranks stay in step).
    """
    risk = risk.reshape(-1).float()
    time = survival_time.reshape(-1).float()
    event = event.reshape(-1).bool()
    if not bool(event.any()):
        return risk.sum() * 0.0
    shift = risk.detach().max()
    hazard = torch.exp(risk - shift)
    at_risk = time.unsqueeze(0) >= time.unsqueeze(1)  # [i, j]: j is at risk at i's time
    risk_set_sum = (at_risk * hazard.unsqueeze(0)).sum(1)
    if ties == "breslow":
        log_denominator = torch.log(risk_set_sum)
    elif ties == "efron":
        tied_events = (time.unsqueeze(0) == time.unsqueeze(1)) & event.unsqueeze(0) & event.unsqueeze(1)
        tie_count = tied_events.sum(1).clamp(min=1).float()
        # rank of each event within its tie group, 0..d-1, by index order (the sum is order-free)
        index = torch.arange(len(time), device=time.device)
        tie_rank = (tied_events & (index.unsqueeze(0) < index.unsqueeze(1))).sum(1).float()
        tied_hazard = (tied_events * hazard.unsqueeze(0)).sum(1)
        log_denominator = torch.log(risk_set_sum - tie_rank / tie_count * tied_hazard)
    else:
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    log_likelihood = ((risk - shift) - log_denominator)[event]
    return -log_likelihood.sum() / event.sum()


class GexBertForSurvival(GexBertPreTrainedModel):
    """Pooled sample embedding -> risk score, trained with the Cox partial likelihood."""

    def __init__(self, config: GexBertConfig):
        super().__init__(config)
        self.gexbert = GexBertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.risk_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        survival_time: torch.Tensor | None = None, event: torch.Tensor | None = None,  # the targets
        **kwargs: Unpack[TransformersKwargs],
    ) -> SurvivalOutput:
        r"""
        survival_time: `(batch,)` follow-up time; event: `(batch,)` 1 = event observed, 0 = censored.
        """
        kwargs = forward_kwargs(self, kwargs)
        outputs = self.gexbert(input_ids, level_ids, values, attention_mask, return_dict=True, **kwargs)
        risk = self.risk_head(self.dropout(outputs.pooler_output)).squeeze(-1)
        loss = None
        if survival_time is not None and event is not None:
            loss = cox_partial_log_likelihood_loss(risk, survival_time, event, ties=self.config.survival_ties)
        return SurvivalOutput(loss=loss, risk=risk, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


__all__ = [
    "GexBertPreTrainedModel", "GexBertModel", "GexBertForMaskedExpression", "GexBertForSequenceClassification",
    "GexBertForSurvival", "MaskedExpressionOutput", "SurvivalOutput", "cox_partial_log_likelihood_loss",
]
