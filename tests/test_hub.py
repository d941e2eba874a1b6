"""Saving, loading, Auto classes, remote code in a process without gexbert_hf, and the hub upload path."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from remote_code import run_without_package
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from gexbert_hf import GexBertConfig, GexBertModel
from gexbert_hf.modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
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


# ----------------------------------------------------------------------------------------------------------------------
# the tokenizer travels with the checkpoint (issue #13, section 1)
# ----------------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def exported(tiny_config, embedded_tokenizer, tmp_path):
    """A masked-expression model and its tokenizer, saved then exported with `gexbert export`."""
    from gexbert_hf.commands.export import ExportArguments, export_model

    torch.manual_seed(0)
    model = GexBertForMaskedExpression(tiny_config).eval()
    model.save_pretrained(tmp_path / "model")
    embedded_tokenizer.save_pretrained(tmp_path / "model")
    export_model(ExportArguments(model=str(tmp_path / "model"), output=str(tmp_path / "export")))
    return model, tmp_path / "export"


def test_checkpoint_carries_the_tokenizer_code_and_its_auto_map(exported):
    _, export = exported
    for name in (*TOKENIZER_CODE_FILES, "configuration_gexbert.py", "preprocessor_config.json"):
        assert (export / name).is_file(), name
    entry = json.loads((export / "preprocessor_config.json").read_text())
    assert entry["auto_map"]["AutoFeatureExtractor"] == "tokenization_gexbert.GexBertTokenizer"
    config = json.loads((export / "config.json").read_text())
    assert config["auto_map"]["AutoFeatureExtractor"] == "tokenization_gexbert.GexBertTokenizer"
    for name in TOKENIZER_CODE_FILES:
        for imported, relative in _imports((export / name).read_text()):
            if relative:  # a sibling: it must travel too
                assert (export / f"{imported}.py").is_file(), (name, imported)
            else:
                assert imported in REMOTE_IMPORTS or imported in sys.stdlib_module_names, (name, imported)


TOKENIZER_CODE_FILES = ("tokenization_gexbert.py", "errors_gexbert.py", "expression_input_gexbert.py", "levels_gexbert.py",
                        "inputs_gexbert.py")
REMOTE_IMPORTS = {"numpy", "torch", "transformers", "safetensors", "pandas"}


def _imports(source: str) -> list[tuple[str, bool]]:
    """(top-level module, is relative) of every import statement of a source file."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(((node.module or "").split(".")[0], node.level > 0))
    return found


def test_auto_feature_extractor_gives_the_package_tokenizer_where_installed(exported, embedded_tokenizer):
    from transformers import AutoFeatureExtractor

    from gexbert_hf import GexBertTokenizer

    loaded = AutoFeatureExtractor.from_pretrained(exported[1])
    assert type(loaded) is GexBertTokenizer and loaded.genes == embedded_tokenizer.genes
    np.testing.assert_array_equal(loaded.level_edges, embedded_tokenizer.level_edges)


def test_auto_tokenizer_and_model_work_without_the_package(exported, embedded_tokenizer, embedded_cohort, tmp_path):
    model, export = exported
    frame = embedded_cohort.expression.iloc[:5].copy()
    frame.iloc[0, :10] = np.nan  # not measured: MISSING tokens
    frame.iloc[2, 30] = np.nan
    frame.to_csv(tmp_path / "frame.csv")
    np.save(tmp_path / "array.npy", frame.to_numpy())
    expected = {}
    with torch.no_grad():
        for name, inputs in (("frame", embedded_tokenizer(frame)),
                             ("array", embedded_tokenizer(frame.to_numpy(), genes=list(frame.columns)))):
            outputs = model(**inputs)
            expected[f"{name}_input_ids"] = inputs["input_ids"].numpy()
            expected[f"{name}_level_ids"] = inputs["level_ids"].numpy()
            expected[f"{name}_logits"] = outputs.level_logits.numpy()
            expected[f"{name}_values"] = outputs.value_predictions.numpy()
    np.savez(tmp_path / "expected.npz", **expected)
    result = run_without_package(f"""
        import numpy as np, pandas as pd, torch
        from transformers import AutoFeatureExtractor, AutoModelForMaskedLM
        tokenizer = AutoFeatureExtractor.from_pretrained({str(export)!r}, trust_remote_code=True)
        model = AutoModelForMaskedLM.from_pretrained({str(export)!r}, trust_remote_code=True).eval()
        for thing in (tokenizer, model):
            assert type(thing).__module__.startswith("transformers_modules"), type(thing).__module__
        expected = np.load("expected.npz")
        frame = pd.read_csv("frame.csv", index_col=0)
        array = np.load("array.npy")
        for name, inputs in (("frame", tokenizer(frame)), ("array", tokenizer(array, genes=list(frame.columns)))):
            with torch.no_grad():
                outputs = model(**inputs)
            np.testing.assert_array_equal(inputs["input_ids"].numpy(), expected[name + "_input_ids"])
            np.testing.assert_array_equal(inputs["level_ids"].numpy(), expected[name + "_level_ids"])
            np.testing.assert_allclose(outputs.level_logits.numpy(), expected[name + "_logits"], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(outputs.value_predictions.numpy(), expected[name + "_values"], rtol=1e-5,
                                       atol=1e-6)
        try:
            tokenizer(frame.assign(**{{frame.columns[0]: np.inf}}))
        except ValueError as error:
            assert type(error).__name__ == "ExpressionInputError" and frame.columns[0] in str(error), error
        else:
            raise AssertionError("inf was accepted")
        print("remote", type(tokenizer).__module__, type(model).__module__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote transformers_modules" in result.stdout


def test_remote_tokenizer_loads_without_pandas_and_says_what_to_install(exported, tmp_path):
    result = run_without_package(f"""
        class BlockPandas(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ModuleNotFoundError(f"blocked: {{name}}")
        sys.modules.pop("pandas", None)
        sys.meta_path.insert(0, BlockPandas())
        import numpy as np
        from transformers import AutoFeatureExtractor
        tokenizer = AutoFeatureExtractor.from_pretrained({str(exported[1])!r}, trust_remote_code=True)
        assert "pandas" not in sys.modules and len(tokenizer.genes) == 76, tokenizer
        try:
            tokenizer(np.ones((2, 3)), genes=tokenizer.genes[:3])
        except ImportError as error:
            print("refused:", error)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: GexBertTokenizer reads expression matrices with pandas" in result.stdout


def test_tokenizer_from_pretrained_resolves_hub_repo_files(embedded_tokenizer, tmp_path, monkeypatch):
    """A repo id (not a directory) goes through transformers' `cached_file` with the hub options it was given."""
    import gexbert_hf.tokenization_gexbert as tokenization
    from gexbert_hf import GexBertTokenizer

    embedded_tokenizer.save_pretrained(tmp_path / "snapshot")
    requests = []

    def cached_file(repo_id, filename, _raise_exceptions_for_missing_entries=True, **options):
        requests.append((repo_id, filename, options))
        path = tmp_path / "snapshot" / filename
        return str(path) if path.is_file() else None

    monkeypatch.setattr(tokenization, "cached_file", cached_file)
    loaded = GexBertTokenizer.from_pretrained("someone/gexbert-tiny", revision="v1", _from_auto=True)
    assert loaded.genes == embedded_tokenizer.genes
    assert [(repo, name) for repo, name, _ in requests] == [
        ("someone/gexbert-tiny", "gexbert_tokenizer.json"), ("someone/gexbert-tiny", "gexbert_tokenizer.safetensors"),
        ("someone/gexbert-tiny", "config.json")]  # a fine-tuned model's panel, when one is saved beside
    assert all(options == {"revision": "v1"} for _, _, options in requests)
    (tmp_path / "snapshot" / "gexbert_tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="someone/gexbert-tiny: no GexBERT tokenizer"):
        GexBertTokenizer.from_pretrained("someone/gexbert-tiny")


# ----------------------------------------------------------------------------------------------------------------------
# what a new user hit (issue 20, item 5): shipped names, hub offline, the exported card, the load report
# ----------------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def no_hub(monkeypatch):
    """Any attempt to reach the hub fails the test."""
    import huggingface_hub
    import transformers.utils.hub

    def refuse(*args, **kwargs):
        raise AssertionError(f"the hub was asked for {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub.file_download, "hf_hub_download", refuse)
    monkeypatch.setattr(transformers.utils.hub, "hf_hub_download", refuse, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("model_class", [GexBertForMaskedExpression, GexBertForSequenceClassification,
                                         GexBertForSurvival, GexBertModel])
def test_from_pretrained_resolves_shipped_names_locally(model_class, no_hub, capfd):
    from gexbert_hf import GexBertTokenizer, pretrained_path

    folder = pretrained_path("tcga31-mirna")
    model = model_class.from_pretrained("tcga31-mirna")
    assert model.name_or_path == str(folder)
    reference = GexBertModel.from_pretrained(folder)
    encoder = model if isinstance(model, GexBertModel) else model.gexbert
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, encoder.state_dict()[name]), name
    assert GexBertTokenizer.from_pretrained("tcga31-mirna").fingerprint == model.config.tokenizer_fingerprint
    assert GexBertConfig.from_pretrained("tcga13-mrna").vocab_size == 1528
    # a new head on a pretrained encoder lacks its own weights: expected, so no load report in normal output
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in printed.err + printed.out and "MISSING" not in printed.err


def test_a_load_report_still_speaks_when_encoder_weights_are_missing(tmp_path, caplog):
    from safetensors.torch import load_file, save_file

    GexBertForMaskedExpression.from_pretrained("tcga31-mirna").save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["gexbert.embeddings.LayerNorm.bias"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with caplog.at_level("WARNING"):
        GexBertForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert "encoder weights missing: gexbert.embeddings.LayerNorm.bias" in caplog.text


def test_shipped_names_go_to_the_hub_when_run_as_remote_code(tmp_path):
    """As remote code the config file has no `pretrained` folder beside it: a name passes on unchanged."""
    import importlib.util

    from gexbert_hf import configuration_gexbert

    copy = tmp_path / "configuration_gexbert.py"
    copy.write_text(Path(configuration_gexbert.__file__).read_text())
    spec = importlib.util.spec_from_file_location("remote_configuration_gexbert", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.shipped_checkpoint_folder("tcga31-mirna") == "tcga31-mirna"
    assert configuration_gexbert.shipped_checkpoint_folder("tcga31-mirna").endswith("pretrained/tcga31-mirna")
    assert configuration_gexbert.shipped_checkpoint_folder("someone/tcga31-mirna") == "someone/tcga31-mirna"


def test_push_to_hub_offline_fails_in_one_line(tiny_config, embedded_tokenizer, monkeypatch):
    import huggingface_hub

    from gexbert_hf.errors import GexBertError, HubConnectionError

    model = GexBertForMaskedExpression(tiny_config)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubConnectionError, match="offline mode is on") as offline:
        model.push_to_hub("someone/gexbert-tiny", tokenizer=embedded_tokenizer)
    assert isinstance(offline.value, GexBertError) and "\n" not in str(offline.value)

    class ConnectError(Exception):  # what the hub client's HTTP library raises without a network
        pass

    def unreachable(self, repo_id, **kwargs):
        raise ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", unreachable)
    with pytest.raises(HubConnectionError, match="cannot be reached .*Name or service not known.*nothing was") as down:
        model.push_to_hub("someone/gexbert-tiny")
    assert down.value.__cause__ is None and down.value.__suppress_context__  # one line, no chained traceback

    def refused(self, repo_id, **kwargs):
        raise PermissionError("401 Unauthorized")  # not a connection failure: passed on as it is

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refused)
    with pytest.raises(PermissionError):
        model.push_to_hub("someone/gexbert-tiny")


def test_pretrain_push_to_hub_offline_is_one_line_before_any_training(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from gexbert_hf.cli import main

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["pretrain", "--dataset", str(tmp_path / "dataset"), "--output_dir", str(tmp_path / "model"),
                 "--preset", "tiny", "--max_steps", "2", "--batch_size", "16", "--progress", "false",
                 "--push_to_hub", "someone/gexbert"]) == 2
    printed = capsys.readouterr()
    assert printed.err.strip().splitlines() == [
        "gexbert pretrain: error: push_to_hub someone/gexbert: offline mode is on (HF_HUB_OFFLINE=1), nothing was "
        "uploaded; save it locally with `model.save_pretrained(folder)` or `gexbert export`, and push when online"]
    assert not (tmp_path / "model").exists()  # refused before training, not after hours of it


def _finetuned_from_shipped(folder, head_class, metrics=None, **config):
    from gexbert_hf import GexBertTokenizer

    model = head_class.from_pretrained("tcga31-mirna", **config)
    model.save_pretrained(folder)
    GexBertTokenizer.from_pretrained("tcga31-mirna").save_pretrained(folder)
    if metrics is not None:
        (folder / "finetune_metrics.json").write_text(json.dumps(metrics))
    return folder


def _front_matter(card: str) -> str:
    return card.split("---\n")[1]


def test_a_finetuned_exports_card_inherits_the_parents_terms_and_names_it(tmp_path):
    from gexbert_hf.cli import main

    metrics = {"validation": {"eval_accuracy": 0.8, "test_accuracy": 0.71, "test_macro_f1": 0.6},  # as older runs
               "test": {"accuracy": 0.71, "macro_f1": 0.6}}                                       # filed them
    source = _finetuned_from_shipped(tmp_path / "classifier", GexBertForSequenceClassification, metrics,
                                     num_labels=2, id2label={0: "BRCA", 1: "LUAD"}, label2id={"BRCA": 0, "LUAD": 1})
    assert main(["export", "--model", str(source), "--output", str(tmp_path / "export")]) == 0
    card = (tmp_path / "export" / "README.md").read_text()
    front = _front_matter(card)
    assert "license: other" in front and "apache-2.0" not in front and "license_name: tcga-research-use-only" in front
    assert "base_model: tcga31-mirna\nbase_model_relation: finetune" in front
    assert "model-index:" in front and "type: tabular-classification" in front and "split: test" in front
    assert "type: accuracy\n      value: 0.71" in front and "type: macro_f1" in front and "eval_accuracy" not in front
    assert "AutoModelForSequenceClassification.from_pretrained(checkpoint, trust_remote_code=True)" in card
    assert "AutoModelForMaskedLM" not in card and "level_logits" not in card
    assert "| test | accuracy | 0.7100 |" in card and "| validation | test_accuracy" not in card
    assert "## Parent checkpoint and data terms" in card and "research only" in card
    assert "RTCGA.miRNASeq" in card  # the parent's provenance, quoted from its card
    assert "{{" not in card and "\n\n\n" not in card

    survival = _finetuned_from_shipped(tmp_path / "survival", GexBertForSurvival)
    assert main(["export", "--model", str(survival), "--output", str(tmp_path / "export_survival")]) == 0
    card = (tmp_path / "export_survival" / "README.md").read_text()
    assert 'get_class_from_dynamic_module("modeling_gexbert.GexBertForSurvival", checkpoint)' in card
    assert "base_model: tcga31-mirna" in _front_matter(card) and "model-index" not in card

    assert main(["export", "--model", "tcga31-mirna", "--output", str(tmp_path / "export_shipped")]) == 0
    front = _front_matter((tmp_path / "export_shipped" / "README.md").read_text())
    assert "license: other" in front and "base_model" not in front  # the shipped checkpoint is no descendant


def test_pin_memory_warning_stays_out_of_a_cpu_run():
    """transformers' Trainer pins memory by default; on a CPU-only machine torch then warns on every epoch. The
    package's import filters that one message (called again here: pytest drops filters set while it collects)."""
    import warnings

    import gexbert_hf

    if torch.accelerator.is_available():
        pytest.skip("an accelerator is present: the warning does not arise")
    loader = torch.utils.data.DataLoader(torch.arange(8.0), batch_size=4, pin_memory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every occurrence, not once per place
        assert sum(batch.numel() for batch in loader) == 8
        assert [warning for warning in caught if "'pin_memory' argument is set as true" in str(warning.message)]
        caught.clear()
        gexbert_hf._silence_expected_warnings()
        assert sum(batch.numel() for batch in loader) == 8
        warnings.warn("another warning still shows", UserWarning, stacklevel=1)
    assert [str(warning.message) for warning in caught] == ["another warning still shows"]
    assert "_silence_expected_warnings()" in Path(gexbert_hf.__file__).read_text().split("def _silence")[1]
