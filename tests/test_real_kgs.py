"""Real knowledge graphs written by others, each built once through `ks-build` and held to exact figures.

The files come from registry packages (../shared/kg-sources/fetch.sh, cached in $KS_KG_SOURCES):

* pizza.owl (rdflib 7.6.0): RDF/XML, the Manchester pizza tutorial ontology, labels in Portuguese;
* sdo.json-ld (rdflib 7.6.0): schema.org as JSON-LD, a DAG of depth 5 under schema:Thing;
* Brick.ttl (brickschema 0.8.0, Brick 1.5): Turtle, rdfs:subClassOf mixed with skos:broader/narrower substances;
* not-galen.n3 (rdflib's W3C N3 suite): the GALEN medical ontology in N3, without a single rdfs:label;
* iso3166-1.json / iso3166-2.json (pycountry 26.2.16): countries and subdivisions, converted here to our JSON shape;
* owlready2 0.51's ontologies: OWL/XML and malformed XML traps, and Dublin Core with en-US labels.

The figures were computed once with the builder and checked against the data by hand (the docstrings say how);
a change in any of them is a change in what the builder extracts, to be made on purpose.
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow.parquet as pq
import pytest

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.labels import language_rank

PIZZA_OWL = "rdflib/rdflib-7.6.0/test/data/owl/pizza.owl"
SDO_JSONLD = "rdflib/rdflib-7.6.0/test/data/defined_namespaces/sdo.json-ld"
GALEN_N3 = "rdflib/rdflib-7.6.0/test/data/suites/w3c/n3/N3Tests/04test/not-galen.n3"
BRICK_TTL = "brick/x/brickschema/ontologies/1.5/Brick.ttl"
PYCOUNTRY_DATABASES = "pycountry/x/pycountry/databases"
OWLREADY2 = "owlready2/owlready2-0.51"

PIZZA = "http://www.co-ode.org/ontologies/pizza/2005/10/18/classified/pizza.owl#"
SDO = "https://schema.org/"
BRICK = "https://brickschema.org/schema/Brick#"
GALEN = "http://galen.org/galen.owl#"
DCTERMS = "http://purl.org/dc/terms/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
SKOS_BROADER = "http://www.w3.org/2004/02/skos/core#broader"
SKOS_NARROWER = "http://www.w3.org/2004/02/skos/core#narrower"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

CHILD_TO_PARENT = frozenset({RDFS_SUBCLASS_OF, RDF_TYPE, SKOS_BROADER})
PARENT_TO_CHILD = frozenset({SKOS_NARROWER})
ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


# -- building ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Built:
    """One build's output folder, read back: nodes and relations by id, triples as rows."""

    out: Path
    manifest: dict[str, Any]
    nodes: dict[str, dict[str, Any]]
    triples: list[dict[str, Any]]
    relations: dict[str, dict[str, Any]]

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest["counts"]

    def label(self, node_id: str) -> str:
        return self.nodes[node_id]["label"]

    def roots(self) -> list[str]:
        return sorted(n for n, row in self.nodes.items() if row["level"] == "root")

    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node, row in self.nodes.items():
            for parent in row["parent_ids"]:
                out[parent].append(node)
        return {n: sorted(c) for n, c in out.items()}

    def pairs(self, relation: str) -> set[tuple[str, str]]:
        return {(t["subject_id"], t["object_id"]) for t in self.triples if t["relation_id"] == relation}

    def depth_histogram(self) -> dict[int | None, int]:
        return dict(Counter(row["depth"] for row in self.nodes.values()))


def build(out: Path, *args: str | Path) -> Built:
    """`ks-build ARGS --out OUT --quiet --no-mcq` in-process (the KG tables are what this file checks; the MCQ of
    these KGs are built in test_real_kgs_mcq.py); the build must succeed."""
    code = ks_build_main([*(str(a) for a in args), "--out", str(out), "--quiet", "--no-mcq"])
    assert code == 0, f"ks-build {' '.join(map(str, args))} exited {code}"
    return read_build(out)


def read_build(out: Path) -> Built:
    nodes = {row["node_id"]: row for row in pq.read_table(out / "nodes.parquet").to_pylist()}
    relations = {row["relation_id"]: row for row in pq.read_table(out / "relations.parquet").to_pylist()}
    triples = pq.read_table(out / "triples.parquet").to_pylist()
    manifest = json.loads((out / "manifest.json").read_text())
    return Built(out, manifest, nodes, triples, relations)


def iso3166_as_ks_json(databases: Path) -> dict[str, Any]:
    """pycountry's ISO 3166 tables in our JSON shape (builder/readers.py `_add_node_record`, `_add_triple_record`).

    A `world` root; each country (iso3166-1) under it, with its official and common names as aliases; each subdivision
    (iso3166-2) under its `parent` subdivision where pycountry names one, else under its country (the code's prefix).
    Facts: a country's alpha-3 code and a subdivision's type, as literals. The type is not given as a JSON `type`,
    which is an rdf:type hierarchy edge: "Province" would become a second parent of every province.
    """
    countries = json.loads((databases / "iso3166-1.json").read_text(encoding="utf-8"))["3166-1"]
    subdivisions = json.loads((databases / "iso3166-2.json").read_text(encoding="utf-8"))["3166-2"]
    nodes: list[dict[str, Any]] = [{"id": "world", "label": "World"}]
    triples: list[dict[str, Any]] = []
    for country in countries:
        aliases = [country[key] for key in ("official_name", "common_name") if key in country]
        nodes.append({"id": country["alpha_2"], "label": country["name"], "aliases": aliases, "parent": "world"})
        triples.append({"subject": country["alpha_2"], "relation": "alpha-3 code", "object": country["alpha_3"],
                        "object_type": "literal"})
    for sub in subdivisions:
        parent = sub.get("parent", sub["code"].split("-", 1)[0])
        nodes.append({"id": sub["code"], "label": sub["name"], "parent": parent})
        triples.append({"subject": sub["code"], "relation": "subdivision type", "object": sub["type"],
                        "object_type": "literal"})
    return {"nodes": nodes, "triples": triples}


@pytest.fixture(scope="module")
def pizza(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("pizza-en"), "--kg", kg_sources / PIZZA_OWL, "--lang", "en")


@pytest.fixture(scope="module")
def pizza_pt(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("pizza-pt"), "--kg", kg_sources / PIZZA_OWL, "--lang", "pt")


@pytest.fixture(scope="module")
def schema_org(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("schema-org"), "--kg", kg_sources / SDO_JSONLD)


@pytest.fixture(scope="module")
def brick(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("brick"), "--kg", kg_sources / BRICK_TTL)


@pytest.fixture(scope="module")
def galen(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("galen"), "--kg", kg_sources / GALEN_N3)


@pytest.fixture(scope="module")
def iso3166(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("iso3166")
    converted = work / "iso3166.json"
    document = iso3166_as_ks_json(kg_sources / PYCOUNTRY_DATABASES)
    converted.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return build(work / "out", "--kg", converted)


@pytest.fixture(scope="module")
def dcterms(kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("dcterms-en"), "--kg", kg_sources / OWLREADY2 / "ontos" / "dcterms.owl",
                 "--lang", "en")


ALL_BUILDS = ["pizza", "pizza_pt", "schema_org", "brick", "galen", "iso3166", "dcterms"]


# -- every build: the tables agree with each other and with the hierarchy rule -----------------------------------------

@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_manifest_counts_are_the_tables_row_counts(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    levels = Counter(row["level"] for row in built.nodes.values())
    assert built.counts["nodes"] == len(built.nodes) == built.manifest["files"]["nodes.parquet"]["rows"]
    assert built.counts["facts"] == len(built.triples) == built.manifest["files"]["triples.parquet"]["rows"]
    assert built.counts["relations"] == len(built.relations)
    assert built.counts["nodes_per_level"] == {level: levels[level] for level in ("root", "intermediate", "leaf")}
    assert sum(row["fact_count"] for row in built.relations.values()) == len(built.triples)
    assert built.counts["max_depth"] == max(d for d in built.depth_histogram() if d is not None)


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_levels_follow_from_parents_and_children(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    children = built.children()
    for node, row in built.nodes.items():
        has_parent, has_child = bool(row["parent_ids"]), bool(children[node])
        expected = "intermediate" if has_parent and has_child else "root" if has_child else "leaf"
        assert row["level"] == expected, node
        if not has_parent and not has_child:  # outside the hierarchy: a leaf with no depth and no branch
            assert row["depth"] is None and row["branch_id"] is None, node


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_depth_is_the_shortest_distance_from_a_root(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    children = built.children()
    depth: dict[str, int] = {root: 0 for root in built.roots()}
    queue = deque(built.roots())
    while queue:
        node = queue.popleft()
        for child in children[node]:
            if child not in depth:
                depth[child] = depth[node] + 1
                queue.append(child)
    assert {node: row["depth"] for node, row in built.nodes.items()} == {n: depth.get(n) for n in built.nodes}


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_longest_chain_is_the_longest_root_to_node_path(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    graph = nx.DiGraph((parent, node) for node, row in built.nodes.items() for parent in row["parent_ids"])
    assert nx.is_directed_acyclic_graph(graph)
    assert built.counts["longest_chain"] == nx.dag_longest_path_length(graph)


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_branch_is_the_child_of_root_subtree_through_the_shallowest_parent(kg: str,
                                                                           request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    for node, row in built.nodes.items():
        if row["depth"] is None:
            assert row["branch_id"] is None, node
        elif row["depth"] <= 1:  # a root, and a child of a root, is its own branch
            assert row["branch_id"] == node, node
        else:
            shallowest = [built.nodes[p] for p in row["parent_ids"] if built.nodes[p]["depth"] == row["depth"] - 1]
            assert row["branch_id"] == min(p["branch_id"] for p in shallowest), node


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_every_parent_link_is_a_hierarchy_fact_and_every_hierarchy_fact_a_parent_link(
        kg: str, request: pytest.FixtureRequest) -> None:
    """subClassOf / type / broader (child → parent) and narrower (parent → child) facts between named nodes are the
    parent links, but for edges dropped to break a reported cycle (both ends in that cycle)."""
    built: Built = request.getfixturevalue(kg)
    from_facts: set[tuple[str, str]] = set()
    for t in built.triples:
        if t["relation_id"] in CHILD_TO_PARENT:
            from_facts.add((t["subject_id"], t["object_id"]))
        elif t["relation_id"] in PARENT_TO_CHILD:
            from_facts.add((t["object_id"], t["subject_id"]))
    links = {(node, parent) for node, row in built.nodes.items() for parent in row["parent_ids"]}
    assert links <= from_facts
    dropped = from_facts - links
    cycles = [set(cycle) for cycle in built.manifest["hierarchy"]["cycles"]]
    assert all(any({child, parent} <= cycle for cycle in cycles) for child, parent in dropped), sorted(dropped)
    assert len(dropped) == built.manifest["hierarchy"]["edges_dropped_to_break_cycles"]
    assert len(from_facts) == built.counts["hierarchy_edges"]


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_triples_are_keyed_uniquely_and_tagged_like_their_nodes(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    ids = [t["triple_id"] for t in built.triples]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    for t in built.triples:
        subject = built.nodes[t["subject_id"]]
        assert (t["subject_level"], t["branch_id"]) == (subject["level"], subject["branch_id"])
        if t["object_is_literal"]:
            assert t["object_level"] is None and t["object_datatype"]
        else:
            assert t["object_level"] == built.nodes[t["object_id"]]["level"]
            assert t["object_datatype"] is None and t["object_lang"] is None
        assert t["inverse_relation_id"] == built.relations[t["relation_id"]]["inverse_relation_id"]
        assert t["domain"] == built.manifest["domain"]


@pytest.mark.parametrize("kg", [kg for kg in ALL_BUILDS if kg != "iso3166"])
def test_rdf_builds_hold_named_nodes_only_never_blank_nodes(kg: str, request: pytest.FixtureRequest) -> None:
    """Blank nodes (OWL restrictions, lists) would surface as bare generated ids; every node must be an absolute IRI
    and every fact's subject a node."""
    built: Built = request.getfixturevalue(kg)
    assert all(ABSOLUTE_IRI.match(node) for node in built.nodes)
    assert all(t["subject_id"] in built.nodes for t in built.triples)
    assert all(t["object_id"] in built.nodes for t in built.triples if not t["object_is_literal"])


@pytest.mark.parametrize("kg", ALL_BUILDS)
def test_declared_inverses_are_symmetric(kg: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(kg)
    for relation, row in built.relations.items():
        inverse = row["inverse_relation_id"]
        if inverse in built.relations:
            assert built.relations[inverse]["inverse_relation_id"] == relation


# -- pizza.owl (RDF/XML) -----------------------------------------------------------------------------------------------

def test_pizza_figures(pizza: Built) -> None:
    """102 classes and individuals; the facts are the 183 subClassOf and 5 rdf:type edges between named classes
    (hasTopping and the other properties only appear inside OWL restrictions, which are machinery)."""
    assert pizza.counts == {
        "statements_read": 3053, "nodes": 102, "facts": 188, "relations": 2,
        "nodes_per_level": {"root": 2, "intermediate": 30, "leaf": 70},
        "hierarchy_edges": 188, "max_depth": 5, "longest_chain": 6, "nodes_without_label": 6,
    }
    assert pizza.depth_histogram() == {0: 2, 1: 6, 2: 22, 3: 43, 4: 23, 5: 6}
    assert {rel: row["fact_count"] for rel, row in pizza.relations.items()} == {RDFS_SUBCLASS_OF: 183, RDF_TYPE: 5}
    assert {row["label"] for row in pizza.relations.values()} == {"subclass of", "instance of"}
    assert pizza.manifest["hierarchy"] == {"method": "edges", "cycles": [], "edges_dropped_to_break_cycles": 0}
    assert pizza.manifest["warnings"] == []
    assert pizza.manifest["inputs"][0]["format"] == "rdfxml"


def test_pizza_roots_are_domain_concept_and_value_partition(pizza: Built) -> None:
    children = pizza.children()
    assert pizza.roots() == [PIZZA + "DomainConcept", PIZZA + "ValuePartition"]
    assert children[PIZZA + "DomainConcept"] == [PIZZA + c for c in
                                                 ("Country", "IceCream", "Pizza", "PizzaBase", "PizzaTopping")]
    assert children[PIZZA + "ValuePartition"] == [PIZZA + "Spiciness"]
    assert children[PIZZA + "Spiciness"] == [PIZZA + "Hot", PIZZA + "Medium", PIZZA + "Mild"]
    assert all(pizza.nodes[PIZZA + c]["branch_id"] == PIZZA + c for c in ("Country", "Pizza", "Spiciness"))


def test_pizza_leaf_has_its_shortest_depth_and_the_branch_of_its_child_of_root_ancestor(pizza: Built) -> None:
    red_onion = pizza.nodes[PIZZA + "RedOnionTopping"]
    assert (red_onion["level"], red_onion["depth"], red_onion["parent_ids"], red_onion["branch_id"]) == (
        "leaf", 5, [PIZZA + "OnionTopping"], PIZZA + "PizzaTopping")
    # The longest chain ends at HotGreenPepperTopping, six edges below DomainConcept through GreenPepperTopping;
    # its depth is 3, through SpicyTopping: depth is the shortest path, the chain the longest.
    hot_green = pizza.nodes[PIZZA + "HotGreenPepperTopping"]
    assert hot_green["parent_ids"] == [PIZZA + "GreenPepperTopping", PIZZA + "SpicyTopping"]
    assert (hot_green["depth"], pizza.nodes[PIZZA + "GreenPepperTopping"]["depth"]) == (3, 5)


def test_pizza_keeps_every_parent_of_a_class_with_several(pizza: Built) -> None:
    american_hot = pizza.nodes[PIZZA + "AmericanHot"]
    assert american_hot["parent_ids"] == [PIZZA + p for p in ("CheeseyPizza", "InterestingPizza", "MeatyPizza",
                                                               "NamedPizza", "SpicyPizza", "SpicyPizzaEquivalent")]
    assert (american_hot["depth"], american_hot["branch_id"]) == (3, PIZZA + "Pizza")
    cheesy_vegetable = pizza.nodes[PIZZA + "CheeseyVegetableTopping"]
    assert cheesy_vegetable["parent_ids"] == [PIZZA + "CheeseTopping", PIZZA + "VegetableTopping"]
    assert {(PIZZA + "AmericanHot", PIZZA + p) for p in ("MeatyPizza", "SpicyPizza")} <= pizza.pairs(RDFS_SUBCLASS_OF)
    assert sum(len(row["parent_ids"]) > 1 for row in pizza.nodes.values()) == 29


def test_pizza_individuals_are_instances_of_their_class(pizza: Built) -> None:
    countries = ["America", "England", "France", "Germany", "Italy"]
    assert pizza.pairs(RDF_TYPE) == {(PIZZA + c, PIZZA + "Country") for c in countries}
    america = pizza.nodes[PIZZA + "America"]
    assert (america["level"], america["depth"], america["types"], america["branch_id"]) == (
        "leaf", 2, [PIZZA + "Country"], PIZZA + "Country")


def test_pizza_ontology_header_and_properties_are_not_entities(pizza: Built) -> None:
    header = PIZZA.rstrip("#")
    mentioned = {t["subject_id"] for t in pizza.triples} | {t["object_id"] for t in pizza.triples}
    assert header not in pizza.nodes and header not in mentioned
    assert "http://protege.stanford.edu/plugins/owl/protege" not in pizza.nodes  # the header's owl:imports
    assert all(PIZZA + p not in pizza.nodes for p in ("hasTopping", "hasBase", "hasSpiciness", "isToppingOf"))
    assert all(node.startswith(PIZZA) for node in pizza.nodes)


def test_pizza_labels_are_portuguese_under_either_language_as_pizza_has_no_english_labels(pizza: Built,
                                                                                           pizza_pt: Built) -> None:
    """pizza.owl labels 95 classes in Portuguese and only Pizza in English (xml:lang="en" is on comments): with
    `--lang en` the Portuguese label is the fallback, so both builds name every node alike."""
    assert pizza.label(PIZZA + "Country") == pizza_pt.label(PIZZA + "Country") == "Pais"
    assert pizza.label(PIZZA + "FishTopping") == pizza_pt.label(PIZZA + "FishTopping") == "CoberturaDePeixe"
    assert pizza.label(PIZZA + "Pizza") == pizza_pt.label(PIZZA + "Pizza") == "Pizza"  # "Pizza"@en and "Pizza"@pt
    assert {n: r["label"] for n, r in pizza.nodes.items()} == {n: r["label"] for n, r in pizza_pt.nodes.items()}
    # Six nodes have no label at all and take their IRI's name.
    assert pizza.label(PIZZA + "DomainConcept") == "Domain Concept"
    assert pizza.label(PIZZA + "America") == "America"


def test_pizza_labels_are_trimmed(pizza: Built) -> None:
    """pizza.owl labels GoatsCheeseTopping "CoberturaDeQueijoDeCabra  " with two trailing spaces."""
    assert pizza.label(PIZZA + "GoatsCheeseTopping") == "CoberturaDeQueijoDeCabra"
    assert all(row["label"] == " ".join(row["label"].split()) for row in pizza.nodes.values())


def test_pizza_has_no_aliases(pizza: Built) -> None:
    """No alias predicates in pizza.owl, and Pizza's equal English and Portuguese labels are not its own alias."""
    assert all(row["aliases"] == [] for row in pizza.nodes.values())


def test_an_english_label_merged_into_pizza_is_chosen_by_language_and_the_other_becomes_an_alias(
        kg_sources: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "pizza-en.ttl"
    overlay.write_text(f'<{PIZZA}Country> <http://www.w3.org/2000/01/rdf-schema#label> "Country"@en .\n')
    country = {}
    for lang in ("en", "pt", "en,pt"):
        built = build(tmp_path / lang, "--kg", kg_sources / PIZZA_OWL, "--kg", overlay, "--lang", lang)
        country[lang] = (built.label(PIZZA + "Country"), built.nodes[PIZZA + "Country"]["aliases"])
    assert country == {"en": ("Country", []), "pt": ("Pais", []), "en,pt": ("Country", ["Pais"])}


# -- schema.org sdo.json-ld (JSON-LD) ----------------------------------------------------------------------------------

def test_schema_org_figures(schema_org: Built) -> None:
    assert schema_org.counts == {
        "statements_read": 16006, "nodes": 1334, "facts": 1977, "relations": 3,
        "nodes_per_level": {"root": 2, "intermediate": 238, "leaf": 1094},
        "hierarchy_edges": 1393, "max_depth": 5, "longest_chain": 5, "nodes_without_label": 5,
    }
    assert schema_org.depth_histogram() == {0: 2, 1: 17, 2: 233, 3: 402, 4: 425, 5: 250, None: 5}
    assert {rel: row["fact_count"] for rel, row in schema_org.relations.items()} == {
        RDFS_SUBCLASS_OF: 943, RDF_TYPE: 450, SDO + "isPartOf": 584}
    assert schema_org.relations[SDO + "isPartOf"]["inverse_relation_id"] == SDO + "hasPart"  # schema:inverseOf
    assert schema_org.manifest["inputs"][0]["format"] == "jsonld"


def test_schema_org_roots_are_thing_and_data_type(schema_org: Built) -> None:
    """schema:DataType's only superclass is rdfs:Class (machinery), so the data types form a second tree, their
    members (Text, Boolean, …) typed schema:DataType."""
    assert schema_org.roots() == [SDO + "DataType", SDO + "Thing"]
    children = schema_org.children()
    assert children[SDO + "Thing"] == [SDO + c for c in (
        "Action", "BioChemEntity", "CreativeWork", "Event", "Intangible", "MedicalEntity", "Organization", "Person",
        "Place", "Product", "Taxon")]
    assert children[SDO + "DataType"] == [SDO + c for c in ("Boolean", "Date", "DateTime", "Number", "Text", "Time")]
    assert schema_org.nodes[SDO + "Text"]["types"] == [SDO + "DataType"]


def test_schema_org_is_a_dag_of_depth_five_under_thing(schema_org: Built) -> None:
    chain = ["Thing", "Intangible", "Enumeration", "StatusEnumeration", "ActionStatusType", "ActiveActionStatus"]
    for depth, name in enumerate(chain):
        row = schema_org.nodes[SDO + name]
        assert row["depth"] == depth and row["parent_ids"] == ([SDO + chain[depth - 1]] if depth else []), name
    assert schema_org.nodes[SDO + "ActiveActionStatus"]["types"] == [SDO + "ActionStatusType"]  # an instance
    deepest = [row for row in schema_org.nodes.values() if row["depth"] == 5]
    assert Counter(row["branch_id"] for row in deepest) == {
        SDO + "Intangible": 238, SDO + "Action": 4, SDO + "MedicalEntity": 4, SDO + "CreativeWork": 3,
        SDO + "Place": 1}


def test_schema_org_class_under_place_and_organization_keeps_both_parents(schema_org: Built) -> None:
    local_business = schema_org.nodes[SDO + "LocalBusiness"]
    assert local_business["parent_ids"] == [SDO + "Organization", SDO + "Place"]
    # Both parents are children of Thing at depth 1: the branch is the smaller id of the two.
    assert (local_business["level"], local_business["depth"], local_business["branch_id"]) == (
        "intermediate", 2, SDO + "Organization")
    # CivicStructure sits at depth 2 (Thing → Place → CivicStructure): the shallowest parent gives the branch.
    school = schema_org.nodes[SDO + "EducationalOrganization"]
    assert school["parent_ids"] == [SDO + "CivicStructure", SDO + "Organization"]
    assert (school["depth"], school["branch_id"]) == (2, SDO + "Organization")
    assert schema_org.nodes[SDO + "CollegeOrUniversity"]["branch_id"] == SDO + "Organization"
    assert sum(len(row["parent_ids"]) > 1 for row in schema_org.nodes.values()) == 62


def test_schema_org_child_of_a_root_is_its_own_branch(schema_org: Built) -> None:
    for node, row in schema_org.nodes.items():
        if row["depth"] == 1:
            assert row["branch_id"] == node
    assert schema_org.nodes[SDO + "Monday"]["branch_id"] == SDO + "Intangible"  # Thing/Intangible/…/DayOfWeek
    assert schema_org.nodes[SDO + "URL"]["branch_id"] == SDO + "Text"


@pytest.mark.xfail(strict=True, reason=(
    "junk facts: sdo.json-ld files 584 terms under their schema.org section with schema:isPartOf "
    "<https://pending.schema.org> (and health-lifesci, bib, auto, meta): vocabulary metadata like schema:source, "
    "yet kept as facts, and the five section hosts become unlabelled nodes outside the hierarchy. schema:isPartOf "
    "itself is a real relation, so a fix needs a rule that tells section hosts from real parts (treat them as "
    "documents, like owl:Ontology headers); not special-cased yet"))
def test_schema_org_section_membership_is_not_a_fact(schema_org: Built) -> None:
    sections = {f"https://{name}.schema.org" for name in ("pending", "health-lifesci", "bib", "auto", "meta")}
    assert not sections & {t["object_id"] for t in schema_org.triples}
    assert not sections & set(schema_org.nodes)


# -- Brick 1.5 Brick.ttl (Turtle) --------------------------------------------------------------------------------------

def test_brick_figures(brick: Built) -> None:
    assert brick.counts == {
        "statements_read": 62083, "nodes": 2746, "facts": 17619, "relations": 16,
        "nodes_per_level": {"root": 24, "intermediate": 555, "leaf": 2167},
        "hierarchy_edges": 2985, "max_depth": 7, "longest_chain": 10, "nodes_without_label": 389,
    }
    assert brick.depth_histogram() == {0: 24, 1: 183, 2: 751, 3: 390, 4: 500, 5: 372, 6: 226, 7: 51, None: 249}
    counts = {rel: row["fact_count"] for rel, row in brick.relations.items()}
    assert (counts[RDFS_SUBCLASS_OF], counts[RDF_TYPE], counts[SKOS_BROADER], counts[SKOS_NARROWER]) == (
        2093, 722, 170, 144)


def test_brick_roots(brick: Built) -> None:
    """Brick's own Entity, the RealEstateCore, SOSA, QUDT and other classes it subclasses, and the QUDT quantity
    kinds that only appear as the broader concept of a Brick quantity."""
    qudt_kinds = ["ActivityConcentration", "Dimensionless", "DimensionlessRatio", "Frequency", "Irradiance",
                  "Length", "PlaneAngle", "Radiance", "Speed", "Temperature"]
    rec = ["Agent", "Asset", "BuildingElement", "Collection", "Event", "Information", "Space"]
    assert brick.roots() == sorted([
        "dtmi:dtdl:class:Component", "http://data.ashrae.org/standard223#ExternalReference",
        "http://qudt.org/schema/qudt/QuantityKind", *(f"http://qudt.org/vocab/quantitykind/{k}" for k in qudt_kinds),
        "http://www.w3.org/ns/sosa/FeatureOfInterest", "http://www.w3.org/ns/sosa/ObservableProperty",
        BRICK + "Entity", "https://brickschema.org/schema/BrickShape#ValueShape",
        *(f"https://w3id.org/rec#{k}" for k in rec)])


def test_brick_subclass_chain_is_nine_and_skos_broader_makes_the_longest_chain_ten(brick: Built) -> None:
    subclass = nx.DiGraph((parent, child) for child, parent in brick.pairs(RDFS_SUBCLASS_OF))
    assert nx.dag_longest_path_length(subclass) == 9  # Entity → Class → Point → Setpoint → … (fetch.sh's "depth 9")
    setpoint = brick.nodes[BRICK + "Entering_Building_Hot_Water_Temperature_Setpoint"]
    assert (setpoint["depth"], setpoint["branch_id"]) == (6, BRICK + "Point")
    # The 10-edge chain runs Entity → Class → Measurable → Substance, then Fluid (an instance of Substance), then
    # down skos:broader: Liquid → Water → Hot_Water → Heating_Hot_Water → Building_Hot_Water →
    # Entering_Building_Hot_Water.
    assert brick.counts["longest_chain"] == 10
    skos_chain = ["Fluid", "Liquid", "Water", "Hot_Water", "Heating_Hot_Water", "Building_Hot_Water",
                  "Entering_Building_Hot_Water"]
    broader = brick.pairs(SKOS_BROADER)
    for parent, child in zip(skos_chain, skos_chain[1:], strict=False):
        assert (BRICK + child, BRICK + parent) in broader
        assert BRICK + parent in brick.nodes[BRICK + child]["parent_ids"]
    assert (BRICK + "Fluid", BRICK + "Substance") in brick.pairs(RDF_TYPE)
    water = brick.nodes[BRICK + "Water"]
    assert (water["parent_ids"], water["depth"], water["branch_id"]) == (
        [BRICK + "Liquid", BRICK + "Substance"], 2, BRICK + "Substance")


def test_brick_skos_narrower_contributes_the_same_edges_read_parent_to_child(brick: Built) -> None:
    """Brick states each of its 144 skos:narrower links also as skos:broader the other way round: read as parent →
    child, the narrower facts land on the same 144 parent links, which the 170 broader facts include."""
    narrower_links = {(child, parent) for parent, child in brick.pairs(SKOS_NARROWER)}
    assert len(narrower_links) == 144
    assert narrower_links <= brick.pairs(SKOS_BROADER)
    assert all(parent in brick.nodes[child]["parent_ids"] for child, parent in narrower_links)
    assert (BRICK + "Liquid", SKOS_NARROWER, BRICK + "Water") in {
        (t["subject_id"], t["relation_id"], t["object_id"]) for t in brick.triples}


def test_brick_has_no_hierarchy_cycle_once_its_relationship_metaclass_is_read_as_properties(brick: Built) -> None:
    """`brick:Relationship a brick:Relationship` would be a self-loop, but Relationship ⊑ rdf:Property makes it (and
    everything typed with it) a relation, not an entity."""
    assert brick.manifest["hierarchy"] == {"method": "edges", "cycles": [], "edges_dropped_to_break_cycles": 0}
    assert brick.manifest["warnings"] == []


def test_brick_declared_inverses_tag_both_directions(brick: Built) -> None:
    inverses = {rel: row["inverse_relation_id"] for rel, row in brick.relations.items() if row["inverse_relation_id"]}
    assert inverses == {
        BRICK + "hasAssociatedTag": BRICK + "isAssociatedWith", BRICK + "isAssociatedWith": BRICK + "hasAssociatedTag",
        BRICK + "hasTag": BRICK + "isTagOf", BRICK + "isTagOf": BRICK + "hasTag",
        SKOS_BROADER: SKOS_NARROWER, SKOS_NARROWER: SKOS_BROADER}
    has_tag = [t for t in brick.triples if t["relation_id"] == BRICK + "hasTag"]
    assert len(has_tag) == 141 and {t["inverse_relation_id"] for t in has_tag} == {BRICK + "isTagOf"}


def test_brick_deprecation_metadata_is_not_a_fact(brick: Built) -> None:
    """deprecatedInVersion, deprecationMitigationMessage and isReplacedBy say what became of a term, like
    schema:supersededBy; brick:Temperature, stated only to be deprecated, is no entity."""
    deprecation = {BRICK + p for p in ("deprecatedInVersion", "deprecationMitigationMessage", "isReplacedBy")}
    assert not deprecation & set(brick.relations)
    assert BRICK + "Temperature" not in brick.nodes
    assert BRICK + "Ablutions_Room" in brick.nodes  # a deprecated class is still a class


def test_brick_properties_typed_by_a_subclass_of_rdf_property_are_relations_not_entities(brick: Built) -> None:
    assert BRICK + "hasAddress" not in brick.nodes
    assert BRICK + "Relationship" not in brick.nodes
    assert brick.manifest["hierarchy"]["cycles"] == []


# -- GALEN not-galen.n3 (N3, no labels) --------------------------------------------------------------------------------

def test_galen_figures(galen: Built) -> None:
    assert galen.counts == {
        "statements_read": 32304, "nodes": 3086, "facts": 3919, "relations": 1,
        "nodes_per_level": {"root": 2, "intermediate": 898, "leaf": 2186},
        "hierarchy_edges": 3919, "max_depth": 12, "longest_chain": 15, "nodes_without_label": 3086,
    }
    # 1 028 of the subClassOf facts are told superclasses read from equivalent intersections
    assert galen.manifest["facts_per_source"] == {"not-galen.n3": 2891, "not-galen.n3 (owl:equivalentClass)": 1028}
    assert set(galen.relations) == {RDFS_SUBCLASS_OF}
    assert all(node.startswith(GALEN) for node in galen.nodes)
    assert galen.manifest["inputs"][0]["format"] == "n3"


def test_galen_builds_without_labels_and_says_so(galen: Built) -> None:
    assert galen.manifest["warnings"] == [
        "no node has a label (rdfs:label, skos:prefLabel, schema:name, …); names are derived from the IRIs"]


def test_galen_names_come_from_the_iris(galen: Built) -> None:
    assert {name: galen.label(GALEN + name) for name in (
        "AbdominalCavity", "TopCategory", "CTScanner", "Cheyne-StokesRepiration", "VitaminB12", "Anonymous-140",
    )} == {
        "AbdominalCavity": "Abdominal Cavity", "TopCategory": "Top Category", "CTScanner": "CT Scanner",
        "Cheyne-StokesRepiration": "Cheyne-Stokes Repiration", "VitaminB12": "Vitamin B12",
        "Anonymous-140": "Anonymous-140",
    }


def test_galen_longest_chain_is_fifteen_from_top_category(galen: Built) -> None:
    graph = nx.DiGraph((parent, child) for child, parent in galen.pairs(RDFS_SUBCLASS_OF))
    assert galen.counts["longest_chain"] == len(nx.dag_longest_path(graph)) - 1 == 15
    chain = ["TopCategory", "DomainCategory", "GeneralisedStructure", "PhysicalStructure", "SolidStructure",
             "BodyStructure", "PathologicalBodyStructure", "IntrinsicallyPathologicalBodyStructure",
             "NAMEDPathologicalStructure", "AcquiredLesion", "IschaemicLesion", "Infarct", "MyocardialInfarct",
             "AcuteMyocardialInfarction", "Anonymous-219", "AcuteHighLateralWallMyocardialInfarction"]
    subclass_of = galen.pairs(RDFS_SUBCLASS_OF)
    assert all((GALEN + child, GALEN + parent) in subclass_of for parent, child in zip(chain, chain[1:], strict=False))
    assert galen.children()[GALEN + "TopCategory"] == [GALEN + "DomainCategory"]
    # The chain's end is also reachable by a shorter path: depth (shortest) 11, thirteen edges from TopCategory.
    deepest = galen.nodes[GALEN + "AcuteHighLateralWallMyocardialInfarction"]
    assert (deepest["level"], deepest["depth"]) == ("leaf", 11)


def test_galen_roots_are_top_category_and_symbolic_value_type(galen: Built) -> None:
    """With the told superclasses of `owl:equivalentClass [ owl:intersectionOf ( Named … ) ]` definitions, the
    classes defined only by equivalence (Anaemia, Drug, Protégé's `Anonymous-N`, …) sit under their named
    conjuncts, and only TopCategory and the value-type hierarchy remain roots (132 roots without them)."""
    assert galen.roots() == [GALEN + "SymbolicValueType", GALEN + "TopCategory"]


def test_galen_class_defined_by_an_intersection_sits_under_its_named_conjunct(galen: Built) -> None:
    assert galen.nodes[GALEN + "Anaemia"]["parent_ids"] == [GALEN + "ClinicalSituation"]
    assert GALEN + "BodySpace" in galen.nodes[GALEN + "Anonymous-140"]["parent_ids"]
    left_bundle = galen.nodes[GALEN + "LeftBundleBranch"]
    assert left_bundle["parent_ids"] == [GALEN + "Anonymous-70", GALEN + "BundleBranch", GALEN + "ConductionFibres"]
    assert (left_bundle["level"], left_bundle["depth"]) == ("leaf", 10)


# -- pycountry ISO 3166 (converted to our JSON) -----------------------------------------------------------------------

def test_iso3166_figures(iso3166: Built) -> None:
    """1 world root + 249 countries + 5046 subdivisions; facts: 5295 parent links (skos:broader), 5046 subdivision
    types and 249 alpha-3 codes."""
    assert iso3166.counts == {
        "statements_read": 10591, "nodes": 5296, "facts": 10590, "relations": 3,
        "nodes_per_level": {"root": 1, "intermediate": 414, "leaf": 4881},
        "hierarchy_edges": 5295, "max_depth": 4, "longest_chain": 4, "nodes_without_label": 0,
    }
    assert iso3166.depth_histogram() == {0: 1, 1: 249, 2: 3590, 3: 1454, 4: 2}
    assert {rel: (row["label"], row["fact_count"]) for rel, row in iso3166.relations.items()} == {
        SKOS_BROADER: ("has broader concept", 5295), "subdivision type": ("subdivision type", 5046),
        "alpha-3 code": ("alpha-3 code", 249)}
    assert iso3166.manifest["inputs"][0]["format"] == "json"


def test_iso3166_countries_are_the_branches_under_the_world_root(iso3166: Built) -> None:
    assert iso3166.roots() == ["world"]
    countries = iso3166.children()["world"]
    assert len(countries) == 249
    assert all(iso3166.nodes[c]["depth"] == 1 and iso3166.nodes[c]["branch_id"] == c for c in countries)
    azerbaijan = iso3166.nodes["AZ"]
    assert (azerbaijan["label"], azerbaijan["aliases"], azerbaijan["level"]) == (
        "Azerbaijan", ["Republic of Azerbaijan"], "intermediate")
    antarctica = iso3166.nodes["AQ"]  # no subdivisions
    assert (antarctica["label"], antarctica["level"], antarctica["depth"]) == ("Antarctica", "leaf", 1)


def test_iso3166_nested_subdivisions_take_their_depth_and_their_country_as_branch(iso3166: Built) -> None:
    babek = iso3166.nodes["AZ-BAB"]  # a rayon of the Nakhchivan autonomous republic
    assert (babek["label"], babek["level"], babek["depth"], babek["parent_ids"], babek["branch_id"]) == (
        "Babək", "leaf", 3, ["AZ-NX"], "AZ")
    assert (iso3166.nodes["AZ-NX"]["depth"], iso3166.nodes["AZ-NX"]["parent_ids"]) == (2, ["AZ"])
    # The deepest: Bas-Rhin and Haut-Rhin under the European Collectivity of Alsace, in Grand Est, in France.
    deepest = sorted(n for n, row in iso3166.nodes.items() if row["depth"] == 4)
    assert deepest == ["FR-67", "FR-68"]
    assert [iso3166.nodes[n]["parent_ids"] for n in ("FR-67", "FR-6AE", "FR-GES")] == [["FR-6AE"], ["FR-GES"], ["FR"]]
    assert iso3166.nodes["FR-67"]["branch_id"] == "FR"


def test_iso3166_subdivision_type_is_a_literal_fact(iso3166: Built) -> None:
    facts = {(t["subject_id"], t["relation_id"]): t for t in iso3166.triples}
    rayon = facts[("AZ-BAB", "subdivision type")]
    assert (rayon["object_id"], rayon["object_is_literal"], rayon["object_datatype"], rayon["object_level"]) == (
        "Rayon", True, XSD_STRING, None)
    assert (rayon["subject_level"], rayon["branch_id"]) == ("leaf", "AZ")
    assert facts[("AZ-BAB", SKOS_BROADER)]["object_id"] == "AZ-NX"
    assert facts[("AZ", "alpha-3 code")]["object_id"] == "AZE"


# -- owlready2: OWL/XML and malformed traps, Dublin Core ---------------------------------------------------------------

CliRun = Callable[..., Any]


@pytest.mark.parametrize("name", ["pizza_onto.owl", "crepes_et_galettes.owl"])
def test_owl_xml_is_refused_with_how_to_convert_it(name: str, kg_sources: Path, tmp_path: Path,
                                                   run_ks_build: CliRun) -> None:
    path = kg_sources / OWLREADY2 / "test" / name
    result = run_ks_build("--kg", path, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith(f"ks-build: error: {path}: OWL/XML syntax is not supported; convert it to RDF/XML "
                                 "or Turtle first, e.g. `robot convert --input FILE --output FILE.ttl`")
    assert result.err.count("\n") == 1 and result.out == ""
    assert not (tmp_path / "out").exists()


def test_malformed_rdfxml_is_refused_naming_the_file(kg_sources: Path, tmp_path: Path, run_ks_build: CliRun) -> None:
    """test_rdfxml_bug.owl leaves `<rdfs:subClassOf` unclosed at line 208: not well-formed XML."""
    path = kg_sources / OWLREADY2 / "test" / "test_rdfxml_bug.owl"
    result = run_ks_build("--kg", path, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith(f"ks-build: error: {path}") and "invalid RDF/XML: " in result.err
    assert result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_malformed_rdfxml_error_names_the_line(kg_sources: Path, tmp_path: Path, run_ks_build: CliRun) -> None:
    path = kg_sources / OWLREADY2 / "test" / "test_rdfxml_bug.owl"
    result = run_ks_build("--kg", path, "--out", tmp_path / "out")
    assert re.match(rf"ks-build: error: {re.escape(str(path))}:20[89]:\d+: invalid RDF/XML", result.err)


def test_dublin_core_elements_declare_only_properties_so_there_is_nothing_to_ask(
        kg_sources: Path, tmp_path: Path, run_ks_build: CliRun) -> None:
    """dc.owl is the header and the 15 DC elements, all annotation properties: no entity, no fact."""
    path = kg_sources / OWLREADY2 / "ontos" / "dc.owl"
    result = run_ks_build("--kg", path, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith(f"ks-build: error: {path}: the graph has no usable facts (69 statements read, ")
    assert not (tmp_path / "out").exists()


def test_dublin_core_terms_en_us_labels_serve_lang_en(dcterms: Built, tmp_path: Path, kg_sources: Path) -> None:
    """dcterms.owl labels everything in en-us: `--lang en` takes them over the IRI's name (same primary language
    ranks before untagged), and `--lang en-us` gives the same names."""
    assert language_rank("en-us", ["en"]) == 1
    assert language_rank("en", ["en"]) < language_rank("en-US", ["en"]) < language_rank("", ["en"])
    assert dcterms.label(DCTERMS + "LocationPeriodOrJurisdiction") == "Location, Period, or Jurisdiction"
    assert dcterms.label(DCTERMS + "MESH") == "MeSH"
    assert dcterms.label(DCTERMS + "DCMIType") == "DCMI Type Vocabulary"
    # Only dcam:VocabularyEncodingScheme, defined in another file, has no label here.
    assert dcterms.counts["nodes_without_label"] == 1
    assert dcterms.label("http://purl.org/dc/dcam/VocabularyEncodingScheme") == "Vocabulary Encoding Scheme"
    en_us = build(tmp_path / "en-us", "--kg", kg_sources / OWLREADY2 / "ontos" / "dcterms.owl", "--lang", "en-us")
    assert {n: r["label"] for n, r in en_us.nodes.items()} == {n: r["label"] for n, r in dcterms.nodes.items()}


def test_dublin_core_terms_figures(dcterms: Built) -> None:
    """23 classes and vocabulary encoding schemes; the DC terms themselves are properties, the header a document."""
    assert dcterms.counts == {
        "statements_read": 476, "nodes": 23, "facts": 18, "relations": 2,
        "nodes_per_level": {"root": 5, "intermediate": 1, "leaf": 17},
        "hierarchy_edges": 18, "max_depth": 2, "longest_chain": 2, "nodes_without_label": 1,
    }
    assert DCTERMS not in dcterms.nodes and DCTERMS + "title" not in dcterms.nodes
    assert dcterms.nodes[DCTERMS + "FileFormat"]["parent_ids"] == [DCTERMS + "MediaType"]
    assert dcterms.nodes[DCTERMS + "FileFormat"]["branch_id"] == DCTERMS + "MediaType"


def test_every_owlready2_ontology_builds_or_is_refused_in_one_line(kg_sources: Path, tmp_path: Path,
                                                                   run_ks_build: CliRun) -> None:
    """All 51 .owl files of owlready2's tests and ontologies: 17 build (test_annot_on_bn.owl only through the told
    superclasses of C ≡ A ⊓ B), the rest exit 2 with one line saying why."""
    root = kg_sources / OWLREADY2
    outcomes: dict[str, list[str]] = {}
    for path in sorted([*(root / "test").glob("*.owl"), *(root / "ontos").glob("*.owl")]):
        result = run_ks_build("--kg", path, "--out", tmp_path / path.name)
        if result.code == 0:
            outcome = "built"
        else:
            assert result.code == 2 and result.err.count("\n") == 1, (path.name, result.err)
            outcome = ("owl/xml" if "OWL/XML syntax is not supported" in result.err
                       else "no facts" if "the graph has no usable facts" in result.err
                       else "invalid" if "invalid RDF/XML" in result.err else result.err)
        outcomes.setdefault(outcome, []).append(path.name)
    assert outcomes["built"] == [
        "dcmitype.owl", "dcterms.owl",  # ontos/ sorts before test/
        "B.owl", "animals.owl", "onto2.owl", "test.owl", "test_annot_on_bn.owl", "test_datatype.owl",
        "test_datatype_one_of.owl",
        "test_datetime.owl", "test_gca.owl", "test_mixed.owl", "test_ns.owl", "test_ntriples.owl",
        "test_reasoning.owl", "test_rule.owl", "test_url.owl"]
    assert outcomes["owl/xml"] == [
        "crepes_et_galettes.owl", "pizza_onto.owl", "test_annot_literal.owl", "test_datatype_one_of_owlxml.owl",
        "test_ontoslash2_owlxml.owl", "test_ontoslash3_imported_owlxml.owl", "test_ontoslash3_owlxml.owl",
        "test_ontoslash_owlxml.owl", "test_owlxml.owl", "test_owlxml_2.owl", "test_owlxml_bug.owl",
        "test_propchain_owlxml.owl"]
    assert outcomes["invalid"] == ["test_rdfxml_bug.owl"]
    assert len(outcomes["no facts"]) == 21  # dc.owl, A.owl, C.owl, …
    assert set(outcomes) == {"built", "owl/xml", "invalid", "no facts"}
