"""The k scale: nested sets 1 ⊂ 10 ⊂ … ⊂ 10 000, continued by powers of ten when --max-k asks for more."""

from __future__ import annotations

import gc

import pytest

from knowledgesmith.builder.benchmark import _gc_skipping_long_lived
from knowledgesmith.builder.build import ingest, shipped_kg_paths
from knowledgesmith.builder.kgindex import KgIndex
from knowledgesmith.builder.requests import (
    K_VALUES,
    _counterfactuals,
    build_requests,
    counterfactual,
    k_of_rank,
    seeded_key,
)
from knowledgesmith.builder.templates import TemplateLibrary


def test_k_min_is_the_smallest_k_of_the_scale_whose_set_holds_the_rank() -> None:
    assert [k_of_rank(rank) for rank in (0, 1, 9, 10, 99, 100, 999, 1_000, 9_999)] == [
        1, 10, 10, 100, 100, 1_000, 1_000, 10_000, 10_000]
    assert all(k_of_rank(k - 1) == k for k in K_VALUES)


def test_ranks_past_ten_thousand_get_the_next_powers_of_ten_instead_of_failing() -> None:
    assert [k_of_rank(rank) for rank in (10_000, 99_999, 100_000, 250_000)] == [100_000, 100_000, 1_000_000,
                                                                              1_000_000]


def test_counterfactuals_drawn_in_blocks_are_those_of_the_plain_reading() -> None:
    """`_counterfactuals` (keys hashed per block, one re-seeded Mersenne Twister, `randrange` inlined, later pools made
    on demand) chooses what `counterfactual` chooses for every eligible fact of the sample domain, whose root facts
    take their answer from a later pool."""
    kg, _inputs = ingest(shipped_kg_paths("sample"), domain="sample")
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    for seed in (0, 3):
        candidates = sorted((seeded_key(seed, "request", tid), tid, s, r, o)
                            for (s, r, o), tid in index.triple_of.items() if index.labels[o])
        chosen = list(_counterfactuals(index, seed, candidates))
        assert [(tid, s, r, o) for tid, s, r, o, _new in chosen] == [c[1:] for c in candidates]
        assert [new for *_fact, new in chosen] == [counterfactual(index, s, r, o, seed, tid)
                                                   for _key, tid, s, r, o in candidates]
        assert any(new not in index.same_kind(o) for _tid, _s, _r, o, new in chosen)  # a later pool was drawn from


@pytest.mark.parametrize("enabled", [True, False])
def test_building_the_index_and_requests_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    kg, _inputs = ingest(shipped_kg_paths("sample"), domain="sample")
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
        assert gc.isenabled() == enabled
        build_requests(index, TemplateLibrary(), "sample", 0)
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_drafting_runs_without_the_cyclic_collector_and_restores_it() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with _gc_skipping_long_lived():
            assert not gc.isenabled() and gc.get_freeze_count() > 0
        assert gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
