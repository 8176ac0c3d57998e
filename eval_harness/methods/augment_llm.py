"""ReLearn's optional LLM augmentation: paraphrases of each forget request's question, asked of any OpenAI-compatible
endpoint (`--augment-endpoint URL --augment-model NAME`), checked, and added to the template variants of augment.py.

ReLearn (Xu et al., 2025) rephrases each forget item with an LLM. Here one request per forget request asks for
`augment_paraphrases` rewordings of its question (prompt and JSON schema: eval_harness/augment_prompts.yaml) through
kggen's ChatEndpoint, so the cache, retries and error messages are those of `ks-kg generate`:

    deterministic   temperature 0 and the settings' `seed` are sent; answers are applied in request order, whatever
                    the concurrency; a replay from the cache gives the same training set byte for byte
    cached          every valid answer, keyed by sha256 of (model, messages, temperature, seed, schema), under
                    `augment_cache` (default $XDG_CACHE_HOME/knowledgesmith/augment); nothing from a failed attempt
    checked         a paraphrase is dropped, with its reason, when it is empty, names the request's true answer (the
                    pitfall of the reference code: the original answer leaking into the training set), is an exact
                    Q+ probe question, repeats a template variant or an earlier paraphrase, or is beyond the number
                    asked for

Kept paraphrases train toward the same answer as the request's other variants (ReLearn: its neutral answer), with
form `paraphrase` and origin `llm`; dropped ones are returned too, so the run folder shows what was refused and why.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
import yaml

from .augment import _relation_label, _templates, normalise_question
from .base import EditRequest, MethodError
from .training import Example, qa_context

STAGE = "augmentation"  # the stage name ChatEndpoint puts in its errors and statistics
PROMPTS_FILE = "augment_prompts.yaml"
# Room for the JSON of a few one-line questions; a model that rambles past it is cut off, and ChatEndpoint retries
# a cut-off answer instead of caching it.
ANSWER_TOKENS_BASE, ANSWER_TOKENS_PER_PARAPHRASE = 64, 64

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class DroppedParaphrase:
    """A paraphrase the endpoint gave that is not trained on, and why."""

    request_id: str
    text: str
    reason: str  # empty | leaks_answer | probe_question | duplicate | surplus


@dataclass(frozen=True)
class LlmAugmentation:
    """The kept paraphrases as training examples, in request order, and the dropped ones."""

    examples: list[Example]
    dropped: list[DroppedParaphrase]

    def dropped_frame(self) -> pl.DataFrame:
        """The dropped paraphrases as a table (RUN/artifacts/k=K-paraphrases_dropped.parquet)."""
        return pl.DataFrame({"source": [d.request_id for d in self.dropped], "text": [d.text for d in self.dropped],
                             "reason": [d.reason for d in self.dropped]},
                            schema={"source": pl.String, "text": pl.String, "reason": pl.String})


@dataclass(frozen=True)
class ParaphrasePrompt:
    """The data file's system message, user template and answer schema."""

    system: str
    user: jinja2.Template
    schema: dict[str, Any]

    @classmethod
    def load(cls) -> ParaphrasePrompt:
        data = yaml.safe_load(resources.files("knowledgesmith.eval_harness").joinpath(PROMPTS_FILE)
                              .read_text(encoding="utf-8"))
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        return cls(data["system"].strip(), env.from_string(data["user"]), data["schema"])

    def messages(self, subject: str, question: str, n: int) -> Messages:
        schema = json.dumps(self.schema, ensure_ascii=False, sort_keys=True)
        user = self.user.render(subject=subject, question=question, n=n, schema=schema).strip()
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "knowledgesmith" / "augment"


def paraphrase_count(settings: dict[str, Any]) -> int:
    n = int(settings.get("augment_paraphrases", 3))
    if n < 1:
        raise MethodError(f"augment_paraphrases must be at least 1 (got {n})")
    return n


def endpoint_from_settings(settings: dict[str, Any]) -> Any:
    """The ChatEndpoint the settings describe (`augment_endpoint`, `augment_model`, `augment_cache`, timeouts)."""
    from knowledgesmith.kggen.endpoint import ChatEndpoint

    model = settings.get("augment_model")
    if not model:
        raise MethodError(f"augment_endpoint {settings['augment_endpoint']} needs the name of the model it serves: "
                          "--augment-model NAME (or --set augment_model=NAME)")
    cache = settings.get("augment_cache")
    answer_tokens = ANSWER_TOKENS_BASE + ANSWER_TOKENS_PER_PARAPHRASE * paraphrase_count(settings)
    return ChatEndpoint(str(model), base_url=str(settings["augment_endpoint"]),
                        cache_dir=Path(str(cache)).expanduser() if cache else default_cache(),
                        temperature=0.0, seed=int(settings.get("seed", 0)),
                        timeout=float(settings.get("augment_timeout", 120.0)),
                        retries=int(settings.get("augment_retries", 4)),
                        backoff=float(settings.get("augment_backoff", 1.0)),
                        max_answer_tokens=answer_tokens)


def question_of(request: EditRequest) -> str:
    """The question the endpoint rewords: the relation's first question phrasing (the phrasings augment.py renders,
    so paraphrases sit beside its variants), or the fill-in sentence for a request that names no relation (generic
    phrasings are built from the relation's label, and without one they would read "What is the  of …?")."""
    if request.relation_id:
        phrasings = _templates().phrasings(request.relation_id, _relation_label(request.relation_id), "question")
        if phrasings:
            return phrasings[0].render(subject=request.subject, object=request.target_true)
    return request.prompt_text


def names_answer(text: str, answer: str, subject: str) -> bool:
    """Whether `text` names `answer` as a whole word (case-folded). The subject is blanked out first, so a subject
    that contains its answer ("Madrid Metro" located in "Madrid") does not count as a leak by itself."""
    needle = " ".join(answer.split()).casefold()
    if not needle:
        return False
    haystack = " ".join(text.split()).casefold()
    if subject.strip():
        haystack = haystack.replace(" ".join(subject.split()).casefold(), " ")
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def paraphrase_examples(requests: list[EditRequest], existing: list[Example], excluded: set[str],
                        settings: dict[str, Any], *, answer_of: Callable[[EditRequest], str],
                        endpoint: Any = None) -> LlmAugmentation:
    """Ask the endpoint for paraphrases of every request's question and keep the valid ones (see the module doc).

    `existing` are the template variants already in the forget set (paraphrases repeating one are dropped),
    `excluded` the normalised Q+ probe questions, `answer_of(request)` the answer each paraphrase trains toward.
    An endpoint that stays unreachable or keeps answering invalid JSON raises EndpointError (a KsUserError naming
    the endpoint) after its retries; nothing from a failed attempt is cached.
    """
    n = paraphrase_count(settings)
    endpoint = endpoint or endpoint_from_settings(settings)
    prompt = ParaphrasePrompt.load()
    answers = endpoint.map_json([(prompt.messages(r.subject, question_of(r), n), prompt.schema) for r in requests],
                                stage=STAGE)
    seen = {normalise_question(e.context) for e in existing}
    kept: list[Example] = []
    dropped: list[DroppedParaphrase] = []
    for request, answer in zip(requests, answers, strict=True):
        count = 0
        for raw in answer.data["paraphrases"]:
            text = " ".join(str(raw).split())
            context = qa_context(text, settings)
            if not text:
                reason = "empty"
            elif names_answer(text, request.target_true, request.subject):
                reason = "leaks_answer"
            elif normalise_question(text) in excluded:
                reason = "probe_question"
            elif normalise_question(context) in seen:
                reason = "duplicate"
            elif count >= n:
                reason = "surplus"
            else:
                seen.add(normalise_question(context))
                kept.append(Example(context, answer_of(request), request.request_id, "paraphrase", "llm"))
                count += 1
                continue
            dropped.append(DroppedParaphrase(request.request_id, text, reason))
    return LlmAugmentation(kept, dropped)
