"""FinCalc: synthetic, bilingual (zh/en) financial-calculation questions the project generates itself.

Upstream has no such set; we add it for a cheap, exactly checkable numeric-reasoning signal
(CFLUE is letters, FinQA needs a table and a judge). Every question comes from a generator
with a known answer (`dianjin.data.synthetic.fincalc`: `generate`, `write_jsonl`, `reasoning`),
so data, reward and evaluation agree by construction. This module is the task: the file schema
(`load`), the prompt, answer extraction and checking.

Examples carry `id, task, lang, form, kind, question, gold, choices (mcq), derivation,
answer_text, answer (the displayed value), value (exact), unit, params`, one JSON object a line.
Answers are rounded half-up to 2 dp. Percent answers are percent numbers: gold "12.34" for
12.34%, displayed as "12.34%". Forms: "open" (gold is the number, in `\\boxed{}`) and "mcq"
(options A-D: the answer and three mistake values; gold is the letter). Kinds (`KINDS`, the
generator's): pct_change, cagr, simple_interest, compound_interest, future_value, present_value,
annuity_fv, loan_payment, current_ratio, debt_to_equity, gross_margin, roe, dividend_yield,
break_even_units.

Prompt (ours; upstream published none): the question in its own language, the options for MCQ,
and the DianJin contract (reason in <think>, answer in <answer>, the number or letter in \\boxed{}).

Checking, open form: correct when the prediction is within a relative 1e-3 of the gold, or
rounds half-up to it at 2 dp. We do not call `numbers.numbers_match`, whose rounding uses the
gold's written decimals: gold 25.00 reads as 25.0 and would accept 25.4. For a percent gold a
fraction without "%" also counts (0.1234 for 12.34); for a non-percent gold a "%" value counts
divided by 100 (75% for 0.75); when the unit is unknown (a bare `dianjin score` line) both do.
MCQ form: the letter (`extract_choice`: the option-letter reader every letter task shares,
`dianjin.tasks.text.option_letters`, one letter; a bare number equal to one option's value also
names that option, "12.34" for "12.34%").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records
from dianjin.tasks.numeric import numbers_match, parse_number_ex
from dianjin.tasks.text import option_letters, unwrap_latex

LANGS = ("zh", "en")
FORMS = ("open", "mcq")
LETTERS = "ABCD"
REL_TOL = 1e-3
PLACES = 2
# Units: "%" (value is a percent number), "money" (元 / $), "ratio", "units" (件 / units).
UNITS = ("%", "money", "ratio", "units")
# What was computed; the generator has one function per kind, in this order (it checks at import).
KINDS = (
    "pct_change",
    "cagr",
    "simple_interest",
    "compound_interest",
    "future_value",
    "present_value",
    "annuity_fv",
    "loan_payment",
    "current_ratio",
    "debt_to_equity",
    "gross_margin",
    "roe",
    "dividend_yield",
    "break_even_units",
)


# --- file schema --------------------------------------------------------------------------------
def _validate(path: Path, line: int, rec: Any) -> Example:
    if not isinstance(rec, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")

    def need(name: str, ok: Callable[[Any], bool], want: str) -> Any:
        value = rec.get(name)
        if not ok(value):
            got = "nothing" if name not in rec else repr(value)[:60]
            raise DataError(path, line, name, f"expected {want}, got {got}")
        return value

    def nonempty(v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())

    need("id", nonempty, "a non-empty string")
    need("lang", lambda v: v in LANGS, f"one of {LANGS}")
    form = need("form", lambda v: v in FORMS, f"one of {FORMS}")
    need("kind", lambda v: v in KINDS, "a known kind: " + ", ".join(KINDS))
    need("question", nonempty, "a non-empty string")
    need("derivation", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of strings")
    need("answer_text", lambda v: isinstance(v, str), "a string")
    if "unit" in rec:
        need("unit", lambda v: v in UNITS, f"one of {UNITS}")
    if form == "mcq":
        choices = need(
            "choices",
            lambda v: isinstance(v, dict) and list(v) == list(LETTERS) and all(nonempty(t) for t in v.values()),
            "options A-D as {letter: text}",
        )
        need("gold", lambda v: v in choices, "a letter among the choices")
    else:
        need(
            "gold",
            lambda v: (
                (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                or (isinstance(v, str) and parse_number_ex(v) is not None)
            ),
            "a number",
        )
    return {**rec, "task": FinCalcTask.name}


def load(path: str | Path) -> list[Example]:
    """Read FinCalc JSONL (as the generator's `write_jsonl` writes it); DataError names the line and field."""
    path = Path(path)
    return [_validate(path, lineno, rec) for lineno, rec in jsonl_records(path)]


# --- prompt -------------------------------------------------------------------------------------
PROMPTS: dict[tuple[str, str], str] = {
    (
        "zh",
        "open",
    ): "请解答下面的金融计算题。\n\n{question}\n\n请先在<think></think>中逐步推理，然后在<answer></answer>中给出答案，"
    "并把最终数值写在\\boxed{{}}中（只写数字，不带单位；百分比只写百分数的数值，例如 12.34% 写作 \\boxed{{12.34}}）。",
    (
        "zh",
        "mcq",
    ): "请解答下面的金融计算选择题（只有一个正确选项）。\n\n{question}\n{options}\n\n请先在<think></think>中逐步推理，"
    "然后在<answer></answer>中给出答案，并把正确选项的字母写在\\boxed{{}}中（例如 \\boxed{{A}}）。",
    ("en", "open"): "Solve the following financial calculation problem.\n\n{question}\n\nThink step by step inside "
    "<think></think>, then give your answer inside <answer></answer> with the final number in \\boxed{{}} "
    "(the number only, no units; for a percentage write the percent number, e.g. 12.34% as \\boxed{{12.34}}).",
    (
        "en",
        "mcq",
    ): "Solve the following financial calculation problem (exactly one option is correct).\n\n{question}\n{options}\n\n"
    "Think step by step inside <think></think>, then give your answer inside <answer></answer> with the "
    "letter of the correct option in \\boxed{{}} (e.g. \\boxed{{A}}).",
}


# --- answer extraction and checking -------------------------------------------------------------
# Markdown and inline-maths delimiters around the number (LaTeX wrappers go with `unwrap_latex`).
_STRIP = re.compile(r"[*$`]|\\[()\[\]]")
# Answer phrases after which the number sits (free-text fallback of the open form).
_PHRASE_NUMBER = re.compile(
    r"(?:最终)?答案\s*(?:是|为)?\s*[:：]?|(?:final\s+)?answer\s*(?:is|:)|\bresult\s+is", re.IGNORECASE
)
_CLAUSE_END = re.compile(r"[。\n;；]|\.\s")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[-fmt.TAIL_CHARS :])
    return _STRIP.sub(" ", unwrap_latex(text)).strip()


def _value(text: str) -> float | None:
    got = parse_number_ex(text)
    return None if got is None else got[0]


def extract_choice(text: str, choices: dict[str, str] | None = None) -> str | None:
    """The option letter named by an answer text ("B", "(B)", "选B", "B. 12.34%", "答案是 B", "which is
    option B", or the value of exactly one option: "12.34%", "12.34"); None when it names none."""
    return option_letters(text, LETTERS, choices=choices, value=_value)


def extract_number(text: str) -> str | None:
    """The predicted number as text ("12.34", "12.34%"): after the last answer phrase, else the last number."""
    text = _clean(text)
    segment = text
    phrases = list(_PHRASE_NUMBER.finditer(text[-4096:]))
    if phrases:
        rest = text[-4096:][phrases[-1].end() :][:200]
        end = _CLAUSE_END.search(rest)
        segment = rest[: end.start()] if end else rest
        if parse_number_ex(segment) is None:
            segment = text
    got = parse_number_ex(segment)
    if got is None:
        return None
    value, pct = got
    return f"{value!r}%" if pct else repr(value)


def _is_mcq(example: Example) -> bool:
    if example.get("form") in FORMS:
        return example["form"] == "mcq"
    return bool(example.get("choices")) or bool(re.fullmatch(r"\s*[A-D]\s*", str(example.get("gold", ""))))


def _gold_number(example: Example) -> tuple[float, bool | None] | None:
    """(gold value, gold is a percent: True/False, None when unknown)."""
    gold, unit = example.get("gold"), example.get("unit")
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        value, pct = float(gold), False
    else:
        got = parse_number_ex(str(gold)) if gold is not None else None
        if got is None:
            return None
        value, pct = got
    if unit in UNITS:
        return value, unit == "%"
    return value, (True if pct else None)


def values_match(pred: float, pred_pct: bool, gold: float, gold_pct: bool | None) -> bool:
    """FinCalc's numeric check: `numbers_match` at 2 dp, with percent scaling only where the unit
    allows it (0.1234 for a 12.34% gold, 75% for a 0.75 ratio; never x100 for money)."""
    scaled = [pred]
    if gold_pct is not False and not pred_pct:
        scaled.append(pred * 100)  # 0.1234 for 12.34%
    if gold_pct is not True and pred_pct:
        scaled.append(pred / 100)  # 75% for a ratio of 0.75
    return any(numbers_match(p, gold, rel_tol=REL_TOL, percent_ambiguity=False, places=PLACES) for p in scaled)


@register("dianjin/fincalc", "fin_calc", "fincalc_open", "fincalc_mcq")
class FinCalcTask(Task):
    """Synthetic financial calculations: a 2-dp number (open) or an option letter (mcq) in \\boxed{}."""

    name = "fincalc"
    boxed = True

    def load(self, path: str) -> list[Example]:
        return load(path)

    def messages(self, example: Example) -> Messages:
        lang = str(example["lang"]) if example.get("lang") in LANGS else "zh"
        form = "mcq" if _is_mcq(example) else "open"
        options = "\n".join(f"{k}. {v}" for k, v in (example.get("choices") or {}).items())
        content = PROMPTS[(lang, form)].format(question=str(example.get("question", "")).strip(), options=options)
        return [{"role": "user", "content": content}]

    def extract(self, text: str, example: Example) -> str | None:
        if _is_mcq(example):
            return extract_choice(text, example.get("choices") or None)
        return extract_number(text)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        if _is_mcq(example):
            letter = str(example.get("gold", "")).strip().upper()
            if letter not in LETTERS:
                return None, f"unparseable gold {example.get('gold')!r}"
            chosen = extract_choice(str(pred), example.get("choices") or None)
            return (chosen == letter), (
                f"letter {chosen} matches the gold"
                if chosen == letter
                else f"predicted {chosen or pred!r}, gold {letter}"
            )
        gold = _gold_number(example)
        if gold is None:
            return None, f"unparseable gold {example.get('gold')!r}"
        got = parse_number_ex(str(pred))
        if got is None:
            return False, f"no number in prediction {str(pred)[:40]!r}"
        ok = values_match(got[0], got[1], gold[0], gold[1])
        return ok, f"{'matches' if ok else 'differs from'} gold {example.get('gold')} (pred {pred})"

    def reference(self, example: Example) -> str:
        return str(example["gold"]).strip()
