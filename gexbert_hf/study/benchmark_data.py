"""The benchmark's view of a data folder: its fixed train/test split, a validation part carved out of train, and the
check that tells standardised-within-type values (which leak the cancer type) apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..data.cohorts import Cohort
from ..data.readers import load_cohort, load_split
from ..levels_gexbert import auto_normalization
from ..tokenization_gexbert import GexBertTokenizer
from .working_scale import working_frame

SKIP_STANDARDISED = ("values are standardised within each cancer type: cancer-type accuracy here would measure the "
                     "normalisation, not biology")
CLASSIFICATION_MODES = ("auto", "on", "off")


@dataclass
class FolderData:
    """One folder's samples, split as its split.tsv says; `validation` marks the train rows every choice is made on."""

    name: str
    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    clinical_train: pd.DataFrame
    clinical_test: pd.DataFrame
    validation: np.ndarray  # boolean over train rows
    normalization: str
    label_column: str | None
    time_column: str | None
    event_column: str | None

def load_folder(data_dir: str | Path, seed: int = 0, validation_fraction: float = 0.2,
                max_features: int | None = None, max_train: int | None = None, max_test: int | None = None
                ) -> FolderData:
    """Read a data folder, apply its split.tsv and carve a stratified validation part out of train.

    `max_*` take seeded random subsets (quick mode); the split itself is never changed.
    """
    data_dir = Path(data_dir)
    cohort = load_cohort(data_dir)
    split = load_split(data_dir).reindex(cohort.expression.index)
    return split_cohort(data_dir.name, cohort, split, seed, validation_fraction, max_features, max_train, max_test)


def split_cohort(name: str, cohort: Cohort, split: pd.Series, seed: int = 0, validation_fraction: float = 0.2,
                 max_features: int | None = None, max_train: int | None = None, max_test: int | None = None
                 ) -> FolderData:
    """A cohort cut by `split` (train / test per sample, aligned to its expression rows; other values and NaN
    leave a sample out), a stratified validation part carved out of train; `max_*` as in `load_folder`."""
    train_index = split.index[(split == "train").to_numpy()]
    test_index = split.index[(split == "test").to_numpy()]
    rng = np.random.default_rng([seed, 17])
    if max_train is not None and len(train_index) > max_train:
        train_index = train_index[np.sort(rng.choice(len(train_index), size=max_train, replace=False))]
    if max_test is not None and len(test_index) > max_test:
        test_index = test_index[np.sort(rng.choice(len(test_index), size=max_test, replace=False))]
    expression = cohort.expression
    if max_features is not None and expression.shape[1] > max_features:
        expression = expression.iloc[:, np.sort(rng.choice(expression.shape[1], size=max_features, replace=False))]
    clinical = cohort.clinical
    label = cohort.label_column if cohort.label_column in clinical.columns else None
    strata = clinical.loc[train_index, label].astype(str).to_numpy() if label else None
    if strata is not None and pd.Series(strata).value_counts().min() < 2:
        strata = None
    _, val_positions = train_test_split(np.arange(len(train_index)), test_size=validation_fraction,
                                        random_state=seed, stratify=strata)
    validation = np.zeros(len(train_index), dtype=bool)
    validation[val_positions] = True
    return FolderData(
        name=name, raw_train=expression.loc[train_index], raw_test=expression.loc[test_index],
        clinical_train=clinical.loc[train_index], clinical_test=clinical.loc[test_index], validation=validation,
        normalization=auto_normalization(expression.loc[train_index]), label_column=label,
        time_column=cohort.time_column, event_column=cohort.event_column,
    )


def within_type_standardised(work_train: pd.DataFrame, types: pd.Series) -> dict:
    """Detect per-type standardisation (z-scores computed within each cancer type, as in cBioPortal): every gene's
    mean is ~0 and its SD ~1 inside every type. Such values leak the type through distribution shapes, so a
    cancer-type accuracy on them measures the normalisation, not biology."""
    means, sds = [], []
    for cancer in types.dropna().unique():
        inside = work_train[(types == cancer).to_numpy()]
        if len(inside) < 10:
            continue
        means.append(np.nanmedian(np.abs(inside.mean(axis=0).to_numpy())))
        sds.append(np.nanmedian(inside.std(axis=0).to_numpy()))
    mean_abs, median_sd = float(np.median(means)), float(np.median(sds))
    return {"median_abs_type_mean": mean_abs, "median_type_sd": median_sd,
            "within_type_standardised": bool(mean_abs < 0.15 and abs(median_sd - 1.0) < 0.25)}


def classification_gate(tokenizer: GexBertTokenizer, data: FolderData, mode: str = "auto") -> tuple[dict, str | None]:
    """The study's rule for cancer-type classification on a folder: the standardisation check, and why it is
    skipped (None: it runs). `auto` skips it without type labels or on standardised-within-type values, which leak
    the type; `on` runs it regardless, `off` never."""
    if mode not in CLASSIFICATION_MODES:
        raise ValueError(f"classification must be one of {CLASSIFICATION_MODES}, got {mode!r}")
    types_train = data.clinical_train[data.label_column] if data.label_column else None
    check = within_type_standardised(working_frame(tokenizer, data.raw_train), types_train) \
        if types_train is not None else {}
    if mode == "off":
        return check, "switched off (classification off)"
    if mode == "on" or (types_train is not None and not check.get("within_type_standardised", False)):
        return check, None
    return check, SKIP_STANDARDISED if check else "no type labels"
