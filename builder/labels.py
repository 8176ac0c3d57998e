"""Names for nodes and relations: the best label by language preference, aliases, and a readable name from an IRI."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\s]+")


def name_from_iri(iri: str) -> str:
    """A readable name for a node that has no label: the IRI's last segment, de-camel-cased.

    `http://galen.org/galen.owl#AbdominalCavity` → `Abdominal Cavity`; `http://ex.org/wiki/New_York` → `New York`.
    """
    tail = iri.rstrip("/#")
    for sep in ("#", "/", ":"):
        if sep in tail:
            candidate = tail.rsplit(sep, 1)[1]
            if candidate:
                tail = candidate
                break
    tail = unquote(tail)
    spaced = _CAMEL_BOUNDARY.sub(" ", tail)
    spaced = _SEPARATORS.sub(" ", spaced).strip()
    return spaced or iri


def relation_name_from_iri(iri: str) -> str:
    """A readable relation name from an IRI, in lower case as it reads inside a sentence: `hasTopping` → `has
    topping` (acronyms such as `ISBN` keep their case)."""
    words = name_from_iri(iri).split(" ")
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)


def language_rank(lang: str, preference: Sequence[str]) -> int:
    """Rank of a language tag against the user's preference: exact match, then same primary language, then
    untagged, then anything else. Lower is better."""
    lang = lang.lower()
    n = len(preference)
    for i, wanted in enumerate(preference):
        if lang == wanted:
            return i
    primary = lang.split("-", 1)[0]
    for i, wanted in enumerate(preference):
        if primary and primary == wanted.split("-", 1)[0]:
            return n + i
    if lang == "":
        return 2 * n
    return 2 * n + 1


def choose_label(candidates: Sequence[tuple[int, str, str]], preference: Sequence[str]) -> tuple[str, str] | None:
    """Pick (label, lang) from (predicate rank, lang, text) candidates: best language first, then the best label
    predicate, then the text itself so that the choice never depends on input order."""
    if len(candidates) == 1:
        text = _clean(candidates[0][2])
        return (text, candidates[0][1]) if text else None
    best = None
    best_key = None
    for pred_rank, lang, text in candidates:
        text = _clean(text)
        if not text:
            continue  # a blank label names nothing; the IRI's name is better
        key = (language_rank(lang, preference), pred_rank, lang, text)
        if best_key is None or key < best_key:
            best_key = key
            best = (text, lang)
    return best


def collect_aliases(label: str, label_lang: str, labels: Sequence[tuple[int, str, str]],
                    aliases: Sequence[tuple[str, str]], preference: Sequence[str]) -> list[str]:
    """Other names usable in the chosen label's language or a preferred one: other labels and alias predicates."""
    if len(labels) <= 1 and not aliases:
        return []
    out: set[str] = set()
    for _, lang, text in labels:
        if _usable(lang, label_lang, preference):
            out.add(_clean(text))
    for lang, text in aliases:
        if _usable(lang, label_lang, preference):
            out.add(_clean(text))
    out.discard(label)
    out.discard("")
    return sorted(out)


def _clean(text: str) -> str:
    """A label as it will be shown: RDF labels keep whatever whitespace their authors typed (pizza.owl names
    GoatsCheeseTopping 'CoberturaDeQueijoDeCabra  '), so runs of whitespace become one space and the ends are trimmed,
    as the JSON reader already does for its labels."""
    return " ".join(text.split())


def _usable(lang: str, label_lang: str, preference: Sequence[str]) -> bool:
    if lang == label_lang or lang == "":
        return True
    # A preferred language (or a regional variant of one), or the label's own language in another region. Not every
    # other language: a label that fell back to French collects no Italian or German aliases (this used to compare
    # language ranks, and all non-preferred languages share one rank).
    if language_rank(lang, preference) < len(preference) * 2:
        return True
    return lang.lower().split("-", 1)[0] == label_lang.lower().split("-", 1)[0]
