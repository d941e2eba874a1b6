"""The checkpoints that ship inside the package, by name: usable offline right after `pip install`.

`resolve_model("tcga31-mirna")` gives the folder of a shipped checkpoint; any other value is taken as a model folder
(or hub repo id) and returned unchanged, so every `--model` argument and `from_pretrained` call accepts both:

    from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer, pretrained_path
    model = GexBertForMaskedExpression.from_pretrained(pretrained_path("tcga31-mirna"))
    tokenizer = GexBertTokenizer.from_pretrained(pretrained_path("tcga31-mirna"))
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from pathlib import Path

from .errors import GexBertError

# name -> (folder inside gexbert_hf/pretrained/, what it was trained on)
PRETRAINED_MODELS: dict[str, tuple[str, str]] = {
    "tcga31-mirna": ("tcga31-mirna", "TCGA pan-cancer miRNA (31 types, log2 RPM), train split"),
    "tcga13-mrna": ("tcga13-mrna", "TCGA 13 cohorts, 1,526 mRNAs as per-cohort z-scores, train split"),
}


# name -> data folders (by folder name; an `.h5ad` by its file stem) the checkpoint must never be judged on: their test
# patients are in its training data. tcga13-mrna was pretrained on tcga13_cbioportal_zscore's train split, which holds
# the BLCA, STAD and COADREAD patients of tcga3_xena_log2tpm's test split (another normalisation of the same tumours).
# Its own folder's test split is fine: the checkpoint never saw it. tcga31-mirna shares patients with tcga3 too, but
# reads miRNAs, none of which tcga3 measures: nothing of its training values can reach a score there.
MUST_NOT_JUDGE: dict[str, tuple[str, ...]] = {
    "tcga13-mrna": ("tcga3_xena_log2tpm",),
}


class UnknownPretrainedModelError(GexBertError, LookupError):
    """A name that is neither a shipped checkpoint nor an existing folder."""


class TrainingOverlapError(GexBertError, ValueError):
    """A checkpoint asked to judge data whose patients it was trained on."""


def pretrained_path(name: str) -> Path:
    """The folder of the shipped checkpoint `name` (one of `PRETRAINED_MODELS`)."""
    if name not in PRETRAINED_MODELS:
        raise UnknownPretrainedModelError(f"{name!r} is not a shipped GexBERT checkpoint; {shipped_names_hint(name)}")
    folder = Path(str(resources.files("gexbert_hf").joinpath("pretrained", PRETRAINED_MODELS[name][0])))
    if not (folder / "config.json").is_file():
        raise UnknownPretrainedModelError(f"{name}: the shipped checkpoint is missing from this installation "
                                          f"({folder}); reinstall gexbert-hf")
    return folder


def shipped_names_hint(name: str | Path) -> str:
    """`shipped: tcga13-mrna, tcga31-mirna; did you mean tcga31-mirna?`: what a mistyped `--model` could have been."""
    hint = f"shipped: {', '.join(sorted(PRETRAINED_MODELS))}"
    close = difflib.get_close_matches(Path(str(name)).name, sorted(PRETRAINED_MODELS), n=1, cutoff=0.6)
    return hint + (f"; did you mean {close[0]}?" if close else "")


def refuse_missing_model(name: str | Path) -> None:
    """A `--model` that is neither an existing folder nor a shipped name: refused in one line that lists the
    shipped names and suggests the closest, instead of "no config.json" in a folder that does not exist."""
    if not Path(resolve_model(name)).exists():
        raise UnknownPretrainedModelError(f"{name}: no such model folder, and not the name of a shipped checkpoint "
                                          f"({shipped_names_hint(name)})")


def resolve_model(name_or_path: str | Path) -> str | Path:
    """A shipped checkpoint's folder for its name; anything else (a folder, a hub repo id) unchanged.

    An existing folder wins over a shipped name, so a user's own `./tcga31-mirna` is never shadowed.
    """
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED_MODELS and not Path(name_or_path).exists():
        return pretrained_path(name_or_path)
    return name_or_path


def shipped_checkpoint(model: str | Path) -> str | None:
    """The shipped checkpoint `model` is, or descends from: its name, its folder, or any folder whose config carries
    the shipped checkpoint's tokenizer fingerprint (a copy, or a model fine-tuned from it); else None."""
    path = Path(resolve_model(model))
    fingerprint = _fingerprint(path)
    for name in PRETRAINED_MODELS:
        try:
            shipped = pretrained_path(name)
        except UnknownPretrainedModelError:  # not installed here: it cannot be the model either
            continue
        if path.resolve() == shipped.resolve() or (fingerprint is not None and fingerprint == _fingerprint(shipped)):
            return name
    return None


def shipped_name_of_fingerprint(fingerprint: str | None) -> str | None:
    """The shipped checkpoint whose tokenizer has `fingerprint` (so a model fine-tuned or adapted from it), else None."""
    if fingerprint is None:
        return None
    for name in PRETRAINED_MODELS:
        try:
            if _fingerprint(pretrained_path(name)) == fingerprint:
                return name
        except UnknownPretrainedModelError:  # not installed here
            continue
    return None


def _fingerprint(folder: Path) -> str | None:
    """The tokenizer fingerprint a model folder's config.json records; None without a readable one."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("tokenizer_fingerprint") if isinstance(config, dict) else None


def refuse_training_overlap(model: str | Path, data: str | Path) -> None:
    """Raise `TrainingOverlapError` when `model` is (or descends from) a shipped checkpoint that `MUST_NOT_JUDGE`
    keeps off the data folder (or `.h5ad` file) `data`."""
    name = shipped_checkpoint(model)
    folders = {Path(data).name.removesuffix(".h5ad"), Path(data).resolve().name.removesuffix(".h5ad")}  # a link too
    forbidden = sorted(folders & set(MUST_NOT_JUDGE.get(name, ())))
    if forbidden:
        shown = name if str(model) == name else f"{model} ({name})"
        raise TrainingOverlapError(f"{shown} must not be judged on {forbidden[0]}: that folder's test patients are in "
                                   f"{name}'s training data; judge it on another folder")


__all__ = ["MUST_NOT_JUDGE", "PRETRAINED_MODELS", "TrainingOverlapError", "UnknownPretrainedModelError",
           "pretrained_path", "refuse_missing_model", "refuse_training_overlap", "resolve_model", "shipped_checkpoint",
           "shipped_name_of_fingerprint", "shipped_names_hint"]
