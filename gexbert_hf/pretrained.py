"""The checkpoints that ship inside the package, by name: usable offline right after `pip install`.

`resolve_model("tcga31-mirna")` gives the folder of a shipped checkpoint; any other value is taken as a model folder
(or hub repo id) and returned unchanged, so every `--model` argument and `from_pretrained` call accepts both:

    from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer, pretrained_path
    model = GexBertForMaskedExpression.from_pretrained(pretrained_path("tcga31-mirna"))
    tokenizer = GexBertTokenizer.from_pretrained(pretrained_path("tcga31-mirna"))
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import GexBertError

# name -> (folder inside gexbert_hf/pretrained/, what it was trained on)
PRETRAINED_MODELS: dict[str, tuple[str, str]] = {
    "tcga31-mirna": ("tcga31-mirna", "TCGA pan-cancer miRNA (31 types, log2 RPM), train split"),
    "tcga13-mrna": ("tcga13-mrna", "TCGA 13 cohorts, 1,526 mRNAs as per-cohort z-scores, train split"),
}


class UnknownPretrainedModelError(GexBertError, LookupError):
    """A name that is neither a shipped checkpoint nor an existing folder."""


def pretrained_path(name: str) -> Path:
    """The folder of the shipped checkpoint `name` (one of `PRETRAINED_MODELS`)."""
    if name not in PRETRAINED_MODELS:
        raise UnknownPretrainedModelError(f"{name!r} is not a shipped GexBERT checkpoint; shipped: "
                                          f"{', '.join(sorted(PRETRAINED_MODELS))}")
    folder = Path(str(resources.files("gexbert_hf").joinpath("pretrained", PRETRAINED_MODELS[name][0])))
    if not (folder / "config.json").is_file():
        raise UnknownPretrainedModelError(f"{name}: the shipped checkpoint is missing from this installation "
                                          f"({folder}); reinstall gexbert-hf")
    return folder


def resolve_model(name_or_path: str | Path) -> str | Path:
    """A shipped checkpoint's folder for its name; anything else (a folder, a hub repo id) unchanged.

    An existing folder wins over a shipped name, so a user's own `./tcga31-mirna` is never shadowed.
    """
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED_MODELS and not Path(name_or_path).exists():
        return pretrained_path(name_or_path)
    return name_or_path


__all__ = ["PRETRAINED_MODELS", "UnknownPretrainedModelError", "pretrained_path", "resolve_model"]
