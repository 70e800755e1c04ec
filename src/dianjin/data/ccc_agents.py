"""CCC multi-agent compliance check, and the refine step that turns its log into one reasoning trace.

The paper's CCC data (upstream.md §3.3) came from a workflow in which each condition node is an LLM
agent checking one compliance rule (regulator-complaint risk, social-media complaint risk, legal
risk, ...) and a customer-service auditor (客服服务审计专家) gives the final verdict; GPT-4o then
merged the agents' intermediate reasoning into one chain of thought ending "最终结果为：客服违规".
None of it was released; this is our version, with its prompts in `dianjin/prompts/`:

- one agent per rule (`data_ccc_agent.txt`): the rule, the numbered dialogue; it writes its analysis
  and ends "结论：客服违规" or "结论：客服未违规" for that rule only (read with `ccc.read_verdict`).
  Rules are the example's own, else `dianjin.tasks.ccc.DEFAULT_RULES` (7), or `ccc.rules` from the
  config for every item. The agents run in parallel; a truncated or verdict-less answer is asked
  again with the next sample index (up to `max_samples`);
- the auditor (`data_ccc_auditor.txt`) sees every agent's conclusion and analysis, checks them
  (and ticket escalation / service conduct itself) and ends "最终结果为：客服违规/客服未违规";
- the log (one entry per agent and one for the auditor: verdict, analysis, calls, tokens) and the
  number of LLM calls are kept per item: 7 rules + 1 auditor = 8 calls when nothing is re-asked,
  close to the paper's 8.15 calls per instance;
- refine (`data_ccc_refine.txt`): an LLM merges the log into one rule-by-rule reasoning and a
  verdict, in `<think>/<answer>`. It is verified like a teacher answer (`distill.verify`: the ccc
  scorer against the label, then our re-rendered target in reward mode). Attempt k re-runs the whole
  workflow with fresh sample indices (k * max_samples ...) and the refiner with sample k; up to
  `max_attempts`; never passing sends the item to the RL pool.

Standalone use as a compliance checker (to compare with a single-call model in evaluation):

    with SyncClient(EndpointConfig.from_dict({...})) as client:
        verdict, log, calls, tokens = check_dialogue(example, client)   # verdict: violation/compliant/None

`acheck_dialogue(example, llm_client)` is the same for an async `LLMClient`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from dianjin.client import ChatRequest, LLMClient
from dianjin.data.distill import (DistillConfig, Flow, Step, ask_many, calls_and_tokens, drive, drive_sync, fill,
                                  outcome, prompt_messages, rl_row, sft_row, usage, user, verify)
from dianjin.tasks import get_task
from dianjin.tasks.base import Example, Messages
from dianjin.tasks.ccc import VERDICT_TEXT, read_verdict, render_dialogue, render_rules, rules_of

AUDITOR = {"id": "auditor", "name": "客服服务审计专家"}
UNCLEAR = "无法判断"


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


class CheckResult(NamedTuple):
    """The workflow's verdict (violation / compliant / None), its log, LLM calls and tokens used."""

    verdict: str | None
    log: list[dict[str, Any]]
    calls: int
    tokens: int


def _dialogue(example: Example) -> str:
    return render_dialogue(example) or str(example.get("question", ""))


def _clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n] + "……（后略）"


def agent_messages(example: Example, rule: dict[str, str]) -> Messages:
    return user(fill("ccc_agent", name=rule["name"], description=rule["description"], dialogue=_dialogue(example)))


def _findings_text(entries: list[dict[str, Any]], log_chars: int) -> str:
    blocks = []
    for i, e in enumerate(entries, 1):
        verdict = VERDICT_TEXT.get(e["verdict"], UNCLEAR)
        blocks.append(f"{i}. {e['name']}：{verdict}\n分析：{_clip(e['analysis'], log_chars) or '（无）'}")
    return "\n\n".join(blocks)


def auditor_messages(example: Example, rules: list[dict[str, str]], entries: list[dict[str, Any]],
                     log_chars: int = 1500) -> Messages:
    return user(fill("ccc_auditor", rules=render_rules(rules), dialogue=_dialogue(example),
                     findings=_findings_text(entries, log_chars)))


def refine_messages(example: Example, rules: list[dict[str, str]], check: CheckResult,
                    log_chars: int = 1500) -> Messages:
    agents = [e for e in check.log if e["agent"] != AUDITOR["id"]]
    audit = next((e for e in check.log if e["agent"] == AUDITOR["id"]), None)
    return user(fill("ccc_refine", rules=render_rules(rules), dialogue=_dialogue(example),
                     log=_findings_text(agents, log_chars),
                     audit=_clip(audit["analysis"], log_chars) if audit else "（无）",
                     verdict=VERDICT_TEXT.get(check.verdict or "", UNCLEAR)))


def _has_verdict(res: Any) -> bool:
    return read_verdict(res.content or "") is not None


def _entry(rule: dict[str, str], got: Any) -> dict[str, Any]:
    calls, tokens = calls_and_tokens(got.tries)
    return {"agent": rule["id"], "name": rule["name"], "verdict": read_verdict(got.text) if got.result else None,
            "analysis": got.text, "calls": calls, "tokens": tokens}


def workflow(example: Example, rules: list[dict[str, str]] | None = None, *, sample: int = 0, max_samples: int = 3,
             log_chars: int = 1500, role: str = "agent", stage: str = "ccc_agents") -> Flow[CheckResult]:
    """The agents (in parallel), then the auditor; see the module docstring."""
    rules = rules or rules_of(example)
    answers = yield from ask_many(role, [agent_messages(example, r) for r in rules], stage=stage, sample=sample,
                                  max_samples=max_samples, accept=_has_verdict)
    entries = [_entry(rule, got) for rule, got in zip(rules, answers)]
    audit = yield from ask_many(role, [auditor_messages(example, rules, entries, log_chars)], stage=stage,
                                sample=sample, max_samples=max_samples, accept=_has_verdict)
    entries.append(_entry(AUDITOR, audit[0]))
    return CheckResult(entries[-1]["verdict"], entries, sum(e["calls"] for e in entries),
                       sum(e["tokens"] for e in entries))


def check_dialogue(example: Example, client: Any, *, rules: list[dict[str, str]] | None = None, sample: int = 0,
                   max_samples: int = 3) -> CheckResult:
    """Run the workflow on one dialogue with a blocking client (`dianjin.client.SyncClient`).

    Raises `dianjin.data.distill.Unfinished` if a request fails for good."""
    return drive_sync(workflow(example, rules, sample=sample, max_samples=max_samples), {"agent": client})


async def acheck_dialogue(example: Example, client: LLMClient, *, rules: list[dict[str, str]] | None = None,
                          sample: int = 0, max_samples: int = 3) -> CheckResult:
    """`check_dialogue` for an async `LLMClient`."""
    return await drive(workflow(example, rules, sample=sample, max_samples=max_samples), {"agent": client})


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
        check = yield from workflow(example, rules, sample=k * cfg.max_samples, max_samples=cfg.max_samples,
                                    log_chars=cfg.log_chars)
        req = ChatRequest(refine_messages(example, rules, check, cfg.log_chars), sample=k, tag=example["id"])
        [res] = yield Step("refine", "ccc_refine", [req])
        target, why, pred = yield from verify(example, res, verify_cfg, stage="ccc_verify")
        n_tokens = check.tokens + res.prompt_tokens + res.completion_tokens
        calls, tokens = calls + check.calls + 1, tokens + n_tokens
        tries.append({"sample": k, "workflow_verdict": check.verdict, "calls": check.calls + 1, "tokens": n_tokens,
                      "log": check.log, "refine": usage(res), "pred": pred, "ok": target is not None, "reason": why})
        if target is not None:
            return outcome(example, "sft", sft_row(example, prompt, target, k + 1, teacher), tries,
                           calls=calls, tokens=tokens)
    return outcome(example, "rl", rl_row(example, prompt, cfg.max_attempts), tries, calls=calls, tokens=tokens)


__all__ = ["AUDITOR", "CccConfig", "CheckResult", "acheck_dialogue", "agent_messages", "auditor_messages",
           "ccc_flow", "check_dialogue", "refine_messages", "workflow"]
