"""LoRA fine-tuning toward the edit targets: the editing baseline the seed paper finds least stable.

    L = NLL(request prompts → target_new)        (answer tokens only; peft LoRA adapters, merged after training)

By default it trains on the requests' fill-in prompts only, like FT-L; `forms` can add augment.py's question variants
(answered with the new object; exact Q+ probe questions are never trained on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from .augment import augment
from .base import EditRequest, MethodError, register
from .training import Batch, Example, TrainedIntervention, mean_answer_nll, sequence_logits


@register
class LoraFineTuning(TrainedIntervention):
    name = "lora"
    kind = "edit"
    description = "LoRA fine-tuning (peft) of the request prompts toward target_new"

    def examples(self, requests: list[EditRequest], probes: pl.DataFrame,
                 settings: dict[str, Any]) -> tuple[list[Example], list[Example]]:
        if "reverse" in settings.get("forms", []):
            # the reverse question of the new fact would need the new object's own subject; not defined here
            raise MethodError("lora: the 'reverse' form is for unlearning; use prompt, question, context, typo")
        return augment(requests, probes, settings, answer_of=lambda r: r.target_new,
                       reverse_answer_of=lambda r: r.subject), []

    def loss(self, model: Any, reference: Callable[[Batch], Any], forget: Batch, retain: Batch | None,
             settings: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        nll = mean_answer_nll(sequence_logits(model, forget), forget)
        return nll, {"edit_nll": nll.item()}
