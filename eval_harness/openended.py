"""Open-ended answers: matching a generated short answer to the choices (gold label and aliases) and to the KG.

A generated answer is normalised (lower case, punctuation and leading articles dropped) and compared with every name
of each choice — the choice text, and the label and aliases of the node behind it — with rapidfuzz's
`token_set_ratio`, which scores 100 when one side's words are all in the other ("Paris, in France" vs "Paris"). The
choice's score is its best name's; the prediction is the best-scoring choice when that score reaches the threshold of
prompts.yaml (`open.match_threshold`), else −1 (the answer names none of the four).

An answer that is not empty, is no abstention (it does not match a request's neutral answer, e.g. ReLearn's
"I am not sure …") and matches no entity name of the KG at the same threshold is a hallucination.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import yaml

from .scoring import N_CHOICES, PROMPTS_FILE

_ARTICLES = re.compile(r"^(?:the|a|an)\s+")
_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def _open_settings() -> dict:
    return yaml.safe_load(PROMPTS_FILE.read_text(encoding="utf-8"))["open"]


def match_threshold() -> float:
    """The rapidfuzz score (0–100) from which an answer counts as naming a choice or an entity."""
    return float(_open_settings()["match_threshold"])


def abstention_openings() -> list[str]:
    """Normalised openings that make an answer an abstention ("i am not sure" …), from prompts.yaml."""
    return [normalise_answer(o) for o in _open_settings().get("abstention_openings") or []]


def normalise_answer(text: str) -> str:
    """Lower case, accents folded, punctuation dropped, a leading article removed, spaces collapsed."""
    folded = unicodedata.normalize("NFKD", text or "")
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    folded = _SPACES.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()
    return _ARTICLES.sub("", folded)


def _similarity(answer: str, names: Iterable[str]) -> float:
    from rapidfuzz import fuzz

    if not answer:
        return 0.0
    return max((fuzz.token_set_ratio(answer, name) for name in names if name), default=0.0)


@dataclass
class AnswerMatcher:
    """Names per KG node (label + aliases), every entity name of the KG, and the abstention phrases."""

    names_by_node: dict[str, list[str]] = field(default_factory=dict)
    entity_names: list[str] = field(default_factory=list)
    abstentions: list[str] = field(default_factory=list)
    threshold: float = 85.0
    openings: list[str] = field(default_factory=abstention_openings)

    @classmethod
    def from_tables(cls, nodes: pl.DataFrame | None, mcq: pl.DataFrame, requests: pl.DataFrame | None = None,
                    threshold: float | None = None) -> AnswerMatcher:
        """From the build's nodes (label, aliases), the MCQ choices (literal answers have no node) and the
        requests' neutral answers."""
        names_by_node: dict[str, list[str]] = {}
        if nodes is not None and nodes.height:
            aliases = nodes["aliases"].to_list() if "aliases" in nodes.columns else [[]] * nodes.height
            for node_id, label, alias_list in zip(nodes["node_id"].to_list(), nodes["label"].to_list(), aliases,
                                                  strict=True):
                names = [label] if label else []
                names.extend(a for a in (alias_list or []) if a)
                names_by_node[node_id] = [normalise_answer(n) for n in names]
        entity = {name for names in names_by_node.values() for name in names}
        entity.update(normalise_answer(c) for row in mcq["choices"].to_list() for c in row)
        abstentions: list[str] = []
        if requests is not None and "neutral_answer" in requests.columns:
            abstentions = sorted({normalise_answer(a) for a in requests["neutral_answer"].drop_nulls().to_list()})
        return cls(names_by_node, sorted(n for n in entity if n), abstentions,
                   match_threshold() if threshold is None else threshold)

    def choice_scores(self, answers: Sequence[str], choices: Sequence[Sequence[str]],
                      choice_ids: Sequence[Sequence[str | None]] | None = None) -> np.ndarray:
        """(n, 4) similarity 0–100 of each answer to each choice's names."""
        out = np.zeros((len(answers), N_CHOICES), dtype=np.float64)
        for i, answer in enumerate(answers):
            norm = normalise_answer(answer)
            for j, choice in enumerate(choices[i]):
                names = [normalise_answer(choice)]
                node = choice_ids[i][j] if choice_ids is not None and choice_ids[i] is not None else None
                names.extend(self.names_by_node.get(node, []) if node else [])
                out[i, j] = _similarity(norm, names)
        return out

    def predictions(self, scores: np.ndarray) -> np.ndarray:
        """Argmax choice where its score reaches the threshold, else −1 (no choice named)."""
        best = scores.argmax(axis=1)
        return np.where(scores.max(axis=1) >= self.threshold, best, -1).astype(np.int64)

    def abstained(self, answers: Sequence[str]) -> np.ndarray:
        """Answers that say they do not know — neither right nor hallucinated: those that open with an abstention
        opening, match a request's neutral answer, or are the first words (at least three) of one, as a neutral
        answer cut at `max_new_tokens` arrives."""
        from rapidfuzz import fuzz

        def abstains(answer: str) -> bool:
            norm = normalise_answer(answer)
            if not norm:
                return False
            if any(norm == o or norm.startswith(o + " ") for o in self.openings):
                return True
            if len(norm.split()) >= 3 and any(n.startswith(norm) for n in self.abstentions):
                return True
            return any(fuzz.ratio(norm, n) >= self.threshold for n in self.abstentions)

        return np.array([abstains(a) for a in answers], dtype=bool)

    def hallucinated(self, answers: Sequence[str]) -> np.ndarray:
        """Non-empty, non-abstaining answers that match no entity name of the KG."""
        from rapidfuzz import fuzz, process

        abstained = self.abstained(answers)
        out = np.zeros(len(answers), dtype=bool)
        cache: dict[str, bool] = {}
        for i, answer in enumerate(answers):
            norm = normalise_answer(answer)
            if not norm or abstained[i]:
                continue
            if norm not in cache:
                hit = process.extractOne(norm, self.entity_names, scorer=fuzz.token_set_ratio,
                                         score_cutoff=self.threshold)
                cache[norm] = hit is None
            out[i] = cache[norm]
        return out
