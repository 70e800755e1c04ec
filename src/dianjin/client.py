"""The LLM client under the data pipeline and the evaluation harness: any OpenAI-compatible
`/v1/chat/completions` endpoint (DeepSeek, OpenAI, vLLM, `dianjin serve`), async, cached, accounted.

    cfg = EndpointConfig.from_dict({"base_url": "https://api.deepseek.com/v1", "model": "deepseek-reasoner",
                                    "api_key_env": "DEEPSEEK_API_KEY", "price_in": 0.55, "price_out": 2.19})
    async with LLMClient(cfg, cache="run/cache.sqlite", ledger=Ledger("run/ledger.json")) as llm:
        results = await llm.map([ChatRequest(msgs, sample=k) for msgs in prompts for k in range(3)], stage="distill")
    judge = SyncClient(judge_cfg, cache="run/cache.sqlite")   # judge(messages) -> text, a `Judge`

What it does for every request:
- bounded concurrency (a semaphore of `concurrency` HTTP requests in flight) and an optional
  per-endpoint token bucket (`rps`, shared by every client of the same base URL in the process);
- retries with exponential backoff and jitter on 408/409/425/429/5xx, timeouts, connection errors and
  malformed bodies, waiting at least what Retry-After / retry-after-ms asks; any other 4xx raises
  `LLMError` at once, naming the endpoint, the status and an excerpt of the body;
- the SQLite cache (`dianjin.cache`): looked up first, written as each answer arrives, so a re-run
  never pays twice (in batches, the answers of one event-loop turn are committed together, always
  before any of them is reported); identical requests in flight at the same time are sent once;
- a structured `ChatResult` (content, reasoning_content from `message.reasoning_content` or
  `message.reasoning`, finish_reason, tokens, latency, attempts, cached). A truncated answer
  (finish_reason "length") is returned with `truncated=True`, `ok=False`: callers treat it as failed;
- the ledger and the progress line (`dianjin.ledger`).

`map()` returns results in input order and never raises for one item: a failure is a ChatResult
with `error` set. `iter_completed()` yields `(index, result)` as they finish, for pipelines that
append to JSONL as they go.

Keys: read only from the environment variable named by `api_key_env`, at client construction; sent
in the Authorization (or `auth_header`) header and nowhere else: not in the cache key or rows, logs,
errors or reprs.
Each request carries `X-Dianjin-Key: <cache key>` (a hash) so a test server can tell a repeated
sample of one prompt from a duplicate answer.

The cache key covers model, messages, sampling parameters (incl. `extra_body`), the sample index
and `cache_salt`, not the base URL: moving a run to another host or port reuses its cache. Set
`cache_salt` (e.g. to a checkpoint hash) when one URL and model name can serve different weights.

Speed: plain-http endpoints (local vLLM, `dianjin serve`, tests) go through `dianjin.http1.Http1Pool`
(~0.05 ms of CPU per request; `httpx2.AsyncClient` costs ~0.6 ms, which caps a 64-wide, 50 ms
workload at 80-90% of Little's bound); https and proxied endpoints use httpx2. With the cache and
the ledger on, `map` reaches 90-93% of the bound, 97-99% of a raw asyncio loop, at ~85-135 us of
CPU per request (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

import httpx2

from dianjin.cache import ResponseCache
from dianjin.http1 import Http1Pool, RawResponse
from dianjin.ledger import Ledger, Progress
from dianjin.tasks.base import DataError

log = logging.getLogger("dianjin.client")

Messages = list[dict[str, Any]]
RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
MAX_RETRY_AFTER = 600.0  # never sleep longer than this on a server's say-so
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization"}


class LLMError(RuntimeError):
    """A request that failed for good: a non-retryable 4xx, or retries exhausted.

    endpoint: the URL called; status: the last HTTP status (None for timeouts/connection errors);
    body: an excerpt of the last response body; attempts: HTTP attempts made.
    """

    def __init__(self, message: str, *, endpoint: str, status: int | None = None, body: str = "",
                 attempts: int = 0, retryable: bool = False):
        super().__init__(message)
        self.endpoint, self.status, self.body, self.attempts, self.retryable = endpoint, status, body, attempts, retryable


# --- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointConfig:
    """One OpenAI-compatible endpoint and how to call it. Build with `from_dict` to get checks."""

    base_url: str  # e.g. "https://api.deepseek.com/v1" or "http://127.0.0.1:8000/v1"
    model: str
    api_key_env: str | None = None  # NAME of the env var holding the key (None: no Authorization header)
    auth_header: str = "Authorization"  # sent as "Bearer KEY"; any other name (e.g. Azure's "api-key") gets KEY
    concurrency: int = 64  # HTTP requests in flight
    rps: float | None = None  # requests per second (token bucket); None: unlimited
    burst: int = 1  # token bucket size
    timeout: float = 60.0  # seconds per attempt; R1-style reasoning calls can need 600 (a timeout is paid again)
    max_retries: int = 6  # extra attempts after the first
    backoff_base: float = 0.5  # first backoff in seconds; doubles per attempt, with jitter
    backoff_max: float = 30.0
    temperature: float | None = None  # None: not sent (server default)
    top_p: float | None = None
    max_tokens: int | None = None
    price_in: float = 0.0  # per 1M prompt tokens, for the ledger
    price_out: float = 0.0  # per 1M completion tokens
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into every request body
    headers: dict[str, str] = field(default_factory=dict)  # extra non-secret headers
    cache_salt: str | None = None  # mixed into the cache key (e.g. a checkpoint hash)
    fast_http: bool = True  # use the lean HTTP/1.1 transport for plain-http URLs without a proxy

    def __post_init__(self) -> None:
        errors = [(name, problem) for name, check in _CHECKS.items() if (problem := check(getattr(self, name)))]
        if errors:
            name, problem = errors[0]
            raise DataError("endpoint config", None, name, problem)
        url = self.base_url.rstrip("/")
        url = url[: -len("/chat/completions")] if url.endswith("/chat/completions") else url
        object.__setattr__(self, "base_url", url)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "endpoint config") -> "EndpointConfig":
        """Build from a config mapping; errors name `where` and the field."""
        if not isinstance(data, dict):
            raise DataError(where, None, None, f"expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for name in data:
            if name in ("api_key", "key", "token"):
                raise DataError(where, None, name, "never put an API key in a config: export it and name the "
                                "variable with api_key_env (e.g. api_key_env: DEEPSEEK_API_KEY)")
            if name not in known:
                raise DataError(where, None, name, f"unknown key; known keys: {', '.join(sorted(known))}")
        for name in ("base_url", "model"):
            if name not in data:
                raise DataError(where, None, name, "required")
        try:
            return cls(**data)
        except DataError as e:
            raise DataError(where, None, e.field, e.problem) from None

    def api_key(self) -> str | None:
        """The key from the environment (None when `api_key_env` is None); errors if the variable is unset."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise LLMError(f"{self.base_url}: environment variable {self.api_key_env} (api_key_env) is not set",
                           endpoint=self.base_url)
        return key


def _check(ok: Callable[[Any], bool], want: str) -> Callable[[Any], str | None]:
    return lambda v: None if ok(v) else f"must be {want}, got {v!r}"


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_env(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _ENV_NAME.match(v):  # do not echo: it may be a pasted key
        return "must be the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), not the key itself"
    return None


def _check_headers(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        return "must be a mapping of strings"
    secret = [k for k in v if k.lower() in _SECRET_HEADERS]
    if secret:  # do not echo the values
        return f"must not carry credentials ({', '.join(secret)}): set api_key_env (and auth_header) instead"
    return None


# field -> check returning a problem string or None
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "base_url": _check(lambda v: isinstance(v, str) and re.match(r"^https?://[^/\s]+", v) is not None,
                       "an http:// or https:// URL such as http://127.0.0.1:8000/v1"),
    "model": _check(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "api_key_env": _check_env,
    "concurrency": _check(lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "rps": _check(lambda v: v is None or (_num(v) and v > 0), "null or a number > 0"),
    "burst": _check(lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "timeout": _check(lambda v: _num(v) and v > 0, "a number of seconds > 0"),
    "max_retries": _check(lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "backoff_base": _check(lambda v: _num(v) and v >= 0, "a number >= 0"),
    "backoff_max": _check(lambda v: _num(v) and v >= 0, "a number >= 0"),
    "temperature": _check(lambda v: v is None or (_num(v) and 0 <= v <= 2), "null or a number in [0, 2]"),
    "top_p": _check(lambda v: v is None or (_num(v) and 0 < v <= 1), "null or a number in (0, 1]"),
    "max_tokens": _check(lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
    "price_in": _check(lambda v: _num(v) and v >= 0, "a number >= 0 (price per 1M tokens)"),
    "price_out": _check(lambda v: _num(v) and v >= 0, "a number >= 0 (price per 1M tokens)"),
    "extra_body": _check(lambda v: isinstance(v, dict), "a mapping"),
    "auth_header": _check(lambda v: isinstance(v, str) and re.match(r"^[A-Za-z0-9-]+$", v) is not None,
                          "an HTTP header name"),
    "headers": _check_headers,
    "cache_salt": _check(lambda v: v is None or isinstance(v, str), "null or a string"),
    "fast_http": _check(lambda v: isinstance(v, bool), "true or false"),
}


# --- requests and results -------------------------------------------------------------------------
@dataclass
class ChatRequest:
    """One chat call. `sample` is the attempt/sample index: part of the cache key, so the 2nd sample
    of a prompt is a distinct request. None parameters fall back to the endpoint config. `tag` is
    the caller's own (e.g. the item id), echoed on the result, not sent and not in the key."""

    messages: Messages
    sample: int = 0
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    extra: dict[str, Any] | None = None  # merged into the body after the config's extra_body
    tag: Any = None


@dataclass
class ChatResult:
    """The outcome of one request. For a cache hit, latency and attempts are those of the original call."""

    content: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    latency: float = 0.0
    attempts: int = 0
    cached: bool = False
    key: str = ""
    model: str = ""  # the model name the server reported
    error: str | None = None  # set when the request failed for good (content is then None)
    tag: Any = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def ok(self) -> bool:
        """Answered and not truncated."""
        return self.error is None and not self.truncated

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "truncated": self.truncated}


def _body(cfg: EndpointConfig, req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": cfg.model, "messages": req.messages}
    for name in ("temperature", "top_p", "max_tokens"):
        v = getattr(req, name)
        v = getattr(cfg, name) if v is None else v
        if v is not None:
            body[name] = v
    body.update(cfg.extra_body)
    body.update(req.extra or {})
    return body


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))  # built once, not per call


def _canonical(obj: Any) -> str:
    return _CANONICAL.encode(obj)


def cache_key(body_json: str, sample: int, salt: str | None) -> str:
    """sha256 of the canonical request body (model, messages, sampling params), sample index and salt."""
    return hashlib.sha256(f"dianjin-v1\n{sample}\n{salt or ''}\n{body_json}".encode()).hexdigest()


class _Malformed(ValueError):
    pass


def parse_completion(text: str | bytes) -> dict[str, Any]:
    """The fields of ChatResult from a chat.completion body; raises _Malformed on anything unusable."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise _Malformed(f"response is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise _Malformed("response is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Malformed(f"response has no choices{': ' + str(data.get('error'))[:200] if data.get('error') else ''}")
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        raise _Malformed("response choice has no message")
    content = msg.get("content")
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")
    if (content is not None and not isinstance(content, str)) or (reasoning is not None and not isinstance(reasoning, str)):
        raise _Malformed("message content is not a string")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = usage.get("completion_tokens_details") if isinstance(usage.get("completion_tokens_details"), dict) else {}
    as_int = lambda v: int(v) if _num(v) else 0  # noqa: E731
    return {"content": content, "reasoning_content": reasoning, "finish_reason": choices[0].get("finish_reason"),
            "prompt_tokens": as_int(usage.get("prompt_tokens")), "completion_tokens": as_int(usage.get("completion_tokens")),
            "reasoning_tokens": as_int(details.get("reasoning_tokens")), "model": str(data.get("model") or "")}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date); None if absent or bad."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def backoff(cfg: EndpointConfig, attempt: int, after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: at least Retry-After, else exponential with jitter."""
    if after is not None:
        return min(after, MAX_RETRY_AFTER) * (1 + 0.1 * random.random())
    base = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1))
    return random.uniform(base / 2, base)


class TokenBucket:
    """Rate limit by reservation: each caller takes a token (the level may go negative) and sleeps
    until its token would have been there. Fair, lock-free on one event loop, any loop."""

    def __init__(self, rate: float, burst: int = 1):
        self.rate, self.burst = float(rate), float(burst)
        self.level, self.t = float(burst), time.monotonic()

    def reserve(self) -> float:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        self.level -= 1
        return 0.0 if self.level >= 0 else -self.level / self.rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


_BUCKETS: dict[tuple[str, float, int], TokenBucket] = {}


class _Attempt:
    __slots__ = ("deadline", "task", "cancelling", "done", "expired")

    def __init__(self, deadline: float, task: asyncio.Task, cancelling: int):
        self.deadline, self.task, self.cancelling = deadline, task, cancelling
        self.done = self.expired = False


class _Deadlines:
    """Per-attempt timeouts of one client on one event loop, with one timer between them all.

    `asyncio.timeout` puts a timer in the loop's heap per request and cancels it after: at ~1,300
    requests/s that is CPU the server needs on a shared box. Every attempt of a client has the same
    timeout and starts after the one before, so deadlines come in start order: a FIFO of attempts and
    one timer armed at the oldest unfinished deadline do the same. On expiry the attempt's task is
    cancelled and, as `asyncio.Timeout` does, the CancelledError becomes TimeoutError unless someone
    else cancelled the task too (`uncancel()` against the count at entry).
    """

    _RESOLUTION = time.get_clock_info("monotonic").resolution  # the loop's clock resolution, as its timers use

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float):
        self.loop, self.delay = loop, delay
        self.pending: collections.deque[_Attempt] = collections.deque()  # in start (= deadline) order
        self.handle: asyncio.TimerHandle | None = None

    def enter(self) -> _Attempt:
        task = asyncio.current_task()
        assert task is not None, "a request runs inside a task"
        att = _Attempt(self.loop.time() + self.delay, task, task.cancelling())
        self.pending.append(att)
        if self.handle is None:
            self.handle = self.loop.call_at(att.deadline, self._expire)
        return att

    def exit(self, att: _Attempt, cancelled: bool) -> bool:
        """Mark `att` finished; True when the CancelledError it ended with is its timeout."""
        att.done = True
        pending = self.pending
        while pending and pending[0].done:
            pending.popleft()
        return att.expired and att.task.uncancel() <= att.cancelling and cancelled

    def _expire(self) -> None:
        self.handle = None
        limit = self.loop.time() + self._RESOLUTION
        pending = self.pending
        while pending and (pending[0].done or pending[0].deadline < limit):
            att = pending.popleft()
            if not att.done:
                att.expired = True
                att.task.cancel()
        if pending:
            self.handle = self.loop.call_at(pending[0].deadline, self._expire)


class _HttpxPool:
    """httpx2 for https, proxies (from the environment) and custom transports; same interface as Http1Pool."""

    def __init__(self, cfg: EndpointConfig, transport: httpx2.AsyncBaseTransport | None = None):
        limits = httpx2.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
        self.http = httpx2.AsyncClient(transport=transport, limits=limits, timeout=httpx2.Timeout(cfg.timeout),
                                       follow_redirects=False)

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> RawResponse:
        resp = await self.http.request(method, url, headers=headers, content=body)
        return RawResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)

    async def aclose(self) -> None:
        await self.http.aclose()


# --- the client -----------------------------------------------------------------------------------
class LLMClient:
    """Async client for one endpoint. Use as `async with LLMClient(cfg, cache=..., ledger=...) as c:`.

    cache: a path or a ResponseCache (None: no cache). ledger: a Ledger (a fresh one if None).
    progress: default for `map`/`iter_completed`: None/True show it (live on a terminal, else a line
    every 10 s and one at the end), False hides it.
    """

    def __init__(self, config: EndpointConfig, *, cache: ResponseCache | str | Path | None = None,
                 ledger: Ledger | None = None, progress: bool | None = None,
                 transport: httpx2.AsyncBaseTransport | None = None):
        self.config = config
        self._key = config.api_key()
        self._own_cache = cache is not None and not isinstance(cache, ResponseCache)
        self.cache = ResponseCache(cache) if self._own_cache else cache  # type: ignore[arg-type]
        self.ledger = ledger if ledger is not None else Ledger()
        self.progress = progress
        self.url = config.base_url + "/chat/completions"
        self._transport = transport
        self._http: _HttpxPool | Http1Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._deadlines: _Deadlines | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._commit_scheduled = False
        self._bucket = None
        if config.rps is not None:
            self._bucket = _BUCKETS.setdefault((config.base_url, float(config.rps), config.burst),
                                               TokenBucket(config.rps, config.burst))
        self._headers = {"Content-Type": "application/json", **config.headers}
        if self._key:
            auth = config.auth_header
            self._headers[auth] = f"Bearer {self._key}" if auth.lower() == "authorization" else self._key

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.config.base_url!r}, model={self.config.model!r}, cache={self.cache!r})"

    # loop-bound state (recreated if the client is reused under a new event loop) -------------------
    def _bind(self) -> "_HttpxPool | Http1Pool":
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(self.config.concurrency)
            self._inflight = {}
            self._deadlines = _Deadlines(loop, self.config.timeout)
            self._http = Http1Pool(self.config.concurrency) if self._transport is None and self._use_fast_http() \
                else _HttpxPool(self.config, self._transport)
        return self._http

    def _use_fast_http(self) -> bool:
        return (self.config.fast_http and self.url.startswith("http://")
                and not any(os.environ.get(v) for v in _PROXY_VARS))

    async def aclose(self) -> None:
        if self.cache is not None and self.cache.pending:
            self.cache.commit()
        if self._http is not None and self._loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None
        if self.ledger.path is not None:
            self.ledger.save()
        if self._own_cache and self.cache is not None:
            self.cache.close()
            self.cache = None

    async def __aenter__(self) -> "LLMClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # one request -------------------------------------------------------------------------------
    def prepare(self, request: ChatRequest | Messages) -> tuple[ChatRequest, str, str]:
        """(request, body JSON, cache key) for a request or a bare message list."""
        req = request if isinstance(request, ChatRequest) else ChatRequest(messages=request)
        if not isinstance(req.messages, list) or not all(isinstance(m, dict) and "role" in m for m in req.messages):
            raise ValueError(f"messages must be a list of {{'role', 'content'}} dicts, got {str(req.messages)[:200]}")
        body = _canonical(_body(self.config, req))
        return req, body, cache_key(body, req.sample, self.config.cache_salt)

    async def chat(self, request: ChatRequest | Messages, *, stage: str = "default", **params: Any) -> ChatResult:
        """One request; raises LLMError when it fails for good. `params` set ChatRequest fields
        (sample, temperature, top_p, max_tokens, extra, tag) for a bare message list."""
        if params:
            request = ChatRequest(messages=request, **params) if not isinstance(request, ChatRequest) else \
                ChatRequest(**{**asdict(request), **params})
        return await self._run(self.prepare(request), stage, None)

    async def _run(self, prepared: tuple[ChatRequest, str, str], stage: str, progress: Progress | None,
                   defer: bool = False) -> ChatResult:
        req, body, key = prepared
        cfg = self.config
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            res = self._result(parse_completion(hit.response), key, hit.latency, hit.attempts, True, req.tag)
            self.ledger.record(stage, cfg.model, cached=True)
            if progress:
                progress.finish(res.error is None, cached=True, was_inflight=False, truncated=res.truncated)
            return res
        self._bind()
        shared = self._inflight.get(key)
        if shared is not None:  # the same request is in flight: wait for it instead of paying twice
            res = await asyncio.shield(shared)
            self._committed()  # the answer shared with us may wait on a deferred commit
            res = ChatResult(**{**asdict(res), "cached": True, "tag": req.tag})
            self.ledger.record(stage, cfg.model, cached=True)
            if progress:
                progress.finish(res.error is None, cached=True, was_inflight=False, truncated=res.truncated)
            return res
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        if progress:
            progress.start()
        try:
            text, parsed, latency, attempts = await self._call(body, key)
            res = self._result(parsed, key, latency, attempts, False, req.tag)
            if self.cache is not None:
                self.cache.put(key, cfg.model, body, text, latency, attempts, defer=defer)
                if defer:
                    self._commit_soon()
            self.ledger.record(stage, cfg.model, truncated=res.truncated, attempts=attempts,
                               prompt_tokens=res.prompt_tokens, completion_tokens=res.completion_tokens,
                               latency=latency, price_in=cfg.price_in, price_out=cfg.price_out)
            fut.set_result(res)
            if progress:
                progress.finish(res.error is None, truncated=res.truncated)
            return res
        except BaseException as e:
            if isinstance(e, LLMError):
                self.ledger.record(stage, cfg.model, failed=True, attempts=e.attempts)
            if progress:
                progress.finish(False)
            if not isinstance(e, Exception):  # cancelled: waiters get an error, not our cancellation
                e = LLMError(f"{self.url}: the identical request this one waited on was cancelled", endpoint=self.url)
            fut.set_exception(e)
            fut.exception()  # mark retrieved: nobody may be waiting on it
            raise
        finally:
            self._inflight.pop(key, None)

    # Batches defer their cache commits: the answers that arrive in one turn of the event loop are
    # committed together at the start of the next (a commit per row cost ~15-25 us of CPU per request),
    # and always before any of them is reported: `_committed()` runs before a result leaves
    # iter_completed, and before an answer shared with an identical request is returned.
    def _commit_soon(self) -> None:
        if not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit_deferred)

    def _commit_deferred(self) -> None:
        self._commit_scheduled = False
        if self.cache is not None:
            try:
                self.cache.commit()
            except Exception as e:  # kept in cache.commit_error; `_committed()` raises it to the caller
                log.error("%s: cache commit failed: %s", self.cache.path, e)

    def _committed(self) -> None:
        """Commit deferred cache rows now; raises if that, or any commit of the cache before, failed
        (deferred rows may then be lost: their answers must not be reported as done)."""
        cache = self.cache
        if cache is not None:
            if cache.pending:
                cache.commit()
            if cache.commit_error is not None:
                raise cache.commit_error

    def _result(self, parsed: dict, key: str, latency: float, attempts: int, cached: bool, tag: Any) -> ChatResult:
        return ChatResult(**parsed, latency=latency, attempts=attempts, cached=cached, key=key, tag=tag)

    async def _call(self, body: str, key: str) -> tuple[str, dict[str, Any], float, int]:
        """POST with retries; (response text, parsed fields, latency of the good attempt, attempts)."""
        cfg, http = self.config, self._bind()
        deadlines = self._deadlines
        assert deadlines is not None
        content = body.encode()
        headers = {**self._headers, "X-Dianjin-Key": key}
        attempt = 0
        while True:
            attempt += 1
            after: float | None = None
            status: int | None = None
            excerpt = ""
            async with self._sem:  # type: ignore[union-attr]
                if self._bucket is not None:
                    await self._bucket.acquire()
                t0 = time.perf_counter()
                try:
                    att = deadlines.enter()  # what `async with asyncio.timeout(cfg.timeout)` does, cheaper
                    try:
                        resp = await http.request("POST", self.url, headers, content)
                    except BaseException as e:
                        if deadlines.exit(att, isinstance(e, asyncio.CancelledError)):
                            raise TimeoutError from e
                        raise
                    deadlines.exit(att, False)
                    latency = time.perf_counter() - t0
                    status, text = resp.status, resp.content.decode("utf-8", "replace")
                    if 200 <= status < 300:
                        return text, parse_completion(text), latency, attempt  # _Malformed -> retry
                    excerpt = text[:300].replace("\n", " ")
                    if status not in RETRY_STATUSES and status < 500:
                        raise LLMError(f"{self.url} ({cfg.model}): HTTP {status}, not retried: {excerpt}",
                                       endpoint=self.url, status=status, body=excerpt, attempts=attempt)
                    after = retry_after(resp.headers)
                    why = f"HTTP {status}: {excerpt[:120]}"
                except TimeoutError:
                    why = f"timed out after {cfg.timeout:g}s"
                except httpx2.TransportError as e:
                    why = f"{type(e).__name__}: {e}"
                except (_Malformed, httpx2.DecodingError) as e:
                    why = f"malformed response: {e}"
            if attempt > cfg.max_retries:
                raise LLMError(f"{self.url} ({cfg.model}): gave up after {attempt} attempts; last: {why}",
                               endpoint=self.url, status=status, body=excerpt, attempts=attempt, retryable=True)
            delay = backoff(cfg, attempt, after)
            log.info("%s attempt %d failed (%s); retrying in %.2fs", self.url, attempt, why, delay)
            await asyncio.sleep(delay)

    # batches -----------------------------------------------------------------------------------
    async def iter_completed(self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default",
                             progress: bool | None = None) -> AsyncIterator[tuple[int, ChatResult]]:
        """Yield (index, result) as requests finish; failures are results with `error` set."""
        reqs = [self.prepare(r) for r in requests]  # a malformed request raises before anything is sent
        show = self.progress if progress is None else progress
        prog = Progress(len(reqs), desc=stage, enabled=show is not False)
        queue: asyncio.Queue[tuple[int, ChatResult]] = asyncio.Queue()
        items = iter(enumerate(reqs))

        async def worker() -> None:
            for i, r in items:
                queue.put_nowait((i, await self._capture(r, stage, prog)))

        workers = [asyncio.create_task(worker()) for _ in range(min(self.config.concurrency, len(reqs)))]
        try:
            for _ in range(len(reqs)):
                item = await queue.get()
                self._committed()  # nothing is reported before its answer is committed
                yield item
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if self.cache is not None and self.cache.pending:
                self.cache.commit()
            prog.close()

    async def map(self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default",
                  progress: bool | None = None) -> list[ChatResult]:
        """All results in input order; a failed item is a ChatResult with `error` set (never raises for one)."""
        reqs = list(requests)
        out: list[ChatResult | None] = [None] * len(reqs)
        async for i, res in self.iter_completed(reqs, stage=stage, progress=progress):
            out[i] = res
        return out  # type: ignore[return-value]

    async def _capture(self, prepared: tuple[ChatRequest, str, str], stage: str, prog: Progress) -> ChatResult:
        req, _, key = prepared
        try:
            return await self._run(prepared, stage, prog, defer=True)
        except LLMError as e:
            log.warning("%s", e)
            return ChatResult(error=str(e), attempts=e.attempts, key=key, tag=req.tag)
        except Exception as e:  # a bug must not sink a batch of thousands; report it on the item
            log.exception("unexpected error in LLM request")
            return ChatResult(error=f"{type(e).__name__}: {e}", key=key, tag=req.tag)

    async def models(self) -> list[str]:
        """Model ids served by the endpoint (GET /models); a quick health check."""
        url = self.config.base_url + "/models"
        async with asyncio.timeout(self.config.timeout):
            resp = await self._bind().request("GET", url, self._headers)
        text = resp.content.decode("utf-8", "replace")
        if resp.status != 200:
            raise LLMError(f"{url}: HTTP {resp.status}: {text[:300]}", endpoint=url, status=resp.status, body=text[:300])
        return [m.get("id", "") for m in json.loads(text).get("data", [])]


# --- blocking façade ------------------------------------------------------------------------------
class SyncClient:
    """A blocking client on a private event loop in a background thread; usable from sync code and
    from inside another event loop (it blocks the caller). `SyncClient(cfg)(messages) -> str` is a
    `dianjin.tasks.base.Judge`."""

    def __init__(self, config: EndpointConfig, *, cache: ResponseCache | str | Path | None = None,
                 ledger: Ledger | None = None, stage: str = "default", progress: bool | None = False):
        self.stage = stage
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dianjin-llm", daemon=True)
        self._thread.start()
        self.client = LLMClient(config, cache=cache, ledger=ledger, progress=progress)
        self.ledger = self.client.ledger

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, request: ChatRequest | Messages, *, stage: str | None = None, **params: Any) -> ChatResult:
        return self._run(self.client.chat(request, stage=stage or self.stage, **params))

    def map(self, requests: Sequence[ChatRequest | Messages], *, stage: str | None = None,
            progress: bool | None = None) -> list[ChatResult]:
        return self._run(self.client.map(requests, stage=stage or self.stage, progress=progress))

    def text(self, messages: ChatRequest | Messages, **params: Any) -> str:
        """The answer's content; raises LLMError if the request failed or the answer was truncated."""
        res = self.chat(messages, **params)
        if res.truncated:
            raise LLMError(f"{self.client.url}: answer truncated at max_tokens", endpoint=self.client.url)
        return res.content or ""

    __call__ = text

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self.client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncClient({self.client!r})"
