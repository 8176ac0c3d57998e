"""`ks-build verify DIR`: re-prove every MCQ row from its ids against the KG the build wrote.

For each row: the question's query (kind, subject, relation, object, second relation) is re-evaluated on the KG
(stated facts and declared inverses); the gold option must be entailed and proved by the row's provenance triples,
no other option may be entailed, the four options must be distinct nodes whose labels do not read alike, and the
target must agree with the request: direct and conflict Q+ rows point at the request's new object, reverse rows are
undecided (−1), multi-hop and comparison targets follow from the new object in the KG, Q− rows keep their answer.

`check_row` is the definition. A row group is first put through `prove_row_group`, the same checks for `object` and
`subject` rows done with NumPy over integer node codes, which can only accept a row: every row it does not prove goes
to `check_row`, so what a failing row is told, and in what order, does not depend on the fast path.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rapidfuzz import process
from rapidfuzz.fuzz import ratio
from tqdm import tqdm

from .errors import KsUserError
from .kgindex import DOWNWARD, UPWARD, KgIndex
from .mcq import N_OPTIONS, reads_alike, reads_like_any
from .probes import CHAIN, OBJECT, PEER, SUBJECT, Query
from .requests import SIMILAR


@dataclass
class VerifyReport:
    rows: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (row id, reason)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, object]:
        return {"rows_checked": self.rows, "failures": len(self.failures), "ok": self.ok,
                "first_failures": [f"{row}: {reason}" for row, reason in self.failures[:20]]}


def verify_folder(folder: Path, workers: int = 1, progress: bool = False, fast: bool = True) -> VerifyReport:
    """Re-prove every MCQ row of a build; row groups are shared out over `workers` forked processes (the index is
    built once and inherited), and the failures come back in shard and row order whatever the number of workers.
    `progress`: a bar of rows checked (on a terminal). `fast=False` sends every row through `check_row` (the
    reference the fast path is tested against); the report is the same."""
    verification = Verification(folder, fast=fast)
    try:
        shards = sorted((folder / "mcq").glob("*.parquet"))
        groups = sum(pq.ParquetFile(path).metadata.num_row_groups for path in shards)
        verification.start(min(workers, groups))
        for path in shards:
            verification.submit(path)
        return verification.finish(progress)
    finally:
        verification.close()


class Verification:
    """A verification of one build folder, which can run while the build writes its shards: the KG is read back
    from the folder's own `nodes`/`triples`/`relations` files (not taken from the builder's memory) and coded once,
    with the requests; `start` forks the workers, `submit` hands them a completed shard's row groups, and `finish`
    returns the report, its failures in shard and row order whatever order the shards came in."""

    def __init__(self, folder: Path, fast: bool = True) -> None:
        for name in ("nodes", "triples", "relations", "requests"):
            if not (folder / f"{name}.parquet").is_file():
                raise KsUserError(f"not a KnowledgeSmith build: {name}.parquet is missing", path=str(folder))
        self.index = KgIndex.from_folder(folder)
        # the columns a row is checked against, not the request texts: the verifier runs alongside the build
        missing = [c for c in REQUEST_COLUMNS if c not in pq.read_schema(folder / "requests.parquet").names]
        if missing:
            raise KsUserError(f"requests.parquet lacks the column(s) {', '.join(missing)}", path=str(folder))
        self.requests = {r["request_id"]: r for r in pq.read_table(folder / "requests.parquet",
                                                                  columns=REQUEST_COLUMNS).to_pylist()}
        self.codes = KgCodes.build(self.index, self.requests) if fast else None
        self.parts: dict[tuple[str, int], concurrent.futures.Future[tuple[int, list[tuple[str, str]]]] | None] = {}
        self.rows = 0
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def start(self, workers: int) -> None:
        """Fork `workers` processes (which inherit the coded KG); with one, row groups are proved in `finish`."""
        global _FORKED
        _FORKED = (self.index, self.requests, self.codes)
        if workers > 1:
            self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            # Under fork, the pool starts every worker at its first task: make that happen now, before the caller
            # starts threads of its own (a lock held by another thread at the fork stays held in the child).
            self.pool.submit(int).result()

    def submit(self, path: Path) -> None:
        """Queue the row groups of a completed shard (may be called from another thread than `finish`)."""
        metadata = pq.ParquetFile(path).metadata
        self.rows += metadata.num_rows
        for group in range(metadata.num_row_groups):
            part = (str(path), group)
            self.parts[part] = self.pool.submit(_verify_part, part) if self.pool is not None else None

    def finish(self, progress: bool = False) -> VerifyReport:
        report = VerifyReport()
        bar = tqdm(total=self.rows, desc="verify", unit="row", disable=None if progress else True, leave=False)
        try:
            for part in sorted(self.parts):
                future = self.parts[part]
                rows, failures = future.result() if future is not None else _verify_part(part)
                report.rows += rows
                report.failures += failures
                bar.update(rows)
        finally:
            bar.close()
            self.close()
        return report

    def close(self) -> None:
        global _FORKED
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        _FORKED = None


_FORKED: tuple[KgIndex, dict[str, dict], KgCodes | None] | None = None


def _verify_part(part: tuple[str, int]) -> tuple[int, list[tuple[str, str]]]:
    assert _FORKED is not None
    index, requests, codes = _FORKED
    table = pq.ParquetFile(part[0]).read_row_group(part[1], columns=CHECKED_COLUMNS)
    rows = table.num_rows
    if codes is not None:
        proof = prove_row_group(codes, table)
        left = np.flatnonzero(~proof.proved)
        options_alike = [bool(alike) if known else None for alike, known in
                         zip(proof.options_alike[left].tolist(), proof.alike_known[left].tolist(), strict=True)]
        table = table.take(left)
    else:
        options_alike = [None] * table.num_rows
    columns = table.to_pydict()
    failures = []
    for i, values in enumerate(zip(*columns.values(), strict=True)):  # column-wise conversion: faster than to_pylist
        row = dict(zip(columns, values, strict=True))
        reason = check_row(index, requests, row, options_alike=options_alike[i])
        if reason is not None:
            failures.append((row["id"], reason))
    return rows, failures


@dataclass
class KgCodes:
    """The KG and the requests as integer codes for `prove_row_group`, built once per verification (forked workers
    inherit them). A node's code is its position in `index.nodes`; −1 stands for "not a node" (or not a relation
    the KG knows) everywhere."""

    index: KgIndex
    node_ids: list[str]
    node_array: pa.Array
    labels: pa.Array
    first_names: np.ndarray  # case-folded labels (str objects)
    single_named: np.ndarray  # per node, and False for −1: no aliases, so its first name is every name it has
    relation_ids: list[str]  # every relation of a triple, of the relation table, and of the hierarchy closure
    relation_array: pa.Array
    inverse: np.ndarray  # per relation, the code of its declared inverse
    triple_keys: np.ndarray  # the sorted `(s × relations + r) × nodes + o` of `index.triple_of`
    triple_ids: pa.Array  # the triple id of each key
    request_ids: pa.Array
    # per request (in `request_ids` order), the codes of its ids; one more entry, −1, for an unknown request (−1)
    request_subject: np.ndarray
    request_relation: np.ndarray
    request_true: np.ndarray
    request_new: np.ndarray

    @classmethod
    def build(cls, index: KgIndex, requests: dict[str, dict]) -> KgCodes | None:
        """The codes, or None for a KG too large for a triple's codes to fit an int64 key (far beyond what the index
        holds in memory; every row then goes to `check_row`)."""
        node_ids = list(index.nodes)
        node_code = {node: i for i, node in enumerate(node_ids)}
        relation_ids = sorted({r for _s, r, _o in index.triple_of} | index.relation_labels.keys()
                              | {r for r in index.relation_inverse.values() if r is not None} | UPWARD | DOWNWARD)
        relation_code = {r: i for i, r in enumerate(relation_ids)}
        n_nodes, n_relations = len(node_ids), len(relation_ids)
        if (n_nodes + 1) ** 2 * (n_relations + 1) >= 2 ** 62:
            return None
        keys = np.fromiter(((node_code[s] * n_relations + relation_code[r]) * n_nodes + node_code[o]
                            for s, r, o in index.triple_of), dtype=np.int64, count=len(index.triple_of))
        order = np.argsort(keys)
        node_array, relation_array = pa.array(node_ids, pa.string()), pa.array(relation_ids, pa.string())

        def codes(ids: list[str | None], value_set: pa.Array) -> np.ndarray:
            return _codes(pa.array(ids, pa.string()), value_set)

        def request_codes(column: str, value_set: pa.Array) -> np.ndarray:
            return np.append(codes([request[column] for request in requests.values()], value_set), -1)

        return cls(
            index=index, node_ids=node_ids, node_array=node_array,
            labels=pa.array([info.label for info in index.nodes.values()], pa.string()),
            first_names=np.array([index.folded[node][0] for node in node_ids], dtype=object),
            single_named=np.array([not info.aliases for info in index.nodes.values()] + [False], dtype=bool),
            relation_ids=relation_ids, relation_array=relation_array,
            inverse=codes([index.relation_inverse.get(r) for r in relation_ids], relation_array),
            triple_keys=keys[order], triple_ids=pa.array(list(index.triple_of.values()), pa.string()).take(order),
            request_ids=pa.array(list(requests), pa.string()),
            request_subject=request_codes("subject_id", node_array),
            request_relation=request_codes("relation_id", relation_array),
            request_true=request_codes("target_true_id", node_array),
            request_new=request_codes("target_new_id", node_array),
        )

    def nodes_of(self, ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return _codes(ids, self.node_array)

    def proof_triples(self, s: np.ndarray, r: np.ndarray, o: np.ndarray) -> np.ndarray:
        """Per (s, r, o), the position in `triple_ids` of the triple `Query.proof` cites: the stated triple, else the
        one stated through r's declared inverse, (o, r⁻¹, s); −1 where neither is in the KG."""
        stated = self._position(s, r, o)
        return np.where(stated >= 0, stated, self._position(o, np.where(r >= 0, self.inverse[r], -1), s))

    def _position(self, s: np.ndarray, r: np.ndarray, o: np.ndarray) -> np.ndarray:
        known = (s >= 0) & (r >= 0) & (o >= 0)
        if not len(self.triple_keys):
            return np.full(len(s), -1)
        keys = (s * len(self.relation_ids) + r) * len(self.node_ids) + o
        at = np.minimum(np.searchsorted(self.triple_keys, keys), len(self.triple_keys) - 1)
        return np.where(known & (self.triple_keys[at] == keys), at, -1)


def _codes(ids: pa.ChunkedArray | pa.Array, value_set: pa.Array) -> np.ndarray:
    """Each id's position in `value_set` (−1 where absent or null)."""
    return pc.index_in(ids, value_set=value_set).fill_null(-1).to_numpy().astype(np.int64)


@dataclass
class RowGroupProof:
    proved: np.ndarray  # per row: `check_row` returns None
    options_alike: np.ndarray  # per row, where `alike_known`: two options read alike
    alike_known: np.ndarray  # per row: four known nodes without aliases (else `check_row` scores the aliases too)


def prove_row_group(codes: KgCodes, table: pa.Table) -> RowGroupProof:
    """The rows of a row group (`CHECKED_COLUMNS`) that `check_row` accepts, found with NumPy: the `object` and
    `subject` rows whose options, gold, distractors, provenance, request and target all check out. A row left out is
    not known to be wrong, only left to `check_row`. Truths come from `KgIndex.values` / `holders`, asked once per
    distinct (subject, relation) or (relation, object) of the row group."""
    n = table.num_rows
    rows = np.arange(n)
    options, options_valid = _option_nodes(codes, table["choice_ids"], table["choices"])
    alike_known = (options >= 0).all(axis=1) & codes.single_named[options].all(axis=1)
    options_alike = _options_alike(codes, options, alike_known)

    def text_is(column: str, value: str) -> np.ndarray:
        return pc.equal(table[column], value).fill_null(False).to_numpy(zero_copy_only=False)

    def given(column: str) -> np.ndarray:
        return table[column].is_valid().to_numpy(zero_copy_only=False)

    answer, target = table["answer"].fill_null(-9).to_numpy(), table["target"].fill_null(-9).to_numpy()
    answered = given("answer") & (answer >= 0) & (answer < N_OPTIONS)
    gold = np.where(answered, options[rows, np.where(answered, answer, 0)], -1)
    is_object, is_subject = text_is("query_kind", OBJECT), text_is("query_kind", SUBJECT)
    subject, obj = codes.nodes_of(table["query_subject_id"]), codes.nodes_of(table["query_object_id"])
    relation = _codes(table["query_relation_id"], codes.relation_array)

    # the gold is entailed and no other option is: options looked up among the truths of each distinct query
    asked = np.where(is_object, subject, np.where(is_subject, obj, -1))
    askable = (asked >= 0) & (relation >= 0) & options_valid & answered
    queries, query_of_row = _distinct(((asked * len(codes.relation_ids) + relation) * 2 + is_subject)[askable])
    truths = _truth_keys(codes, queries)
    option_keys = query_of_row.reshape(-1, 1) * len(codes.node_ids) + options[askable]
    entailed = np.zeros(option_keys.shape, dtype=bool)
    if len(truths):
        at = np.minimum(np.searchsorted(truths, option_keys), len(truths) - 1)
        entailed = truths[at] == option_keys
    only_gold = np.zeros(n, dtype=bool)
    only_gold[askable] = entailed[np.arange(len(entailed)), answer[askable]] & (entailed.sum(axis=1) == 1)

    # the provenance, as a set, is the one triple `Query.proof` cites: (s, r, gold), or (gold, r, o) for `subject`
    proof = codes.proof_triples(np.where(is_subject, gold, subject), relation, np.where(is_subject, obj, gold))
    provenance = table["provenance"]
    parent = pc.list_parent_indices(provenance).to_numpy()
    cited = codes.triple_ids.take(pa.array(proof[parent], mask=proof[parent] < 0))
    wrong = ~pc.equal(pc.list_flatten(provenance), cited).fill_null(False).to_numpy(zero_copy_only=False)
    proved_gold = ((proof >= 0) & (pc.list_value_length(provenance).fill_null(0).to_numpy() > 0)
                   & (np.bincount(parent[wrong], minlength=n) == 0))

    # the request exists; a Q+ row asks its fact and points where `_check_target` says, a Q− row keeps its answer
    request = _codes(table["request_id"], codes.request_ids)
    known_request = request >= 0
    asks_relation = (relation >= 0) & (relation == codes.request_relation[request])
    letter = given("target") & (target >= 0) & (target < N_OPTIONS)
    new = codes.request_new[request]
    direct = ((text_is("probe_type", "direct") | text_is("probe_type", "conflict")) & is_object & asks_relation
              & (subject >= 0) & (subject == codes.request_subject[request]) & ~given("query_object_id")
              & letter & (new >= 0) & (options[rows, np.where(letter, target, 0)] == new))
    reverse = (text_is("probe_type", "reverse") & is_subject & asks_relation & ~given("query_subject_id")
               & (obj >= 0) & (obj == codes.request_true[request]) & given("target") & (target == -1))
    q_plus = text_is("role", "q_plus") & (direct | reverse)
    q_minus = text_is("role", "q_minus") & given("target") & (target == answer)

    proved = (options_valid & alike_known & ~options_alike & answered & only_gold & proved_gold & known_request
              & (q_plus | q_minus))
    return RowGroupProof(proved=proved, options_alike=options_alike, alike_known=alike_known)


def _option_nodes(codes: KgCodes, choice_ids: pa.ChunkedArray, choices: pa.ChunkedArray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, its options' node codes (−1 throughout unless the row has four ids and four texts) and whether they are
    four distinct nodes of the KG, each shown by its label."""
    n = len(choice_ids)
    four = ((pc.list_value_length(choice_ids).fill_null(0).to_numpy() == N_OPTIONS)
            & (pc.list_value_length(choices).fill_null(0).to_numpy() == N_OPTIONS))

    def of_four(column: pa.ChunkedArray) -> pa.Array:
        return pc.list_flatten(column).filter(pa.array(four[pc.list_parent_indices(column).to_numpy()]))

    options = np.full((n, N_OPTIONS), -1, dtype=np.int64)
    options[four] = codes.nodes_of(of_four(choice_ids)).reshape(-1, N_OPTIONS)
    shown = options[four].reshape(-1)
    labelled = np.zeros((n, N_OPTIONS), dtype=bool)
    labelled[four] = pc.equal(of_four(choices), codes.labels.take(pa.array(shown, mask=shown < 0))).fill_null(
        False).to_numpy(zero_copy_only=False).reshape(-1, N_OPTIONS)
    ordered = np.sort(options, axis=1)
    distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=1)
    return options, four & (options >= 0).all(axis=1) & distinct & labelled.all(axis=1)


def _truth_keys(codes: KgCodes, queries: np.ndarray) -> np.ndarray:
    """Sorted `query × nodes + node` for every node true of each query `(asked × relations + relation) × 2 + kind`:
    `index.values(asked, relation)` for an `object` query (kind 0), `index.holders(relation, asked)` for a `subject`
    one (kind 1)."""
    index, nodes, relations = codes.index, codes.node_ids, codes.relation_ids
    found = [index.holders(relations[ar % len(relations)], nodes[ar // len(relations)]) if kind else
             index.values(nodes[ar // len(relations)], relations[ar % len(relations)])
             for ar, kind in zip((queries // 2).tolist(), (queries % 2).tolist(), strict=True)]
    true_nodes = codes.nodes_of(pa.array([node for truths in found for node in truths], pa.string()))
    keys = np.repeat(np.arange(len(queries), dtype=np.int64), [len(truths) for truths in found]) * len(nodes)
    return np.sort((keys + true_nodes)[true_nodes >= 0])


def _options_alike(codes: KgCodes, options: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Per row of four known nodes without aliases, whether two of its options read alike: each distinct ordered pair
    of nodes among the row group's six option pairs per row scored once, in one rapidfuzz call; False elsewhere."""
    alike = np.zeros(len(options), dtype=bool)
    if not known.any():
        return alike
    n_nodes, names = len(codes.node_ids), codes.first_names
    left, right = options[known][:, [i for i, _j in _PAIRS]], options[known][:, [j for _i, j in _PAIRS]]
    pairs, pair_of = _distinct((left * n_nodes + right).reshape(-1))
    scores = process.cpdist(names[pairs // n_nodes].tolist(), names[pairs % n_nodes].tolist(),
                            scorer=ratio, processor=None, score_cutoff=SIMILAR, dtype=np.int32)
    alike[known] = (scores > 0)[pair_of].reshape(-1, len(_PAIRS)).any(axis=1)
    return alike


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys (in order of first appearance) and each key's position among them: `np.unique` without
    the sort, which is most of its time here."""
    encoded = pa.array(keys, pa.int64()).dictionary_encode()
    return encoded.dictionary.to_numpy(), encoded.indices.to_numpy().astype(np.int64)


_PAIRS = [(i, j) for i in range(N_OPTIONS) for j in range(i + 1, N_OPTIONS)]

REQUEST_COLUMNS = ["request_id", "subject_id", "relation_id", "target_true_id", "target_new_id"]
CHECKED_COLUMNS = ["id", "request_id", "probe_type", "role", "choices", "answer", "target", "choice_ids", "provenance",
                   "query_kind", "query_subject_id", "query_relation_id", "query_object_id", "query_relation2_id"]


def check_row(index: KgIndex, requests: dict[str, dict], row: dict, options_alike: bool | None = None) -> str | None:
    """The reason a row is wrong, or None when it is proved. `options_alike`, when known, says whether two options
    read alike (scored for a whole row group at once by `_options_alike`)."""
    choice_ids = row["choice_ids"]
    if len(choice_ids) != N_OPTIONS or len(set(choice_ids)) != N_OPTIONS:
        return "options are not four distinct nodes"
    if any(node not in index.nodes for node in choice_ids):
        return "an option is not a node of the KG"
    if [index.nodes[node].label for node in choice_ids] != row["choices"]:
        return "choice texts do not match their node labels"
    if options_alike is None:
        options_alike = any(reads_like_any(index, choice_ids[i], choice_ids[i + 1:]) for i in range(N_OPTIONS - 1))
    if options_alike:
        for i in range(N_OPTIONS):  # which two: only for the message
            for j in range(i + 1, N_OPTIONS):
                if reads_alike(index, choice_ids[i], choice_ids[j]):
                    return f"options {'ABCD'[i]} and {'ABCD'[j]} read alike"
    query = Query(row["query_kind"], row["query_subject_id"], row["query_relation_id"], row["query_object_id"],
                  row["query_relation2_id"])
    truths = query.truths(index)
    answer = row["answer"]
    if not 0 <= answer < N_OPTIONS:
        return f"answer {answer} is not a letter"
    gold = choice_ids[answer]
    if gold not in truths:
        return f"gold {gold} is not entailed by the KG"
    for i, node in enumerate(choice_ids):
        if i != answer and node in truths:
            return f"distractor {'ABCD'[i]} ({node}) is entailed by the KG"
    provenance = row["provenance"]
    if not provenance or set(provenance) != set(query.proof(index, gold)):
        return "provenance does not prove the gold"
    request = requests.get(row["request_id"])
    if request is None:
        return "unknown request"
    if row["role"] == "q_plus" and not _asks_the_request(row, query, request):
        return "a Q+ row's question is not about its request's fact"
    return _check_target(index, request, row, query)


def _asks_the_request(row: dict, query: Query, request: dict) -> bool:
    """A Q+ row must ask about the edited fact itself (so a wrong gold cannot hide behind another query)."""
    s, r, o = request["subject_id"], request["relation_id"], request["target_true_id"]
    expected = {
        "direct": (OBJECT, s, r, None), "conflict": (OBJECT, s, r, None), "reverse": (SUBJECT, None, r, o),
        "multi_hop": (CHAIN, s, r, None), "comparison": (PEER, s, r, None),
    }.get(row["probe_type"])
    return expected is not None and (query.kind, query.subject_id, query.relation_id, query.object_id) == expected


def _check_target(index: KgIndex, request: dict, row: dict, query: Query) -> str | None:
    """The target the edit decides, recomputed from the request and the KG exactly as the builder defines it."""
    target, choice_ids = row["target"], row["choice_ids"]
    new, s, o = request["target_new_id"], request["subject_id"], request["target_true_id"]
    if row["role"] == "q_minus":
        return None if target == row["answer"] else "a Q− row's target must be its answer"
    if row["probe_type"] in ("direct", "conflict"):
        ok = 0 <= target < N_OPTIONS and choice_ids[target] == new
        return None if ok else "target is not the request's new object"
    if row["probe_type"] == "reverse":
        return None if target == -1 else "a reverse row's target must be undecided (-1)"
    if query.kind == CHAIN:
        after = index.values(new, query.relation2_id)  # type: ignore[arg-type]
        allowed = set(after) if len(after) == 1 else set()
    else:  # PEER: a subject having the new object that was not a peer before the edit
        allowed = set(index.holders(query.relation_id, new)) - {s} - set(index.holders(query.relation_id, o))
    if target == -1:
        offered = allowed & set(choice_ids)
        return None if not offered else "target is −1 although an option follows from the new object"
    if not 0 <= target < N_OPTIONS:
        return f"target {target} is not a letter"
    return None if choice_ids[target] in allowed else "target does not follow from the request's new object"
