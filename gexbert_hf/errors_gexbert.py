"""The errors the remote-code files raise. This file travels with every checkpoint beside the tokenizer, so it imports
nothing; `gexbert_hf.errors` re-exports these classes, so `except ExpressionInputError` catches the same class
everywhere the package is installed."""


class GexBertError(Exception):
    """Base of every error this package raises on purpose."""


class ExpressionInputError(GexBertError, ValueError):
    """An expression matrix that cannot be used as given (non-numeric cells, inf, duplicates, empty samples...)."""


def preview(names, limit: int = 5) -> str:
    """`a, b, c and 12 more`: enough names to find the problem without flooding the terminal."""
    names = [str(name) for name in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


__all__ = ["ExpressionInputError", "GexBertError", "preview"]
