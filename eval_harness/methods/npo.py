"""NPO (Zhang et al., 2024): negative preference optimisation against the frozen base model.

    L = −(2/β) · mean over forget pairs of log σ(β · (NLL_θ − NLL_ref))      (NLL summed over the answer's tokens)
      + retain_weight · NLL(retain) + kl_weight · KL(p_base ‖ p_θ) on retain

At the first step θ = ref, so the forget term is (2/β)·log 2; it falls toward 0 as NLL_θ rises above NLL_ref, and
unlike GA it saturates instead of rewarding an unbounded rise. The forget set is GA's (augmented questions, true
answers); the reference NLLs are computed once per batch with the adapters disabled (LoRA) or on a frozen copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import register
from .ga import GradientAscent
from .training import Batch, answer_nll, retain_terms, sequence_logits


@register
class NegativePreferenceOptimisation(GradientAscent):
    """GA's training set (examples() inherited); only the loss differs."""

    name = "npo"
    kind = "unlearn"
    description = "NPO: −(2/β) log σ(β(NLL_θ − NLL_ref)) on the true answers of the augmented forget set"
    needs_reference = True

    def loss(self, model: Any, reference: Callable[[Batch], Any], forget: Batch, retain: Batch | None,
             settings: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        import torch.nn.functional as F

        beta = float(settings["beta"])
        nll, _ = answer_nll(sequence_logits(model, forget), forget)
        reference_nll, _ = answer_nll(reference(forget), forget)
        forget_term = -(2.0 / beta) * F.logsigmoid(beta * (nll - reference_nll)).mean()
        kept, terms = retain_terms(model, reference, retain, settings)
        return forget_term + kept, {"npo": forget_term.item(), "forget_nll": float(nll.mean().item()), **terms}
