"""ONNX Runtime for imputation (issue 22, lever 5): a restoration model exported once, then run by ORT on CPU.

- `export_onnx(model, path)` traces a `GexBertForMaskedExpression` (dynamic batch and token axes; inputs
  `input_ids`, `level_ids`, `values`, `attention_mask`; outputs `level_logits`, `value_predictions`) into a
  temporary file beside `path`, loads it back in onnxruntime, compares it with the torch fp32 forward on a batch of
  another shape (with padding), and only then moves it into place: a file at `path` has passed that check.
- `quantize_onnx_int8(source, target)`: ORT's dynamic int8 of the MatMuls (the torch int8 lever's counterpart).
- `OnnxMaskedExpression`: what `impute` / `predict_distribution` read of a torch model (`config`, `name_or_path`,
  `training` / `eval()`, `parameters()` for the device, a call returning `.level_logits` as a torch tensor), backed
  by an ORT session, so the imputation code path stays the one the torch model takes.

    model, tokenizer = load_onnx_model_and_tokenizer("export")   # a `gexbert export --format onnx` folder
    filled, uncertainty = impute(model, tokenizer, frame)

Needs the `onnx` extra (`pip install gexbert-hf[onnx]`). Speed and accuracy against torch: reports/speed_release/.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AttentionInterface

from .configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, GexBertConfig
from .errors import GexBertError
from .loading import check_tokenizer_matches, load_config
from .modeling_gexbert import GexBertForMaskedExpression, MaskedExpressionOutput
from .outputs import file_beside
from .tokenization_gexbert import GexBertTokenizer

ONNX_NAME = "model.onnx"
ONNX_INT8_NAME = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "level_ids", "values", "attention_mask")
OUTPUT_NAMES = ("level_logits", "value_predictions")
OPSET = 17  # LayerNormalization is one op from 17 on
TOLERANCE = 1e-4  # max abs difference of level_logits and value_predictions, ORT against torch fp32
INSTALL_HINT = "pip install 'gexbert-hf[onnx]' (onnx and onnxruntime)"


class OnnxExportError(GexBertError, RuntimeError):
    """An ONNX export that cannot be made, or whose output differs from the torch model's."""


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxExportError(f"ONNX Runtime is not installed: {INSTALL_HINT}") from error
    return onnxruntime


class _MultiHeadAttention(torch.autograd.Function):
    """Attention as ONNX Runtime's fused `com.microsoft::MultiHeadAttention` (query, key, value `(batch, tokens,
    hidden)`, key padding mask `(batch, tokens)` int32): in torch, the same sum through sdpa, for the tracer."""

    @staticmethod
    def forward(ctx, query, key, value, key_padding_mask, num_heads: int, scale: float):
        def heads(tensor):
            return tensor.view(tensor.shape[0], tensor.shape[1], num_heads, -1).transpose(1, 2)

        attended = torch.nn.functional.scaled_dot_product_attention(
            heads(query), heads(key), heads(value), attn_mask=key_padding_mask.bool()[:, None, None, :], scale=scale)
        return attended.transpose(1, 2).reshape(query.shape)

    @staticmethod
    def symbolic(g, query, key, value, key_padding_mask, num_heads, scale):
        from torch.onnx import symbolic_helper

        no_bias = symbolic_helper._optional_input_placeholder_tensor(g)
        attended = g.op("com.microsoft::MultiHeadAttention", query, key, value, no_bias, key_padding_mask,
                        num_heads_i=num_heads, scale_f=scale)
        attended.setType(query.type())  # shaped like the query: the exporter's shape inference reads it
        return attended


def _fused_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """A transformers attention function (`config._attn_implementation`) that traces to ORT's fused op; query,
    key and value arrive `(batch, heads, tokens, head_dim)`, the output leaves `(batch, tokens, heads, head_dim)`.
    The head count and scale are the module's plain ints (a traced shape cannot be an ONNX attribute)."""
    batch, heads, tokens, width = query.shape

    def merged(tensor):
        return tensor.transpose(1, 2).reshape(batch, tensor.shape[2], heads * width)

    mask = (torch.ones(batch, key.shape[2], dtype=torch.int32) if attention_mask is None
            else attention_mask[:, 0, 0, :].to(torch.int32))
    attended = _MultiHeadAttention.apply(merged(query), merged(key), merged(value), mask, int(module.num_heads),
                                         float(module.scaling))
    return attended.view(batch, tokens, heads, width), None


FUSED_ATTENTION = "gexbert_onnx_fused"
AttentionInterface.register(FUSED_ATTENTION, _fused_attention)


class _Traced(torch.nn.Module):
    """The restoration forward as plain tensors in and out: what the tracer records."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, level_ids, values, attention_mask):
        outputs = self.model(input_ids=input_ids, level_ids=level_ids, values=values, attention_mask=attention_mask)
        return outputs.level_logits, outputs.value_predictions


def example_inputs(config: GexBertConfig, rows: int, tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random restoration inputs in the model's vocabulary: CLS first, measured, MISSING and MASK tokens, and the
    last row padded to half its length, so both the padded and the unpadded attention path are exercised."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, config.vocab_size, (rows, tokens), generator=generator)
    input_ids[:, 0] = config.cls_token_id
    level_ids = torch.randint(LEVEL_OFFSET, config.level_vocab_size, (rows, tokens), generator=generator)
    special = torch.rand(rows, tokens, generator=generator)
    level_ids[special < 0.3] = MASK_LEVEL_ID
    level_ids[special < 0.05] = MISSING_LEVEL_ID
    level_ids[:, 0] = LEVEL_OFFSET
    values = torch.randn(rows, tokens, generator=generator)
    attention_mask = torch.ones(rows, tokens, dtype=torch.long)
    attention_mask[-1, max(2, tokens // 2):] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    level_ids[attention_mask == 0] = 0
    values[attention_mask == 0] = 0.0
    return {"input_ids": input_ids, "level_ids": level_ids, "values": values, "attention_mask": attention_mask}


def export_onnx(model: torch.nn.Module, path: str | Path, tolerance: float = TOLERANCE, fused_attention: bool = True
                ) -> Path:
    """Write `model` (a restoration head) as ONNX to `path`, checked against torch fp32 before it is moved in.

    `fused_attention`: attention as ORT's `MultiHeadAttention` contrib op (ORT only; 1.1-1.3x torch fp32 on the
    2-core dev CPU), else standard ONNX ops, portable to other runtimes but 0.5-0.7x torch in ORT (the attention
    matrix is masked element by element; reports/speed_release/README.md, lever 5).

    Tracing records one path through the model: a config whose forward branches on the data (the asymmetric
    `encoder_skips_queries` layout) is refused; the check on a batch of another shape catches any other."""
    if not isinstance(model, GexBertForMaskedExpression):
        raise OnnxExportError(f"ONNX export covers the restoration head (GexBertForMaskedExpression), not "
                              f"{type(model).__name__}")
    if model.config.encoder_skips_queries:
        raise OnnxExportError("a model with encoder_skips_queries=True sizes its encoder by the data; tracing "
                              "cannot record that, so it is not exported to ONNX")
    _onnxruntime()  # the check needs it: refuse before any work
    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model keeps its device, dtype and flag
    attention = model.config._attn_implementation
    if fused_attention:
        model.config._attn_implementation = FUSED_ATTENTION  # the copy's own config
    path = Path(path)
    with file_beside(path) as temporary:
        traced = _Traced(model).eval()
        inputs = example_inputs(model.config, rows=2, tokens=16)
        with warnings.catch_warnings():  # the tracer's notes on shape checks and the legacy exporter's notice
            warnings.simplefilter("ignore")
            torch.onnx.export(traced, tuple(inputs.values()), str(temporary), dynamo=False, opset_version=OPSET,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              custom_opsets={"com.microsoft": 1} if fused_attention else None,
                              dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES + OUTPUT_NAMES})
        traced.eval()  # export gives the wrapper back its training flag (True), which reaches the model
        model.config._attn_implementation = attention  # the check compares with the model's own attention
        difference = max_abs_difference(model, temporary)
        if not difference <= tolerance:
            raise OnnxExportError(f"{path}: ONNX Runtime's output differs from torch fp32 by {difference:.2e} "
                                  f"(tolerance {tolerance:.0e}); not written")
    return path


def max_abs_difference(model: torch.nn.Module, onnx_path: str | Path, rows: int = 3, tokens: int = 24) -> float:
    """Largest |ORT - torch fp32| over the real tokens' level logits and value predictions, on an example batch
    shaped unlike the traced one (so the dynamic axes are checked too)."""
    inputs = example_inputs(model.config, rows, tokens, seed=1)
    session = _session(_onnxruntime(), str(onnx_path), threads=1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reference = _Traced(model)(**inputs)
    finally:
        model.train(was_training)
    produced = session.run(list(OUTPUT_NAMES), _feed(session, inputs))
    real = inputs["attention_mask"].bool().numpy()
    return max(float(np.abs(ort - ref.numpy())[real].max()) for ort, ref in zip(produced, reference))


def quantize_onnx_int8(source: str | Path, target: str | Path) -> Path:
    """ORT dynamic int8 of `source`'s MatMuls (weights int8, activations quantized per batch), written atomically
    to `target`. The embeddings' Gathers stay fp32, as in `fast_inference.quantize_linear_int8`; its accuracy is
    measured, not guaranteed (reports/speed_release/levers/)."""
    _onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    silenced = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its advice to run shape pre-processing first, printed on every call
    try:
        with file_beside(target) as temporary:
            quantize_dynamic(str(source), str(temporary), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(silenced)
    return target


def _session(onnxruntime, path: str, threads: int):
    """An ORT CPU session with every graph optimisation, `threads` intra-op threads that sleep rather than spin
    (the same reason as `gexbert_hf.threads`' passive OpenMP wait: a spinning thread starves a busy core)."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _feed(session, inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The inputs the graph declares (a level-embedding model's graph has no `values`), as numpy arrays."""
    return {spec.name: inputs[spec.name].cpu().numpy() for spec in session.get_inputs()}


class OnnxMaskedExpression(torch.nn.Module):
    """An exported restoration model run by ONNX Runtime, accepted by `impute` / `predict_distribution` in place of
    the torch model (`loading.HEADS` names it a restoration head). Runs on CPU; the session uses torch's current thread count (rebuilt when it changes)."""

    def __init__(self, onnx_path: str | Path, config: GexBertConfig, name_or_path: str | None = None):
        super().__init__()
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise OnnxExportError(f"{self.onnx_path}: no ONNX model (write one with gexbert export --format onnx)")
        self.config = config
        self.name_or_path = str(name_or_path or self.onnx_path)
        # inference reads the device of the first parameter; ORT takes its inputs from the CPU
        self.device_anchor = torch.nn.Parameter(torch.empty(0), requires_grad=False)
        self._session, self._threads = None, 0
        self.eval()  # inference only: ORT has no training mode
        self.session()  # an unreadable file is refused here, not at the first batch

    @classmethod
    def from_folder(cls, folder: str | Path, file: str = ONNX_NAME) -> OnnxMaskedExpression:
        """The `file` of an export folder with the `config.json` beside it."""
        return cls(Path(folder) / file, load_config(GexBertConfig, folder), name_or_path=str(folder))

    def session(self):
        """The ORT session, built for torch's current thread count."""
        threads = torch.get_num_threads()
        if self._session is None or threads != self._threads:
            onnxruntime = _onnxruntime()
            try:
                self._session = _session(onnxruntime, str(self.onnx_path), threads)
            except Exception as error:  # ORT raises its own exception types for unreadable graphs
                raise OnnxExportError(f"{self.onnx_path}: ONNX Runtime cannot load it ({error})") from error
            self._threads = threads
        return self._session

    def forward(self, input_ids: torch.Tensor, level_ids: torch.Tensor, values: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, **options) -> MaskedExpressionOutput:
        asked = sorted(name for name, wanted in options.items() if wanted)
        if asked:
            raise OnnxExportError(f"{self.name_or_path}: the ONNX graph returns level_logits and value_predictions "
                                  f"only, not {', '.join(asked)}")
        inputs = {"input_ids": input_ids, "level_ids": level_ids,
                  "values": torch.zeros(level_ids.shape) if values is None else values.float(),
                  "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask}
        session = self.session()
        level_logits, value_predictions = session.run(list(OUTPUT_NAMES), _feed(session, inputs))
        return MaskedExpressionOutput(level_logits=torch.from_numpy(level_logits),
                                      value_predictions=torch.from_numpy(value_predictions))


def load_onnx_model_and_tokenizer(folder: str | Path, file: str = ONNX_NAME):
    """(`OnnxMaskedExpression`, its tokenizer) from an export folder (`gexbert export --format onnx`)."""
    model = OnnxMaskedExpression.from_folder(folder, file)
    tokenizer = GexBertTokenizer.from_pretrained(folder)
    check_tokenizer_matches(tokenizer, model.config, source=str(folder))
    return model, tokenizer


__all__ = ["ONNX_INT8_NAME", "ONNX_NAME", "OnnxExportError", "OnnxMaskedExpression", "TOLERANCE", "example_inputs",
           "export_onnx", "load_onnx_model_and_tokenizer", "max_abs_difference", "quantize_onnx_int8"]
