"""One small error hierarchy: every message names the file, gene, sample or column at fault.

`GexBertError`, `ExpressionInputError` and `preview` live in `errors_gexbert.py`, which travels with checkpoints as
remote code (the tokenizer raises them); they are re-exported here, so there is one class of each.
"""

from .errors_gexbert import ExpressionInputError, GexBertError, preview


class ClinicalInputError(GexBertError, ValueError):
    """A clinical or split table that cannot be joined or used (missing columns, bad survival times...)."""


class OutputExistsError(GexBertError, FileExistsError):
    """An output path that already holds something the user wrote; nothing is overwritten without consent."""


__all__ = ["ClinicalInputError", "ExpressionInputError", "GexBertError", "OutputExistsError", "preview"]
