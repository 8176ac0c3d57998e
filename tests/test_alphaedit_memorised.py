"""AlphaEdit and MEMIT on a tiny model that has memorised invented facts in this test, edited sequentially.

The model is a 4-layer Llama with a word-level tokenizer over invented names, trained until it answers every fact
"<person> lives in <town>" right. Such a model looks facts up at the last prompt token (ALGORITHMS.md), so the edits
use `fact_token: last`. Then 10 and 40 edits are applied in sequential batches of 10 on one model and two things are
measured: efficacy (edited facts now give the new town) and specificity (facts never edited still give their town).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from knowledgesmith.eval_harness.methods import get_method, load_settings  # noqa: E402
from knowledgesmith.eval_harness.methods.base import EditRequest  # noqa: E402

PEOPLE = [f"p{i:02d}" for i in range(80)]
TOWNS = [f"t{i}" for i in range(12)]
SEED = 0


def _facts() -> dict[str, str]:
    rng = random.Random(SEED)
    return {person: rng.choice(TOWNS) for person in PEOPLE}


def _memorising_model(folder: Path) -> tuple[object, object]:
    """Train the tiny model on the facts until every one is answered right (deterministic: fixed seed, CPU)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "lives", "in", "is", "a", "person",
                                                  "town", *PEOPLE, *TOWNS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    torch.manual_seed(SEED)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=32,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    facts = _facts()
    # "p07 lives in t3" and, so that keys of other shapes enter C0 too, "p07 is a person" / "t3 is a town"
    texts = [f"{p} lives in {t}" for p, t in facts.items()] + [f"{p} is a person" for p in PEOPLE] \
        + [f"{t} is a town" for t in TOWNS]
    ids = torch.tensor([tokenizer(text)["input_ids"] for text in texts[: len(PEOPLE)]])
    others = torch.tensor([tokenizer(text)["input_ids"] for text in texts[len(PEOPLE):]])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        optimiser.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss = loss + 0.2 * model(input_ids=others, labels=others).loss
        loss.backward()
        optimiser.step()
        if _accuracy(model, tokenizer, facts) == 1.0:
            break
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def _answers(model: object, tokenizer: object, people: list[str]) -> list[str]:
    ids = torch.tensor([tokenizer(f"{p} lives in")["input_ids"] for p in people])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, -1]
    return tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())


def _accuracy(model: object, tokenizer: object, facts: dict[str, str]) -> float:
    people = list(facts)
    return sum(a == facts[p] for a, p in zip(_answers(model, tokenizer, people), people, strict=True)) / len(people)


@pytest.fixture(autouse=True)
def one_thread():
    """Float sums depend on the thread count (measured: MEMIT's specificity after 10 edits is 1.00 with one thread,
    0.78 with two or three), so the figures below are pinned to one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("memorised")
        model, tokenizer = _memorising_model(folder)
    finally:
        torch.set_num_threads(threads)
    assert _accuracy(model, tokenizer, _facts()) == 1.0, "the tiny model should memorise all 80 facts"
    return folder


def _edit_sequentially(method: str, folder: Path, count: int) -> tuple[float, float, float]:
    """Apply `count` edits in batches of 10 on one model; (efficacy of all edits, efficacy of the first batch,
    specificity on the 40 people never edited)."""
    import polars as pl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    facts = _facts()
    rng = random.Random(SEED + 1)
    edited = PEOPLE[:count]
    new = {p: rng.choice([t for t in TOWNS if t != facts[p]]) for p in edited}
    requests = [EditRequest(f"r{p}", p, "{} lives in", facts[p], new[p], "somewhere") for p in edited]
    corpus = pl.DataFrame({"question": [f"{p} lives in" for p in PEOPLE],
                           "choices": [[facts[p], "x", "y", "z"] for p in PEOPLE], "answer": [0] * len(PEOPLE),
                           "role": ["q_plus" if p in new else "q_minus" for p in PEOPLE]})
    settings = load_settings(method, "llama", {
        "layers": [1, 2], "fact_token": "last", "num_prefixes": 0, "v_num_grad_steps": 30, "v_lr": 0.5,
        "clamp_norm_factor": 4, "v_weight_decay": 0.0, "kl_factor": 0.0, "edit_batch_size": 10,
        "threshold_relative": True, "nullspace_threshold": 1e-2, "l2": 1.0, "mom2_update_weight": 10.0})
    editor = get_method(method)
    editor.benchmark_mcq = corpus
    editor.apply(model, tokenizer, requests, corpus, settings)
    answers = dict(zip(PEOPLE, _answers(model, tokenizer, PEOPLE), strict=True))
    efficacy = sum(answers[p] == new[p] for p in edited) / len(edited)
    first = sum(answers[p] == new[p] for p in edited[:10]) / 10
    untouched = PEOPLE[40:]
    specificity = sum(answers[p] == facts[p] for p in untouched) / len(untouched)
    return efficacy, first, specificity


# Measured (seed 0, CPU, one thread; efficacy, first-batch efficacy, specificity):
#   10 edits: AlphaEdit 0.50 / 0.50 / 0.60   MEMIT 1.00 / 1.00 / 1.00 (specificity 0.78 with two threads, and 0.20
#             with one on a later machine with the same pinned torch)
#   40 edits: AlphaEdit 0.30 / 0.10 / 0.33   MEMIT 0.05 / 0.10 / 0.03   (the later machine: 0.10 / 0.00 / 0.03)
# One batch of 10 is easy for MEMIT; after four batches its updates have overwritten each other and the facts
# around them, while AlphaEdit's projection (and its cache of earlier keys) keeps a third of both. With so few
# hidden dimensions (64) the edited keys share most of their directions with the preserved ones, which is why
# AlphaEdit's projection also takes half of the first batch's efficacy. MEMIT's specificity after one batch is not
# bounded: on this toy it swings between 0.2 and 1.0 with the float summation order (thread count, CPU), while
# AlphaEdit's figures came out the same everywhere. The other bounds sit below these figures.
def test_ten_edits_in_one_batch(memorised: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    alpha = _edit_sequentially("alphaedit", memorised, 10)
    memit = _edit_sequentially("memit", memorised, 10)
    assert memit[0] >= 0.8 and memit[1] >= 0.8, memit
    assert alpha[0] >= 0.3 and alpha[2] >= 0.4, alpha


def test_forty_sequential_edits_alphaedit_keeps_more_than_memit(memorised: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    alpha = _edit_sequentially("alphaedit", memorised, 40)
    memit = _edit_sequentially("memit", memorised, 40)
    assert alpha[0] >= 0.2 and alpha[2] >= 0.2, alpha
    assert alpha[0] > memit[0] + 0.1 and alpha[2] > memit[2] + 0.1, (alpha, memit)
