"""`gexbert adapt`: a checkpoint adapted to your cohort, the first thing to run on data from another platform.

Reads the cohort (a data folder with expression.tsv.gz and optional split.tsv, an `.h5ad` with an optional obs
`split` column, or a samples x genes table), keeps its train split where one is given (else every sample), runs the
library's `adapt_model`, and writes the adapted checkpoint atomically (staged, published, then reloaded and compared)
in the format every `--model` accepts, with a model card naming its parent, the cohort's size and the recipe.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..data.readers import read_clinical, read_expression, read_split
from ..errors import ExpressionInputError, ModelFileError
from ..hub import render_model_card
from ..input_scale import scale_check_field
from ..loading import load_model_and_tokenizer, resolve_model
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..threads import configure_threads
from ..training.adapt import AdaptationRecipe, AdaptationResult, adapt_model, adapted_card_section

TRAIN_SPLIT = "train"


@dataclass
class AdaptArguments:
    """Adapt a pretrained GexBERT to a cohort: continued masked-expression pretraining on its unlabelled profiles
    with level edges refitted on it (see README: "Your own cohort: gexbert adapt")."""

    model: str = field(metadata={"help": "A shipped checkpoint (tcga31-mirna, tcga13-mrna) or a model folder with "
                                         "a masked-expression head."})
    data_dir: str = field(metadata={"help": "The cohort: a folder with expression.tsv.gz (genes x samples) and "
                                            "optionally split.tsv, an .h5ad file (obs column `split` optional), or a "
                                            "samples x genes CSV / TSV / Parquet. Only its train split is used when "
                                            "a split is given, else every sample."})
    output: str = field(metadata={"help": "Folder for the adapted checkpoint."})
    minutes: float = field(default=5.0, metadata={"help": "Time bound of the training (the learning-rate "
                                                          "schedule is sized to it)."})
    steps: int | None = field(default=None, metadata={"help": "Train exactly this many steps instead of a time "
                                                              "bound."})
    learning_rate: float = field(default=AdaptationRecipe.learning_rate, metadata={"help": "Peak learning rate."})
    trainable: str = field(default=AdaptationRecipe.trainable, metadata={"help": "Which weights move: all, top, "
                                                                                 "heads."})
    max_genes: int | None = field(default=AdaptationRecipe.max_genes, metadata={
        "help": "Genes sampled per sample and step (0: all the model reads)."})
    min_mask_fraction: float = field(default=AdaptationRecipe.min_mask_fraction, metadata={
        "help": "Lowest per-sample mask rate."})
    max_mask_fraction: float = field(default=AdaptationRecipe.max_mask_fraction, metadata={
        "help": "Highest per-sample mask rate."})
    batch_size: int = field(default=AdaptationRecipe.batch_size, metadata={"help": "Samples per step."})
    seed: int = field(default=0, metadata={"help": "Seed of data order and masking."})
    layer: str | None = field(default=None, metadata={"help": ".h5ad input: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": ".h5ad input: the var column naming genes."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier `gexbert adapt` output in "
                                                             "--output (only the files it wrote)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    scale_check: str = scale_check_field()

    def recipe(self) -> AdaptationRecipe:
        return AdaptationRecipe(learning_rate=self.learning_rate, trainable=self.trainable,
                                max_genes=self.max_genes or None, min_mask_fraction=self.min_mask_fraction,
                                max_mask_fraction=self.max_mask_fraction, batch_size=self.batch_size, seed=self.seed)


def read_cohort(args: AdaptArguments) -> tuple[pd.DataFrame, str]:
    """The cohort's training profiles (samples x genes, raw scale) and a description of which samples they are."""
    source = Path(args.data_dir)
    split = None
    if source.is_dir():
        expression_path = source / "expression.tsv.gz"
        if not expression_path.is_file():
            raise ExpressionInputError(f"{source}: no expression.tsv.gz; give a data folder, an .h5ad or a table")
        expression = read_expression(expression_path, orientation="genes_x_samples")
        if (source / "split.tsv").is_file():
            split, origin = read_split(source / "split.tsv"), "split.tsv"
    elif source.name.lower().endswith(".h5ad"):
        expression = read_expression(source, layer=args.layer, gene_column=args.gene_column)
        obs = read_clinical(source)
        if "split" in obs.columns:
            split, origin = obs["split"], "obs column `split`"
    else:
        expression = read_expression(source)
    if split is None:
        return expression, f"all {len(expression)} samples (no split given)"
    split = split.astype(str).str.strip().str.lower().reindex(expression.index)
    train = expression.loc[(split == TRAIN_SPLIT).to_numpy()]
    if len(train) == 0:
        raise ExpressionInputError(f"{source}: the {origin} marks no sample of the expression as `train`")
    return train, f"the {len(train)} train samples of {len(expression)} ({origin})"


def write_adapted(result: AdaptationResult, folder, output: Path) -> None:
    """Stage model, tokenizer and card beside `output`, publish them, then reload and compare every weight."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.adapt-", dir=output.parent))
    try:
        result.model.save_pretrained(staging)
        result.tokenizer.save_pretrained(staging)
        card = render_model_card(result.model)
        parent = result.record["parent"]
        card = card.replace("library_name: transformers\n", f"library_name: transformers\nbase_model: {parent}\n", 1)
        (staging / "README.md").write_text(card.rstrip() + "\n\n" + adapted_card_section(result.record))
        folder.publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    reloaded, tokenizer = load_model_and_tokenizer(output)
    saved = result.model.state_dict()
    for name, tensor in reloaded.state_dict().items():
        if not torch.equal(tensor, saved[name]):
            raise ModelFileError(f"{output}: the reloaded weight {name} differs from the adapted one; the write is "
                                 "damaged, run gexbert adapt again")
    if not (tokenizer.level_edges == result.tokenizer.level_edges).all():
        raise ModelFileError(f"{output}: the reloaded tokenizer's level edges differ from the adapted ones")


def run_adapt(args: AdaptArguments) -> Path:
    """`gexbert adapt`: read, adapt, write, verify, report."""
    configure_threads()
    output, model_path = Path(args.output), Path(resolve_model(args.model))
    folder = claim_output_dir(output, "adapt", {"--model": model_path, "--data_dir": args.data_dir}, args.overwrite)
    model, tokenizer = load_model_and_tokenizer(model_path)
    if not isinstance(model, GexBertForMaskedExpression):
        raise ExpressionInputError(f"{args.model}: adaptation needs a pretrained masked-expression model, this "
                                   f"folder holds a {type(model).__name__}")
    frame, which = read_cohort(args)
    print(f"adapting {args.model} on {which} of {args.data_dir} "
          + (f"for {args.steps} steps" if args.steps else f"within {args.minutes:g} min"), flush=True)
    result = adapt_model(model, tokenizer, frame, args.recipe(), minutes=args.minutes, steps=args.steps,
                         scale_check=args.scale_check,
                         progress=args.progress, parent=args.model, source=str(args.data_dir))
    write_adapted(result, folder, output)
    record = result.record
    print(f"adapted {args.model} -> {output}: {record['steps']} steps in {record['train_seconds']:.0f} s on "
          f"{record['n_samples']} samples, level edges refitted for {record['genes_refitted']} of "
          f"{len(tokenizer.genes)} genes; use it as --model {output}")
    print(json.dumps({key: record[key] for key in ("n_samples", "genes_refitted", "steps", "final_loss")}))
    return output


__all__ = ["AdaptArguments", "read_cohort", "run_adapt", "write_adapted"]
