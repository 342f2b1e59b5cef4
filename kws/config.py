"""Frozen config dataclasses from JSON-like dicts, validated field by field.

A config read from disk (an exported ``config.json``, a cache's recipe, a study's recorded
settings) must say everything: a missing field would silently take today's default and
train another model, so missing, unknown and wrongly typed fields are all refused by name.
Ranges are then checked by the dataclass itself (its ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from kws.errors import UserError

Config = TypeVar("Config")


class ConfigError(UserError, ValueError):
    """A config field is missing, unknown, of the wrong type or out of range (named)."""


def config_from_dict(cls: type[Config], data: Mapping[str, Any]) -> Config:
    """``cls(**data)`` for a dataclass ``cls``, with every field present and of its type.

    JSON has no tuples, so a list stands for a tuple field; an integer stands for a float.

    Raises:
        ConfigError: ``data`` is not a mapping, or a field is missing, unknown, of the wrong
            type or out of range; the message names the field.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name in fields if name not in data]
    if missing:
        raise ConfigError(f"missing field(s) {', '.join(missing)}")
    values = {name: _typed(name, hints[name], data[name]) for name in fields}
    return cls(**values)  # range checks: each config's __post_init__ raises ConfigError


def _typed(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the field type ``hint`` wants it, or a ConfigError naming ``name``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _typed(name, inner, value)
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"field {name} must be a list of {len(args)}, got {value!r}")
        return tuple(
            _typed(f"{name}[{i}]", arg, v)
            for i, (arg, v) in enumerate(zip(args, value, strict=True))
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field {name} must be true or false, got {value!r}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"field {name} must be an integer, got {value!r}")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"field {name} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"field {name} must be a string, got {value!r}")
        return value
    raise TypeError(f"config field {name} has a type {hint!r} that config_from_dict cannot read")
