"""The offline reference teacher: SFT targets rendered from what the data already holds, no API.

A BASELINE, not distillation: rows carry `teacher: "reference"` so nobody mistakes them for
DeepSeek-R1 traces. It lets the whole pipeline (and the demo) run with no key and no network.

Reasoning per task (`REASONERS`, task -> fn(example) -> text or None):
- cflue / cflue_oe / generic items with an `analysis`: CFLUE's reference explanation;
- finqa: the gold `program` executed step by step with `dianjin.tasks.finqa_program.steps`
  ("Step 1: subtract(5829, 5735) = 5829 - 5735 = 94");
- fincalc: the generator's derivation (`dianjin.tasks.fincalc.reasoning`);
- ccc: the per-rule `findings` walked rule by rule, in the refined-trace shape the paper shows
  ("现在，我们基于质检流程…", one paragraph per rule, "综合以上所有判断，最终结果为：…"). A violation
  without findings has no reference reasoning (we cannot say which rule broke).
No reasoning -> the item goes to the RL pool (reason logged).

The answer is `task.reference(example)` (fincalc: its `answer_text`; CFLUE: the letters and option
texts), boxed for boxed tasks. Every target is scored with the task's scorer in reward mode, which
must give 1; open-ended tasks (cflue_oe), whose checker needs a judge, pass on the format gate alone,
since their answer is the gold text itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dianjin.answer import render
from dianjin.data.distill import Flow, outcome, prompt_messages, rl_row, sft_row
from dianjin.tasks import finqa_program, get_task
from dianjin.tasks.base import Example
from dianjin.tasks.ccc import VERDICT_TEXT, VIOLATION, normalize_label, rules_of
from dianjin.tasks.cflue import gold_letters, parse_choices
from dianjin.tasks.finqa_program import ProgramError

TEACHER = "reference"


def _num(x: Any) -> str:
    """A number for prose: integers without ".0", others with up to 10 significant digits."""
    if isinstance(x, str):
        return x
    x = float(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}"


# --- per-task reasoning ------------------------------------------------------------------------------
def analysis_reasoning(example: Example) -> str | None:
    text = str(example.get("analysis") or "").strip()
    return text or None


_SYMBOL = {"add": "+", "subtract": "-", "multiply": "×", "divide": "÷", "exp": "^"}


def finqa_reasoning(example: Example) -> str | None:
    """The gold program, executed and explained step by step (English, like FinQA)."""
    program = example.get("program")
    if not program:
        return None
    try:
        steps = finqa_program.steps(program, example.get("table") or [])
    except ProgramError:
        return None
    lines = [f'To answer "{str(example.get("question", "")).strip()}", compute it from the report step by step.']
    for s in steps:
        a, b = s["args"]
        head = f"Step {s['index'] + 1}: {s['op']}({a}, {b})"
        if s["op"] in finqa_program.TABLE_OPS:
            kind = s["op"].split("_", 1)[1]
            body = f'the {kind} of the row "{a}" ({", ".join(_num(v) for v in s["values"])}) = {_num(s["result"])}'
        elif s["op"] == "greater":
            body = f"is {_num(s['values'][0])} greater than {_num(s['values'][1])}? {s['result']}"
        else:
            body = f"{_num(s['values'][0])} {_SYMBOL[s['op']]} {_num(s['values'][1])} = {_num(s['result'])}"
        lines.append(f"{head} = {body}" if s["op"] in _SYMBOL else f"{head}: {body}")
    lines.append(f"So the answer is {get_task('finqa').reference(example)}.")
    return "\n".join(lines)


def fincalc_reasoning(example: Example) -> str | None:
    from dianjin.data.synthetic import fincalc

    return fincalc.reasoning(example) if example.get("derivation") else None


def ccc_reasoning(example: Example) -> str | None:
    """Rule by rule from the findings, ending with the verdict; None for a violation without findings."""
    label = normalize_label(example.get("gold"))
    findings = {f["rule_id"]: f for f in example.get("findings") or []}
    if label is None or (label == VIOLATION and not any(f.get("triggered") for f in findings.values())):
        return None
    lines = ["现在，我们基于质检流程，对提供的客服对话按照既定的质检规则逐一进行检查。"]
    for i, rule in enumerate(rules_of(example), 1):
        f = findings.get(rule["id"])
        note = (f or {}).get("note", "").rstrip("。")
        if f and f.get("triggered"):
            judged = f"{note}。因此客服违反了该规则。" if note else "客服违反了该规则。"
        elif f:
            judged = f"{note}。因此客服没有违反该规则。" if note else "客服没有违反该规则。"
        else:
            judged = "对话中没有触发该规则的情形，客服没有违反该规则。"
        lines.append(f"第{i}条，检查“{rule['name']}”：{rule['description']}\n- 分析过程：{judged}")
    tail = f"综合以上所有判断，最终结果为：{VERDICT_TEXT[label]}。"
    broken = [str(i) for i, r in enumerate(rules_of(example), 1) if findings.get(r["id"], {}).get("triggered")]
    tail += f"原因是客服违反了上述第{'、'.join(broken)}条规则。" if broken else "客服的表现没有触犯任何一条质检规则。"
    lines.append(tail)
    return "\n".join(lines)


REASONERS: dict[str, Callable[[Example], str | None]] = {
    "cflue": analysis_reasoning,
    "cflue_oe": analysis_reasoning,
    "finqa": finqa_reasoning,
    "fincalc": fincalc_reasoning,
    "ccc": ccc_reasoning,
}


# --- answers -------------------------------------------------------------------------------------------
def cflue_answer(example: Example) -> str:
    letters = gold_letters(example.get("gold")) or str(example.get("gold"))
    try:
        choices = parse_choices(example.get("choices"))
    except ValueError:
        choices = {}
    texts = "；".join(f"{c}. {choices[c]}" for c in letters if c in choices)
    return f"正确答案是 {letters}" + (f"（{texts}）。" if texts else "。")


ANSWERS: dict[str, Callable[[Example], str]] = {
    "cflue": cflue_answer,
    "fincalc": lambda ex: str(ex.get("answer_text") or get_task("fincalc").reference(ex)),
}


def reference_target(example: Example) -> str | None:
    """The rendered `<think>/<answer>` target, or None when the data holds no reasoning for it."""
    task = get_task(example["task"])
    reasoning = REASONERS.get(task.name, analysis_reasoning)(example)
    if not reasoning:
        return None
    answer = ANSWERS.get(task.name, task.reference)(example)
    return render(reasoning, answer, task.reference(example) if task.boxed else None)


# Tasks whose checker needs a judge: the reference answer is the gold itself, so the format gate suffices.
JUDGED = frozenset({"cflue_oe"})


def reference_flow(example: Example, *, system: str | None = None) -> Flow[dict[str, Any]]:
    """The reference teacher as a flow (it asks nothing); the stage log line."""
    yield from ()
    task = get_task(example["task"])
    prompt = prompt_messages(task, example, system)
    target = reference_target(example)
    if target is None:
        return outcome(example, "rl", rl_row(example, prompt, 1), [{"ok": False, "reason": "no reference reasoning"}])
    v = task.score(target, example, mode="reward")
    ok = v.format_ok and (v.correct is True or (task.name in JUDGED and v.correct is None))
    tries = [{"ok": ok, "pred": v.pred, "reason": v.reason}]
    if not ok:
        return outcome(example, "rl", rl_row(example, prompt, 1), tries)
    return outcome(example, "sft", sft_row(example, prompt, target, 1, TEACHER), tries)


__all__ = ["ANSWERS", "REASONERS", "TEACHER", "reference_flow", "reference_target"]
