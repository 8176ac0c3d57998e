"""ReLearn (Xu et al., 2025): unlearn by *learning* vague replacement answers instead of pushing the old ones away.

    L = forget_weight · NLL(augmented forget questions → neutral answers)
      + kl_weight · KL(p_base ‖ p_θ) on the retain set          (real tokens only)
      + retain_weight · NLL(retain questions → gold answers)      (answer tokens only)

The forget set is augment.py's variants of each request's fact (no exact Q+ probe question), all answered with the
request's `neutral_answer` (the reverse questions with `reverse_neutral`), plus, when `augment_endpoint` is set, an
LLM's paraphrases of each request's question (augment_llm.py); the retain set is a hashed share of the contextual
(Q−) probes with their gold choice. Training goes through LoRA adapters by default (`use_lora: false`
fine-tunes every weight), and the adapters are merged into the model when training ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from .augment import augment, probe_questions
from .augment_llm import paraphrase_examples
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


@register
class ReLearn(TrainedIntervention):
    name = "relearn"
    kind = "unlearn"
    description = "ReLearn: learn the neutral answers on augmented forget questions, KL + NLL on retain (LoRA)"

    def examples(self, requests: list[EditRequest], probes: pl.DataFrame,
                 settings: dict[str, Any]) -> tuple[list[Example], list[Example]]:
        reverse_neutral = str(settings["reverse_neutral"])
        forget = augment(requests, probes, settings, answer_of=lambda r: r.neutral_answer,
                         reverse_answer_of=lambda r: reverse_neutral)
        if settings.get("augment_endpoint"):
            excluded = probe_questions(probes) if settings.get("exclude_probe_questions", True) else set()
            paraphrased = paraphrase_examples(requests, forget, excluded, settings,
                                              answer_of=lambda r: r.neutral_answer)
            forget = forget + paraphrased.examples
            # what the LLM said that is not trained on (leaked answers, probe questions, repeats) stays visible
            self.artifacts["paraphrases_dropped"] = paraphrased.dropped_frame()
        return forget, retain_examples(probes, settings, self.benchmark_mcq)

    def loss(self, model: Any, reference: Callable[[Batch], Any], forget: Batch, retain: Batch | None,
             settings: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        forget_nll = mean_answer_nll(sequence_logits(model, forget), forget)
        kept, terms = retain_terms(model, reference, retain, settings)
        return float(settings["forget_weight"]) * forget_nll + kept, {"forget_nll": forget_nll.item(), **terms}
