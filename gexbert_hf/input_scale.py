"""The scale check at the door of `impute`, `predict`, `embed`, `adapt` and `evaluate`: is the input on the scale the
checkpoint was trained on?

A model fed raw counts where it learnt log2 RPM, or log2 TPM where it learnt z-scores, runs without complaint and
returns numbers on the wrong scale (the observed cells on one, the filled ones on another). The tokenizer knows each
gene's training distribution (a robust centre and scale), so the input's measured cells are compared with it:
- most cells far outside (`|z| > OUTSIDE_Z` for over half of them) or a typical gene shifted by more than
  `REFUSE_SHIFT` training SDs: the wrong scale, refused with one line naming the expected scale, what the input
  looks like and the transform to apply (`scale_check="warn"` or `"off"`, `--scale_check warn`, proceeds anyway);
- a milder shift or spread change (another platform or lab): one warning with the numbers and a pointer to
  `gexbert adapt`, which refits the levels and continues pretraining on the user's own cohort.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .errors import GexBertError
from .tokenization_gexbert import SPECIAL_TOKENS, GexBertTokenizer

SCALE_CHECKS = ("refuse", "warn", "off")
OUTSIDE_Z = 4.0  # robust z beyond which a cell lies outside the gene's training range
REFUSE_OUTSIDE = 0.5  # share of cells outside: "mostly outside" = the wrong scale
REFUSE_SHIFT = 4.0  # upper quartile over genes of |median z|: the expressed genes move most under a wrong scale
REFUSE_RANGE = 4.0  # the input's 99th percentile above this many times the training's highest decoded level
WARN_OUTSIDE = 0.15
WARN_SHIFT = 2.0  # one cancer type of a pan-cancer checkpoint reaches 1.6 (TGCT in tcga31): biology, not platform
WARN_SPREAD = 2.0  # input spread / training spread above this warns (narrower is normal: one type of many)
MIN_SAMPLES_FOR_SPREAD = 10


class InputScaleError(GexBertError, ValueError):
    """Input on another scale than the checkpoint's (counts into a log model, log values into a z-score model)."""


@dataclass(frozen=True)
class ScaleVerdict:
    """How the input's measured cells sit against the checkpoint's training distribution (robust z units)."""

    status: str  # "ok", "shifted" or "wrong_scale"
    shift: float  # upper quartile over genes of |median z|
    outside: float  # share of measured cells with |z| > OUTSIDE_Z
    spread: float  # median over genes of the input's robust SD / the training one (nan with few samples)
    genes: int  # genes compared
    beyond_range: bool = False  # the top percentile far above anything the checkpoint decodes to (unlogged values)

    def numbers(self) -> str:
        spread = "" if np.isnan(self.spread) else f", spread x{self.spread:.2f} of training"
        return (f"a quarter of the genes shifted by {self.shift:.2f} training SDs or more, {100 * self.outside:.0f}% of measured cells "
                f"beyond {OUTSIDE_Z:g} SDs{spread} ({self.genes} genes)")


def assess_input_scale(tokenizer: GexBertTokenizer, normalized: np.ndarray, gene_index: np.ndarray) -> ScaleVerdict:
    """Compare normalised values (samples x genes, NaN = not measured; `gene_index` = vocabulary positions) with
    the tokenizer's per-gene training centre and scale."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (normalized - tokenizer.center[gene_index]) / tokenizer.scale[gene_index]
    measured = ~np.isnan(z)
    compared = measured.any(axis=0)
    if not compared.any():
        return ScaleVerdict("ok", 0.0, 0.0, float("nan"), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN genes in nanmedian
        shift = float(np.nanquantile(np.abs(np.nanmedian(z[:, compared], axis=0)), 0.75))
        outside = float((np.abs(z[measured]) > OUTSIDE_Z).mean())
        spread = float("nan")
        if len(z) >= MIN_SAMPLES_FOR_SPREAD:
            quartiles = np.nanquantile(z[:, compared], [0.25, 0.75], axis=0)
            spread = float(np.nanmedian((quartiles[1] - quartiles[0]) / 1.349))
    beyond_range = _beyond_training_range(tokenizer, normalized)
    if outside > REFUSE_OUTSIDE or shift > REFUSE_SHIFT or beyond_range:
        status = "wrong_scale"
    elif outside > WARN_OUTSIDE or (not np.isnan(spread) and (  # shift and spread need enough samples to mean much
            shift > WARN_SHIFT or spread > WARN_SPREAD)):
        status = "shifted"
    else:
        status = "ok"
    return ScaleVerdict(status, shift, outside, spread, int(compared.sum()), beyond_range)


def check_input_scale(tokenizer: GexBertTokenizer, raw: np.ndarray, normalized: np.ndarray, gene_index: np.ndarray,
                      source: str, scale_check: str = "refuse", for_adaptation: bool = False) -> ScaleVerdict:
    """`assess_input_scale`, then refuse (`InputScaleError`) or warn as `scale_check` says; `raw` are the values as
    given (before the tokenizer's normalisation), which the message describes. `for_adaptation`: `adapt` refits
    each gene's levels, which undoes a per-gene shift of any size, so only another kind of values is refused there
    (unlogged values into a log model, z-scores into a log model or back) and a shift passes without a word."""
    if scale_check not in SCALE_CHECKS:
        raise ValueError(f"scale_check must be one of {SCALE_CHECKS}, got {scale_check!r}")
    if scale_check == "off":
        return ScaleVerdict("ok", float("nan"), float("nan"), float("nan"), 0)
    verdict = assess_input_scale(tokenizer, normalized, gene_index)
    looks, wants = describe_values(raw), expected_scale(tokenizer)
    other_kind = looks.startswith("per-gene z-scores") != ("z-score" in wants) and not looks.startswith("log-scale")
    if other_kind or verdict.beyond_range:  # z-scores into a log model (or back); unlogged into a log model
        verdict = replace(verdict, status="wrong_scale")
    elif for_adaptation:
        return replace(verdict, status="ok" if verdict.status == "ok" else "shifted")
    if verdict.status == "wrong_scale":
        message = (f"{source}: not on the checkpoint's scale: it expects {wants}; the input "
                   f"looks like {looks} ({verdict.numbers()}); "
                   f"{suggest_transform(raw, tokenizer)}")
        if scale_check == "refuse":
            raise InputScaleError(message + " (to proceed anyway: --scale_check warn, or scale_check='warn')")
        warnings.warn(message, stacklevel=3)
    elif verdict.status == "shifted":
        warnings.warn(f"{source}: the input differs from the checkpoint's training data ({verdict.numbers()}); "
                      "a cohort from another platform or lab is best served by a checkpoint adapted to it: "
                      "gexbert adapt --model ... --data_dir YOUR_COHORT --output adapted/", stacklevel=3)
    return verdict


def scale_check_field():
    """The `--scale_check` flag, one help text for every command that reads a cohort with a checkpoint."""
    return field(default="refuse", metadata={
        "help": "Input on another scale than the checkpoint's (counts into a log model, log values into a z-score "
                "model): refuse (exit 2, naming the transform to apply) | warn | off."})


def check_frame_scale(tokenizer: GexBertTokenizer, known: pd.DataFrame, source: str, scale_check: str = "refuse",
                      for_adaptation: bool = False, normalized: np.ndarray | None = None) -> ScaleVerdict:
    """`check_input_scale` of a matrix whose columns are vocabulary genes (`Tokenizer.match_genes`); `normalized`,
    its working-scale values where the caller has them already (`encode_known`), spares normalising it again."""
    if normalized is None:
        normalized = tokenizer.normalize(known.to_numpy(), known.columns)
    gene_index = tokenizer.convert_genes_to_ids(list(known.columns)) - len(SPECIAL_TOKENS)
    return check_input_scale(tokenizer, known.to_numpy(dtype=np.float64), normalized, gene_index, source,
                             scale_check, for_adaptation)


def expected_input(tokenizer: GexBertTokenizer) -> str:
    """The input a checkpoint expects, in one line: scale, id type, value range (model cards, `gexbert impute
    --help`, the scale check's messages all say the same)."""
    from .expression_input_gexbert import describe_ids

    edges = tokenizer.level_edges
    low, high = (float(np.percentile(edges[:, 0], 5)), float(np.percentile(edges[:, -1], 95)))
    if tokenizer.normalization == "log1p":
        low, high = float(np.expm1(low)), float(np.expm1(high))
    return (f"{expected_scale(tokenizer)}; ids: {describe_ids(tokenizer.genes)}; most training values between "
            f"{low:.3g} and {high:.3g}")


def expected_scale(tokenizer: GexBertTokenizer) -> str:
    """The checkpoint's scale in words: its own record where it has one, else read off its training statistics."""
    recorded = getattr(tokenizer, "expression_scale", None)
    if recorded:
        return recorded
    if tokenizer.normalization == "log1p":
        return "non-negative counts or TPM (the tokenizer takes log1p itself)"
    if _looks_standardised(tokenizer.center, tokenizer.scale, tokenizer.level_edges[:, 0]):
        return "per-gene z-scores (centred on 0, SD about 1)"
    low, high = np.percentile(tokenizer.center, [5, 95])
    return f"log-scale expression (per-gene medians {low:.1f} to {high:.1f})"


def describe_values(raw: np.ndarray) -> str:
    """What a matrix of values as given looks like: raw counts, unlogged values, z-scores or log-scale values."""
    values = raw[~np.isnan(raw)]
    if values.size == 0:
        return "no measured values"
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high > 1000 and np.all(values == np.round(values)):
        return f"raw counts (non-negative integers up to {high:.3g})"
    if low >= 0 and high > 100:
        return f"unlogged values (non-negative, up to {high:.3g}: TPM, RPM or counts?)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centers = np.nanmedian(raw, axis=0)
        quartiles = (np.nanquantile(raw, [0.05, 0.25, 0.75], axis=0) if len(raw) >= MIN_SAMPLES_FOR_SPREAD
                     else None)
    if quartiles is not None and _looks_standardised(centers, (quartiles[2] - quartiles[1]) / 1.349, quartiles[0]):
        return "per-gene z-scores (centred on 0, SD about 1)"
    return f"log-scale values ({low:.3g} to {high:.3g})"


def suggest_transform(raw: np.ndarray, tokenizer: GexBertTokenizer) -> str:
    """The transform that brings an input like `raw` to the checkpoint's scale."""
    looks = describe_values(raw)
    wants = expected_scale(tokenizer)
    if looks.startswith(("raw counts", "unlogged")) and "z-score" in wants:
        return "apply log2(x + 1), then z-score each gene within each cohort (subtract its mean, divide by its SD)"
    if looks.startswith("raw counts"):
        return "apply log2(counts per million + 1): log2(1e6 * x / library size + 1)"
    if looks.startswith("unlogged"):
        return "apply log2(x + 1)"
    if "z-score" in wants and not looks.startswith("per-gene z-scores"):
        return "z-score each gene within each cohort or cancer type: (x - gene mean) / gene SD"
    if looks.startswith("per-gene z-scores"):
        return "give the log-scale values the z-scores were computed from: z-scores cannot be turned back"
    return "bring the values to the checkpoint's scale (see its model card), or adapt it to yours (gexbert adapt)"


def _beyond_training_range(tokenizer: GexBertTokenizer, normalized: np.ndarray) -> bool:
    """Unlogged values into a model of logged ones: the input's top percentile far above anything it decodes to."""
    values = normalized[~np.isnan(normalized)]
    if values.size == 0:
        return False
    top = max(float(np.max(tokenizer.level_values)), 1.0)
    return bool(np.quantile(values, 0.99) > REFUSE_RANGE * top)


def _looks_standardised(centers: np.ndarray, scales: np.ndarray, lows: np.ndarray) -> bool:
    """Centred on 0 with SD about 1 per gene, and reaching well below 0 (log2 RPM centred near 0 does not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(abs(np.nanmedian(centers)) < 0.5 and 0.5 < np.nanmedian(scales) < 2.0
                    and np.nanmedian(lows) < -0.5)


__all__ = ["InputScaleError", "SCALE_CHECKS", "ScaleVerdict", "assess_input_scale", "check_frame_scale", "check_input_scale",
           "describe_values", "expected_input", "expected_scale", "scale_check_field", "suggest_transform"]
