"""CFLUE knowledge assessment: Chinese financial-exam multiple-choice questions (DianJin-R1's RL task).

Data: `aliyun/cflue` `data/knowledge/knowledge.json`, a JSON array of
`{"名称", "task", "question", "choices", "answer", "analysis"}` where `task` is 单项选择题, 多项选择题
or 判断题 (A=对, B=错), `choices` is a *Python dict literal string* (parsed with `ast.literal_eval`,
never `eval`) and `answer` holds the sorted gold letters. The file has no id, so each example gets
`cflue-<12 hex>` from a SHA-256 of its question and choices (a repeated question gets `-2`, `-3`, ...
in file order). A JSONL file of the same records also loads. Examples carry `id, task, question,
choices (dict), gold (sorted letters), qtype (the CFLUE 题型), exam (名称), analysis`.

Prompt: upstream never published its inference or distillation prompts, so ours is documented here:
CFLUE's own opening ("假设你是一位金融行业专家，请回答下列问题。"), one rule line per 题型 (`QTYPES`), the
options as `A. ...` lines, and the DianJin output contract (reason in `<think>`, answer in `<answer>`
with the letters in `\\boxed{}`).

Scoring: the predicted letter *set* must equal the gold set (order-insensitive). Where we deviate
from upstream (`eval.py` / `reward_score_cflue.py` keep every A-G character found anywhere in the
box, so `\\boxed{A. Bond}` reads "AB" and `\\boxed{Both A and C}` reads "ABC"), `extract` only counts
standalone option letters, with the reader every option-letter task shares
(`dianjin.tasks.text.option_letters`, multi-answer: `ABD`, `A、C`, `Both A and C`, `选项B`, `答案：B`,
`\\text{B}`, an option's text, `对`/`错误` for 判断题, `A. 债券`, `故选B`; see its docstring for the rules).
When the example knows its choices only those keys count (a box naming a missing option is no
answer); otherwise A-G. Free text never gets a blind letter scan. Known limit: after an answer
phrase, comma-separated letters are read as one set, so `答案：A，B选项错误` gives AB.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records, read_text
from dianjin.tasks.text import SEPARATORS, option_letters

ALL_LETTERS = "ABCDEFG"
_LETTER_RUN = re.compile(r"[A-G]+")


# --- prompt ----------------------------------------------------------------------------------
class QType(NamedTuple):
    """How the prompt words one 题型."""

    kind: str  # what to call the question
    rule: str  # the rule line after the opening
    what: str  # what goes in the box
    example: str  # an example box content


QTYPES: dict[str, QType] = {
    "单项选择题": QType("单项选择题", "注意：本题只有一个正确选项。", "所选选项的字母", "A"),
    "多项选择题": QType(
        "多项选择题", "注意：本题可能有一个或多个正确选项，请选出全部正确选项。", "全部正确选项的字母", "AC"
    ),
    "判断题": QType("判断题", "注意：请判断题目中的说法是否正确，A 表示对，B 表示错。", "所选选项的字母", "A"),
}
# Used when an example does not say its 题型 (e.g. a bare `dianjin score` line).
DEFAULT_QTYPE = QType("选择题", "注意：本题可能有一个或多个正确选项，请选出全部正确选项。", "所选选项的字母", "AC")

PROMPT = (
    "假设你是一位金融行业专家，请回答下列{kind}。{rule}\n\n"
    "题目：{question}\n{options}\n\n"
    "请先在<think></think>中逐步推理，然后在<answer></answer>中给出最终答案，"
    "并把{what}写在\\boxed{{}}中（例如 \\boxed{{{example}}}）。"
)


# --- answer extraction -------------------------------------------------------------------------
def parse_choices(value: Any) -> dict[str, str]:
    """Choices as a dict: a dict as is, or a Python dict literal string via `ast.literal_eval`.

    Raises ValueError when the value is not a {letter: text} mapping.
    """
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise ValueError(f"not a Python dict literal ({type(e).__name__})") from None
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a non-empty {letter: text} dict")
    for key, text in value.items():
        if not (isinstance(key, str) and len(key) == 1 and key in ALL_LETTERS):
            raise ValueError(f"option key {key!r} is not one of {ALL_LETTERS}")
        if not isinstance(text, str):
            raise ValueError(f"option {key} text is {type(text).__name__}, not str")
    return dict(sorted(value.items()))


@lru_cache(maxsize=4096)
def _literal_choices(choices: str) -> tuple[tuple[str, str], ...]:
    """CFLUE's `choices` is a dict literal string: parsed once per question, not once per answer scored
    (an evaluation or a GRPO group scores the same question many times)."""
    try:
        return tuple(parse_choices(choices).items())
    except ValueError:
        return ()


def _choices(example: Example | None) -> dict[str, str]:
    """The example's options ({} when it has none or they are unreadable: then any of A-G counts)."""
    choices = (example or {}).get("choices")
    if isinstance(choices, str):
        return dict(_literal_choices(choices))
    try:
        return parse_choices(choices)
    except ValueError:
        return {}


def extract_letters(text: str, example: Example | None = None) -> str | None:
    """Sorted option letters chosen by a piece of answer text; None when it names none."""
    return option_letters(text, ALL_LETTERS, choices=_choices(example), multi=True)


def gold_letters(gold: Any) -> str | None:
    """The gold as sorted letters ("ACD", also "A,C,D" or ["A", "C"]); None when unparseable."""
    if isinstance(gold, (list, tuple)):
        gold = "".join(str(g) for g in gold)
    if not isinstance(gold, str):
        return None
    letters = SEPARATORS.sub("", unicodedata.normalize("NFKC", gold)).upper()
    if not letters or not _LETTER_RUN.fullmatch(letters):
        return None
    return "".join(sorted(set(letters)))


# --- loading ------------------------------------------------------------------------------------
def _records(path: Path) -> list[tuple[int, Any]]:
    """(index, record) pairs: a JSON array (0-based record index) or JSONL (1-based line number)."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None
        return list(enumerate(data))
    return list(jsonl_records(path, text))


def make_id(question: str, choices: dict[str, str]) -> str:
    """Stable id from the question and its choices."""
    key = question.strip() + "\n" + json.dumps(choices, ensure_ascii=False, sort_keys=True)
    return "cflue-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _example(path: Path, where: int, rec: Any) -> Example:
    def need(field: str, types: tuple[type, ...] = (str,), optional: bool = False) -> Any:
        value = rec.get(field)
        if optional and (value is None or isinstance(value, str)):
            return value
        if not isinstance(value, types) or (isinstance(value, str) and not value.strip()):
            want = " or ".join(t.__name__ for t in types) + ("" if optional else ", non-empty")
            got = "nothing" if field not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
            raise DataError(path, where, field, f"expected {want}, got {got}")
        return value

    if not isinstance(rec, dict):
        raise DataError(path, where, None, f"expected a JSON object, got {type(rec).__name__}")
    qtype = need("task")
    if qtype not in QTYPES:
        raise DataError(path, where, "task", f"unknown 题型 {qtype!r}; expected one of {', '.join(QTYPES)}")
    question = need("question")
    try:
        choices = parse_choices(need("choices", (str, dict)))
    except ValueError as e:
        raise DataError(path, where, "choices", str(e)) from None
    answer = need("answer").strip()
    if not _LETTER_RUN.fullmatch(answer) or any(c not in choices for c in answer):
        raise DataError(path, where, "answer", f"{answer!r} is not letters among the choices {''.join(choices)}")
    return {
        "id": make_id(question, choices),
        "task": CflueTask.name,
        "question": question,
        "choices": choices,
        "gold": "".join(sorted(set(answer))),
        "qtype": qtype,
        "exam": need("名称", optional=True),
        "analysis": need("analysis", optional=True),
    }


@register("cflue_mcq", "cflue_mcq_r1", "dianjin/cflue", "cflue_knowledge", "aliyun/cflue")
class CflueTask(Task):
    """CFLUE knowledge MCQ: the gold is a set of option letters in `\\boxed{}`."""

    name = "cflue"
    boxed = True

    def load(self, path: str) -> list[Example]:
        """Read knowledge.json (or JSONL); a DataError's `line` is the 0-based record index of a
        JSON array, or the 1-based line number of a JSONL file."""
        file = Path(path)
        examples: list[Example] = []
        seen: dict[str, int] = {}
        for where, rec in _records(file):
            ex = _example(file, where, rec)
            seen[ex["id"]] = n = seen.get(ex["id"], 0) + 1
            if n > 1:  # the same question twice: keep both, ids stay stable in file order
                ex["id"] = f"{ex['id']}-{n}"
            examples.append(ex)
        return examples

    def messages(self, example: Example) -> Messages:
        qtype = QTYPES.get(example.get("qtype") or "", DEFAULT_QTYPE)
        try:
            choices = parse_choices(example.get("choices"))
        except ValueError:
            choices = {}
        options = "\n".join(f"{k}. {v}" for k, v in choices.items())
        content = PROMPT.format(question=example["question"].strip(), options=options, **qtype._asdict())
        return [{"role": "user", "content": content}]

    def extract(self, text: str, example: Example) -> str | None:
        return extract_letters(text, example)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        gold = gold_letters(example.get("gold"))
        if gold is None:
            return None, f"unparseable gold {example.get('gold')!r}"
        got = gold_letters(pred)
        if got == gold:
            return True, f"letters {got} match the gold"
        return False, f"predicted {got or pred!r}, gold {gold}"

    def reference(self, example: Example) -> str:
        return gold_letters(example["gold"]) or str(example["gold"])

    def chance(self, example: Example) -> float:
        """1/k for one answer among k options (判断题: 1/2); a 多项选择题's answer is any non-empty subset."""
        try:
            k = len(parse_choices(example.get("choices")))
        except ValueError:
            return 0.0
        return 1 / (2**k - 1) if example.get("qtype") == "多项选择题" else 1 / k
