"""Scoring 4-way MCQs with a causal LM: the prompt strings, lm-eval's tokenisation, and the batched `hf` backend.

Every backend returns, per mode, an (n, 4) float64 array whose argmax (ties to the lowest index) is the prediction:

* `cloze`: sum of the log-probs of the continuation " {choice}" after "Question: {question}\\nAnswer:";
* `cloze_norm`: `cloze` divided by the choice's length in characters (lm-eval's `acc_norm` divides by
  `len(choice)` of `doc_to_choice`, without the target delimiter " ");
* `letter`: log-softmax over the four log-probs of " A" … " D" after the lettered question (renormalised);
* `open`: no options shown; the model's greedy short answer to "Question: {question}\nAnswer:" (its first line). The
  backend returns the answer texts (an (n,) object array); openended.py matches them to the choices and the KG.

Strings are encoded exactly as lm-eval's `hf` backend does (`_encode_pair`: trailing spaces of the context move to the
continuation; the context is encoded alone and the continuation is what the whole string adds after the context's
tokens; special tokens, BOS included, as the tokenizer adds them by default), so predictions match lm-eval's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import yaml

from knowledgesmith.builder.errors import KsUserError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Modes that score the four choices: (n, 4) arrays, a distribution over the choices once softmaxed (KL needs that).
SCORING_MODES = ("cloze", "cloze_norm", "letter")
# The open-ended mode returns the generated answers; openended.py turns them into per-choice match scores.
OPEN_MODE = "open"
MODES = (*SCORING_MODES, OPEN_MODE)
BACKENDS = ("hf", "vllm")
N_CHOICES = 4
PROMPTS_FILE = Path(__file__).with_name("prompts.yaml")


class ScoringError(KsUserError):
    """The questions cannot be scored as asked (unknown mode, letters that are not single tokens, …)."""


class Scorer(Protocol):
    """What every backend offers: per-mode (n, 4) scores for n questions and their four choices."""

    def score(self, questions: Sequence[str], choices: Sequence[Sequence[str]], modes: Sequence[str], *,
              hidden_states: bool | Sequence[int] = False) -> dict[str, np.ndarray]:
        """Scores per mode in `modes` ("open": the (n,) answer texts); with `hidden_states`, also "hidden":
        (n, n_layers, d) float32 — for every row when True, for the listed rows only when a sequence of indices."""
        ...


# -- prompts -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prompts:
    """The prompt strings of prompts.yaml (shared with the lm-eval task YAMLs that ks-publish stages)."""

    letter_context: str
    letter_continuations: tuple[str, ...]
    cloze_context: str
    cloze_continuation: str
    open_context: str
    open_max_new_tokens: int

    def letter(self, question: str, choices: Sequence[str]) -> str:
        a, b, c, d = choices
        return self.letter_context.format(question=question, choice_a=a, choice_b=b, choice_c=c, choice_d=d)

    def cloze(self, question: str) -> str:
        return self.cloze_context.format(question=question)

    def cloze_choice(self, choice: str) -> str:
        return self.cloze_continuation.format(choice=choice)

    def open(self, question: str) -> str:
        return self.open_context.format(question=question)


@functools.cache
def load_prompts(path: Path = PROMPTS_FILE) -> Prompts:
    """The prompt formats, read once."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Prompts(letter_context=data["letter"]["context"],
                   letter_continuations=tuple(data["letter"]["continuations"]),
                   cloze_context=data["cloze"]["context"], cloze_continuation=data["cloze"]["continuation"],
                   open_context=data["open"]["context"], open_max_new_tokens=int(data["open"]["max_new_tokens"]))


def check_inputs(questions: Sequence[str], choices: Sequence[Sequence[str]], modes: Sequence[str]) -> None:
    """Raise ScoringError for unknown modes or rows that are not 4-way."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ScoringError(f"unknown scoring mode {unknown[0]!r} (choose from {', '.join(MODES)})")
    if len(questions) != len(choices):
        raise ScoringError(f"{len(questions)} questions but {len(choices)} choice lists")
    for i, row in enumerate(choices):
        if len(row) != N_CHOICES:
            raise ScoringError(f"question {i} has {len(row)} choices; the harness scores 4-way MCQs")


def dedupe(questions: Sequence[str], choices: Sequence[Sequence[str]]
           ) -> tuple[list[str], list[tuple[str, ...]], np.ndarray]:
    """Unique (question, choices) rows, and for each input row the index of its unique row."""
    index: dict[tuple[str, tuple[str, ...]], int] = {}
    inverse = np.empty(len(questions), dtype=np.int64)
    for i, (q, c) in enumerate(zip(questions, choices, strict=True)):
        inverse[i] = index.setdefault((q, tuple(c)), len(index))
    unique_q = [q for q, _ in index]
    unique_c = [c for _, c in index]
    return unique_q, unique_c, inverse


def cloze_lengths(choices: Sequence[Sequence[str]]) -> np.ndarray:
    """The divisor of `cloze_norm`: each choice's length in characters, as lm-eval's acc_norm."""
    return np.array([[float(len(c)) for c in row] for row in choices], dtype=np.float64).reshape(-1, N_CHOICES)


def renormalise(logprobs: np.ndarray) -> np.ndarray:
    """log-softmax over the last axis (the four letters' log-probs → a distribution over A–D)."""
    top = logprobs.max(axis=-1, keepdims=True)
    return logprobs - (top + np.log(np.exp(logprobs - top).sum(axis=-1, keepdims=True)))


# -- lm-eval's tokenisation --------------------------------------------------------------------------------------------

class PairEncoder:
    """Encodes (context, continuation) pairs as lm-eval's hf backend does (`_encode_pair`, `tok_encode`)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        # lm-eval encodes a string that already starts with the BOS text without adding special tokens again.
        self.bos_text = tokenizer.decode(prefix) if prefix is not None else None

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        plain = [i for i, t in enumerate(texts) if not (self.bos_text and t.startswith(self.bos_text))]
        rest = sorted(set(range(len(texts))) - set(plain))
        out: list[list[int]] = [[] for _ in texts]
        if plain:
            for i, ids in zip(plain, self.tokenizer([texts[i] for i in plain])["input_ids"], strict=True):
                out[i] = list(ids)
        if rest:
            encoded = self.tokenizer([texts[i] for i in rest], add_special_tokens=False)["input_ids"]
            for i, ids in zip(rest, encoded, strict=True):
                out[i] = list(ids)
        return out

    def encode_groups(self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
                      ) -> tuple[list[tuple[int, ...]], list[list[tuple[int, ...]]]]:
        """Context tokens per context, and the tokens of each of its continuations."""
        split_contexts, wholes, shape = [], [], []
        for context, conts in zip(contexts, continuations, strict=True):
            stripped = context.rstrip()
            moved = context[len(stripped):]  # trailing spaces belong to the continuation, as in lm-eval
            split_contexts.append(stripped)
            wholes.extend(stripped + moved + c for c in conts)
            shape.append(len(conts))
        ctx_ids = self.encode(split_contexts)
        whole_ids = self.encode(wholes)
        out_ctx, out_conts, at = [], [], 0
        for ctx, n in zip(ctx_ids, shape, strict=True):
            conts = [tuple(whole_ids[at + j][len(ctx):]) for j in range(n)]
            at += n
            if any(not c for c in conts):
                raise ScoringError("a continuation encodes to no tokens after its context (empty choice?)")
            out_ctx.append(tuple(ctx))
            out_conts.append(conts)
        return out_ctx, out_conts


# -- the hf backend ----------------------------------------------------------------------------------------------------

@dataclass
class _Loglikelihoods:
    """Per context: the log-prob of each of its continuations (m, k), and its last-token hidden state per layer."""

    values: np.ndarray
    hidden: np.ndarray | None


@dataclass
class _HiddenStates:
    """The items whose last-context hidden states are kept, and those kept so far (item → (n_layers, d))."""

    wanted: set[int]
    values: dict[int, np.ndarray]


@dataclass
class _Tree:
    """Sequences that share a prefix, packed into one row: the prefix once, then each distinct remainder.

    A remainder ("segment") attends to the prefix and to itself, never to another segment, and its positions continue
    from the prefix's, so every token sees exactly what it would see in its own unpadded sequence.
    """

    tokens: list[int]
    positions: list[int]
    segment: list[int]  # -1 for the prefix, else the segment's number
    # per scored item: (packed position of the logits, target token) for each continuation token
    targets: list[list[tuple[int, int]]]
    # per scored item: packed position of its context's last token (the hidden state CKA compares)
    context_end: list[int]
    items: list[int]  # the items' numbers in the caller's list

    def mask(self) -> np.ndarray:
        seg = np.asarray(self.segment)
        causal = np.tril(np.ones((len(seg), len(seg)), dtype=bool))
        return causal & ((seg[None, :] == -1) | (seg[None, :] == seg[:, None]))


def _pack(sequences: list[tuple[tuple[int, ...], int]], items: list[int]) -> _Tree:
    """One tree from (context + continuation tokens, context length) pairs sharing a prefix."""
    inputs = list(dict.fromkeys(seq[:-1] for seq, _ in sequences))  # the last token is only ever predicted
    prefix = len(inputs[0]) if len(inputs) == 1 else len(_common_prefix(inputs))
    tokens, positions, segment = list(inputs[0][:prefix]), list(range(prefix)), [-1] * prefix
    offset: dict[tuple[int, ...], int] = {}
    for number, u in enumerate(inputs):
        offset[u] = len(tokens)
        tokens.extend(u[prefix:])
        positions.extend(range(prefix, len(u)))
        segment.extend([number] * (len(u) - prefix))

    def packed(u: tuple[int, ...], index: int) -> int:
        return index if index < prefix else offset[u] + index - prefix

    targets, context_end = [], []
    for seq, n_ctx in sequences:
        u = seq[:-1]
        targets.append([(packed(u, t - 1), seq[t]) for t in range(n_ctx, len(seq))])
        context_end.append(packed(u, n_ctx - 1))
    return _Tree(tokens, positions, segment, targets, context_end, items)


def _common_prefix(seqs: list[tuple[int, ...]]) -> tuple[int, ...]:
    first, last = min(seqs), max(seqs)  # the common prefix of all is that of the smallest and largest
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


class HfScorer:
    """Batched transformers scoring, CPU or GPU, reading each shared prefix once.

    Sequences that share a prefix — a cloze context and its continuations, or the lettered prompts of one question
    with different choice sets — are packed into one row: the prefix once, then each distinct remainder, with an
    attention mask that keeps remainders apart and position ids that restart after the prefix (a tree of sequences,
    as in speculative-decoding tree attention). Rows are sorted by length and batched; logits are computed only at the
    positions that predict a scored token (`logits_to_keep`), so the lm_head and the log-softmax over the vocabulary —
    a large share of a small model's work — run a handful of times per question, not at every token. Identical
    (question, choices) rows, contexts and continuations are scored once.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 16,
                 progress: bool = True) -> None:
        if batch_size < 1:
            raise ScoringError(f"batch size must be at least 1, not {batch_size}")
        attention = getattr(model.config, "_attn_implementation", "eager")
        if attention not in ("sdpa", "eager"):
            # Tree packing needs an arbitrary 4D mask, which flash-attention kernels do not take.
            raise ScoringError(f"the hf scorer needs attn_implementation 'sdpa' or 'eager', not {attention!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress
        self.prompts = load_prompts()
        self.encoder = PairEncoder(tokenizer)
        self.additive_mask = attention == "eager"  # eager attention adds its mask; SDPA takes booleans
        # Any id will do where the mask hides it; a real one keeps embedding lookups in range.
        self.pad_id = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)

    def score(self, questions: Sequence[str], choices: Sequence[Sequence[str]], modes: Sequence[str], *,
              hidden_states: bool | Sequence[int] = False) -> dict[str, np.ndarray]:
        """Per-mode (n, 4) scores ("open": the (n,) answer texts); with `hidden_states`, "hidden" is the last context
        token's output of every layer, float32, taken from the cloze context when a cloze mode is asked for, else the
        letter one: (n, n_layers, d) for True, (len(rows), n_layers, d) for a sequence of row indices — drift
        analyses keep a fixed probe subset from the same pass that scores everything, not a second pass."""
        check_inputs(questions, choices, modes)
        uq, uc, inverse = dedupe(questions, choices)
        hidden_rows = _hidden_rows(hidden_states, len(questions))
        wanted = None if hidden_rows is None else set(inverse[hidden_rows].tolist())
        out: dict[str, np.ndarray] = {}
        want_cloze = any(m in modes for m in ("cloze", "cloze_norm"))
        hidden_from_letter = wanted is not None and not want_cloze and "letter" in modes
        if want_cloze:
            contexts = [self.prompts.cloze(q) for q in uq]
            conts = [[self.prompts.cloze_choice(c) for c in row] for row in uc]
            ll = self._loglikelihoods(contexts, conts, group_by=contexts, want_hidden=wanted)
            if "cloze" in modes:
                out["cloze"] = ll.values[inverse]
            if "cloze_norm" in modes:
                out["cloze_norm"] = (ll.values / cloze_lengths(uc))[inverse]
            if wanted is not None:
                out["hidden"] = ll.hidden[inverse[hidden_rows]]
        if "letter" in modes:
            contexts = [self.prompts.letter(q, c) for q, c in zip(uq, uc, strict=True)]
            conts = [list(self.prompts.letter_continuations)] * len(uq)
            # Rows of one question share the question's tokens: one tree per question.
            ll = self._loglikelihoods(contexts, conts, group_by=uq,
                                      want_hidden=wanted if hidden_from_letter else None, single_token=True)
            out["letter"] = renormalise(ll.values)[inverse]
            if hidden_from_letter:
                out["hidden"] = ll.hidden[inverse[hidden_rows]]
        if OPEN_MODE in modes:
            out[OPEN_MODE] = self.generate_answers(questions)
        if wanted is not None and "hidden" not in out:
            raise ScoringError("hidden states come from a cloze or letter pass; add one of those modes")
        return out

    def generate_answers(self, questions: Sequence[str]) -> np.ndarray:
        """Greedy answers to the open prompt of each question ((n,) object array of str), each question once."""
        import torch

        unique = list(dict.fromkeys(questions))
        encoded = self.encoder.encode([self.prompts.open(q).rstrip() for q in unique])
        order = sorted(range(len(unique)), key=lambda i: -len(encoded[i]))
        answers: dict[str, str] = {}
        bar = _progress(len(unique), self.progress)
        device = self.model.device
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            # Left padding: every prompt ends at the same column, where generation continues.
            ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, width - len(encoded[i]):] = encoded[i]
                mask[row, width - len(encoded[i]):] = 1
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device),
                    max_new_tokens=self.prompts.open_max_new_tokens, do_sample=False, num_beams=1,
                    pad_token_id=self.pad_id, eos_token_id=self.tokenizer.eos_token_id)
            for row, i in enumerate(batch):
                text = self.tokenizer.decode(generated[row, width:].tolist(), skip_special_tokens=True)
                answers[unique[i]] = first_line(text)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return np.array([answers[q] for q in questions], dtype=object)

    def _loglikelihoods(self, contexts: list[str], continuations: list[list[str]], group_by: Sequence[str],
                        want_hidden: set[int] | None, single_token: bool = False) -> _Loglikelihoods:
        """Log-likelihoods of every (context, continuation); hidden states for the contexts in `want_hidden`."""
        ctx_ids, cont_ids = self.encoder.encode_groups(contexts, continuations)
        if single_token:
            for conts in cont_ids:
                for text, ids in zip(continuations[0], conts, strict=True):
                    if len(ids) != 1:
                        pieces = self.tokenizer.convert_ids_to_tokens(list(ids))
                        raise ScoringError(
                            f"letter scoring needs {text!r} to be one token after the prompt, but this tokenizer "
                            f"splits it into {pieces}; use the cloze mode")
        # Distinct (context, continuation) items, grouped into trees.
        item_of: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        groups: dict[str, list[int]] = {}
        for ctx, conts, key in zip(ctx_ids, cont_ids, group_by, strict=True):
            for cont in conts:
                if (ctx, cont) not in item_of:
                    item_of[ctx, cont] = len(item_of)
                    groups.setdefault(key, []).append(item_of[ctx, cont])
        items = list(item_of)
        trees = [_pack([(ctx + cont, len(ctx)) for ctx, cont in (items[i] for i in members)], members)
                 for members in groups.values()]
        trees.sort(key=lambda t: -len(t.tokens))  # longest first: a batch too large for memory fails at once
        sums = np.zeros(len(items), dtype=np.float64)
        hidden = None
        if want_hidden is not None:
            hidden = _HiddenStates({item_of[ctx_ids[i], cont_ids[i][0]] for i in want_hidden}, {})
        bar = _progress(len(items), self.progress)
        for batch in self._batches(trees):
            self._forward(batch, sums, hidden)
            if bar is not None:
                bar.update(sum(len(t.items) for t in batch))
        if bar is not None:
            bar.close()
        values = np.array([[sums[item_of[ctx, c]] for c in conts] for ctx, conts in zip(ctx_ids, cont_ids,
                                                                                           strict=True)])
        stacked = None
        if hidden is not None:
            # Contexts not asked for get no array; their rows are never read (the caller indexes the wanted rows).
            template = next(iter(hidden.values.values()), None)
            stacked = np.stack([hidden.values.get(item_of[ctx, conts[0]], template) for ctx, conts in
                                zip(ctx_ids, cont_ids, strict=True)]) if template is not None else None
        return _Loglikelihoods(values, stacked)

    def _batches(self, trees: list[_Tree]) -> list[list[_Tree]]:
        """Consecutive trees holding about `batch_size` contexts × 4 continuations each."""
        batches: list[list[_Tree]] = []
        budget = self.batch_size * N_CHOICES
        used = budget
        for tree in trees:
            if used + len(tree.items) > budget and used > 0:
                batches.append([])
                used = 0
            batches[-1].append(tree)
            used += len(tree.items)
        return batches

    def _forward(self, trees: list[_Tree], sums: np.ndarray, hidden: _HiddenStates | None) -> None:
        """One forward pass over packed trees: add each item's log-prob to `sums`, its hidden state to `hidden`."""
        import torch

        device = self.model.device
        n, width = len(trees), max(len(t.tokens) for t in trees)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        positions = np.zeros((n, width), dtype=np.int64)
        # Padding (at the right) attends to itself only: no row of the mask is empty, and nothing attends to it.
        mask = np.broadcast_to(np.eye(width, dtype=bool), (n, 1, width, width)).copy()
        keep = np.zeros((n, width), dtype=bool)
        for b, tree in enumerate(trees):
            size = len(tree.tokens)
            ids[b, :size] = tree.tokens
            positions[b, :size] = tree.positions
            mask[b, 0, :size, :size] = tree.mask()
            for targets in tree.targets:
                for pos, _ in targets:
                    keep[b, pos] = True
        # logits_to_keep as a boolean mask returns the kept positions flattened in row-major order.
        flat = np.cumsum(keep.reshape(-1)) - 1
        rows, tokens, owners = [], [], []
        for b, tree in enumerate(trees):
            for item, targets in zip(tree.items, tree.targets, strict=True):
                for pos, token in targets:
                    rows.append(flat[b * width + pos])
                    tokens.append(token)
                    owners.append(item)
        attention = torch.from_numpy(mask)
        if self.additive_mask:
            attention = torch.zeros(mask.shape, dtype=self.model.dtype).masked_fill_(
                ~attention, torch.finfo(self.model.dtype).min)
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(ids).to(device), attention_mask=attention.to(device),
                             position_ids=torch.from_numpy(positions).to(device), use_cache=False,
                             logits_to_keep=torch.from_numpy(keep).to(device), output_hidden_states=hidden is not None)
            logits = out.logits.reshape(-1, out.logits.shape[-1])
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            picked = logprobs[torch.tensor(rows, device=device), torch.tensor(tokens, device=device)]
            np.add.at(sums, np.asarray(owners), picked.double().cpu().numpy())
            if hidden is not None:
                # Layer outputs (embeddings excluded) at the context's last token: what CKA compares, base vs edited.
                layers = torch.stack(out.hidden_states[1:], dim=2)  # (n, width, n_layers, d)
                for b, tree in enumerate(trees):
                    for item, pos in zip(tree.items, tree.context_end, strict=True):
                        if item in hidden.wanted:
                            hidden.values[item] = layers[b, pos].float().cpu().numpy()


def _hidden_rows(hidden_states: bool | Sequence[int], n: int) -> np.ndarray | None:
    """Row indices whose hidden states are wanted (None: none)."""
    if isinstance(hidden_states, bool):
        return np.arange(n) if hidden_states else None
    rows = np.asarray(list(hidden_states), dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ScoringError(f"hidden-state rows out of range for {n} questions")
    return rows


def first_line(text: str) -> str:
    """A generated answer up to its first line break, stripped: the model's short answer, not what it rambles on to."""
    return text.strip().split("\n", 1)[0].strip()


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="scoring", unit="q", leave=False)


def make_scorer(backend: str, model: Any, tokenizer: Any = None, **opts: Any) -> Scorer:
    """The scorer of `backend`: `hf` (HfScorer(model, tokenizer, **opts)) or `vllm` (VllmScorer: `model` a folder,
    or an HF model saved to `opts["workdir"]` and loaded into vLLM)."""
    if backend == "hf":
        return HfScorer(model, tokenizer, **opts)
    if backend == "vllm":
        from knowledgesmith.eval_harness.vllm_backend import VllmScorer

        if isinstance(model, str | Path):
            return VllmScorer(model, **opts)
        return VllmScorer.from_hf(model, tokenizer, **opts)
    raise ScoringError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
