"""A cohort written as a data folder in the shared layout, for the commands that read one (evaluate, adapt, design-panel)."""

from pathlib import Path

import numpy as np
import pandas as pd


def write_folder(folder: Path, expression: pd.DataFrame, clinical: pd.DataFrame | None, seed: int = 0) -> Path:
    """A data folder in the shared layout: genes x samples expression.tsv.gz, clinical.tsv, split.tsv (25% test)."""
    folder.mkdir(parents=True, exist_ok=True)
    expression.T.rename_axis("sample").to_csv(folder / "expression.tsv.gz", sep="\t")
    if clinical is not None:
        clinical.rename_axis("sample").reset_index().to_csv(folder / "clinical.tsv", sep="\t", index=False)
    test = np.random.default_rng(seed).random(len(expression)) < 0.25
    pd.DataFrame({"sample": expression.index, "split": np.where(test, "test", "train")}).to_csv(
        folder / "split.tsv", sep="\t", index=False)
    return folder
