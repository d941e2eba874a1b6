"""ONNX Runtime lever (gexbert_hf/onnx_export.py): the shipped tcga31-mirna checkpoint exported by `gexbert export
--format onnx` restores the same values through ORT as through torch fp32 (within 1e-4), through the one `impute`;
a graph that fails the check is never written, and an export is replaced only with --overwrite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from gexbert_hf import impute  # noqa: E402
from gexbert_hf.cli import main  # noqa: E402
from gexbert_hf.loading import load_model_and_tokenizer  # noqa: E402
from gexbert_hf.onnx_export import (  # noqa: E402
    ONNX_NAME,
    TOLERANCE,
    OnnxExportError,
    OnnxMaskedExpression,
    example_inputs,
    export_onnx,
    load_onnx_model_and_tokenizer,
    max_abs_difference,
    quantize_onnx_int8,
)

CHECKPOINT = "tcga31-mirna"
# ORT int8 of the MatMuls on the restored values (log2 RPM) of 8 samples: measured mean 0.012, max 0.6
INT8_MEAN_ABS_CHANGE = 0.03


@pytest.fixture(scope="module")
def checkpoint():
    return load_model_and_tokenizer(CHECKPOINT)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    output = tmp_path_factory.mktemp("onnx") / "export"
    assert main(["export", "--model", CHECKPOINT, "--output", str(output), "--format", "onnx"]) == 0
    return output


@pytest.fixture(scope="module")
def holed(checkpoint):
    """8 tcga31-like profiles (each miRNA around its training centre and spread, on the checkpoint's scale), half
    of the values missing."""
    _, tokenizer = checkpoint
    rng = np.random.default_rng(0)
    working = tokenizer.center + 0.7 * tokenizer.scale * rng.standard_normal((8, len(tokenizer.genes)))
    frame = pd.DataFrame(tokenizer.denormalize(working), [f"sample{i}" for i in range(8)], tokenizer.genes)
    holes = rng.random(frame.shape) < 0.5
    return frame.mask(holes), holes


def test_ort_level_logits_match_torch_fp32_on_another_shape(checkpoint, exported, tmp_path):
    model, _ = checkpoint
    assert max_abs_difference(model, exported / ONNX_NAME, rows=5, tokens=300) < TOLERANCE
    fused = {node.op_type for node in onnx.load(exported / ONNX_NAME).graph.node}
    assert "MultiHeadAttention" in fused and model.config._attn_implementation == "sdpa"  # the copy was switched
    portable = export_onnx(model, tmp_path / "portable.onnx", fused_attention=False)
    assert "MultiHeadAttention" not in {node.op_type for node in onnx.load(portable).graph.node}
    assert max_abs_difference(model, portable, rows=5, tokens=300) < TOLERANCE


def test_imputation_through_ort_matches_torch_fp32(checkpoint, exported, holed):
    model, tokenizer = checkpoint
    masked, holes = holed
    onnx_model, onnx_tokenizer = load_onnx_model_and_tokenizer(exported)
    assert sum(parameter.numel() for parameter in onnx_model.parameters()) == 0  # no torch weights: ORT computes
    reference_filled, reference_spread = impute(model, tokenizer, masked)
    filled, spread = impute(onnx_model, onnx_tokenizer, masked)
    assert filled.index.equals(masked.index) and filled.columns.equals(masked.columns)
    assert np.abs(filled.to_numpy() - reference_filled.to_numpy()).max() < 1e-4
    assert np.abs(spread.to_numpy() - reference_spread.to_numpy()).max() < 1e-4
    assert (filled.to_numpy()[~holes] == masked.to_numpy()[~holes]).all()
    assert not onnx_model.training  # impute gives the flag back as found (eval after loading)


def test_ort_int8_moves_values_a_little(checkpoint, exported, holed, tmp_path):
    model, tokenizer = checkpoint
    masked, holes = holed
    quantized = quantize_onnx_int8(exported / ONNX_NAME, tmp_path / "model.int8.onnx")
    reference = impute(model, tokenizer, masked)[0].to_numpy()
    change = np.abs(impute(OnnxMaskedExpression(quantized, model.config), tokenizer, masked)[0].to_numpy()
                    - reference)[holes]
    assert 0 < change.mean() < INT8_MEAN_ABS_CHANGE  # int8 really ran, and stayed close


def test_a_graph_that_fails_the_check_is_not_written(checkpoint, tmp_path):
    model, _ = checkpoint
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with pytest.raises(OnnxExportError, match="differs from torch fp32"):
        export_onnx(model, tmp_path / ONNX_NAME, tolerance=-1.0)  # no graph can pass: the refusal path
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    assert not model.training and all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_export_refuses_to_overwrite_and_other_heads(exported, model_dirs, tmp_path, capsys):
    stamp = (exported / ONNX_NAME).stat().st_mtime_ns
    assert main(["export", "--model", CHECKPOINT, "--output", str(exported), "--format", "onnx"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (exported / ONNX_NAME).stat().st_mtime_ns == stamp
    assert main(["export", "--model", str(model_dirs["classifier"]), "--output", str(tmp_path / "c"),
                 "--format", "onnx"]) == 2
    assert "restoration" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(["export", "--model", CHECKPOINT, "--output", str(tmp_path / "x"), "--format", "tflite"]) == 2
    assert "--format must be one of hub, onnx" in capsys.readouterr().err


def test_ort_model_refuses_outputs_its_graph_lacks(checkpoint, exported):
    model, _ = checkpoint
    onnx_model = OnnxMaskedExpression.from_folder(exported)
    with pytest.raises(OnnxExportError, match="output_attentions"):
        onnx_model(**example_inputs(model.config, 1, 8), output_attentions=True)


def test_onnx_files_get_the_users_file_mode_like_every_other_output(exported, tmp_path):
    from gexbert_hf.outputs import current_umask

    expected = 0o666 & ~current_umask()  # a plain open() would give this; a bare temporary file is private (0o600)
    quantized = quantize_onnx_int8(exported / ONNX_NAME, tmp_path / "model.int8.onnx")
    for path in (exported / ONNX_NAME, exported / "config.json", quantized):
        assert path.stat().st_mode & 0o777 == expected, path
