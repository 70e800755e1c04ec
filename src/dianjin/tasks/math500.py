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

Time limits, the same in every thread: sympy can run for hours on a short answer, math-verify's own
timeouts use `signal.alarm` (main thread only; it would also cancel a timer someone else armed, e.g.
pytest-timeout's), and verl scores in executor threads. So:
1. a guard (`sympy_bomb`) first refuses, without calling sympy, predictions that are too long
   (> 1,000 chars), too deeply nested (> 50 brackets) or that ask sympy for a huge computation: power
   towers, exponents >= 1000 (or > 12 on a bracketed base with variables), powers of about 50,000
   digits or more, expansions of over 100 monomials (`(a+b+c+d+e+f+g)^{12}`, a product of many
   bracketed sums), factorials, binomials or `\\Gamma` of 5-digit numbers, of powers or of each other
   (`(10!)!`). Such a prediction scores wrong (a correct answer in such a form is rare in MATH);
2. every math-verify call (gold parse, prediction parse, verify) runs in a worker process
   (`dianjin.tasks.bounded`) with a time limit of `VERIFY_SOFT_S` seconds; when it is hit, or the
   worker dies, the verdict is `(None, "not verified: ...")`, since a load-dependent limit cannot
   say the answer is wrong (`dianjin_reward` then gives None, which TRL ignores; verl's
   `compute_score` gives 0). The guard keeps such cases rare: the limit is the bound for what it
   misses, such as `\\int_0^1 \\sin(x^3)\\cos(x^5) dx` (5 s).
math_verify is only imported in the workers (sympy stays out of this process), so `dianjin.tasks`
imports fast; a missing math_verify still raises ImportError here.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from functools import lru_cache
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import bounded, register
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
MAX_POWER_DIGITS = 50_000  # a number's power: 900-digit^999 (900k digits) takes 0.3 s, 20-digit^999 2 ms
MAX_EXPANSION_TERMS = 100  # (a+b)(c+d)...(m+n), 128 terms, takes 0.3 s; (a+b+c+d+e+f+g)^{12} hangs
MAX_FACTORIAL_DIGITS = 4  # 9999! and \binom{9999}{5000} take ms, \binom{99999}{50000} and \Gamma(99999) hang
# Time limit of one math-verify call (parse and verify), in a worker process; see `dianjin.tasks.bounded`.
VERIFY_SOFT_S = 3.0

_PHRASE = re.compile(r"(?:(?i:answer)\s*(?:(?i:is)\s*[:：]?|[:：])|答案\s*(?:[是为]\s*[:：]?|[:：]))[ \t]*([^\n]+)")
_INLINE_MATH = re.compile(
    r"\$\$([^$]{1,500})\$\$|(?<![\\$])\$((?:[^$\\]|\\.){1,500})\$|\\\((.{1,500}?)\\\)|\\\[(.{1,500}?)\\\]", re.DOTALL
)
_MATH_TAIL = 1_000
_BIG_OPS = re.compile(r"(?<![\\!])!|\\[dt]?binom|\\choose|\\Gamma\b")
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


def _brackets(s: str) -> tuple[dict[int, int], int]:
    """Each bracket's partner position (both ways; any opener matches any closer, as in `[2, \\infty)`)
    and the deepest nesting."""
    pair: dict[int, int] = {}
    stack: list[int] = []
    deepest = 0
    for i, ch in enumerate(s):
        if ch in "([{":
            stack.append(i)
            deepest = max(deepest, len(stack))
        elif ch in ")]}" and stack:
            j = stack.pop()
            pair[i], pair[j] = j, i
    return pair, deepest


def _skip_spaces(s: str, i: int, step: int = 1) -> int:
    while 0 <= i < len(s) and s[i] == " ":
        i += step
    return i


def _exponent_at(s: str, i: int, pair: dict[int, int]) -> str:
    """The exponent text of the `^` at `i`: a `{..}` group, a digit run or one character."""
    j = _skip_spaces(s, i + 1)
    if j < len(s) and s[j] == "{":
        return s[j + 1 : pair.get(j, len(s))]
    k = j
    while k < len(s) and s[k].isdigit():
        k += 1
    return s[j:k] if k > j else s[j : j + 1]


def _base_digits(s: str, b: int, pair: dict[int, int]) -> int:
    """Digits of the number a power's base ends with at `b` (of the longest number in a bracketed base)."""
    if b in pair and s[b] in ")]}":
        return max((len(d) for d in _DIGITS.findall(s[pair[b] : b])), default=1)
    k = b
    while k >= 0 and s[k].isdigit():
        k -= 1
    return max(1, b - k)


def _summands(body: str) -> int:
    """Terms of a bracket's content: top-level binary + and -, the largest over comma-separated parts."""
    depth, terms, best, prev = 0, 1, 1, ","
    for ch in body:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch == ",":
            best, terms = max(best, terms), 1
        elif depth == 0 and ch in "+-" and prev not in "+-*/^_=,":
            terms += 1
        if ch != " ":
            prev = ch
    return max(best, terms)


def _expansion(s: str, pair: dict[int, int]) -> int:
    """A rough bound on the monomials sympy's expansion of `s` may produce: the product, over the
    bracketed groups with variables, of the monomials of (t summands)^e; it stops once past the limit."""
    total = 1
    for open_, close in pair.items():
        if open_ > close or not _VARIABLE.search(_COMMAND.sub("", s[open_ + 1 : close])):
            continue
        after = _skip_spaces(s, close + 1)
        exp = _exponent_at(s, after, pair) if after < len(s) and s[after] == "^" else "1"
        e = int(exp) if exp.isdigit() and len(exp) <= 3 else 1
        total *= math.comb(_summands(s[open_ + 1 : close]) + e - 1, e)
        if total > MAX_EXPANSION_TERMS:
            break
    return total


def _factorial_arguments(s: str, pair: dict[int, int]) -> list[str]:
    """The argument text of each factorial-like operator (`n!`, `(..)!`, `\\binom{..}{..}`, `{n \\choose k}`,
    `\\Gamma(..)`)."""
    args = []
    for m in _BIG_OPS.finditer(s):
        op = m.group()
        if op == "!":
            b = _skip_spaces(s, m.start() - 1, -1)
            if b in pair and s[b] in ")]}":
                args.append(s[pair[b] + 1 : b])
        elif op == "\\choose":
            opener = max((o for o, c in pair.items() if o < m.start() < c), default=None)
            if opener is not None:
                inner = s[opener + 1 : pair[opener]]
                args.append(inner.replace("\\choose", " ", 1))
        else:  # \binom{n}{k}, \Gamma(n): the groups that follow
            k = _skip_spaces(s, m.end())
            for _ in range(2 if "binom" in op else 1):
                if s.startswith("\\left", k):
                    k = _skip_spaces(s, k + 5)
                if k not in pair or s[k] not in "([{":
                    break
                args.append(s[k + 1 : pair[k]])
                k = _skip_spaces(s, pair[k] + 1)
    return args


def sympy_bomb(pred: str) -> str | None:
    """Why `pred` must not reach sympy (too long, too nested, a huge computation); None when safe."""
    if len(pred) > MAX_PRED_CHARS:
        return f"prediction too long to verify ({len(pred)} chars > {MAX_PRED_CHARS})"
    pair, deepest = _brackets(pred)
    if deepest > MAX_NESTING:
        return f"prediction nested too deeply ({deepest} > {MAX_NESTING} brackets)"
    symbolic = _VARIABLE.search(_COMMAND.sub("", pred)) is not None
    for i, ch in enumerate(pred):
        if ch != "^":
            continue
        exp, b = _exponent_at(pred, i, pair), _skip_spaces(pred, i - 1, -1)
        if "^" in exp:
            return "power tower in prediction"
        big = max((int(d) for d in _DIGITS.findall(exp)), default=0)
        base = pred[b] if b >= 0 else ""
        if big > MAX_EXPONENT or (symbolic and base in ")]}" and big > MAX_GROUP_EXPONENT):
            return f"exponent {big} too large to verify"
        if (digits := big * _base_digits(pred, b, pair)) > MAX_POWER_DIGITS:
            return f"power too large to verify (about {digits} digits)"
    if symbolic and _expansion(pred, pair) > MAX_EXPANSION_TERMS:
        return f"expansion too large to verify (over {MAX_EXPANSION_TERMS} terms)"
    if _BIG_OPS.search(pred):
        if "^" in pred or any(len(d) > MAX_FACTORIAL_DIGITS for d in _DIGITS.findall(pred)):
            return "factorial or binomial too large to verify"
        if any(_BIG_OPS.search(arg) for arg in _factorial_arguments(pred, pair)):
            return "nested factorial or binomial too large to verify"
    return None


# --- math-verify, in a worker process (see `dianjin.tasks.bounded`) -----------------------------
def _parse(latex: str) -> list[Any]:
    from math_verify import parse

    try:
        return parse(f"$\\boxed{{{latex}}}$", parsing_timeout=None)  # the worker's own limit applies
    except Exception:  # noqa: BLE001 - math-verify catches most; never let one escape
        return []


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[Any, ...]:
    """The gold's parses; empty unless math-verify made a sympy object of it (its fallback is the
    raw string, which would only ever match the identical string). Worker side."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout is disabled" warning
    parsed = _parse(gold)
    return tuple(parsed) if any(not isinstance(p, str) for p in parsed) else ()


def gold_job(gold: str) -> bool:
    """Worker side: whether math-verify turns `gold` into a sympy object."""
    return bool(_parse_gold(gold))


def verify_job(gold: str, pred: str) -> tuple[bool | None, str]:
    """Worker side: `check`'s verdict for a gold that parses and a prediction past the guard."""
    from math_verify import verify

    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return None, f"gold {gold[:80]!r} is not parseable by math-verify"
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return False, "prediction not parseable by math-verify"
    try:
        ok = verify(list(gold_parsed), pred_parsed, timeout_seconds=None)
    except Exception as e:  # noqa: BLE001 - math-verify catches most; report the rest as not equivalent
        return False, f"math-verify failed: {type(e).__name__}"
    return ok, "math-verify: equivalent" if ok else "math-verify: not equivalent"


@lru_cache(maxsize=1)  # once found, not looked up again (find_spec costs ~80 us); a miss is not cached
def _require_math_verify() -> None:
    """ImportError naming math_verify when it is missing (as the in-process import used to raise;
    `dianjin.verl_reward.preflight` reports it), without importing sympy into this process."""
    if importlib.util.find_spec("math_verify") is None:
        raise ModuleNotFoundError("No module named 'math_verify'", name="math_verify")


@lru_cache(maxsize=4096)
def _gold_ok(gold: str) -> bool:
    """Whether the gold parses (asked once per gold; a time-out raises, so it is not cached)."""
    return bool(bounded.call(f"{__name__}:gold_job", gold, soft_s=VERIFY_SOFT_S))


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
            math = _INLINE_MATH.search(rest[:_MATH_TAIL])  # each "\(" may scan 500 chars: bound the starts
            found = _clean(next(g for g in math.groups() if g is not None) if math else rest)
            if found:
                return found
        inline = _last_inline_math(text)
        if inline is not None and _clean(inline):
            return _clean(inline)
        if len(text.strip()) <= MAX_PRED_CHARS:
            return _clean(text)
        return None

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        _require_math_verify()
        gold = str(example.get("gold", "")).strip()
        try:
            if not (gold and _gold_ok(gold)):
                return None, f"gold {gold[:80]!r} is not parseable by math-verify"
            bomb = sympy_bomb(pred)
            if bomb:
                return False, bomb
            return bounded.call(f"{__name__}:verify_job", gold, pred, soft_s=VERIFY_SOFT_S)
        except bounded.BoundedError as e:
            return None, f"not verified: {e}"

    def reference(self, example: Example) -> str:
        return str(example["gold"])
