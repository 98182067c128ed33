"""Plan data as JSON values (`testbed plan -o json`, plan.json in a results folder); pure, plan/."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import TypeAlias

from ..spec.model import OMIT_AT_DEFAULT

Json: TypeAlias = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


def to_json(value: object) -> Json:
    """Dataclasses as objects (fields in declaration order; a field added later is left out at
    its default: spec.model.OMIT_AT_DEFAULT), tuples as lists, the rest as is."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(getattr(value, f.name))
            for f in fields(value)
            if not (f.metadata.get(OMIT_AT_DEFAULT) and getattr(value, f.name) == f.default)
        }
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"not plan data: {type(value).__name__}")
