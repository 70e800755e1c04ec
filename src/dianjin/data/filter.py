"""Filter (CFLUE): by question length, and optionally by ambiguity as judged by the judge LLM.

The paper filters CFLUE on length, difficulty and ambiguity (GPT-4o removes ambiguous questions);
its thresholds were not published (docs/upstream.md §3.2). Ours:

- length: the question plus its options must be `min_chars`..`max_chars` characters (defaults 10
  and 2,000: drops stubs and pasted passages);
- ambiguity (`ambiguity: true`, off by default): the judge reads the question, options, answer and
  analysis (`prompts/data_ambiguity.txt`) and ends with "结论：保留" or "结论：剔除". A reply without
  a clear conclusion is asked again (next sample index) and, if still unclear, the item is kept and
  the log says so: a flaky judge should not silently shrink the data.
- difficulty is not filtered (it needs a reference model's accuracy per question); the distill
  stage's retry loop sends what the teacher cannot solve to the RL pool, which serves the same end.

Only tasks listed in `tasks` (default cflue) are filtered; others pass through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dianjin.data.distill import Flow, ask, fill, user
from dianjin.tasks.base import Example
from dianjin.tasks.cflue import parse_choices


@dataclass
class FilterConfig:
    """`filter:` in the build config."""

    tasks: list[str] = field(default_factory=lambda: ["cflue"])
    min_chars: int = 10
    max_chars: int = 2000
    ambiguity: bool = False  # ask the judge LLM (off by default)
    max_samples: int = 3  # re-asks when the judge's reply has no clear conclusion


KEEP, DROP = "保留", "剔除"
_CONCLUSION = re.compile(r"结论\s*[:：]\s*[*\s]*(保留|剔除)")


def parse_decision(text: str) -> bool | None:
    """True (keep) / False (drop) from the judge's last "结论：保留/剔除"; None when there is none."""
    found = _CONCLUSION.findall(text or "")
    return None if not found else found[-1] == KEEP


def options_text(example: Example) -> str:
    try:
        return "\n".join(f"{k}. {v}" for k, v in parse_choices(example.get("choices")).items())
    except ValueError:
        return ""


def length_check(example: Example, cfg: FilterConfig) -> tuple[bool, str]:
    n = len(str(example.get("question", "")).strip()) + len(options_text(example))
    if n < cfg.min_chars:
        return False, f"too short ({n} < {cfg.min_chars} chars)"
    if n > cfg.max_chars:
        return False, f"too long ({n} > {cfg.max_chars} chars)"
    return True, f"length {n} ok"


def ambiguity_messages(example: Example) -> list[dict[str, str]]:
    return user(
        fill(
            "ambiguity",
            question=str(example.get("question", "")).strip(),
            options=options_text(example),
            answer=str(example.get("gold", "")),
            analysis=str(example.get("analysis") or "（无）").strip(),
        )
    )


def filter_flow(example: Example, cfg: FilterConfig) -> Flow[dict[str, Any]]:
    """The decision for one item: `{id, keep, reason, tries?}` (a log line)."""
    if example.get("task") not in cfg.tasks:
        return {"id": example["id"], "keep": True, "reason": "not filtered (task)"}
    ok, why = length_check(example, cfg)
    if not ok or not cfg.ambiguity:
        return {"id": example["id"], "keep": ok, "reason": why}
    got = yield from ask(
        "judge",
        ambiguity_messages(example),
        stage="filter",
        max_samples=cfg.max_samples,
        accept=lambda r: parse_decision(r.content or "") is not None,
    )
    decision = parse_decision(got.text)
    if decision is None:
        return {"id": example["id"], "keep": True, "reason": "judge unclear: kept", "tries": got.tries}
    return {
        "id": example["id"],
        "keep": decision,
        "reason": "judge: " + (KEEP if decision else DROP + " (ambiguous)"),
        "tries": got.tries,
    }


__all__ = ["FilterConfig", "filter_flow", "length_check", "parse_decision"]
