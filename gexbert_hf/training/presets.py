"""Model size presets and config assembly (preset, then a JSON file, then explicit overrides)."""

from __future__ import annotations

import json
from pathlib import Path

from ..configuration_gexbert import GexBertConfig
from ..tokenization_gexbert import GexBertTokenizer

MODEL_PRESETS: dict[str, dict] = {
    # seconds per test on a laptop CPU
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "max_genes": 64},
    # a laptop CPU: minutes of pretraining on a few thousand profiles
    "small": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "max_genes": 256},
    # a GPU
    "base": {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8, "max_genes": 1024},
}


def build_config(
    tokenizer: GexBertTokenizer, preset: str = "small", config_file: str | None = None, **overrides
) -> GexBertConfig:
    """Preset values, updated by a JSON file's, updated by `overrides` (None values are ignored)."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(MODEL_PRESETS)}")
    values = dict(MODEL_PRESETS[preset])
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"model config file {path} does not exist")
        values.update(json.loads(path.read_text()))
    values.update({key: value for key, value in overrides.items() if value is not None})
    return GexBertConfig.from_tokenizer(tokenizer, **values)
