"""Frozen config dataclasses from JSON-like dicts, with unknown keys named."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

Config = TypeVar("Config")


def config_from_dict(cls: type[Config], data: Mapping[str, Any]) -> Config:
    """``cls(**data)`` for a dataclass ``cls``; a key that is not a field is an error by name.

    Values are validated by the dataclass itself (its ``__post_init__``).
    """
    fields = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**data)
