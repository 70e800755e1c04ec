"""Distill and verify: ask the teacher, check its answer with the task's own scorer, retry, route.

Per item, up to `max_attempts` (3, the paper's "×3") attempts; attempt k sends the task prompt
with sample index k, so each attempt is a distinct, separately cached request. An attempt passes when

1. the answer arrived whole (finish_reason "length" is a failed attempt, not a retry of the same
   request: the cache would only hand the same truncated answer back);
2. the teacher's reply is correct by `task.score(..., mode="eval")`, the same code as the reward and
   evaluation; open-ended tasks (`judge_tasks`, default cflue_oe) get the judge LLM, others never do
   (FinQA has a judge prompt too, used only when it is listed);
3. the SFT target we render from it scores reward 1 in `mode="reward"` (strict format and correct);
4. optionally (`reasoning_check`), the judge agrees that the reasoning is consistent with the
   item's reference `analysis` (CFLUE), prompt `prompts/data_reasoning_check.txt`.

Format decision: the teacher does NOT have to follow our tags. We take its reasoning from
`reasoning_content` (DeepSeek's field; also vLLM's `reasoning`) or else from `<think>` in the
content, take the answer from `<answer>` or else the content after the reasoning, strip stray tags
from both, and re-render the target ourselves with `answer.render` (adding `\\boxed{pred}` for boxed
tasks when the teacher's answer has no box). Check 3 then guarantees every SFT target passes the
strict reward format, so SFT teaches exactly the format RL rewards. Passed items become SFT rows;
items that never pass go to the RL pool with their gold, as in the paper's figure.

Every LLM stage (filter, convert, distill, CCC) is a flow (`dianjin.llm.flow`: generators of request
steps, run by `drive` here, thousands of items in flight); its names are re-exported here. Judging
is a task hook: `score` asks the judge itself when the task has messages for it
(`Task.judge_messages`) and hands the parsed reply (`Task.parse_judge`) to `Task.score`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dianjin import answer as fmt
from dianjin.llm.client import ChatRequest, ChatResult, LLMClient
from dianjin.llm.flow import (
    Answer,
    Flow,
    Step,
    Unfinished,
    ask,
    ask_many,
    calls_and_tokens,
    drive,
    drive_sync,
    fill,
    prompt_template,
    usage,
    user,
)
from dianjin.llm.ledger import Progress
from dianjin.tasks import get_task
from dianjin.tasks.base import Example, Messages, Task, Verdict
from dianjin.tasks.cflue_oe import parse_judge

log = logging.getLogger("dianjin.data")


@dataclass
class DistillConfig:
    """`distill:` in the build config."""

    max_attempts: int = 3  # attempts per item (sample indices 0..max_attempts-1)
    seed: int | None = None  # if set, attempt k sends `seed: seed + k` (servers that honour it sample reproducibly)
    judge_tasks: list[str] = field(default_factory=lambda: ["cflue_oe"])  # tasks verified by the judge LLM
    judge_samples: int = 3  # re-asks of the judge when its answer is truncated
    reasoning_check: bool = False  # also ask the judge whether the reasoning agrees with `analysis`
    reasoning_chars: int = 6000  # trailing characters of the reasoning shown to the reasoning check


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    unfinished: int = 0
    errors: list[str] = field(default_factory=list)


async def run_items(
    items: list[Example],
    make_flow: Callable[[Example], Flow[Any]],
    clients: Mapping[str, LLMClient],
    *,
    stage: str,
    workers: int,
    on_done: Callable[[Example, Any], None],
    progress: bool | None = None,
) -> RunSummary:
    """Drive one flow per item, `workers` items at a time; `on_done(item, result)` as each finishes
    (in completion order). Unfinished items are counted, not recorded."""
    summary = RunSummary(total=len(items))
    prog = Progress(len(items), desc=stage, enabled=progress is not False and bool(items))
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            prog.start()
            try:
                result = await drive(make_flow(item), clients)
            except Unfinished as e:
                summary.unfinished += 1
                if len(summary.errors) < 5:
                    summary.errors.append(f"{item['id']}: {e}")
                prog.finish(False)
                continue
            on_done(item, result)
            summary.done += 1
            prog.finish(True)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, min(workers, len(items))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        prog.close()
    return summary


# --- scoring with a judge -------------------------------------------------------------------------
def score(
    task: Task,
    text: str | None,
    example: Example,
    *,
    mode: str,
    reasoning_content: str | None = None,
    judged: bool = False,
    stage: str = "verify",
    judge_samples: int = 3,
) -> Flow[Verdict]:
    """`task.score`; when `judged` and the task has a judge prompt for the prediction, the judge LLM
    is asked (role "judge") and its parsed reply decides correctness."""
    kw: dict[str, Any] = {"mode": mode, "reasoning_content": reasoning_content}
    v = task.score(text, example, **kw)
    messages = task.judge_messages(v.pred, example) if judged and v.pred is not None else None
    if messages is None:
        return v
    reply = (yield from ask("judge", messages, stage=stage, max_samples=judge_samples)).text
    return task.score(text, example, **kw, judge_verdict=task.parse_judge(reply))


# --- responses and targets ------------------------------------------------------------------------
_TAGS = re.compile(r"</?(?:think|answer)>")


def split_response(content: str | None, reasoning_content: str | None = None) -> tuple[str, str]:
    """(reasoning, answer) from a teacher reply: the reasoning from `reasoning_content` when the
    server returned it, else from `<think>...</think>` in the content (an unopened `</think>` counts
    from the start); the answer from `<answer>` if present, else the content after the reasoning.
    Stray format tags are removed from both, so the re-rendered target has exactly one of each."""
    content = content or ""
    if reasoning_content and reasoning_content.strip():
        reasoning, rest = reasoning_content, fmt.strip_think(content)
    elif fmt.THINK_CLOSE in content:
        end = content.rfind(fmt.THINK_CLOSE)
        start = content.find(fmt.THINK_OPEN)
        start = start + len(fmt.THINK_OPEN) if 0 <= start < end else 0
        reasoning, rest = content[start:end], content[end + len(fmt.THINK_CLOSE) :]
    else:
        reasoning, rest = "", content
    block = fmt.answer_block(rest)
    answer = block if block is not None else rest
    return _TAGS.sub("", reasoning).strip(), _TAGS.sub("", answer).strip()


def render_target(task: Task, reasoning: str, answer: str, pred: str | None) -> str:
    """Our `<think>/<answer>` target; a boxed task whose answer has no box gets `\\boxed{pred}`."""
    boxed = pred if task.boxed and fmt.last_boxed(answer) is None else None
    return fmt.render(reasoning, answer, boxed)


def prompt_messages(task: Task, example: Example, system: str | None) -> Messages:
    """What SFT trains on and RL/eval send: the task prompt, after an optional system message."""
    return task.prompt(example, system)


def sft_row(example: Example, prompt: Messages, target: str, attempts: int, teacher: str) -> dict[str, Any]:
    parsed = fmt.parse_strict(target, require_boxed=False)
    row = {
        "id": example["id"],
        "task": example["task"],
        "messages": prompt + [{"role": "assistant", "content": target}],
        "reasoning": parsed.reasoning,
        "answer": parsed.answer,
        "attempts": attempts,
        "teacher": teacher,
    }
    if example.get("source_id"):
        row["source_id"] = example["source_id"]
    return row


RL_SKIP = ("id", "task", "gold")


def rl_row(example: Example, prompt: Messages, attempts: int) -> dict[str, Any]:
    """An RL pool row: the prompt, the gold and the task fields a scorer may need (`extra`)."""
    return {
        "id": example["id"],
        "task": example["task"],
        "prompt": prompt,
        "gold": example["gold"],
        "attempts": attempts,
        "extra": {k: v for k, v in example.items() if k not in RL_SKIP},
    }


def outcome(
    example: Example, pool: str, row: dict[str, Any], tries: list[dict[str, Any]], **more: Any
) -> dict[str, Any]:
    """One line of a stage log: the item's id, where it went, its final row and what each attempt did."""
    return {"id": example["id"], "pool": pool, "row": row, "tries": tries, **more}


# --- verification ---------------------------------------------------------------------------------
def check_reasoning(example: Example, reasoning: str, cfg: DistillConfig) -> Flow[tuple[bool, str]]:
    """The judge's view on whether `reasoning` agrees with the item's reference analysis."""
    task = get_task(example["task"])
    text = reasoning[-cfg.reasoning_chars :]
    content = fill(
        "reasoning_check",
        question=str(example.get("question", "")).strip(),
        reference=task.reference(example),
        analysis=str(example.get("analysis", "")).strip(),
        reasoning=text,
    )
    reply = (yield from ask("judge", user(content), stage="reasoning_check", max_samples=cfg.judge_samples)).text
    verdict = parse_judge(reply)
    if verdict is None:
        return False, "reasoning check: no clear verdict"
    return verdict, "reasoning check: " + ("consistent" if verdict else "inconsistent with the analysis")


def verify(
    example: Example, res: ChatResult, cfg: DistillConfig, stage: str = "verify"
) -> Flow[tuple[str | None, str, str | None]]:
    """(target or None, reason, pred) for one teacher answer (see the module docstring)."""
    task = get_task(example["task"])
    if res.truncated:
        return None, "truncated at max_tokens", None
    reasoning, answer = split_response(res.content, res.reasoning_content)
    if not reasoning:
        return None, "no reasoning (neither reasoning_content nor <think>)", None
    if not answer:
        return None, "no answer after the reasoning", None
    judged = task.name in cfg.judge_tasks
    kw: dict[str, Any] = dict(judged=judged, stage=stage, judge_samples=cfg.judge_samples)
    v = yield from score(task, res.content, example, mode="eval", reasoning_content=res.reasoning_content, **kw)
    if v.correct is not True:
        return None, f"answer: {v.reason}", v.pred
    target = render_target(task, reasoning, answer, v.pred)
    v2 = yield from score(task, target, example, mode="reward", **kw)
    if v2.reward != 1.0:
        return None, f"rendered target: {v2.reason}", v.pred
    if cfg.reasoning_check and str(example.get("analysis") or "").strip():
        ok, why = yield from check_reasoning(example, reasoning, cfg)
        if not ok:
            return None, why, v.pred
    return target, "verified", v.pred


def distill_flow(
    example: Example, cfg: DistillConfig, *, teacher: str, system: str | None = None
) -> Flow[dict[str, Any]]:
    """Up to `max_attempts` teacher attempts for one item; the log line (see `outcome`)."""
    task = get_task(example["task"])
    prompt = prompt_messages(task, example, system)
    teacher_prompt = task.messages(example)
    tries: list[dict[str, Any]] = []
    for k in range(cfg.max_attempts):
        extra = {"seed": cfg.seed + k} if cfg.seed is not None else None
        req = ChatRequest(teacher_prompt, sample=k, extra=extra, tag=example["id"])
        [res] = yield Step("teacher", "distill", [req])
        target, why, pred = yield from verify(example, res, cfg)
        tries.append({"sample": k, **usage(res), "pred": pred, "ok": target is not None, "reason": why})
        if target is not None:
            return outcome(example, "sft", sft_row(example, prompt, target, k + 1, teacher), tries)
    return outcome(example, "rl", rl_row(example, prompt, cfg.max_attempts), tries)


__all__ = [
    "Answer",
    "DistillConfig",
    "Flow",
    "RunSummary",
    "Step",
    "Unfinished",
    "ask",
    "ask_many",
    "calls_and_tokens",
    "check_reasoning",
    "distill_flow",
    "drive",
    "drive_sync",
    "fill",
    "outcome",
    "prompt_messages",
    "prompt_template",
    "render_target",
    "rl_row",
    "run_items",
    "score",
    "sft_row",
    "split_response",
    "usage",
    "user",
    "verify",
]
