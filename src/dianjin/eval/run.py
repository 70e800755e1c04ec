"""`dianjin eval`: evaluate any OpenAI-compatible endpoint, or a local model, on the DianJin-R1 benchmarks.

    dianjin eval run --base-url URL --model NAME --tasks cflue,finqa,ccc,math500,gpqa --data-dir DIR
                 --output-dir RUN_DIR [--n K] [--limit N] [--concurrency C] [--temperature T] [--top-p P]
                 [--max-tokens M] [--data TASK=PATH ...] [--judge-base-url URL --judge-model NAME] [--system TEXT]
    dianjin eval run --model-dir MODEL_DIR [--engine auto|transformers|vllm] [--batch-size 16] --tasks ...
                 --output-dir RUN_DIR
    dianjin eval run recipes/eval_paper.yaml endpoint.base_url=URL endpoint.model=NAME output_dir=RUN_DIR
    dianjin eval rescore --output-dir RUN_DIR [--judge-base-url URL --judge-model NAME]
    dianjin eval compare RUN_A RUN_B [--output-dir DIR]

The command line (a YAML config of `EvalConfig`'s fields, `key.sub=value` overrides, flags on top; `--out`
is an alias of `--output-dir`) is `dianjin.eval.cli`; this module is the harness.

Tasks: cflue, cflue_oe, finqa, ccc, math500, gpqa, fincalc, and `ccc_agents`: the CCC multi-agent
workflow (`dianjin.tasks.ccc_agents`, one agent per rule + an auditor) evaluated as a system on the
CCC data, beside the single-call `ccc`, with calls and tokens per item (the paper's comparison).
Its agents run on `--agents-base-url/--agents-model` (default: the evaluated endpoint).

Local models: `--model-dir DIR` (instead of `--base-url/--model`) generates in this process, at most
`--batch-size` requests at a time (`dianjin.eval.local.LocalEngine`: HF `generate` with continuous
batching on CPU, `segment` new tokens per call, vLLM with a GPU; on 2 CPU cores 2.4x the tokens/s of
`dianjin serve` at its best concurrency, `docs/benchmarks.md`). Same prompts, pinned sampling, rows,
resume and summary as through an endpoint; the model is named `str(DIR)`, as `dianjin serve DIR`
names it. Judges and `ccc_agents` still need endpoints.

RUN_DIR holds:
- `samples/TASK.jsonl`: one row per response, appended as it arrives: `key` (id|sample), `id`, `item`,
  `run`, `sample`, `prompt` (messages), `response`, `reasoning` (the server's reasoning_content),
  `pred`, `correct`, `format_ok`, `reason`, `gold`, `question`, `tokens` {prompt, completion,
  reasoning}, `latency`, `finish_reason`, `attempts`, `cached`, `calls`, `error`; `judge` (the
  judge's reply) and `rule_correct` (the rule-based verdict) for judged rows; `log` for ccc_agents;
- `summary.json` (`{"tasks": {TASK: {"n", "accuracy", "ci95", ...}}, "average", "settings"}`) and
  `summary.md` (the table with the paper's rows beside ours); see `dianjin.eval.summarize`;
- `eval.json` (settings and a fingerprint per task), `cache.sqlite` (every answer), `ledger.json` (what
  every invocation on RUN_DIR paid, added up: a re-run after a kill adds to it), `.lock` (one writer).

Resuming: a re-run with the same settings reuses every finished row (a failed request is retried;
more `--n` or a larger `--limit` only adds work). Changing the model, prompt, sampling or data of
a task in an existing RUN_DIR is refused: use a new `--output-dir`; so is a second process on a RUN_DIR in
use. `dianjin eval rescore` re-scores the saved responses with the current scorers (and the judge) without
calling the model.

Judging: with `--judge-*`, FinQA and CFLUE-OE are scored by the judge LLM (prompts in
`dianjin.tasks.finqa.JUDGE_PROMPT` and `dianjin/prompts/cflue_oe_judge.txt`, written into `summary.json`),
FinQA's rule-based accuracy kept beside it (`accuracy_rule`). Judge calls come after generation, all at
once (bounded, cached, retried): the task says what to ask (`Task.judge_messages`) and reads the reply
(`Task.parse_judge`); a failed judge call leaves the answer unverified.

Each task's settings are resolved once (`dianjin.eval.specs.resolve`, an `EvalTask`); prompts and
scoring come from the task layer (`dianjin.tasks`), never from the data pipeline (`dianjin.data`).

Failed requests (retries exhausted) count as wrong in the accuracy, are listed as `errors`, and
make the command exit with status 1; re-running retries them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import Any

from dianjin.errors import DataError
from dianjin.eval import paper, summarize
from dianjin.eval.backends import SEGMENT, check_model_dir, check_segment, resolve_engine
from dianjin.eval.local import LocalEngine
from dianjin.eval.specs import TASK_SPECS, EvalTask, Unit, file_sha256, resolve
from dianjin.files import JsonlAppender, atomic_write_json, atomic_write_text, write_jsonl
from dianjin.llm.cache import ResponseCache
from dianjin.llm.client import ChatRequest, ChatResult, EndpointConfig, LLMClient, LLMError
from dianjin.llm.flow import Unfinished
from dianjin.llm.ledger import Ledger, Progress
from dianjin.model.precision import check_dtype
from dianjin.rundir import RunLock
from dianjin.tasks.base import Example, Messages, Verdict
from dianjin.tasks.ccc_agents import acheck_dialogue

log = logging.getLogger("dianjin.eval")

EVAL_FILE = "eval.json"
# Judge calls: deterministic and short.
JUDGE_TEMPERATURE, JUDGE_MAX_TOKENS = 0.0, 4096  # the judge answers greedily
MAX_QUESTION_CHARS = 4000  # the question kept in a row (the full prompt is kept too)


@dataclass(kw_only=True)
class EvalConfig:
    """Everything one `dianjin eval` run needs (the CLI builds it, `dianjin.eval.cli`; tests and scripts may too).

    `output_dir` is required; `out=` is its deprecated alias (one release)."""

    output_dir: Path = None  # type: ignore[assignment]  # the run directory; checked in __post_init__
    tasks: list[str]
    endpoint: EndpointConfig | None = None  # None only with rescore
    data_dir: Path | None = None
    data: dict[str, str] = field(default_factory=dict)  # task -> file, overrides data_dir
    n: int | None = None  # None: as the run directory's earlier run of the task, else 1
    limit: int | None = None  # None: every item (with rescore: as before)
    temperature: float | None = None  # None: each task's pinned value (dianjin.eval.specs)
    top_p: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    judge: EndpointConfig | None = None
    agents: EndpointConfig | None = None  # ccc_agents' endpoint (default: `endpoint`)
    model_dir: Path | None = None  # a local model to generate with in-process, instead of `endpoint`
    local_engine: str = "auto"  # with model_dir: "auto" (vLLM on a GPU, else transformers), "transformers", "vllm"
    batch_size: int = 16  # with model_dir: requests generating at a time
    dtype: str = "auto"  # with model_dir: auto (bf16 where native: dianjin.model.precision), float32, bfloat16
    segment: int = SEGMENT  # with model_dir, transformers: new tokens per generate call (rows leave, join between)
    refill: bool = True  # with model_dir, transformers: queued requests join as rows leave (False: batches shrink)
    rescore: bool = False
    progress: bool | None = None  # None: the client's default (a line on stderr)
    n_boot: int = 10_000
    out: InitVar[Path | None] = None  # deprecated alias of output_dir

    def __post_init__(self, out: Path | None) -> None:
        if out is not None:
            if self.output_dir is not None and Path(self.output_dir) != Path(out):
                raise TypeError("EvalConfig: give output_dir or out (its deprecated alias), not both")
            warnings.warn(
                "EvalConfig(out=...) is deprecated: use EvalConfig(output_dir=...)", DeprecationWarning, stacklevel=3
            )
            self.output_dir = Path(out)
        if self.output_dir is None:
            raise TypeError("EvalConfig: output_dir is required")
        self.output_dir = Path(self.output_dir)


@dataclass
class _Task:
    """One task's state during a run."""

    spec: EvalTask
    path: Path
    units: list[Unit]
    settings: dict[str, Any]
    rows: dict[str, dict[str, Any]]  # key -> the latest row (as read back, then as answered)
    samples_path: Path
    appender: JsonlAppender | None = None

    @property
    def examples(self) -> dict[str, Example]:
        """The task's examples by id (a unit per sample, so an example appears once per id)."""
        return {u.example["id"]: u.example for u in self.units}

    @property
    def name(self) -> str:
        return self.spec.name


# --- settings and fingerprints -----------------------------------------------------------------------
def _fingerprint(settings: dict[str, Any]) -> str:
    """What must not change under a task's existing rows: model, prompt, sampling, data."""
    keys = ("model", "system", "temperature", "top_p", "max_tokens", "prompt_template", "data_sha256", "agents_model")
    blob = json.dumps({k: settings.get(k) for k in keys}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _task_settings(cfg: EvalConfig, spec: EvalTask, path: Path, stored: dict[str, Any] | None) -> dict[str, Any]:
    if cfg.rescore:  # keep what the responses were generated with
        assert stored is not None
        base = dict(stored)
        base.update(data=str(path), data_sha256=file_sha256(path))
        if cfg.n is not None:
            base["n"] = cfg.n
        if cfg.limit is not None:
            base["limit"] = cfg.limit
    else:
        model = _model_name(cfg)
        n = cfg.n if cfg.n is not None else (stored or {}).get("n", 1)
        base = {
            "model": model,
            "system": cfg.system,
            **spec.sampling,
            "n": n,
            "limit": cfg.limit,
            "data": str(path),
            "data_sha256": file_sha256(path),
            "prompt_template": spec.prompt_template,
            "units": spec.units,
            "runner": spec.runner,
        }
        if spec.runner == "agents":
            agents = cfg.agents or cfg.endpoint
            base["agents_model"] = agents.model if agents is not None else None
    base["judge_model"] = cfg.judge.model if spec.judged and cfg.judge else None
    base["judge_prompt"] = spec.judge_prompt
    base["fingerprint"] = _fingerprint(base)
    return base


def _model_name(cfg: EvalConfig) -> str | None:
    return cfg.endpoint.model if cfg.endpoint else str(cfg.model_dir) if cfg.model_dir is not None else None


# --- scoring ---------------------------------------------------------------------------------------------
def _safe_score(
    task: _Task, row: dict[str, Any], example: Example, judge_verdict: tuple[bool | None, str] | None = None
) -> Verdict:
    """The task's eval-mode verdict (by the judge's `judge_verdict` when given); never raises."""
    try:
        return task.spec.task.score(
            row.get("response"),
            example,
            mode="eval",
            reasoning_content=row.get("reasoning"),
            judge_verdict=judge_verdict,
        )
    except Exception as e:  # a scorer bug: keep the run going
        return Verdict(None, None, False, f"not scored: {type(e).__name__}: {str(e)[:200]}")


def _apply(row: dict[str, Any], v: Verdict) -> None:
    if row.get("error"):  # a failed request: no response to score
        row.update(pred=None, correct=False, format_ok=False, reason=f"request failed: {row['error'][:200]}")
        return
    row.update(pred=v.pred, correct=v.correct, format_ok=v.format_ok, reason=v.reason)


async def _rescore(task: _Task, judge_client: LLMClient | None, examples: dict[str, Example]) -> None:
    """Score every current row again: rules first, then (judged tasks with a judge) the judge, asked in bulk."""
    rows = [r for r in task.rows.values() if r["id"] in examples]
    judged = judge_client is not None and task.spec.judged
    scorer = task.spec.task
    asks: list[tuple[dict[str, Any], str | None]] = []  # (row, its judge question's key; None: nothing to ask)
    questions: dict[str, Messages] = {}  # key -> judge messages (each distinct question asked once)
    for r in rows:
        v = _safe_score(task, r, examples[r["id"]])
        _apply(r, v)
        if not judged:
            r.pop("rule_correct", None)
            r.pop("judge", None)
            continue
        r["rule_correct"] = r["correct"]
        if r.get("error"):  # no response: nothing to judge
            continue
        messages = scorer.judge_messages(v.pred, examples[r["id"]]) if v.pred is not None else None
        key = None if messages is None else json.dumps(messages, ensure_ascii=False, sort_keys=True)
        if messages is not None:
            questions[key] = messages  # type: ignore[index]
        asks.append((r, key))
    if not asks:
        return
    assert judge_client is not None
    results = await judge_client.map(
        [ChatRequest(m, temperature=JUDGE_TEMPERATURE, max_tokens=JUDGE_MAX_TOKENS) for m in questions.values()],
        stage=f"judge:{task.name}",
    )
    replies = dict(zip(questions, results))
    for r, key in asks:
        res = replies.get(key) if key is not None else None
        r["judge"] = None
        if res is None:
            continue
        if res.error or res.truncated:  # no verdict: the answer stays unverified
            verdict: tuple[bool | None, str] = (None, f"judge failed: {res.error or 'answer truncated'}")
        else:
            r["judge"] = res.content or ""
            verdict = scorer.parse_judge(r["judge"])
        _apply(r, _safe_score(task, r, examples[r["id"]], verdict))


# --- generation ------------------------------------------------------------------------------------------
def _base_row(task: _Task, unit: Unit) -> dict[str, Any]:
    ex = unit.example
    return {
        "key": unit.key,
        "id": ex["id"],
        "task": task.name,
        "item": unit.item,
        "run": unit.run,
        "sample": unit.sample,
        "gold": ex.get("gold"),
        "question": str(ex.get("question", ""))[:MAX_QUESTION_CHARS],
    }


def _chat_row(task: _Task, unit: Unit, messages: Messages, res: ChatResult) -> dict[str, Any]:
    row = _base_row(task, unit)
    row.update(
        prompt=messages,
        response=res.content,
        reasoning=res.reasoning_content,
        finish_reason=res.finish_reason,
        tokens={"prompt": res.prompt_tokens, "completion": res.completion_tokens, "reasoning": res.reasoning_tokens},
        latency=round(res.latency, 4),
        attempts=res.attempts,
        cached=res.cached,
        calls=1,
        error=res.error,
    )
    _apply(row, _safe_score(task, row, unit.example))
    return row


def _record(task: _Task, row: dict[str, Any]) -> None:
    task.rows[row["key"]] = row
    assert task.appender is not None
    task.appender.write(row)


async def _run_chat(ctx: _Context, work: list[tuple[_Task, Unit]]) -> None:
    """All single-call units of all tasks in one bounded stream; each row is written as it arrives."""
    if not work:
        return
    reqs, msgs = [], []
    for task, unit in work:
        m = task.spec.task.prompt(unit.example, task.settings.get("system"))
        s = task.settings
        msgs.append(m)
        reqs.append(
            ChatRequest(
                m, sample=unit.sample, temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_tokens"]
            )
        )
    assert ctx.client is not None
    async for i, res in ctx.client.iter_completed(reqs, stage="eval", progress=ctx.cfg.progress):
        task, unit = work[i]
        _record(task, _chat_row(task, unit, msgs[i], res))


async def _run_agents(ctx: _Context, work: list[tuple[_Task, Unit]]) -> None:
    """The CCC multi-agent workflow per unit (its requests share the client's concurrency bound)."""
    if not work:
        return
    client = ctx.agents_client
    assert client is not None
    max_samples = 3
    prog = Progress(len(work), desc="eval:ccc_agents", enabled=ctx.cfg.progress is not False)

    async def one(task: _Task, unit: Unit) -> None:
        row = _base_row(task, unit)
        t0 = time.perf_counter()
        prog.start()
        try:
            check = await acheck_dialogue(
                unit.example, client, sample=unit.sample * max_samples, max_samples=max_samples
            )
        except (Unfinished, LLMError, DataError, ValueError) as e:  # a request failed for good, or bad input
            row.update(
                response=None,
                reasoning=None,
                prompt=None,
                error=f"{type(e).__name__}: {str(e)[:500]}",
                calls=0,
                tokens={"total": 0},
                latency=None,
                finish_reason=None,
            )
            prog.finish(False)
        else:
            audit = check.log[-1]
            agents = "\n\n".join(f"【{e['name']}】{e['analysis']}" for e in check.log[:-1])
            row.update(
                prompt=None,
                response=audit["analysis"],
                reasoning=agents,
                finish_reason=None,
                tokens={"total": check.tokens},
                latency=round(time.perf_counter() - t0, 4),
                calls=check.calls,
                error=None,
                workflow_verdict=check.verdict,
                log=[{k: e.get(k) for k in ("agent", "name", "verdict", "calls", "tokens")} for e in check.log],
            )
            prog.finish(True)
        _apply(row, _safe_score(task, row, unit.example))
        _record(task, row)

    try:
        await asyncio.gather(*(one(t, u) for t, u in work))
    finally:
        prog.close()


RUNNERS: dict[str, Callable[[_Context, list[tuple[_Task, Unit]]], Any]] = {"chat": _run_chat, "agents": _run_agents}


@dataclass
class _Context:
    cfg: EvalConfig
    client: LLMClient | LocalEngine | None = None
    agents_client: LLMClient | None = None
    judge_client: LLMClient | None = None


# --- the run ----------------------------------------------------------------------------------------------
def _load_eval_file(out: Path) -> dict[str, Any]:
    p = out / EVAL_FILE
    if not p.exists():
        return {"tasks": {}}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(p, e.lineno, None, f"invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DataError(p, None, None, f"not UTF-8 (byte {e.start + 1}: {e.reason})") from None


def _prepare(cfg: EvalConfig, stored: dict[str, Any]) -> list[_Task]:
    tasks = []
    for name in cfg.tasks:
        spec = resolve(
            name, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, judge=cfg.judge is not None
        )  # unknown task: a clear KeyError
        prev = stored["tasks"].get(name)
        if cfg.rescore and prev is None:
            raise DataError(
                cfg.output_dir / EVAL_FILE, None, f"tasks.{name}", f"task {name} was never run in {cfg.output_dir}"
            )
        data_override = dict(cfg.data)
        if cfg.rescore and prev and name not in data_override and cfg.data_dir is None:
            data_override[name] = prev["data"]
        path = spec.data_file(cfg.data_dir, data_override)
        settings = _task_settings(cfg, spec, path, prev)
        if not cfg.rescore and prev and prev.get("fingerprint") != settings["fingerprint"]:
            changed = [
                k
                for k in (
                    "model",
                    "system",
                    "temperature",
                    "top_p",
                    "max_tokens",
                    "prompt_template",
                    "data_sha256",
                    "agents_model",
                )
                if prev.get(k) != settings.get(k)
            ]
            raise DataError(
                cfg.output_dir / EVAL_FILE,
                None,
                f"tasks.{name}",
                f"this run directory was made with other settings ({', '.join(changed)} differ); "
                "use a new --output-dir, or `dianjin eval rescore` to re-score the saved responses",
            )
        units = spec.build_units(path, settings["n"], settings["limit"])
        spath = cfg.output_dir / "samples" / f"{name}.jsonl"
        tasks.append(_Task(spec, path, units, settings, summarize.load_rows(spath), spath))
    return tasks


def _endpoint_for_agents(cfg: EvalConfig, settings: dict[str, Any]) -> EndpointConfig:
    base = cfg.agents or cfg.endpoint
    assert base is not None
    return replace(
        base, temperature=settings["temperature"], top_p=settings["top_p"], max_tokens=settings["max_tokens"]
    )


async def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run (or resume, or re-score) an evaluation; returns the summary written to RUN_DIR (held meanwhile)."""
    _check_sources(cfg)
    with RunLock.acquire(cfg.output_dir, "dianjin eval"):
        return await _evaluate(cfg)


async def _evaluate(cfg: EvalConfig) -> dict[str, Any]:
    stored = _load_eval_file(cfg.output_dir)
    tasks = _prepare(cfg, stored)
    ledger = Ledger.resume(cfg.output_dir / "ledger.json")
    cache = ResponseCache(cfg.output_dir / "cache.sqlite")
    ctx = _Context(cfg)
    served: dict[str, Any] = {}  # what generates, for eval.json
    try:
        if cfg.endpoint is not None:
            ctx.client = LLMClient(cfg.endpoint, cache=cache, ledger=ledger, progress=cfg.progress)
            served = {"base_url": cfg.endpoint.base_url, "model": cfg.endpoint.model}
        elif cfg.model_dir is not None and not cfg.rescore:
            ctx.client = local = LocalEngine(
                cfg.model_dir,
                engine=cfg.local_engine,
                batch_size=cfg.batch_size,
                dtype=cfg.dtype,
                segment=cfg.segment,
                refill=cfg.refill,
                ledger=ledger,
                progress=cfg.progress,
            )
            served = {"base_url": None, "model": _model_name(cfg), **local.settings()}
        if cfg.judge is not None:
            ctx.judge_client = LLMClient(cfg.judge, cache=cache, ledger=ledger, progress=cfg.progress)
        stored["tasks"].update({t.name: t.settings for t in tasks})
        if not cfg.rescore:
            stored.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            stored["endpoint"] = served
            atomic_write_json(cfg.output_dir / EVAL_FILE, stored)
            work: dict[str, list[tuple[_Task, Unit]]] = defaultdict(list)
            for t in tasks:
                t.appender = JsonlAppender(t.samples_path)
                for u in t.units:
                    done = t.rows.get(u.key)
                    if done is None or done.get("error"):
                        work[t.spec.runner].append((t, u))
                if t.spec.runner == "agents" and ctx.agents_client is None:
                    ctx.agents_client = LLMClient(
                        _endpoint_for_agents(cfg, t.settings), cache=cache, ledger=ledger, progress=False
                    )
            try:
                await asyncio.gather(*(RUNNERS[r](ctx, w) for r, w in work.items()))
            finally:
                for t in tasks:
                    if t.appender:
                        t.appender.close()
        else:
            atomic_write_json(cfg.output_dir / EVAL_FILE, stored)
        for t in tasks:
            judged = ctx.judge_client is not None and t.spec.judged
            if cfg.rescore or judged:
                await _rescore(t, ctx.judge_client if judged else None, t.examples)
                write_jsonl(t.samples_path, t.rows.values())
        summary = _summary(cfg, tasks, stored)
    finally:
        for c in (ctx.client, ctx.agents_client, ctx.judge_client):
            if c is not None:
                await c.aclose()
        ledger.save()
        cache.close()
    atomic_write_json(cfg.output_dir / "summary.json", summary)
    atomic_write_text(cfg.output_dir / "summary.md", summarize.markdown(summary))
    return summary


def _check_sources(cfg: EvalConfig) -> None:
    """An endpoint or a model directory (not both) unless rescoring; endpoints for what needs one."""
    if cfg.endpoint is not None and cfg.model_dir is not None:
        raise ValueError("give an endpoint (--base-url) or a local model (--model-dir), not both")
    if cfg.rescore:
        return
    if cfg.endpoint is None and cfg.model_dir is None:
        raise ValueError(
            "an endpoint (--base-url, --model) or a local model (--model-dir) is needed "
            "(`dianjin eval rescore` needs neither)"
        )
    if cfg.model_dir is not None:
        check_model_dir(cfg.model_dir)
        resolve_engine(cfg.local_engine)
        check_dtype(cfg.dtype)
        check_segment(cfg.segment)
        agents = [t for t in cfg.tasks if t in TASK_SPECS and TASK_SPECS[t].runner == "agents"]
        if agents and cfg.agents is None:
            raise ValueError(
                f"task {agents[0]} runs its agents on an endpoint: give --agents-base-url and "
                "--agents-model with --model-dir"
            )


def _summary(cfg: EvalConfig, tasks: list[_Task], stored: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"tasks": {}}
    for t in tasks:
        keys = {u.key for u in t.units}
        rows = [r for k, r in t.rows.items() if k in keys]
        s = summarize.task_stats(
            rows, expected=len(t.units), n_runs=t.settings["n"], format_applies=t.spec.format_applies, n_boot=cfg.n_boot
        )
        s["system"] = t.spec.system
        examples = t.examples
        s["chance"] = sum(map(t.spec.task.chance, examples.values())) / len(examples) if examples else None
        s["judged"] = bool(t.settings.get("judge_model")) and any(r.get("judge") is not None for r in rows)
        out["tasks"][t.name] = s
    avg, avg_tasks = summarize.average(out["tasks"], {t for t, s in out["tasks"].items() if s["system"]})
    settings = {k: v for k, v in stored.items() if k not in ("tasks",)}
    settings["model"] = (stored.get("endpoint") or {}).get("model")
    agents = [t.settings.get("agents_model") for t in tasks if t.settings.get("agents_model")]
    if agents:
        settings["agents_model"] = agents[0]
    settings["tasks"] = {t.name: t.settings for t in tasks}
    out.update(
        average=avg,
        average_tasks=avg_tasks,
        settings=settings,
        paper={m: paper.PAPER_ROWS[m] for m in paper.DEFAULT_ROWS},
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return out


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Blocking `evaluate`."""
    return asyncio.run(evaluate(cfg))


# --- command line: dianjin.eval.cli ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`dianjin eval ...` (kept here for callers of `dianjin.eval.run.main`)."""
    from dianjin.eval.cli import main as cli_main

    return cli_main(argv)


__all__ = ["EvalConfig", "RUNNERS", "evaluate", "main", "run_eval"]
