"""FT-L: fine-tune one MLP output projection on the request prompts toward the new objects, L∞-constrained.

Only that one weight matrix trains; after every optimiser step its change from the base weights is clipped to
±norm_constraint, the constraint that makes FT-L a "constrained" baseline (Zhu et al., as used in the ROME paper).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..architectures import architecture_of
from .base import EditRequest, Intervention, register
from .training import Example, encode_examples, mean_answer_nll, sequence_logits


@register
class ConstrainedFineTuning(Intervention):
    name = "ft"
    kind = "edit"
    description = "FT-L: fine-tune one MLP output projection toward target_new, L∞-constrained"

    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any:
        import torch

        arch = architecture_of(model, settings.get("module"))
        layer = int(settings["layer"])
        weight = arch.mlp_out(model, layer).weight
        base = weight.detach().clone()
        bound = float(settings["norm_constraint"])
        device = weight.device
        trainable = [p for p in model.parameters() if p.requires_grad]
        for p in trainable:
            p.requires_grad_(False)
        weight.requires_grad_(True)
        optimiser = torch.optim.Adam([weight], lr=float(settings["lr"]))
        batch = int(settings["batch_size"])
        examples = [Example(r.prompt_text, r.target_new, r.request_id, "prompt") for r in requests]
        encoded = [encode_examples(tokenizer, examples[i: i + batch]).to(device)
                   for i in range(0, len(examples), batch)]
        was_training = model.training
        model.eval()  # no dropout: the constraint, not noise, bounds the change
        self.losses: list[float] = []
        try:
            with torch.enable_grad():
                for _ in range(int(settings["num_steps"])):
                    total = 0.0
                    for encoded_batch in encoded:
                        optimiser.zero_grad(set_to_none=True)
                        loss = mean_answer_nll(sequence_logits(model, encoded_batch), encoded_batch)
                        loss.backward()
                        optimiser.step()
                        with torch.no_grad():
                            weight.copy_(base + (weight - base).clamp(-bound, bound))
                        total += loss.item() * encoded_batch.input_ids.shape[0]
                    self.losses.append(total / max(len(requests), 1))
        finally:
            weight.requires_grad_(False)
            for p in trainable:
                p.requires_grad_(True)
            model.train(was_training)
        return model
