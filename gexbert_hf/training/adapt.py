"""Adapting a pretrained GexBERT to a user's cohort: continued masked-expression pretraining on its own unlabelled
profiles, with the level edges refitted on that cohort.

Why: on a cohort from another platform the shipped checkpoints lose imputation to KNN and SoftImpute fitted on the
cohort itself. Their levels are per-gene quantiles of TCGA; another platform's offsets, scales and detection floor
put its values into other levels than the same biology had in TCGA. Refitting the edges on the cohort (a quantile
normalisation per gene) maps the cohort's values onto the levels the model knows; a few minutes of continued
masked-expression pretraining (the package's own loop, `pretrain_model`) then teaches the weights the cohort's
co-expression. Genes the cohort does not measure keep the checkpoint's statistics and embeddings and are never
targets; neither are scattered missing cells (the collator never masks a MISSING token).

The adapted tokenizer keeps the genes, their order, the level count and the normalisation, so the model's
embeddings and its `tokenizer_fingerprint` stay valid: an adapted checkpoint loads wherever the parent does.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..data.samples import EncodedSamples
from ..errors import GexBertError
from ..expression_input_gexbert import as_expression_frame
from ..input_scale import check_frame_scale
from ..levels_gexbert import fit_level_statistics
from ..modeling_gexbert import GexBertForMaskedExpression
from ..tokenization_gexbert import GexBertTokenizer
from .pretrain import PretrainingOptions, pretrain_model
from .sample_hashes import training_sample_hashes

logger = logging.getLogger(__name__)

MIN_MEASURED_FOR_REFIT = 20  # fewer measured values than this give quantile edges too noisy to replace TCGA's
TRAINABLE_CHOICES = ("all", "top", "heads")
STEP_OVERHEAD = 1.1  # the collator, optimiser step and logging around a timed forward/backward


class AdaptationError(GexBertError, ValueError):
    """A cohort or a recipe that adaptation cannot work with (too few samples or genes, an unknown choice)."""


@dataclass(kw_only=True)
class AdaptationRecipe:
    """How a checkpoint is adapted. Measured on simulated platform shifts (reports/adapt/): lr 2e-4 beat 5e-4 on
    tcga31 (a small search: 2-4 steps per recipe on a loaded CPU, held-out adapt samples); on tcga13 more steps of
    this recipe kept helping (24 -> 52 steps: RMSE 0.604 -> 0.589 at 50% MCAR); on tcga31 the level refit alone had
    the lower RMSE and the 13 steps added only per-gene r. 256 genes per step (not all of a profile) is a cost choice,
    not a measured optimum."""

    learning_rate: float = field(default=2e-4, metadata={"help": "Peak AdamW learning rate."})
    min_mask_fraction: float = field(default=0.15, metadata={"help": "Lowest per-sample mask rate."})
    max_mask_fraction: float = field(default=0.95, metadata={"help": "Highest per-sample mask rate (< 1)."})
    trainable: str = field(default="all", metadata={
        "help": "Which weights move: all; top (the upper half of the encoder, the decoder and the heads); heads "
                "(decoder and heads)."})
    refit_levels: bool = field(default=True, metadata={"help": "Refit the level edges on the cohort."})
    batch_size: int = field(default=32, metadata={"help": "Samples per step."})
    max_genes: int | None = field(default=256, metadata={
        "help": "Measured genes sampled per sample and step (None: the model's max_genes). Attention costs grow "
                "with its square: fewer genes buy more steps in the time bound."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps warming up before cosine decay."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_steps: int = field(default=400, metadata={"help": "Most steps, whatever the time allows."})
    min_measured: int = field(default=MIN_MEASURED_FOR_REFIT, metadata={
        "help": "A gene's level edges are refitted only with at least this many measured values in the cohort."})
    seed: int = field(default=0, metadata={"help": "Seed of data order and masking."})


@dataclass
class AdaptationResult:
    """The adapted model and tokenizer, and the record their config carries (`config.adaptation`)."""

    model: GexBertForMaskedExpression
    tokenizer: GexBertTokenizer
    record: dict
    history: list[dict]


# ----------------------------------------------------------------------------------------------------------------------
# level edges
# ----------------------------------------------------------------------------------------------------------------------
def refit_level_statistics(tokenizer: GexBertTokenizer, frame: pd.DataFrame, min_measured: int = MIN_MEASURED_FOR_REFIT
                           ) -> tuple[GexBertTokenizer, list[str]]:
    """A new tokenizer with the old one's genes (same order), normalisation and level count, whose level edges,
    level values, centre and scale are refitted on `frame` (samples x vocabulary genes, raw scale) for each gene with
    at least `min_measured` measured values; every other gene keeps the old statistics. Returns it and the genes
    refitted."""
    normalized = tokenizer.normalize(frame.to_numpy(dtype=np.float64), list(frame.columns))
    measured = (~np.isnan(normalized)).sum(axis=0)
    chosen = np.flatnonzero(measured >= max(min_measured, 2))
    arrays = {"level_edges": tokenizer.level_edges.copy(), "level_values": tokenizer.level_values.copy(),
              "center": tokenizer.center.copy(), "scale": tokenizer.scale.copy()}
    refitted = [str(frame.columns[j]) for j in chosen]
    if len(chosen):
        fitted = fit_level_statistics(normalized[:, chosen], tokenizer.num_levels)
        rows = np.array([tokenizer.gene_to_index[gene] for gene in refitted])
        for key, values in fitted.items():
            arrays[key][rows] = values
    adapted = GexBertTokenizer(genes=tokenizer.genes, normalization=tokenizer.normalization,
                               value_clip=tokenizer.value_clip, **arrays)
    return adapted, refitted


# ----------------------------------------------------------------------------------------------------------------------
# which weights move
# ----------------------------------------------------------------------------------------------------------------------
def freeze_for_recipe(model: GexBertForMaskedExpression, trainable: str) -> int:
    """Set `requires_grad` as the recipe says; returns the number of trainable parameters."""
    if trainable not in TRAINABLE_CHOICES:
        raise AdaptationError(f"trainable must be one of {TRAINABLE_CHOICES}, got {trainable!r}")
    for parameter in model.parameters():
        parameter.requires_grad = trainable == "all"
    if trainable != "all":
        moving = [model.decoder, model.level_head, model.value_head]
        if trainable == "top":
            layers = model.gexbert.encoder.layer
            moving += [*layers[len(layers) // 2:], model.gexbert.encoder.final_norm]
        for module in moving:
            for parameter in module.parameters():
                parameter.requires_grad = True
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


# ----------------------------------------------------------------------------------------------------------------------
# the time bound
# ----------------------------------------------------------------------------------------------------------------------
def seconds_per_step(model: GexBertForMaskedExpression, tokenizer: GexBertTokenizer, samples: EncodedSamples,
                     recipe: AdaptationRecipe) -> float:
    """One forward and backward of a training batch, timed (gradients discarded), so that the learning-rate
    schedule can span the steps the time bound allows instead of being cut off mid-way."""
    from ..data.collator import DataCollatorForMaskedExpression

    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=recipe.max_genes or model.config.max_genes,
                                               mask_fraction=recipe.min_mask_fraction,
                                               max_mask_fraction=recipe.max_mask_fraction, seed=recipe.seed + 1)
    rows = samples.rows(np.arange(min(recipe.batch_size, len(samples))))
    batch = collator(rows)
    model.train()
    timings = []
    for _ in range(2):  # the first pass also pays one-off allocations: the faster of two is the pace
        started = time.perf_counter()
        model(**batch).loss.backward()
        timings.append(time.perf_counter() - started)
        model.zero_grad(set_to_none=True)
    return min(timings) * STEP_OVERHEAD


def planned_steps(recipe: AdaptationRecipe, minutes: float | None, steps: int | None, step_seconds: float) -> int:
    """`steps` when given; else as many as `minutes` allow at the measured pace, capped by the recipe."""
    if steps is not None:
        if steps < 1:
            raise AdaptationError(f"--steps must be at least 1, got {steps}")
        return steps
    if minutes is None:
        return recipe.max_steps
    return int(max(1, min(recipe.max_steps, minutes * 60 / max(step_seconds, 1e-3))))


# ----------------------------------------------------------------------------------------------------------------------
# adaptation
# ----------------------------------------------------------------------------------------------------------------------
def cohort_frame(tokenizer: GexBertTokenizer, data, source: str = "cohort", scale_check: str = "refuse"
                 ) -> pd.DataFrame:
    """The cohort as a validated samples x vocabulary-genes frame (unknown genes dropped with one warning), on the
    checkpoint's scale: counts into a log model and the like are refused (`scale_check`); a milder shift is what
    adaptation is for, so it passes without a word."""
    frame = tokenizer.select_known(as_expression_frame(data, source=source), source=source)
    check_frame_scale(tokenizer, frame, source, scale_check, for_adaptation=True)
    if frame.shape[1] < 2:
        raise AdaptationError(f"{source}: only {frame.shape[1]} gene of the model's vocabulary; adaptation restores "
                              "hidden genes from the others and needs at least 2")
    empty = frame.index[frame.isna().all(axis=1).to_numpy()]
    if len(empty):
        warnings.warn(f"{source}: {len(empty)} samples measure none of the model's genes and are left out",
                      stacklevel=2)
        frame = frame.drop(index=empty)
    return frame


def adapt_model(model: GexBertForMaskedExpression, tokenizer: GexBertTokenizer, data, recipe: AdaptationRecipe | None
                = None, minutes: float | None = 5.0, steps: int | None = None, progress: bool = True,
                parent: str | None = None, source: str = "cohort", scale_check: str = "refuse") -> AdaptationResult:
    """Continue masked-expression pretraining of (a copy of) `model` on the unlabelled profiles `data` (samples x
    genes: a DataFrame, or an AnnData), with level statistics refitted on them. Bounded by `minutes` (the schedule
    is sized to the pace measured on the first batch, and training stops at the bound) or by `steps`.

    Returns the adapted model and tokenizer; `model` and `tokenizer` are not changed. The model's config carries
    `base_model` (`parent`), `adaptation` (cohort size, genes refitted, recipe, steps, seconds) and
    `training_samples_hash` (salted hashes of the cohort's sample ids, so `gexbert evaluate` can warn when it is
    judged on them).
    """
    recipe = recipe or AdaptationRecipe()
    if not isinstance(model, GexBertForMaskedExpression):
        raise AdaptationError(f"adaptation continues masked-expression pretraining and needs a "
                              f"GexBertForMaskedExpression, got a {type(model).__name__}")
    if not 0 < recipe.min_mask_fraction <= recipe.max_mask_fraction < 1:
        raise AdaptationError(f"mask rates must satisfy 0 < min <= max < 1, got {recipe.min_mask_fraction} and "
                              f"{recipe.max_mask_fraction}")
    frame = cohort_frame(tokenizer, data, source, scale_check)
    if len(frame) < 2:
        raise AdaptationError(f"{source}: {len(frame)} usable sample(s); adaptation needs at least 2")
    started = time.perf_counter()
    adapted_tokenizer, refitted = (refit_level_statistics(tokenizer, frame, recipe.min_measured) if recipe.refit_levels
                                   else (tokenizer, []))
    samples = EncodedSamples.from_frame(adapted_tokenizer, frame)
    adapted = copy.deepcopy(model)
    trainable_parameters = freeze_for_recipe(adapted, recipe.trainable)
    batch_size = min(recipe.batch_size, len(frame))
    recipe = _with_batch(recipe, batch_size)
    step_seconds = seconds_per_step(adapted, adapted_tokenizer, samples, recipe)
    n_steps = planned_steps(recipe, minutes, steps, step_seconds)
    options = PretrainingOptions(max_steps=n_steps, batch_size=batch_size, learning_rate=recipe.learning_rate,
                                 weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio,
                                 max_genes=recipe.max_genes,
                                 mask_fraction=recipe.min_mask_fraction, max_mask_fraction=recipe.max_mask_fraction,
                                 seed=recipe.seed, logging_steps=max(1, n_steps // 20), eval_steps=10**9,
                                 save_steps=0, progress=progress,
                                 max_seconds=None if minutes is None or steps is not None else minutes * 60)
    result = pretrain_model(adapted, adapted_tokenizer, samples, options)
    adapted = result.model
    for parameter in adapted.parameters():
        parameter.requires_grad = True
    adapted.eval()
    record = {"parent": parent, "cohort": source, "n_samples": len(frame), "n_genes_measured": int(frame.shape[1]),
              "genes_refitted": len(refitted), "genes_kept_from_parent": len(tokenizer.genes) - len(refitted),
              "recipe": asdict(recipe), "trainable_parameters": trainable_parameters, "planned_steps": n_steps,
              "steps": result.steps, "seconds": round(time.perf_counter() - started, 1),
              "train_seconds": round(result.seconds, 1), "final_loss": result.final_loss}
    adapted.config.base_model = parent
    adapted.config.adaptation = record
    adapted.config.training_samples_hash = training_sample_hashes(frame.index)
    return AdaptationResult(adapted, adapted_tokenizer, record, result.history)


def _with_batch(recipe: AdaptationRecipe, batch_size: int) -> AdaptationRecipe:
    changed = copy.copy(recipe)
    changed.batch_size = batch_size
    return changed


def adapted_card_section(record: dict) -> str:
    """The model card's account of the adaptation: the parent, the cohort's size and the recipe."""
    recipe = record["recipe"]
    return (f"## Adaptation\n\nAdapted from `{record['parent']}` with `gexbert adapt`: continued masked-expression "
            f"pretraining on {record['n_samples']} unlabelled samples of `{record['cohort']}` "
            f"({record['n_genes_measured']} of the vocabulary's genes measured; level edges refitted on the cohort "
            f"for {record['genes_refitted']} genes, the parent's kept for {record['genes_kept_from_parent']}). "
            f"Recipe: learning rate {recipe['learning_rate']:g}, per-sample mask rate "
            f"{recipe['min_mask_fraction']:g}-{recipe['max_mask_fraction']:g}, weights moved: {recipe['trainable']}, "
            f"batch {recipe['batch_size']}; {record['steps']} steps in {record['train_seconds']:.0f} s "
            f"(final loss {record['final_loss']:.3f}). The weights fit this cohort's platform and genes; for "
            "another cohort adapt the parent again.\n")


__all__ = ["AdaptationError", "AdaptationRecipe", "AdaptationResult", "adapt_model", "adapted_card_section",
           "cohort_frame", "freeze_for_recipe", "planned_steps", "refit_level_statistics"]
