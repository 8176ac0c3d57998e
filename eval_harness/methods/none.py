"""`--method none`: score the base model only (p₁ = p₀), the baseline every run can be compared against."""

from __future__ import annotations

from typing import Any

import polars as pl

from .base import EditRequest, Intervention, register


@register
class NoIntervention(Intervention):
    name = "none"
    kind = "edit"
    description = "no change; scores the base model"

    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any:
        return model
