"""Regenerate the derived files of the biology KG (`kg/biology.<source>.ttl`) from their source packages.

    python kg/gen_biology.py [--cache DIR]

The sources are fetched into DIR (default `~/.cache/knowledgesmith/bio-sources`) with the ordinary clients,
`apt-get download` + `dpkg-deb -x` for the Debian packages and `pip download` for Biopython, unless they are
already unpacked there. Output is deterministic: sorted statements, no timestamps, so a rerun gives the same bytes.

What each source contributes (and why the subset: the KG must stay at 15 000-60 000 facts and a few MB):
- Gene Ontology 2022-07-01 (Debian r-bioc-go.db 3.16.0, GO.sqlite; CC BY 4.0): the whole cellular-component
  ontology, biological-process / molecular-function terms at most two is_a steps below their namespace root, the
  terms that regulate those, and the is_a ancestors of all kept terms; is_a, part_of and the three regulates
  relations between kept terms.
- NCBI Gene 2022-09-12 (Debian r-bioc-org.hs.eg.db 3.16.0, org.Hs.eg.sqlite; public domain): human protein-coding
  genes that carry an EC number (enzyme-coding genes) with one chromosome and one well-formed cytogenetic band:
  the gene's band and chromosome, band -> arm -> chromosome (hierarchy), full name, EC numbers, GRCh38 chromosome
  lengths. The KEGG table (2011, restrictive licence) and the GO annotation tables (which cannot be told apart
  from NOT-qualified ones here) are not used.
- WordNet 3.0 (Debian wordnet-base, data.noun; WordNet licence): the hyponym trees of chordate and insect (organism
  kinds), of body part (anatomy), the taxa their member-holonym pointers lead to (genus -> family -> order -> ...),
  part holonyms between body parts, and binomial names that agree with the organism's genus.
- Biopython 1.88 (Bio/Data/CodonTable.py, IUPACData.py; BSD-3): the standard genetic code (NCBI table 1): codon ->
  amino acid, start and stop codons; amino-acid one/three-letter codes and average masses.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sqlite3
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

KG_DIR = Path(__file__).resolve().parent
BIO = "https://knowledgesmith.org/kg/biology/"
REL = BIO + "rel/"
GENERATOR = "python kg/gen_biology.py"

DEBS = {"r-bioc-go.db": "3.16.0-1", "r-bioc-org.hs.eg.db": "3.16.0-1", "wordnet-base": "1:3.0-37"}
BIOPYTHON = "1.88"
GO_SQLITE = "usr/lib/R/site-library/GO.db/extdata/GO.sqlite"
ORG_SQLITE = "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"
WN_NOUNS = "usr/share/wordnet/data.noun"

# Prefixed names are written where Turtle allows them (smaller files); anything else is a full IRI.
_SAFE_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$")


# -- fetching ---------------------------------------------------------------------------------------------------------

def fetch(cache: Path) -> Path:
    """Download and unpack the sources into `cache` unless already there; returns the unpacked root."""
    root = cache / "root"
    cache.mkdir(parents=True, exist_ok=True)
    for pkg, version in DEBS.items():
        stamp = root / f".{pkg}.unpacked"
        if stamp.exists():
            continue
        subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=cache, check=True)
        deb = next(p for p in sorted(cache.glob(f"{pkg}_*.deb")))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        stamp.write_text(version + "\n")
    if not (root / "Bio" / "Data" / "CodonTable.py").exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        f"biopython=={BIOPYTHON}", "-d", str(cache)], check=True)
        wheel = next(p for p in sorted(cache.glob(f"biopython-{BIOPYTHON}-*.whl")))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name == "Bio/__init__.py" or name.startswith("Bio/Data/"):
                    zf.extract(name, root)
    return root


# -- Turtle writing ---------------------------------------------------------------------------------------------------

def term(iri: str) -> str:
    """A node IRI as Turtle: `bio:x` / `rel:x` where the local name allows it, else `<...>`."""
    for prefix, base in (("rel", REL), ("bio", BIO)):
        if iri.startswith(base) and _SAFE_LOCAL.match(iri[len(base):]):
            return f"{prefix}:{iri[len(base):]}"
    if iri.startswith("skos:") or iri.startswith("rdfs:") or iri.startswith("rdf:"):
        return iri
    return f"<{iri}>"


def lit(value: str | int | float, datatype: str | None = None) -> str:
    """A literal as Turtle; strings are English-tagged only for labels (callers pass `@en` through datatype)."""
    if isinstance(value, bool):
        raise TypeError("no booleans in this KG")
    if isinstance(value, int):
        return f'"{value}"^^xsd:integer'
    if isinstance(value, float):
        return f'"{value}"^^xsd:decimal'
    text = value.replace("\\", "\\\\").replace('"', '\\"')
    if datatype == "@en":
        return f'"{text}"@en'
    return f'"{text}"^^xsd:string' if datatype is None else f'"{text}"^^{datatype}'


class Ttl:
    """Collects statements of one derived file and writes them sorted, grouped by subject."""

    def __init__(self) -> None:
        self.stmts: set[tuple[str, str, str]] = set()

    def add(self, s: str, p: str, o: str) -> None:
        self.stmts.add((term(s), p, o))

    def node(self, s: str, label: str, types: Iterable[str] = ()) -> None:
        self.add(s, "rdfs:label", lit(label, "@en"))
        for t in types:
            self.add(s, "rdf:type", term(t))

    def rel(self, s: str, relation: str, o: str) -> None:
        self.add(s, term(REL + relation), term(o))

    def value(self, s: str, relation: str, value: str | int | float) -> None:
        self.add(s, term(REL + relation), lit(value))

    def write(self, path: Path, header: list[str]) -> int:
        by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for s, p, o in self.stmts:
            by_subject[s].append((p, o))
        lines = [f"# {h}" if h else "#" for h in header]
        lines += ["@prefix bio:  <https://knowledgesmith.org/kg/biology/> .",
                  "@prefix rel:  <https://knowledgesmith.org/kg/biology/rel/> .",
                  "@prefix rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .",
                  "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
                  "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
                  "@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .", ""]
        for s in sorted(by_subject):
            pairs = sorted(by_subject[s])
            body = " ;\n    ".join(f"{p} {o}" for p, o in pairs)
            lines.append(f"{s} {body} .")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return sum(1 for _, p, _ in self.stmts if p != "rdfs:label")


def header(source: str, version: str, licence: str, inside: str) -> list[str]:
    return [f"KnowledgeSmith biology KG, derived facts. Source: {source}, version {version}.",
            f"Licence of the source: {licence}. This file: CC BY 4.0 (attribution to the source above).",
            f"Read from: {inside}.",
            f"Generated by: {GENERATOR} (do not edit by hand; rerun the generator).", ""]


class Labels:
    """Keeps labels unique across the whole KG (case-insensitive): MCQ choices must be told apart."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.used = {t.casefold() for t in taken}

    def claim(self, *candidates: str) -> str | None:
        for c in candidates:
            if c and c.casefold() not in self.used:
                self.used.add(c.casefold())
                return c
        return None


def main_file_labels() -> list[str]:
    """Labels written by hand in kg/biology.ttl, so that derived nodes never reuse them."""
    text = (KG_DIR / "biology.ttl").read_text(encoding="utf-8")
    return re.findall(r'rdfs:label "([^"]+)"@en', text)


# -- Gene Ontology ----------------------------------------------------------------------------------------------------

GO_MAX_DEPTH = {"BP": 2, "MF": 2, "CC": 99}  # is_a steps below the namespace root
GO_RELATIONS = {"part of": "partOf", "regulates": "regulates", "positively regulates": "positivelyRegulates",
                "negatively regulates": "negativelyRegulates"}


def go_iri(go_id: str) -> str:
    return BIO + go_id.replace(":", "_")


def gen_go(root: Path, labels: Labels) -> tuple[Ttl, set[str]]:
    db = sqlite3.connect(root / GO_SQLITE)
    terms = {i: (go_id, name, ns) for i, go_id, name, ns in
             db.execute("SELECT _id, go_id, term, ontology FROM go_term WHERE ontology IN ('BP','MF','CC')")}
    parents: dict[int, set[int]] = defaultdict(set)
    other: list[tuple[int, int, str]] = []
    for ns in ("bp", "mf", "cc"):
        for child, parent, kind in db.execute(f"SELECT _id, _parent_id, relationship_type FROM go_{ns}_parents"):
            if child not in terms or parent not in terms:
                continue  # the "all" pseudo-root
            if kind == "isa":
                parents[child].add(parent)
            elif kind in GO_RELATIONS:
                other.append((child, parent, kind))
    # depth below the namespace root by breadth-first search over is_a
    children: dict[int, set[int]] = defaultdict(set)
    for c, ps in parents.items():
        for p in ps:
            children[p].add(c)
    ns_roots = sorted(i for i in terms if not parents.get(i))
    depth = {r: 0 for r in ns_roots}
    frontier = list(ns_roots)
    while frontier:
        nxt = []
        for x in frontier:
            for y in sorted(children[x]):
                if y not in depth:
                    depth[y] = depth[x] + 1
                    nxt.append(y)
        frontier = nxt
    keep = {i for i, d in depth.items() if d <= GO_MAX_DEPTH[terms[i][2]]}
    # terms that kg/biology.ttl hangs under a discipline are kept with all their is_a ancestors, whatever their depth
    anchors = set(re.findall(r"bio:(GO_\d{7})", (KG_DIR / "biology.ttl").read_text(encoding="utf-8")))
    stack = [i for i, (go_id, _, _) in terms.items() if go_id.replace(":", "_") in anchors]
    # and the "(positive/negative) regulation of X" terms of the kept processes X, so regulates facts exist
    stack += [child for child, parent, kind in other if kind != "part of" and parent in keep]
    while stack:
        x = stack.pop()
        if x not in keep:
            keep.add(x)
        stack.extend(p for p in parents.get(x, ()) if p not in keep)
    ttl = Ttl()
    for i in sorted(keep, key=lambda k: terms[k][0]):
        go_id, name, ns = terms[i]
        if i in ns_roots:
            name = name.replace("_", " ")  # biological_process -> biological process
        label = labels.claim(name, f"{name} (GO term)")
        assert label is not None
        ttl.node(go_iri(go_id), label)
        ttl.add(go_iri(go_id), "skos:notation", lit(go_id))
        if i in ns_roots:
            ttl.add(go_iri(go_id), "rdfs:subClassOf", term(BIO + "GOTerm"))
        for p in sorted(parents.get(i, ())):
            if p in keep:
                ttl.add(go_iri(go_id), "rdfs:subClassOf", term(go_iri(terms[p][0])))
    for child, parent, kind in sorted(other):
        if child in keep and parent in keep:
            ttl.rel(go_iri(terms[child][0]), GO_RELATIONS[kind], go_iri(terms[parent][0]))
    return ttl, {terms[i][0] for i in keep}


# -- human enzyme-coding genes -----------------------------------------------------------------------------------------

_BAND = re.compile(r"^(\d{1,2}|X|Y)([pq])(\d+(?:\.\d+)?)$")
_EC = re.compile(r"^\d+\.\d+\.\d+\.\d+$")  # complete EC numbers only (partial ones like 3.4.-.- are dropped)


def gen_genes(root: Path, labels: Labels) -> Ttl:
    db = sqlite3.connect(root / ORG_SQLITE)
    lengths = {c: n for c, n in db.execute("SELECT chromosome, length FROM chrlengths")}
    rows = db.execute("""
        SELECT i.symbol, i.gene_name, g.gene_id,
               (SELECT group_concat(DISTINCT chromosome) FROM chromosomes c WHERE c._id = g._id),
               (SELECT group_concat(DISTINCT cytogenetic_location) FROM cytogenetic_locations l WHERE l._id = g._id),
               (SELECT group_concat(DISTINCT ec_number) FROM ec e WHERE e._id = g._id)
        FROM genes g JOIN gene_info i ON i._id = g._id JOIN genetype t ON t._id = g._id
        WHERE t.gene_type = 'protein-coding' AND EXISTS (SELECT 1 FROM ec e WHERE e._id = g._id)""").fetchall()
    ttl = Ttl()
    chromosomes: set[str] = set()
    arms: set[str] = set()
    for symbol, name, entrez, chrom, band, ecs in sorted(rows):
        m = _BAND.match(band or "")
        # one chromosome and one band that lies on it; ranges ("Xp11.4-p11.2") and multi-mapped genes are skipped
        if not chrom or "," in chrom or not m or m.group(1) != chrom:
            continue
        ec_numbers = sorted(e for e in (ecs or "").split(",") if _EC.match(e))
        if not ec_numbers:
            continue
        label = labels.claim(symbol)
        if label is None:
            continue
        gene = BIO + "gene_" + re.sub(r"[^A-Za-z0-9_-]", "_", symbol)
        arm = f"{chrom}{m.group(2)}"
        band_iri = BIO + "cytoband_" + band
        ttl.node(gene, label, [BIO + "EnzymeCodingGene"])
        ttl.rel(gene, "locatedInBand", band_iri)
        ttl.add(gene, "skos:notation", lit(f"NCBIGene:{entrez}"))
        ttl.rel(gene, "locatedOnChromosome", BIO + f"human_chromosome_{chrom}")
        ttl.value(gene, "fullName", name)
        for ec in ec_numbers:
            ttl.value(gene, "ecNumber", ec)
            # the first EC digit is the enzyme class by definition of the EC scheme (classes declared in biology.ttl)
            ttl.rel(gene, "encodesEnzymeOfClass", BIO + f"EC_class_{ec.split('.')[0]}")
        if band not in arms:
            ttl.node(band_iri, band, [BIO + "CytogeneticBand"])
            ttl.add(band_iri, "skos:broader", term(BIO + f"human_chromosome_{arm}"))
            arms.add(band)
        chromosomes.add(chrom)
        ttl.node(BIO + f"human_chromosome_{arm}", f"chromosome arm {arm}", [BIO + "ChromosomeArm"])
        ttl.add(BIO + f"human_chromosome_{arm}", "skos:broader", term(BIO + f"human_chromosome_{chrom}"))
    for chrom in sorted(chromosomes):
        iri = BIO + f"human_chromosome_{chrom}"
        ttl.node(iri, f"human chromosome {chrom}", [BIO + "HumanChromosome"])
        ttl.value(iri, "lengthInBasePairs", int(lengths[chrom]))
    return ttl


# -- WordNet ----------------------------------------------------------------------------------------------------------

WN_ROOTS = {"01466257": "chordate", "02159955": "insect", "05220461": "body part"}
RANKS = {"07940552": "Kingdom", "07940865": "Subkingdom", "08102555": "Phylum", "08103299": "Subphylum",
         "08103457": "Superphylum", "08103777": "TaxonomicClass", "08106661": "Subclass", "08106798": "Superclass",
         "08106934": "Order", "08107191": "Suborder", "08107343": "Superorder", "08107499": "Family",
         "08108304": "Superfamily", "08108627": "Subfamily", "08108784": "Tribe", "08108972": "Genus",
         "08109624": "Subgenus"}
_BINOMIAL = re.compile(r"^([A-Z][a-z]+)_([a-z]+)$")


def read_wordnet(path: Path) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """offset -> (lemmas, [(pointer symbol, target offset)]) for noun synsets."""
    synsets: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            continue  # licence header
        fields = line.partition("|")[0].split()
        n_words = int(fields[3], 16)
        lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * k]) for k in range(n_words)]  # drop (a), (p) markers
        i = 4 + 2 * n_words
        n_ptrs = int(fields[i])
        ptrs = [(fields[i + 1 + 4 * k], fields[i + 2 + 4 * k]) for k in range(n_ptrs)
                if fields[i + 3 + 4 * k] == "n"]
        synsets[fields[0]] = (lemmas, ptrs)
    return synsets


def gen_wordnet(root: Path, labels: Labels) -> Ttl:
    syn = read_wordnet(root / WN_NOUNS)
    hyponyms: dict[str, list[str]] = defaultdict(list)
    for off, (_, ptrs) in syn.items():
        for sym, target in ptrs:
            if sym == "@":
                hyponyms[target].append(off)

    def closure(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack.extend(hyponyms[x])
        return seen

    organisms = closure("01466257") | closure("02159955")
    body = closure("05220461")
    body -= organisms

    def rank(off: str) -> str | None:
        """The taxonomic rank a taxon synset is a kind of (walks its hypernyms up to a rank synset)."""
        seen, frontier = set(), [off]
        while frontier:
            nxt = []
            for x in frontier:
                for sym, t in syn[x][1]:
                    if sym == "@" and t not in seen:
                        if t in RANKS:
                            return RANKS[t]
                        seen.add(t)
                        nxt.append(t)
            frontier = nxt
        return None

    ranks: dict[str, str | None] = {}

    def taxon_rank(off: str) -> str | None:
        if off not in ranks:
            ranks[off] = rank(off)
        return ranks[off]

    def member_of(off: str) -> list[str]:
        return sorted(t for sym, t in syn[off][1] if sym == "#m" and taxon_rank(t))

    taxa: set[str] = set()
    frontier = sorted({t for o in organisms for t in member_of(o)})
    while frontier:
        taxa.update(frontier)
        frontier = sorted({t for x in frontier for t in member_of(x)} - taxa)
    taxa -= organisms

    # names: first lemma; a synset whose first lemma another kept synset shares gets its next free lemma or a suffix
    kept = sorted(organisms | body | taxa)
    label_of: dict[str, str] = {}
    for off in sorted(kept, key=lambda o: (o not in WN_ROOTS, o)):
        lemmas = [lm.replace("_", " ") for lm in syn[off][0]]
        kind = "taxon" if off in taxa else "body part" if off in body else "organism"
        label = labels.claim(*lemmas, f"{lemmas[0]} ({kind})", f"{lemmas[0]} ({kind} {off})")
        assert label is not None
        label_of[off] = label
    local_count: dict[str, int] = defaultdict(int)
    for off in kept:
        local_count[re.sub(r"[^A-Za-z0-9_-]", "_", syn[off][0][0])] += 1

    def iri(off: str) -> str:
        local = re.sub(r"[^A-Za-z0-9_-]", "_", syn[off][0][0])
        if local_count[local] > 1 and off not in WN_ROOTS:
            local = f"{local}_{off}"
        return BIO + local

    ttl = Ttl()
    for off in kept:
        s = iri(off)
        ttl.add(s, "skos:notation", lit(f"wn30:{off}-n"))
        if off in taxa:
            ttl.node(s, label_of[off], [BIO + str(taxon_rank(off))])
        else:
            ttl.node(s, label_of[off])
            pool = organisms if off in organisms else body
            for sym, t in syn[off][1]:
                if sym == "@" and t in pool:
                    ttl.add(s, "rdfs:subClassOf", term(iri(t)))
        if off in body:
            for sym, t in syn[off][1]:
                if sym == "#p" and t in body:
                    ttl.rel(s, "anatomicalPartOf", iri(t))
        if off in organisms or off in taxa:
            for t in member_of(off):
                if t in taxa:
                    ttl.rel(s, "memberOfTaxon" if off in organisms else "classifiedIn", iri(t))
        if off in organisms:
            genus_names = {lm for t in member_of(off) if taxon_rank(t) == "Genus"
                           for lm in syn[t][0] if not lm.startswith("genus_")}
            binomials = sorted({lm.replace("_", " ") for lm in syn[off][0]
                                if (m := _BINOMIAL.match(lm)) and m.group(1) in genus_names})
            if len(binomials) == 1:  # functional: a second candidate means WordNet lists a synonym; skip both
                ttl.value(s, "binomialName", binomials[0])
    return ttl


# -- Biopython genetic code -------------------------------------------------------------------------------------------

AMINO_ACIDS = {"A": "alanine", "C": "cysteine", "D": "aspartic acid", "E": "glutamic acid", "F": "phenylalanine",
               "G": "glycine", "H": "histidine", "I": "isoleucine", "K": "lysine", "L": "leucine",
               "M": "methionine", "N": "asparagine", "P": "proline", "Q": "glutamine", "R": "arginine",
               "S": "serine", "T": "threonine", "V": "valine", "W": "tryptophan", "Y": "tyrosine"}


def gen_codons(root: Path, labels: Labels) -> Ttl:
    sys.path.insert(0, str(root))
    try:
        codon_table = importlib.import_module("Bio.Data.CodonTable")
        iupac = importlib.import_module("Bio.Data.IUPACData")
    finally:
        sys.path.remove(str(root))
    table = codon_table.unambiguous_rna_by_id[1]
    assert table.names[0] == "Standard"
    ttl = Ttl()
    code = BIO + "standard_genetic_code"
    ttl.value(code, "ncbiTranslationTable", int(table.id))
    for one, name in AMINO_ACIDS.items():
        aa = BIO + name.replace(" ", "_")
        ttl.value(aa, "oneLetterCode", one)
        ttl.value(aa, "threeLetterCode", iupac.protein_letters_1to3[one])
        ttl.value(aa, "averageMassInDaltons", float(iupac.protein_weights[one]))
    for codon in sorted([*table.forward_table, *table.stop_codons]):  # codon names win over WordNet lemmas
        assert labels.claim(codon) == codon
    for codon, one in sorted(table.forward_table.items()):
        c = BIO + f"codon_{codon}"
        aa = BIO + AMINO_ACIDS[one].replace(" ", "_")
        ttl.node(c, codon, [BIO + "Codon"])
        ttl.rel(c, "encodes", aa)
        ttl.rel(aa, "encodedBy", c)
    for codon in sorted(table.stop_codons):
        c = BIO + f"codon_{codon}"
        ttl.node(c, codon, [BIO + "Codon", BIO + "StopCodon"])
        ttl.rel(code, "hasStopCodon", c)
    for codon in sorted(table.start_codons):
        ttl.rel(code, "hasStartCodon", BIO + f"codon_{codon}")
    return ttl


# -- main -------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/knowledgesmith/bio-sources")
    args = parser.parse_args(argv)
    root = fetch(args.cache)
    labels = Labels(main_file_labels())
    outputs = [
        ("biopython-1.88", lambda: gen_codons(root, labels),
         header("Biopython", "1.88 (PyPI wheel)", "Biopython License Agreement / BSD-3-Clause",
                "Bio/Data/CodonTable.py (NCBI translation table 1), Bio/Data/IUPACData.py")),
        ("go-2022-07-01", lambda: gen_go(root, labels)[0],
         header("Gene Ontology (go-basic.obo) via Bioconductor GO.db", "2022-07-01 (Debian r-bioc-go.db 3.16.0-1)",
                "CC BY 4.0 (http://geneontology.org/docs/go-citation-policy/)", GO_SQLITE)),
        ("ncbi-gene-2022-09-12", lambda: gen_genes(root, labels),
         header("NCBI Gene (Homo sapiens) via Bioconductor org.Hs.eg.db",
                "Entrez Gene 2022-Sep12 (Debian r-bioc-org.hs.eg.db 3.16.0-1)",
                "public domain (NCBI data; GO and KEGG tables not used)", ORG_SQLITE)),
        ("wordnet-3.0", lambda: gen_wordnet(root, labels),
         header("WordNet", "3.0 (Debian wordnet-base 1:3.0-37)",
                "WordNet 3.0 licence (permissive, BSD-like; Princeton University)", WN_NOUNS)),
    ]
    for source, build, head in outputs:
        path = KG_DIR / f"biology.{source}.ttl"
        n = build().write(path, head)
        print(f"{path.name}: {n} statements besides labels", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
