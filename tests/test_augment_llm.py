"""ReLearn's LLM augmentation (`--augment-endpoint`) against our OpenAI-compatible stand-in (tests/openai_server.py):
the expected paraphrases, determinism, the disk cache, retries and clear errors with nothing cached, the leaked-answer
filter, and one ks-eval run on the tiny model whose saved training set holds the LLM's rows."""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from knowledgesmith.eval_harness import data as data_mod
from knowledgesmith.eval_harness.cli import main as ks_eval_main
from knowledgesmith.eval_harness.methods import MethodError, get_method, load_settings, requests_from_frame
from knowledgesmith.eval_harness.methods.augment import probe_questions
from knowledgesmith.eval_harness.methods.augment_llm import (
    endpoint_from_settings,
    names_answer,
    paraphrase_examples,
    question_of,
)
from knowledgesmith.eval_harness.methods.base import EditRequest
from knowledgesmith.eval_harness.methods.training import Example, examples_frame
from knowledgesmith.kggen import EndpointError

sys.path.insert(0, str(Path(__file__).parent))
from openai_server import PARAPHRASE_FRAMES, OpenAIStandIn  # noqa: E402

pytest.importorskip("openai")


@pytest.fixture(scope="module")
def selection(mini_build_dir: Path) -> data_mod.Selection:
    return data_mod.select(data_mod.load_benchmark(mini_build_dir), ks=[10], levels=["leaf"])


@pytest.fixture
def server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as srv:
        yield srv


def settings_for(url: str, cache: Path, **overrides: Any) -> dict[str, Any]:
    return load_settings("relearn", "llama", {"augment_endpoint": url, "augment_model": "standin",
                                              "augment_cache": str(cache), "augment_backoff": 0.01, **overrides})


def relearn_forget(selection: data_mod.Selection,
                   settings: dict[str, Any]) -> tuple[list[Example], pl.DataFrame | None]:
    """ReLearn's forget set for the 10 leaf requests, and the paraphrases it dropped (None without an endpoint)."""
    method = get_method("relearn")
    forget, _ = method.examples(requests_from_frame(selection.requests_for(10)), selection.mcq_for(10), settings)
    return forget, method.artifacts.get("paraphrases_dropped")


def cache_entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.json")) if cache.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- what is asked and what is kept ------------------------------------------------------------------------------------

def test_each_request_gets_its_paraphrases_toward_its_neutral_answer(
        selection: data_mod.Selection, server: OpenAIStandIn, tmp_path: Path) -> None:
    requests = requests_from_frame(selection.requests_for(10))
    forget, dropped = relearn_forget(selection, settings_for(server.url, tmp_path / "cache"))

    assert server.requests == len(requests) == 10  # one request per forget request
    llm = [e for e in forget if e.origin == "llm"]
    expected = [Example(f"Question: {frame.format(question=question_of(r))}\nAnswer:", r.neutral_answer,
                        r.request_id, "paraphrase", "llm")
                for r in requests for frame in PARAPHRASE_FRAMES[:3]]
    assert llm == expected
    assert {e.origin for e in forget if e not in llm} == {"template"}
    assert forget[-len(llm):] == llm  # after the template variants, so those are unchanged by the endpoint
    # the stand-in repeats each original question, which is a Q+ probe's exact text: never trained on
    assert dropped["reason"].to_list() == ["probe_question"] * 10
    assert dropped["text"].to_list() == [question_of(r) for r in requests]


def test_paraphrases_that_name_the_true_answer_or_repeat_a_variant_are_dropped(
        selection: data_mod.Selection, server: OpenAIStandIn, tmp_path: Path) -> None:
    spain = next(r for r in requests_from_frame(selection.requests_for(10)) if r.target_true == "Madrid")
    question = question_of(spain)  # "What is the capital of Spain?"
    server.paraphrase_extra = {question: [
        "Is Madrid the capital of Spain?",  # the original answer: the ReLearn pitfall
        "Which city, MADRID or another, is the capital of Spain?",  # the same, in other case
        "   ",
        f"Could you tell me: {question}",  # the stand-in writes this one again below: a repeat
        "Which city is Spain's capital?",  # valid: kept, so the third frame is one too many
    ]}
    forget, dropped = relearn_forget(selection, settings_for(server.url, tmp_path / "cache",
                                                             exclude_probe_questions=False))

    kept = [e.context for e in forget if e.origin == "llm" and e.source == spain.request_id]
    assert kept == [f"Question: {text}\nAnswer:" for text in
                    (f"Could you tell me: {question}", "Which city is Spain's capital?",
                     f"Here is a quiz question. {question}")]
    assert not any(names_answer(e.context, "Madrid", "Spain") for e in forget if e.origin == "llm")
    rows = dropped.filter(pl.col("source") == spain.request_id)
    assert list(zip(rows["text"], rows["reason"], strict=True)) == [
        (question, "duplicate"),  # with probe questions allowed, the original is a template variant
        ("Is Madrid the capital of Spain?", "leaks_answer"),
        ("Which city, MADRID or another, is the capital of Spain?", "leaks_answer"),
        ("", "empty"),
        (f"Could you tell me: {question}", "duplicate"),
        (f"I would like to know: {question}", "surplus"),
    ]


def test_the_answer_check_matches_whole_words_outside_the_subject() -> None:
    assert names_answer("Is Madrid the capital?", "Madrid", "Spain")
    assert names_answer("is it swedish  KRONA?", "Swedish krona", "Sweden")
    assert not names_answer("Is Madridian a word?", "Madrid", "Spain")
    # "European Central Bank" is a central bank: naming the subject alone is no leak
    assert not names_answer("European Central Bank is an instance of what?", "central bank", "European Central Bank")
    assert names_answer("Is the European Central Bank a central bank?", "central bank", "European Central Bank")


# -- determinism and the cache -----------------------------------------------------------------------------------------

def test_same_settings_give_the_same_bytes_and_a_replay_sends_no_request(
        selection: data_mod.Selection, server: OpenAIStandIn, tmp_path: Path) -> None:
    def training_bytes(cache: Path, **extra: Any) -> bytes:
        forget, _ = relearn_forget(selection, settings_for(server.url, cache, **extra))
        path = tmp_path / "frame.parquet"
        examples_frame(forget, "forget").write_parquet(path)
        return path.read_bytes()

    first = training_bytes(tmp_path / "a")
    assert training_bytes(tmp_path / "b") == first  # asked again from scratch: the same answers, the same order
    assert server.requests == 20
    server.reset()
    assert training_bytes(tmp_path / "a") == first  # replayed
    assert server.requests == 0
    assert len(cache_entries(tmp_path / "a")) == 10
    entry = json.loads(cache_entries(tmp_path / "a")[0].read_text())
    assert entry["request"]["temperature"] == 0.0 and entry["request"]["seed"] == 0
    assert entry["endpoint"] == server.url
    # the seed is part of every request: another seed is asked afresh
    training_bytes(tmp_path / "a", seed=1)
    assert server.requests == 10


def test_flaky_answers_are_retried_and_give_the_same_paraphrases(
        selection: data_mod.Selection, server: OpenAIStandIn, tmp_path: Path) -> None:
    clean, _ = relearn_forget(selection, settings_for(server.url, tmp_path / "clean"))
    server.reset()
    server.inject("malformed", 1, stage="paraphrase")
    server.inject("schema_invalid", 1, stage="paraphrase")
    server.inject("server_error", 1, stage="paraphrase")
    server.inject("rate_limit", 1, stage="paraphrase")
    server.inject("slow", 1, stage="paraphrase", seconds=2.5)
    settings = settings_for(server.url, tmp_path / "flaky", augment_timeout=1.0)
    endpoint = endpoint_from_settings(settings)
    paraphrased = paraphrase_examples(requests_from_frame(selection.requests_for(10)),
                                      [e for e in clean if e.origin == "template"],
                                      probe_questions(selection.mcq_for(10)), settings,
                                      answer_of=lambda r: r.neutral_answer, endpoint=endpoint)

    assert endpoint.stats.retry_reasons == {"malformed_json": 1, "schema_invalid": 1, "server_error": 1,
                                            "rate_limit": 1, "timeout": 1}
    assert paraphrased.examples == [e for e in clean if e.origin == "llm"]
    assert len(cache_entries(tmp_path / "flaky")) == 10


def test_answers_that_stay_invalid_stop_with_the_endpoint_named_and_nothing_cached(
        selection: data_mod.Selection, server: OpenAIStandIn, tmp_path: Path) -> None:
    server.inject("schema_invalid", 1000, stage="paraphrase")
    cache = tmp_path / "cache"
    with pytest.raises(EndpointError, match=rf"^augmentation: no valid answer from {re.escape(server.url)} after "
                                            r"3 attempts: the JSON does not match the schema"):
        relearn_forget(selection, settings_for(server.url, cache, augment_retries=2))
    assert cache_entries(cache) == []


def test_an_endpoint_without_a_model_name_is_a_user_error(selection: data_mod.Selection, tmp_path: Path) -> None:
    with pytest.raises(MethodError, match="--augment-model NAME"):
        relearn_forget(selection, settings_for("http://127.0.0.1:9/v1", tmp_path, augment_model=None))


def test_no_endpoint_means_template_variants_only(selection: data_mod.Selection) -> None:
    forget, dropped = relearn_forget(selection, load_settings("relearn", "llama"))
    assert {e.origin for e in forget} == {"template"} and dropped is None


def test_the_question_asked_is_the_first_phrasing_or_the_fill_in_sentence() -> None:
    founded = EditRequest("r", "Zorbia", "{} was founded by", "Ann", "Bob", "I am not sure.", "urn:x:foundedBy")
    assert question_of(founded) == "What is the foundedBy of Zorbia?"  # a generic phrasing from the label
    assert question_of(EditRequest("r", "Zorbia", "{} was founded by", "Ann", "Bob", "I am not sure.")) == \
        "Zorbia was founded by"


# -- through ks-eval ---------------------------------------------------------------------------------------------------

def ks_eval(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = ks_eval_main([str(a) for a in args])
    return code, capsys.readouterr().err


def eval_args(mini_build_dir: Path, tiny_lm_dir: Path, out: Path, cache: Path, *extra: str) -> list[str | Path]:
    return ["--model", tiny_lm_dir, "--data", mini_build_dir, "--method", "relearn", "--level", "leaf", "--k", "1",
            "--modes", "cloze", "--device", "cpu", "--dtype", "float32", "--drift-probes", "8",
            "--set", "max_steps=1", "--set", f"augment_cache={cache}",
            "--set", "augment_backoff=0.01", "--out", out, "--quiet", *extra]


def test_ks_eval_relearn_trains_on_the_endpoints_paraphrases(
        mini_build_dir: Path, tiny_lm_dir: Path, server: OpenAIStandIn, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("peft")
    out = tmp_path / "run"
    code, err = ks_eval(capsys, *eval_args(mini_build_dir, tiny_lm_dir, out, tmp_path / "cache",
                                           "--augment-endpoint", server.url, "--augment-model", "standin"))
    assert code == 0, err
    assert server.requests == 1  # k = 1: one request
    training = pl.read_parquet(out / "artifacts" / "k=1-training_set.parquet")
    llm = training.filter(pl.col("origin") == "llm")
    assert llm.height == 3 and set(llm["form"]) == {"paraphrase"} and set(llm["role"]) == {"forget"}
    assert set(training["origin"]) == {"template", "llm", "probe"}
    assert pl.read_parquet(out / "artifacts" / "k=1-paraphrases_dropped.parquet")["reason"].to_list() == \
        ["probe_question"]
    settings = json.loads((out / "config.json").read_text())["method"]["settings"]
    assert settings["augment_endpoint"] == server.url and settings["augment_model"] == "standin"


def test_ks_eval_with_an_unreachable_endpoint_exits_2_with_one_line(
        mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("peft")
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, err = ks_eval(capsys, *eval_args(mini_build_dir, tiny_lm_dir, tmp_path / "run", tmp_path / "cache",
                                           "--augment-endpoint", url, "--augment-model", "standin",
                                           "--set", "augment_retries=1"))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"ks-eval: augmentation: no valid answer from {url} after 2 attempts: cannot reach {url}")
    assert cache_entries(tmp_path / "cache") == []


def test_augment_flags_need_relearn_in_the_run(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, err = ks_eval(capsys, "--model", tiny_lm_dir, "--data", mini_build_dir, "--method", "ga", "--out",
                        tmp_path / "run", "--augment-endpoint", "http://127.0.0.1:9/v1", "--quiet")
    assert code == 2 and "'relearn' is not a method of this run" in err
