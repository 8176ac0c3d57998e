"""The `vllm` scoring backend: the same scores as HfScorer, computed by a vLLM engine from prompt log-probs.

Every score is the log-prob of a prompt token as vLLM reports it with `SamplingParams(prompt_logprobs=0)` (the
log-prob of the prompt's own token at each position, normalised over the full vocabulary; `None` at position 0):

* cloze: one prompt per (question, choice), the tokens of context + continuation as lm-eval's `_encode_pair` makes
  them (PairEncoder, shared with the hf backend); the score is the sum over the continuation's positions;
* letter: one prompt per (question, letter), the lettered context + the letter's token; the score is the letter's
  log-prob, renormalised over A–D. Top-k sampling log-probs (`logprobs=20`) would miss letters outside the top k;
  prompt log-probs never do;
* open: one prompt per distinct question (the open prompt, no options), generated greedily
  (`SamplingParams(temperature=0, max_tokens=open.max_new_tokens)`); the answer is the generated text's first line,
  as in the hf backend.

vLLM's automatic prefix caching reads each context once for its four continuations. Prompts are sent as token ids
(`{"prompt_token_ids": [...]}`), so vLLM's own tokenisation never enters and the two backends see the same tokens.

Edited weights reach the engine in one of two ways: `VllmScorer.from_hf(model, tokenizer, workdir)` saves the HF
model and starts an engine on the folder (any architecture vLLM supports), or `scorer.load_weights(model)` pushes the
tensors into the running engine (`LLM.apply_model` → the vLLM model's `load_weights`) and then calls
`reset_prefix_cache()`, without which cached KV blocks computed with the old weights would be reused.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledgesmith.eval_harness.scoring import (
    OPEN_MODE,
    PairEncoder,
    ScoringError,
    check_inputs,
    cloze_lengths,
    dedupe,
    first_line,
    load_prompts,
    renormalise,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

INSTALL_HINT = "the vllm backend needs vLLM and a GPU: pip install 'knowledgesmith[gpu]'"


def import_vllm() -> Any:
    """The vllm module, imported only when the backend is used (it is the `[gpu]` extra, absent on CPU installs)."""
    try:
        import vllm
    except ImportError as exc:
        raise ScoringError(INSTALL_HINT) from exc
    return vllm


class VllmScorer:
    """Scorer on a vLLM engine started from a model folder (or a Hub id)."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "auto", gpu_memory_utilization: float = 0.85,
                 llm: Any = None, batch_size: int | None = None, progress: bool = False,
                 **engine_args: Any) -> None:
        """`llm`: an engine already started on `model_dir` (tests pass a stand-in); otherwise one is started.

        `batch_size` is accepted for the hf backend's signature and unused: vLLM's scheduler forms its own batches.
        `progress` shows vLLM's progress bar; other keywords go to `vllm.LLM`.
        """
        vllm = import_vllm()
        from transformers import AutoTokenizer

        self.vllm = vllm
        self.model_dir = str(model_dir)
        self.engine_args = {"dtype": dtype, "gpu_memory_utilization": gpu_memory_utilization, **engine_args}
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.encoder = PairEncoder(self.tokenizer)
        self.prompts = load_prompts()
        self.progress = progress
        self.llm = llm if llm is not None else self._start_engine()

    def _start_engine(self) -> Any:
        return self.vllm.LLM(model=self.model_dir, tokenizer=self.model_dir, enable_prefix_caching=True,
                             **self.engine_args)

    @classmethod
    def from_hf(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, workdir: str | Path | None = None,
                **opts: Any) -> VllmScorer:
        """Save an (edited) HF model and its tokenizer to `workdir` (default: a new temporary folder) and start an
        engine on that folder."""
        folder = Path(workdir or tempfile.mkdtemp(prefix="ks-vllm-")) / "vllm-model"
        if folder.exists():
            shutil.rmtree(folder)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return cls(folder, **opts)

    def load_weights(self, model: PreTrainedModel) -> None:
        """Copy `model`'s weights (HF names) into the running engine in place, then drop the stale prefix cache."""
        weights = [(name, tensor.detach()) for name, tensor in model.state_dict().items()]
        self.llm.apply_model(lambda vllm_model: vllm_model.load_weights(weights))
        self.llm.reset_prefix_cache()

    def score(self, questions: Sequence[str], choices: Sequence[Sequence[str]], modes: Sequence[str], *,
              hidden_states: bool = False) -> dict[str, np.ndarray]:
        """Per-mode (n, 4) scores ("open": the (n,) answers), as HfScorer.score; vLLM exposes no hidden states, so
        `hidden_states` is refused."""
        if hidden_states:
            raise ScoringError("the vllm backend returns no hidden states; use --backend hf for CKA")
        check_inputs(questions, choices, modes)
        uq, uc, inverse = dedupe(questions, choices)
        out: dict[str, np.ndarray] = {}
        if "cloze" in modes or "cloze_norm" in modes:
            contexts = [self.prompts.cloze(q) for q in uq]
            conts = [[self.prompts.cloze_choice(c) for c in row] for row in uc]
            cloze = self._continuation_logprobs(contexts, conts)
            if "cloze" in modes:
                out["cloze"] = cloze[inverse]
            if "cloze_norm" in modes:
                out["cloze_norm"] = (cloze / cloze_lengths(uc))[inverse]
        if "letter" in modes:
            contexts = [self.prompts.letter(q, c) for q, c in zip(uq, uc, strict=True)]
            letters = list(self.prompts.letter_continuations)
            letter = self._continuation_logprobs(contexts, [letters] * len(uq), single_token=True)
            out["letter"] = renormalise(letter)[inverse]
        if OPEN_MODE in modes:
            out[OPEN_MODE] = self.generate_answers(questions)
        return out

    def generate_answers(self, questions: Sequence[str]) -> np.ndarray:
        """Greedy answers to the open prompt of each question ((n,) object array of str), each question once."""
        unique = list(dict.fromkeys(questions))
        encoded = self.encoder.encode([self.prompts.open(q).rstrip() for q in unique])
        params = self.vllm.SamplingParams(max_tokens=self.prompts.open_max_new_tokens, temperature=0.0)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=self.progress)
        answers = {q: first_line(output.outputs[0].text) for q, output in zip(unique, outputs, strict=True)}
        return np.array([answers[q] for q in questions], dtype=object)

    def _continuation_logprobs(self, contexts: list[str], continuations: list[list[str]],
                               single_token: bool = False) -> np.ndarray:
        ctx_ids, cont_ids = self.encoder.encode_groups(contexts, continuations)
        if single_token and any(len(c) != 1 for conts in cont_ids for c in conts):
            raise ScoringError("letter scoring needs ' A' … ' D' to be one token each after the prompt; "
                               "use the cloze mode")
        prompts = [{"prompt_token_ids": list(ctx) + list(cont)}
                   for ctx, conts in zip(ctx_ids, cont_ids, strict=True) for cont in conts]
        params = self.vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = iter(self.llm.generate(prompts, params, use_tqdm=self.progress))
        values = []
        for ctx, conts in zip(ctx_ids, cont_ids, strict=True):
            row = []
            for cont in conts:
                output = next(outputs)
                ids = output.prompt_token_ids
                # prompt_logprobs[pos] maps token id → Logprob for the token at pos; the prompt's own token is always
                # there, whatever the top-k asked for.
                row.append(sum(output.prompt_logprobs[pos][ids[pos]].logprob
                               for pos in range(len(ctx), len(ctx) + len(cont))))
            values.append(row)
        return np.array(values, dtype=np.float64)
