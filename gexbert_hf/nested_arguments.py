"""Arguments dataclasses that nest option dataclasses (`BenchmarkArguments.pretraining: PretrainingOptions`), so a
command reuses the library's options instead of copying their fields under other names.

Two spellings reach the nested values: a JSON file (or a results.json record) with nested objects,
`{"pretraining": {"learning_rate": 5e-4}}`, and dotted flags, `--pretraining.learning_rate 5e-4`. A nested value not
given keeps the default the outer class's `default_factory` gives (the command's defaults, not the options class's).
Keys that name no field are refused by name; a key the arguments class lists in its `moved_fields` ClassVar (an old
flat spelling) is refused with where it went, never silently mapped. Nested options listed in its `set_by_the_run`
ClassVar are left out of `--help` (the class refuses them with its reason).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, get_type_hints

from transformers import HfArgumentParser

from .errors import GexBertError


class ArgumentsError(GexBertError, ValueError):
    """Arguments that name no field: a typo, an unknown nested key, or an old flat key that moved into a group."""


def nested_fields(cls: type) -> dict[str, type]:
    """The fields of arguments class `cls` whose type is itself a dataclass, by name."""
    hints = get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)
            if field.init and dataclasses.is_dataclass(hints[field.name])}


def default_of(cls: type, name: str) -> Any:
    """A fresh default value of `cls`'s nested field `name` (its default_factory, else the options' own defaults)."""
    field = next(field for field in dataclasses.fields(cls) if field.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return nested_fields(cls)[name]()


def _refuse_unknown(cls: type, keys: Sequence[str], where: str) -> None:
    """A clear error for the first key that is not an init field of `cls` (moved keys say where they went)."""
    known = {field.name for field in dataclasses.fields(cls) if field.init}
    moved: dict[str, str] = getattr(cls, "moved_fields", {})
    for key in keys:
        if key in moved:
            raise ArgumentsError(f"{where}{key} moved to {moved[key]} (write it as "
                                 f"{{\"{moved[key].split('.')[0]}\": {{\"{moved[key].split('.', 1)[-1]}\": ...}}}} "
                                 f"in a JSON file, or --{moved[key]} on the command line)")
        if key not in known:
            raise ArgumentsError(f"{where}{key}: unknown key of {cls.__name__}; known keys: {', '.join(sorted(known))}")


def arguments_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of `cls` from a (JSON-like) dict whose nested fields may be dicts of their options' fields."""
    _refuse_unknown(cls, list(values), "")
    nested = nested_fields(cls)
    inputs = dict(values)
    for name, options_class in nested.items():
        given = inputs.get(name)
        if isinstance(given, Mapping):
            _refuse_unknown(options_class, list(given), f"{name}.")
            inputs[name] = dataclasses.replace(default_of(cls, name), **given)
        elif given is not None and not isinstance(given, options_class):
            raise ArgumentsError(f"{name}: expected an object of {options_class.__name__} fields, got {given!r}")
    return cls(**inputs)


class NestedArgumentParser(HfArgumentParser):
    """`HfArgumentParser` for one arguments class with nested option dataclasses: each nested field becomes an
    argument group of dotted flags (`--pretraining.max_genes`), defaulting to the outer class's default values.
    Abbreviated flags are off: `--finetuning.epoch` is refused by name, not read as `--finetuning.epochs`."""

    def __init__(self, dataclass_types: Any, **kwargs: Any):
        super().__init__(dataclass_types, **{"allow_abbrev": False, **kwargs})

    def _add_dataclass_arguments(self, dtype: type) -> None:
        hints = get_type_hints(dtype)
        nested = nested_fields(dtype)
        for field in dataclasses.fields(dtype):
            if not field.init:
                continue
            if field.name not in nested:
                field.type = hints[field.name]
                self._parse_dataclass_field(self, field)
                continue
            options_class, default = nested[field.name], default_of(dtype, field.name)
            group = self.add_argument_group(f"{field.name} ({options_class.__name__})",
                                            field.metadata.get("help"))
            option_hints = get_type_hints(options_class)
            hidden = getattr(dtype, "set_by_the_run", {})  # accepted (so the class can say why it refuses), not listed
            for option in dataclasses.fields(options_class):
                if option.init:
                    path = f"{field.name}.{option.name}"
                    metadata = {**option.metadata, "help": argparse.SUPPRESS} if path in hidden else option.metadata
                    flag = dataclasses.field(default=getattr(default, option.name), metadata=metadata)
                    flag.name, flag.type = path, option_hints[option.name]
                    self._parse_dataclass_field(group, flag)

    def parse_args_into_dataclasses(self, args: Sequence[str] | None = None, **_: Any) -> tuple[Any, ...]:
        """The arguments from flags; an unknown or moved flag is refused by name (argparse would only list it)."""
        namespace, remaining = self.parse_known_args(args=args)
        if remaining:
            self._refuse_flags(remaining)
        values: dict[str, Any] = {}
        for key, value in vars(namespace).items():
            group, _, option = key.partition(".")
            if option:
                values.setdefault(group, {})[option] = value
            else:
                values[key] = value
        return tuple(arguments_from_dict(dtype, values) for dtype in self.dataclass_types)

    def _refuse_flags(self, remaining: list[str]) -> None:
        for dtype in self.dataclass_types:
            for token in remaining:
                if token.startswith("--"):
                    key = token[2:].split("=", 1)[0].replace("-", "_")
                    group, _, option = key.partition(".")
                    if option and group in nested_fields(dtype):
                        _refuse_unknown(nested_fields(dtype)[group], [option], f"--{group}.")
                    _refuse_unknown(dtype, [key], "--")
        raise ArgumentsError(f"unrecognised arguments: {' '.join(remaining)}")

    def parse_dict(self, args: dict[str, Any], allow_extra_keys: bool = False) -> tuple[Any, ...]:
        """The arguments from a dict (a JSON file): nested objects for nested fields, unknown keys refused."""
        return tuple(arguments_from_dict(dtype, args) for dtype in self.dataclass_types)


__all__ = ["ArgumentsError", "NestedArgumentParser", "arguments_from_dict", "default_of", "nested_fields"]
