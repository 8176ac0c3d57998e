"""Forget-set augmentation from our relation phrasings (templates/relations.yaml): the fact of each request asked in
several forms, each paired with the answer the method trains toward.

ReLearn's augmentation (Xu et al., 2025) makes, per forget item, a rephrased question, one with added context, one
with noise (typos) and one with the relation reversed. Here the rephrasings are the relation's written question and
reverse phrasings, rendered for the request's subject and true object, so the augmentation is deterministic and needs
no LLM. Forms:

    prompt    the request's fill-in sentence ("The capital of Spain is")
    question  each question phrasing ("Which city is the capital of Spain?")
    context   each question phrasing after a context sentence (settings' `context_prefixes`, chosen by the seed)
    typo      each question phrasing with a few characters swapped or dropped outside the subject (seeded)
    reverse   the reverse phrasings ("Which country has Madrid as its capital?") and their context/typo variants

Question texts that are exactly a Q+ probe's question are dropped when `exclude_probe_questions` is set (the default):
the probes are the test set, and training on their exact text would score memorised strings, not forgetting. With the
shipped templates every written phrasing is also a probe question, so what trains are the prompt, context and typo
variants — near-paraphrases of the probe questions, never the probe questions themselves.
"""

from __future__ import annotations

import random
import re
from typing import Any

import polars as pl

from .base import EditRequest
from .training import Example, qa_context

FORMS = ("prompt", "question", "context", "typo", "reverse")
_library: Any = None


def _templates() -> Any:
    """The shipped template library, loaded once (it compiles every phrasing file)."""
    global _library
    if _library is None:
        from knowledgesmith.builder.templates import TemplateLibrary

        _library = TemplateLibrary()
    return _library


def _relation_label(relation_id: str) -> str:
    from knowledgesmith.builder.vocab import RELATION_LABELS

    return RELATION_LABELS.get(relation_id) or re.split(r"[#/:]", relation_id)[-1]


def normalise_question(text: str) -> str:
    return " ".join(text.split()).casefold()


def probe_questions(probes: pl.DataFrame) -> set[str]:
    """The Q+ questions of the selected requests, normalised: the texts no training example may be."""
    if probes.is_empty():
        return set()
    return {normalise_question(q) for q in probes.filter(pl.col("role") == "q_plus")["question"].to_list()}


def add_typos(text: str, protected: str, rng: random.Random, count: int = 2) -> str:
    """`count` edits (swap two adjacent letters, or drop one) in words of four or more letters outside `protected`
    (the subject, so the question still names what it asks about). Returns the text unchanged when no word qualifies."""
    start = text.find(protected) if protected else -1
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{4,}", text)
             if start < 0 or m.end() <= start or m.start() >= start + len(protected)]
    if not spans:
        return text
    chars = list(text)
    for begin, end in sorted(rng.sample(spans, min(count, len(spans))), reverse=True):
        i = rng.randrange(begin + 1, end - 1)  # never the first letter: the word stays recognisable
        if rng.random() < 0.5:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            del chars[i]
    return "".join(chars)


def augment_request(request: EditRequest, answer: str, reverse_answer: str, settings: dict[str, Any],
                    excluded: set[str]) -> list[Example]:
    """The examples of one request in the forms of settings' `forms`, each with `answer` (the reverse form with
    `reverse_answer`). The RNG is seeded by (seed, request id), so a request's variants do not depend on which other
    requests are in the set or in which order."""
    forms = list(settings.get("forms", FORMS))
    unknown = sorted(set(forms) - set(FORMS))
    if unknown:
        from .base import MethodError

        raise MethodError(f"forms: {', '.join(unknown)} not known (forms: {', '.join(FORMS)})")
    rng = random.Random(f"{settings.get('seed', 0)}:{request.request_id}")
    prefixes = [str(p) for p in settings.get("context_prefixes") or []]
    library = _templates()
    label = _relation_label(request.relation_id)
    out: list[Example] = []

    def add(context: str, target: str, form: str) -> None:
        out.append(Example(context, target, request.request_id, form))

    if "prompt" in forms:
        add(request.prompt_text, answer, "prompt")
    kinds = [("question", request.target_true, answer)]
    if "reverse" in forms:
        kinds.append(("reverse", request.target_true, reverse_answer))
    for kind, obj, target in kinds:
        form_name = "reverse" if kind == "reverse" else "question"
        for phrasing in library.phrasings(request.relation_id, label, kind):
            question = phrasing.render(subject=request.subject, object=obj)
            protected = obj if kind == "reverse" else request.subject
            if ("question" in forms or kind == "reverse") and normalise_question(question) not in excluded:
                add(qa_context(question, settings), target, form_name)
            if "context" in forms and prefixes:
                prefix = rng.choice(prefixes).replace("{subject}", protected)
                variant = f"{prefix} {question}"
                if normalise_question(variant) not in excluded:
                    add(qa_context(variant, settings), target, f"{form_name}+context" if kind == "reverse"
                        else "context")
            if "typo" in forms:
                variant = add_typos(question, protected, rng)
                if variant != question and normalise_question(variant) not in excluded:
                    add(qa_context(variant, settings), target, f"{form_name}+typo" if kind == "reverse" else "typo")
    return out


def augment(requests: list[EditRequest], probes: pl.DataFrame, settings: dict[str, Any], *, answer_of: Any,
            reverse_answer_of: Any) -> list[Example]:
    """Every request's examples (see augment_request); `answer_of(request)` and `reverse_answer_of(request)` give the
    answers to train toward (the neutral answer for ReLearn, the true object for GA/NPO, the new object for LoRA)."""
    excluded = probe_questions(probes) if settings.get("exclude_probe_questions", True) else set()
    return [example for request in requests
            for example in augment_request(request, answer_of(request), reverse_answer_of(request), settings,
                                           excluded)]
