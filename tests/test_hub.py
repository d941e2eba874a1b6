"""Saving, loading, Auto classes, remote code in a process without gexbert_hf, and the hub upload path."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from gexbert_hf import (
    GexBertConfig,
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
)


@pytest.fixture()
def inputs(embedded_tokenizer, embedded_cohort):
    return embedded_tokenizer(embedded_cohort.expression.iloc[:4])


def _classifier(config):
    config.num_labels = 2
    config.id2label, config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    torch.manual_seed(0)
    return GexBertForSequenceClassification(config).eval()


@pytest.mark.parametrize("model_class", [GexBertForMaskedExpression, GexBertForSequenceClassification,
                                         GexBertForSurvival, GexBertModel])
def test_save_and_load_round_trip_exactly(model_class, tiny_config, inputs, tmp_path):
    torch.manual_seed(0)
    model = model_class(tiny_config).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded = model_class.from_pretrained(tmp_path).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        for a, b in zip(model(**inputs).to_tuple(), loaded(**inputs).to_tuple()):
            assert torch.equal(a, b)


def test_auto_classes_resolve_to_gexbert(tiny_config, tmp_path):
    model = _classifier(tiny_config)
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), GexBertConfig)
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path)) is GexBertForSequenceClassification
    assert type(AutoModel.from_pretrained(tmp_path)) is GexBertModel
    GexBertForMaskedExpression(tiny_config).save_pretrained(tmp_path / "mlm")
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm")) is GexBertForMaskedExpression


def test_checkpoint_carries_remote_code_auto_map_and_model_card(tiny_config, tmp_path):
    GexBertForSurvival(tiny_config).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_gexbert.GexBertModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_gexbert.GexBertConfig"
    assert (tmp_path / "modeling_gexbert.py").is_file() and (tmp_path / "configuration_gexbert.py").is_file()
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers") and "license: apache-2.0" in card
    assert "GexBertForSurvival" in card and "{{" not in card


def test_remote_code_loads_without_the_package(tiny_config, inputs, tmp_path):
    model = _classifier(tiny_config)
    model.save_pretrained(tmp_path / "checkpoint")
    with torch.no_grad():
        expected = model(**inputs).logits.numpy()
    np.savez(tmp_path / "inputs.npz", expected=expected, **{key: value.numpy() for key, value in inputs.items()})
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class BlockGexbert(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "gexbert_hf" or name.startswith("gexbert_hf."):
                    raise ModuleNotFoundError(f"blocked: {{name}}")
        sys.meta_path.insert(0, BlockGexbert())
        import numpy as np, torch
        from transformers import AutoModelForSequenceClassification
        try:
            import gexbert_hf
            raise SystemExit("gexbert_hf is importable: the test would prove nothing")
        except ModuleNotFoundError:
            pass
        data = np.load({str(tmp_path / "inputs.npz")!r})
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "checkpoint")!r},
                                                                   trust_remote_code=True).eval()
        assert "gexbert_hf" not in type(model).__module__, type(model).__module__
        inputs = {{key: torch.from_numpy(data[key]) for key in ("input_ids", "level_ids", "values", "attention_mask")}}
        with torch.no_grad():
            logits = model(**inputs).logits.numpy()
        print(type(model).__module__, float(np.abs(logits - data["expected"]).max()))
        assert np.allclose(logits, data["expected"], atol=1e-6)
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout


def test_push_to_hub_uploads_weights_code_card_and_tokenizer(tiny_config, embedded_tokenizer, tmp_path,
                                                             monkeypatch):
    import huggingface_hub

    calls = {}

    class RepoUrl:
        repo_id = "someone/gexbert-tiny"

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = repo_id
        return RepoUrl()

    def upload_folder(self, repo_id, folder_path, **kwargs):
        from pathlib import Path

        folder = Path(folder_path)
        calls["repo_id"] = repo_id
        calls["files"] = sorted(path.name for path in folder.iterdir())
        calls["card"] = (folder / "README.md").read_text()
        return "commit-url"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    model = GexBertForMaskedExpression(tiny_config)
    assert model.push_to_hub("someone/gexbert-tiny", tokenizer=embedded_tokenizer) == "commit-url"
    assert calls["create_repo"] == "someone/gexbert-tiny" and calls["repo_id"] == "someone/gexbert-tiny"
    for name in ("model.safetensors", "config.json", "modeling_gexbert.py", "configuration_gexbert.py",
                 "README.md", "gexbert_tokenizer.json", "gexbert_tokenizer.safetensors"):
        assert name in calls["files"]
    assert "tags:\n  - gexbert" in calls["card"]
