"""`ks-build verify DIR` catches planted faults (issue 3): a copy of the mini KG's build has one MCQ shard rewritten
with pyarrow so that one row is wrong; the verifier exits 1 and names that row and the reason on stderr. An untouched
copy verifies clean.

The rows tampered with are the pinned rows of tests/test_probes_mcq.py (Italy's currency, euro → Swiss franc) and
the subclass-of questions of the intermediate level.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from minikg import M, R, build_mini, m, mcq_rows

from knowledgesmith.builder.verify import verify_folder

REQUEST = "req-d1fdb0134947a5b288950a60"  # Italy's currency: euro → Swiss franc
EUROPEAN_COUNTRY_KIND_OF = "req-904d0f81e2128081b29d143e/direct/0"  # "European country is a kind of which …?"
SPAIN_USES_EURO = "ddf4528ec87512142b7380f8"  # triple id of (Spain, currency, euro)
ITALY_USES_EURO = "d1fdb0134947a5b288950a60"
ROWS = 1141


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "build"
    build_mini(out)
    return out


@pytest.fixture
def copied(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(pristine, target)
    return target


def tamper(folder: Path, row_id: str, **changes: Any) -> dict:
    """Rewrite the shard holding `row_id` with `changes` applied to that row only; return the row as it was."""
    for shard in sorted((folder / "mcq").glob("*.parquet")):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            if row["id"] == row_id:
                before = dict(row)
                row.update(changes)
                pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard, compression="zstd")
                return before
    raise AssertionError(f"no row {row_id} in {folder}")


def position(folder: Path, row_id: str, node: str) -> int:
    """Where a node stands among a row's options (letters move when rows are added, the options do not)."""
    return next(r for r in mcq_rows(folder) if r["id"] == row_id)["choice_ids"].index(node)


def replace_option(folder: Path, row_id: str, position: int, node: str, label: str) -> None:
    """Put another node (and its label, so that the texts still match) at one position of a row's options."""
    row = next(r for r in mcq_rows(folder) if r["id"] == row_id)
    choice_ids, choices = list(row["choice_ids"]), list(row["choices"])
    choice_ids[position], choices[position] = node, label
    tamper(folder, row_id, choice_ids=choice_ids, choices=choices)


def assert_rejected(run: Callable[..., Any], folder: Path, row_id: str, reason: str) -> None:
    result = run("verify", folder)

    assert result.code == 1, result.out + result.err
    assert result.out == ""
    assert result.err == f"{folder}: 1 of {ROWS} MCQ rows fail verification\n  {row_id}: {reason}\n"


def test_an_untouched_copy_verifies_clean(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    result = run_ks_build("verify", copied)

    assert (result.code, result.out, result.err) == (0, f"{copied}: all {ROWS} MCQ rows verified\n", "")


def test_a_shard_rewritten_without_changes_verifies_clean(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/direct/0")

    assert run_ks_build("verify", copied).code == 0


# -- (a) a wrong gold ----------------------------------------------------------------------------------------------


def test_a_wrong_answer_index_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    zloty = position(copied, f"{REQUEST}/direct/0", m("Zloty")[0])
    before = tamper(copied, f"{REQUEST}/direct/0", answer=zloty)  # the Polish złoty instead of the euro

    assert before["choice_ids"][before["answer"]] == m("Euro")[0]
    assert_rejected(run_ks_build, copied, f"{REQUEST}/direct/0", f"gold {M}Zloty is not entailed by the KG")


def test_an_answer_that_is_not_a_letter_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/direct/0", answer=4)

    assert_rejected(run_ks_build, copied, f"{REQUEST}/direct/0", "answer 4 is not a letter")


# -- (b) a distractor the KG makes true ----------------------------------------------------------------------------


def test_a_distractor_replaced_by_another_true_value_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    # "Which country uses the euro as its currency?" [Sweden, Italy, Poland, Switzerland]: Spain uses the euro too
    sweden = position(copied, f"{REQUEST}/reverse/0", m("Sweden")[0])
    replace_option(copied, f"{REQUEST}/reverse/0", sweden, m("Spain")[0], "Spain")

    assert_rejected(run_ks_build, copied, f"{REQUEST}/reverse/0",
                    f"distractor {'ABCD'[sweden]} ({M}Spain) is entailed by the KG")


def test_a_distractor_replaced_by_an_ancestor_class_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    # "European country is a kind of which of the following?" [Asian country, city, country, …]: it is also a kind
    # of place, through country (transitivity along the hierarchy)
    city = position(copied, EUROPEAN_COUNTRY_KIND_OF, m("City")[0])
    replace_option(copied, EUROPEAN_COUNTRY_KIND_OF, city, m("Place")[0], "place")

    assert_rejected(run_ks_build, copied, EUROPEAN_COUNTRY_KIND_OF,
                    f"distractor {'ABCD'[city]} ({M}Place) is entailed by the KG")


def test_a_comparison_distractor_replaced_by_another_peer_is_caught(copied: Path,
                                                                    run_ks_build: Callable[..., Any]) -> None:
    # "Which of the following uses the same currency as Italy?" [United Kingdom, Switzerland, Poland, Spain]: so does
    # France
    poland = position(copied, f"{REQUEST}/comparison/0", m("Poland")[0])
    replace_option(copied, f"{REQUEST}/comparison/0", poland, m("France")[0], "France")

    assert_rejected(run_ks_build, copied, f"{REQUEST}/comparison/0",
                    f"distractor {'ABCD'[poland]} ({M}France) is entailed by the KG")


# -- (c) a duplicate option ------------------------------------------------------------------------------------------


def test_a_duplicate_option_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    # "Which currency is used in Italy?" [Swiss franc, United States dollar, Swedish krona, euro]: the gold offered
    # twice
    dollar = position(copied, f"{REQUEST}/direct/1", m("USDollar")[0])
    replace_option(copied, f"{REQUEST}/direct/1", dollar, m("Euro")[0], "euro")

    assert_rejected(run_ks_build, copied, f"{REQUEST}/direct/1", "options are not four distinct nodes")


def test_a_choice_text_that_is_not_its_nodes_label_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/direct/1", choices=["euro", "euro", "pound sterling", "Swiss franc"])

    assert_rejected(run_ks_build, copied, f"{REQUEST}/direct/1", "choice texts do not match their node labels")


def test_an_option_that_is_not_a_node_of_the_kg_is_caught(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    replace_option(copied, f"{REQUEST}/direct/1", 1, M + "Bitcoin", "bitcoin")

    assert_rejected(run_ks_build, copied, f"{REQUEST}/direct/1", "an option is not a node of the KG")


# -- (d) a target pointing at the wrong option ---------------------------------------------------------------------


@pytest.mark.parametrize(("probe", "target", "reason"), [
    ("direct/2", "Yen", "target is not the request's new object"),  # Japanese yen, not the Swiss franc
    ("conflict/0", "Zloty", "target is not the request's new object"),  # Polish złoty
    ("multi_hop/0", "BoE", "target does not follow from the request's new object"),  # Bank of England, not the SNB
    ("comparison/0", "Poland", "target does not follow from the request's new object"),  # Poland, not Switzerland
    ("reverse/0", "Sweden", "a reverse row's target must be undecided (-1)"),
    ("contextual/0", "Tokyo", "a Q− row's target must be its answer"),  # Q− rows keep their answer
    ("conflict/1", "SwissFranc", "a Q− row's target must be its answer"),  # the misleading context's Swiss franc
])
def test_a_target_pointing_at_the_wrong_option_is_caught(probe: str, target: str, reason: str, copied: Path,
                                                          run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/{probe}", target=position(copied, f"{REQUEST}/{probe}", m(target)[0]))

    assert_rejected(run_ks_build, copied, f"{REQUEST}/{probe}", reason)


@pytest.mark.parametrize("probe", ["multi_hop/0", "comparison/0"])
def test_an_undecided_target_where_the_edit_decides_an_option_is_caught(probe: str, copied: Path,
                                                                         run_ks_build: Callable[..., Any]) -> None:
    # multi_hop/0 offers the Swiss National Bank (issuer of the Swiss franc); comparison/0 offers Switzerland
    tamper(copied, f"{REQUEST}/{probe}", target=-1)

    result = run_ks_build("verify", copied)

    assert result.code == 1
    assert f"  {REQUEST}/{probe}: " in result.err


def test_a_wrong_gold_disguised_by_re_pointing_the_rows_query_at_another_subject_is_caught(
        copied: Path, run_ks_build: Callable[..., Any]) -> None:
    uk_uses_pound = triple_id(copied, m("UnitedKingdom")[0], R + "currency", m("PoundSterling")[0])
    tamper(copied, f"{REQUEST}/direct/0", answer=2, query_subject_id=m("UnitedKingdom")[0], provenance=[uk_uses_pound])

    result = run_ks_build("verify", copied)

    assert result.code == 1
    assert f"  {REQUEST}/direct/0: " in result.err


def triple_id(folder: Path, s: str, r: str, o: str) -> str:
    triples = pq.read_table(folder / "triples.parquet").to_pylist()
    return next(t["triple_id"] for t in triples if (t["subject_id"], t["relation_id"], t["object_id"]) == (s, r, o))


# -- (e) tampered provenance -----------------------------------------------------------------------------------------


def test_the_triple_ids_used_here_are_the_facts_they_name(pristine: Path) -> None:
    assert triple_id(pristine, m("Spain")[0], R + "currency", m("Euro")[0]) == SPAIN_USES_EURO
    assert triple_id(pristine, m("Italy")[0], R + "currency", m("Euro")[0]) == ITALY_USES_EURO


@pytest.mark.parametrize(("probe", "provenance"), [
    ("direct/0", [SPAIN_USES_EURO]),  # a true fact, but not the one that proves Italy's currency
    ("direct/0", []),
    ("direct/0", ["000000000000000000000000"]),  # no such triple
    ("multi_hop/0", [ITALY_USES_EURO]),  # the second hop's fact left out
    ("comparison/0", [ITALY_USES_EURO, SPAIN_USES_EURO, "000000000000000000000000"]),
])
def test_tampered_provenance_is_caught(probe: str, provenance: list[str], copied: Path,
                                       run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/{probe}", provenance=provenance)

    assert_rejected(run_ks_build, copied, f"{REQUEST}/{probe}", "provenance does not prove the gold")


def test_every_faulty_row_is_named_and_the_count_is_given(copied: Path, run_ks_build: Callable[..., Any]) -> None:
    tamper(copied, f"{REQUEST}/direct/0", answer=position(copied, f"{REQUEST}/direct/0", m("Zloty")[0]))
    tamper(copied, f"{REQUEST}/reverse/0", target=2)
    tamper(copied, EUROPEAN_COUNTRY_KIND_OF, provenance=[])

    result = run_ks_build("verify", copied)

    assert result.code == 1
    assert result.err.splitlines() == [
        f"{copied}: 3 of {ROWS} MCQ rows fail verification",
        f"  {EUROPEAN_COUNTRY_KIND_OF}: provenance does not prove the gold",
        f"  {REQUEST}/direct/0: gold {M}Zloty is not entailed by the KG",
        f"  {REQUEST}/reverse/0: a reverse row's target must be undecided (-1)",
    ]


def test_verify_of_a_folder_that_is_not_a_build_is_a_one_line_error(tmp_path: Path,
                                                                    run_ks_build: Callable[..., Any]) -> None:
    result = run_ks_build("verify", tmp_path)

    assert result.code == 2
    assert result.err == f"ks-build verify: error: {tmp_path}: not a KnowledgeSmith build: nodes.parquet is missing\n"


def rename_node(folder: Path, node: str, label: str | None = None, aliases: list[str] | None = None) -> None:
    """Give a node of the build another label (in nodes.parquet and in every choice text that shows it) or aliases."""
    nodes = pq.read_table(folder / "nodes.parquet")
    rows = nodes.to_pylist()
    for row in rows:
        if row["node_id"] == node:
            old = row["label"]
            row["label"] = label if label is not None else old
            row["aliases"] = aliases if aliases is not None else row["aliases"]
    pq.write_table(pa.Table.from_pylist(rows, schema=nodes.schema), folder / "nodes.parquet")
    if label is None:
        return
    for shard in sorted((folder / "mcq").glob("*.parquet")):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            row["choices"] = [label if c == node else t for c, t in zip(row["choice_ids"], row["choices"], strict=True)]
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard, compression="zstd")


def alike_failures(folder: Path) -> dict[str, str]:
    report = verify_folder(folder)
    failures = dict(report.failures)
    assert failures and all(reason.endswith("read alike") for reason in failures.values())
    return failures


def test_options_whose_labels_read_alike_are_caught(copied: Path) -> None:
    # "Swiss francs" reads like "Swiss franc" (rapidfuzz ratio 96): every row offering both is named
    rename_node(copied, m("SwedishKrona")[0], label="Swiss francs")
    row = next(r for r in mcq_rows(copied) if r["id"] == f"{REQUEST}/direct/1")
    franc, krona = row["choice_ids"].index(m("SwissFranc")[0]), row["choice_ids"].index(m("SwedishKrona")[0])

    failures = alike_failures(copied)

    first, second = sorted((franc, krona))
    assert failures[f"{REQUEST}/direct/1"] == f"options {'ABCD'[first]} and {'ABCD'[second]} read alike"


def test_options_whose_aliases_read_alike_are_caught(copied: Path) -> None:
    rename_node(copied, m("SwedishKrona")[0], aliases=["swiss FRANCS"])
    row = next(r for r in mcq_rows(copied) if r["id"] == f"{REQUEST}/direct/1")
    franc, krona = row["choice_ids"].index(m("SwissFranc")[0]), row["choice_ids"].index(m("SwedishKrona")[0])

    failures = alike_failures(copied)

    first, second = sorted((franc, krona))
    assert failures[f"{REQUEST}/direct/1"] == f"options {'ABCD'[first]} and {'ABCD'[second]} read alike"
