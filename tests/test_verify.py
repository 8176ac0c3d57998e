"""`ks-build verify DIR` catches planted faults (issue 3): a copy of the mini KG's build has one MCQ shard rewritten
with pyarrow so that one row is wrong; the verifier exits 1 and names that row and the reason on stderr. An untouched
copy verifies clean.
The verifier's fast path (`prove_row_group`) proves the object and subject rows, and accepts none of the faults;
the report is the same without it.

The rows tampered with are the pinned rows of tests/test_probes_mcq.py (Italy's currency, euro → Swiss franc) and
the subclass-of questions of the intermediate level.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from minikg import M, R, build_mini, m, mcq_rows, requests_by_id

from knowledgesmith.builder.kgindex import KgIndex
from knowledgesmith.builder.verify import CHECKED_COLUMNS, KgCodes, check_row, prove_row_group, verify_folder

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


# -- the fast path: it proves the object and subject rows, and only rows check_row accepts ---------------------------


def checked_table(folder: Path, rows: list[dict]) -> pa.Table:
    schema = pq.read_schema(sorted((folder / "mcq").glob("*.parquet"))[0])
    return pa.Table.from_pylist(rows, schema=schema).select(CHECKED_COLUMNS)


def kg_codes(folder: Path) -> KgCodes:
    codes = KgCodes.build(KgIndex.from_folder(folder), requests_by_id(folder))
    assert codes is not None
    return codes


def test_the_fast_path_proves_every_object_and_subject_row_without_aliases(pristine: Path) -> None:
    rows = mcq_rows(pristine)
    index = KgIndex.from_folder(pristine)

    proved = prove_row_group(kg_codes(pristine), checked_table(pristine, rows)).proved

    expected = [row["query_kind"] in ("object", "subject")
                and not any(index.nodes[node].aliases for node in row["choice_ids"]) for row in rows]
    assert proved.tolist() == expected
    assert 0 < sum(expected) < len(rows)  # chain and peer rows, and options with aliases (the ECB), go to check_row


def swap(name: str, node: str, label: str) -> Callable[[dict, Path], dict]:
    """A fault: the option `name` of the mini KG replaced by another node, shown by its label."""
    def changes(row: dict, _folder: Path) -> dict:
        at = row["choice_ids"].index(m(name)[0])
        return {"choice_ids": [*row["choice_ids"][:at], node, *row["choice_ids"][at + 1:]],
                "choices": [*row["choices"][:at], label, *row["choices"][at + 1:]]}
    return changes


def target_at(name: str) -> Callable[[dict, Path], dict]:
    return lambda row, _folder: {"target": row["choice_ids"].index(m(name)[0])}


def given(**changes: Any) -> Callable[[dict, Path], dict]:
    return lambda _row, _folder: changes


def asking_poland(row: dict, folder: Path) -> dict:
    """A fault: a direct or reverse row about Italy and the euro re-pointed, gold and proof, at Poland and the złoty,
    both of which it offers: only its request tells."""
    poland, zloty = m("Poland")[0], m("Zloty")[0]
    asked = {"query_subject_id": poland} if row["query_kind"] == "object" else {"query_object_id": zloty}
    return {**asked, "answer": row["choice_ids"].index(zloty if row["query_kind"] == "object" else poland),
            "provenance": [triple_id(folder, poland, R + "currency", zloty)]}


# Every fault planted in the tests above, and a few that only the fast path's own checks could miss.
PLANTED = {
    "a wrong answer index": ("direct/0", lambda row, _folder: {"answer": row["choice_ids"].index(m("Zloty")[0])}),
    "an answer that is not a letter": ("direct/0", given(answer=4)),
    "a reverse distractor that is true": ("reverse/0", swap("Sweden", m("Spain")[0], "Spain")),
    "an ancestor class as distractor": (EUROPEAN_COUNTRY_KIND_OF, swap("City", m("Place")[0], "place")),
    "a comparison distractor that is a peer": ("comparison/0", swap("Poland", m("France")[0], "France")),
    "a duplicate option": ("direct/1", swap("USDollar", m("Euro")[0], "euro")),
    "a choice text that is not its label": ("direct/1", given(choices=["euro", "euro", "pound sterling",
                                                                       "Swiss franc"])),
    "an option that is not a node": ("direct/1", swap("USDollar", M + "Bitcoin", "bitcoin")),
    "a direct target not at the new object": ("direct/2", target_at("Yen")),
    "a conflict target not at the new object": ("conflict/0", target_at("Zloty")),
    "a multi-hop target": ("multi_hop/0", target_at("BoE")),
    "a comparison target": ("comparison/0", target_at("Poland")),
    "a decided reverse target": ("reverse/0", target_at("Sweden")),
    "a contextual target that is not its answer": ("contextual/0", target_at("Tokyo")),
    "a Q− conflict target that is not its answer": ("conflict/1", target_at("SwissFranc")),
    "an undecided multi-hop target": ("multi_hop/0", given(target=-1)),
    "an undecided comparison target": ("comparison/0", given(target=-1)),
    "a direct row re-pointed at another subject": ("direct/0", asking_poland),
    "a reverse row re-pointed at another object": ("reverse/0", asking_poland),
    "provenance of another fact": ("direct/0", given(provenance=[SPAIN_USES_EURO])),
    "no provenance": ("direct/0", given(provenance=[])),
    "provenance of no triple": ("direct/0", given(provenance=["000000000000000000000000"])),
    "provenance with one more triple": ("direct/0", given(provenance=[ITALY_USES_EURO, SPAIN_USES_EURO])),
    "a multi-hop proof missing its second hop": ("multi_hop/0", given(provenance=[ITALY_USES_EURO])),
    "a comparison proof with a triple too many": ("comparison/0", given(
        provenance=[ITALY_USES_EURO, SPAIN_USES_EURO, "000000000000000000000000"])),
    "an unknown request": ("contextual/0", given(request_id="req-000000000000000000000000")),
    "a direct row whose query names an object": ("direct/0", given(query_object_id=m("Euro")[0])),
    "a direct row asking the subject": ("direct/0", given(query_kind="subject")),
    "a direct row that is a Q−": ("direct/2", given(role="q_minus")),  # its target is not its answer
    "a row of no role": ("contextual/0", given(role="q_zero")),
}


@pytest.mark.parametrize("fault", PLANTED)
def test_the_fast_path_accepts_no_planted_fault(fault: str, pristine: Path) -> None:
    probe, changes = PLANTED[fault]
    row_id = probe if probe.startswith("req-") else f"{REQUEST}/{probe}"
    rows = mcq_rows(pristine)
    at = next(i for i, row in enumerate(rows) if row["id"] == row_id)
    faulty = [*rows[:at], {**rows[at], **changes(rows[at], pristine)}, *rows[at + 1:]]
    codes = kg_codes(pristine)
    before = prove_row_group(codes, checked_table(pristine, rows)).proved

    after = prove_row_group(codes, checked_table(pristine, faulty)).proved

    assert check_row(codes.index, requests_by_id(pristine), faulty[at]) is not None  # a fault indeed
    assert not after[at]
    assert (np.delete(after, at) == np.delete(before, at)).all()


@pytest.mark.parametrize("names", [{"label": "Swiss francs"}, {"aliases": ["swiss FRANCS"]}])
def test_the_fast_path_accepts_no_options_that_read_alike(names: dict, copied: Path) -> None:
    rename_node(copied, m("SwedishKrona")[0], **names)
    rows = mcq_rows(copied)

    proved = prove_row_group(kg_codes(copied), checked_table(copied, rows)).proved

    both = [{m("SwissFranc")[0], m("SwedishKrona")[0]} <= set(row["choice_ids"]) for row in rows]
    assert any(both)
    assert not (proved & np.array(both)).any()


def test_the_report_is_the_same_with_and_without_the_fast_path(copied: Path) -> None:
    rename_node(copied, m("SwedishKrona")[0], label="Swiss francs")  # rows of every kind read alike
    tamper(copied, f"{REQUEST}/direct/0", answer=position(copied, f"{REQUEST}/direct/0", m("Zloty")[0]))
    tamper(copied, f"{REQUEST}/reverse/0", target=2)
    tamper(copied, f"{REQUEST}/contextual/0", target=position(copied, f"{REQUEST}/contextual/0", m("Tokyo")[0]))
    tamper(copied, EUROPEAN_COUNTRY_KIND_OF, provenance=[])
    tamper(copied, f"{REQUEST}/multi_hop/0", provenance=[ITALY_USES_EURO])

    fast, slow = verify_folder(copied), verify_folder(copied, fast=False)

    assert (fast.rows, fast.failures) == (slow.rows, slow.failures)
    reasons = dict(fast.failures)
    assert reasons[f"{REQUEST}/reverse/0"] == "a reverse row's target must be undecided (-1)"
    assert reasons[f"{REQUEST}/multi_hop/0"] == "provenance does not prove the gold"
    assert len(reasons) > 5


def test_shards_submitted_out_of_order_over_workers_give_the_report_of_verify_folder(copied: Path) -> None:
    """The build hands the verifier each shard as it is complete (levels interleave, so not in name order) while
    its workers prove them; the report must still list failures in shard and row order, as `verify_folder` does."""
    from knowledgesmith.builder.verify import Verification

    tamper(copied, f"{REQUEST}/direct/0", answer=position(copied, f"{REQUEST}/direct/0", m("Zloty")[0]))
    tamper(copied, f"{REQUEST}/multi_hop/0", provenance=[ITALY_USES_EURO])
    tamper(copied, EUROPEAN_COUNTRY_KIND_OF, provenance=[])
    # one shard becomes three, each of several row groups, so that failures sit in different shards and groups
    rows = [row for shard in sorted((copied / "mcq").glob("*.parquet")) for row in pq.read_table(shard).to_pylist()]
    schema = pq.read_schema(next((copied / "mcq").glob("*.parquet")))
    for shard in (copied / "mcq").glob("*.parquet"):
        shard.unlink()
    third = -(-len(rows) // 3)
    shards = [copied / "mcq" / f"part-{i}.parquet" for i in range(3)]
    for i, shard in enumerate(shards):
        pq.write_table(pa.Table.from_pylist(rows[i * third:(i + 1) * third], schema=schema), shard,
                       row_group_size=max(1, third // 4))
    expected = verify_folder(copied)
    position_of = {row["id"]: i for i, row in enumerate(rows)}
    assert len({position_of[row_id] // third for row_id, _reason in expected.failures}) >= 2  # in different shards

    verification = Verification(copied)
    try:
        verification.start(2)
        for shard in reversed(shards):
            verification.submit(shard)
        report = verification.finish()
    finally:
        verification.close()

    assert (report.rows, report.failures) == (expected.rows, expected.failures) and report.rows == len(rows)


def test_a_requests_table_without_the_checked_columns_is_a_one_line_error(copied: Path,
                                                                        run_ks_build: Callable[..., Any]) -> None:
    table = pq.read_table(copied / "requests.parquet")
    pq.write_table(table.drop(["target_new_id"]), copied / "requests.parquet")
    result = run_ks_build("verify", str(copied))
    assert result.code != 0 and "Traceback" not in result.err
    assert "requests.parquet lacks the column(s) target_new_id" in result.err
