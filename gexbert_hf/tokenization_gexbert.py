"""GexBertTokenizer: expression matrix -> model inputs, and predicted levels -> expression values.

A fitted tokenizer holds everything learned from the training samples (scikit-learn's `fit` then `transform`
contract, so test samples never shape the level edges): the gene vocabulary, the normalisation, per-gene quantile
level edges and level values, and a robust per-gene centre and scale for the continuous value input.

This file travels with every checkpoint as hub remote code (`AutoFeatureExtractor.from_pretrained(path,
trust_remote_code=True)` where `gexbert_hf` is not installed), so it imports only numpy, transformers, safetensors,
the standard library and its siblings (relative imports, which travel along): `configuration_gexbert`,
`errors_gexbert`, `expression_input_gexbert` (validating a matrix; pandas where installed: the file loads without it
and says what to install when a matrix is given) and `levels_gexbert` (normalisation, level edges and values).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from transformers import BatchEncoding
from transformers.dynamic_module_utils import custom_object_save
from transformers.feature_extraction_utils import FeatureExtractionMixin
from transformers.utils import FEATURE_EXTRACTOR_NAME, cached_file

from .configuration_gexbert import LEVEL_OFFSET, MISSING_LEVEL_ID, shipped_checkpoint_folder
from .errors_gexbert import ExpressionInputError, ModelFileError, one_line, preview
from .expression_input_gexbert import (
    as_expression_frame,
    describe_ids,
    id_kind,
    looks_like_sample_ids,
    pd,
    spelling_key,
    training_frame,
)
from .inputs_gexbert import CLS_TOKEN_ID, PAD_TOKEN_ID, build_model_inputs, pad_tokens, panel_and_query_ids
from .levels_gexbert import (
    AUTO_NORMALIZATION,
    check_normalization,
    fit_level_statistics,
    level_index,
    normalize_frame,
    resolve_normalization,
)

TOKENIZER_CONFIG_NAME = "gexbert_tokenizer.json"
TOKENIZER_ARRAYS_NAME = "gexbert_tokenizer.safetensors"
AUTO_CLASS = "AutoFeatureExtractor"
SPECIAL_TOKENS = ("[PAD]", "[CLS]")


class GexBertTokenizer(FeatureExtractionMixin):
    """Fitted gene vocabulary + expression levels; `__call__` turns a matrix into `model(**inputs)` tensors.

    It is a transformers feature extractor, loadable with `AutoFeatureExtractor`: its input is a matrix of numbers,
    as an audio model's is, and `FeatureExtractionMixin` gives exactly the save/load/hub/remote-code machinery such
    a preprocessor needs. `AutoTokenizer` would not fit: it expects text and a (slow or fast) string tokenizer
    backend, of which this has neither. `save_pretrained` writes `preprocessor_config.json` (the Auto-class entry
    point, with its `auto_map`) beside the vocabulary and level arrays, and copies this file and its siblings.
    """

    pad_token_id = PAD_TOKEN_ID
    cls_token_id = CLS_TOKEN_ID

    def __init__(
        self,
        genes: Sequence[str],
        normalization: str,
        level_edges: np.ndarray,
        level_values: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        value_clip: float = 8.0,
        expression_scale: str | None = None,
    ):
        check_normalization(normalization)
        self.genes = [str(gene) for gene in genes]
        self.normalization = normalization
        self.level_edges = np.asarray(level_edges, dtype=np.float64)
        self.level_values = np.asarray(level_values, dtype=np.float64)
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.value_clip = float(value_clip)
        # the scale its training values were on, in words ("log2(RPM + 1)"), for the scale check's messages
        self.expression_scale = expression_scale
        self.gene_to_index = {gene: index for index, gene in enumerate(self.genes)}
        if len(self.gene_to_index) != len(self.genes):
            raise ValueError("the tokenizer vocabulary holds duplicated genes")
        # a fine-tuned head's inputs (its panel and query genes), set by `use_inputs_of` from the model's config
        self.panel_ids: np.ndarray | None = None
        self.query_ids: np.ndarray | None = None
        self.unfitted_genes: list[str] = []  # set by `fit`: training genes without a measured value, left out

    # ------------------------------------------------------------------------------------------------------------------
    # vocabulary
    # ------------------------------------------------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return self.level_values.shape[1]

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.genes)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def fingerprint(self) -> str:
        """Short hash of what a model's embeddings depend on: the ordered genes, the level count, the normalisation.

        `GexBertConfig.from_tokenizer` stores it as `config.tokenizer_fingerprint`;
        `gexbert_hf.loading.check_tokenizer_matches` compares the two wherever a model meets a tokenizer."""
        return fingerprint_of(self.genes, self.num_levels, self.normalization)

    def convert_genes_to_ids(self, genes: Sequence[str]) -> np.ndarray:
        """Vocabulary ids of known genes; raises naming the unknown ones."""
        unknown = [gene for gene in genes if gene not in self.gene_to_index]
        if unknown:
            raise ExpressionInputError(f"genes unknown to the tokenizer vocabulary: {preview(unknown)}")
        return np.array([self.gene_to_index[gene] + len(SPECIAL_TOKENS) for gene in genes], dtype=np.int64)

    def convert_ids_to_genes(self, ids: Sequence[int]) -> list[str]:
        return [SPECIAL_TOKENS[i] if i < len(SPECIAL_TOKENS) else self.genes[i - len(SPECIAL_TOKENS)] for i in ids]

    # ------------------------------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        normalization: str = AUTO_NORMALIZATION,
        num_levels: int = 32,
        aggregate: str | None = None,
        value_clip: float = 8.0,
        layer: str | None = None,
        gene_column: str | None = None,
        quiet: bool = False,
    ) -> GexBertTokenizer:
        """Fit vocabulary, per-gene quantile level edges and value scaling on training samples (samples x genes).

        `normalization`: `log1p`, `none`, or `auto` (as `gexbert build-dataset`: log1p for non-negative raw-looking
        values, none when any is negative or all are below 50); the fitted tokenizer records the one chosen.
        Quantile edges make the levels robust to extreme outliers: a value of 3.7e4 only lands in the top level,
        and the top and bottom levels decode to their median, not their mean, so it does not move what they decode to.
        Genes with no measured value in the training samples cannot be fitted and are dropped with a warning (none
        with `quiet=True`, for a caller that fits in parts and reports once); `unfitted_genes` lists them.
        Ensembl ids lose their version suffix (`ENSG00000141510.16` -> `ENSG00000141510`), so any release matches.
        """
        check_normalization(normalization, fitting=True)
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        frame = training_frame(data, genes, aggregate, layer, gene_column)
        normalization = resolve_normalization(normalization, frame)
        values = normalize_frame(frame, normalization, source="training matrix")
        never_measured = np.isnan(values).all(axis=0)
        tokenizer = cls(genes=list(frame.columns[~never_measured]), normalization=normalization, value_clip=value_clip,
                        **fit_level_statistics(values[:, ~never_measured], num_levels))
        tokenizer.unfitted_genes = [str(gene) for gene in frame.columns[never_measured]]
        if tokenizer.unfitted_genes and not quiet:
            warnings.warn(f"{len(tokenizer.unfitted_genes)} genes have no measured value in the training samples and "
                          f"are left out of the vocabulary: {preview(tokenizer.unfitted_genes)}", stacklevel=2)
        return tokenizer

    # ------------------------------------------------------------------------------------------------------------------
    # encoding
    # ------------------------------------------------------------------------------------------------------------------
    def vocabulary_name(self, gene: str) -> str | None:
        """The vocabulary gene `gene` stands for, ignoring Ensembl version suffixes, letter case and `-` / `.` / `_`
        on either side (`spelling_key`); None if unknown (or if two vocabulary genes share that spelling)."""
        if gene in self.gene_to_index:
            return gene
        return self._genes_by_spelling.get(spelling_key(gene))

    @cached_property
    def _genes_by_spelling(self) -> dict[str, str]:
        keys = [spelling_key(name) for name in self.genes]
        seen, shared = set(), set()
        for key in keys:
            (shared if key in seen else seen).add(key)
        return {key: name for key, name in zip(keys, self.genes) if key not in shared}

    def match_genes(self, frame: pd.DataFrame, source: str = "expression matrix") -> tuple[pd.DataFrame, list[str]]:
        """`(known, unknown)`: the matrix cut to vocabulary genes under their vocabulary names, and the input's genes
        the vocabulary lacks, silently: the one gene mapping, for callers that report unknown genes their own way.
        Raises naming the ids expected when no gene is known, and when two input genes are one vocabulary gene."""
        names = {gene: self.vocabulary_name(gene) for gene in frame.columns}
        unknown = [gene for gene, name in names.items() if name is None]
        if len(unknown) == frame.shape[1]:
            raise ExpressionInputError(self._no_known_genes_message(list(frame.columns), source))
        known = frame.loc[:, [gene for gene, name in names.items() if name is not None]] if unknown else frame
        renamed = {gene: names[gene] for gene in known.columns if names[gene] != gene}
        if renamed:
            known = known.rename(columns=renamed)
            twice = known.columns[known.columns.duplicated()].unique()
            if len(twice):
                raise ExpressionInputError(
                    f"{source}: several of its genes are the same vocabulary gene once Ensembl version suffixes, "
                    f"letter case and -._ are ignored: {preview([gene for gene in renamed if renamed[gene] in set(twice)])}"
                )
        return known, unknown

    def select_known(self, frame: pd.DataFrame, source: str = "expression matrix") -> pd.DataFrame:
        """Keep the genes of the vocabulary, under their vocabulary names, with one warning naming those dropped."""
        known, unknown = self.match_genes(frame, source)
        if unknown:
            warnings.warn(f"{source}: {len(unknown)} of {frame.shape[1]} genes are unknown to the tokenizer "
                          f"vocabulary and are dropped: {preview(unknown)}", stacklevel=3)
        return known

    def _no_known_genes_message(self, genes: list[str], source: str) -> str:
        """Why nothing matched: the ids the input holds, those the model expects, and the likely fix."""
        message = (f"{source}: none of its {len(genes)} genes is in the tokenizer vocabulary: it holds "
                   f"{describe_ids(genes)}; the model expects {describe_ids(self.genes)}")
        if looks_like_sample_ids(genes):
            return message + ". The column names look like sample ids: is the table transposed?"
        if id_kind(genes) != id_kind(self.genes):
            return message + (". Map the ids to the model's with a gene-id mapping (a two-column file from,to: "
                              "--gene_map; an AnnData var column: gene_column=, --gene_column)")
        return message

    def normalize(self, values: np.ndarray, genes: Sequence[str] | None = None) -> np.ndarray:
        """Raw values -> the tokenizer's working scale (log1p or unchanged)."""
        return normalize_frame(pd.DataFrame(values, columns=genes), self.normalization, source="expression matrix")

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Working scale -> the scale of the user's input."""
        return np.expm1(values) if self.normalization == "log1p" else values

    def levels_of(self, normalized: np.ndarray, gene_index: np.ndarray) -> np.ndarray:
        """Level index in `[0, num_levels)` of normalised values (samples x genes); NaN -> -1."""
        levels = np.empty(normalized.shape, dtype=np.int64)
        for column, gene in enumerate(gene_index):
            levels[:, column] = level_index(self.level_edges[gene], normalized[:, column])
        levels[np.isnan(normalized)] = -1
        return levels

    def standardize(self, normalized: np.ndarray, gene_index: np.ndarray) -> np.ndarray:
        """Robustly standardised, clipped values: the continuous input and the regression target."""
        with np.errstate(over="ignore"):  # a 1e300 outlier over a tiny scale: inf, clipped just below
            standardized = (normalized - self.center[gene_index]) / self.scale[gene_index]
        return np.clip(standardized, -self.value_clip, self.value_clip)

    def encode(
        self,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        aggregate: str | None = None,
        layer: str | None = None,
        gene_column: str | None = None,
    ) -> dict[str, np.ndarray | list[str]]:
        """Matrix (or AnnData) -> per-gene arrays without padding or CLS: the form a `datasets.Dataset` stores.

        Returns `gene_ids` (genes,), `level_ids` and `values` (samples x genes), and the `samples` and `genes` kept.
        NaN becomes the MISSING level with value 0: an input that is never a restoration target.
        """
        return self.encode_known(self.select_known(as_expression_frame(data, genes, aggregate=aggregate, layer=layer,
                                                                       gene_column=gene_column)))

    def encode_known(self, frame: pd.DataFrame) -> dict[str, np.ndarray | list[str]]:
        """`encode` of a matrix validated already (`as_expression_frame`) whose columns are vocabulary genes
        (`select_known`): the arrays alone, so that a caller validates a matrix once. Also returns `normalized`,
        the values on the working scale (NaN = not measured), so that a caller normalises it once too."""
        gene_index = self.convert_genes_to_ids(list(frame.columns)) - len(SPECIAL_TOKENS)
        normalized = normalize_frame(frame, self.normalization, source="expression matrix")
        levels = self.levels_of(normalized, gene_index)
        level_ids = np.where(levels >= 0, levels + LEVEL_OFFSET, MISSING_LEVEL_ID)
        values = np.nan_to_num(self.standardize(normalized, gene_index), nan=0.0).astype(np.float32)
        return {
            "gene_ids": gene_index + len(SPECIAL_TOKENS),
            "level_ids": level_ids,
            "values": values,
            "samples": list(frame.index),
            "genes": list(frame.columns),
            "normalized": normalized,
        }

    def __call__(
        self,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        queries: Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        aggregate: str | None = None,
        layer: str | None = None,
        gene_column: str | None = None,
        missing: str = "leave_out",
    ) -> BatchEncoding:
        """Model inputs for every sample of `data`: `input_ids`, `level_ids`, `values`, `attention_mask`.

        `data` is samples x genes: a DataFrame, a numpy array with `genes`, or an AnnData (`layer`, `gene_column`).
        A missing value (NaN) is left out (`missing="leave_out"`, for prediction and embedding) or entered as a MASK
        query to restore (`missing="restore"`, for imputation): the rule of `inputs_gexbert`, the same on every
        path. A tokenizer loaded beside a fine-tuned model reads that model's panel and query genes (`use_inputs_of`)
        and builds exactly the inputs the model was fine-tuned on. `queries` are further genes to restore: they
        enter with the MASK level (replacing any measured value) whether or not `data` holds them.
        """
        encoded = self.encode(data, genes, aggregate=aggregate, layer=layer, gene_column=gene_column)
        query_ids = self.query_ids
        if queries:
            asked = self.convert_genes_to_ids(list(dict.fromkeys(queries)))
            query_ids = asked if query_ids is None else np.concatenate([query_ids, asked[~np.isin(asked, query_ids)]])
        return build_model_inputs(encoded["gene_ids"], encoded["level_ids"], encoded["values"], missing=missing,
                                  panel_ids=self.panel_ids, query_ids=query_ids, return_tensors=return_tensors)

    def pad(self, features: Sequence[dict], return_tensors: str | None = "pt") -> BatchEncoding:
        """Prepend the CLS token and pad a list of per-sample token lists to the longest one (`pad_tokens`)."""
        return pad_tokens(features, return_tensors=return_tensors)

    def use_inputs_of(self, config) -> GexBertTokenizer:
        """Build the inputs of the fine-tuned head `config` describes from now on: only its `panel_genes` are read,
        and its query genes (`query_unseen`, `max_queries`, `panel_seed`) are appended as MASK tokens. A config
        (object or dict) without a panel leaves every gene in. Returns the tokenizer itself."""
        get = config.get if isinstance(config, dict) else (lambda key, default=None: getattr(config, key, default))
        self.panel_ids, self.query_ids = self.panel_and_query_ids(
            get("panel_genes"), bool(get("query_unseen", False)), get("max_queries"), int(get("panel_seed", 0) or 0))
        return self

    def panel_and_query_ids(self, panel_genes: Sequence[str] | None, query_unseen: bool = False,
                            max_queries: int | None = None, seed: int = 0
                            ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Vocabulary ids of a fine-tuned panel and of its query genes (`inputs_gexbert.panel_and_query_ids`); a panel
        gene outside this vocabulary is refused by name."""
        if panel_genes is not None:
            self.convert_genes_to_ids(list(panel_genes))
        return panel_and_query_ids(self.genes, panel_genes, query_unseen, max_queries, seed, offset=len(SPECIAL_TOKENS))

    # ------------------------------------------------------------------------------------------------------------------
    # decoding
    # ------------------------------------------------------------------------------------------------------------------
    def fill_missing(self, data: pd.DataFrame | np.ndarray, level_logits, genes: Sequence[str] | None = None
                     ) -> pd.DataFrame:
        """Imputation without the package: `data` (its vocabulary genes) with every missing value replaced by the
        mean of the level distribution that `level_logits` predict, on the input's scale; measured values as given.
        `level_logits` is the masked-expression model's output on `self(data, missing="restore")`: the numbers
        `gexbert_hf.impute` and `gexbert impute` return for the same input."""
        frame = self.select_known(as_expression_frame(data, genes))
        if hasattr(level_logits, "detach"):  # a torch tensor, without importing torch here
            level_logits = level_logits.detach().float().cpu().numpy()
        logits = np.asarray(level_logits, dtype=np.float32)[:, 1: 1 + frame.shape[1]]
        if logits.shape[:2] != frame.shape:
            raise ValueError(f"level_logits cover {logits.shape[:2]} samples x genes, the input {frame.shape}: pass the "
                             "model's output on tokenizer(data, missing='restore')")
        exponent = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities = exponent / exponent.sum(-1, keepdims=True)
        mean, _ = self.level_distribution_moments(probabilities, self.convert_genes_to_ids(list(frame.columns)))
        raw = frame.to_numpy(dtype=np.float64)
        return pd.DataFrame(np.where(np.isnan(raw), self.denormalize(mean), raw), index=frame.index,
                            columns=frame.columns)

    def level_distribution_moments(
        self, probabilities: np.ndarray, gene_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (working scale) of predicted level distributions `(..., num_levels)`."""
        level_values = self.level_values[np.asarray(gene_ids) - len(SPECIAL_TOKENS)]
        mean = (probabilities * level_values).sum(-1)
        variance = (probabilities * (level_values - mean[..., None]) ** 2).sum(-1)
        return mean, np.sqrt(np.maximum(variance, 0.0))

    def level_distribution_interval(
        self, probabilities: np.ndarray, gene_ids: np.ndarray, coverage: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """Central `coverage` interval (working scale) of predicted level distributions."""
        level_values = np.broadcast_to(self.level_values[np.asarray(gene_ids) - len(SPECIAL_TOKENS)],
                                       probabilities.shape)
        cumulative = np.cumsum(probabilities, axis=-1)
        tail = (1.0 - coverage) / 2.0
        low = np.minimum((cumulative < tail).sum(-1), self.num_levels - 1)
        high = np.minimum((cumulative < 1.0 - tail).sum(-1), self.num_levels - 1)
        return (np.take_along_axis(level_values, low[..., None], -1)[..., 0],
                np.take_along_axis(level_values, high[..., None], -1)[..., 0])

    def unstandardize(self, standardized: np.ndarray, gene_ids: np.ndarray) -> np.ndarray:
        """Regression output -> working scale."""
        gene_index = np.asarray(gene_ids) - len(SPECIAL_TOKENS)
        return standardized * self.scale[gene_index] + self.center[gene_index]

    # ------------------------------------------------------------------------------------------------------------------
    # persistence: JSON + safetensors, no pickle; the Auto-class entry point and the code travel along
    # ------------------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON part of the tokenizer, as `gexbert_tokenizer.json` holds it (the arrays go to safetensors)."""
        return {
            "tokenizer_class": type(self).__name__,
            "genes": self.genes,
            "normalization": self.normalization,
            "num_levels": self.num_levels,
            "value_clip": self.value_clip,
            "special_tokens": list(SPECIAL_TOKENS),
            **({"expression_scale": self.expression_scale} if self.expression_scale else {}),
        }

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> list[str]:
        """Vocabulary and settings (JSON), level arrays (safetensors), `preprocessor_config.json` with the
        `auto_map` that `AutoFeatureExtractor` follows, and this file with its siblings as remote code.

        Other keyword arguments (which transformers' hub upload passes to every `save_pretrained`) are ignored.
        """
        if kwargs.get("push_to_hub"):
            raise ValueError("save_pretrained does not upload; use tokenizer.push_to_hub(repo_id) or "
                             "model.push_to_hub(repo_id, tokenizer=tokenizer)")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TOKENIZER_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=1))
        arrays = {"level_edges": self.level_edges, "level_values": self.level_values, "center": self.center,
                  "scale": self.scale}
        save_file({key: np.ascontiguousarray(value) for key, value in arrays.items()},
                  str(directory / TOKENIZER_ARRAYS_NAME))
        (directory / FEATURE_EXTRACTOR_NAME).write_text(json.dumps(self.auto_class_entry(), indent=2) + "\n")
        code_files = custom_object_save(self, directory) or []  # this module and its relative imports
        return [str(directory / name) for name in (TOKENIZER_CONFIG_NAME, TOKENIZER_ARRAYS_NAME,
                                                   FEATURE_EXTRACTOR_NAME)] + [str(path) for path in code_files]

    @classmethod
    def auto_class_entry(cls) -> dict:
        """What `preprocessor_config.json` holds: the class and where its code is (`module.Class`, remote code)."""
        module = cls.__module__.rsplit(".", 1)[-1]
        return {"feature_extractor_type": cls.__name__, "auto_map": {AUTO_CLASS: f"{module}.{cls.__name__}"}}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> GexBertTokenizer:
        """A saved tokenizer from a directory or a hub repo id. Hub options (`revision`, `token`, `cache_dir`...)
        pass to transformers' file resolution; others (those `AutoFeatureExtractor` adds) are ignored."""
        pretrained_model_name_or_path = shipped_checkpoint_folder(pretrained_model_name_or_path)  # a shipped name
        config_path = _saved_file(pretrained_model_name_or_path, TOKENIZER_CONFIG_NAME, kwargs)
        try:
            config = json.loads(Path(config_path).read_text())
            genes, normalization, value_clip = config["genes"], config["normalization"], config["value_clip"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"{config_path}: not a readable GexBERT tokenizer config ({one_line(error)})") from error
        arrays_path = Path(config_path).with_name(TOKENIZER_ARRAYS_NAME)
        try:
            arrays_path = _saved_file(pretrained_model_name_or_path, TOKENIZER_ARRAYS_NAME, kwargs)
            arrays = load_file(str(arrays_path))
        except (OSError, SafetensorError) as error:
            raise ModelFileError(f"{arrays_path}: cannot load the tokenizer's arrays, the file is missing, truncated "
                                 f"or corrupt ({one_line(error)})") from error
        try:
            tokenizer = cls(genes=genes, normalization=normalization, value_clip=value_clip,
                            expression_scale=config.get("expression_scale"), **arrays)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{pretrained_model_name_or_path}: the tokenizer files do not fit together "
                                 f"({one_line(error)})") from error
        model_config = _model_config_beside(pretrained_model_name_or_path, kwargs)
        return tokenizer if model_config is None else tokenizer.use_inputs_of(model_config)

    def __repr__(self) -> str:
        return (f"GexBertTokenizer(genes={len(self.genes)}, num_levels={self.num_levels}, "
                f"normalization={self.normalization!r})")


_HUB_OPTIONS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


def _saved_file(location: str | Path, name: str, options: dict) -> str:
    """Path of a tokenizer file in a local directory, or downloaded (and cached) from a hub repo."""
    directory = Path(location)
    if directory.is_dir():
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}: no GexBERT tokenizer saved in {directory}")
        return str(directory / name)
    hub_options = {key: options[key] for key in _HUB_OPTIONS if key in options}
    path = cached_file(str(location), name, _raise_exceptions_for_missing_entries=False, **hub_options)
    if path is None:
        raise FileNotFoundError(f"{location}: no GexBERT tokenizer ({name}) in this hub repository")
    return path


def _model_config_beside(location: str | Path, options: dict) -> dict | None:
    """The `config.json` of a model saved beside the tokenizer (a fine-tuned export), or None (a dataset folder)."""
    try:
        path = _saved_file(location, "config.json", options)
    except (FileNotFoundError, OSError):
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable model config ({one_line(error)})") from error


def fingerprint_of(genes: Sequence[str], num_levels: int, normalization: str) -> str:
    text = json.dumps({"genes": list(genes), "num_levels": int(num_levels), "normalization": normalization})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["GexBertTokenizer", "fingerprint_of"]
