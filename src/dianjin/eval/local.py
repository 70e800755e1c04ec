"""Local generation in-process: `dianjin eval run --model-dir DIR` and `dianjin mine`'s sampler.

    async with LocalEngine("runs/sft/final", batch_size=16, ledger=ledger) as llm:   # what LLMClient offers
        async for i, res in llm.iter_completed([ChatRequest(msgs, temperature=0.6, max_tokens=512), ...]):
            ...                                     # (index, ChatResult) per request, as each is done
    gens = generate_chat("runs/sft/final", prompts, k=8, temperature=0.6, top_p=0.95, max_new_tokens=512)
    text, completion_tokens, truncated = gens[0][0]

Serving a model over HTTP (`dianjin serve` on `transformers serve`) costs a server process and a
request per answer. Here the requests are rendered and tokenized once, grouped by their sampling
parameters (temperature, top_p, max_tokens), and each group goes to the engine
(`dianjin.eval.backends`: HF `generate` with continuous batching, or vLLM's offline engine) in a
worker thread (the event loop stays free). Results come back as each request is done, so the eval
appends its rows one by one and a killed run resumes from the last written row.

What a request sees, as through the server path:
- the prompt: `tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`,
  tokenized with `add_special_tokens=False` (what `transformers serve` and vLLM's `chat` do);
- sampling: temperature 0 is greedy; temperature > 0 samples with the request's temperature and
  top_p; the model's other `generation_config` settings (top_k, repetition_penalty) apply, as they
  do under `transformers serve` and vLLM's default `--generation-config auto`. Unset parameters
  default to temperature 1, top_p 1 and 1,024 new tokens (`transformers serve`'s floor);
- stopping: at the tokenizer's eos or any of the generation_config's eos ids; the text is decoded
  with `skip_special_tokens=True`; `finish_reason` is "stop", or "length" when `max_tokens` (or
  `max_model_len`) ran out first; `completion_tokens` counts up to and including the eos;
- the result: the whole decoded completion is `content` (`reasoning_content` stays None, as from
  vLLM without a reasoning parser; `transformers serve` splits `<think>` off Qwen-type models'
  answers: the scorers rejoin the two, so verdicts agree); `latency` the seconds from joining the
  batch to the end (HF) or of its batch's call (vLLM); `attempts` 1; `model` the model's name
  (default: `str(model_dir)`).

Reproducibility: each request has a key (sha256 of model, messages, sampling and sample index, as
the HTTP client's cache key) and its seed is derived from (`seed`, key). vLLM seeds every request
with its own seed, so its samples do not depend on the batch. HF draws for the whole batch from the
global torch RNG, seeded with the seed of the group's first request: the same requests (same
list, same `batch_size`) give the same outputs, also at temperature > 0; another `batch_size`, or
a resumed run that has only part of the list left, gives other samples. Greedy outputs do not
depend on the RNG, but batch composition can in rare near-ties change a token (floating-point sums).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Self

from dianjin.eval.backends import (
    SEGMENT,
    LocalModel,
    Messages,
    check_model_dir,
    check_segment,
    collect,
    load_local,
    resolve_engine,
)
from dianjin.llm.client import Batched, ChatRequest, ChatResult, cache_key
from dianjin.llm.ledger import Ledger, Progress
from dianjin.model.precision import check_dtype, resolve_dtype

log = logging.getLogger("dianjin.eval.local")

DEFAULT_BATCH_SIZE = 16
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 1024  # as `transformers serve` when a request gives none


class Generated(NamedTuple):
    """One completion from `generate_chat`."""

    text: str
    completion_tokens: int  # up to and including the end-of-sequence token
    truncated: bool  # stopped at max_new_tokens without an end-of-sequence token


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run's seed and a request key."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


# --- the synchronous helper (mining) -----------------------------------------------------------------
def generate_chat(
    model: str | Path | LocalModel,
    prompts: Sequence[Messages],
    *,
    k: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    engine: str = "auto",
    dtype: str = "auto",
) -> list[list[Generated]]:
    """`k` completions per chat prompt, in input order. `model`: a directory (loaded for this call
    on `engine` in `dtype`) or a model from `load_local`. HF: continuous batching of `batch_size`
    prompts' rows, longest prompts first, seeded once with `seed` (prompts that all fit one batch
    draw what the old `train.common.generate` drew with that seed); vLLM: batches of `batch_size`
    prompts of similar length, prompt i seeded with derive_seed(seed, str(i))."""
    backend = load_local(model, engine, dtype=dtype) if isinstance(model, (str, Path)) else model
    encoded: list[Any] = [backend.encode(p) for p in prompts]  # token ids (HF) or messages (vLLM): backend's own
    seeds = [seed] if backend.engine == "transformers" else [derive_seed(seed, str(i)) for i in range(len(prompts))]
    got = collect(
        backend.stream(
            encoded,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_new_tokens,
            seeds=seeds,
            batch_size=batch_size,
        )
    )
    out = [
        [Generated(c.text, c.completion_tokens, c.finish_reason == "length") for c in got[i]]
        for i in range(len(prompts))
    ]
    if backend is not model:
        backend.close()
    return out


# --- the async engine (eval) -----------------------------------------------------------------------------
class LocalEngine(Batched):
    """`iter_completed`/`map`/`aclose` as `dianjin.llm.client.LLMClient` has them (`map` from their shared
    base, `dianjin.llm.client.Batched`), generating in-process.

    The model is loaded (in a worker thread) on the first request. A failed batch (e.g. out of
    memory) gives each of its requests a result with `error` set; the others go on.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        engine: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_model_len: int | None = None,
        seed: int = 0,
        dtype: str = "auto",
        segment: int = SEGMENT,
        refill: bool = True,
        progress: bool | None = None,
        ledger: Ledger | None = None,
        model_name: str | None = None,
    ):
        self.model_dir = check_model_dir(model_dir)
        self.engine = resolve_engine(engine)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.max_model_len, self.seed = batch_size, max_model_len, seed
        self.segment, self.refill = check_segment(segment), refill  # transformers' batching (HFModel)
        # resolved here, so the run records what it generated in; vLLM resolves "auto" itself
        self.dtype = resolve_dtype(dtype, model_dir) if self.engine == "transformers" else check_dtype(dtype)
        self.progress = progress
        self.ledger = ledger if ledger is not None else Ledger()
        self.model = model_name or str(model_dir)  # the name in keys, results and the ledger
        self._backend: LocalModel | None = None
        self._lock = asyncio.Lock()

    def settings(self) -> dict[str, Any]:
        """What generates, as `dianjin eval` records it: engine, batch size, dtype and, for transformers,
        the batching (vLLM schedules its own)."""
        batching = {"segment": self.segment, "refill": self.refill} if self.engine == "transformers" else {}
        return {"engine": self.engine, "batch_size": self.batch_size, "dtype": self.dtype} | batching

    def __repr__(self) -> str:
        return f"LocalEngine({str(self.model_dir)!r}, engine={self.engine!r}, batch_size={self.batch_size}, dtype={self.dtype!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _load(self) -> LocalModel:
        async with self._lock:
            if self._backend is None:
                self._backend = await asyncio.to_thread(
                    load_local,
                    self.model_dir,
                    self.engine,
                    max_model_len=self.max_model_len,
                    seed=self.seed,
                    dtype=self.dtype,
                    segment=self.segment,
                    refill=self.refill,
                )
        return self._backend

    def prepare(self, request: ChatRequest | Messages) -> tuple[ChatRequest, tuple[float, float, int], str]:
        """(request, (temperature, top_p, max_tokens), key) for a request or a bare message list."""
        req = request if isinstance(request, ChatRequest) else ChatRequest(messages=request)
        if not isinstance(req.messages, list) or not all(isinstance(m, dict) and "role" in m for m in req.messages):
            raise ValueError(f"messages must be a list of {{'role', 'content'}} dicts, got {str(req.messages)[:200]}")
        if req.extra:
            raise ValueError(
                f"LocalEngine: request fields beyond the sampling parameters are not supported: {sorted(req.extra)}"
            )
        params = (
            float(DEFAULT_TEMPERATURE if req.temperature is None else req.temperature),
            float(DEFAULT_TOP_P if req.top_p is None else req.top_p),
            int(DEFAULT_MAX_TOKENS if req.max_tokens is None else req.max_tokens),
        )
        body = {
            "model": self.model,
            "messages": req.messages,
            "temperature": params[0],
            "top_p": params[1],
            "max_tokens": params[2],
        }
        blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return req, params, cache_key(blob, req.sample, None)

    async def iter_completed(
        self, requests: Iterable[ChatRequest | Messages], *, stage: str = "default", progress: bool | None = None
    ) -> AsyncIterator[tuple[int, ChatResult]]:
        """Yield (index, result) as each request is done; failures are results with `error` set."""
        prepared = [self.prepare(r) for r in requests]  # a malformed request raises before anything runs
        show = self.progress if progress is None else progress
        prog = Progress(len(prepared), desc=stage, enabled=show is not False)
        try:
            if not prepared:
                return
            backend = await self._load()
            encoded: list[Any] = await asyncio.to_thread(lambda: [backend.encode(r.messages) for r, _, _ in prepared])
            groups: dict[tuple[float, float, int], list[int]] = {}  # one stream per sampling parameters
            for i, (_, params, _) in enumerate(prepared):
                groups.setdefault(params, []).append(i)
            for idx in groups.values():
                for _ in idx[: self.batch_size]:
                    prog.start()  # in flight: the rows in the batch
                started = min(len(idx), self.batch_size)
                async for i, res in self._stream(backend, [encoded[i] for i in idx], [prepared[i] for i in idx]):
                    if started < len(idx):
                        prog.start()  # a queued request takes the finished one's row
                        started += 1
                    if res.error:
                        self.ledger.record(stage, self.model, failed=True)
                    else:
                        self.ledger.record(
                            stage,
                            self.model,
                            truncated=res.truncated,
                            prompt_tokens=res.prompt_tokens,
                            completion_tokens=res.completion_tokens,
                            latency=res.latency,
                        )
                    prog.finish(res.error is None, truncated=res.truncated)
                    yield idx[i], res
        finally:
            prog.close()

    async def _stream(
        self, backend: LocalModel, encoded: list[Any], prepared: list[tuple[ChatRequest, tuple[float, float, int], str]]
    ) -> AsyncIterator[tuple[int, ChatResult]]:
        """`backend.stream` of one sampling group, run in a worker thread, its results as they come. A
        failure (e.g. out of memory) gives each request not yet done a result with `error` set."""
        temperature, top_p, max_tokens = prepared[0][1]
        seeds = [derive_seed(self.seed, key) for _, _, key in prepared]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                for item in backend.stream(
                    encoded,
                    k=1,
                    temperature=temperature,
                    top_p=top_p,
                    max_tokens=max_tokens,
                    seeds=seeds,
                    batch_size=self.batch_size,
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                    if stop.is_set():
                        return  # the consumer left: stop generating
            except Exception as e:  # noqa: BLE001  # out of memory, ...: the rest of the group fails
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, work)
        pending = set(range(len(prepared)))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    log.warning("local generation failed with %d requests left: %s", len(pending), item)
                    for i in sorted(pending):
                        yield i, self._failed(prepared[i], item)
                    pending.clear()
                    continue
                i, group, latency = item
                pending.discard(i)
                if isinstance(group, Exception):
                    yield i, self._failed(prepared[i], group)
                    continue
                (c,) = group
                req, _, key = prepared[i]
                yield (
                    i,
                    ChatResult(
                        content=c.text,
                        finish_reason=c.finish_reason,
                        prompt_tokens=c.prompt_tokens,
                        completion_tokens=c.completion_tokens,
                        latency=latency,
                        attempts=1,
                        key=key,
                        model=self.model,
                        tag=req.tag,
                    ),
                )
        finally:
            stop.set()
            await worker  # the model is free again before anything else uses it

    def _failed(self, prepared: tuple[ChatRequest, tuple[float, float, int], str], e: Exception) -> ChatResult:
        req, _, key = prepared
        return ChatResult(error=f"{type(e).__name__}: {str(e)[:500]}", key=key, tag=req.tag, model=self.model)

    async def aclose(self) -> None:
        """Free the model (a later request loads it again)."""
        async with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
                gc.collect()
        if self.ledger.path is not None:
            self.ledger.save()


__all__ = ["DEFAULT_BATCH_SIZE", "Generated", "LocalEngine", "derive_seed", "generate_chat"]
