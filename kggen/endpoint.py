"""A chat-completions client for any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama): disk cache, retries,
JSON answers checked against a schema, request and token budgets, bounded concurrency.

Reusable outside KG generation: `complete_json(messages, schema, stage=...)` and `complete_text(messages, ...)` are all
a caller needs; `map_json` runs many requests on a thread pool and returns the answers in the order they were asked,
so what a caller builds from them does not depend on the concurrency.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledgesmith.builder.atomic import atomic_write_bytes
from knowledgesmith.builder.errors import KsUserError

from .schema import schema_errors

Messages = list[dict[str, str]]
DUMMY_API_KEY = "sk-local-no-key"  # local servers (vLLM, llama.cpp, Ollama) accept any key, the client needs one
OPENAI_URL = "https://api.openai.com/v1"
CACHE_FORMAT = 1
MAX_BACKOFF_S = 60.0


class EndpointError(KsUserError):
    """A request that could not be answered: unreachable server, refused request, no valid answer after retries."""


class BudgetExceeded(EndpointError):
    """The request or token budget is spent; every answer obtained so far stays in the cache."""


class _Retryable(Exception):
    """One failed attempt that another attempt may fix; `delay` is the server's Retry-After where it sent one."""

    def __init__(self, reason: str, *, kind: str, delay: float | None = None, bad_content: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.delay = delay
        self.bad_content = bad_content


@dataclass
class Answer:
    """One answered request, fresh or replayed from the cache."""

    key: str
    content: str
    data: Any  # the parsed JSON object, None for text requests
    usage: dict[str, int]
    created: int  # the server's `created` timestamp of the response (seconds since the epoch)
    mode: str  # json_schema | json_object | text
    cached: bool


@dataclass
class EndpointStats:
    """What this client did in this process: HTTP requests sent, cache hits, retries and their reasons, tokens."""

    requests: int = 0
    cache_hits: int = 0
    answers: int = 0
    retries: int = 0
    retry_reasons: Counter = field(default_factory=Counter)
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    per_stage: dict[str, Counter] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "http_requests": self.requests, "cache_hits": self.cache_hits, "fresh_answers": self.answers,
            "retries": self.retries, "retry_reasons": dict(sorted(self.retry_reasons.items())),
            "structured_output_fallbacks": self.fallbacks, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens,
            "per_stage": {stage: dict(sorted(c.items())) for stage, c in sorted(self.per_stage.items())},
        }


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_json_answer(content: str) -> Any:
    """Parse a model's JSON answer, tolerating the Markdown code fence that JSON-mode models often add."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return json.loads(text)


def _load_openai() -> Any:
    try:
        import openai
    except ImportError as err:
        raise KsUserError("talking to an LLM endpoint needs the openai client: pip install 'knowledgesmith[llm]'") \
            from err
    return openai


class ChatEndpoint:
    """An OpenAI-compatible chat endpoint with an on-disk answer cache.

    Every request is keyed by the sha256 of its canonical form (model, messages, temperature, seed, schema); an
    answer is cached only once it is valid, so a rerun replays it for free and a killed run resumes where it stopped.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 cache_dir: Path | None = None, temperature: float = 0.0, seed: int | None = 0,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 1.0, structured: bool = True,
                 stream: bool = False, max_requests: int | None = None, max_tokens_total: int | None = None,
                 concurrency: int = 4, max_answer_tokens: int | None = None) -> None:
        if not model:
            raise KsUserError("a model name is needed (--model)")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise KsUserError("concurrency must be ≥ 1, retries ≥ 0 and the timeout > 0")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self._api_key = api_key
        self.cache_dir = cache_dir
        self.temperature = temperature
        self.seed = seed
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.stream = stream
        self.max_requests = max_requests
        self.max_tokens_total = max_tokens_total
        self.concurrency = concurrency
        self.max_answer_tokens = max_answer_tokens
        # json_schema until the server rejects it once, then json_object for the rest of the run
        self._mode = "json_schema" if structured else "json_object"
        self.stats = EndpointStats()
        self._lock = threading.Lock()
        self._client: Any = None

    # -- public API ------------------------------------------------------------------------------------------------
    def complete_json(self, messages: Messages, schema: dict[str, Any], *, stage: str = "request",
                      name: str | None = None) -> dict[str, Any]:
        """Ask for one JSON object matching `schema`; return it parsed and validated."""
        return self.answer(messages, schema, stage=stage, name=name).data

    def complete_text(self, messages: Messages, *, stage: str = "request") -> str:
        """Ask for free text; return the answer's content."""
        return self.answer(messages, None, stage=stage).content

    def map_json(self, requests: Sequence[tuple[Messages, dict[str, Any] | None]], *, stage: str,
                 on_done: Callable[[], None] | None = None) -> list[Answer]:
        """Answer many requests with at most `concurrency` in flight; answers come back in the order asked.

        The first failure stops the batch: requests not yet started are cancelled, those in flight finish (and are
        cached), and the failure is raised.
        """
        if self.concurrency == 1 or len(requests) <= 1:
            answers = []
            for messages, schema in requests:
                answers.append(self.answer(messages, schema, stage=stage))
                if on_done:
                    on_done()
            return answers
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ks-endpoint")
        try:
            futures = [pool.submit(self.answer, messages, schema, stage=stage) for messages, schema in requests]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
                    if on_done:
                        on_done()
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def request_key(self, messages: Messages, schema: dict[str, Any] | None) -> str:
        """The cache key of a request: sha256 of its canonical JSON."""
        return hashlib.sha256(_canonical(self._request_record(messages, schema))).hexdigest()

    def answer(self, messages: Messages, schema: dict[str, Any] | None, *, stage: str = "request",
               name: str | None = None) -> Answer:
        """Answer one request from the cache, or from the endpoint (with retries) and then cache it."""
        key = self.request_key(messages, schema)
        cached = self._cache_read(key, schema)
        if cached is not None:
            with self._lock:
                self.stats.cache_hits += 1
                self.stats.per_stage.setdefault(stage, Counter())["cache_hits"] += 1
            return cached
        # OpenAI accepts only [A-Za-z0-9_-]{1,64} as a json_schema name
        schema_name = re.sub(r"[^A-Za-z0-9_-]", "_", name or stage)[:64] or "answer"
        answer = self._fetch(key, messages, schema, stage, schema_name)
        self._cache_write(answer, messages, schema)
        return answer

    # -- cache ------------------------------------------------------------------------------------------------------
    def _request_record(self, messages: Messages, schema: dict[str, Any] | None) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "temperature": self.temperature, "seed": self.seed,
                "schema": schema}

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, key: str, schema: dict[str, Any] | None) -> Answer | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            content = entry["content"]
            data = None
            if schema is not None:
                data = parse_json_answer(content)
                if schema_errors(data, schema):
                    return None
            return Answer(key, content, data, dict(entry.get("usage", {})), int(entry.get("created", 0)),
                          entry.get("mode", "text"), cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # an unreadable entry is asked again and overwritten

    def _cache_write(self, answer: Answer, messages: Messages, schema: dict[str, Any] | None) -> None:
        path = self._cache_path(answer.key)
        if path is None:
            return
        entry = {"format": CACHE_FORMAT, "key": answer.key, "endpoint": self.base_url,
                 "request": self._request_record(messages, schema), "content": answer.content,
                 "usage": answer.usage, "created": answer.created, "mode": answer.mode}
        atomic_write_bytes(path, json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))

    # -- the endpoint ------------------------------------------------------------------------------------------------
    def _openai_client(self) -> Any:
        with self._lock:
            if self._client is None:
                openai = _load_openai()
                key = self._api_key or os.environ.get("OPENAI_API_KEY")
                if not key:
                    if self.base_url == OPENAI_URL:
                        raise KsUserError("set OPENAI_API_KEY to use the OpenAI API, or point --endpoint at a local "
                                          "OpenAI-compatible server")
                    key = DUMMY_API_KEY
                # retries are ours (counted, with schema checks between them), so the client's own are off
                self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout,
                                             max_retries=0)
            return self._client

    def _reserve(self, stage: str) -> None:
        with self._lock:
            s = self.stats
            if self.max_requests is not None and s.requests >= self.max_requests:
                raise BudgetExceeded(f"{stage}: request budget spent ({s.requests} requests sent, --max-requests "
                                     f"{self.max_requests}); the answers so far are cached: rerun with a larger "
                                     "budget to continue")
            if self.max_tokens_total is not None and s.total_tokens >= self.max_tokens_total:
                raise BudgetExceeded(f"{stage}: token budget spent ({s.total_tokens} tokens used, "
                                     f"--max-tokens-total {self.max_tokens_total}); the answers so far are cached: "
                                     "rerun with a larger budget to continue")
            s.requests += 1
            s.per_stage.setdefault(stage, Counter())["http_requests"] += 1

    def _count_usage(self, usage: dict[str, int]) -> None:
        with self._lock:
            self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
            self.stats.completion_tokens += usage.get("completion_tokens", 0)
            self.stats.total_tokens += usage.get("total_tokens", 0)

    def _fetch(self, key: str, messages: Messages, schema: dict[str, Any] | None, stage: str, name: str) -> Answer:
        openai = _load_openai()
        client = self._openai_client()
        attempt_messages = messages
        failures = 0
        while True:
            self._reserve(stage)
            mode = "text" if schema is None else self._mode
            try:
                content, usage, created = self._send(client, attempt_messages, schema, mode, name)
                self._count_usage(usage)
                data = self._check(content, schema)
                with self._lock:
                    self.stats.answers += 1
                return Answer(key, content, data, usage, created, mode, cached=False)
            except openai.BadRequestError as err:
                if mode != "json_schema":
                    raise EndpointError(f"{stage}: {self.base_url} refused the request (400): {_message(err)}") \
                        from None
                # the server does not do structured outputs: JSON mode from now on (the schema is in the prompt)
                with self._lock:
                    if self._mode == "json_schema":
                        self._mode = "json_object"
                        self.stats.fallbacks += 1
                continue
            except openai.RateLimitError as err:
                failure = _Retryable(f"rate limited (429): {_message(err)}", kind="rate_limit",
                                     delay=_retry_after(err))
            except openai.APITimeoutError:
                failure = _Retryable(f"no answer within {self.timeout:g} s", kind="timeout")
            except openai.APIConnectionError as err:
                cause = err.__cause__ or err
                failure = _Retryable(f"cannot reach {self.base_url} ({_root_cause(cause)}); is the server running?",
                                     kind="connection")
            except openai.APIStatusError as err:
                if err.status_code < 500 and err.status_code not in (408, 409):
                    raise EndpointError(f"{stage}: {self.base_url} refused the request ({err.status_code}): "
                                        f"{_message(err)}") from None
                failure = _Retryable(f"server error {err.status_code}: {_message(err)}", kind="server_error")
            except _Retryable as bad:
                failure = bad
            failures += 1
            if failures > self.retries:
                raise EndpointError(f"{stage}: no valid answer from {self.base_url} after {failures} attempts: "
                                    f"{failure.reason}")
            with self._lock:
                self.stats.retries += 1
                self.stats.retry_reasons[failure.kind] += 1
                self.stats.per_stage.setdefault(stage, Counter())["retries"] += 1
            if failure.bad_content is not None:
                # show the model its invalid answer and why, instead of asking the identical question again
                attempt_messages = [*messages, {"role": "assistant", "content": failure.bad_content[:4000]},
                                    {"role": "user", "content": f"That answer is not valid: {failure.reason}. "
                                     "Reply again with only the JSON object that matches the schema."}]
            delay = self.backoff * 2 ** (failures - 1)
            if failure.delay is not None:
                delay = max(delay, failure.delay)
            time.sleep(min(delay, MAX_BACKOFF_S))

    def _send(self, client: Any, messages: Messages, schema: dict[str, Any] | None, mode: str,
              name: str) -> tuple[str, dict[str, int], int]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if self.max_answer_tokens is not None:
            kwargs["max_tokens"] = self.max_answer_tokens
        if mode == "json_schema":
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": name, "schema": schema, "strict": True}}
        elif mode == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        if not self.stream:
            response = client.chat.completions.create(**kwargs)
            if not response.choices:
                raise _Retryable("the response has no choices", kind="malformed", bad_content="")
            choice = response.choices[0]
            content = choice.message.content or ""
            return self._finish(content, choice.finish_reason), _usage(response.usage), int(response.created or 0)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        parts: list[str] = []
        usage: dict[str, int] = {}
        created = 0
        finish_reason = None
        stream = client.chat.completions.create(**kwargs)
        try:
            for chunk in stream:
                created = int(chunk.created or created)
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        parts.append(choice.delta.content)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            stream.close()
        return self._finish("".join(parts), finish_reason), usage, created

    @staticmethod
    def _finish(content: str, finish_reason: str | None) -> str:
        if finish_reason == "length":
            raise _Retryable("the answer was cut off (finish_reason 'length')", kind="truncated",
                             bad_content=content)
        return content

    @staticmethod
    def _check(content: str, schema: dict[str, Any] | None) -> Any:
        if schema is None:
            if not content.strip():
                raise _Retryable("empty answer", kind="malformed", bad_content=content)
            return None
        try:
            data = parse_json_answer(content)
        except ValueError as err:
            raise _Retryable(f"malformed JSON ({err})", kind="malformed_json", bad_content=content) from None
        problems = schema_errors(data, schema)
        if problems:
            raise _Retryable("the JSON does not match the schema: " + "; ".join(problems), kind="schema_invalid",
                             bad_content=content)
        return data


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    out = {k: int(getattr(usage, k, 0) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    if not out["total_tokens"]:
        out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    return out


def _message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(err, "message", "") or err).splitlines()[0]


def _retry_after(err: Any) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
