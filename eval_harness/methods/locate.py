"""What locate-then-edit methods need from a model: fact-token positions, keys at an MLP projection's input,
the residual stream at a layer's output, and a hook that adds a vector there.

Shared by MEMIT and AlphaEdit (and usable by any method that edits at a token). Everything here is batched: one
padded batch (right padding, so positions count from the start of each row) serves all requests at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .base import MethodError


@dataclass
class EncodedPrompts:
    """Right-padded token ids of several prompts, with the fact token's position in each row."""

    input_ids: Any  # (rows, width) long
    attention_mask: Any  # (rows, width) long
    fact_positions: Any  # (rows,) long
    lengths: list[int]


def fact_token_index(tokenizer: Any, text: str, subject_end: int, fact_token: str) -> tuple[list[int], int]:
    """Token ids of `text` (as the tokenizer encodes it by default) and the index of the fact token.

    `subject_last`: the last token that overlaps the subject, whose characters end at `subject_end`; `last`: the
    final token of the text (what tiny random-init models need: they look facts up at the last token).
    """
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    if fact_token == "last":
        return ids, len(ids) - 1
    if fact_token != "subject_last":
        raise MethodError(f"fact_token {fact_token!r}: expected subject_last or last")
    index = None
    for i, (start, end) in enumerate(encoded["offset_mapping"]):
        if end > start and start < subject_end:
            index = i
    if index is None:
        raise MethodError(f"cannot find the subject's last token in {text!r}")
    return ids, index


def encode_with_fact_token(tokenizer: Any, texts: Sequence[str], subject_ends: Sequence[int], fact_token: str,
                           pad_id: int, device: Any) -> EncodedPrompts:
    import torch

    rows, positions = [], []
    for text, subject_end in zip(texts, subject_ends, strict=True):
        ids, index = fact_token_index(tokenizer, text, subject_end, fact_token)
        rows.append(ids)
        positions.append(index)
    width = max(map(len, rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
    return EncodedPrompts(input_ids.to(device), attention.to(device), torch.tensor(positions, device=device),
                          [len(r) for r in rows])


def pad_id_of(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _hidden(output: Any) -> Any:
    """A decoder layer's hidden states: transformers 5.x returns the tensor, older versions a tuple."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def add_at_positions(layer: Any, rows: Any, positions: Any, deltas: Any, which: Any) -> Iterator[None]:
    """While active, layer's output[rows[i], positions[i]] += deltas[which[i]]."""

    def hook(module: Any, inputs: Any, output: Any) -> Any:
        hidden = _hidden(output)
        hidden = hidden.clone()
        hidden[rows, positions] = hidden[rows, positions] + deltas[which].to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def capture_layer_output(layer: Any, store: dict[str, Any]) -> Iterator[None]:
    """While active, store['out'] is the layer's latest output hidden states."""

    def hook(module: Any, inputs: Any, output: Any) -> None:
        store["out"] = _hidden(output)

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def capture_inputs(modules: dict[int, Any], store: dict[int, Any]) -> Iterator[None]:
    """While active, store[l] is the latest input of modules[l] (the MLP projection's keys, all positions)."""

    def make(index: int) -> Any:
        def hook(module: Any, inputs: Any) -> None:
            store[index] = inputs[0]

        return hook

    handles = [module.register_forward_pre_hook(make(index)) for index, module in modules.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
