"""`save_pretrained` writes the model card, the full `auto_map` and the remote code itself: a checkpoint saved by a
model loaded as remote code, in a process without gexbert_hf, is the same as one saved with the package."""

import json
import subprocess
import sys
import textwrap

import torch
from remote_code import BLOCK_GEXBERT

from gexbert_hf import GexBertForSequenceClassification, GexBertForSurvival
from gexbert_hf.checkpoint_gexbert import AUTO_MAP, REMOTE_CODE_FILES


def _classifier(config):
    config.num_labels = 2
    config.id2label, config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    config.panel_genes, config.query_unseen = ["g1", "g2", "g3"], True
    torch.manual_seed(0)
    return GexBertForSequenceClassification(config).eval()


def test_a_save_without_the_package_writes_the_same_card_auto_map_and_code(tiny_config, tmp_path):
    _classifier(tiny_config).save_pretrained(tmp_path / "package")
    script = BLOCK_GEXBERT + textwrap.dedent(f"""
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "package")!r},
                                                                   trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert "gexbert_hf" not in sys.modules
        model.save_pretrained({str(tmp_path / "remote")!r})
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    package, remote = tmp_path / "package", tmp_path / "remote"
    card = (package / "README.md").read_text()
    assert "GexBertForSequenceClassification" in card and "## Gene panel" in card and "{{" not in card
    assert (remote / "README.md").read_text() == card
    package_config = json.loads((package / "config.json").read_text())
    assert package_config["auto_map"] == AUTO_MAP
    assert json.loads((remote / "config.json").read_text()) == package_config
    for name in ("configuration_gexbert.py", "modeling_gexbert.py", "checkpoint_gexbert.py"):
        assert (remote / name).read_text() == (package / name).read_text(), name


def test_every_head_carries_all_remote_code_files_and_its_card(tiny_config, tmp_path):
    """Survival has no Auto class, so transformers would copy no code for it: the model's own save does."""
    GexBertForSurvival(tiny_config).save_pretrained(tmp_path)
    for name in REMOTE_CODE_FILES:
        assert (tmp_path / name).is_file(), name
    assert "# GexBERT (GexBertForSurvival)" in (tmp_path / "README.md").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == AUTO_MAP


def test_a_non_main_process_writes_no_card(tiny_config, tmp_path):
    GexBertForSurvival(tiny_config).save_pretrained(tmp_path, is_main_process=False)
    assert not (tmp_path / "README.md").exists()
