"""ReLearn, gradient ascent, NPO and the LoRA baseline on the tiny random Llama: losses, masks, bounded training,
the augmented forget set, and the run folder's curves and training sets."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from knowledgesmith.eval_harness import data as data_mod
from knowledgesmith.eval_harness.methods import MethodError, get_method, load_settings, requests_from_frame
from knowledgesmith.eval_harness.methods.augment import augment, normalise_question
from knowledgesmith.eval_harness.methods.training import (
    Example,
    encode_examples,
    masked_kl,
    mean_answer_nll,
    qa_context,
    retain_examples,
    sequence_logits,
)
from knowledgesmith.eval_harness.run import RunConfig, evaluate

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def selection(mini_build_dir: Path) -> data_mod.Selection:
    return data_mod.select(data_mod.load_benchmark(mini_build_dir), ks=[10], levels=["leaf"])


@pytest.fixture
def tiny(tiny_lm_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.float32).eval(), \
        AutoTokenizer.from_pretrained(tiny_lm_dir)


def settings_of(method: str, **overrides: Any) -> dict[str, Any]:
    return load_settings(method, "llama", overrides)


def nll_of(model: Any, tokenizer: Any, examples: list[Example]) -> float:
    with torch.no_grad():
        batch = encode_examples(tokenizer, examples)
        return float(mean_answer_nll(sequence_logits(model, batch), batch))


# -- the augmented forget set ------------------------------------------------------------------------------------------

def test_augmentation_is_deterministic_per_seed_and_request(selection: data_mod.Selection) -> None:
    requests = requests_from_frame(selection.requests_for(10))
    probes = selection.mcq_for(10)
    settings = settings_of("relearn")

    def run(reqs: list, seed: int) -> list[Example]:
        return augment(reqs, probes, {**settings, "seed": seed}, answer_of=lambda r: r.neutral_answer,
                       reverse_answer_of=lambda r: "?")

    first = run(requests, 0)
    assert first == run(requests, 0)
    assert first != run(requests, 1)  # the typos and context prefixes follow the seed
    # a request's variants do not depend on the other requests or their order
    alone = run(requests[3:4], 0)
    assert alone == [e for e in run(list(reversed(requests)), 0) if e.source == requests[3].request_id]
    forms = {e.form for e in first}
    assert {"prompt", "context", "typo", "reverse+context", "reverse+typo"} <= forms


def test_exact_probe_questions_are_never_trained_on(selection: data_mod.Selection) -> None:
    requests = requests_from_frame(selection.requests_for(10))
    probes = selection.mcq_for(10)
    settings = settings_of("relearn")
    q_plus = {normalise_question(qa_context(q, settings))
              for q in probes.filter(pl.col("role") == "q_plus")["question"].to_list()}

    def contexts(**extra: Any) -> set[str]:
        examples = augment(requests, probes, {**settings, **extra}, answer_of=lambda r: r.neutral_answer,
                           reverse_answer_of=lambda r: "?")
        return {normalise_question(e.context) for e in examples}

    assert not contexts() & q_plus
    # the filter is what keeps them out: the shipped phrasings are the direct probes' questions
    assert contexts(exclude_probe_questions=False) & q_plus


def test_retain_set_is_a_stable_share_of_contextual_probes(selection: data_mod.Selection) -> None:
    probes = selection.mcq_for(10)
    contextual = probes.filter((pl.col("role") == "q_minus") & (pl.col("probe_type") == "contextual"))
    half = retain_examples(probes, {"retain_fraction": 0.5, "qa_format": "Question: {question}\nAnswer:"})
    assert 0.3 * contextual.height < len(half) < 0.7 * contextual.height
    by_id = {row["id"]: row for row in contextual.iter_rows(named=True)}
    for example in half:
        row = by_id[example.source]
        assert example.answer == row["choices"][row["answer"]]
        assert example.context == f"Question: {row['question']}\nAnswer:"
    shuffled = retain_examples(probes.sample(fraction=1.0, shuffle=True, seed=3),
                               {"retain_fraction": 0.5, "qa_format": "Question: {question}\nAnswer:"})
    assert shuffled == half
    assert not retain_examples(probes, {"retain_fraction": 0.0, "qa_format": "{question}"})


# -- losses and masks --------------------------------------------------------------------------------------------------

def test_nll_counts_answer_tokens_only_and_ignores_padding(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    short = Example("Question: what is the capital?\nAnswer:", "paris", "a", "x")
    long = Example("Question: which river is the largest of the country of the red planet?\nAnswer:",
                   "nile amazon", "b", "x")
    together = nll_of(model, tokenizer, [short, long])
    assert together == pytest.approx((nll_of(model, tokenizer, [short]) + nll_of(model, tokenizer, [long])) / 2,
                                     rel=1e-5)
    batch = encode_examples(tokenizer, [short])
    answer_tokens = len(tokenizer(" paris", add_special_tokens=False)["input_ids"])
    assert int((batch.labels != -100).sum()) == answer_tokens


def test_kl_is_averaged_over_real_tokens_only(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    other = type(model)(model.config).eval()  # a different random model: KL > 0
    texts = [Example("Question: what is the capital?\nAnswer:", "rome", "a", "x"),
             Example("Question: which planet is the largest red gas planet of all?\nAnswer:", "iron gold", "b", "x")]
    with torch.no_grad():
        per_example = []
        for example in texts:
            batch = encode_examples(tokenizer, [example])
            tokens = int(batch.attention[:, 1:].sum())
            per_example.append((float(masked_kl(sequence_logits(other, batch), sequence_logits(model, batch),
                                                batch.attention)), tokens))
        batch = encode_examples(tokenizer, texts)
        padded = float(masked_kl(sequence_logits(other, batch), sequence_logits(model, batch), batch.attention))
        same = float(masked_kl(sequence_logits(model, batch), sequence_logits(model, batch), batch.attention))
    assert batch.attention.min() == 0  # the short example is padded
    weighted = sum(kl * n for kl, n in per_example) / sum(n for _, n in per_example)
    assert padded == pytest.approx(weighted, rel=1e-4)
    assert same == pytest.approx(0.0, abs=1e-6)


# -- the methods -------------------------------------------------------------------------------------------------------

def forget_examples(method: str, selection: data_mod.Selection, settings: dict[str, Any]) -> list[Example]:
    return get_method(method).examples(requests_from_frame(selection.requests_for(10)), selection.mcq_for(10),
                                       settings)[0]


def test_relearn_learns_the_neutral_answers_and_merges_its_adapters(tiny: tuple[Any, Any],
                                                                    selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    names_before = list(model.state_dict())
    flags = [p.requires_grad for p in model.parameters()]
    settings = settings_of("relearn", lr=1e-2, max_steps=8, forms=["prompt", "context"])
    forget = forget_examples("relearn", selection, settings)
    assert {e.answer for e in forget} == \
        set(selection.requests_for(10)["neutral_answer"].to_list())
    before = nll_of(model, tokenizer, forget)
    method = get_method("relearn")
    returned = method.apply(model, tokenizer, requests_from_frame(selection.requests_for(10)), selection.mcq_for(10),
                            settings)
    assert returned is model and list(model.state_dict()) == names_before  # adapters merged, no peft modules left
    assert not any("lora" in name for name, _ in model.named_modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert len(method.curve) == 8
    assert nll_of(model, tokenizer, forget) < before - 0.5
    first = method.curve[0]
    assert set(first["terms"]) == {"forget_nll", "retain_kl", "retain_nll"}
    assert first["terms"]["retain_kl"] == pytest.approx(0.0, abs=1e-5)  # LoRA starts at the base model
    assert first["loss"] == pytest.approx(sum(first["terms"].values()), rel=1e-5)
    training = method.artifacts["training_set"]
    assert set(training["role"].unique()) == {"forget", "retain"}


def test_full_fine_tuning_flag_trains_every_weight(tiny: tuple[Any, Any], selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    flags = [p.requires_grad for p in model.parameters()]
    base = {name: t.clone() for name, t in model.state_dict().items()}
    method = get_method("relearn")
    method.apply(model, tokenizer, requests_from_frame(selection.requests_for(10)), selection.mcq_for(10),
                 settings_of("relearn", use_lora=False, lr=1e-3, max_steps=3))
    changed = [name for name, t in model.state_dict().items() if not torch.equal(t, base[name])]
    assert "model.embed_tokens.weight" in changed and len(changed) > len(base) // 2
    assert [p.requires_grad for p in model.parameters()] == flags
    assert method.curve[1]["terms"]["retain_kl"] > 0  # the frozen copy did not move with the model


def test_gradient_ascent_raises_the_true_answers_nll(tiny: tuple[Any, Any], selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    settings = settings_of("ga", lr=1e-2, max_steps=8)
    forget = forget_examples("ga", selection, settings)
    assert {e.answer for e in forget if e.form == "prompt"} == set(selection.requests_for(10)["target_true"])
    before = nll_of(model, tokenizer, forget)
    method = get_method("ga")
    method.apply(model, tokenizer, requests_from_frame(selection.requests_for(10)), selection.mcq_for(10), settings)
    assert nll_of(model, tokenizer, forget) > before + 0.3
    assert method.curve[0]["loss"] == pytest.approx(-method.curve[0]["terms"]["forget_nll"])
    assert method.curve[-1]["loss"] < method.curve[0]["loss"]
    assert set(method.artifacts["training_set"]["role"]) == {"forget"}  # no retain term by default


def test_npo_starts_at_two_over_beta_log_two_and_falls(tiny: tuple[Any, Any],
                                                       selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    method = get_method("npo")
    settings = settings_of("npo", lr=1e-2, max_steps=8, retain_weight=1.0)
    method.apply(model, tokenizer, requests_from_frame(selection.requests_for(10)), selection.mcq_for(10), settings)
    first, last = method.curve[0], method.curve[-1]
    assert first["terms"]["npo"] == pytest.approx(2 / settings["beta"] * math.log(2), rel=1e-4)
    assert last["terms"]["npo"] < first["terms"]["npo"]
    assert "retain_nll" in first["terms"]


def test_lora_edit_moves_the_prompts_toward_the_new_objects(tiny: tuple[Any, Any],
                                                            selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    settings = settings_of("lora", lr=1e-2, max_steps=10)
    edits = forget_examples("lora", selection, settings)
    assert [e.answer for e in edits] == selection.requests_for(10).sort("request_id")["target_new"].to_list() or \
        {e.answer for e in edits} == set(selection.requests_for(10)["target_new"])
    before = nll_of(model, tokenizer, edits)
    get_method("lora").apply(model, tokenizer, requests_from_frame(selection.requests_for(10)),
                             selection.mcq_for(10), settings)
    assert nll_of(model, tokenizer, edits) < before - 0.5
    with pytest.raises(MethodError, match="reverse"):
        forget_examples("lora", selection, {**settings, "forms": ["prompt", "reverse"]})


@pytest.mark.parametrize("epochs, max_steps, batch_size", [(1, None, 4), (2, None, 4), (3, 5, 4)])
def test_epochs_and_max_steps_bound_the_steps(tiny: tuple[Any, Any], selection: data_mod.Selection, epochs: int,
                                              max_steps: int | None, batch_size: int) -> None:
    model, tokenizer = tiny
    settings = settings_of("ga", epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=1e-4, forms=["prompt"])
    method = get_method("ga")
    method.apply(model, tokenizer, requests_from_frame(selection.requests_for(10)), selection.mcq_for(10), settings)
    per_epoch = math.ceil(len(forget_examples("ga", selection, settings)) / batch_size)
    expected = min(epochs * per_epoch, max_steps or 10 ** 9)
    assert [entry["step"] for entry in method.curve] == list(range(1, expected + 1))
    assert method.curve[-1]["epoch"] == (expected - 1) // per_epoch


def test_unknown_form_and_bad_epochs_are_user_errors(tiny: tuple[Any, Any], selection: data_mod.Selection) -> None:
    model, tokenizer = tiny
    requests = requests_from_frame(selection.requests_for(10))
    with pytest.raises(MethodError, match="forms: paraphrase not known"):
        get_method("relearn").apply(model, tokenizer, requests, selection.mcq_for(10),
                                    settings_of("relearn", forms=["paraphrase"]))
    with pytest.raises(MethodError, match="epochs"):
        get_method("ga").apply(model, tokenizer, requests, selection.mcq_for(10), settings_of("ga", epochs=0))


# -- through ks-eval: the run folder -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["relearn", "ga", "npo", "lora"])
def test_run_folder_holds_curve_and_training_set(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                                 method: str) -> None:
    out = tmp_path / "run"
    config = RunConfig(model=str(tiny_lm_dir), method=method, data=str(mini_build_dir), levels=["leaf"], ks=[1, 10],
                       modes=["cloze"], device="cpu", dtype="float32", settings={"max_steps": 2})
    metrics = evaluate(config, out, progress=False, log=lambda message: None)
    assert metrics["kind"] == ("edit" if method == "lora" else "unlearn")
    for k in (1, 10):
        curve = json.loads((out / "curves" / f"k={k}.json").read_text())
        assert [entry["step"] for entry in curve] == [1, 2]
        assert all(math.isfinite(entry["loss"]) for entry in curve)
        training = pl.read_parquet(out / "artifacts" / f"k={k}-training_set.parquet")
        assert training.filter(pl.col("role") != "retain")["source"].n_unique() == k
    settings = json.loads((out / "config.json").read_text())["method"]["settings"]
    assert settings["max_steps"] == 2


def test_relearn_training_set_in_run_folder_is_reproducible(mini_build_dir: Path, tiny_lm_dir: Path,
                                                            tmp_path: Path) -> None:
    def run(out: Path, seed: int) -> pl.DataFrame:
        config = RunConfig(model=str(tiny_lm_dir), method="relearn", data=str(mini_build_dir), levels=["leaf"], ks=[1],
                           modes=["cloze"], device="cpu", dtype="float32", settings={"max_steps": 1, "seed": seed})
        evaluate(config, out, progress=False, log=lambda message: None)
        return pl.read_parquet(out / "artifacts" / "k=1-training_set.parquet")

    first = run(tmp_path / "a", 0)
    assert first.equals(run(tmp_path / "b", 0))
    assert not first.equals(run(tmp_path / "c", 5))


def test_unrelated_retain_set_never_asks_about_an_evaluated_fact(selection: data_mod.Selection) -> None:
    from knowledgesmith.eval_harness.methods.training import _fact_key

    probes = selection.mcq_for(1)
    benchmark = selection.mcq
    settings = {"retain_source": "unrelated", "retain_per_request": 3, "qa_format": "Question: {question}\nAnswer:"}
    retain = retain_examples(probes, settings, benchmark)
    assert len(retain) == 3 * probes["request_id"].n_unique()
    by_id = {row["id"]: row for row in benchmark.iter_rows(named=True)}
    evaluated = {_fact_key(row) for row in probes.iter_rows(named=True)}
    forget_subjects = set(probes.filter(pl.col("role") == "q_plus")["query_subject_id"].to_list())
    facts = [_fact_key(by_id[e.source]) for e in retain]
    assert len(set(facts)) == len(facts)  # one probe per fact
    for example in retain:
        row = by_id[example.source]
        assert row["probe_type"] == "direct" and row["request_id"] not in set(probes["request_id"])
        assert _fact_key(row) not in evaluated and row["query_subject_id"] not in forget_subjects
    assert retain_examples(probes.reverse(), settings, benchmark.reverse()) == retain  # order does not matter


def test_retain_data_adds_another_builds_facts_about_entities_no_evaluated_question_names(
        selection: data_mod.Selection, run_ks_build: Any, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    sample_kg = Path(__file__).resolve().parents[1] / "kg" / "sample.ttl"
    assert run_ks_build("--kg", sample_kg, "--out", sample, "--max-k", "100", "--quiet").code == 0
    probes = selection.mcq_for(10)
    settings = {"retain_source": "unrelated", "retain_per_request": 10, "qa_format": "Question: {question}\nAnswer:"}
    own = retain_examples(probes, settings, selection.mcq)
    both = retain_examples(probes, {**settings, "retain_data": str(sample)}, selection.mcq)
    assert set(own) < set(both) and len(both) > 2 * len(own)
    other = data_mod.load_benchmark(sample)
    by_id = {row["id"]: row for row in other.mcq.iter_rows(named=True)}
    labels = dict(zip(other.nodes["node_id"], other.nodes["label"], strict=True))
    asked = " ".join(probes["question"].to_list()).casefold()
    added = [e for e in both if e.source in by_id]
    assert len(added) == len(both) - len(own)
    for example in added:
        row = by_id[example.source]
        assert row["probe_type"] == "direct" and example.answer == row["choices"][row["answer"]]
        assert not re.search(rf"\b{re.escape(labels[row['query_subject_id']].casefold())}\b", asked)
    # the sample KG shares countries with the mini KG: those are left out, the others come in
    assert "spain" in asked and not any("Spain" in e.context for e in added)
    assert any("Kenya" in e.context for e in added)
    assert retain_examples(probes.reverse(), {**settings, "retain_data": str(sample)}, selection.mcq) == both
