"""One small error hierarchy: every message names the file, gene, sample or column at fault.

`GexBertError`, `ExpressionInputError` and `preview` live in `errors_gexbert.py`, which travels with checkpoints as
remote code (the tokenizer raises them); they are re-exported here, so there is one class of each.
"""

from .errors_gexbert import ExpressionInputError, GexBertError, HubConnectionError, ModelFileError, one_line, preview


class ClinicalInputError(GexBertError, ValueError):
    """A clinical or split table that cannot be joined or used (missing columns, bad survival times...)."""


class OutputExistsError(GexBertError, FileExistsError):
    """An output path that already holds something the user wrote; nothing is overwritten without consent."""


class OutputFormatError(GexBertError, ValueError):
    """An output file named in a format the command cannot write (`--output out/`, `filled.xlsx`)."""


class DeviceError(GexBertError, ValueError):
    """A `--device` that is not one of cpu / cuda / auto, or names an accelerator this machine lacks."""



class TokenizerMismatchError(GexBertError, ValueError):
    """A tokenizer used with a model it was not made for (other genes, vocabulary size, levels or normalization)."""


class ModelHeadError(GexBertError, TypeError):
    """A model without the head a use needs (imputation needs the masked-expression head, prediction a fine-tuned one)."""


class NonFiniteOutputError(GexBertError, ValueError):
    """A model whose outputs are NaN or infinite (corrupt or diverged weights): nothing is written from them."""


class SplitArgumentError(GexBertError, ValueError):
    """A split that cannot be drawn as asked (a held-out fraction outside its range)."""


__all__ = ["ClinicalInputError", "DeviceError", "ExpressionInputError", "GexBertError", "HubConnectionError",
           "ModelFileError", "NonFiniteOutputError", "OutputExistsError", "OutputFormatError", "SplitArgumentError",
           "TokenizerMismatchError", "one_line", "preview"]
