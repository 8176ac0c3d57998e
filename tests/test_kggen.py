"""`ks-kg generate` against a local OpenAI-compatible server of ours (tests/openai_server.py): the staged generation,
its checks and drops report, retries, the JSON-mode fallback, streaming, the cache (replay, resume after SIGKILL),
budgets, and user errors as one line with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.kggen import ChatEndpoint, EndpointError
from knowledgesmith.kggen.cli import main as ks_kg_main
from knowledgesmith.kggen.generate import STAGES, Prompts
from knowledgesmith.kggen.names import NameIndex
from knowledgesmith.kggen.schema import schema_errors

sys.path.insert(0, str(Path(__file__).parent))
from openai_server import EXPECTED_DROPS, EXPECTED_FACTS, EXPECTED_REQUESTS, OpenAIStandIn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = ["--roots", "2", "--subthemes", "2", "--leaves", "4"]


@pytest.fixture
def server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as srv:
        yield srv


@pytest.fixture
def ks_kg(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run `ks-kg generate` in-process against an endpoint; returns (exit code, stderr)."""

    def run(url: str, out: Path, cache: Path, *extra: str) -> tuple[int, str]:
        code = ks_kg_main(["generate", "--domain", "Veloria", "--model", "standin", "--endpoint", url,
                           "--out", str(out), "--cache", str(cache), "--quiet", "--backoff", "0.01", *SIZES,
                           *extra])
        return code, capsys.readouterr().err

    return run


def _report(out: Path) -> dict[str, Any]:
    return json.loads(out.with_name(out.stem + ".report.json").read_text())


def _cache_entries(cache: Path) -> int:
    return sum(1 for _ in cache.glob("*/*.json")) if cache.exists() else 0


def test_a_run_through_a_misbehaving_server_retries_falls_back_and_its_kg_builds_and_verifies(
        ks_kg: Callable[..., tuple[int, str]], run_ks_build: Callable[..., Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAIStandIn(reject_json_schema=True) as srv:
        srv.inject("server_error", 1, stage="subthemes")
        srv.inject("schema_invalid", 1, stage="relations")
        srv.inject("slow", 1, stage="leaves", seconds=2.5)
        srv.inject("rate_limit", 2, stage="facts")
        srv.inject("malformed", 1, stage="verify")
        code, err = ks_kg(srv.url, tmp_path / "veloria.ttl", tmp_path / "cache", "--timeout", "1")
        statuses, formats = dict(srv.statuses), dict(srv.response_formats)

    assert code == 0, err
    run = _report(tmp_path / "veloria.ttl")["cost"]["this_run"]
    assert run["retries"] == 6
    assert run["retry_reasons"] == {"malformed_json": 1, "rate_limit": 2, "schema_invalid": 1, "server_error": 1,
                                    "timeout": 1}
    assert run["structured_output_fallbacks"] == 1
    assert formats == {"json_schema": 1, "json_object": EXPECTED_REQUESTS + 6}
    assert run["http_requests"] == EXPECTED_REQUESTS + 6 + 1
    assert statuses[400] == 1 and statuses[429] == 2 and statuses[503] == 1
    assert _cache_entries(tmp_path / "cache") == EXPECTED_REQUESTS

    built = run_ks_build("--kg", tmp_path / "veloria.ttl", "--out", tmp_path / "build", "--workers", "1", "--quiet")
    assert built.code == 0, built.err
    nodes = (tmp_path / "build" / "manifest.json").read_text()
    assert json.loads(nodes)["counts"]["nodes_per_level"] == {"root": 2, "intermediate": 4, "leaf": 16}
    assert ks_build_main(["verify", str(tmp_path / "build"), "--workers", "1"]) == 0
    assert "all" in capsys.readouterr().out


def test_the_report_lists_every_dropped_fact_with_its_reason_and_the_counts_per_level(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    code, err = ks_kg(server.url, tmp_path / "veloria.ttl", tmp_path / "cache")

    assert code == 0, err
    report = _report(tmp_path / "veloria.ttl")
    assert report["counts"] | {"aliases": 0} == {"root": 2, "intermediate": 4, "leaf": 16, "facts": EXPECTED_FACTS,
                                                  "facts_proposed": EXPECTED_FACTS + 2, "hierarchy_facts": 20,
                                                  "relations": 4, "inverse_relations": 3, "aliases": 0}
    assert report["drop_counts"] == EXPECTED_DROPS
    drops = {(d["kind"], d["item"]): d["reason"] for d in report["drops"]}
    assert drops[("self_consistency", "Ilsa Jorn bornIn Corvin Hollow")] == \
        "asked again as \"Ilsa Jorn bornIn ___\", the answer was ['Dunmere']"
    assert drops[("functional", "Ambervale liesOn Bellwater")] == \
        "contradicts the kept fact Ambervale liesOn Ash River (liesOn is functional)"
    assert drops[("range", "Kael Lume bornIn Silver Tide")] == "'Silver Tide' is an Opera, not a Town"
    assert drops[("domain", "Dunwater bornIn Ambervale")] == "'Dunwater' is a River, not a Composer"
    assert drops[("unknown_object", "Winter Bell composedBy Atlantis Smith")] == \
        "'Atlantis Smith' is not an entity of the KG"
    assert {"level": "leaf", "name": "Amber Vale", "into": "Ambervale"} in report["merged"]
    provenance = report["provenance"]
    assert (provenance["model"], provenance["endpoint"], provenance["date"], provenance["seed"]) == (
        "standin", server.url, "2025-11-24", 0)
    assert set(provenance["prompt_files_sha256"]) == {"prompts.yaml", "schemas.yaml", "relations.yaml"}
    assert report["cost"]["kg"]["requests"] == EXPECTED_REQUESTS

    turtle = (tmp_path / "veloria.ttl").read_text()
    assert "# model: standin\n" in turtle and f"# endpoint: {server.url}\n" in turtle
    assert 'skos:altLabel "Amber Vale"@en' in turtle  # the near-duplicate entity became an alias
    assert "kg:Ilsa_Jorn kgr:bornIn" not in turtle and "kg:Elia_Fenn kgr:bornIn kg:Ambervale" in turtle
    assert '"1871"^^xsd:gYear' in turtle and "eighteen" not in turtle


def test_a_rerun_replays_the_cache_with_no_request_and_writes_identical_bytes(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    assert ks_kg(server.url, tmp_path / "a" / "veloria.ttl", tmp_path / "cache")[0] == 0
    server.reset()

    code, err = ks_kg(server.url, tmp_path / "b" / "veloria.ttl", tmp_path / "cache")

    assert code == 0, err
    assert server.requests == 0
    assert (tmp_path / "a" / "veloria.ttl").read_bytes() == (tmp_path / "b" / "veloria.ttl").read_bytes()
    run = _report(tmp_path / "b" / "veloria.ttl")["cost"]
    assert (run["this_run"]["http_requests"], run["this_run"]["cache_hits"]) == (0, EXPECTED_REQUESTS)
    assert run["kg"]["requests"] == EXPECTED_REQUESTS  # what the KG cost is kept even when replayed


def test_streamed_answers_and_any_concurrency_give_the_same_kg(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    assert ks_kg(server.url, tmp_path / "plain.ttl", tmp_path / "c1", "--concurrency", "1")[0] == 0
    server.reset()
    code, err = ks_kg(server.url, tmp_path / "streamed.ttl", tmp_path / "c2", "--stream", "--concurrency", "8")

    assert code == 0, err
    assert server.streamed == EXPECTED_REQUESTS
    assert (tmp_path / "plain.ttl").read_bytes() == (tmp_path / "streamed.ttl").read_bytes()
    assert _report(tmp_path / "streamed.ttl")["cost"]["this_run"]["total_tokens"] > 0  # usage of the last chunk


def test_a_run_killed_mid_way_resumes_from_its_cache_to_the_same_bytes(
        ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    held = 20
    with OpenAIStandIn(hold_after=held) as srv:
        cmd = [sys.executable, "-m", "knowledgesmith.kggen.cli", "generate", "--domain", "Veloria", "--model",
               "standin", "--endpoint", srv.url, "--out", str(tmp_path / "killed" / "veloria.ttl"), "--cache",
               str(tmp_path / "cache"), "--quiet", "--concurrency", "1", *SIZES]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + 60
        while srv.requests <= held and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
        assert _cache_entries(tmp_path / "cache") == held
        assert not (tmp_path / "killed" / "veloria.ttl").exists()
        srv.hold_after = None
        srv.released.set()
        srv.reset()

        code, err = ks_kg(srv.url, tmp_path / "resumed" / "veloria.ttl", tmp_path / "cache")
        assert code == 0, err
        assert srv.requests == EXPECTED_REQUESTS - held
        srv.reset()
        assert ks_kg(srv.url, tmp_path / "whole" / "veloria.ttl", tmp_path / "fresh-cache")[0] == 0
        assert srv.requests == EXPECTED_REQUESTS

    assert (tmp_path / "resumed" / "veloria.ttl").read_bytes() == (tmp_path / "whole" / "veloria.ttl").read_bytes()


def test_a_spent_request_budget_stops_with_one_line_and_exit_2_and_keeps_the_cache(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    code, err = ks_kg(server.url, tmp_path / "veloria.ttl", tmp_path / "cache", "--max-requests", "10")

    assert code == 2
    assert err.startswith("ks-kg: error: ") and err.count("\n") == 1
    assert "request budget spent (10 requests sent, --max-requests 10)" in err
    assert not (tmp_path / "veloria.ttl").exists()
    assert _cache_entries(tmp_path / "cache") == 10
    server.reset()
    assert ks_kg(server.url, tmp_path / "veloria.ttl", tmp_path / "cache")[0] == 0
    assert server.requests == EXPECTED_REQUESTS - 10


def test_a_spent_token_budget_stops_with_one_line_and_exit_2(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    code, err = ks_kg(server.url, tmp_path / "veloria.ttl", tmp_path / "cache", "--max-tokens-total", "1000",
                      "--concurrency", "1")

    assert code == 2
    assert err.count("\n") == 1 and "token budget spent" in err and "--max-tokens-total 1000" in err


def test_an_unreachable_endpoint_is_a_one_line_error_without_traceback(
        ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    code, err = ks_kg(f"http://127.0.0.1:{port}/v1", tmp_path / "veloria.ttl", tmp_path / "cache", "--retries", "1")

    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"ks-kg: error: roots: no valid answer from http://127.0.0.1:{port}/v1 after 2 attempts: "
                          f"cannot reach http://127.0.0.1:{port}/v1")


def test_an_answer_still_invalid_after_the_retries_names_the_stage_and_nothing_is_cached(
        server: OpenAIStandIn, ks_kg: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    server.inject("malformed", 3)

    code, err = ks_kg(server.url, tmp_path / "veloria.ttl", tmp_path / "cache", "--retries", "2")

    assert code == 2
    assert err.startswith(f"ks-kg: error: roots: no valid answer from {server.url} after 3 attempts: malformed JSON")
    assert _cache_entries(tmp_path / "cache") == 0


def test_the_endpoint_client_is_generic_text_and_json(server: OpenAIStandIn, tmp_path: Path) -> None:
    endpoint = ChatEndpoint("standin", base_url=server.url, cache_dir=tmp_path / "cache", backoff=0.01)
    text = endpoint.complete_text([{"role": "user", "content": "Paraphrase: the sky is blue."}], stage="paraphrase")
    prompts = Prompts.load()
    roots = endpoint.complete_json(prompts.messages("roots", domain="Veloria", n=2), prompts.schemas["roots"],
                                   stage="roots")

    assert text == "You said: Paraphrase: the sky is blue."
    assert roots["roots"][0]["name"] == "Velorian geography"
    assert endpoint.stats.requests == 2
    assert endpoint.complete_text([{"role": "user", "content": "Paraphrase: the sky is blue."}]) == text
    assert endpoint.stats.requests == 2 and endpoint.stats.cache_hits == 1


def test_a_refused_request_is_not_retried(server: OpenAIStandIn, tmp_path: Path) -> None:
    endpoint = ChatEndpoint("standin", base_url=server.url.replace("/v1", "/v2"), retries=3, backoff=0.01)
    with pytest.raises(EndpointError, match=r"^paraphrase: .* refused the request \(404\)"):
        endpoint.complete_text([{"role": "user", "content": "hi"}], stage="paraphrase")
    assert endpoint.stats.requests == 1


def test_without_the_openai_package_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                              ks_kg: Callable[..., tuple[int, str]],
                                                              tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` raise ImportError

    code, err = ks_kg("http://127.0.0.1:9/v1", tmp_path / "veloria.ttl", tmp_path / "cache")

    assert code == 2
    assert err == "ks-kg: error: talking to an LLM endpoint needs the openai client: " \
                  "pip install 'knowledgesmith[llm]'\n"


def test_prompts_and_schemas_are_readable_data_files_shipped_with_the_package() -> None:
    files = resources.files("knowledgesmith.kggen")
    prompts = yaml.safe_load(files.joinpath("prompts.yaml").read_text())
    schemas = yaml.safe_load(files.joinpath("schemas.yaml").read_text())
    guide = yaml.safe_load(files.joinpath("relations.yaml").read_text())

    assert set(prompts["stages"]) == set(STAGES) == set(schemas)
    assert {"count", "literal_ranges", "guidelines"} <= set(guide)
    for stage in STAGES:  # strict structured outputs need every property required and nothing else allowed
        schema = schemas[stage]
        assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])


def test_the_schema_validator_reports_where_an_answer_breaks_the_schema() -> None:
    schema = yaml.safe_load((REPO / "kggen" / "schemas.yaml").read_text())["facts"]

    assert schema_errors({"facts": [{"relation": "bornIn", "object": "Ambervale"}]}, schema) == []
    assert schema_errors({"facts": [{"relation": "bornIn"}], "extra": 1}, schema) == [
        "$: unexpected property 'extra'", "$.facts[0]: missing required property 'object'"]
    assert schema_errors({"facts": [{"relation": True, "object": "x"}]}, schema) == [
        "$.facts[0].relation: expected string, got bool"]


def test_names_merge_when_they_read_alike_but_never_across_different_numbers() -> None:
    index = NameIndex(threshold=90)
    index.add(0, "Ambervale")
    index.add(1, "Article 16")

    assert index.find("Amber Vale") == 0
    assert index.find("the Ambervale") == 0
    assert index.find("Article 15") is None
    assert index.find("article 16.") == 1
