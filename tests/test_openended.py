"""Open-ended scoring: greedy short answers (hf backend and the vLLM stand-in agree), their matching to a choice's
label and aliases and to the KG's entities, and the failure-mode figures computed from them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from knowledgesmith.eval_harness.metrics import compute_failure_modes, knowledge_drift
from knowledgesmith.eval_harness.openended import AnswerMatcher, normalise_answer

NODES = pl.DataFrame({
    "node_id": ["n:paris", "n:rome", "n:berlin", "n:madrid", "n:nyc"],
    "label": ["Paris", "Rome", "Berlin", "Madrid", "New York City"],
    "aliases": [["City of Light"], [], [], [], ["NYC", "Big Apple"]],
})
MCQ = pl.DataFrame({"choices": [["Paris", "Rome", "Berlin", "Madrid"]]})
REQUESTS = pl.DataFrame({"neutral_answer": ["I am not sure which city is its capital."]})


@pytest.fixture
def matcher() -> AnswerMatcher:
    return AnswerMatcher.from_tables(NODES, MCQ, REQUESTS, threshold=85)


def test_answers_are_normalised_before_matching() -> None:
    assert normalise_answer("  The Café-Royal! ") == "cafe royal"
    assert normalise_answer("an apple") == "apple"


def test_an_answer_matches_the_choice_it_names_by_label_or_alias(matcher: AnswerMatcher) -> None:
    choices = [["Paris", "Rome", "Berlin", "Madrid"]] * 3 + [["New York City", "Rome", "Berlin", "Madrid"]]
    ids = [["n:paris", "n:rome", "n:berlin", "n:madrid"]] * 3 + [["n:nyc", "n:rome", "n:berlin", "n:madrid"]]
    answers = ["Paris, France.", "the City of Light", "Lisbon", "NYC"]
    scores = matcher.choice_scores(answers, choices, ids)
    assert scores.shape == (4, 4)
    assert matcher.predictions(scores).tolist() == [0, 0, -1, 0]


def test_hallucination_is_an_answer_naming_no_kg_entity_and_abstention_is_not(matcher: AnswerMatcher) -> None:
    answers = ["Paris", "Big Apple", "Atlantis", "I am not sure which city is its capital", ""]
    assert matcher.hallucinated(answers).tolist() == [False, False, True, False, False]
    assert matcher.abstained(answers).tolist() == [False, False, False, True, False]


def test_abstentions_are_recognised_when_cut_short_or_phrased_otherwise(matcher: AnswerMatcher) -> None:
    answers = [
        "I am not sure which city",         # the neutral answer cut at max_new_tokens
        "I am not sure which one it is.",   # ReLearn's reverse-question answer: not a request's neutral answer
        "I don't know.",
        "Paris",
        "I am",                             # too short to say it abstains
        "which city is its capital",        # not the start of the neutral answer
    ]
    assert matcher.abstained(answers).tolist() == [True, True, True, False, False, False]
    without_openings = AnswerMatcher.from_tables(NODES, MCQ, REQUESTS, threshold=85)
    without_openings.openings = []
    assert without_openings.abstained(answers).tolist() == [True, False, False, False, False, False]


def _frame(rows: list[tuple]) -> pl.DataFrame:
    columns = ["request_id", "level", "role", "answer", "target", "p0", "p1", "p0_text", "p1_text",
               "p0_hallucinated", "p1_hallucinated"]
    return pl.DataFrame(rows, schema=columns, orient="row").with_columns(k=pl.lit(10))


def test_failure_modes_on_hand_worked_open_answers() -> None:
    frame = _frame([
        # request r1: the edit reaches the direct probe (p1 = target) but not the reverse one (p1 = answer): conflict
        ("r1", "leaf", "q_plus", 0, 1, 0, 1, "Paris", "Rome", False, False),
        ("r1", "leaf", "q_plus", 2, 3, 2, 2, "Berlin", "Berlin", False, False),
        # an unrelated fact whose answer text changed but still names the same choice: drift, no CCR
        ("r1", "leaf", "q_minus", 1, -1, 1, 1, "Rome", "Rome, Italy", False, False),
        # an unrelated fact whose answer turned into an invented name: CCR and a new hallucination
        ("r1", "root", "q_minus", 3, -1, 3, -1, "Madrid", "Zorbaville", False, True),
    ])
    figures = compute_failure_modes(frame, "edit")["10"]
    overall = figures["overall"]
    assert overall["rows"] == 4
    assert overall["under_forgetting_rr"] == pytest.approx(1 / 2)  # of the 2 known Q+ rows, 1 still answers truth
    assert overall["over_spreading_ccr"] == pytest.approx(1 / 2)
    assert overall["conflict_rate"] == 1.0 and overall["conflict_emergence"] == 1.0
    assert overall["knowledge_drift"] == 1.0  # both unrelated answers changed their text
    assert overall["hallucination_before"] == 0.0 and overall["hallucination_increase"] == pytest.approx(1 / 4)
    assert figures["by_level"]["root"]["hallucination_after"] == 1.0
    assert knowledge_drift(frame.filter(pl.col("level") == "leaf")) == 1.0


# -- generation ------------------------------------------------------------------------------------------------------

QUESTIONS = ["What is the capital of France?", "Which river is the longest?", "What is the capital of France?",
             "Which metal is gold?"]
CHOICES = [["Paris", "Rome", "Berlin", "Madrid"]] * 4


def _direct_greedy(model, tokenizer, question: str, max_new_tokens: int) -> str:  # noqa: ANN001
    """One prompt at a time, no padding, token by token: the reference the batched generation must equal."""
    import torch

    from knowledgesmith.eval_harness.scoring import PairEncoder, first_line, load_prompts

    ids = PairEncoder(tokenizer).encode([load_prompts().open(question).rstrip()])[0]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([ids + out])).logits[0, -1]
            token = int(logits.argmax())
            if token == tokenizer.eos_token_id:
                break
            out.append(token)
    return first_line(tokenizer.decode(out, skip_special_tokens=True))


def test_batched_greedy_answers_equal_one_by_one_generation_on_tiny_llama(tiny_lm_dir: Path) -> None:
    pytest.importorskip("torch")
    from knowledgesmith.eval_harness.models import load_model
    from knowledgesmith.eval_harness.scoring import HfScorer, load_prompts

    model, tokenizer = load_model(str(tiny_lm_dir), device="cpu")
    got = HfScorer(model, tokenizer, batch_size=3, progress=False).score(QUESTIONS, CHOICES, ["open", "cloze"])
    assert got["open"].shape == (4,) and got["cloze"].shape == (4, 4)
    want = [_direct_greedy(model, tokenizer, q, load_prompts().open_max_new_tokens) for q in QUESTIONS]
    assert got["open"].tolist() == want
    assert got["open"][0] == got["open"][2]


def test_vllm_backend_gives_the_same_open_answers_as_hf(tiny_lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent))
    import vllm_standin

    monkeypatch.setitem(sys.modules, "vllm", vllm_standin)
    from knowledgesmith.eval_harness.models import load_model
    from knowledgesmith.eval_harness.scoring import HfScorer, make_scorer

    model, tokenizer = load_model(str(tiny_lm_dir), device="cpu")
    hf = HfScorer(model, tokenizer, progress=False).score(QUESTIONS, CHOICES, ["open"])
    vl = make_scorer("vllm", str(tiny_lm_dir)).score(QUESTIONS, CHOICES, ["open"])
    assert vl["open"].tolist() == hf["open"].tolist()


def test_hidden_states_can_be_kept_for_a_subset_of_rows_in_the_same_pass(tiny_lm_dir: Path) -> None:
    pytest.importorskip("torch")
    from knowledgesmith.eval_harness.models import load_model
    from knowledgesmith.eval_harness.scoring import HfScorer

    model, tokenizer = load_model(str(tiny_lm_dir), device="cpu")
    scorer = HfScorer(model, tokenizer, progress=False)
    everything = scorer.score(QUESTIONS, CHOICES, ["cloze"], hidden_states=True)
    subset = scorer.score(QUESTIONS, CHOICES, ["cloze"], hidden_states=[3, 1])
    assert subset["hidden"].shape == (2, *everything["hidden"].shape[1:])
    np.testing.assert_allclose(subset["hidden"], everything["hidden"][[3, 1]], atol=1e-5)
    np.testing.assert_allclose(subset["cloze"], everything["cloze"], atol=1e-9)
