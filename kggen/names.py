"""Entity names: normalisation, fuzzy look-up (rapidfuzz) for de-duplication and answer resolution, IRI local names."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz import fuzz, process

_NON_WORD = re.compile(r"[^\w]+")
_DIGITS = re.compile(r"\d+")
_ARTICLE = re.compile(r"^(the|a|an) ")


def clean_name(text: str) -> str:
    """A name as written into the KG: one line, single spaces, no surrounding quotes or dots."""
    return " ".join(str(text).split()).strip(" \"'.;,")


def normalize(text: str) -> str:
    """The comparison form of a name: case-folded, punctuation as spaces, no leading article."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("_", " ")
    text = " ".join(_NON_WORD.sub(" ", text).split())
    return _ARTICLE.sub("", text)


class NameIndex:
    """Names (labels and aliases) of numbered items; `find` returns the item a name denotes, exactly or fuzzily.

    Two names only match fuzzily when their numbers agree, so "Article 15" never merges into "Article 16" however
    alike the rest reads.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._names: list[str] = []
        self._owners: list[int] = []
        self._exact: dict[str, int] = {}

    def add(self, owner: int, name: str) -> None:
        key = normalize(name)
        if not key or key in self._exact:
            return
        self._exact[key] = owner
        self._names.append(key)
        self._owners.append(owner)

    def find(self, name: str, among: set[int] | None = None) -> int | None:
        key = normalize(name)
        if not key:
            return None
        owner = self._exact.get(key)
        if owner is not None and (among is None or owner in among):
            return owner
        digits = _DIGITS.findall(key)
        best: tuple[float, int] | None = None
        for _, score, i in process.extract(key, self._names, scorer=fuzz.ratio, score_cutoff=self.threshold,
                                           limit=None):
            owner = self._owners[i]
            if among is not None and owner not in among:
                continue
            if _DIGITS.findall(self._names[i]) != digits:
                continue
            # best score first; among equals the earliest item, so the answer does not depend on dict order
            if best is None or (-score, owner) < (-best[0], best[1]):
                best = (score, owner)
        return None if best is None else best[1]


def local_name(label: str) -> str:
    """An IRI local name from a label, in the shipped KGs' style: ASCII words joined by '_' ("Ancient_Rome")."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    words = [w for w in re.split(r"[^A-Za-z0-9]+", ascii_text) if w]
    name = "_".join(w[0].upper() + w[1:] for w in words) or "Unnamed"
    return name if name[0].isalpha() else "N" + name


def relation_id(text: str) -> str:
    """A lowerCamelCase relation id from whatever the model wrote ("was_born_in", "Born In" → "wasBornIn")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = [w for w in re.split(r"[^A-Za-z0-9]+", ascii_text) if w]
    if not words:
        return ""
    if len(words) == 1:
        word = words[0]
        out = word[0].lower() + word[1:]
    else:
        out = words[0].lower() + "".join(w[0].upper() + w[1:] for w in words[1:])
    return out if out[0].isalpha() else "r" + out
