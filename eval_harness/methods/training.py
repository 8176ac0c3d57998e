"""The training loop the unlearning methods (relearn, ga, npo) and the LoRA baseline share.

It owns: (question, answer) examples and their encoding, the masked losses (NLL over answer tokens only, KL over real
tokens only), LoRA or full fine-tuning, the frozen reference model, bounded steps (`epochs`, `max_steps`), and the
training curve (one entry per optimiser step) that run.py writes to RUN/curves/. A method says which examples it
trains on and what its loss is; everything else is here.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from .base import EditRequest, Intervention, MethodError
from .locate import pad_id_of

Q_MINUS = "q_minus"
Q_PLUS = "q_plus"


@dataclass(frozen=True)
class Example:
    """One training text: the context the model reads and the answer whose tokens the loss is taken on."""

    context: str
    answer: str
    source: str  # where it comes from (request id or probe id), for the saved training set
    form: str  # which variant: prompt, context, typo, reverse, paraphrase, retain, …
    origin: str = "template"  # who wrote the text: template (our phrasings), llm (--augment-endpoint), probe (retain)


@dataclass
class Batch:
    """Right-padded token ids; `labels` is -100 except on the answer tokens."""

    input_ids: Any
    attention: Any
    labels: Any

    def to(self, device: Any) -> Batch:
        return Batch(self.input_ids.to(device), self.attention.to(device), self.labels.to(device))


def qa_context(question: str, settings: dict[str, Any]) -> str:
    """A question in the frame the model is asked in (settings' `qa_format`, the cloze scoring frame by default)."""
    return str(settings["qa_format"]).replace("{question}", question)


def encode_examples(tokenizer: Any, examples: list[Example]) -> Batch:
    """Context as the tokenizer encodes it by default (BOS where its family adds one), then " answer" without special
    tokens, so the answer's tokens are the ones the model emits after the context."""
    import torch

    rows, labels = [], []
    for example in examples:
        context_ids = tokenizer(example.context)["input_ids"]
        answer_ids = tokenizer(" " + example.answer.strip(), add_special_tokens=False)["input_ids"]
        if not answer_ids:
            raise MethodError(f"answer {example.answer!r} encodes to no tokens")
        rows.append(context_ids + answer_ids)
        labels.append([-100] * len(context_ids) + answer_ids)
    width = max(map(len, rows))
    pad = pad_id_of(tokenizer)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    label_ids = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        label_ids[i, : len(label)] = torch.tensor(label)
    return Batch(input_ids, attention, label_ids)


def sequence_logits(model: Any, batch: Batch) -> Any:
    """Logits predicting tokens 1…T from positions 0…T-1, in float32."""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention).logits[:, :-1].float()


def answer_nll(logits: Any, batch: Batch) -> tuple[Any, Any]:
    """Per example: the summed NLL of the answer tokens and their count (padding and context carry no loss)."""
    import torch

    gold = batch.labels[:, 1:]
    mask = gold != -100
    logp = torch.log_softmax(logits, dim=-1).gather(-1, gold.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(logp * mask).sum(1), mask.sum(1)


def mean_answer_nll(logits: Any, batch: Batch) -> Any:
    """Mean over examples of the per-token answer NLL (each example weighs the same, whatever its length)."""
    total, count = answer_nll(logits, batch)
    return (total / count.clamp(min=1)).mean()


def masked_kl(reference_logits: Any, logits: Any, attention: Any) -> Any:
    """Mean over real tokens of KL(p_ref ‖ p_θ) of the next-token distributions.

    Positions whose *predicted* token is padding are left out: averaging over them (a pitfall of the reference
    ReLearn code) dilutes the term by the padding share, so the same data weighs differently with batch composition.
    """
    import torch

    mask = attention[:, 1:].bool()
    ref = torch.log_softmax(reference_logits, dim=-1)
    cur = torch.log_softmax(logits, dim=-1)
    per_token = (ref.exp() * (ref - cur)).sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def _fact_key(row: dict[str, Any]) -> str:
    """The fact a probe asks about (its query triple): the unit of the retain split, so that no fact is both trained
    on through one phrasing and evaluated through another."""
    return "|".join(str(row.get(column) or "") for column in
                    ("query_subject_id", "query_relation_id", "query_object_id", "query_relation2_id")) or row["id"]


def _hash(key: str) -> int:
    import zlib

    return zlib.crc32(key.encode())


def _share(key: str, fraction: float) -> bool:
    return _hash(key) / 2 ** 32 < fraction


def retain_examples(probes: pl.DataFrame, settings: dict[str, Any],
                    benchmark: pl.DataFrame | None = None) -> list[Example]:
    """Facts the update must leave alone, as questions with their gold choice.

    `retain_source: unrelated` (the default when the whole benchmark is at hand): direct probes of the benchmark's
    *other* requests (the KG's unrelated facts), none about a forget subject or a fact any evaluated probe asks about,
    one probe per fact, `retain_per_request` facts per request, picked by a hash of the fact. The evaluated Q−
    probes then measure facts the retain term never saw. `retain_data` (a build folder or Hub id) adds another
    build's facts to the candidates (a small KG gives a small retain set; see _other_build_facts).
    `retain_source: contextual`: a share (`retain_fraction`) of the contextual Q− probes themselves, split by fact
    (a hash of the query triple), so the Q− accuracy of the other facts is still read unseen.
    The choice is deterministic: hashes, not the seed or the row order.
    """
    def qa(row: dict[str, Any]) -> Example:
        return Example(qa_context(row["question"], settings), row["choices"][row["answer"]], row["id"], "retain",
                       "probe")

    source = str(settings.get("retain_source", "contextual"))
    if source == "unrelated" and benchmark is not None:
        evaluated = {_fact_key(row) for row in probes.iter_rows(named=True)}
        subjects = set(probes.filter(pl.col("role") == Q_PLUS)["query_subject_id"].drop_nulls().to_list()) \
            if "query_subject_id" in probes.columns else set()
        candidates = benchmark.filter((pl.col("probe_type") == "direct")
                                      & ~pl.col("request_id").is_in(probes["request_id"].unique().implode()))
        by_fact: dict[str, dict[str, Any]] = {}
        for row in candidates.sort("id").iter_rows(named=True):
            key = _fact_key(row)
            if key in evaluated or row.get("query_subject_id") in subjects or key in by_fact:
                continue
            by_fact[key] = row
        if settings.get("retain_data"):
            by_fact.update(_other_build_facts(str(settings["retain_data"]), probes))
        wanted = int(settings.get("retain_per_request", 2)) * probes["request_id"].n_unique()
        chosen = sorted(by_fact, key=lambda key: (_hash(key), key))[:wanted]
        return [qa(by_fact[key]) for key in sorted(chosen, key=lambda key: by_fact[key]["id"])]
    if source not in ("unrelated", "contextual"):
        raise ValueError(f"retain_source {source!r}: expected 'unrelated' or 'contextual'")
    fraction = float(settings.get("retain_fraction", 0.0))
    rows = probes.filter((pl.col("role") == Q_MINUS) & (pl.col("probe_type") == "contextual")).sort("id")
    return [qa(row) for row in rows.iter_rows(named=True) if _share(_fact_key(row), fraction)]


@functools.lru_cache(maxsize=4)
def _other_build(data: str) -> Any:
    from ..data import load_benchmark

    return load_benchmark(data)


def _other_build_facts(data: str, probes: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Retain candidates from another build (`retain_data`: a build folder or Hub id, e.g. a domain build or the
    sample KG's): one direct probe per fact, keyed by "retain_data:" + fact, none about an entity that any evaluated
    question names. Another KG's node ids are not ours, so the test is on names: the subject's label and aliases,
    case-folded, as whole words of the evaluated questions."""
    bench = _other_build(data)
    if bench.nodes is None:
        raise MethodError(f"retain_data {data}: the build has no nodes table, so its subjects cannot be named")
    names: dict[str, list[str]] = {row["node_id"]: [row["label"], *(row["aliases"] or [])]
                                   for row in bench.nodes.iter_rows(named=True)}
    asked = "\n".join(probes["question"].to_list()).casefold()

    @functools.cache
    def named(subject: str) -> bool:  # a subject has several facts and phrasings: searched for once
        return any(name and re.search(rf"(?<!\w){re.escape(name.casefold())}(?!\w)", asked)
                   for name in names.get(subject, []))

    out: dict[str, dict[str, Any]] = {}
    for row in bench.mcq.filter(pl.col("probe_type") == "direct").sort("id").iter_rows(named=True):
        key = "retain_data:" + _fact_key(row)
        subject = row.get("query_subject_id") or ""
        if key in out or not names.get(subject) or named(subject):
            continue
        out[key] = row
    return out


def examples_frame(examples: list[Example], role: str) -> pl.DataFrame:
    """A saved training set (RUN/artifacts/): what was trained on, visible and comparable across runs."""
    return pl.DataFrame({"role": [role] * len(examples), "form": [e.form for e in examples],
                         "origin": [e.origin for e in examples], "source": [e.source for e in examples],
                         "context": [e.context for e in examples], "answer": [e.answer for e in examples]},
                        schema={"role": pl.String, "form": pl.String, "origin": pl.String, "source": pl.String,
                                "context": pl.String, "answer": pl.String})


# -- the model being trained -------------------------------------------------------------------------------------------

@contextmanager
def trainable_model(model: Any, settings: dict[str, Any], *, needs_reference: bool) -> Iterator[tuple[Any, Any]]:
    """(the model to train, a function that runs the frozen base model) for the duration of training.

    With `use_lora` the base weights stay frozen and peft adapters train; the reference is the same model with its
    adapters disabled (no second copy in memory), and on exit the adapters are merged into the weights, so the caller
    gets back the same model object with the same module names (run.py restores and scores it as any other).
    Without it every parameter trains and the reference, when needed, is a frozen copy made before the first step.
    """
    import torch

    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    if settings.get("use_lora", True):
        from peft import LoraConfig, get_peft_model

        targets = settings.get("lora_targets", "all-linear")
        config = LoraConfig(r=int(settings["lora_rank"]), lora_alpha=float(settings["lora_alpha"]),
                            lora_dropout=float(settings["lora_dropout"]), target_modules=targets, bias="none",
                            task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, config)

        def reference(batch: Batch) -> Any:
            with torch.no_grad(), peft_model.disable_adapter():
                return sequence_logits(peft_model, batch)

        peft_model.train()
        try:
            yield peft_model, reference
        finally:
            merged = peft_model.merge_and_unload()
            if merged is not model:  # peft unwraps in place; a different object would break run.py's restore
                raise MethodError("peft returned a new model object after merging the adapters")
            for p, flag in zip(model.parameters(), flags, strict=True):
                p.requires_grad_(flag)
            model.train(was_training)
        return

    frozen = None
    if needs_reference:
        frozen = copy.deepcopy(model).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)

    def full_reference(batch: Batch) -> Any:
        with torch.no_grad():
            return sequence_logits(frozen, batch)

    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    try:
        yield model, full_reference
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)


# -- the loop ---------------------------------------------------------------------------------------------------------

LossFn = Callable[[Any, Callable[[Batch], Any], Batch, Batch | None], tuple[Any, dict[str, float]]]


def train(model: Any, tokenizer: Any, forget: list[Example], retain: list[Example], settings: dict[str, Any],
          loss_fn: LossFn, *, needs_reference: bool) -> list[dict[str, Any]]:
    """Train over `forget` in shuffled batches for `epochs` (at most `max_steps` optimiser steps, when set), each step
    paired with the next batch of `retain` (cycled) when there is one; returns the curve, one dict per step:
    {"step", "epoch", "loss", "terms": {name: value}}."""
    import torch

    if not forget:
        raise MethodError("nothing to train on: the requests gave no forget/edit examples")
    batch_size = int(settings["batch_size"])
    epochs = int(settings["epochs"])
    max_steps = settings.get("max_steps")
    max_steps = None if max_steps in (None, 0) else int(max_steps)
    if epochs < 1 or batch_size < 1:
        raise MethodError("epochs and batch_size must be at least 1")
    rng = random.Random(int(settings.get("seed", 0)))
    device = next(model.parameters()).device
    retain_order = list(retain)
    rng.shuffle(retain_order)
    retain_batches = [retain_order[i: i + batch_size] for i in range(0, len(retain_order), batch_size)]
    curve: list[dict[str, Any]] = []
    with trainable_model(model, settings, needs_reference=needs_reference) as (trained, reference):
        params = [p for p in trained.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(params, lr=float(settings["lr"]),
                                      weight_decay=float(settings.get("weight_decay", 0.0)))
        step = 0
        with torch.enable_grad():
            for epoch in range(epochs):
                order = list(forget)
                rng.shuffle(order)
                for start in range(0, len(order), batch_size):
                    if max_steps is not None and step >= max_steps:
                        return curve
                    forget_batch = encode_examples(tokenizer, order[start: start + batch_size]).to(device)
                    retain_batch = None
                    if retain_batches:
                        retain_batch = encode_examples(tokenizer, retain_batches[step % len(retain_batches)]).to(device)
                    optimiser.zero_grad(set_to_none=True)
                    loss, terms = loss_fn(trained, reference, forget_batch, retain_batch)
                    if not torch.isfinite(loss):
                        raise MethodError(f"the training loss became {loss.item()} at step {step}; lower lr")
                    loss.backward()
                    optimiser.step()
                    step += 1
                    curve.append({"step": step, "epoch": epoch, "loss": float(loss.item()),
                                  "terms": {k: float(v) for k, v in terms.items()}})
    return curve


class TrainedIntervention(Intervention):
    """A method defined by its training examples and its loss; apply() runs the shared loop and keeps the curve and
    the training sets for the run folder (`self.curve`, `self.artifacts`)."""

    needs_reference: ClassVar[bool] = False
    benchmark_mcq: pl.DataFrame | None = None  # set by the harness: the retain set draws on the benchmark's other facts

    def __init__(self) -> None:
        self.curve: list[dict[str, Any]] = []
        self.artifacts: dict[str, pl.DataFrame] = {}

    def examples(self, requests: list[EditRequest], probes: pl.DataFrame,
                 settings: dict[str, Any]) -> tuple[list[Example], list[Example]]:
        """(forget or edit examples, retain examples)."""
        raise NotImplementedError

    def loss(self, model: Any, reference: Callable[[Batch], Any], forget: Batch, retain: Batch | None,
             settings: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        raise NotImplementedError

    def uses_reference(self, settings: dict[str, Any]) -> bool:
        """The frozen reference runs when the method needs it, or when a KL term on the retain set is on."""
        return self.needs_reference or float(settings.get("kl_weight", 0.0)) > 0

    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any:
        self.artifacts = {}  # examples() may add its own (ReLearn: the LLM paraphrases it dropped, and why)
        forget, retain = self.examples(requests, probes, settings)
        self.artifacts["training_set"] = pl.concat([examples_frame(forget, "forget" if self.kind == "unlearn"
                                                                   else "edit"),
                                                    examples_frame(retain, "retain")])
        self.curve = train(model, tokenizer, forget, retain, settings,
                           lambda m, ref, f, r: self.loss(m, ref, f, r, settings),
                           needs_reference=self.uses_reference(settings))
        return model


def retain_terms(model: Any, reference: Callable[[Batch], Any], retain: Batch | None, settings: dict[str, Any],
                 ) -> tuple[Any, dict[str, float]]:
    """kl_weight · KL(base ‖ θ) + retain_weight · NLL on the retain batch (0 without one or with both weights 0)."""
    kl_weight = float(settings.get("kl_weight", 0.0))
    nll_weight = float(settings.get("retain_weight", 0.0))
    terms: dict[str, float] = {}
    if retain is None or (kl_weight == 0 and nll_weight == 0):
        return 0.0, terms
    logits = sequence_logits(model, retain)
    total = 0.0
    if kl_weight:
        kl = masked_kl(reference(retain), logits, retain.attention)
        total = total + kl_weight * kl
        terms["retain_kl"] = kl.item()
    if nll_weight:
        nll = mean_answer_nll(logits, retain)
        total = total + nll_weight * nll
        terms["retain_nll"] = nll.item()
    return total, terms
