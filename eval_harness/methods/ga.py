"""Gradient ascent (GA): raise the NLL of the true answers on the forget set, optionally holding a retain set.

    L = −NLL(forget questions → true answers) + retain_weight · NLL(retain) + kl_weight · KL(p_base ‖ p_θ) on retain

The forget set is the same augmented questions ReLearn trains on (augment.py), answered with the *true* object
(the reverse questions with the subject), so GA and ReLearn differ only in their loss. GA has no floor: the loss falls
without bound as the model collapses, which is why it runs few steps and why ReLearn exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from .augment import augment
from .base import EditRequest, register
from .training import (
    Batch,
    Example,
    TrainedIntervention,
    mean_answer_nll,
    retain_examples,
    retain_terms,
    sequence_logits,
)


def true_answer_forget_set(requests: list[EditRequest], probes: pl.DataFrame,
                           settings: dict[str, Any]) -> list[Example]:
    """The augmented questions with the fact's own answers: the texts whose likelihood GA and NPO push down."""
    return augment(requests, probes, settings, answer_of=lambda r: r.target_true, reverse_answer_of=lambda r: r.subject)


def retain_if_weighted(probes: pl.DataFrame, settings: dict[str, Any],
                       benchmark: pl.DataFrame | None = None) -> list[Example]:
    """The retain set only when a retain term is on (otherwise no retain batch is encoded or run)."""
    if float(settings.get("retain_weight", 0.0)) or float(settings.get("kl_weight", 0.0)):
        return retain_examples(probes, settings, benchmark)
    return []


@register
class GradientAscent(TrainedIntervention):
    name = "ga"
    kind = "unlearn"
    description = "gradient ascent on the true answers of the augmented forget set (optional retain NLL/KL)"

    def examples(self, requests: list[EditRequest], probes: pl.DataFrame,
                 settings: dict[str, Any]) -> tuple[list[Example], list[Example]]:
        return (true_answer_forget_set(requests, probes, settings),
                retain_if_weighted(probes, settings, self.benchmark_mcq))

    def loss(self, model: Any, reference: Callable[[Batch], Any], forget: Batch, retain: Batch | None,
             settings: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        forget_nll = mean_answer_nll(sequence_logits(model, forget), forget)
        kept, terms = retain_terms(model, reference, retain, settings)
        return -forget_nll + kept, {"forget_nll": forget_nll.item(), **terms}
