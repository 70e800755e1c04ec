"""Convert: CFLUE multiple-choice questions → open-ended questions (CFLUE_OE) by an LLM.

DianJin-R1 had GPT-4o rewrite MCQs as open questions and kept the answer for verification; the prompt
was not released. Ours is `prompts/data_convert.txt`: it shows the question, the options, the gold
letters with their text and CFLUE's analysis, and asks for one self-contained open question whose
answer is the gold option's content, written between `<question>` and `</question>`. A reply without
that block (or a truncated one) is asked again with the next sample index, up to `max_samples`.

Which items: CFLUE examples whose 题型 is in `qtypes` (default 单项选择题: a true/false item or a
multi-answer item rarely makes a clean open question), chosen deterministically by a hash of the id
with probability `fraction` (so adding items never reshuffles earlier choices). The converted
example is `{id: <mcq id>-oe, task: cflue_oe, question, gold: the gold option text (several joined
with "；"), analysis, source_id: <mcq id>}`. By default the MCQ itself then leaves the MCQ branch
(`keep_mcq: false`), matching the paper's figure where Filter splits CFLUE into two branches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from dianjin.data.distill import Flow, ask, fill, user
from dianjin.data.filter import options_text
from dianjin.tasks.base import Example
from dianjin.tasks.cflue import gold_letters, parse_choices


@dataclass
class ConvertConfig:
    """`convert:` in the build config."""

    enabled: bool = False
    fraction: float = 0.2  # share of eligible MCQs converted (deterministic by id)
    qtypes: list[str] = field(default_factory=lambda: ["单项选择题"])
    keep_mcq: bool = False  # also keep the converted MCQ in the MCQ branch
    max_samples: int = 3  # re-asks on a truncated reply or one without <question>


_QUESTION = re.compile(r"<question>(.*?)</question>", re.DOTALL)
MIN_QUESTION_CHARS = 4


def selected(example: Example, cfg: ConvertConfig) -> bool:
    """Whether this item is converted: a CFLUE MCQ of an allowed 题型, picked by hash of its id."""
    if not cfg.enabled or example.get("task") != "cflue" or example.get("qtype") not in cfg.qtypes:
        return False
    h = int.from_bytes(hashlib.sha256(f"convert:{example['id']}".encode()).digest()[:8], "big")
    return h / 2**64 < cfg.fraction


def gold_text(example: Example) -> str:
    """The text of the gold option(s): the reference answer of the open question."""
    choices = parse_choices(example.get("choices"))
    letters = gold_letters(example.get("gold")) or ""
    return "；".join(choices[c].strip() for c in letters if c in choices)


def parse_question(text: str | None) -> str | None:
    """The last `<question>...</question>` block, stripped; None when absent or trivially short."""
    found = _QUESTION.findall(text or "")
    q = found[-1].strip() if found else ""
    return q if len(q) >= MIN_QUESTION_CHARS else None


def convert_messages(example: Example) -> list[dict[str, str]]:
    letters = gold_letters(example.get("gold")) or str(example.get("gold"))
    analysis = str(example.get("analysis") or "（无）").strip()
    return user(
        fill(
            "convert",
            question=str(example["question"]).strip(),
            options=options_text(example),
            answer=f"{letters}（{gold_text(example)}）",
            analysis=analysis,
        )
    )


def open_example(example: Example, question: str) -> Example:
    return {
        "id": f"{example['id']}-oe",
        "task": "cflue_oe",
        "question": question,
        "gold": gold_text(example),
        "analysis": example.get("analysis"),
        "source_id": example["id"],
    }


def convert_flow(example: Example, cfg: ConvertConfig) -> Flow[dict[str, Any]]:
    """One conversion: the log line `{id, ok, example?, reason, tries}`."""
    got = yield from ask(
        "judge",
        convert_messages(example),
        stage="convert",
        max_samples=cfg.max_samples,
        accept=lambda r: parse_question(r.content) is not None,
    )
    question = parse_question(got.text)
    if question is None:
        return {"id": example["id"], "ok": False, "reason": "no <question> in the reply", "tries": got.tries}
    return {
        "id": example["id"],
        "ok": True,
        "example": open_example(example, question),
        "reason": "converted",
        "tries": got.tries,
    }


__all__ = ["ConvertConfig", "convert_flow", "gold_text", "open_example", "parse_question", "selected"]
