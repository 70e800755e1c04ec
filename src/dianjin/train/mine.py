"""Hard-item mining for RL: `dianjin mine CONFIG.yaml [key=value ...]`.

    dianjin mine recipes/tiny_mine.yaml                        # CPU demo: sample from the tiny SFT model
    dianjin mine CONFIG.yaml endpoint.base_url=http://127.0.0.1:8000/v1 model=dianjin-sft   # a served model

GRPO learns only from groups whose rollouts disagree: when all k answers to a question are right,
or all wrong, every advantage is zero. So we sample `k` answers per candidate question from the SFT
model, score each with the task scorer in reward mode (a pass is the gated reward: strict format
and correct), and keep the questions whose pass rate lies strictly inside (`min_pass`, `max_pass`),
by default 0 < p < 1. This is offered beside the paper's pool (items the teacher failed three
times, `dianjin.data`): upstream picked ~4,096 CFLUE MCQ prompts "ideally hard ones" without saying how.

Sampling: in-process with `dianjin.eval.local.generate_chat` (HF `generate` with continuous
batching, a prompt's k samples sharing one prefill, seeded once; vLLM when it imports and a GPU is
there), or any
OpenAI-compatible endpoint through `dianjin.llm.client` when `endpoint` is set (cached, so a re-run
pays nothing twice). Defaults match the GRPO rollouts (temperature 0.6, top_p 0.95) so the pass
rates are the ones GRPO will see.

Outputs in `output_dir`: `rl_mined.jsonl` (kept rows in the rl.jsonl format plus `pass_rate` and
`mined: {k, passes, format_rate, truncated}`), `mine_log.jsonl` (one line per scored question,
appended as it goes; a re-run skips what it holds), `summary.json` (counts, pass-rate histogram,
per task), and config.yaml / meta.json (with the data fingerprint).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dianjin.errors import DataError
from dianjin.files import JsonlAppender, atomic_write_json, iter_jsonl, write_jsonl
from dianjin.model.precision import check_dtype
from dianjin.rundir import RunDir
from dianjin.tasks import get_task
from dianjin.train.common import (
    config_main,
    drop_long_prompts,
    file_fingerprint,
    load_prompt_items,
    load_tokenizer,
    rl_row,
)

# One question's k answers: (content, reasoning_content, truncated) each; None when sampling failed.
Answers = list[tuple[str, str | None, bool]]
Sampler = Callable[[list[dict[str, Any]]], list[Answers | None]]


@dataclass
class MineConfig:
    """`dianjin mine` config."""

    # the keys before the endpoint became one EndpointConfig, still read
    KEY_ALIASES: ClassVar[dict[str, str]] = {
        "base_url": "endpoint.base_url",
        "api_key_env": "endpoint.api_key_env",
        "concurrency": "endpoint.concurrency",
    }

    model: str = ""  # HF model directory (local sampling) or, with an endpoint, the served model name
    data: list[str] = field(default_factory=list)  # candidate questions: rl.jsonl rows (or task examples) with gold
    output_dir: str = ""  # where rl_mined.jsonl, mine_log.jsonl, summary.json, config.yaml, meta.json go
    k: int = 8  # answers sampled per question (GRPO's num_generations is a natural choice)
    min_pass: float = 0.0  # keep questions with min_pass < pass rate ...
    max_pass: float = 1.0  # ... < max_pass (exclusive both ends)
    temperature: float = 0.6  # sampling temperature (> 0; upstream rollout temperature)
    top_p: float = 0.95  # nucleus sampling (upstream rollout top_p)
    max_new_tokens: int = 4096  # answer length cap (upstream max_response_length); a truncated answer fails
    # local model only: longer prompts are skipped, as GRPO drops them (None: keep)
    max_prompt_length: int | None = 1024
    limit: int | None = None  # mine at most this many candidates, in file order (None: all)
    batch_size: int = 8  # questions per step: one HF generate call, or k * batch_size endpoint requests
    seed: int = 0  # sampling seed (HF: per batch, from this and the batch's ids)
    dtype: str = "auto"  # local model: auto (bf16 where native: dianjin.model.precision), float32, bfloat16
    # an OpenAI-compatible endpoint (vLLM, `dianjin serve`) as dianjin.llm.endpoint.EndpointConfig keys (base_url,
    # api_key_env, concurrency, timeout, ...; model: `model`); None: HF generate locally
    endpoint: dict[str, Any] | None = None
    cache: str | None = None  # endpoint response cache (SQLite); None: output_dir/cache.sqlite


def check(cfg: MineConfig, where: str) -> None:
    for name in ("model", "output_dir"):
        if not getattr(cfg, name):
            raise DataError(where, None, name, "required")
    if not cfg.data:
        raise DataError(where, None, "data", "required: one or more JSONL files of candidate questions")
    if cfg.k < 1 or cfg.batch_size < 1:
        raise DataError(where, None, "k" if cfg.k < 1 else "batch_size", "must be >= 1")
    if not 0.0 <= cfg.min_pass < cfg.max_pass <= 1.0:
        raise DataError(
            where, None, "min_pass", f"need 0 <= min_pass < max_pass <= 1, got {cfg.min_pass}, {cfg.max_pass}"
        )
    if cfg.temperature <= 0:
        raise DataError(where, None, "temperature", "must be > 0: k greedy answers would all be the same")
    try:
        check_dtype(cfg.dtype)
    except ValueError as e:
        raise DataError(where, None, "dtype", str(e)) from None
    for f in cfg.data:
        if not Path(f).is_file():
            raise DataError(f, None, None, "data file not found")


def in_band(pass_rate: float, low: float, high: float) -> bool:
    """Strictly inside (low, high): the groups that give GRPO a non-zero advantage (by default)."""
    return low < pass_rate < high


# --- samplers -------------------------------------------------------------------------------------
def hf_sampler(cfg: MineConfig) -> Sampler:
    from dianjin.eval.backends import load_local
    from dianjin.eval.local import generate_chat

    model = load_local(cfg.model, "auto", seed=cfg.seed, dtype=cfg.dtype)  # vLLM with a GPU, else HF generate

    def sample(items: list[dict[str, Any]]) -> list[Answers | None]:
        key = hashlib.sha256(f"{cfg.seed}:{','.join(it['id'] for it in items)}".encode()).digest()
        gens = generate_chat(
            model,
            [it["prompt"] for it in items],
            k=cfg.k,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=len(items),
            seed=int.from_bytes(key[:8], "little"),
        )
        return [[(g.text, None, g.truncated) for g in group] for group in gens]

    return sample


def endpoint_sampler(cfg: MineConfig) -> tuple[Sampler, Callable[[], None]]:
    from dianjin.llm.client import ChatRequest, EndpointConfig, SyncClient

    assert cfg.endpoint is not None
    sampling = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_new_tokens}
    ep = EndpointConfig.from_dict({"model": cfg.model, "concurrency": 32, **cfg.endpoint, **sampling}, "mine endpoint")
    client = SyncClient(ep, cache=cfg.cache or str(Path(cfg.output_dir) / "cache.sqlite"), stage="mine")

    def sample(items: list[dict[str, Any]]) -> list[Answers | None]:
        reqs = [ChatRequest(it["prompt"], sample=j) for it in items for j in range(cfg.k)]
        res = client.map(reqs, stage="mine")
        out: list[Answers | None] = []
        for i in range(len(items)):
            group = res[i * cfg.k : (i + 1) * cfg.k]
            out.append(
                None
                if any(r.error for r in group)
                else [(r.content or "", r.reasoning_content, r.truncated) for r in group]
            )
        return out

    return sample, client.close


# --- scoring and selection ------------------------------------------------------------------------
def score_item(item: dict[str, Any], answers: Answers) -> dict[str, Any]:
    """One mine_log.jsonl line: passes (gated reward 1) among the k answers, and the format rate."""
    task = get_task(item["task"])
    verdicts = [task.score(c, item["example"], mode="reward", reasoning_content=r) for c, r, _ in answers]
    passes = sum(v.reward for v in verdicts)
    return {
        "id": item["id"],
        "task": item["task"],
        "k": len(answers),
        "passes": int(passes),
        "pass_rate": passes / len(answers),
        "format_rate": sum(v.format_ok for v in verdicts) / len(answers),
        "truncated": sum(t for _, _, t in answers),
        "preds": [v.pred for v in verdicts],
    }


def summarize(
    items: list[dict[str, Any]],
    log: dict[str, dict[str, Any]],
    cfg: MineConfig,
    skipped: list[str],
    errors: int,
    seconds: float,
) -> dict[str, Any]:
    scored = [log[it["id"]] for it in items if it["id"] in log]
    kept = [r for r in scored if in_band(r["pass_rate"], cfg.min_pass, cfg.max_pass)]
    per_task: dict[str, Counter] = defaultdict(Counter)
    for r in scored:
        per_task[r["task"]]["scored"] += 1
        per_task[r["task"]]["kept"] += in_band(r["pass_rate"], cfg.min_pass, cfg.max_pass)
    hist = Counter(f"{r['passes']}/{r['k']}" for r in scored)
    return {
        "candidates": len(items) + len(skipped),
        "scored": len(scored),
        "kept": len(kept),
        "all_pass": sum(r["pass_rate"] == 1.0 for r in scored),
        "all_fail": sum(r["pass_rate"] == 0.0 for r in scored),
        "skipped_overlong": len(skipped),
        "sampling_errors": errors,
        "band": [cfg.min_pass, cfg.max_pass],
        "k": cfg.k,
        "model": cfg.model,
        "base_url": (cfg.endpoint or {}).get("base_url"),
        "pass_histogram": dict(sorted(hist.items(), key=lambda kv: int(kv[0].split("/")[0]))),
        "mean_pass_rate": sum(r["pass_rate"] for r in scored) / len(scored) if scored else None,
        "per_task": {t: dict(c) for t, c in sorted(per_task.items())},
        "seconds": round(seconds, 2),
    }


def _nothing() -> None:
    pass


def run(cfg: MineConfig, where: str = "config", sampler: Sampler | None = None) -> dict[str, Any]:
    """Mine; return the summary. `sampler` replaces the HF/endpoint sampler (tests, custom engines)."""
    t0 = time.perf_counter()
    check(cfg, where)
    out = Path(cfg.output_dir)
    RunDir.create(out, cfg, stage="mine", data=file_fingerprint(cfg.data))
    items = load_prompt_items(cfg.data, need_gold=True)[: cfg.limit]
    skipped: list[str] = []
    if cfg.max_prompt_length and cfg.endpoint is None:
        items, skipped = drop_long_prompts(items, load_tokenizer(cfg.model), cfg.max_prompt_length)
    log_path = out / "mine_log.jsonl"
    log = {r["id"]: r for r in iter_jsonl(log_path)} if log_path.exists() else {}
    todo = [it for it in items if it["id"] not in log]
    close: Callable[[], None] = _nothing
    if sampler is None and todo:
        sampler, close = endpoint_sampler(cfg) if cfg.endpoint else (hf_sampler(cfg), close)
    print(
        f"[mine] {len(items)} candidates, {len(items) - len(todo)} already scored, k={cfg.k}, "
        f"band ({cfg.min_pass}, {cfg.max_pass})",
        flush=True,
    )
    errors = 0
    try:
        with JsonlAppender(log_path) as f:
            for i in range(0, len(todo), cfg.batch_size):
                batch = todo[i : i + cfg.batch_size]
                for it, answers in zip(batch, sampler(batch) if sampler else []):
                    if answers is None:  # not logged, so a re-run tries it again
                        errors += 1
                        continue
                    log[it["id"]] = rec = score_item(it, answers)
                    f.write(rec)
                done = min(i + cfg.batch_size, len(todo))
                print(f"[mine] {done}/{len(todo)} sampled, {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        close()
    kept = []
    for it in items:
        logged = log.get(it["id"])
        if logged is not None and in_band(logged["pass_rate"], cfg.min_pass, cfg.max_pass):
            kept.append(
                {
                    **rl_row(it),
                    "pass_rate": logged["pass_rate"],
                    "mined": {k: logged[k] for k in ("k", "passes", "format_rate", "truncated")},
                }
            )
    write_jsonl(out / "rl_mined.jsonl", kept)
    summary = summarize(items, log, cfg, skipped, errors, time.perf_counter() - t0)
    atomic_write_json(out / "summary.json", summary)
    print(
        f"[mine] kept {summary['kept']}/{summary['scored']} (all pass {summary['all_pass']}, all fail "
        f"{summary['all_fail']}, skipped {len(skipped)}, errors {errors}) -> {out / 'rl_mined.jsonl'}",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    return config_main(
        "mine", MineConfig, run, "hard-item mining for RL", "k=16 endpoint.base_url=http://127.0.0.1:8000/v1", argv
    )


if __name__ == "__main__":
    sys.exit(main())
