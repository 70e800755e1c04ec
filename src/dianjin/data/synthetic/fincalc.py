"""FinCalc's generator: bilingual (zh/en) financial-calculation questions with known answers.

The task (`dianjin.tasks.fincalc`: file schema, prompt, extraction, checking) reads what this writes.
Generators (`GENERATORS`, kind -> `fn(rng, lang) -> Problem`, in `fincalc_problems`) draw the
inputs, call a pure formula function (`pct_change`, `cagr`, ... in `fincalc_formulas`, also usable
on their own) and write the question, the step-by-step derivation (formula, substitution, result:
the offline "reasoning") and the values a student gets from common mistakes (MCQ distractors).
This module turns them into examples and re-exports the names of both (`fincalc.cagr`,
`fincalc.GENERATORS`, `fincalc.display`, ...). Kinds: pct_change, cagr, simple_interest,
compound_interest, future_value, present_value, annuity_fv, loan_payment, current_ratio,
debt_to_equity, gross_margin, roe, dividend_yield, break_even_units. The kind names, compounding
periods and rounding instructions are package data (tables/fincalc.json).

Answers are rounded half-up to 2 dp. Percent answers are percent numbers: gold "12.34" for
12.34%, displayed as "12.34%". Forms: "open" (gold is the number, in `\\boxed{}`) and "mcq"
(options A-D: the answer and three mistake values; gold is the letter).

`generate(n, seed, ...)` is deterministic: example i depends only on (seed, i), ids are
`fincalc-<seed>-<i>`, and kinds, languages and forms cycle so every combination appears in the
first len(kinds)*len(langs)*len(forms) examples. Examples carry `id, task, lang, form, kind,
question, gold, choices (mcq), derivation, answer_text, answer (the displayed value), value
(exact), unit, params`; `write_jsonl` writes them as JSONL (the task's `load` reads them back).
`reasoning(example)` turns the derivation into step-by-step text (the offline reference teacher).
"""

from __future__ import annotations

import random
from pathlib import Path

from dianjin.data.synthetic.common import distinct_shown, simple_interest, tr
from dianjin.data.synthetic.fincalc_formulas import (
    FORMULAS,
    annuity_fv,
    break_even_units,
    cagr,
    compound_interest,
    current_ratio,
    debt_to_equity,
    dividend_yield,
    future_value,
    gross_margin,
    loan_payment,
    pct_change,
    present_value,
    roe,
)
from dianjin.data.synthetic.fincalc_problems import GENERATORS, KIND_NAMES, Problem, display, format_gold
from dianjin.files import write_jsonl as _atomic_write_jsonl
from dianjin.tasks.base import Example
from dianjin.tasks.fincalc import FORMS, LANGS, LETTERS, FinCalcTask

__all__ = [
    "FORMULAS",
    "GENERATORS",
    "KIND_NAMES",
    "Problem",
    "annuity_fv",
    "break_even_units",
    "cagr",
    "compound_interest",
    "current_ratio",
    "debt_to_equity",
    "display",
    "dividend_yield",
    "format_gold",
    "future_value",
    "generate",
    "gross_margin",
    "loan_payment",
    "make_example",
    "pct_change",
    "present_value",
    "reasoning",
    "roe",
    "simple_interest",
    "write_jsonl",
]


# --- examples -----------------------------------------------------------------------------------
def _distractors(problem: Problem, lang: str) -> list[str]:
    """Three displayed wrong values: the mistakes first, then ±10-50% perturbations, all distinct."""
    v = problem.value
    candidates = [*problem.mistakes, v * 1.1, v * 0.9, v * 1.25, v * 0.8, v * 1.5]
    return distinct_shown(v, candidates, lambda x: display(x, problem.unit, lang), 4)[1:]


def _answer_text(target: str, shown: str, lang: str, letter: str | None) -> str:
    if letter is None:
        return tr(lang, f"{target}为 {shown}。", f"The {target} is {shown}.")
    return tr(lang, f"{target}为 {shown}，对应选项 {letter}。", f"The {target} is {shown}, which is option {letter}.")


def make_example(kind: str, lang: str, form: str, rng: random.Random, ex_id: str) -> Example:
    """One example of a given kind, language and form, drawn with `rng`."""
    problem = GENERATORS[kind](rng, lang)
    shown = display(problem.value, problem.unit, lang)
    ex: Example = {
        "id": ex_id,
        "task": FinCalcTask.name,
        "lang": lang,
        "form": form,
        "kind": kind,
        "question": problem.question,
    }
    letter = None
    if form == "mcq":
        options = [shown, *_distractors(problem, lang)]
        rng.shuffle(options)
        ex["choices"] = dict(zip(LETTERS, options))
        letter = LETTERS[options.index(shown)]
        ex["gold"] = letter
    else:
        ex["gold"] = format_gold(problem.value)
    ex.update(
        derivation=list(problem.derivation),
        answer_text=_answer_text(problem.target, shown, lang, letter),
        answer=shown,
        value=problem.value,
        unit=problem.unit,
        params=dict(problem.params),
    )
    return ex


def _check_names(given: tuple[str, ...] | list[str], valid: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
    given = tuple(given)
    bad = [g for g in given if g not in valid]
    if bad or not given:
        raise ValueError(f"unknown or no {what} {bad or list(given)}; expected some of: {', '.join(valid)}")
    return given


def generate(n: int, seed: int, langs=LANGS, forms=FORMS, kinds=None) -> list[Example]:
    """`n` examples, deterministic per seed; kinds, then languages, then forms cycle."""
    kinds = _check_names(kinds or tuple(GENERATORS), tuple(GENERATORS), "kinds")
    langs = _check_names(langs, LANGS, "langs")
    forms = _check_names(forms, FORMS, "forms")
    out = []
    for i in range(n):
        k = len(kinds)
        kind, lang = kinds[i % k], langs[(i // k) % len(langs)]
        form = forms[(i // (k * len(langs))) % len(forms)]
        out.append(make_example(kind, lang, form, random.Random(f"fincalc:{seed}:{i}"), f"fincalc-{seed}-{i}"))
    return out


def write_jsonl(examples: list[Example], path: str | Path) -> None:
    _atomic_write_jsonl(path, examples)  # atomic: a crash never leaves a half-written file


# --- reasoning text -----------------------------------------------------------------------------
def reasoning(example: Example) -> str:
    """The derivation as step-by-step reasoning in the example's language (offline teacher text)."""
    lang = example.get("lang", "zh")
    kind_name = KIND_NAMES.get(example.get("kind", ""), ("", ""))[0 if lang == "zh" else 1]
    lines = [
        tr(
            lang,
            f"这是一道{kind_name}计算题，按公式逐步计算。",
            f"This is a {kind_name} calculation; work through the formula step by step.",
        )
    ]
    for i, step in enumerate(example.get("derivation") or [], 1):
        lines.append(tr(lang, f"第{i}步：{step}", f"Step {i}: {step}"))
    if example.get("form") == "mcq" and example.get("choices"):
        letter = str(example["gold"])
        lines.append(
            tr(
                lang,
                f"对照选项，{letter} 项（{example['choices'].get(letter, '')}）与计算结果一致，因此选 {letter}。",
                f"Comparing with the options, option {letter} ({example['choices'].get(letter, '')}) matches "
                f"the result, so the answer is {letter}.",
            )
        )
    elif example.get("answer"):
        lines.append(tr(lang, f"因此答案为 {example['answer']}。", f"So the answer is {example['answer']}."))
    return "\n".join(lines)
