"""MATH-500: 500 competition maths problems, checked with HF math-verify.

Data: `openai/prm800k` `prm800k/math_splits/test.jsonl` (mirrored as `HuggingFaceH4/MATH-500`), one
JSON object per line with `problem`, `solution`, `answer`, `subject`, `level`, `unique_id`.
An example's `id` is `unique_id` (e.g. "test/precalculus/807.json") and its `gold` is `answer`.

Prompt: DianJin-R1 evaluates MATH-500 "through EvalScope" and never published its prompts. EvalScope
(2025-04) sends `{problem}\\nPlease reason step by step, and put your final answer within \\boxed{}.`;
ours is that sentence adapted to the `<think>/<answer>` format (see `PROMPT`).

Extraction (`extract`), on each candidate `Task.score` hands over (box content, answer block, text
after the reasoning), first hit wins:
1. the content of the last `\\boxed{}` in the text;
2. the last "answer is X" / "Answer: X" / "final answer: X" / "答案是 X" phrase (X = the first `$..$` on that line,
   else the rest of the line);
3. the last inline maths span (`$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`) in the final 1,000 characters;
4. the whole text, when it is at most 1,000 characters (a bare answer such as `<answer>30</answer>`).
A trailing full stop and surrounding `$` are dropped. EvalScope falls back to the last number in the
text; we do not, because a stray number in prose scoring as an answer is worse than no answer.

Checking (`check`): math-verify 0.9.0, `verify(parse(gold), parse(pred))` with the GOLD FIRST (the
function is not symmetric). Both sides are wrapped as `$\\boxed{..}$` before parsing, since math-verify
only finds answers inside maths delimiters. What that accepts, e.g.: `\\frac{1}{2}` = `0.5` = `1/2`;
`10\\%` = `0.1`, and also `10` = `10\\%` (math-verify compares percentages leniently); `x=3` = `3`;
`90^\\circ` = `90`; `\\$18.90` = `18.9`; `\\text{(C)}` = `C` = `(C)`; `5.4 \\text{ cents}` = `5.4`;
`1,-2` = `-2,1` (comma lists are sets). See tests/test_task_math500.py for the table.
A gold that math-verify cannot turn into a sympy object (all 500 real ones can) gives
`(None, reason)`, never True. Parsed golds are cached (`lru_cache`).

Time limits: math-verify's own timeouts use `signal.alarm`, which only works in the main thread and
would cancel a timer someone else armed (e.g. pytest-timeout). So we pass its timeouts
(`parsing_timeout`, `timeout_seconds`) only in the main thread when no `ITIMER_REAL` is armed, and
None otherwise. In every thread a guard (`sympy_bomb`) first rejects, without calling sympy,
predictions that are too long (> 1,000 chars), too deeply nested (> 50 brackets) or that ask sympy
for a huge computation: power towers, exponents >= 1000 (or > 12 on a bracketed base with variables,
which sympy expands), factorials or binomials of 6-digit numbers or of powers. A correct answer in
such a form (rare in MATH) scores wrong. The guard is a heuristic: off the main thread, a crafted
short expression can still take seconds (e.g. a product of many bracketed sums). math_verify is imported lazily so `dianjin.tasks` imports fast.
"""

from __future__ import annotations

import re
import signal
import threading
from functools import lru_cache
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records

PROMPT = (
    "{problem}\n"
    "Please reason step by step inside <think></think>, then give your final answer inside "
    "<answer></answer>, and put the final answer within \\boxed{{}}."
)

REQUIRED_FIELDS = ("problem", "answer", "unique_id")
OPTIONAL_FIELDS = ("solution", "subject", "level")

# Guard limits (see the module docstring).
MAX_PRED_CHARS = 1_000
MAX_NESTING = 50
MAX_EXPONENT = 999  # any base
MAX_GROUP_EXPONENT = 12  # a bracketed base with variables: (a+b+c+d)^{20} takes seconds to expand
MAX_FACTORIAL_DIGITS = 5  # 999999! takes seconds, 99999! does not
# math-verify time limits (seconds, whole numbers: they feed signal.alarm), main thread only.
PARSE_TIMEOUT_S = 2
VERIFY_TIMEOUT_S = 2

_PHRASE = re.compile(r"(?:(?i:answer)\s*(?:(?i:is)\s*[:：]?|[:：])|答案\s*(?:[是为]\s*[:：]?|[:：]))[ \t]*([^\n]+)")
_INLINE_MATH = re.compile(
    r"\$\$([^$]{1,500})\$\$|(?<![\\$])\$((?:[^$\\]|\\.){1,500})\$|\\\((.{1,500}?)\\\)|\\\[(.{1,500}?)\\\]",
    re.DOTALL,
)
_MATH_TAIL = 1_000
_BIG_OPS = re.compile(r"(?<!\\)!|\\[dt]?binom|\\choose")
_DIGITS = re.compile(r"\d+")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_VARIABLE = re.compile(r"[A-Za-z]")


def _clean(answer: str) -> str | None:
    """Strip markdown bold, surrounding `$` and a trailing full stop; None when nothing is left."""
    s = answer.strip().removeprefix("**").removesuffix("**").strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        s = s.strip("$").strip()
    s = s[:-1].rstrip() if s.endswith(".") else s
    return s or None


def _last_inline_math(text: str) -> str | None:
    tail = text[-_MATH_TAIL:]
    last = None
    for m in _INLINE_MATH.finditer(tail):
        last = next(g for g in m.groups() if g is not None)
    return last


def _exponents(s: str) -> list[tuple[str, str]]:
    """(base's last character, exponent text) for every `^` in a LaTeX string (len <= 1,000)."""
    out = []
    for i, ch in enumerate(s):
        if ch != "^":
            continue
        j = i + 1
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "{":
            depth, k = 0, j
            while k < len(s):
                depth += {"{": 1, "}": -1}.get(s[k], 0)
                if depth == 0:
                    break
                k += 1
            exp = s[j + 1 : k]
        elif j < len(s) and s[j].isdigit():
            k = j
            while k < len(s) and s[k].isdigit():
                k += 1
            exp = s[j:k]
        else:
            exp = s[j : j + 1]
        b = i - 1
        while b >= 0 and s[b] == " ":
            b -= 1
        out.append((s[b] if b >= 0 else "", exp))
    return out


def sympy_bomb(pred: str) -> str | None:
    """Why `pred` must not reach sympy (too long, too nested, a huge computation); None when safe."""
    if len(pred) > MAX_PRED_CHARS:
        return f"prediction too long to verify ({len(pred)} chars > {MAX_PRED_CHARS})"
    depth = deepest = 0
    for ch in pred:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        return f"prediction nested too deeply ({deepest} > {MAX_NESTING} brackets)"
    symbolic = _VARIABLE.search(_COMMAND.sub("", pred)) is not None
    for base, exp in _exponents(pred):
        if "^" in exp:
            return "power tower in prediction"
        big = max((int(d) for d in _DIGITS.findall(exp)), default=0)
        if big > MAX_EXPONENT or (symbolic and base in ")]}" and big > MAX_GROUP_EXPONENT):
            return f"exponent {big} too large to verify"
    if _BIG_OPS.search(pred) and ("^" in pred or any(len(d) > MAX_FACTORIAL_DIGITS for d in _DIGITS.findall(pred))):
        return "factorial or binomial too large to verify"
    return None


def _alarm_ok() -> bool:
    """Whether math-verify may use signal.alarm: main thread, and no one else's timer armed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0


def _parse(latex: str, timed: bool) -> list[Any]:
    from math_verify import parse
    from math_verify.errors import TimeoutException

    try:
        return parse(f"$\\boxed{{{latex}}}$", parsing_timeout=PARSE_TIMEOUT_S if timed else None)
    except (Exception, TimeoutException):  # math-verify catches most; never let one escape
        return []


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[Any, ...]:
    """The gold's parses; empty unless math-verify made a sympy object of it (its fallback is the
    raw string, which would only ever match the identical string)."""
    parsed = _parse(gold, _alarm_ok())
    return tuple(parsed) if any(not isinstance(p, str) for p in parsed) else ()


@register("math", "math-500", "math_500", "huggingfaceh4/math-500", "ai-modelscope/math-500")
class Math500(Task):
    name = "math500"
    boxed = True

    def load(self, path: str) -> list[Example]:
        examples: list[Example] = []
        seen: dict[str, int] = {}
        for lineno, rec in jsonl_records(path):
            if not isinstance(rec, dict):
                raise DataError(path, lineno, None, f"expected a JSON object, got {type(rec).__name__}")
            for field in REQUIRED_FIELDS:
                value = rec.get(field)
                if not isinstance(value, str) or not value.strip():
                    raise DataError(path, lineno, field, "missing or not a non-empty string")
            uid = rec["unique_id"]
            if uid in seen:
                raise DataError(path, lineno, "unique_id", f"duplicate {uid!r} (first on line {seen[uid]})")
            seen[uid] = lineno
            ex: Example = {"id": uid, "task": self.name, "question": rec["problem"], "gold": rec["answer"]}
            ex.update({k: rec[k] for k in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS) if k in rec})
            examples.append(ex)
        return examples

    def messages(self, example: Example) -> Messages:
        return [{"role": "user", "content": PROMPT.format(problem=example["question"])}]

    def extract(self, text: str, example: Example) -> str | None:
        text = text[-fmt.TAIL_CHARS :]  # final answers live near the end; bounds the regex work
        box = fmt.last_boxed(text)
        if box is not None:
            return _clean(box)
        last = None
        for m in _PHRASE.finditer(text):
            last = m
        if last is not None:
            rest = last.group(1)
            math = _INLINE_MATH.search(rest)
            found = _clean(next(g for g in math.groups() if g is not None) if math else rest)
            if found:
                return found
        math = _last_inline_math(text)
        if math is not None and _clean(math):
            return _clean(math)
        if len(text.strip()) <= MAX_PRED_CHARS:
            return _clean(text)
        return None

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        from math_verify import verify
        from math_verify.errors import TimeoutException

        gold = str(example.get("gold", "")).strip()
        gold_parsed = _parse_gold(gold) if gold else ()
        if not gold_parsed:
            return None, f"gold {gold[:80]!r} is not parseable by math-verify"
        bomb = sympy_bomb(pred)
        if bomb:
            return False, bomb
        timed = _alarm_ok()
        pred_parsed = _parse(pred, timed)
        if not pred_parsed:
            return False, "prediction not parseable by math-verify"
        try:
            ok = verify(list(gold_parsed), pred_parsed, timeout_seconds=VERIFY_TIMEOUT_S if timed else None)
        except (Exception, TimeoutException) as e:
            return False, f"math-verify failed: {type(e).__name__}"
        return ok, "math-verify: equivalent" if ok else "math-verify: not equivalent"

    def reference(self, example: Example) -> str:
        return str(example["gold"])
