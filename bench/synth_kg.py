"""A hierarchical synthetic KG of a given size, in N-Triples (`.nt`) or Turtle (`.ttl`), for the build benchmark.

Shape (deterministic for a seed):

* 20 root classes; ~1 % of `--entities` intermediate classes under them in two tiers (a tenth directly under a root,
  the rest under one of those), linked by `rdfs:subClassOf` (or `skos:broader` with `--hierarchy broader`);
* `--entities` leaf entities, each typed (`rdf:type`) under one lower-tier class, so a class holds ~110 entities;
* 20 object relations, each declared with `rdfs:domain` (one root) and `rdfs:range` (a root), 5 of them with an
  `owl:inverseOf` partner that is declared but not stated, plus one literal relation (`founding year`, xsd:integer);
* facts: ~90 % of the entities of a relation's domain root get one object for it, drawn from the entities of its
  range root (70 % of draws from the first quarter, so an object is shared by a few subjects and comparison probes
  find peers); ~3 % of the entities get a literal fact;
* labels are pronounceable random words, distinct across the KG, and no two labels of one class (entities of one
  class, classes under one parent, the roots) have a rapidfuzz ratio of 90 or more — what the distractor filter needs.

Usage: python bench/synth_kg.py --entities 100000 --out /tmp/synth.nt [--seed 0] [--hierarchy subclass|broader]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rapidfuzz import fuzz, process

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
XSD = "http://www.w3.org/2001/XMLSchema#"
EX = "http://bench.knowledgesmith.org/synth/"
PREFIXES = {"rdf": RDF, "rdfs": RDFS, "owl": OWL, "skos": SKOS, "xsd": XSD, "ex": EX}

N_ROOTS = 20
SIMILAR = 90  # the builder's rapidfuzz threshold: two labels at or above it read alike

# (local name, label); the label's form (noun / verb phrase / "… of") picks the generic phrasings.
RELATIONS: tuple[tuple[str, str], ...] = (
    ("locatedIn", "located in"), ("memberOf", "member of"), ("partOf", "part of"), ("foundedBy", "founded by"),
    ("ownedBy", "owned by"), ("governedBy", "governed by"), ("derivedFrom", "derived from"),
    ("tradesWith", "trades with"), ("borders", "borders"), ("studentOf", "student of"), ("branchOf", "branch of"),
    ("tributaryOf", "tributary of"), ("origin", "origin"), ("patron", "patron"), ("rival", "rival"),
    ("successor", "successor"), ("mentor", "mentor"), ("headquarters", "headquarters"), ("supplier", "supplier"),
    ("guardian", "guardian"),
)
# relation → its declared inverse (local name, label); the inverse has the swapped domain and range
INVERSES: dict[str, tuple[str, str]] = {
    "partOf": ("hasPart", "has part"), "ownedBy": ("owns", "owns"), "governedBy": ("governs", "governs"),
    "successor": ("predecessor", "predecessor"), "mentor": ("menteeOf", "mentee of"),
}
LITERAL_RELATION = ("foundingYear", "founding year")

_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch",
           "dr", "fl", "gr", "kr", "pl", "qu", "sh", "st", "th", "tr", "vr", "")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "au", "ei", "ia", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "th", "x", "nd", "sk")


def word(rng: random.Random, syllables: int) -> str:
    """A pronounceable random word of `syllables` syllables, capitalised."""
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)]
    return "".join(parts).capitalize()


class LabelMaker:
    """Distinct labels; within a group (a class's members, a parent's subclasses) none reads like another."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.groups: dict[str, list[str]] = {}

    def make(self, group: str, words: int = 1) -> str:
        members = self.groups.setdefault(group, [])
        while True:
            label = " ".join(word(self.rng, self.rng.randint(2, 3)) for _ in range(words))
            folded = label.casefold()
            if folded in self.used:
                continue
            if members and process.extractOne(folded, members, scorer=fuzz.ratio, score_cutoff=SIMILAR - 0.001):
                continue
            self.used.add(folded)
            members.append(folded)
            return label


class Writer:
    """Writes triples as N-Triples (full IRIs) or Turtle (prefixed names); counts them."""

    def __init__(self, out: TextIO, turtle: bool) -> None:
        self.out = out
        self.turtle = turtle
        self.count = 0
        if turtle:
            for prefix, iri in PREFIXES.items():
                out.write(f"@prefix {prefix}: <{iri}> .\n")
            out.write("\n")

    def iri(self, ns: str, local: str) -> str:
        if self.turtle:
            prefix = next(p for p, iri in PREFIXES.items() if iri == ns)
            return f"{prefix}:{local}"
        return f"<{ns}{local}>"

    def triple(self, s: str, p: str, o: str) -> None:
        self.out.write(f"{s} {p} {o} .\n")
        self.count += 1

    @staticmethod
    def text(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"@en'

    @staticmethod
    def integer(value: int) -> str:
        return f'"{value}"^^<{XSD}integer>'


def _skewed(rng: random.Random, pool: list[int]) -> int:
    """A draw favouring the pool's first quarter (70 % of draws), so objects are shared by a few subjects (comparison
    probes need peers) without making hubs."""
    if rng.random() < 0.7:
        return pool[rng.randrange(max(1, len(pool) // 4))]
    return pool[rng.randrange(len(pool))]


def generate(path: Path, entities: int, seed: int = 0, hierarchy: str = "subclass") -> dict[str, int]:
    """Write the KG to `path` (Turtle when it ends in .ttl, else N-Triples); returns counts of what was written."""
    rng = random.Random(seed)
    labels = LabelMaker(random.Random(seed + 1))
    n_classes = max(2 * N_ROOTS, entities // 100)
    n_tier1 = max(N_ROOTS, n_classes // 10)
    n_tier2 = max(N_ROOTS, n_classes - n_tier1)
    with open(path, "w", encoding="utf-8") as handle:
        w = Writer(handle, turtle=path.suffix == ".ttl")
        rdf_type, label = w.iri(RDF, "type"), w.iri(RDFS, "label")
        up = w.iri(RDFS, "subClassOf") if hierarchy == "subclass" else w.iri(SKOS, "broader")
        cls_kind = w.iri(OWL, "Class") if hierarchy == "subclass" else w.iri(SKOS, "Concept")

        def node(kind: str, i: int) -> str:
            return w.iri(EX, f"{kind}{i:07d}")

        # classes: roots, tier 1 (each under a root, round robin so every root has children), tier 2 (under tier 1)
        root_of_tier1 = [i % N_ROOTS for i in range(n_tier1)]
        parent_of_tier2 = [rng.randrange(n_tier1) for _ in range(n_tier2)]
        for i in range(N_ROOTS):
            w.triple(node("R", i), rdf_type, cls_kind)
            w.triple(node("R", i), label, w.text(labels.make("roots", words=2)))
        for i, root in enumerate(root_of_tier1):
            w.triple(node("C", i), rdf_type, cls_kind)
            w.triple(node("C", i), label, w.text(labels.make(f"R{root}", words=2)))
            w.triple(node("C", i), up, node("R", root))
        for i, parent in enumerate(parent_of_tier2):
            w.triple(node("D", i), rdf_type, cls_kind)
            w.triple(node("D", i), label, w.text(labels.make(f"C{parent}", words=2)))
            w.triple(node("D", i), up, node("C", parent))

        # entities: each typed under one tier-2 class; grouped by the root above it
        by_root: list[list[int]] = [[] for _ in range(N_ROOTS)]
        for e in range(entities):
            cls = rng.randrange(n_tier2)
            w.triple(node("E", e), rdf_type, node("D", cls))
            w.triple(node("E", e), label, w.text(labels.make(f"D{cls}")))
            by_root[root_of_tier1[parent_of_tier2[cls]]].append(e)

        # relations: domain root i, range a seeded root; declared inverses; one literal relation
        prop = w.iri(OWL, "ObjectProperty")
        domain_p, range_p, inverse_p = w.iri(RDFS, "domain"), w.iri(RDFS, "range"), w.iri(OWL, "inverseOf")
        ranges = [rng.randrange(N_ROOTS) for _ in RELATIONS]
        for i, (local, text) in enumerate(RELATIONS):
            p = w.iri(EX, local)
            for s, o in ((rdf_type, prop), (label, w.text(text)), (domain_p, node("R", i % N_ROOTS)),
                         (range_p, node("R", ranges[i]))):
                w.triple(p, s, o)
            if local in INVERSES:
                inv_local, inv_text = INVERSES[local]
                q = w.iri(EX, inv_local)
                for s, o in ((rdf_type, prop), (label, w.text(inv_text)), (domain_p, node("R", ranges[i])),
                             (range_p, node("R", i % N_ROOTS)), (inverse_p, p)):
                    w.triple(q, s, o)
        lit = w.iri(EX, LITERAL_RELATION[0])
        for s, o in ((rdf_type, w.iri(OWL, "DatatypeProperty")), (label, w.text(LITERAL_RELATION[1])),
                     (range_p, w.iri(XSD, "integer"))):
            w.triple(lit, s, o)

        # facts
        facts = literal_facts = 0
        for i, (local, _text) in enumerate(RELATIONS):
            p = w.iri(EX, local)
            objects = by_root[ranges[i]]
            for e in by_root[i % N_ROOTS]:
                if rng.random() < 0.9 and objects:
                    o = _skewed(rng, objects)
                    if o != e:
                        w.triple(node("E", e), p, node("E", o))
                        facts += 1
        for e in range(entities):
            if rng.random() < 0.03:
                w.triple(node("E", e), lit, w.integer(rng.randrange(1000, 2025)))
                literal_facts += 1
    return {"entities": entities, "classes": N_ROOTS + n_tier1 + n_tier2, "facts": facts,
            "literal_facts": literal_facts, "statements": w.count}


def iter_sizes(text: str) -> Iterator[int]:
    """`100k`, `1m`, `250_000` → integers (for command lines)."""
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = 1_000 if part.endswith("k") else 1_000_000 if part.endswith("m") else 1
        yield int(float(part.rstrip("km")) * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", default="100000", help="leaf entities (100000, 100k, 1m)")
    parser.add_argument("--out", type=Path, required=True, help="output file; .ttl writes Turtle, else N-Triples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hierarchy", choices=("subclass", "broader"), default="subclass",
                        help="class links: rdfs:subClassOf (classes) or skos:broader (concepts)")
    args = parser.parse_args()
    counts = generate(args.out, next(iter_sizes(args.entities)), args.seed, args.hierarchy)
    print(", ".join(f"{k} {v:,}" for k, v in counts.items()), f"→ {args.out}")


if __name__ == "__main__":
    main()
