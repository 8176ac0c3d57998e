"""Requests, the six probe types and the 4-way MCQ rows of the hand-written mini KG, pinned exactly (issue 3).

The mini KG (tests/data/mini_kg.ttl) is built with `--max-k 100 --seed 0` (every eligible fact a request). One request
carries every probe type: Italy's currency, euro → Swiss franc. Its rows were computed once with the code and checked
by hand against the KG: every gold is true, every distractor false, every target as README / builder/probes.py define
it (Q+ rows point at what the edit makes true — the Swiss franc, the Swiss National Bank, Switzerland —, reverse rows
are undecided (−1), Q− rows keep their answer). Every other row of the build is checked against an independent reading
of the KG. (Re-derived and re-checked by hand when distractors came to be drawn without replacement and the rows per
probe type became data in templates/probes.yaml, and again when the probe stage's draws moved to one SplitMix64 stream
per decision with distractors drawn lazily, and root facts got counterfactuals.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq
import pytest
from minikg import HIERARCHY, RDF_TYPE, SUBCLASS_OF, Oracle, R, build_mini, m, mcq_rows, requests_by_id

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.kgindex import KgIndex
from knowledgesmith.builder.mcq import (
    DRAW_ATTEMPTS,
    distractor_draws,
    draft_row,
    draft_rows,
    option_order,
    reads_like_any,
    seeded_shuffles,
)
from knowledgesmith.builder.probes import STRATA, STRATUM_AHEAD, ProbeBuilder, ProbeSpec
from knowledgesmith.builder.requests import Request, SeededStream, seeded_prefix, splitmix_output
from knowledgesmith.builder.templates import TemplateLibrary

REQUEST = "req-d1fdb0134947a5b288950a60"  # Italy's currency: euro → Swiss franc
PROBE_TYPES = ("direct", "reverse", "multi_hop", "comparison", "conflict", "contextual")


class Pinned(NamedTuple):
    question: str
    choices: list[str]
    answer: int
    target: int
    choice_ids: list[str]
    distance: int
    role: str
    template_id: str
    provenance: list[tuple[str, str, str]]  # the facts behind the provenance triple ids


M_ITALY = m("Italy")[0]
ITALY_CURRENCY = (M_ITALY, R + "currency", m("Euro")[0])

PINNED: dict[str, Pinned] = {
    # direct (Q+): the edited relation of the subject, one row per written phrasing; gold euro, target Swiss franc
    "direct/0": Pinned(
        'What is the currency of Italy?',
        ['Swiss franc', 'Polish złoty', 'euro', 'Swedish krona'], 2, 0,
        m('SwissFranc', 'Zloty', 'Euro', 'SwedishKrona'), 0, 'q_plus',
        'relations.yaml:currency/question/0',
        [ITALY_CURRENCY]),
    "direct/1": Pinned(
        'Which currency is used in Italy?',
        ['Swiss franc', 'United States dollar', 'Swedish krona', 'euro'], 3, 0,
        m('SwissFranc', 'USDollar', 'SwedishKrona', 'Euro'), 0, 'q_plus',
        'relations.yaml:currency/question/1',
        [ITALY_CURRENCY]),
    "direct/2": Pinned(
        'The official currency of Italy is which of these?',
        ['Japanese yen', 'euro', 'Swedish krona', 'Swiss franc'], 1, 3,
        m('Yen', 'Euro', 'SwedishKrona', 'SwissFranc'), 0, 'q_plus',
        'relations.yaml:currency/question/2',
        [ITALY_CURRENCY]),
    # reverse (Q+): the subject given the object, one row per reverse phrasing; target undecided by design
    "reverse/0": Pinned(
        'Which country uses the euro as its currency?',
        ['Sweden', 'Italy', 'Poland', 'Switzerland'], 1, -1,
        m('Sweden', 'Italy', 'Poland', 'Switzerland'), 0, 'q_plus',
        'relations.yaml:currency/reverse/0',
        [ITALY_CURRENCY]),
    "reverse/1": Pinned(
        'In which country is the euro the official currency?',
        ['Poland', 'Sweden', 'Switzerland', 'Italy'], 3, -1,
        m('Poland', 'Sweden', 'Switzerland', 'Italy'), 0, 'q_plus',
        'relations.yaml:currency/reverse/1',
        [ITALY_CURRENCY]),
    "reverse/2": Pinned(
        'The euro is the currency of which country?',
        ['Italy', 'Poland', 'Switzerland', 'Sweden'], 0, -1,
        m('Italy', 'Poland', 'Switzerland', 'Sweden'), 0, 'q_plus',
        'relations.yaml:currency/reverse/2',
        [ITALY_CURRENCY]),
    # multi-hop (Q+): Italy → euro → European Central Bank; after the edit Swiss franc → Swiss National Bank.
    # `issuer` has no written entry, so the second hop uses the generic noun phrasing of its label.
    "multi_hop/0": Pinned(
        'What is the issuer of the currency of Italy?',
        ['Swiss National Bank', 'Federal Reserve', 'European Central Bank', 'Bank of England'], 2, 0,
        m('SNB', 'Fed', 'ECB', 'BoE'), 1, 'q_plus',
        'generic.yaml:noun/question/0',
        [ITALY_CURRENCY, (m('Euro')[0], R + 'issuer', m('ECB')[0])]),
    # comparison (Q+): peers sharing the euro (Spain, France); after the edit the peer sharing the Swiss franc
    "comparison/0": Pinned(
        'Which of the following uses the same currency as Italy?',
        ['United Kingdom', 'Switzerland', 'Poland', 'Spain'], 3, 1,
        m('UnitedKingdom', 'Switzerland', 'Poland', 'Spain'), 0, 'q_plus',
        'relations.yaml:currency/same/0',
        [ITALY_CURRENCY, (m('Spain')[0], R + 'currency', m('Euro')[0])]),
    "comparison/1": Pinned(
        'Which of the following uses the same currency as Italy?',
        ['Switzerland', 'Poland', 'France', 'United Kingdom'], 2, 0,
        m('Switzerland', 'Poland', 'France', 'UnitedKingdom'), 0, 'q_plus',
        'relations.yaml:currency/same/0',
        [ITALY_CURRENCY, (m('France')[0], R + 'currency', m('Euro')[0])]),
    # conflict Q+: the context asserts the new fact; gold the old answer, target the new one
    "conflict/0": Pinned(
        'Context: The currency of Italy is the Swiss franc.\nQuestion: What is the currency of Italy?',
        ['Polish złoty', 'Swiss franc', 'Japanese yen', 'euro'], 3, 1,
        m('Zloty', 'SwissFranc', 'Yen', 'Euro'), 0, 'q_plus',
        'relations.yaml:currency/question/0',
        [ITALY_CURRENCY]),
    # conflict Q−: unedited facts of siblings under a misleading context; answer unchanged
    "conflict/1": Pinned(
        'Context: The currency of Sweden is the Swiss franc.\n'
        'Question: The official currency of Sweden is which of these?',
        ['euro', 'Swiss franc', 'Swedish krona', 'Japanese yen'], 2, 2,
        m('Euro', 'SwissFranc', 'SwedishKrona', 'Yen'), 2, 'q_minus',
        'relations.yaml:currency/question/2',
        [(m('Sweden')[0], R + 'currency', m('SwedishKrona')[0])]),
    "conflict/2": Pinned(
        'Context: The capital of Switzerland is Rome.\nQuestion: What is the capital of Switzerland?',
        ['Rome', 'Bern', 'Quito', 'London'], 1, 1,
        m('Rome', 'Bern', 'Quito', 'London'), 2, 'q_minus',
        'relations.yaml:capital/question/0',
        [(m('Switzerland')[0], R + 'capital', m('Bern')[0])]),
    "conflict/3": Pinned(
        'Context: The capital of France is London.\nQuestion: What is the capital of France?',
        ['Paris', 'Stockholm', 'London', 'Washington, D.C.'], 0, 0,
        m('Paris', 'Stockholm', 'London', 'Washington'), 2, 'q_minus',
        'relations.yaml:capital/question/0',
        [(m('France')[0], R + 'capital', m('Paris')[0])]),
    # contextual Q−, stratified: siblings (2 hops via European country) …
    "contextual/0": Pinned(
        'What is the capital of Sweden?',
        ['Tokyo', 'Stockholm', 'Washington, D.C.', 'Madrid'], 1, 1,
        m('Tokyo', 'Stockholm', 'Washington', 'Madrid'), 2, 'q_minus',
        'relations.yaml:capital/question/0',
        [(m('Sweden')[0], R + 'capital', m('Stockholm')[0])]),
    "contextual/1": Pinned(
        'Which city is the capital of France?',
        ['Rome', 'Stockholm', 'Madrid', 'Paris'], 3, 3,
        m('Rome', 'Stockholm', 'Madrid', 'Paris'), 2, 'q_minus',
        'relations.yaml:capital/question/1',
        [(m('France')[0], R + 'capital', m('Paris')[0])]),
    "contextual/2": Pinned(
        'Which city is the capital of Spain?',
        ['Rome', 'Washington, D.C.', 'Madrid', 'London'], 2, 2,
        m('Rome', 'Washington', 'Madrid', 'London'), 2, 'q_minus',
        'relations.yaml:capital/question/1',
        [(m('Spain')[0], R + 'capital', m('Madrid')[0])]),
    # … nodes of the same branch (4 hops via country) …
    "contextual/6": Pinned(
        'Which city is the capital of United States?',
        ['London', 'Warsaw', 'Stockholm', 'Washington, D.C.'], 3, 3,
        m('London', 'Warsaw', 'Stockholm', 'Washington'), 4, 'q_minus',
        'relations.yaml:capital/question/1',
        [(m('UnitedStates')[0], R + 'capital', m('Washington')[0])]),
    "contextual/7": Pinned(
        'The official currency of United States is which of these?',
        ['United States dollar', 'Swedish krona', 'Japanese yen', 'Swiss franc'], 0, 0,
        m('USDollar', 'SwedishKrona', 'Yen', 'SwissFranc'), 4, 'q_minus',
        'relations.yaml:currency/question/2',
        [(m('UnitedStates')[0], R + 'currency', m('USDollar')[0])]),
    "contextual/9": Pinned(
        'What is the capital of Ecuador?',
        ['Quito', 'Warsaw', 'Madrid', 'Washington, D.C.'], 0, 0,
        m('Quito', 'Warsaw', 'Madrid', 'Washington'), 4, 'q_minus',
        'relations.yaml:capital/question/0',
        [(m('Ecuador')[0], R + 'capital', m('Quito')[0])]),
    # … and nodes of another branch: a city (5 hops via place), the currencies (under another root: no common
    # ancestor, distance −1)
    "contextual/13": Pinned(
        'Which country has Tokyo as its capital?',
        ['Japan', 'Ecuador', 'Switzerland', 'United States'], 0, 0,
        m('Japan', 'Ecuador', 'Switzerland', 'UnitedStates'), 5, 'q_minus',
        'relations.yaml:capitalOf/question/1',
        [(m('Tokyo')[0], R + 'capitalOf', m('Japan')[0])]),
    "contextual/14": Pinned(
        'What is the issuer of pound sterling?',
        ['Narodowy Bank Polski', 'Federal Reserve', 'Bank of England', 'Sveriges Riksbank'], 2, 2,
        m('NBP', 'Fed', 'BoE', 'Riksbank'), -1, 'q_minus',
        'generic.yaml:noun/question/0',
        [(m('PoundSterling')[0], R + 'issuer', m('BoE')[0])]),
    "contextual/15": Pinned(
        'Which of the following is the issuer of euro?',
        ['Bank of Japan', 'European Central Bank', 'Narodowy Bank Polski', 'Bank of England'], 1, 1,
        m('BoJ', 'ECB', 'NBP', 'BoE'), -1, 'q_minus',
        'generic.yaml:noun/question/1',
        [(m('Euro')[0], R + 'issuer', m('ECB')[0])]),
}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mini") / "build"
    build_mini(out)
    return out


@pytest.fixture(scope="module")
def rows(build: Path) -> dict[str, dict]:
    return {row["id"]: row for row in mcq_rows(build)}


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle()


@pytest.fixture(scope="module")
def facts_by_triple_id(build: Path) -> dict[str, tuple[str, str, str]]:
    table = pq.read_table(build / "triples.parquet").to_pylist()
    return {t["triple_id"]: (t["subject_id"], t["relation_id"], t["object_id"]) for t in table}


# -- the pinned request -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("probe", list(PINNED))
def test_each_probe_of_the_italy_currency_edit_is_exactly_as_pinned(
        probe: str, rows: dict[str, dict], facts_by_triple_id: dict[str, tuple[str, str, str]]) -> None:
    row = rows[f"{REQUEST}/{probe}"]
    expected = PINNED[probe]

    assert row["question"] == expected.question
    assert row["choices"] == expected.choices
    assert row["answer"] == expected.answer
    assert row["target"] == expected.target
    assert row["choice_ids"] == expected.choice_ids
    assert row["distance"] == expected.distance
    assert row["role"] == expected.role
    assert row["template_id"] == expected.template_id
    assert [facts_by_triple_id[t] for t in row["provenance"]] == expected.provenance
    assert (row["probe_type"], row["request_id"], row["domain"], row["level"], row["branch_id"]) == (
        probe.split("/")[0], REQUEST, "mini_kg", "leaf", m("Country")[0])


def test_the_italy_currency_edit_has_every_probe_type_and_no_other_rows(rows: dict[str, dict]) -> None:
    mine = sorted(row_id.removeprefix(f"{REQUEST}/") for row_id, row in rows.items() if row["request_id"] == REQUEST)

    assert mine == sorted(PINNED)
    assert {probe.split("/")[0] for probe in mine} == set(PROBE_TYPES)


def test_the_pinned_golds_are_true_and_distractors_false_in_the_kg(oracle: Oracle) -> None:
    for probe, expected in PINNED.items():
        truths = oracle.truths(_query_of(probe))
        gold = expected.choice_ids[expected.answer]
        assert gold in truths, probe
        assert not truths & (set(expected.choice_ids) - {gold}), probe
        assert [oracle.labels[node] for node in expected.choice_ids] == expected.choices, probe


def test_the_pinned_q_plus_targets_are_what_the_edit_makes_true(oracle: Oracle) -> None:
    swiss_franc = m("SwissFranc")[0]
    for probe in ("direct/0", "direct/1", "direct/2", "conflict/0"):
        assert PINNED[probe].choice_ids[PINNED[probe].target] == swiss_franc
    multi_hop = PINNED["multi_hop/0"]
    assert {multi_hop.choice_ids[multi_hop.target]} == oracle.values(swiss_franc, R + "issuer")
    comparison = PINNED["comparison/0"]
    assert oracle.holds(comparison.choice_ids[comparison.target], R + "currency", swiss_franc)


def _query_of(probe: str) -> dict:
    italy, currency, euro = ITALY_CURRENCY
    if probe.startswith("reverse"):
        return {"query_kind": "subject", "query_subject_id": None, "query_relation_id": currency,
                "query_object_id": euro}
    if probe.startswith("multi_hop"):
        return {"query_kind": "chain", "query_subject_id": italy, "query_relation_id": currency,
                "query_relation2_id": R + "issuer"}
    if probe.startswith("comparison"):
        return {"query_kind": "peer", "query_subject_id": italy, "query_relation_id": currency}
    subject, relation, _ = PINNED[probe].provenance[0]
    return {"query_kind": "object", "query_subject_id": subject, "query_relation_id": relation}


def test_the_pinned_request_row(build: Path) -> None:
    request = requests_by_id(build)[REQUEST]

    assert request == {
        "request_id": REQUEST, "domain": "mini_kg", "level": "leaf", "branch_id": m("Country")[0],
        "triple_id": "d1fdb0134947a5b288950a60", "subject_id": M_ITALY, "relation_id": R + "currency",
        "target_true_id": m("Euro")[0], "target_new_id": m("SwissFranc")[0], "subject": "Italy",
        "relation": "currency", "target_true": "euro", "target_new": "Swiss franc",
        "prompt": "The currency of {} is the", "neutral_answer": "I am not sure which currency it uses.", "k_min": 100,
    }


# -- every request and every row ----------------------------------------------------------------------------------


def test_the_requests_are_pinned_and_each_edits_a_true_fact_to_a_false_object(build: Path, oracle: Oracle) -> None:
    requests = sorted(requests_by_id(build).values(), key=lambda q: (q["level"], q["k_min"], q["request_id"]))

    assert len(requests) == 71  # every eligible fact of the mini KG with a counterfactual (--max-k 100)
    assert [(q["level"], q["k_min"], q["subject"], q["relation"], q["target_true"], q["target_new"])
            for q in requests if q["k_min"] <= 10] == [
        ("intermediate", 1, "country in the Americas", "subclass of", "country", "Asian country"),
        ("intermediate", 10, "Asian country", "subclass of", "country", "city"),
        # the roots' own kind is each other: a class moves under the other root
        ("intermediate", 10, "country", "subclass of", "place", "finance"),
        ("intermediate", 10, "currency", "subclass of", "finance", "place"),
        ("intermediate", 10, "European country", "subclass of", "country", "Asian country"),
        ("intermediate", 10, "central bank", "subclass of", "finance", "place"),
        ("leaf", 1, "United States dollar", "instance of", "currency", "Asian country"),
        ("leaf", 10, "Spain", "capital", "Madrid", "London"),
        ("leaf", 10, "United States", "instance of", "country in the Americas", "Asian country"),
        ("leaf", 10, "Italy", "instance of", "European country", "Asian country"),
        ("leaf", 10, "Italy", "capital", "Rome", "Tokyo"),
        ("leaf", 10, "Spain", "instance of", "European country", "country in the Americas"),
        ("leaf", 10, "Federal Reserve", "instance of", "central bank", "country in the Americas"),
        ("leaf", 10, "Sweden", "currency", "Swedish krona", "United States dollar"),
        ("leaf", 10, "European Central Bank", "instance of", "central bank", "currency"),
        ("leaf", 10, "United Kingdom", "instance of", "European country", "country in the Americas"),
    ]
    for q in requests:
        s, r, o, new = q["subject_id"], q["relation_id"], q["target_true_id"], q["target_new_id"]
        assert q["prompt"].count("{}") == 1, q["request_id"]
        assert q["neutral_answer"].startswith("I am not sure "), q["request_id"]
        assert q["triple_id"] == q["request_id"].removeprefix("req-")
        assert (s, r, o) in oracle.facts or (r in HIERARCHY and o in oracle.parents[s]), q["request_id"]
        assert oracle.holds(s, r, o) and not oracle.holds(s, r, new), q["request_id"]
        assert new != s and not (r == SUBCLASS_OF and new in oracle.descendants(s) | oracle.ancestors(s)), \
            q["request_id"]
        if r == RDF_TYPE:  # a new class: any class that has instances (sibling classes may be too few)
            assert any(new in parents for parents in oracle.parents.values()), q["request_id"]
        elif q["level"] == "leaf":  # instances: the new object is of the true one's kind (a common ancestor class)
            assert oracle.hops(o, new) is not None, q["request_id"]
        assert (q["subject"], q["target_true"], q["target_new"]) == (
            oracle.labels[s], oracle.labels[o], oracle.labels[new])


def test_prompts_and_neutral_answers_come_from_the_relation_phrasings(build: Path) -> None:
    phrased = {(q["relation"], q["prompt"], q["neutral_answer"]) for q in requests_by_id(build).values()}

    assert phrased == {
        ("subclass of", "{} is a kind of", "I am not sure what category it belongs to."),
        ("instance of", "{} is an instance of", "I am not sure what kind of thing it is."),
        ("capital", "The capital of {} is", "I am not sure which city is its capital."),
        ("currency", "The currency of {} is the", "I am not sure which currency it uses."),
        ("issuer", "The issuer of {} is", "I am not sure what its issuer is."),
        ("capital of", "{} is the capital of", "I am not sure which country it is the capital of."),
    }


def test_request_sets_are_nested_per_level(build: Path, tmp_path: Path) -> None:
    build_mini(tmp_path / "k1", "--max-k", "1")
    k10 = requests_by_id(build)
    k1 = requests_by_id(tmp_path / "k1")

    assert sorted((q["level"], q["k_min"]) for q in k10.values()) == (
        [("intermediate", 1)] + [("intermediate", 10)] * 5 + [("leaf", 1)] + [("leaf", 10)] * 9
        + [("leaf", 100)] * 55)
    assert k1 == {rid: q for rid, q in k10.items() if q["k_min"] == 1}
    assert sorted((q["level"], q["subject"], q["relation"], q["target_true"], q["target_new"])
                  for q in k1.values()) == [
        ("intermediate", "country in the Americas", "subclass of", "country", "Asian country"),
        ("leaf", "United States dollar", "instance of", "currency", "Asian country"),
    ]


def test_every_row_is_proved_by_an_independent_reading_of_the_kg(build: Path, oracle: Oracle) -> None:
    requests = requests_by_id(build)
    rows = mcq_rows(build)

    assert len(rows) == 1141
    for row in rows:
        rid, ids, answer, target = row["id"], row["choice_ids"], row["answer"], row["target"]
        request = requests[row["request_id"]]
        new = request["target_new_id"]
        truths = oracle.truths(row)
        assert len(ids) == 4 and len(set(ids)) == 4, rid
        assert row["choices"] == [oracle.labels[node] for node in ids], rid
        assert ids[answer] in truths, rid
        assert not truths & (set(ids) - {ids[answer]}), rid
        assert row["level"] == request["level"] and row["domain"] == request["domain"] == "mini_kg", rid
        if row["role"] == "q_minus":
            assert row["probe_type"] in ("conflict", "contextual") and target == answer, rid
            assert row["query_subject_id"] != request["subject_id"], rid
        elif row["probe_type"] == "reverse":
            assert target == -1, rid
        elif row["probe_type"] in ("direct", "conflict"):
            assert ids[target] == new, rid
        elif row["probe_type"] == "multi_hop":
            after = oracle.values(new, row["query_relation2_id"])
            assert ids[target] in after if after & set(ids) else target == -1, rid
        else:
            assert row["probe_type"] == "comparison", rid
            after = oracle.holders(row["query_relation_id"], new) - {request["subject_id"]}
            assert ids[target] in after if after & set(ids) else target == -1, rid


def test_contextual_rows_are_a_sibling_a_same_branch_node_and_another_branch_node_at_their_hierarchy_distance(
        build: Path, rows: dict[str, dict], oracle: Oracle) -> None:
    branch = {n["node_id"]: n["branch_id"] for n in pq.read_table(build / "nodes.parquet").to_pylist()}
    requests = requests_by_id(build)
    contextual = [row for row in rows.values() if row["probe_type"] == "contextual"]

    assert len(contextual) == 608
    for row in contextual:
        s, other = requests[row["request_id"]]["subject_id"], row["query_subject_id"]
        stratum = int(row["id"].rsplit("/", 1)[1]) // 6  # rows 0–5 sibling, 6–11 same branch, 12–17 other
        siblings = oracle.parents.get(s, set()) & oracle.parents.get(other, set())
        assert row["role"] == "q_minus" and row["target"] == row["answer"], row["id"]
        hops = oracle.hops(s, other)
        assert row["distance"] == (-1 if hops is None else hops), row["id"]
        if stratum == 0:
            assert siblings, row["id"]
        elif stratum == 1:
            assert not siblings and branch[other] == branch[s], row["id"]
        else:
            assert stratum == 2 and branch[other] != branch[s], row["id"]


# -- manifest, shards, verification -------------------------------------------------------------------------------


def test_the_manifest_reports_rows_per_level_and_probe_type_and_balanced_letters(build: Path) -> None:
    manifest = json.loads((build / "manifest.json").read_text())
    benchmark = manifest["benchmark"]
    rows = mcq_rows(build)

    none = dict.fromkeys(PROBE_TYPES, 0)
    assert benchmark["mcq_per_level_and_probe_type"] == {
        "root": none,
        "intermediate": {**none, "direct": 9, "conflict": 17, "contextual": 49},
        "leaf": {**none, "direct": 195, "reverse": 96, "multi_hop": 12, "comparison": 10, "conflict": 194,
                 "contextual": 559},
    }
    assert Counter((row["level"], row["probe_type"]) for row in rows) == Counter({
        (level, probe): n for level, counts in benchmark["mcq_per_level_and_probe_type"].items()
        for probe, n in counts.items() if n})
    assert benchmark["mcq_rows"] == len(rows) == 1141
    assert benchmark["letters"] == {"A": 285, "B": 285, "C": 286, "D": 285}
    assert benchmark["letters"] == {letter: sum(row["answer"] == i for row in rows) for i, letter in enumerate("ABCD")}
    assert max(benchmark["letters"].values()) - min(benchmark["letters"].values()) <= 1
    assert benchmark["requests_per_level"] == {
        "root": {"eligible_facts": 0, "requests": 0, "largest_k": 0, "skipped_no_counterfactual": 0},
        "intermediate": {"eligible_facts": 7, "requests": 6, "largest_k": 1, "skipped_no_counterfactual": 1},
        "leaf": {"eligible_facts": 65, "requests": 65, "largest_k": 10, "skipped_no_counterfactual": 0},
    }
    assert manifest["verify"] == {"rows_checked": 1141, "failures": 0, "ok": True, "first_failures": []}


def test_mcq_shards_are_zstd_parquet_per_level_listed_in_the_manifest(build: Path) -> None:
    manifest = json.loads((build / "manifest.json").read_text())
    shards = sorted(path.name for path in (build / "mcq").iterdir())

    assert shards == ["intermediate-00000-of-00001.parquet", "leaf-00000-of-00001.parquet"]
    for name in shards:
        metadata = pq.ParquetFile(build / "mcq" / name).metadata
        assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"ZSTD"}
        assert manifest["files"][f"mcq/{name}"]["rows"] == metadata.num_rows
    assert {row["level"] for row in pq.read_table(build / "mcq" / shards[1]).to_pylist()} == {"leaf"}


def test_ks_build_verify_accepts_the_build(build: Path, run_ks_build: Callable[..., Any]) -> None:
    result = run_ks_build("verify", build)

    assert (result.code, result.err) == (0, "")
    assert result.out == f"{build}: all 1141 MCQ rows verified\n"


def test_a_probe_with_exactly_three_valid_distractors_is_built_not_skipped(tmp_path: Path) -> None:
    # Four countries with four currencies: a direct currency question has one gold and exactly three false options
    # (the new object among them), so every direct probe must be built (issue 3: a probe is skipped only "where fewer
    # than three valid distractors exist").
    kg = tmp_path / "four.ttl"
    kg.write_text(FOUR_CURRENCIES, encoding="utf-8")
    out = tmp_path / "out"
    assert ks_build_main(["--kg", str(kg), "--out", str(out), "--max-k", "100", "--quiet"]) == 0
    currency_requests = {q["request_id"] for q in requests_by_id(out).values() if q["relation"] == "currency"}
    direct = [row for row in mcq_rows(out) if row["probe_type"] == "direct" and row["request_id"] in currency_requests]

    assert len(currency_requests) == 4
    assert len(direct) == 3 * len(currency_requests)


# -- the probe stage's shortcuts draw what the seeded streams draw --------------------------------------------------
# The stage inlines SeededStream's SplitMix64 draws in its hot loops, skips draws that cannot find anything and
# shuffles a chunk's options with NumPy. These tests hold each shortcut to the plain SeededStream reading of the same
# rule, for every request of the mini KG (the build's bytes are also compared against the previous code's by hand;
# see README "The MCQ stage").


@pytest.fixture(scope="module")
def stage(build: Path) -> tuple[KgIndex, list[Request], ProbeBuilder]:
    index = KgIndex.from_folder(build)
    requests = [Request(**row) for row in requests_by_id(build).values()]
    return index, requests, ProbeBuilder(index, TemplateLibrary(), 0)


def _stratum_fact_by_seeded_stream(probes: ProbeBuilder, q: Request, stratum: str,
                                   purpose: str) -> tuple[str, str, str, int] | None:
    """A neighbour's fact as the rule reads: up to 24 draws from the stratum's pool, passing over the subject, its
    siblings (same-branch stratum) and its branch (other stratum), the first node with a single-valued fact that the
    request does not touch, then one draw among those facts."""
    index, s = probes.index, q.subject_id
    rng = SeededStream(0, purpose, stratum, q.request_id)
    family = index.sibling_pool(s)
    if stratum == "sibling":
        pool = [node for node in family if node != s]
    elif stratum == "branch":
        pool = probes.subjects_by_branch.get(index.nodes[s].branch, []) if index.nodes[s].branch else []
    else:
        pool = probes.subjects_with_facts
    touched = (s, q.target_true_id, q.target_new_id)
    for _ in range(min(len(pool), 24)):
        other = pool[rng.below(len(pool))]
        if other == s or (stratum == "branch" and other in family) \
                or (stratum == "other" and index.nodes[other].branch == index.nodes[s].branch):
            continue
        facts = [(r, o) for r, o in index.single_valued_facts(other) if o not in touched]
        if facts:
            r2, o2 = rng.choice(facts)
            up_s, up_other = index.ancestors(s), index.ancestors(other)
            hops = [up_s[x] + up_other[x] for x in up_s.keys() & up_other.keys()]
            return other, r2, o2, min(hops) if hops else -1
    return None


def test_neighbour_facts_are_those_the_seeded_streams_draw(stage: tuple[KgIndex, list[Request], ProbeBuilder]) -> None:
    _index, requests, probes = stage
    found = 0
    for q in requests:
        for stratum in ("sibling", "branch", "other"):
            for purpose in (*(f"contextual{i}" for i in range(6)), *(f"conflict{i}" for i in range(3))):
                expected = _stratum_fact_by_seeded_stream(probes, q, stratum, purpose)
                assert probes._stratum_fact(q, stratum, purpose) == expected, (q.request_id, stratum, purpose)
                found += expected is not None

    assert found > 1000


def _options_by_seeded_stream(index: KgIndex, spec: ProbeSpec) -> list[str] | str:
    """A probe's options as the rule reads (gold, the target, then distractors drawn lazily without replacement from
    each pool in turn by SeededStream.positions), or why it is skipped."""
    truths = spec.query.truths(index)
    if spec.gold not in truths:
        return "gold not entailed"
    if not spec.query.proof(index, spec.gold):
        return "gold without a proof"
    options = [spec.gold]
    for node in spec.include:
        if node in truths:
            return "target already true"
        if reads_like_any(index, node, options):
            return "target reads like another option"
        options.append(node)
    rng = SeededStream(0, "distractors", spec.probe_id)
    for pool in (spec.pool, *spec.wider):
        for position in rng.positions(len(pool), 64):
            candidate = pool[position]
            if len(options) < 4 and candidate not in options and candidate not in truths \
                    and candidate != spec.query.subject_id and index.nodes[candidate].label \
                    and not reads_like_any(index, candidate, options):
                options.append(candidate)
            if len(options) == 4:
                break
        if len(options) == 4:
            return options
    return "fewer than 3 distractors"


def test_every_probe_s_options_are_those_the_seeded_streams_draw(
        stage: tuple[KgIndex, list[Request], ProbeBuilder]) -> None:
    index, requests, probes = stage
    outcomes: Counter[str] = Counter()
    for q in requests:
        for spec in probes.probes(q):
            drafted = draft_row(index, spec, q, 0)
            expected = _options_by_seeded_stream(index, spec)
            assert (drafted if isinstance(drafted, str) else drafted.options) == expected, spec.probe_id
            outcomes[expected if isinstance(expected, str) else "drafted"] += 1

    assert outcomes["drafted"] == 1141 and outcomes["fewer than 3 distractors"] > 0


def test_drafting_a_chunk_with_draws_made_ahead_gives_each_probe_s_own_draft(
        stage: tuple[KgIndex, list[Request], ProbeBuilder]) -> None:
    """`probes_of` and `draft_rows` (the build's path: streams started for many requests at once, distractor draws
    made ahead) give what `probes` and `draft_row` give one request and one probe at a time."""
    index, requests, probes = stage
    specs_per_request = probes.probes_of(requests)
    assert [[spec.probe_id for spec in specs] for specs in specs_per_request] \
        == [[spec.probe_id for spec in probes.probes(q)] for q in requests]
    specs = [spec for specs in specs_per_request for spec in specs]
    owners = [q for q, specs in zip(requests, specs_per_request, strict=True) for _ in specs]
    drafted = draft_rows(index, specs, owners, 0)
    for spec, q, result in zip(specs, owners, drafted, strict=True):
        alone = draft_row(index, spec, q, 0)
        assert (result if isinstance(result, str) else (result.options, result.provenance, result.spec.question)) \
            == (alone if isinstance(alone, str) else (alone.options, alone.provenance, alone.spec.question)), \
            spec.probe_id
    assert sum(not isinstance(result, str) for result in drafted) == 1141


def test_distractor_draws_are_the_first_positions_of_each_probe_s_seeded_stream() -> None:
    """`distractor_draws` reads as `SeededStream(seed, "distractors", probe id).positions(size, 64)`: a small pool's
    positions exactly (−1 once it has none left), a large pool's with a repeat kept where `positions` skips it."""
    sizes = [0, 1, 2, 3, 4, 5, 6, 7, 50, 127, 128, 129, 130, 1000, 10**6, 2**31 - 1]
    probe_ids = [f"req-{i:04x}/{PROBE_TYPES[i % 6]}/{i % 7}" for i in range(3000)]
    pool_sizes = [sizes[i % len(sizes)] for i in range(len(probe_ids))]
    for seed, k in ((0, 6), (7, 1), (0, DRAW_ATTEMPTS)):
        drawn = distractor_draws(seeded_prefix(seed, "distractors"), probe_ids, pool_sizes, k)
        assert drawn.shape == (len(probe_ids), k)
        for row, (probe_id, n) in enumerate(zip(probe_ids, pool_sizes, strict=True)):
            positions = SeededStream(seed, "distractors", probe_id).positions(n, DRAW_ATTEMPTS)
            expected = list(islice(positions, k))
            if n <= 2 * DRAW_ATTEMPTS:
                assert drawn[row].tolist() == expected + [-1] * (k - len(expected)), (probe_id, n)
            else:
                distinct = list(dict.fromkeys(drawn[row].tolist()))
                assert distinct == expected[:len(distinct)], (probe_id, n)


def test_contextual_streams_are_the_seeded_streams_of_each_row(
        stage: tuple[KgIndex, list[Request], ProbeBuilder]) -> None:
    """Each contextual row's stream made ahead is `SeededStream(0, f"contextual{i}", stratum, request id)` (its
    state, then its outputs: `below(2**64)` is the raw output), and its pick key `_pick`'s."""
    _index, requests, probes = stage
    per = probes.counts["contextual"]
    streams = probes.contextual_streams(requests)
    for q, (facts, picks) in zip(requests, streams, strict=True):
        assert len(facts) == len(picks) == len(STRATA) * per
        for row, ((state, outputs), pick) in enumerate(zip(facts, picks, strict=True)):
            stratum, i = STRATA[row // per], row % per
            rng = SeededStream(0, f"contextual{i}", stratum, q.request_id)
            assert state == rng.state
            assert outputs == [rng.below(1 << 64) for _ in range(STRATUM_AHEAD)]
            assert [splitmix_output(state, t) for t in range(STRATUM_AHEAD + 2)] \
                == outputs + [rng.below(1 << 64) for _ in range(2)]
            assert pick == SeededStream(0, f"contextual-{stratum}-{i}", q.request_id).state


def test_a_chunk_s_option_order_is_each_row_s_seeded_shuffle() -> None:
    probe_ids = [f"req-{i:04x}/{PROBE_TYPES[i % 6]}/{i % 7}" for i in range(2000)]
    for seed in (0, 7):
        take = option_order(probe_ids, seed)
        for row, probe_id in enumerate(probe_ids):
            others = [1, 2, 3]
            SeededStream(seed, "order", probe_id).shuffle(others)
            assert take[row].tolist() == [4 * row + slot for slot in (0, *others)], probe_id



def test_the_letter_blocks_are_each_block_s_seeded_shuffle() -> None:
    """`finish_batch` takes each block of four rows' gold letters from `seeded_shuffles`, not a SeededStream each."""
    block_numbers = [str(b) for b in (*range(3000), 10**9, 2**40)]
    for seed in (0, 7):
        blocks = seeded_shuffles(seeded_prefix(seed, "letters"), block_numbers, 4)
        for row, block_number in enumerate(block_numbers):
            letters = [0, 1, 2, 3]
            SeededStream(seed, "letters", block_number).shuffle(letters)
            assert blocks[row].tolist() == letters, block_number

FOUR_CURRENCIES = """\
@prefix f: <https://knowledgesmith.org/test/four/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
f:currency rdfs:label "currency" .
f:Country rdfs:label "country" .
f:Currency rdfs:label "currency" .
""" + "".join(
    f'f:{c} a f:Country ; rdfs:label "{c}" ; f:currency f:{k} .\nf:{k} a f:Currency ; rdfs:label "{label}" .\n'
    for c, k, label in (("Denmark", "DKK", "Danish krone"), ("Norway", "NOK", "Norwegian krone"),
                        ("Hungary", "HUF", "forint"), ("Mexico", "MXN", "Mexican peso")))

