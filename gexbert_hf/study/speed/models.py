"""The two models a speed comparison times (GexBERT and transformers' BertForMaskedLM of the same shape), their
random inputs, one training step and its FLOPs."""

from __future__ import annotations

import time

import torch
from transformers import AttentionInterface, BertConfig, BertForMaskedLM

from ...configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, GexBertConfig
from ...modeling_gexbert import GexBertForMaskedExpression

NO_ATTENTION = "gexbert_bench_no_attention"


def _no_attention(module, query, key, value, attention_mask, **kwargs):
    """Attention replaced by the identity on the values: what a step costs without the L^2 part."""
    return value.transpose(1, 2).contiguous(), None


AttentionInterface.register(NO_ATTENTION, _no_attention)


def gexbert_config(architecture: dict, vocab_size: int, attn_implementation: str = "sdpa") -> GexBertConfig:
    # Same attention dropout as BERT's default unless the plan says otherwise, so both sides do the same work
    # (GexBERT's own default is 0 since this benchmark showed what attention dropout costs).
    architecture = {"attention_probs_dropout_prob": 0.1, **architecture}
    return GexBertConfig(vocab_size=vocab_size, attn_implementation=attn_implementation, **architecture)


def bert_config(architecture: dict, vocab_size: int, max_length: int) -> BertConfig:
    """BERT with as many transformer layers as GexBERT's encoder plus its restoration decoder."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=architecture["hidden_size"],
        num_hidden_layers=architecture["num_hidden_layers"] + architecture["decoder_num_layers"],
        num_attention_heads=architecture["num_attention_heads"],
        intermediate_size=architecture["intermediate_size"],
        max_position_embeddings=max_length,
        attention_probs_dropout_prob=architecture.get("attention_probs_dropout_prob", 0.1),
        attn_implementation="sdpa",
    )


def build_model(kind: str, architecture: dict, vocab_size: int, max_length: int, seed: int,
                attn_implementation: str = "sdpa") -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "gexbert":
        return GexBertForMaskedExpression(gexbert_config(architecture, vocab_size, attn_implementation))
    return BertForMaskedLM(bert_config(architecture, vocab_size, max_length))


def make_batch(kind: str, vocab_size: int, batch: int, length: int, seed: int, num_levels: int = 32,
               target_fraction: float = 0.15) -> dict[str, torch.Tensor]:
    """Random tokens with 15% restoration / MLM targets; no padding (sdpa then takes its fastest kernel)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, vocab_size, (batch, length), generator=generator)
    input_ids[:, 0] = 1  # CLS
    targets = torch.rand(batch, length, generator=generator) < target_fraction
    targets[:, 0] = False
    targets[:, 1] = True
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones(batch, length, dtype=torch.long)}
    if kind == "bert":
        inputs["labels"] = torch.where(targets, input_ids, -100)
        return inputs
    levels = torch.randint(0, num_levels, (batch, length), generator=generator)
    inputs["level_ids"] = torch.where(targets, MASK_LEVEL_ID, levels + LEVEL_OFFSET)
    inputs["labels"] = torch.where(targets, levels, -100)
    inputs["value_labels"] = torch.where(targets, torch.randn(batch, length, generator=generator), float("nan"))
    return inputs


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: dict, dtype: str,
                  device: torch.device) -> float:
    """Forward, backward and AdamW step; returns its wall time in seconds."""
    synchronize(device)
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
        loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    return time.perf_counter() - start


def training_flops(architecture: dict, kind: str, vocab_size: int, batch: int, length: int,
                   num_levels: int = 32) -> float:
    """Matmul FLOPs of one training step (3x forward), attention included: the numerator of MFU."""
    hidden, inter = architecture["hidden_size"], architecture["intermediate_size"]
    layers = architecture["num_hidden_layers"] + architecture["decoder_num_layers"]
    head = num_levels + 1 if kind == "gexbert" else hidden + vocab_size
    per_token = layers * (4 * hidden * hidden + 2 * hidden * inter) + hidden * head
    attention = layers * 2 * length * length * hidden
    return 3 * 2 * batch * (length * per_token + attention)
