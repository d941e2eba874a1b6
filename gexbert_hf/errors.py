"""One small error hierarchy: every message names the file, gene, sample or column at fault."""


class GexBertError(Exception):
    """Base of every error this package raises on purpose."""


class ExpressionInputError(GexBertError, ValueError):
    """An expression matrix that cannot be used as given (non-numeric cells, inf, duplicates, empty samples...)."""


class ClinicalInputError(GexBertError, ValueError):
    """A clinical or split table that cannot be joined or used (missing columns, bad survival times...)."""


class OutputExistsError(GexBertError, FileExistsError):
    """An output path that already holds something the user wrote; nothing is overwritten without consent."""


def preview(names, limit: int = 5) -> str:
    """`a, b, c and 12 more`: enough names to find the problem without flooding the terminal."""
    names = [str(name) for name in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
