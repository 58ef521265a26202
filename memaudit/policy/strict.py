"""The base of every policy section: unknown keys are errors, numbers are finite and never booleans."""

from __future__ import annotations

import types
import typing
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


def _numeric(annotation) -> bool:
    """Whether a field holds a number (int or float, possibly optional)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    return annotation in (int, float) or any(option in (int, float) for option in options)


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelled threshold must never be silently ignored. Numbers are
    finite (no NaN or infinity) and never booleans (YAML's `true` is not the number 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data):
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, bool) and _numeric(field.annotation):
                    raise ValueError(f"'{name}' must be a number, got the boolean {str(value).lower()}")
        return data


class CheckSettings(StrictModel):
    """What every check's settings have: whether it runs, and whether it must."""

    enabled: bool = True
    required: bool = Field(True, description="a required check that cannot run makes the scan an error")
