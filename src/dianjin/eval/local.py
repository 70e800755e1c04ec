"""Local generation in-process, in batches: `dianjin eval run --model-dir DIR` and `dianjin mine`'s sampler.

    async with LocalEngine("runs/sft/final", batch_size=16, ledger=ledger) as llm:   # what LLMClient offers
        async for i, res in llm.iter_completed([ChatRequest(msgs, temperature=0.6, max_tokens=512), ...]):
            ...                                     # (index, ChatResult) per request, one batch at a time
    gens = generate_chat("runs/sft/final", prompts, k=8, temperature=0.6, top_p=0.95, max_new_tokens=512)
    text, completion_tokens, truncated = gens[0][0]

Serving a model over HTTP (`dianjin serve` on `transformers serve`) costs a server process, a
request per answer and a paged KV cache that continuous batching fills step by step. Here the
requests are rendered and tokenized once, sorted by prompt length (less padding), grouped by their
sampling parameters (temperature, top_p, max_tokens), and generated `batch_size` at a time by
`model.generate` in a worker thread (the event loop stays free); each batch's results are yielded
as soon as it is done, so the eval appends its rows batch by batch and a killed run resumes from
the last finished batch.

Engines (`engine=`): "transformers" (HF `generate`, the default without a GPU) and "vllm"
(`vllm.LLM.chat`, picked by "auto" when vLLM imports and CUDA is available). The vLLM path follows
vLLM's offline-inference API (`LLM(model, seed, max_model_len)`, `LLM.chat(conversations,
[SamplingParams(n, temperature, top_p, max_tokens, seed)], use_tqdm=False)`) and is NOT tested
in CI: no GPU there, and vLLM cannot be installed beside our torch. Give it a larger
`batch_size` (e.g. 256): vLLM batches continuously inside each call.

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
  answers: the scorers rejoin the two, so verdicts agree); `latency` is the batch's wall time
  divided by its size; `attempts` 1; `model` the model's name (default: `str(model_dir)`).

Precision (`dtype=`): "auto" (the default) loads a float32 checkpoint in bfloat16 where the CPU or
GPU computes it natively, as vLLM's `--dtype auto` runs float32 checkpoints in half precision; or
"float32", "bfloat16", "float16" as asked (`dianjin.model.precision`). On SmolLM2-135M, 2 CPU
cores with AVX512-BF16, bfloat16 made 1.65x the tokens/s of float32 (`bench/bench_local_eval.py`).

Reproducibility: each request has a key (sha256 of model, messages, sampling and sample index, as
the HTTP client's cache key) and its seed is derived from (`seed`, key). vLLM seeds every request
with its own seed, so its samples do not depend on the batch. HF `generate` draws for the whole
batch from the global torch RNG, seeded with the seed of the batch's first request: the same
requests in the same batches (same list, same `batch_size`) give the same outputs, also at
temperature > 0; a different batch composition (another `batch_size`, a resumed run that has only
part of the list left) gives other samples. Greedy outputs do not depend on the RNG, but padding
can in rare near-ties change a token across batch compositions (floating-point sums).

Cost: the prompts are prefilled one at a time, without padding, into a KV cache that grows in place
instead of by `torch.cat` per token (`dianjin.eval.kvcache`; 1.08x the tokens/s in batches of 48,
SmolLM2 on 2 CPU cores, `bench/bench_local_eval.py --padded`; in float32 the same text as
generate's own cache). Then `model.generate` runs `SEGMENT` (32) new tokens at a time; between
calls the rows that stopped leave the batch and its KV cache, so a short answer stops costing
compute within 32 tokens instead of riding along to the end of its batch's longest (the demo's
evaluation shape: 1.25x the tokens/s greedy, 1.33x sampled; the same greedy text but for bfloat16
rounding as the batch shrinks; `bench/bench_local_eval.py --segments 32,0`). A new row does not
take a freed slot (no continuous batching): sorting by prompt length keeps the padding low. Sampled
draws depend on the segments (the RNG draws for the rows still going), so they differ from one
unsegmented `generate` call past the first 32 tokens. `torch.set_num_threads` is left to torch.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Self

from dianjin.llm.client import Batched, ChatRequest, ChatResult, cache_key
from dianjin.llm.ledger import Ledger, Progress
from dianjin.model.precision import check_dtype, resolve_dtype

log = logging.getLogger("dianjin.eval.local")

Messages = list[dict[str, Any]]
ENGINES = ("auto", "transformers", "vllm")
DEFAULT_BATCH_SIZE = 16
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 1024  # as `transformers serve` when a request gives none
SEGMENT = 32  # new tokens per `generate` call: finished rows leave the batch between calls


class Generated(NamedTuple):
    """One completion from `generate_chat`."""

    text: str
    completion_tokens: int  # up to and including the end-of-sequence token
    truncated: bool  # stopped at max_new_tokens without an end-of-sequence token


@dataclass
class Completion:
    """One completion from a backend."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"


# --- engines -----------------------------------------------------------------------------------------
def vllm_available() -> bool:
    """vLLM importable and a CUDA GPU visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def resolve_engine(engine: str) -> str:
    """ "auto" -> "vllm" when vLLM and a GPU are there, else "transformers"; checks the name."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if engine == "auto":
        return "vllm" if vllm_available() else "transformers"
    if engine == "vllm" and not vllm_available():
        raise ValueError("engine vllm needs vLLM installed and a CUDA GPU; use engine transformers")
    return engine


def check_model_dir(model_dir: str | Path) -> Path:
    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d}: not a model directory (no config.json)")
    return d


class HFModel:
    """A transformers causal LM and its tokenizer (left padding, pad = eos when missing)."""

    engine = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, max_model_len: int | None = None, segment: int | None = None):
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        segment = SEGMENT if segment is None else segment  # read at call time: bench_local_eval.py varies it
        if segment < 1:
            raise ValueError(f"segment must be >= 1, got {segment}")
        self.model, self.tok, self.max_model_len, self.segment = model, tokenizer, max_model_len, segment
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        eos = {tokenizer.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])}
        self.eos = sorted(e for e in eos if e is not None)

    @classmethod
    def load(cls, model_dir: str | Path, *, max_model_len: int | None = None, dtype: str = "auto") -> HFModel:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir))
        torch_dtype = getattr(torch, resolve_dtype(dtype, model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype)
        if torch.cuda.is_available():
            # transformers decorates PreTrainedModel.to with functools.wraps, which mypy types as an unbound function
            model = model.to("cuda")  # type: ignore[arg-type]
        return cls(model.eval(), tok, max_model_len=max_model_len)

    def encode(self, messages: Messages) -> list[int]:
        text = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tok(text, add_special_tokens=False)["input_ids"]

    @staticmethod
    def length(encoded: list[int]) -> int:
        return len(encoded)

    def generate(
        self,
        prompts: Sequence[list[int]],
        *,
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seeds: Sequence[int],
    ) -> list[list[Completion]]:
        """One batch: `k` completions of each prompt; the global torch RNG is seeded with `seeds[0]`.

        The prompts are prefilled one at a time into a cache that grows in place (`kvcache.prefill`);
        `model.generate` then runs `segment` new tokens at a time on the rows still going, continuing
        from the KV cache it returned; between calls the rows that stopped (eos, or their cap) leave
        the batch and the cache (`Cache.batch_select_indices`)."""
        import torch

        from dianjin.eval.kvcache import prefill

        caps = [
            max_tokens if self.max_model_len is None else min(max_tokens, self.max_model_len - len(p)) for p in prompts
        ]
        if min(caps) < 1:
            raise ValueError(
                f"a prompt of {max(map(len, prompts))} tokens leaves no room in max_model_len {self.max_model_len}"
            )
        width = max(map(len, prompts))
        pad = self.tok.pad_token_id
        device = self.model.device  # ids, mask and the row index stay there between segments
        rows = [p for p in prompts for _ in range(k)]  # row r = prompt r // k, sample r % k
        ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in rows], device=device)  # [B*k, width]
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], device=device)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
        )
        eos = set(self.eos)
        row_cap = [caps[r // k] for r in range(len(rows))]
        new: list[list[int]] = [[] for _ in row_cap]
        live = list(range(len(row_cap)))  # rows still generating, in the order of ids' rows
        done = 0
        was_training = self.model.training
        self.model.eval()
        try:
            torch.manual_seed(seeds[0])
            with torch.inference_mode():
                cache = prefill(self.model, prompts, k=k, width=width)  # None: generate prefills the padded batch
                while live:
                    step = min(self.segment, max(row_cap[r] for r in live) - done)
                    out = self.model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        cache=cache,
                        max_new_tokens=step,
                        pad_token_id=pad,
                        eos_token_id=self.eos,
                        return_dict_in_generate=True,
                        **sampling,
                    )
                    seqs = out.sequences  # [len(live), ids.shape[1] + <= step]
                    done += seqs.shape[1] - ids.shape[1]
                    keep = []
                    for j, (r, got) in enumerate(zip(live, seqs[:, ids.shape[1] :].tolist())):
                        new[r] += got
                        if not eos.intersection(got) and done < row_cap[r]:
                            keep.append(j)
                    if not keep:
                        break
                    index = torch.tensor(keep, device=device)
                    if len(keep) < len(live):
                        out.cache.batch_select_indices(index)
                    live, cache, ids = [live[j] for j in keep], out.cache, seqs[index]
                    grown = torch.ones(len(keep), ids.shape[1] - mask.shape[1], dtype=mask.dtype, device=device)
                    mask = torch.cat([mask[index], grown], 1)
        finally:
            self.model.train(was_training)
        results = []
        for i, p in enumerate(prompts):
            group = []
            for row in new[i * k : (i + 1) * k]:
                row = row[: caps[i]]
                end = next((n for n, t in enumerate(row) if t in eos), None)
                body = row if end is None else row[:end]
                group.append(
                    Completion(
                        self.tok.decode(body, skip_special_tokens=True),
                        len(p),
                        len(row) if end is None else end + 1,
                        "length" if end is None else "stop",
                    )
                )
            results.append(group)
        return results

    def close(self) -> None:
        self.model = None


class VLLMModel:
    """vLLM's offline engine. Untested in CI (no GPU, no vLLM): written to vLLM's documented API."""

    engine = "vllm"

    def __init__(self, model_dir: str | Path, *, max_model_len: int | None = None, seed: int = 0, dtype: str = "auto"):
        from vllm import LLM

        kw: dict[str, Any] = {"model": str(model_dir), "seed": seed, "dtype": check_dtype(dtype)}  # vLLM's own "auto"
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = LLM(**kw)

    @staticmethod
    def encode(messages: Messages) -> Messages:
        return messages  # LLM.chat renders and tokenizes

    @staticmethod
    def length(messages: Messages) -> int:
        return sum(len(str(m.get("content") or "")) for m in messages)

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seeds: Sequence[int],
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = [
            SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=s % (1 << 31))
            for s in seeds
        ]
        outs = self.llm.chat(list(prompts), sampling_params=params, use_tqdm=False)
        return [
            [
                Completion(
                    o.text,
                    len(r.prompt_token_ids or []),
                    len(o.token_ids),
                    "length" if o.finish_reason == "length" else "stop",
                )
                for o in r.outputs
            ]
            for r in outs
        ]

    def close(self) -> None:
        self.llm = None


LocalModel = HFModel | VLLMModel


def load_local(
    model_dir: str | Path, engine: str = "auto", *, max_model_len: int | None = None, seed: int = 0, dtype: str = "auto"
) -> LocalModel:
    """Load a model directory on the engine ("auto": vLLM with a GPU, else transformers) in `dtype`."""
    check_model_dir(model_dir)
    if resolve_engine(engine) == "vllm":
        return VLLMModel(model_dir, max_model_len=max_model_len, seed=seed, dtype=dtype)
    return HFModel.load(model_dir, max_model_len=max_model_len, dtype=dtype)


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run's seed and a request key."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


def plan_batches(lengths: Sequence[int], groups: Sequence[Any], batch_size: int) -> list[list[int]]:
    """Indices in batches of at most `batch_size`: one sampling group per batch (groups in order of
    first appearance), shortest prompts first; each batch lists its indices in input order."""
    by_group: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out = []
    for idx in by_group.values():
        idx = sorted(idx, key=lambda i: lengths[i])  # stable: equal lengths keep input order
        out += [sorted(idx[j : j + batch_size]) for j in range(0, len(idx), batch_size)]
    return out


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
    on `engine` in `dtype`) or a model from `load_local`. Batches hold prompts of similar length (each in input
    order); HF batch b (0, 1, ... in generation order) is seeded with `seed + b`, so one batch with
    a given seed reproduces the old `train.common.generate` draws; vLLM seeds prompt i with
    derive_seed(seed, str(i))."""
    backend = load_local(model, engine, dtype=dtype) if isinstance(model, (str, Path)) else model
    encoded: list[Any] = [backend.encode(p) for p in prompts]  # token ids (HF) or messages (vLLM): backend's own
    out: list[list[Generated]] = [[] for _ in prompts]
    batches = plan_batches([backend.length(e) for e in encoded], [0] * len(prompts), batch_size)
    for b, idx in enumerate(batches):
        seeds = [seed + b] if backend.engine == "transformers" else [derive_seed(seed, str(i)) for i in idx]
        groups = backend.generate(
            [encoded[i] for i in idx], k=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seeds=seeds
        )
        for i, group in zip(idx, groups):
            out[i] = [Generated(c.text, c.completion_tokens, c.finish_reason == "length") for c in group]
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
        progress: bool | None = None,
        ledger: Ledger | None = None,
        model_name: str | None = None,
    ):
        self.model_dir = check_model_dir(model_dir)
        self.engine = resolve_engine(engine)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.max_model_len, self.seed = batch_size, max_model_len, seed
        # resolved here, so the run records what it generated in; vLLM resolves "auto" itself
        self.dtype = resolve_dtype(dtype, model_dir) if self.engine == "transformers" else check_dtype(dtype)
        self.progress = progress
        self.ledger = ledger if ledger is not None else Ledger()
        self.model = model_name or str(model_dir)  # the name in keys, results and the ledger
        self._backend: LocalModel | None = None
        self._lock = asyncio.Lock()

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
        """Yield (index, result) batch by batch; failures are results with `error` set."""
        prepared = [self.prepare(r) for r in requests]  # a malformed request raises before anything runs
        show = self.progress if progress is None else progress
        prog = Progress(len(prepared), desc=stage, enabled=show is not False)
        try:
            if not prepared:
                return
            backend = await self._load()
            encoded: list[Any] = await asyncio.to_thread(lambda: [backend.encode(r.messages) for r, _, _ in prepared])
            batches = plan_batches([backend.length(e) for e in encoded], [p for _, p, _ in prepared], self.batch_size)
            for idx in batches:
                for _ in idx:
                    prog.start()
                for i, res in zip(
                    idx, await self._batch(backend, [encoded[i] for i in idx], [prepared[i] for i in idx])
                ):
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
                    yield i, res
        finally:
            prog.close()

    async def _batch(
        self, backend: LocalModel, encoded: list[Any], prepared: list[tuple[ChatRequest, tuple[float, float, int], str]]
    ) -> list[ChatResult]:
        temperature, top_p, max_tokens = prepared[0][1]
        seeds = [derive_seed(self.seed, key) for _, _, key in prepared]
        t0 = time.perf_counter()
        try:
            groups = await asyncio.to_thread(
                backend.generate, encoded, k=1, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seeds=seeds
            )
        except Exception as e:  # noqa: BLE001  # out of memory, a prompt too long for max_model_len, ...: these rows fail
            log.warning("local generation failed for a batch of %d: %s", len(prepared), e)
            return [
                ChatResult(error=f"{type(e).__name__}: {str(e)[:500]}", key=key, tag=req.tag, model=self.model)
                for req, _, key in prepared
            ]
        share = (time.perf_counter() - t0) / len(prepared)
        return [
            ChatResult(
                content=c.text,
                finish_reason=c.finish_reason,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                latency=share,
                attempts=1,
                key=key,
                model=self.model,
                tag=req.tag,
            )
            for (req, _, key), (c,) in zip(prepared, groups)
        ]

    async def aclose(self) -> None:
        """Free the model (a later request loads it again)."""
        async with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
                gc.collect()
        if self.ledger.path is not None:
            self.ledger.save()


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ENGINES",
    "Completion",
    "Generated",
    "HFModel",
    "LocalEngine",
    "LocalModel",
    "VLLMModel",
    "check_model_dir",
    "derive_seed",
    "generate_chat",
    "load_local",
    "plan_batches",
    "resolve_engine",
    "vllm_available",
]
