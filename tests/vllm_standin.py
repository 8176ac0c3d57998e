"""TEST CODE: a stand-in for the part of vLLM's offline API the vllm backend uses, computed with transformers on CPU.

vLLM needs a GPU, so the tests install this module as `vllm`. It follows vLLM's documented interface:

* `LLM(model=..., tokenizer=..., dtype=..., enable_prefix_caching=..., **engine_args)`;
* `LLM.generate(prompts, sampling_params, use_tqdm=...)` → one `RequestOutput` per prompt, in order; a prompt is a
  string or a `{"prompt_token_ids": [...]}` dict (a TokensPrompt);
* `RequestOutput.prompt_token_ids`, `.prompt_logprobs` (a list over prompt positions: `None` at position 0, then a
  dict token id → `Logprob(logprob, rank, decoded_token)` holding the top `prompt_logprobs` tokens plus the prompt's
  own token), `.outputs` (`CompletionOutput` with `token_ids`, `text`, `logprobs`);
* `SamplingParams(max_tokens, temperature, logprobs, prompt_logprobs, detokenize)`;
* `LLM.apply_model(func)` → `[func(model)]` (one worker), the model offering vLLM's `load_weights(weights)` over
  (HF name, tensor) pairs; `LLM.reset_prefix_cache()` → True.

Each prompt is computed on its own, unpadded — deliberately not the hf backend's batched, cached path — so agreeing
predictions say something. Prefix caching is modelled by remembering each prompt's result until
`reset_prefix_cache()`: like vLLM's KV blocks, results computed before a weight update go stale unless reset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    max_tokens: int | None = 16
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    detokenize: bool = True


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = "length"


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput]
    finished: bool = True


class _WorkerModel:
    """What `apply_model` hands to a function: the model, with vLLM's `load_weights` over HF-named tensors."""

    def __init__(self, hf_model: torch.nn.Module) -> None:
        self.hf_model = hf_model

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        params = self.hf_model.state_dict()
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                params[name].copy_(tensor)
                loaded.add(name)
        return loaded


@dataclass
class LLM:
    model: str
    tokenizer: str | None = None
    dtype: str = "auto"
    enable_prefix_caching: bool = True
    engine_args: dict[str, Any] = field(default_factory=dict)

    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto",
                 enable_prefix_caching: bool = True, **engine_args: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.dtype = dtype
        self.enable_prefix_caching = enable_prefix_caching
        self.engine_args = engine_args
        torch_dtype = torch.float32 if dtype in ("auto", "float32") else getattr(torch, dtype)
        self._hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).eval()
        self._tok = AutoTokenizer.from_pretrained(tokenizer or model)
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}
        self.resets = 0
        self.prompts_computed = 0

    def get_tokenizer(self) -> Any:
        return self._tok

    def apply_model(self, func: Any) -> list[Any]:
        return [func(_WorkerModel(self._hf))]

    def reset_prefix_cache(self) -> bool:
        self._cache.clear()
        self.resets += 1
        return True

    def _logprobs(self, ids: tuple[int, ...]) -> torch.Tensor:
        if self.enable_prefix_caching and ids in self._cache:
            return self._cache[ids]
        with torch.no_grad():
            logits = self._hf(torch.tensor([list(ids)])).logits[0].float()
        result = torch.log_softmax(logits, dim=-1)
        self.prompts_computed += 1
        if self.enable_prefix_caching:
            self._cache[ids] = result
        return result

    def generate(self, prompts: str | dict | Sequence[str | dict], sampling_params: SamplingParams | None = None,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        params = sampling_params or SamplingParams()
        if isinstance(prompts, str | dict):
            prompts = [prompts]
        outputs = []
        for i, prompt in enumerate(prompts):
            text = prompt if isinstance(prompt, str) else prompt.get("prompt")
            ids = list(prompt["prompt_token_ids"]) if isinstance(prompt, dict) else self._tok(prompt)["input_ids"]
            logprobs = self._logprobs(tuple(ids))
            prompt_lps = None
            if params.prompt_logprobs is not None:
                prompt_lps = [None] + [self._top(logprobs[pos - 1], ids[pos], params.prompt_logprobs)
                                       for pos in range(1, len(ids))]
            # Greedy decoding (the only sampling the backend asks for: temperature 0), up to max_tokens or EOS.
            last = logprobs[-1]
            tokens, sample_lps, cumulative = [], [], 0.0
            for _ in range(params.max_tokens or 1):
                token = int(last.argmax())
                tokens.append(token)
                cumulative += float(last[token])
                if params.logprobs is not None:
                    sample_lps.append(self._top(last, token, params.logprobs))
                if token == self._tok.eos_token_id or len(tokens) == (params.max_tokens or 1):
                    break
                last = self._logprobs(tuple(ids + tokens))[-1]
            text_out = self._tok.decode(tokens, skip_special_tokens=True) if params.detokenize else ""
            outputs.append(RequestOutput(str(i), text, ids, prompt_lps,
                                         [CompletionOutput(0, text_out, tokens, cumulative,
                                                           sample_lps if params.logprobs is not None else None)]))
        return outputs

    def _top(self, row: torch.Tensor, token: int, k: int) -> dict[int, Logprob]:
        ranks = (row > row[token]).sum().item() + 1
        top = {token: Logprob(float(row[token]), int(ranks))}
        if k:
            values, indices = row.topk(k)
            for rank, (value, index) in enumerate(zip(values.tolist(), indices.tolist(), strict=True), start=1):
                top.setdefault(index, Logprob(value, rank))
        return top
