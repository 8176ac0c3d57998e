"""The hierarchy rule (DESIGN.md): levels, depth, parents, branches, cycles, the degree fallback, determinism.

Unit tests drive `compute_hierarchy` with named nodes; end-to-end tests build small Turtle / N-Triples KGs with the
CLI and read nodes.parquet and manifest.json back.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow.parquet as pq
import pyoxigraph as ox
import pytest

from knowledgesmith.builder.hierarchy import INTERMEDIATE, LEAF, ROOT, Hierarchy, compute_hierarchy

REPO = Path(__file__).resolve().parents[1]
SAMPLE_KG = REPO / "kg" / "sample.ttl"
EX = "http://example.org/kg/"


# -- unit: compute_hierarchy ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tag:
    level: str
    depth: int | None
    parents: tuple[str, ...]
    branch: str | None


def tag(level: str, depth: int | None, parents: Sequence[str], branch: str | None) -> Tag:
    return Tag(level, depth, tuple(parents), branch)


def hierarchy(edges: Sequence[tuple[str, str]], extra_nodes: Sequence[str] = (),
              facts: Sequence[tuple[str, str]] = ()) -> tuple[dict[str, Tag], Hierarchy, list[str]]:
    """Run compute_hierarchy on child→parent `edges` between named nodes, ordered by id as the builder does."""
    names = sorted({n for e in (*edges, *facts) for n in e} | set(extra_nodes))
    index = {name: i for i, name in enumerate(names)}
    result = compute_hierarchy(len(names), [(index[c], index[p]) for c, p in edges], names,
                               [(index[a], index[b]) for a, b in facts])
    tags = {
        name: Tag(result.level[i], result.depth[i], tuple(names[p] for p in result.parents[i]),
                  names[result.branch[i]] if result.branch[i] is not None else None)
        for i, name in enumerate(names)
    }
    return tags, result, names


def test_a_root_is_its_own_branch_and_its_children_start_their_own() -> None:
    tags, result, _ = hierarchy([("A", "R"), ("B", "R"), ("A1", "A"), ("A2", "A"), ("B1", "B")])
    assert result.method == "edges"
    assert tags == {
        "R": tag(ROOT, 0, [], "R"),
        "A": tag(INTERMEDIATE, 1, ["R"], "A"),
        "B": tag(INTERMEDIATE, 1, ["R"], "B"),
        "A1": tag(LEAF, 2, ["A"], "A"),
        "A2": tag(LEAF, 2, ["A"], "A"),
        "B1": tag(LEAF, 2, ["B"], "B"),
    }
    assert result.cycles == []
    assert result.dropped_edges == 0
    assert result.longest_chain == 2


def test_three_node_cycle_is_reported_and_broken_keeping_edges_from_smaller_to_larger_id() -> None:
    tags, result, names = hierarchy([("A", "B"), ("B", "C"), ("C", "A")])  # A ⊂ B ⊂ C ⊂ A
    assert [[names[i] for i in cycle] for cycle in result.cycles] == [["A", "B", "C"]]
    assert result.dropped_edges == 1  # C ⊂ A goes
    assert tags == {
        "C": tag(ROOT, 0, [], "C"),
        "B": tag(INTERMEDIATE, 1, ["C"], "B"),
        "A": tag(LEAF, 2, ["B"], "B"),
    }


def test_cycle_breaking_does_not_depend_on_the_order_of_the_edges() -> None:
    edges = [("A", "B"), ("B", "C"), ("C", "A"), ("D", "A"), ("C", "R")]
    outcomes = set()
    for order in itertools.permutations(edges):
        tags, result, _ = hierarchy(list(order))
        outcomes.add((tuple(sorted(tags.items())), tuple(map(tuple, result.cycles)), result.dropped_edges))
    assert len(outcomes) == 1


def test_a_cycle_hanging_below_a_root_keeps_the_root() -> None:
    tags, result, names = hierarchy([("A", "B"), ("B", "C"), ("C", "A"), ("C", "R"), ("D", "A")])
    assert [[names[i] for i in cycle] for cycle in result.cycles] == [["A", "B", "C"]]
    assert tags == {
        "R": tag(ROOT, 0, [], "R"),
        "C": tag(INTERMEDIATE, 1, ["R"], "C"),
        "B": tag(INTERMEDIATE, 2, ["C"], "C"),
        "A": tag(INTERMEDIATE, 3, ["B"], "C"),
        "D": tag(LEAF, 4, ["A"], "C"),
    }


def test_a_self_loop_is_reported_and_dropped() -> None:
    tags, result, names = hierarchy([("A", "A"), ("A", "B")])
    assert [[names[i] for i in cycle] for cycle in result.cycles] == [["A"]]
    assert result.dropped_edges == 1
    assert tags == {"A": tag(LEAF, 1, ["B"], "A"), "B": tag(ROOT, 0, [], "B")}


def test_a_lone_self_loop_leaves_an_isolated_node() -> None:
    tags, result, names = hierarchy([("A", "A"), ("B", "C")])
    assert [[names[i] for i in cycle] for cycle in result.cycles] == [["A"]]
    assert tags["A"] == tag(LEAF, None, [], None)


def test_several_cycles_are_each_reported_sorted_by_their_first_node() -> None:
    edges = [("X", "Y"), ("Y", "X"), ("B", "C"), ("C", "D"), ("D", "B"), ("M", "M"), ("D", "R")]
    _, result, names = hierarchy(edges)
    assert [[names[i] for i in cycle] for cycle in result.cycles] == [["B", "C", "D"], ["M"], ["X", "Y"]]
    assert result.dropped_edges == 3


def test_a_long_cycle_with_chords_terminates_and_leaves_an_acyclic_hierarchy() -> None:
    n = 3000
    names = [f"n{i:05d}" for i in range(n)]
    edges = [(names[i], names[(i + 1) % n]) for i in range(n)]  # one ring through every node
    edges += [(names[i], names[(i + 7) % n]) for i in range(0, n, 5)]  # and chords inside it
    edges += [(names[i], names[i]) for i in range(0, n, 100)]  # and self-loops
    tags, result, _ = hierarchy(edges)
    assert sorted(map(len, result.cycles)) == [1] * (n // 100) + [n]
    assert [0] in result.cycles and list(range(n)) in result.cycles  # n00000 is in a self-loop and in the ring
    graph = nx.DiGraph([(child, parent) for child, t in tags.items() for parent in t.parents])
    assert nx.is_directed_acyclic_graph(graph)
    assert [name for name, t in tags.items() if t.level == ROOT] == [names[-1]]
    assert all(t.depth is not None for t in tags.values())


def test_multiple_parents_are_all_kept_sorted_by_id() -> None:
    tags, _, _ = hierarchy([("child", "zeta"), ("child", "alpha"), ("child", "mu"), ("child", "alpha")])
    assert tags["child"].parents == ("alpha", "mu", "zeta")
    assert {n: t.level for n, t in tags.items()} == {"alpha": ROOT, "mu": ROOT, "zeta": ROOT, "child": LEAF}


def test_depth_is_the_shortest_distance_from_any_root() -> None:
    # C sits three levels below R through A and B, but is also a direct child of R and of the root S.
    tags, result, _ = hierarchy([("A", "R"), ("B", "A"), ("C", "B"), ("C", "R"), ("D", "C"), ("E", "S"), ("D", "E")])
    assert {n: t.depth for n, t in tags.items()} == {"R": 0, "S": 0, "A": 1, "B": 2, "C": 1, "E": 1, "D": 2}
    assert result.longest_chain == 4  # R → A → B → C → D


def test_branch_of_a_deeper_node_comes_from_its_shallowest_parent() -> None:
    edges = [
        ("A", "R"), ("B", "R"),
        ("C", "B"), ("C", "A"),  # two parents at depth 1: the smallest branch id, A
        ("D", "C"), ("D", "B"),  # parents at depth 2 (C) and 1 (B): the shallowest, B
        ("E", "D"),  # inherits D's branch
    ]
    tags, _, _ = hierarchy(edges)
    assert {n: (t.depth, t.branch) for n, t in tags.items()} == {
        "R": (0, "R"), "A": (1, "A"), "B": (1, "B"), "C": (2, "A"), "D": (2, "B"), "E": (3, "B")}


def test_branch_ties_between_parents_go_to_the_smallest_branch_id_not_the_smallest_parent_id() -> None:
    edges = [("Z", "R"), ("A", "R"), ("P", "Z"), ("Q", "A"), ("N", "P"), ("N", "Q")]
    tags, _, _ = hierarchy(edges)
    assert tags["P"].branch == "Z"
    assert tags["Q"].branch == "A"
    assert tags["N"] == tag(LEAF, 3, ["P", "Q"], "A")


def test_a_child_of_two_roots_is_its_own_branch() -> None:
    tags, _, _ = hierarchy([("C", "R1"), ("C", "R2"), ("D", "C")])
    assert tags == {
        "R1": tag(ROOT, 0, [], "R1"), "R2": tag(ROOT, 0, [], "R2"),
        "C": tag(INTERMEDIATE, 1, ["R1", "R2"], "C"), "D": tag(LEAF, 2, ["C"], "C"),
    }


def test_an_isolated_node_is_a_leaf_with_no_depth_and_no_branch() -> None:
    tags, _, _ = hierarchy([("A", "R")], extra_nodes=["Lonely"])
    assert tags["Lonely"] == tag(LEAF, None, [], None)
    assert tags["R"] == tag(ROOT, 0, [], "R")


def test_no_hierarchy_edges_fall_back_to_degree_centrality() -> None:
    # Two hubs M1 and M2 (degree 9) joined through H, each with eight spokes.
    facts = [("H", "M1"), ("H", "M2")] + [("M1", f"a{i}") for i in range(8)] + [(f"b{i}", "M2") for i in range(8)]
    tags, result, _ = hierarchy([], facts=facts)
    assert result.method == "degree"
    centrality = nx.degree_centrality(nx.Graph(facts))
    top = max(centrality.values())
    assert sorted(n for n, c in centrality.items() if c == top) == ["M1", "M2"]
    # 19 nodes: one root (the most central, ties by id), round(19 × 9 %) = 2 intermediate, the rest leaves.
    assert [n for n, t in tags.items() if t.level == ROOT] == ["M1"]
    assert sorted(n for n, t in tags.items() if t.level == INTERMEDIATE) == ["H", "M2"]
    assert sum(t.level == LEAF for t in tags.values()) == 16
    # depth is the distance from the root in the fact graph, parents the neighbours one hop closer.
    assert {n: t.depth for n, t in tags.items()} == nx.single_source_shortest_path_length(nx.Graph(facts), "M1")
    assert tags["M2"] == tag(INTERMEDIATE, 2, ["H"], "H")
    assert tags["b3"] == tag(LEAF, 3, ["M2"], "H")
    assert tags["a0"] == tag(LEAF, 1, ["M1"], "a0")


def test_no_edges_and_no_facts_still_tags_every_node() -> None:
    tags, result, _ = hierarchy([], extra_nodes=["x", "y"])
    assert result.method == "degree"
    assert tags == {"x": tag(ROOT, 0, [], "x"), "y": tag(LEAF, None, [], None)}


# -- end to end --------------------------------------------------------------------------------------------------------

PREFIXES = """\
@prefix ex:   <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
"""


@dataclass
class Built:
    out: Path
    err: str
    nodes: dict[str, dict[str, Any]]
    manifest: dict[str, Any]


@pytest.fixture
def build(run_ks_build: Callable[..., Any], tmp_path: Path) -> Callable[..., Built]:
    counter = iter(range(1000))

    def run(kg: Path, *args: str) -> Built:
        out = tmp_path / f"out{next(counter)}"
        result = run_ks_build("--kg", kg, "--out", out, *args)
        assert result.code == 0, result.err
        nodes = {n["node_id"].removeprefix(EX): n for n in pq.read_table(out / "nodes.parquet").to_pylist()}
        return Built(out, result.err, nodes, json.loads((out / "manifest.json").read_text()))

    return run


def _turtle(tmp_path: Path, body: str, name: str = "kg.ttl") -> Path:
    path = tmp_path / name
    path.write_text(PREFIXES + body)
    return path


def test_build_reports_a_cycle_in_the_manifest_and_as_a_warning(build: Callable[..., Built], tmp_path: Path) -> None:
    kg = _turtle(tmp_path, "ex:A rdfs:subClassOf ex:B . ex:B rdfs:subClassOf ex:C . ex:C rdfs:subClassOf ex:A .\n"
                           "ex:A ex:discoveredBy ex:Curie .\n")
    result = build(kg)
    cycle = [EX + "A", EX + "B", EX + "C"]
    assert result.manifest["hierarchy"] == {"method": "edges", "cycles": [cycle],
                                            "edges_dropped_to_break_cycles": 1}
    warning = f"hierarchy cycle broken: {', '.join(cycle)}"
    assert warning in result.manifest["warnings"]
    assert f"warning: {warning}\n" in result.err
    assert {n: (t["level"], t["depth"], t["parent_ids"], t["branch_id"]) for n, t in result.nodes.items()} == {
        "A": (LEAF, 2, [EX + "B"], EX + "B"),
        "B": (INTERMEDIATE, 1, [EX + "C"], EX + "B"),
        "C": (ROOT, 0, [], EX + "C"),
        "Curie": (LEAF, None, [], None),
    }


def test_cycle_breaking_is_the_same_whatever_the_statement_order(build: Callable[..., Built],
                                                                 tmp_path: Path) -> None:
    statements = [f"<{EX}{c}> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <{EX}{p}> .\n"
                  for c, p in [("A", "B"), ("B", "C"), ("C", "A"), ("D", "C"), ("C", "Top")]]
    reference: bytes | None = None
    for i, order in enumerate(itertools.permutations(statements)):
        folder = tmp_path / f"order{i}"
        folder.mkdir()
        (folder / "kg.nt").write_text("".join(order))
        result = build(folder / "kg.nt", "--quiet")
        nodes_bytes = (result.out / "nodes.parquet").read_bytes()
        reference = reference or nodes_bytes
        assert nodes_bytes == reference
        assert result.manifest["hierarchy"]["cycles"] == [[EX + "A", EX + "B", EX + "C"]]
        if i >= 24:
            break


def test_build_reports_a_self_loop(build: Callable[..., Built], tmp_path: Path) -> None:
    result = build(_turtle(tmp_path, "ex:A rdfs:subClassOf ex:A , ex:B .\n"), "--quiet")
    assert result.manifest["hierarchy"]["cycles"] == [[EX + "A"]]
    assert f"hierarchy cycle broken: {EX}A" in result.manifest["warnings"]
    assert (result.nodes["A"]["level"], result.nodes["A"]["parent_ids"]) == (LEAF, [EX + "B"])
    assert result.nodes["B"]["level"] == ROOT


def test_build_keeps_multiple_parents_sorted_and_uses_every_hierarchy_predicate(build: Callable[..., Built],
                                                                                tmp_path: Path) -> None:
    kg = _turtle(tmp_path, """\
ex:Science  skos:narrower ex:Physics .
ex:Chemistry skos:broader ex:Science .
ex:PhysicalChemistry rdfs:subClassOf ex:Physics , ex:Chemistry .
ex:Marie a ex:PhysicalChemistry , ex:Chemistry .
""")
    result = build(kg, "--quiet")
    assert {n: (t["level"], t["depth"], t["parent_ids"], t["branch_id"]) for n, t in result.nodes.items()} == {
        "Science": (ROOT, 0, [], EX + "Science"),
        "Physics": (INTERMEDIATE, 1, [EX + "Science"], EX + "Physics"),
        "Chemistry": (INTERMEDIATE, 1, [EX + "Science"], EX + "Chemistry"),
        "PhysicalChemistry": (INTERMEDIATE, 2, [EX + "Chemistry", EX + "Physics"], EX + "Chemistry"),
        "Marie": (LEAF, 2, [EX + "Chemistry", EX + "PhysicalChemistry"], EX + "Chemistry"),
    }
    assert result.nodes["Marie"]["types"] == [EX + "Chemistry", EX + "PhysicalChemistry"]
    assert result.manifest["counts"]["max_depth"] == 2
    assert result.manifest["counts"]["longest_chain"] == 3


def test_a_kg_without_hierarchy_builds_with_levels_from_degree_centrality(build: Callable[..., Built],
                                                                          tmp_path: Path) -> None:
    kg = _turtle(tmp_path, "ex:Paris ex:capitalOf ex:France . ex:Lyon ex:locatedIn ex:France .\n"
                           "ex:France ex:memberOf ex:EU . ex:Nice ex:locatedIn ex:France .\n")
    result = build(kg)
    assert result.manifest["hierarchy"]["method"] == "degree"
    warning = next(w for w in result.manifest["warnings"] if "no hierarchy edges" in w)
    assert "degree centrality" in warning
    assert f"warning: {warning}\n" in result.err
    assert {n: (t["level"], t["depth"], t["parent_ids"]) for n, t in result.nodes.items()} == {
        "France": (ROOT, 0, []),
        "EU": (LEAF, 1, [EX + "France"]),
        "Lyon": (LEAF, 1, [EX + "France"]),
        "Nice": (LEAF, 1, [EX + "France"]),
        "Paris": (LEAF, 1, [EX + "France"]),
    }


OUTPUT_FILES = ("nodes.parquet", "triples.parquet", "relations.parquet", "manifest.json")


def test_building_the_same_input_twice_gives_byte_identical_outputs(build: Callable[..., Built]) -> None:
    first = build(SAMPLE_KG, "--quiet")
    second = build(SAMPLE_KG, "--quiet")
    for name in OUTPUT_FILES:
        assert (first.out / name).read_bytes() == (second.out / name).read_bytes(), name


def test_outputs_do_not_depend_on_python_hash_randomization(tmp_path: Path) -> None:
    """Two processes with different string hash seeds (set and dict order of strings) write the same bytes."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-m", "knowledgesmith.builder.cli", "--kg", str(SAMPLE_KG), "--out",
                               str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outs.append(out)
    for name in OUTPUT_FILES:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_shuffled_ntriples_give_byte_identical_nodes_and_triples(build: Callable[..., Built], tmp_path: Path) -> None:
    lines = ox.serialize(ox.parse(path=SAMPLE_KG, format=ox.RdfFormat.TURTLE),
                         format=ox.RdfFormat.N_TRIPLES).decode().splitlines(keepends=True)
    assert len(lines) > 300
    outputs = []
    for seed in range(3):
        shuffled = list(lines)
        random.Random(seed).shuffle(shuffled)
        folder = tmp_path / f"shuffle{seed}"
        folder.mkdir()
        (folder / "sample.nt").write_text("".join(shuffled))
        outputs.append(build(folder / "sample.nt", "--quiet").out)
    for name in ("nodes.parquet", "triples.parquet", "relations.parquet"):
        assert len({(out / name).read_bytes() for out in outputs}) == 1, name
