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
- the SQLite cache (`dianjin.llm.cache`): looked up first, each answer committed as it arrives and
  before it is reported, so a re-run never pays twice; identical requests in flight at the same
  time are sent once;
- bounded responses: the body is read as a stream and decoded here, and an attempt whose decoded
  body passes `max_response_bytes` (16 MiB; gzip bombs and never-ending bodies alike) or whose
  whole exchange passes `timeout` fails and is retried; `content: null` (not a truncation) is a
  malformed answer, retried and never cached;
- a structured `ChatResult` (content, reasoning_content from `message.reasoning_content` or
  `message.reasoning`, finish_reason, tokens, latency, attempts, cached). A truncated answer
  (finish_reason "length") is returned with `truncated=True`, `ok=False`: callers treat it as failed;
- the ledger and the progress line (`dianjin.llm.ledger`).

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

Retry policy, the token bucket and the capped body reader live in `dianjin.llm.transport`.

HTTP: one path, `httpx2.AsyncClient` (connection pool, proxies from the environment, https), with
`asyncio.timeout` per attempt. Its CPU cost per request is in docs/benchmarks.md ("LLM client").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from dianjin.llm.cache import ResponseCache
from dianjin.llm.endpoint import EndpointConfig, LLMError, _num
from dianjin.llm.ledger import Ledger, Progress
from dianjin.llm.transport import _BUCKETS, RETRY_STATUSES, TokenBucket, _TooLarge, backoff, read_capped, retry_after

log = logging.getLogger("dianjin.llm.client")

Messages = list[dict[str, Any]]


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


class Batched:
    """`map` over `iter_completed`, for every engine that has the latter: `LLMClient` and
    `dianjin.eval.local.LocalEngine`."""

    def iter_completed(
        self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default", progress: bool | None = None
    ) -> AsyncIterator[tuple[int, ChatResult]]:
        raise NotImplementedError

    async def map(
        self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default", progress: bool | None = None
    ) -> list[ChatResult]:
        """All results in input order; a failed item is a ChatResult with `error` set (never raises for one)."""
        reqs = list(requests)
        out: list[ChatResult | None] = [None] * len(reqs)
        async for i, res in self.iter_completed(reqs, stage=stage, progress=progress):
            out[i] = res
        return out  # type: ignore[return-value]


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
    except (ValueError, RecursionError) as e:  # RecursionError: valid JSON nested past the parser's limit
        raise _Malformed(f"response is not JSON ({type(e).__name__}: {str(e)[:200]})") from None
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
    if (
        content is None and choices[0].get("finish_reason") != "length"
    ):  # a glitch, not an answer: retried, never cached
        raise _Malformed(f"message content is null (finish_reason {choices[0].get('finish_reason')!r})")
    if (content is not None and not isinstance(content, str)) or (
        reasoning is not None and not isinstance(reasoning, str)
    ):
        raise _Malformed("message content is not a string")
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    details = usage.get("completion_tokens_details")
    if not isinstance(details, dict):
        details = {}
    as_int = lambda v: int(v) if _num(v) and math.isfinite(v) else 0  # noqa: E731
    return {
        "content": content,
        "reasoning_content": reasoning,
        "finish_reason": choices[0].get("finish_reason"),
        "prompt_tokens": as_int(usage.get("prompt_tokens")),
        "completion_tokens": as_int(usage.get("completion_tokens")),
        "reasoning_tokens": as_int(details.get("reasoning_tokens")),
        "model": str(data.get("model") or ""),
    }


# --- the client -----------------------------------------------------------------------------------
class LLMClient(Batched):
    """Async client for one endpoint. Use as `async with LLMClient(cfg, cache=..., ledger=...) as c:`.

    cache: a path or a ResponseCache (None: no cache). ledger: a Ledger (a fresh one if None).
    progress: default for `map`/`iter_completed`: None/True show it (live on a terminal, else a line
    every 10 s and one at the end), False hides it.
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        cache: ResponseCache | str | Path | None = None,
        ledger: Ledger | None = None,
        progress: bool | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ):
        self.config = config
        self._key = config.api_key()
        self._own_cache = cache is not None and not isinstance(cache, ResponseCache)
        self.cache: ResponseCache | None = (
            cache if cache is None or isinstance(cache, ResponseCache) else ResponseCache(cache)
        )
        self.ledger = ledger if ledger is not None else Ledger()
        self.progress = progress
        self.url = config.base_url + "/chat/completions"
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._bucket = None
        if config.rps is not None:
            self._bucket = _BUCKETS.setdefault(
                (config.base_url, float(config.rps), config.burst), TokenBucket(config.rps, config.burst)
            )
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate", **config.headers}
        if self._key:
            auth = config.auth_header
            self._headers[auth] = f"Bearer {self._key}" if auth.lower() == "authorization" else self._key

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.config.base_url!r}, model={self.config.model!r}, cache={self.cache!r})"

    # loop-bound state (recreated if the client is reused under a new event loop) -------------------
    def _bind(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(self.config.concurrency)
            self._inflight = {}
            n = self.config.concurrency
            self._http = httpx2.AsyncClient(
                transport=self._transport,
                timeout=httpx2.Timeout(self.config.timeout),
                follow_redirects=False,
                limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n),
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None
        if self.ledger.path is not None:
            self.ledger.save()
        if self._own_cache and self.cache is not None:
            self.cache.close()
            self.cache = None

    async def __aenter__(self) -> LLMClient:
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
            request = (
                ChatRequest(messages=request, **params)
                if not isinstance(request, ChatRequest)
                else ChatRequest(**{**asdict(request), **params})
            )
        return await self._run(self.prepare(request), stage, None)

    async def _run(self, prepared: tuple[ChatRequest, str, str], stage: str, progress: Progress | None) -> ChatResult:
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
                self.cache.put(key, cfg.model, body, text, latency, attempts)
            self.ledger.record(
                stage,
                cfg.model,
                truncated=res.truncated,
                attempts=attempts,
                prompt_tokens=res.prompt_tokens,
                completion_tokens=res.completion_tokens,
                latency=latency,
                price_in=cfg.price_in,
                price_out=cfg.price_out,
            )
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

    def _result(self, parsed: dict, key: str, latency: float, attempts: int, cached: bool, tag: Any) -> ChatResult:
        return ChatResult(**parsed, latency=latency, attempts=attempts, cached=cached, key=key, tag=tag)

    async def _call(self, body: str, key: str) -> tuple[str, dict[str, Any], float, int]:
        """POST with retries; (response text, parsed fields, latency of the good attempt, attempts)."""
        cfg, http = self.config, self._bind()
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
                    async with asyncio.timeout(cfg.timeout):  # the whole attempt, body included
                        async with http.stream("POST", self.url, headers=headers, content=content) as resp:
                            status = resp.status_code
                            raw = await read_capped(resp, cfg.max_response_bytes)
                    latency = time.perf_counter() - t0
                    text = raw.decode("utf-8", "replace")
                    if 200 <= status < 300:
                        return text, parse_completion(text), latency, attempt  # _Malformed -> retry
                    excerpt = text[:300].replace("\n", " ")
                    if status not in RETRY_STATUSES and status < 500:
                        raise LLMError(
                            f"{self.url} ({cfg.model}): HTTP {status}, not retried: {excerpt}",
                            endpoint=self.url,
                            status=status,
                            body=excerpt,
                            attempts=attempt,
                        )
                    after = retry_after(resp.headers)
                    why = f"HTTP {status}: {excerpt[:120]}"
                except TimeoutError:
                    why = f"timed out after {cfg.timeout:g}s"
                except httpx2.TransportError as e:  # connect, read, write, protocol and pool errors
                    why = f"{type(e).__name__}: {e}"
                except (_Malformed, _TooLarge, httpx2.DecodingError) as e:
                    why = f"malformed response: {e}"
            if attempt > cfg.max_retries:
                raise LLMError(
                    f"{self.url} ({cfg.model}): gave up after {attempt} attempts; last: {why}",
                    endpoint=self.url,
                    status=status,
                    body=excerpt,
                    attempts=attempt,
                    retryable=True,
                )
            delay = backoff(cfg, attempt, after)
            log.info("%s attempt %d failed (%s); retrying in %.2fs", self.url, attempt, why, delay)
            await asyncio.sleep(delay)

    # batches -----------------------------------------------------------------------------------
    async def iter_completed(
        self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default", progress: bool | None = None
    ) -> AsyncIterator[tuple[int, ChatResult]]:
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
                yield item
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            prog.close()

    async def _capture(self, prepared: tuple[ChatRequest, str, str], stage: str, prog: Progress) -> ChatResult:
        req, _, key = prepared
        try:
            return await self._run(prepared, stage, prog)
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
            async with self._bind().stream("GET", url, headers=self._headers) as resp:
                text = (await read_capped(resp, self.config.max_response_bytes)).decode("utf-8", "replace")
        if resp.status_code != 200:
            raise LLMError(
                f"{url}: HTTP {resp.status_code}: {text[:300]}", endpoint=url, status=resp.status_code, body=text[:300]
            )
        return [m.get("id", "") for m in json.loads(text).get("data", [])]


# --- blocking façade ------------------------------------------------------------------------------
class SyncClient:
    """A blocking client on a private event loop in a background thread; usable from sync code and
    from inside another event loop (it blocks the caller). `SyncClient(cfg)(messages) -> str` is a
    `dianjin.tasks.base.Judge`."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        cache: ResponseCache | str | Path | None = None,
        ledger: Ledger | None = None,
        stage: str = "default",
        progress: bool | None = False,
    ):
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

    def map(
        self, requests: Sequence[ChatRequest | Messages], *, stage: str | None = None, progress: bool | None = None
    ) -> list[ChatResult]:
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

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncClient({self.client!r})"
