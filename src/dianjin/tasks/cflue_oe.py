"""CFLUE open-ended (CFLUE_OE): CFLUE questions rewritten from multiple choice, checked by an LLM judge.

DianJin-R1 converts CFLUE MCQs into open questions with GPT-4o and has GPT-4o check the answers
against the reference answer and CFLUE's `analysis`; none of that code or its prompts was released.
Our version is documented here:

- Data: a JSONL of `{"id", "question", "gold", "analysis"?, "source_id"?}` where `gold` is the
  reference answer (the gold option's text), `analysis` CFLUE's explanation and `source_id` the id
  of the MCQ it came from (`dianjin.tasks.cflue.make_id`). Examples add `task: "cflue_oe"`.
- Model prompt (`PROMPT`, Chinese): CFLUE's opening line, the question, and the DianJin output
  contract (reason in `<think>`, a full answer in `<answer>`, no `\\boxed{}`).
- Judge prompt: `dianjin/prompts/cflue_oe_judge.txt` (question, reference answer, reference
  analysis, candidate answer); the judge gives a short reason and ends with "结论：正确" or
  "结论：错误". `parse_judge` also accepts `\\boxed{1}` / `\\boxed{0}` (and upstream FinQA's literal
  `boxed{{1}}`), English verdicts, and treats negations ("不正确", "incorrect") as False and
  hedges ("部分正确") or conflicting signals as None.
- Scoring: `extract` returns the answer text itself (format tags removed); `check` asks the judge, a callable
  `messages -> reply text`. Without a judge the verdict is None ("no judge configured"), never a
  guess. Judge exceptions propagate: a broken judge is a setup error, not a wrong answer. The data
  pipeline and the evaluation ask the judge themselves, in bulk, through the task's
  `judge_messages` / `parse_judge` hooks (`dianjin.tasks.base.Task`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records

PROMPT = (
    "假设你是一位金融行业专家，请回答下列问题。\n\n"
    "问题：{question}\n\n"
    "请先在<think></think>中逐步推理，然后在<answer></answer>中给出完整、准确的回答。"
)
JUDGE_PROMPT_FILE = "cflue_oe_judge.txt"
JUDGE_FIELDS = ("question", "reference", "analysis", "answer")
# The candidate answer shown to the judge keeps at most this many trailing characters.
MAX_ANSWER_CHARS = 8_000
NO_ANALYSIS = "（无）"

_TAGS = re.compile(r"</?(?:think|answer)>")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(JUDGE_FIELDS) + r")\}")

# --- judge verdict parsing ----------------------------------------------------------------------
# A conclusion label: 结论：/ 判断结果为 / Verdict: / The conclusion is ...
_CONCLUSION = re.compile(
    r"(?:最终)?(?:结论|判断结果|判定结果|评判结果|评判|判定|判断|结果)\s*(?:[:]|是(?!否)|为)"
    r"|\b(?:final\s+)?(?:verdict|conclusion|judge?ment|decision|result)\s*(?::|\bis\b)",
    re.IGNORECASE,
)
_UNESCAPED_BOX = re.compile(r"(?<!\\)\bboxed\{")
_CLAUSE_END = re.compile(r"[,;。，；(（]")
# Verdict words; negations and hedges are listed before the words they contain.
_VERDICT_WORD = re.compile(
    r"部分正确|部分错误|基本正确|不完全正确|不完全对|没有错误|没有错|没错|无误|不错"
    r"|不正确|不对|不一致|不符合|不等价|不相符|有误|错误|错|正确|对(?![比于照应待])|一致|符合|等价|相符"
    r"|\b(?:partially|partly|mostly)\s+correct\b|\bnot\s+correct\b|\bincorrect\b|\bwrong\b|\bfalse\b"
    r"|\binconsistent\b|\bno\b|\bcorrect\b|\bright\b|\btrue\b|\bconsistent\b|\byes\b|^[01]$",
    re.IGNORECASE,
)
# Hedges map to None (ambiguous).
_WORD_VALUE: dict[str, bool | None] = {
    **dict.fromkeys(["部分正确", "部分错误", "基本正确", "不完全正确", "不完全对"]),
    **dict.fromkeys(["partially correct", "partly correct", "mostly correct"]),
    **dict.fromkeys(["没有错误", "没有错", "没错", "无误", "不错", "正确", "对", "一致", "符合", "等价", "相符"], True),
    **dict.fromkeys(["correct", "right", "true", "consistent", "yes", "1"], True),
    **dict.fromkeys(["不正确", "不对", "不一致", "不符合", "不等价", "不相符", "有误", "错误", "错"], False),
    **dict.fromkeys(["not correct", "incorrect", "wrong", "false", "inconsistent", "no", "0"], False),
}
# With no label and no box, a reply this short is read as a bare verdict ("正确", "Incorrect.").
SHORT_REPLY_CHARS = 30


# Verdict labels tried, newest first, before giving up on labels.
MAX_LABELS = 8


def _verdict(phrase: str) -> tuple[bool, bool | None]:
    """(has verdict words, value): the value is None when the words are hedged or disagree."""
    values = {_WORD_VALUE[re.sub(r"\s+", " ", m.group().lower())] for m in _VERDICT_WORD.finditer(phrase.strip())}
    return bool(values), (values.pop() if len(values) == 1 else None)


def _after_label(rest: str) -> tuple[bool, bool | None]:
    """The verdict after a conclusion label: its first clause, else its line, else the next line."""
    lines = [ln.strip() for ln in rest.splitlines() if ln.strip()][:2]
    for phrase in [_CLAUSE_END.split(lines[0], maxsplit=1)[0], *lines] if lines else []:
        found = _verdict(phrase)
        if found[0]:
            return found
    return False, None


def parse_judge(text: str | None) -> bool | None:
    """The judge's verdict: True (correct), False (incorrect) or None (absent or ambiguous).

    Signals are the last conclusion label followed by a verdict ("结论：正确", "Verdict: incorrect")
    and the last box holding one (`\\boxed{1}`, `\\boxed{0}`, `\\boxed{正确}`); they must agree and
    must not hedge. A reply with neither is read as a bare verdict only when it is short.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text[-fmt.TAIL_CHARS :]).replace("*", "").replace("#", "")
    text = _UNESCAPED_BOX.sub(r"\\boxed{", text)
    signals: list[bool | None] = []
    box = fmt.last_boxed(text)
    if box is not None:
        found, value = _verdict(box.strip("{} \n\t$"))
        if found:  # a box without verdict words (a quoted answer) is no signal
            signals.append(value)
    for label in reversed(deque(_CONCLUSION.finditer(text), maxlen=MAX_LABELS)):
        found, value = _after_label(text[label.end() : label.end() + 200])
        if found:
            signals.append(value)
            break
    if not signals:
        short = text.strip().rstrip("。.!！")
        return _verdict(short)[1] if len(short) <= SHORT_REPLY_CHARS else None
    return signals[0] if len(set(signals)) == 1 else None


# --- judge prompt -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def judge_template() -> str:
    """The packaged judge prompt (`dianjin/prompts/cflue_oe_judge.txt`)."""
    return resources.files("dianjin").joinpath("prompts", JUDGE_PROMPT_FILE).read_text(encoding="utf-8")


def judge_messages(example: Example, answer_text: str) -> Messages:
    """Chat messages asking the judge whether `answer_text` answers `example` correctly."""
    answer_text = (answer_text or "").strip()
    if len(answer_text) > MAX_ANSWER_CHARS:
        answer_text = "……（前文已省略）" + answer_text[-MAX_ANSWER_CHARS:]
    values = {
        "question": str(example.get("question") or "").strip(),
        "reference": str(example.get("gold") or "").strip(),
        "analysis": str(example.get("analysis") or "").strip() or NO_ANALYSIS,
        "answer": answer_text,
    }
    # One pass, so braces or placeholders inside the texts are never substituted again.
    content = _PLACEHOLDER.sub(lambda m: values[m.group(1)], judge_template())
    return [{"role": "user", "content": content}]


# --- loading ------------------------------------------------------------------------------------
def _example(path: Path, lineno: int, rec: Any) -> Example:
    if not isinstance(rec, dict):
        raise DataError(path, lineno, None, f"expected a JSON object, got {type(rec).__name__}")
    ex: Example = {"task": CflueOETask.name}
    for field in ("id", "question", "gold"):
        value = rec.get(field)
        if field == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            got = "nothing" if field not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
            raise DataError(path, lineno, field, f"expected a non-empty string, got {got}")
        ex[field] = value
    for field in ("analysis", "source_id"):
        value = rec.get(field)
        if value is not None and not isinstance(value, str):
            raise DataError(path, lineno, field, f"expected a string or null, got {type(value).__name__}")
        ex[field] = value
    return ex


@register("cflue_open", "cflue_oe_r1", "dianjin/cflue_oe", "cflue_open_ended")
class CflueOETask(Task):
    """CFLUE_OE: free-text answers, judged against the reference answer and analysis."""

    name = "cflue_oe"
    boxed = False

    def load(self, path: str) -> list[Example]:
        file = Path(path)
        examples: list[Example] = []
        seen: set[str] = set()
        for lineno, rec in jsonl_records(file):
            ex = _example(file, lineno, rec)
            if ex["id"] in seen:
                raise DataError(file, lineno, "id", f"duplicate id {ex['id']!r}")
            seen.add(ex["id"])
            examples.append(ex)
        return examples

    def messages(self, example: Example) -> Messages:
        return [{"role": "user", "content": PROMPT.format(question=example["question"].strip())}]

    def extract(self, text: str, example: Example) -> str | None:
        """The answer text itself, without stray format tags; None when nothing is left."""
        return _TAGS.sub("", text).strip() or None

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        if judge is None:
            return None, "no judge configured"
        reply = judge(self.judge_messages(pred, example))
        return self.parse_judge(reply if isinstance(reply, str) else None)

    def judge_messages(self, pred: str, example: Example) -> Messages:
        return judge_messages(example, pred)

    def parse_judge(self, reply: str | None) -> tuple[bool | None, str]:
        verdict = parse_judge(reply)
        if verdict is None:
            return None, f"judge reply has no clear verdict: {str(reply)[-120:]!r}"
        return verdict, "judge: correct" if verdict else "judge: incorrect"

    def judge_template(self) -> str:
        return judge_template()
