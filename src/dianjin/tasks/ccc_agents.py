"""The CCC multi-agent compliance check: one LLM agent per rule, then an auditor's verdict.

The paper's CCC data (docs/upstream.md §3.3) came from a workflow in which each condition node is an LLM
agent checking one compliance rule (regulator-complaint risk, social-media complaint risk, legal
risk, ...) and a customer-service auditor (客服服务审计专家) gives the final verdict. None of it was
released; this is our version, with its prompts in `dianjin/prompts/`:

- one agent per rule (`data_ccc_agent.txt`): the rule, the numbered dialogue; it writes its analysis
  and ends "结论：客服违规" or "结论：客服未违规" for that rule only (read with `ccc.read_verdict`).
  Rules are the example's own, else `dianjin.tasks.ccc.DEFAULT_RULES` (7). The agents run in
  parallel; a truncated or verdict-less answer is asked again with the next sample index (up to
  `max_samples`);
- the auditor (`data_ccc_auditor.txt`) sees every agent's conclusion and analysis, checks them
  (and ticket escalation / service conduct itself) and ends "最终结果为：客服违规/客服未违规";
- the log (one entry per agent and one for the auditor: verdict, analysis, calls, tokens) and the
  number of LLM calls are kept per item: 7 rules + 1 auditor = 8 calls when nothing is re-asked,
  close to the paper's 8.15 calls per instance.

It is a task-layer system that both the data pipeline (`dianjin.data.ccc_agents`: refine its log
into SFT targets) and the evaluation (`ccc_agents`, beside the single-call `ccc`) run. Standalone:

    with SyncClient(EndpointConfig.from_dict({...})) as client:
        verdict, log, calls, tokens = check_dialogue(example, client)   # verdict: violation/compliant/None

`acheck_dialogue(example, llm_client)` is the same for an async `LLMClient`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dianjin.llm.client import LLMClient
from dianjin.llm.flow import Flow, ask_many, calls_and_tokens, drive, drive_sync, fill, prompt_template, user
from dianjin.tasks.base import Example, Messages
from dianjin.tasks.ccc import VERDICT_TEXT, read_verdict, render_dialogue, render_rules, rules_of

AUDITOR = {"id": "auditor", "name": "客服服务审计专家"}
UNCLEAR = "无法判断"


class CheckResult(NamedTuple):
    """The workflow's verdict (violation / compliant / None), its log, LLM calls and tokens used."""

    verdict: str | None
    log: list[dict[str, Any]]
    calls: int
    tokens: int


def prompt_text() -> str:
    """The agent and auditor prompts as written (recorded with evaluation results)."""
    return "\n\n----- auditor -----\n\n".join(prompt_template(p) for p in ("ccc_agent", "ccc_auditor"))


def dialogue_text(example: Example) -> str:
    return render_dialogue(example) or str(example.get("question", ""))


def clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n] + "……（后略）"


def agent_messages(example: Example, rule: dict[str, str]) -> Messages:
    return user(fill("ccc_agent", name=rule["name"], description=rule["description"], dialogue=dialogue_text(example)))


def findings_text(entries: list[dict[str, Any]], log_chars: int) -> str:
    """The log entries as numbered blocks: the agent's name, its verdict and (clipped) analysis."""
    blocks = []
    for i, e in enumerate(entries, 1):
        verdict = VERDICT_TEXT.get(e["verdict"], UNCLEAR)
        blocks.append(f"{i}. {e['name']}：{verdict}\n分析：{clip(e['analysis'], log_chars) or '（无）'}")
    return "\n\n".join(blocks)


def auditor_messages(
    example: Example, rules: list[dict[str, str]], entries: list[dict[str, Any]], log_chars: int = 1500
) -> Messages:
    return user(
        fill(
            "ccc_auditor",
            rules=render_rules(rules),
            dialogue=dialogue_text(example),
            findings=findings_text(entries, log_chars),
        )
    )


def _has_verdict(res: Any) -> bool:
    return read_verdict(res.content or "") is not None


def _entry(rule: dict[str, str], got: Any) -> dict[str, Any]:
    calls, tokens = calls_and_tokens(got.tries)
    return {
        "agent": rule["id"],
        "name": rule["name"],
        "verdict": read_verdict(got.text) if got.result else None,
        "analysis": got.text,
        "calls": calls,
        "tokens": tokens,
    }


def workflow(
    example: Example,
    rules: list[dict[str, str]] | None = None,
    *,
    sample: int = 0,
    max_samples: int = 3,
    log_chars: int = 1500,
    role: str = "agent",
    stage: str = "ccc_agents",
) -> Flow[CheckResult]:
    """The agents (in parallel), then the auditor; see the module docstring."""
    rules = rules or rules_of(example)
    answers = yield from ask_many(
        role,
        [agent_messages(example, r) for r in rules],
        stage=stage,
        sample=sample,
        max_samples=max_samples,
        accept=_has_verdict,
    )
    entries = [_entry(rule, got) for rule, got in zip(rules, answers)]
    audit = yield from ask_many(
        role,
        [auditor_messages(example, rules, entries, log_chars)],
        stage=stage,
        sample=sample,
        max_samples=max_samples,
        accept=_has_verdict,
    )
    entries.append(_entry(AUDITOR, audit[0]))
    return CheckResult(
        entries[-1]["verdict"], entries, sum(e["calls"] for e in entries), sum(e["tokens"] for e in entries)
    )


def check_dialogue(
    example: Example, client: Any, *, rules: list[dict[str, str]] | None = None, sample: int = 0, max_samples: int = 3
) -> CheckResult:
    """Run the workflow on one dialogue with a blocking client (`dianjin.llm.client.SyncClient`).

    Raises `dianjin.llm.flow.Unfinished` if a request fails for good."""
    return drive_sync(workflow(example, rules, sample=sample, max_samples=max_samples), {"agent": client})


async def acheck_dialogue(
    example: Example,
    client: LLMClient,
    *,
    rules: list[dict[str, str]] | None = None,
    sample: int = 0,
    max_samples: int = 3,
) -> CheckResult:
    """`check_dialogue` for an async `LLMClient`."""
    return await drive(workflow(example, rules, sample=sample, max_samples=max_samples), {"agent": client})


__all__ = [
    "AUDITOR",
    "UNCLEAR",
    "CheckResult",
    "acheck_dialogue",
    "agent_messages",
    "auditor_messages",
    "check_dialogue",
    "clip",
    "dialogue_text",
    "findings_text",
    "prompt_text",
    "workflow",
]
