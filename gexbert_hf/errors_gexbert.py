"""The errors the remote-code files raise. This file travels with every checkpoint beside the tokenizer, so it imports
nothing; `gexbert_hf.errors` re-exports these classes, so `except ExpressionInputError` catches the same class
everywhere the package is installed."""


class GexBertError(Exception):
    """Base of every error this package raises on purpose."""


class ExpressionInputError(GexBertError, ValueError):
    """An expression matrix that cannot be used as given (non-numeric cells, inf, duplicates, empty samples...)."""


class ModelFileError(GexBertError, OSError):
    """A model or tokenizer folder whose files cannot be loaded (truncated safetensors, invalid JSON, missing weights)."""


class HubConnectionError(GexBertError, ConnectionError):
    """The Hugging Face Hub cannot be reached (offline mode, no network): nothing was uploaded."""


def preview(names, limit: int = 5) -> str:
    """`a, b, c and 12 more`: enough names to find the problem without flooding the terminal. A name holding a
    newline or another unprintable character is quoted with escapes, so a message stays one line."""
    names = [str(name) if str(name).isprintable() else repr(str(name)) for name in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def one_line(error: BaseException) -> str:
    """A library's exception as one short line (its type, its message with newlines folded), to quote in ours."""
    text = " ".join(str(error).split())
    kind = type(error).__name__
    kind = f"{type(error).__module__}.{kind}" if kind.islower() else kind  # zlib.error, not a bare `error`
    return f"{kind}: {text[:200]}{'...' if len(text) > 200 else ''}"


__all__ = ["ExpressionInputError", "GexBertError", "HubConnectionError", "ModelFileError", "one_line", "preview"]
