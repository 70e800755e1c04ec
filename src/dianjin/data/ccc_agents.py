"""CCC data: the multi-agent compliance check, and the refine step that turns its log into one reasoning trace.

The workflow itself (one agent per rule, then an auditor; its prompts, log and call counts) is
`dianjin.tasks.ccc_agents`, re-exported here (the evaluation runs it too, as a system). In the
paper, GPT-4o then merged the agents' intermediate reasoning into one chain of thought ending
"最终结果为：客服违规"; that was not released either. Ours:

- the workflow runs on the `agent` endpoint with `ccc.rules` from the config for every item (else the
  item's own rules); re-asks up to `max_samples`, analyses clipped to `log_chars` for the auditor;
- refine (`data_ccc_refine.txt`): an LLM merges the log into one rule-by-rule reasoning and a
  verdict, in `<think>/<answer>`. It is verified like a teacher answer (`distill.verify`: the ccc
  scorer against the label, then our re-rendered target in reward mode). Attempt k re-runs the whole
  workflow with fresh sample indices (k * max_samples ...) and the refiner with sample k; up to
  `max_attempts`; never passing sends the item to the RL pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dianjin.data.distill import (
    DistillConfig,
    Flow,
    Step,
    fill,
    outcome,
    prompt_messages,
    rl_row,
    sft_row,
    usage,
    user,
    verify,
)
from dianjin.llm.client import ChatRequest
from dianjin.tasks import get_task
from dianjin.tasks.base import Example, Messages
from dianjin.tasks.ccc import VERDICT_TEXT, render_rules, rules_of
from dianjin.tasks.ccc_agents import (
    AUDITOR,
    UNCLEAR,
    CheckResult,
    acheck_dialogue,
    agent_messages,
    auditor_messages,
    check_dialogue,
    clip,
    dialogue_text,
    findings_text,
    workflow,
)


@dataclass
class CccConfig:
    """`ccc:` in the build config."""

    enabled: bool = True  # run the multi-agent workflow for ccc items (false: distill them like the rest)
    rules: list[dict[str, str]] | None = None  # {id, name, description} for every item (default: the item's own)
    agent_endpoint: Literal["teacher", "judge"] = "judge"  # which configured endpoint runs agents and auditor
    refine_endpoint: Literal["teacher", "judge"] = "judge"  # which one merges the log (the paper: GPT-4o)
    max_attempts: int = 3
    max_samples: int = 3  # re-asks of one agent whose answer is truncated or has no verdict
    log_chars: int = 1500  # characters of each agent's analysis shown to the auditor and the refiner


def refine_messages(
    example: Example, rules: list[dict[str, str]], check: CheckResult, log_chars: int = 1500
) -> Messages:
    agents = [e for e in check.log if e["agent"] != AUDITOR["id"]]
    audit = next((e for e in check.log if e["agent"] == AUDITOR["id"]), None)
    return user(
        fill(
            "ccc_refine",
            rules=render_rules(rules),
            dialogue=dialogue_text(example),
            log=findings_text(agents, log_chars),
            audit=clip(audit["analysis"], log_chars) if audit else "（无）",
            verdict=VERDICT_TEXT.get(check.verdict or "", UNCLEAR),
        )
    )


def ccc_flow(example: Example, cfg: CccConfig, *, teacher: str, system: str | None = None) -> Flow[dict[str, Any]]:
    """Workflow + refine + verify, up to `max_attempts`; the stage log line (with `calls`, `tokens`)."""
    if cfg.rules:
        example = {**example, "rules": [dict(r) for r in cfg.rules]}
    rules = rules_of(example)
    task = get_task(example["task"])
    prompt = prompt_messages(task, example, system)
    verify_cfg = DistillConfig(judge_tasks=[])
    tries: list[dict[str, Any]] = []
    calls = tokens = 0
    for k in range(cfg.max_attempts):
        check = yield from workflow(
            example, rules, sample=k * cfg.max_samples, max_samples=cfg.max_samples, log_chars=cfg.log_chars
        )
        req = ChatRequest(refine_messages(example, rules, check, cfg.log_chars), sample=k, tag=example["id"])
        [res] = yield Step("refine", "ccc_refine", [req])
        target, why, pred = yield from verify(example, res, verify_cfg, stage="ccc_verify")
        n_tokens = check.tokens + res.prompt_tokens + res.completion_tokens
        calls, tokens = calls + check.calls + 1, tokens + n_tokens
        tries.append(
            {
                "sample": k,
                "workflow_verdict": check.verdict,
                "calls": check.calls + 1,
                "tokens": n_tokens,
                "log": check.log,
                "refine": usage(res),
                "pred": pred,
                "ok": target is not None,
                "reason": why,
            }
        )
        if target is not None:
            return outcome(
                example, "sft", sft_row(example, prompt, target, k + 1, teacher), tries, calls=calls, tokens=tokens
            )
    return outcome(example, "rl", rl_row(example, prompt, cfg.max_attempts), tries, calls=calls, tokens=tokens)


__all__ = [
    "AUDITOR",
    "CccConfig",
    "CheckResult",
    "acheck_dialogue",
    "agent_messages",
    "auditor_messages",
    "ccc_flow",
    "check_dialogue",
    "refine_messages",
    "workflow",
]
