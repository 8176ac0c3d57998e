"""FT-L: fine-tune one MLP output projection on the request prompts toward the new objects, L∞-constrained.

Only that one weight matrix trains; after every optimiser step its change from the base weights is clipped to
±norm_constraint, the constraint that makes FT-L a "constrained" baseline (Zhu et al., as used in the ROME paper).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..architectures import architecture_of
from .base import EditRequest, Intervention, MethodError, register


def encode_prompt_target(tokenizer: Any, prompts: list[str], targets: list[str]) -> tuple[Any, Any, Any]:
    """Right-padded input ids, attention mask and labels (-100 except on the target tokens).

    The prompt is encoded as the tokenizer does by default (BOS where its family adds one); the target with a
    leading space and no special tokens, so its tokens are the ones the model emits after the prompt.
    """
    import torch

    rows, labels = [], []
    for prompt, target in zip(prompts, targets, strict=True):
        prompt_ids = tokenizer(prompt)["input_ids"]
        target_ids = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
        if not target_ids:
            raise MethodError(f"target {target!r} encodes to no tokens")
        rows.append(prompt_ids + target_ids)
        labels.append([-100] * len(prompt_ids) + target_ids)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    label_ids = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        label_ids[i, : len(label)] = torch.tensor(label)
    return input_ids, attention, label_ids


def target_nll(model: Any, input_ids: Any, attention: Any, labels: Any) -> Any:
    """Mean negative log-likelihood of the labelled tokens (each request weighs the same, whatever its length)."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
    gold = labels[:, 1:]
    mask = gold != -100
    logp = torch.log_softmax(logits, dim=-1).gather(-1, gold.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    per_request = (logp * mask).sum(1) / mask.sum(1).clamp(min=1)
    return -per_request.mean()


@register
class ConstrainedFineTuning(Intervention):
    name = "ft"
    kind = "edit"
    description = "FT-L: fine-tune one MLP output projection toward target_new, L∞-constrained"

    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any:
        import torch

        arch = architecture_of(model)
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
        encoded = [
            tuple(t.to(device) for t in encode_prompt_target(
                tokenizer, [r.prompt_text for r in requests[i: i + batch]],
                [r.target_new for r in requests[i: i + batch]]))
            for i in range(0, len(requests), batch)
        ]
        was_training = model.training
        model.eval()  # no dropout: the constraint, not noise, bounds the change
        self.losses: list[float] = []
        try:
            with torch.enable_grad():
                for _ in range(int(settings["num_steps"])):
                    total = 0.0
                    for input_ids, attention, labels in encoded:
                        optimiser.zero_grad(set_to_none=True)
                        loss = target_nll(model, input_ids, attention, labels)
                        loss.backward()
                        optimiser.step()
                        with torch.no_grad():
                            weight.copy_(base + (weight - base).clamp(-bound, bound))
                        total += loss.item() * input_ids.shape[0]
                    self.losses.append(total / max(len(requests), 1))
        finally:
            weight.requires_grad_(False)
            for p in trainable:
                p.requires_grad_(True)
            model.train(was_training)
        return model
