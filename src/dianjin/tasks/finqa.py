"""FinQA (czyssrs/FinQA): numerical questions over an earnings-report excerpt (text + table).

Data: the official JSON arrays (`dataset/{train,dev,test}.json`); each record has `id`,
`pre_text` and `post_text` (lists of sentences), `table` (rows of cells, row 0 the header) and
`qa` with `question`, `program` ("subtract(5829, 5735), divide(#0, 5735)") and `exe_ans`, the
program's result rounded to 5 dp: a float (percentages as fractions: 0.07879 for "7.88%") or
"yes"/"no". Examples keep `gold` = exe_ans, `program`, `table`, the human `answer` ("7.87%",
display only: it is often rounded differently) and a `context` string: pre_text, the table as a
pipe table, post_text.

Prompt: upstream never published its FinQA prompts (neither the distillation nor the inference
one), so ours is documented here: one English user message with the context, the question, and
the DianJin-R1 format contract (reason in <think></think>, answer in <answer></answer> with the
final number or yes/no in \\boxed{}).

Checking (docs/upstream.md §9.1):
- yes/no gold: exact match of the extracted yes/no;
- numeric gold: `dianjin.tasks.numeric.numbers_match` (relative tolerance 1e-3, or the prediction
  rounded to the gold's decimals; x, x*100 and x/100 all accepted for the percent/fraction
  mismatch), else `dianjin.tasks.numeric.rounds_to` on the prediction as written: a prediction with
  fewer digits than the gold and at least two significant ones is right when the gold rounds to
  it at its precision (FinQA's own answers "56%", "1.16", "4.9" for exe_ans 0.56197, 1.15663,
  4.85514; "2" is not right for 2.4); a prediction with a percent sign is then compared with x
  and x*100 only. Unit words are read in the table's units (`table_scale`): FinQA tables state
  their unit once ("in millions") and exe_ans is in that unit, so a prediction with a unit word
  is compared (a) as written, the word naming the table's unit ("73576 thousand" in a table in
  thousands is 73576; also right when the gold comes from text in that unit), (b) converted into
  the table's unit when the table states one ("2.33 million" in a table in thousands is 2330,
  precise to the ten), and (c) with the unit applied (12300000, for a gold computed as
  multiply(12.3, const_1000000)). See docs/scoring.md;
- judge mode (upstream scores FinQA with a GPT-4o judge whose prompt is unpublished): pass
  `judge` to `check` (or ask it yourself: the task's `judge_messages` / `parse_judge` hooks, as the
  evaluation does); `judge_messages` is our prompt and `parse_verdict` reads its reply. Upstream
  looks for the literal text "boxed{{1}}" (an escaping bug that rejects a correct "\\boxed{1}");
  we accept \\boxed{1}, boxed{{1}}, \\boxed{ 1 } and take the last verdict. Note that
  `Task.score` hands `check` the extracted prediction, so the judge sees that, not the full reply.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task
from dianjin.tasks.numeric import NumberMatch, find_number, numbers_match, rounds_to
from dianjin.tasks.text import unwrap_latex

REL_TOL = 1e-3
YES_NO = ("yes", "no")

PROMPT = """Answer the question about the following excerpt of a company's financial report.

{context}

Question: {question}

Think step by step inside <think></think>, then give your answer inside <answer></answer>. \
End the answer with the final result in \\boxed{{}}: a single number without units \
(for example \\boxed{{12.5}} or \\boxed{{12.5\\%}}), or \\boxed{{yes}} / \\boxed{{no}} for a yes/no question."""

JUDGE_PROMPT = """You are grading an answer to a financial question against the reference answer.

Question: {question}

Reference answer: {gold}

Answer to grade: {response}

The answer is correct if its final result equals the reference, allowing for rounding, for a \
percentage written as a fraction or the reverse (7.9% vs 0.079), and for a unit stated in words \
(12.3 million vs 12.3). For a yes/no question the yes/no must agree. Reply with \\boxed{{1}} if \
the answer is correct and \\boxed{{0}} if it is not."""

_LEADING_YES_NO = re.compile(r"^[\W_]*(yes|no)\b", re.IGNORECASE)
_STATED_YES_NO = re.compile(r"\b(?:answer|conclusion)\s*(?:is|:|would be|=)\s*[\W_]{0,3}(yes|no)\b", re.IGNORECASE)
_VERDICT = re.compile(r"boxed\s*\{+\s*([01])\s*\}+")
# How many characters at the start of a candidate are examined for a leading yes/no.
_HEAD = 200
# Unit names used to write a prediction back out ("12.3 million"); `find_number` reads them again.
_SCALE_NAMES = {
    1e3: "thousand",
    1e4: "万",
    1e5: "十万",
    1e6: "million",
    1e7: "千万",
    1e8: "亿",
    1e9: "billion",
    1e10: "百亿",
    1e11: "千亿",
    1e12: "trillion",
}
# A table's unit: a plural unit word in a cell ("( in millions )", "$ in millions", "thousands of
# barrels per day"; a singular "$ 3.6 billion" is a value, not the unit) or a Chinese "单位：万元".
_TABLE_UNIT = re.compile(r"\b(thousands|millions|billions)\b|单位\s*[:：]?\s*(千|万|百万|千万|亿)", re.IGNORECASE)
_TABLE_SCALES = {
    "thousands": 1e3,
    "millions": 1e6,
    "billions": 1e9,
    "千": 1e3,
    "万": 1e4,
    "百万": 1e6,
    "千万": 1e7,
    "亿": 1e8,
}
# How much of the text just before the table is searched for its unit ("... ( in thousands ) :").
_LEAD_CHARS = 160


def _fmt(x: float) -> str:
    s = repr(float(x))
    return s.removesuffix(".0")


def render_table(table: list[list[str]]) -> str:
    """A FinQA table as a Markdown pipe table (row 0 is the header; short rows are padded)."""
    if not table:
        return ""
    width = max(len(row) for row in table)

    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|").strip()

    lines = ["| " + " | ".join([cell(c) for c in row] + [""] * (width - len(row))) + " |" for row in table]
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def judge_messages(question: str, gold: Any, response: str) -> Messages:
    """The judge prompt: question, reference answer and the answer to grade; it replies \\boxed{1|0}."""
    return [
        {
            "role": "user",
            "content": JUDGE_PROMPT.format(question=question or "(not given)", gold=gold, response=response),
        }
    ]


def parse_verdict(text: str | None) -> bool | None:
    """The judge's verdict: the last \\boxed{1} / \\boxed{0} (also "boxed{{1}}"); None if there is none."""
    found = _VERDICT.findall(text or "")
    return None if not found else found[-1] == "1"


def _gold(example: Example) -> str | float | None:
    """The gold as "yes"/"no" or a float; None when it is neither (e.g. a missing exe_ans)."""
    gold = example.get("gold")
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, (int, float)):
        return float(gold)
    text = str(gold).strip().lower()
    if text in YES_NO:
        return text
    try:
        return float(text.replace(",", ""))
    except ValueError:
        found = find_number(text)
        return None if found is None else found.value


def table_scale(example: Example) -> float | None:
    """The unit the example's table is stated in (1e6 for "( in millions )"), from its cells, else
    from the text just before it ("... ( in thousands ) :"); None when it states none or several."""
    table = example.get("table") or []
    cells = " ".join(str(c) for row in table if isinstance(row, list) for c in row)
    units = {(m.group(1) or m.group(2)).lower() for m in _TABLE_UNIT.finditer(cells)}
    if not units and table:
        context = str(example.get("context") or "")
        at = context.find("\n\n| ")
        lead = context[max(0, at - _LEAD_CHARS) : at] if at >= 0 else ""
        units = {(m.group(1) or m.group(2)).lower() for m in _TABLE_UNIT.finditer(lead)}
    return _TABLE_SCALES[units.pop()] if len(units) == 1 else None


def _written_text(found: NumberMatch) -> str:
    """The number as written, digits kept ("1.50", "-1234", "1.2E+6"), which `find_number` reads back."""
    return _fmt(found.mantissa) if found.written is None else str(found.written)


def _number_text(found: NumberMatch) -> str:
    unit = _SCALE_NAMES.get(found.scale)
    text = f"{_written_text(found)} {unit}" if unit else _written_text(found)
    return text + ("%" if found.percent else "")


def _pow10(x: float) -> int:
    return round(math.log10(x))


def _candidates(found: NumberMatch, unit: float | None) -> list[float | Decimal]:
    """The prediction read (a) as written, (b) in the table's unit, (c) with its unit word applied."""
    if found.written is None:  # a fraction has no written precision: compare floats, as before
        out: list[float | Decimal] = [found.mantissa, found.value]
        if unit is not None:
            out.append(found.value / unit)
        return out
    out = [found.written]
    if found.scale != 1.0:
        if unit is not None and unit != found.scale:
            out.append(found.written.scaleb(_pow10(found.scale) - _pow10(unit)))
        out.append(found.written.scaleb(_pow10(found.scale)))
    return out


def _field(rec: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str, i: int, name: str) -> Any:
    if key not in rec:
        raise DataError(path, i, name, "missing")
    value = rec[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise DataError(path, i, name, f"expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    return value


@register("fin_qa", "finqa_r1", "fin_qa_r1", "dianjin/finqa", "czyssrs/finqa", "ibm/finqa")
class FinQA(Task):
    """FinQA numerical reasoning over financial reports (English)."""

    name = "finqa"
    boxed = True

    # --- data ---------------------------------------------------------------------------
    def load(self, path: str) -> list[Example]:
        """Read an official FinQA JSON array. Record errors name the record index and field."""
        try:
            with open(path, encoding="utf-8") as f:
                records = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, None, f"invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(records, list):
            raise DataError(path, None, None, f"expected a JSON array of records, got {type(records).__name__}")
        return [self._example(rec, path, i) for i, rec in enumerate(records)]

    def _example(self, rec: Any, path: str, i: int) -> Example:
        if not isinstance(rec, dict):
            raise DataError(path, i, None, f"record is {type(rec).__name__}, expected an object")
        rid = _field(rec, "id", str, path, i, "id")
        qa = _field(rec, "qa", dict, path, i, "qa")
        question = _field(qa, "question", str, path, i, "qa.question")
        exe_ans = _field(qa, "exe_ans", (int, float, str), path, i, "qa.exe_ans")
        if isinstance(exe_ans, str):
            if exe_ans.strip().lower() not in YES_NO:
                raise DataError(path, i, "qa.exe_ans", f"expected a number or yes/no, got {exe_ans!r}")
            gold: str | float = exe_ans.strip().lower()
        else:
            gold = float(exe_ans)
        pre = _field(rec, "pre_text", list, path, i, "pre_text")
        post = _field(rec, "post_text", list, path, i, "post_text")
        table = _field(rec, "table", list, path, i, "table")
        if not all(isinstance(s, str) for s in pre + post):
            raise DataError(path, i, "pre_text/post_text", "expected lists of strings")
        if not all(isinstance(row, list) and all(isinstance(c, str) for c in row) for row in table):
            raise DataError(path, i, "table", "expected a list of rows of strings")
        context = "\n\n".join(part for part in (" ".join(pre), render_table(table), " ".join(post)) if part)
        return {
            "id": rid,
            "task": self.name,
            "question": question,
            "gold": gold,
            "program": qa.get("program", ""),
            "answer": qa.get("answer", ""),
            "table": table,
            "context": context,
        }

    def messages(self, example: Example) -> Messages:
        return [
            {"role": "user", "content": PROMPT.format(context=example.get("context", ""), question=example["question"])}
        ]

    def reference(self, example: Example) -> str:
        """The human answer ("7.88%") when it checks against exe_ans, else exe_ans itself."""
        human = str(example.get("answer") or "")
        if human:
            pred = self.extract(human, example)
            if pred is not None and self.check(pred, example)[0]:
                return human
        gold = example["gold"]
        return gold if isinstance(gold, str) else _fmt(gold)

    # --- scoring ------------------------------------------------------------------------
    def extract(self, text: str, example: Example) -> str | None:
        """ "yes"/"no" when the text leads with it or states "the answer is yes"; else the last
        number, written back with its unit and percent sign ("12.3 million", "7.88%")."""
        head = unwrap_latex(text[:_HEAD])
        m = _LEADING_YES_NO.match(head)
        if m:
            return m.group(1).lower()
        tail = text[-_HEAD * 4 :]
        stated = _STATED_YES_NO.findall(unwrap_latex(tail))
        if stated:
            return stated[-1].lower()
        found = find_number(text)
        return None if found is None else _number_text(found)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        if judge is not None:
            return self._judge(pred, example, judge)
        gold = _gold(example)
        if gold is None:
            return None, f"gold {example.get('gold')!r} is neither a number nor yes/no"
        if isinstance(gold, str):
            if pred in YES_NO:
                return pred == gold, f"{pred} vs gold {gold}"
            return False, f"expected {gold}, got {pred!r}"
        if pred in YES_NO:
            return False, f"expected a number ({_fmt(gold)}), got {pred}"
        found = find_number(pred)
        if found is None:
            return False, f"no number in {pred!r}"
        values = _candidates(found, table_scale(example))
        if any(numbers_match(float(v), gold, rel_tol=REL_TOL, percent_ambiguity=True) for v in values):
            return True, f"{pred} matches gold {_fmt(gold)}"
        # fewer digits than the gold: right when the gold rounds to it (a "12%" is read as a percent)
        written = [v for v in values if isinstance(v, Decimal)]
        if any(rounds_to(v, gold, percent_ambiguity=True, percent=found.percent) for v in written):
            return True, f"{pred} matches gold {_fmt(gold)} at the answer's precision"
        return False, f"{pred} does not match gold {_fmt(gold)}"

    def chance(self, example: Example) -> float:
        return 0.5 if isinstance(_gold(example), str) else 0.0  # yes or no; a number is open

    def _judge(self, pred: str, example: Example, judge: Judge) -> tuple[bool | None, str]:
        try:
            reply = judge(self.judge_messages(pred, example))
        except Exception as e:  # noqa: BLE001 - a judge outage must not abort a long evaluation
            return None, f"judge failed: {type(e).__name__}: {e}"
        return self.parse_judge(reply)

    def judge_messages(self, pred: str, example: Example) -> Messages:
        return judge_messages(example.get("question", ""), example.get("gold"), pred)

    def judge_template(self) -> str:
        return JUDGE_PROMPT

    def parse_judge(self, reply: str | None) -> tuple[bool | None, str]:
        verdict = parse_verdict(reply)
        if verdict is None:
            return None, f"judge reply has no \\boxed{{1}}/\\boxed{{0}}: {str(reply)[-80:]!r}"
        return verdict, f"judge: {'correct' if verdict else 'wrong'}"
