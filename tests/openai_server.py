"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for tests, speaking the real wire format.

It answers `ks-kg generate`'s prompts for an invented domain ("Veloria": towns, rivers, composers, operas) from a
script, recognising each stage by its prompt, in JSON or as server-sent events. It also answers ks-eval's ReLearn
augmentation prompts ("Task: paraphrase a question") with scripted paraphrases. It can be told to misbehave:
rate limits (429 with Retry-After), answers slower than the client's timeout, server errors, malformed or
schema-invalid JSON, rejecting `response_format: json_schema` (400), a second phrasing that disagrees with the first,
and holding every request after the Nth until released (so a test can kill a client mid-run).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from localserver import QuietHTTPServer

CREATED = 1_764_000_000  # a fixed `created` timestamp (2025-11-24), so KG provenance is reproducible

ROOTS = [
    {"name": "Velorian geography", "aliases": ["geography of Veloria"]},
    {"name": "Velorian music", "aliases": []},
    {"name": "velorian geography!", "aliases": ["land of Veloria"]},  # a duplicate: merged, its alias kept
]
SUBTHEMES = {
    "Velorian geography": [{"name": "Town", "aliases": ["settlement"]}, {"name": "River", "aliases": []},
                           {"name": "Velorian geography", "aliases": []}],  # names a root: dropped
    "Velorian music": [{"name": "Composer", "aliases": []}, {"name": "Opera", "aliases": []}],
}
RELATIONS = [
    {"id": "liesOn", "label": "lies on the river", "domain": "Town", "range": "River", "functional": True,
     "inverse_id": "flowsThrough", "inverse_label": "flows through", "inverse_functional": False},
    {"id": "bornIn", "label": "was born in", "domain": "Composer", "range": "town", "functional": True,
     "inverse_id": "birthplaceOf", "inverse_label": "is the birthplace of", "inverse_functional": False},
    {"id": "composedBy", "label": "was composed by", "domain": "Opera", "range": "Composer", "functional": True,
     "inverse_id": "composed", "inverse_label": "composed", "inverse_functional": False},
    {"id": "premiere_year", "label": "premiered in the year", "domain": "Opera", "range": "year",
     "functional": True, "inverse_id": "", "inverse_label": "", "inverse_functional": False},
    {"id": "conductsAt", "label": "conducts at", "domain": "Composer", "range": "Orchestra", "functional": False,
     "inverse_id": "", "inverse_label": "", "inverse_functional": False},  # range is no sub-theme: dropped
]
LEAVES = {
    "Town": [("Ambervale", ["Amber"]), ("Brindlecombe", []), ("Corvin Hollow", []), ("Dunmere", []),
             ("Amber Vale", ["Ambervale town"])],  # a near-duplicate: merged
    "River": [("Ash River", []), ("Bellwater", []), ("Cray River", []), ("Dunwater", [])],
    "Composer": [("Elia Fenn", []), ("Garo Hask", []), ("Ilsa Jorn", []), ("Kael Lume", [])],
    "Opera": [("The Glass Crown", []), ("Night Harbour", []), ("Silver Tide", []), ("Winter Bell", []),
              ("Velorian music", [])],  # names a root: dropped
}
FACTS: dict[str, list[tuple[str, str]]] = {
    "Ambervale": [("liesOn", "Ash River"), ("liesOn", "Bellwater")],  # liesOn is functional: the second is dropped
    "Brindlecombe": [("liesOn", "Bellwater")],
    "Corvin Hollow": [("liesOn", "Cray River"), ("flowsInto", "Dunwater")],  # no such relation
    "Dunmere": [("liesOn", "Dunwater")],
    "Ash River": [("flowsThrough", "Ambervale")],  # the inverse of a fact already stated: merged
    "Bellwater": [("flowsThrough", "Brindlecombe")],
    "Dunwater": [("flowsThrough", "Dunmere"), ("bornIn", "Ambervale")],  # a river is not a composer: domain
    "Elia Fenn": [("bornIn", "Amber Vale")],  # named by an alias
    "Garo Hask": [("bornIn", "Brindlecombe")],
    "Ilsa Jorn": [("bornIn", "Corvin Hollow")],  # the second phrasing disagrees (when inconsistent)
    "Kael Lume": [("bornIn", "Silver Tide"), ("composed", "Winter Bell")],  # an opera is not a town: range
    "The Glass Crown": [("composedBy", "Elia Fenn"), ("premiereYear", "1871")],
    "Night Harbour": [("composedBy", "Garo Hask"), ("premiereYear", "1880")],
    "Silver Tide": [("composedBy", "Ilsa Jorn"), ("premiereYear", "eighteen-ninety")],  # not a year: range
    "Winter Bell": [("composedBy", "Kael Lume"), ("premiereYear", "1902"), ("composedBy", "Atlantis Smith")],
}
INCONSISTENT = {("Ilsa Jorn", "bornIn"): ["Dunmere"]}

# What a run with --roots 2 --subthemes 2 --leaves 4 must produce from this script.
EXPECTED_REQUESTS = 42  # roots 1, sub-themes 2, relations 1, entities 4, facts 16, second phrasings 18
EXPECTED_DROPS = {"domain": 1, "functional": 1, "names_other_level": 2, "range": 2, "relation_range": 1,
                  "self_consistency": 1, "unknown_object": 1, "unknown_relation": 1}
EXPECTED_FACTS = 13


STAGE_OPENINGS = {"roots": "Task: list the root concepts", "subthemes": "Task: list the sub-themes",
                  "relations": "Task: propose the relation vocabulary", "leaves": "Task: list the well-known entities",
                  "facts": "Task: state facts", "verify": "Task: answer a question",
                  "paraphrase": "Task: paraphrase a question"}

# The paraphrases the stand-in writes for a question: these frames, in this order, after the question itself (the
# slip a real model makes: repeating the original, which the client must drop).
PARAPHRASE_FRAMES = ["Could you tell me: {question}", "Here is a quiz question. {question}",
                     "I would like to know: {question}", "Please answer this: {question}",
                     "One more question. {question}"]


def stage_of(user: str) -> str | None:
    return next((stage for stage, opening in STAGE_OPENINGS.items() if user.startswith(opening)), None)


def scripted_answer(user: str, inconsistent: bool) -> dict[str, Any] | None:
    """The answer to one of ks-kg's prompts (its first user message)."""

    def field(name: str) -> str:
        match = re.search(rf"^{name}: (.+)$", user, re.MULTILINE)
        assert match, f"no {name!r} in prompt: {user[:200]}"
        return match.group(1).strip()

    if user.startswith("Task: list the root concepts"):
        return {"roots": ROOTS}
    if user.startswith("Task: list the sub-themes"):
        return {"subthemes": SUBTHEMES.get(field("Root concept"), [])}
    if user.startswith("Task: propose the relation vocabulary"):
        return {"relations": RELATIONS}
    if user.startswith("Task: list the well-known entities"):
        return {"entities": [{"name": n, "aliases": a} for n, a in LEAVES.get(field("Sub-theme"), [])]}
    entity = field("Entity").split(" (a ")[0] if "Entity:" in user else ""
    if user.startswith("Task: state facts"):
        return {"facts": [{"relation": r, "object": o} for r, o in FACTS.get(entity, [])]}
    if user.startswith("Task: answer a question"):
        statement = re.search(r'statement "([^"]*___)"', user).group(1)  # type: ignore[union-attr]
        entity = max((e for e in FACTS if statement.startswith(e + " ")), key=len, default="")
        relation = field("Relation")
        if inconsistent and (entity, relation) in INCONSISTENT:
            return {"answers": INCONSISTENT[(entity, relation)]}
        return {"answers": [o for r, o in FACTS.get(entity, []) if r == relation]}
    return None  # not one of ks-kg's prompts: answered as plain text


def scripted_paraphrases(user: str, extra: dict[str, list[str]]) -> dict[str, Any]:
    """The answer to an augmentation prompt: the original question, the question's `extra` paraphrases (a test's
    leaked answers or repeats), then the first n PARAPHRASE_FRAMES."""

    def field(name: str) -> str:
        match = re.search(rf"^{name}: (.+)$", user, re.MULTILINE)
        assert match, f"no {name!r} in prompt: {user[:200]}"
        return match.group(1).strip()

    question = field("Question")
    n = int(field("Number of paraphrases"))
    framed = [frame.format(question=question) for frame in PARAPHRASE_FRAMES[:n]]
    return {"paraphrases": [question, *extra.get(question, []), *framed]}


class OpenAIStandIn:
    """The server; use as a context manager. `url` is the base URL a client is given (…/v1)."""

    def __init__(self, *, inconsistent: bool = True, reject_json_schema: bool = False,
                 hold_after: int | None = None) -> None:
        self.inconsistent = inconsistent
        self.reject_json_schema = reject_json_schema
        self.hold_after = hold_after
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.faults: list[list[Any]] = []  # [kind, remaining, stage, seconds]
        self.requests = 0
        self.statuses: Counter = Counter()
        self.streamed = 0
        self.response_formats: Counter = Counter()
        self.paraphrase_extra: dict[str, list[str]] = {}  # question → paraphrases added to its scripted answer
        self._server = QuietHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def inject(self, kind: str, count: int = 1, *, stage: str | None = None, seconds: float = 0.0) -> None:
        """Make the next `count` requests (of `stage`, or any) fail with `kind`: rate_limit, slow, server_error,
        malformed, schema_invalid."""
        with self.lock:
            self.faults.append([kind, count, stage, seconds])

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests = 0
            self.statuses.clear()
            self.response_formats.clear()
            self.streamed = 0

    def __enter__(self) -> OpenAIStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def _take_fault(self, stage: str | None) -> tuple[str, float] | None:
        with self.lock:
            for fault in self.faults:
                if fault[1] > 0 and fault[2] in (None, stage):
                    fault[1] -= 1
                    return fault[0], fault[3]
        return None


def _handler(server: OpenAIStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: without this each answer waits 40 ms

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            with server.lock:
                server.statuses[status] += 1

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                self._post()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout, or killed)

        def _post(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            with server.lock:
                server.requests += 1
                number = server.requests
            if server.hold_after is not None and number > server.hold_after:
                server.released.wait()
            response_format = (body.get("response_format") or {}).get("type", "none")
            with server.lock:
                server.response_formats[response_format] += 1
            if server.reject_json_schema and response_format == "json_schema":
                self._json(400, {"error": {"message": "response_format 'json_schema' is not supported by this "
                                           "server", "type": "invalid_request_error", "param": "response_format",
                                           "code": None}})
                return
            user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            stage = stage_of(user)
            fault = server._take_fault(stage)
            kind = fault[0] if fault else None
            if kind == "rate_limit":
                self._json(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                           "code": "rate_limit_exceeded"}}, {"Retry-After": "0"})
                return
            if kind == "server_error":
                self._json(503, {"error": {"message": "the model is loading", "type": "server_error"}})
                return
            if kind == "slow":
                time.sleep(fault[1])  # type: ignore[index]
            answer = (scripted_paraphrases(user, server.paraphrase_extra) if stage == "paraphrase"
                      else scripted_answer(user, server.inconsistent))
            if answer is None:
                content = f"You said: {user}"
            else:
                content = json.dumps({"items": answer} if kind == "schema_invalid" else answer)
            if kind == "malformed":
                content = content[: len(content) // 2]
            prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                     "total_tokens": prompt_tokens + len(content) // 4}
            if body.get("stream"):
                self._stream(body, content, usage)
                return
            self._json(200, {
                "id": f"chatcmpl-{number}", "object": "chat.completion", "created": CREATED, "model": body["model"],
                "system_fingerprint": "fp_standin",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": usage})

        def _stream(self, body: dict[str, Any], content: str, usage: dict[str, int]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def chunk(choices: list[dict[str, Any]], chunk_usage: dict[str, int] | None = None) -> None:
                event = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": CREATED,
                         "model": body["model"], "choices": choices}
                if chunk_usage is not None or (body.get("stream_options") or {}).get("include_usage"):
                    event["usage"] = chunk_usage
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            step = max(1, len(content) // 3)
            for i in range(0, len(content), step):
                chunk([{"index": 0, "delta": {"content": content[i:i + step]}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if (body.get("stream_options") or {}).get("include_usage"):
                chunk([], usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            with server.lock:
                server.statuses[200] += 1
                server.streamed += 1

    return Handler
