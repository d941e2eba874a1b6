"""GexBERT: a set transformer autoencoder over bulk expression profiles (Jiang & Hassanpour, 2025).

A sample is a set of tokens, one per measured gene: gene-identity embedding + expression embedding, no positions.
Reads top to bottom: embeddings -> attention -> layer -> encoder -> PreTrainedModel -> base model -> heads.
This file travels with every checkpoint as hub remote code, so it imports only torch, transformers and the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging

from .configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID, GexBertConfig

logger = logging.get_logger(__name__)


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
    **kwargs,
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


class GexBertSelfAttention(nn.Module):
    """Multi-head self-attention dispatched through transformers' attention interface (sdpa, eager, custom)."""

    def __init__(self, config: GexBertConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        # One fused projection: three small matmuls cost more than one on CPU and GPU alike.
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            attn_implementation or self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout_p if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        return self.output(attn_output.reshape(batch, length, -1)), attn_weights


class GexBertLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm transformer block: trains stably at the higher learning rates short pretraining budgets need."""

    def __init__(self, config: GexBertConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GexBertSelfAttention(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.feed_forward_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attn_implementation: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, attn_weights = self.attention(
            self.attention_norm(hidden_states), attention_mask, attn_implementation=attn_implementation
        )
        hidden_states = hidden_states + self.dropout(attended)
        feed_forward = self.feed_forward_output(self.activation(self.intermediate(self.feed_forward_norm(hidden_states))))
        return hidden_states + self.dropout(feed_forward), attn_weights


class GexBertEncoder(nn.Module):
    """A stack of layers; collects hidden states and attention weights only when asked."""

    def __init__(self, config: GexBertConfig, num_layers: int):
        super().__init__()
        self.layer = nn.ModuleList([GexBertLayer(config) for _ in range(num_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        # sdpa never materialises attention weights; asking for them switches this call to eager.
        attn_implementation = "eager" if output_attentions else None
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            hidden_states, attn_weights = layer(hidden_states, attention_mask, attn_implementation)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attn_weights,)
        return BaseModelOutputWithPooling(
            last_hidden_state=self.final_norm(hidden_states),
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


def expand_attention_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """`(batch, genes)` 1/0 mask -> `(batch, 1, 1, genes)` boolean key mask; None when nothing is padded, so that
    sdpa can pick its fastest kernel."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


# ----------------------------------------------------------------------------------------------------------------------
# Pretrained model base
# ----------------------------------------------------------------------------------------------------------------------


class GexBertPreTrainedModel(PreTrainedModel):
    config_class = GexBertConfig
    config: GexBertConfig
    base_model_prefix = "gexbert"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["GexBertEmbeddings", "GexBertLayer"]

    # Filled by `gexbert_hf.hub` when the package is imported (this file imports nothing of it: it travels as remote
    # code): what completes a saved checkpoint (model card, full auto_map, remote code) and what uploads one with its
    # card. As remote code without the package both stay None and transformers' own behaviour applies.
    checkpoint_completer: ClassVar[Callable | None] = None
    hub_uploader: ClassVar[Callable | None] = None

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Standard `save_pretrained`, then `checkpoint_completer` (the model card) where the package set one."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.checkpoint_completer is not None and kwargs.get("is_main_process", True):
            self.checkpoint_completer(save_directory)

    def push_to_hub(self, repo_id: str, *args, tokenizer=None, **kwargs):
        """Standard hub upload, or `hub_uploader` where the package set one (keeps the card, uploads `tokenizer`)."""
        if self.hub_uploader is None:
            return super().push_to_hub(repo_id, *args, **kwargs)
        return self.hub_uploader(repo_id, tokenizer=tokenizer, **kwargs)

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

    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, output_hidden_states: bool | None = None,
        output_attentions: bool | None = None, return_dict: bool | None = None, **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        input_ids: `(batch, genes)` gene ids, position 0 being the CLS token (the tokenizer adds it).
        level_ids: `(batch, genes)` expression level ids (special ids below `LEVEL_OFFSET`: PAD, MISSING, MASK).
        values: `(batch, genes)` standardised values; used by the continuous value embedding.
        attention_mask: `(batch, genes)` 1 for real tokens, 0 for padding.
        """
        if input_ids.shape != level_ids.shape:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and level_ids {tuple(level_ids.shape)} differ")
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        embeddings = self.embeddings(input_ids, level_ids, values)
        encoded = self.encoder(
            embeddings,
            expand_attention_mask(attention_mask),
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        encoded.pooler_output = self.pool(encoded.last_hidden_state, attention_mask)
        return encoded if return_dict else encoded.to_tuple()


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

    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
        value_labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
        output_attentions: bool | None = None, return_dict: bool | None = None, **kwargs,
    ) -> MaskedExpressionOutput | tuple:
        r"""
        labels: `(batch, genes)` target level index in `[0, num_levels)`, -100 where there is no target.
        value_labels: `(batch, genes)` target standardised value, NaN where there is no target.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if self.config.encoder_skips_queries:
            outputs, decoded = self._encode_measured_then_decode(
                input_ids, level_ids, values, attention_mask, output_hidden_states, output_attentions)
        else:
            outputs = self._encode(input_ids, level_ids, values, attention_mask, output_hidden_states, output_attentions)
            decoded = self.decoder(outputs.last_hidden_state, expand_attention_mask(attention_mask)).last_hidden_state
        level_logits = self.level_head(decoded)
        value_predictions = self.value_head(decoded).squeeze(-1)

        loss = level_loss = value_loss = None
        if labels is not None:  # without any target: a zero loss that still carries a gradient path
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

        output = MaskedExpressionOutput(
            loss=loss, level_loss=level_loss, value_loss=value_loss, level_logits=level_logits,
            value_predictions=value_predictions, pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()

    def _encode_measured_then_decode(self, input_ids, level_ids, values, attention_mask, output_hidden_states,
                                     output_attentions) -> tuple[BaseModelOutputWithPooling, torch.Tensor]:
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
        outputs = self._encode(ids[:, :width], levels[:, :width], None if vals is None else vals[:, :width],
                               measured[:, :width].long(), output_hidden_states, output_attentions)
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

    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None, output_attentions: bool | None = None,
        return_dict: bool | None = None, **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self._encode(input_ids, level_ids, values, attention_mask, output_hidden_states, output_attentions)
        features = self.classifier_features(outputs, input_ids, level_ids, values, attention_mask)
        logits = self.classifier(self.dropout(features))
        if hasattr(self, "classifier_mlp"):
            logits = logits + self.classifier_mlp(features)
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
            elif self.config.problem_type == "single_label_classification":
                loss = nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
            else:
                loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


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

    def forward(
        self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        survival_time: torch.Tensor | None = None, event: torch.Tensor | None = None,  # the targets
        output_hidden_states: bool | None = None, output_attentions: bool | None = None,
        return_dict: bool | None = None, **kwargs,
    ) -> SurvivalOutput | tuple:
        r"""
        survival_time: `(batch,)` follow-up time; event: `(batch,)` 1 = event observed, 0 = censored.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self._encode(input_ids, level_ids, values, attention_mask, output_hidden_states, output_attentions)
        risk = self.risk_head(self.dropout(outputs.pooler_output)).squeeze(-1)
        loss = None
        if survival_time is not None and event is not None:
            loss = cox_partial_log_likelihood_loss(risk, survival_time, event, ties=self.config.survival_ties)
        output = SurvivalOutput(loss=loss, risk=risk, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return output if return_dict else output.to_tuple()


__all__ = [
    "GexBertPreTrainedModel", "GexBertModel", "GexBertForMaskedExpression", "GexBertForSequenceClassification",
    "GexBertForSurvival", "MaskedExpressionOutput", "SurvivalOutput", "cox_partial_log_likelihood_loss",
]
