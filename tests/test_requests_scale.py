"""The k scale: nested sets 1 ⊂ 10 ⊂ … ⊂ 10 000, continued by powers of ten when --max-k asks for more."""

from __future__ import annotations

from knowledgesmith.builder.requests import K_VALUES, k_of_rank


def test_k_min_is_the_smallest_k_of_the_scale_whose_set_holds_the_rank() -> None:
    assert [k_of_rank(rank) for rank in (0, 1, 9, 10, 99, 100, 999, 1_000, 9_999)] == [
        1, 10, 10, 100, 100, 1_000, 1_000, 10_000, 10_000]
    assert all(k_of_rank(k - 1) == k for k in K_VALUES)


def test_ranks_past_ten_thousand_get_the_next_powers_of_ten_instead_of_failing() -> None:
    assert [k_of_rank(rank) for rank in (10_000, 99_999, 100_000, 250_000)] == [100_000, 100_000, 1_000_000,
                                                                              1_000_000]
