"""FinCalc: synthetic, bilingual (zh/en) financial-calculation questions the project generates itself.

Upstream has no such set; we add it for a cheap, exactly checkable numeric-reasoning signal
(CFLUE is letters, FinQA needs a table and a judge). Every question comes from a generator
with a known answer, so data, reward and evaluation agree by construction.

Generators (`GENERATORS`, kind -> `fn(rng, lang) -> Problem`) draw the inputs, call a pure
formula function (`pct_change`, `cagr`, ... also usable on their own) and write the question,
the step-by-step derivation (formula, substitution, result: the offline "reasoning") and the
values a student gets from common mistakes (MCQ distractors). Kinds: pct_change, cagr,
simple_interest, compound_interest, future_value, present_value, annuity_fv, loan_payment,
current_ratio, debt_to_equity, gross_margin, roe, dividend_yield, break_even_units.

Answers are rounded half-up to 2 dp. Percent answers are percent numbers: gold "12.34" for
12.34%, displayed as "12.34%". Forms: "open" (gold is the number, in `\\boxed{}`) and "mcq"
(options A-D: the answer and three mistake values; gold is the letter).

`generate(n, seed, ...)` is deterministic: example i depends only on (seed, i), ids are
`fincalc-<seed>-<i>`, and kinds, languages and forms cycle so every combination appears in the
first len(kinds)*len(langs)*len(forms) examples. Examples carry `id, task, lang, form, kind,
question, gold, choices (mcq), derivation, answer_text, answer (the displayed value), value
(exact), unit, params`; `write_jsonl` / `load` store them as JSONL.

Prompt (ours; upstream published none): the question in its own language, the options for MCQ,
and the DianJin contract (reason in <think>, answer in <answer>, the number or letter in \\boxed{}).

Checking, open form: correct when the prediction is within a relative 1e-3 of the gold, or
rounds half-up to it at 2 dp. We do not call `numbers.numbers_match`, whose rounding uses the
gold's written decimals: gold 25.00 reads as 25.0 and would accept 25.4. For a percent gold a
fraction without "%" also counts (0.1234 for 12.34); for a non-percent gold a "%" value counts
divided by 100 (75% for 0.75); when the unit is unknown (a bare `dianjin score` line) both do.
MCQ form: the letter (`extract_choice`, a small local extractor kept behind one function so
it can be swapped for CFLUE's later; a box holding one option's value also names that option).
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dianjin import answer as fmt
from dianjin.io import write_jsonl as _atomic_write_jsonl
from dianjin.numbers import numbers_match, parse_number_ex, round_half_up
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records

LANGS = ("zh", "en")
FORMS = ("open", "mcq")
LETTERS = "ABCD"
REL_TOL = 1e-3
PLACES = 2
# Units: "%" (value is a percent number), "money" (元 / $), "ratio", "units" (件 / units).
UNITS = ("%", "money", "ratio", "units")


@dataclass(frozen=True)
class Problem:
    """One generated question before it becomes an example."""

    question: str
    value: float  # exact answer (percent number for unit "%")
    unit: str
    target: str  # what is computed, for the answer sentence ("毛利率", "gross margin")
    derivation: list[str]
    mistakes: list[float]  # values from common mistakes, MCQ distractors first
    params: dict[str, float] = field(default_factory=dict)


# --- formulas (pure; percent results are percent numbers) --------------------------------------
def pct_change(old: float, new: float) -> float:
    return (new - old) / old * 100


def cagr(start: float, end: float, years: int) -> float:
    return ((end / start) ** (1 / years) - 1) * 100


def simple_interest(principal: float, rate_pct: float, years: float) -> float:
    return principal * rate_pct / 100 * years


def compound_interest(principal: float, rate_pct: float, per_year: int, years: int) -> float:
    """Interest earned (not the final amount) with `per_year` compounding periods a year."""
    return principal * ((1 + rate_pct / 100 / per_year) ** (per_year * years) - 1)


def future_value(pv: float, rate_pct: float, years: int) -> float:
    return pv * (1 + rate_pct / 100) ** years


def present_value(fv: float, rate_pct: float, years: int) -> float:
    return fv / (1 + rate_pct / 100) ** years


def annuity_fv(payment: float, rate_pct: float, years: int) -> float:
    """Future value of an ordinary annuity (payments at the end of each year)."""
    r = rate_pct / 100
    return payment * ((1 + r) ** years - 1) / r


def loan_payment(principal: float, rate_pct: float, years: int) -> float:
    """Monthly payment of a fully amortising loan (等额本息)."""
    i, n = rate_pct / 1200, 12 * years
    return principal * i / (1 - (1 + i) ** -n)


def current_ratio(current_assets: float, current_liabilities: float) -> float:
    return current_assets / current_liabilities


def debt_to_equity(total_assets: float, total_liabilities: float) -> float:
    return total_liabilities / (total_assets - total_liabilities)


def gross_margin(revenue: float, cogs: float) -> float:
    return (revenue - cogs) / revenue * 100


def roe(net_income: float, equity_start: float, equity_end: float) -> float:
    return net_income / ((equity_start + equity_end) / 2) * 100


def dividend_yield(price: float, quarterly_dividend: float) -> float:
    return quarterly_dividend * 4 / price * 100


def break_even_units(fixed_cost: float, price: float, variable_cost: float) -> float:
    return fixed_cost / (price - variable_cost)


# --- formatting --------------------------------------------------------------------------------
def format_gold(x: float) -> str:
    """The gold string: 2 dp, "12.30"."""
    return f"{round_half_up(x, PLACES):.{PLACES}f}"


def display(x: float, unit: str, lang: str) -> str:
    """A value as shown to a reader: "12.34%", "1234.57 元", "$1234.57", "1.85", "1200 件"."""
    s = format_gold(x)
    if unit == "%":
        return f"{s}%"
    if unit == "money":
        return f"{s} 元" if lang == "zh" else f"${s}"
    if unit == "units":
        s = f"{round_half_up(x, PLACES):.0f}" if float(s).is_integer() else s
        return f"{s} 件" if lang == "zh" else f"{s} units"
    return s


def _n(x: float) -> str:
    """An input number as written in a question: 1500, 4.25."""
    return str(int(x)) if float(x).is_integer() else f"{x:.10g}"


def _t(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def _money(x: float, lang: str) -> str:
    return _t(lang, f"{_n(x)} 元", f"${_n(x)}")


_ROUND = {"zh": "（结果保留两位小数）", "en": " Round to 2 decimal places."}
_PCT = {"zh": "（以百分比表示，保留两位小数）", "en": " Express it as a percentage rounded to 2 decimal places."}


# --- generators ---------------------------------------------------------------------------------
def _gen_pct_change(rng: random.Random, lang: str) -> Problem:
    old = rng.randrange(500, 20000, 10)
    new = round(old * (1 + rng.choice((-1, 1)) * rng.uniform(0.03, 0.6)))
    v = pct_change(old, new)
    a = format_gold(v)
    q = _t(lang, f"某公司 2023 年营业收入为 {old} 万元，2024 年为 {new} 万元。求 2024 年营业收入的同比变化率{_PCT['zh']}。",
           f"A company's revenue was ${old} thousand in 2023 and ${new} thousand in 2024. "
           f"What was the year-over-year percentage change in revenue?{_PCT['en']}")
    steps = [
        _t(lang, "同比变化率 = (本期值 − 上期值) ÷ 上期值 × 100%", "Percentage change = (current − previous) ÷ previous × 100%"),
        _t(lang, "代入数据：", "Substitute: ") + f"({new} − {old}) ÷ {old} × 100% = {new - old} ÷ {old} × 100%",
        _t(lang, "计算得：", "Compute: ") + f"{(new - old) / old:.6f} × 100% ≈ {a}%",
    ]
    return Problem(q, v, "%", _t(lang, "营业收入同比变化率", "percentage change in revenue"), steps,
                   [(new - old) / new * 100, new / old * 100, -v], {"old": old, "new": new})


def _gen_cagr(rng: random.Random, lang: str) -> Problem:
    start, n = rng.randrange(1000, 20000, 100), rng.randint(3, 8)
    end = round(start * (1 + rng.uniform(0.03, 0.25)) ** n)
    v, ratio = cagr(start, end, n), end / start
    q = _t(lang, f"某基金的资产规模由 {start} 万元增长到 {n} 年后的 {end} 万元。求这 {n} 年的年复合增长率 CAGR{_PCT['zh']}。",
           f"A fund's assets grew from ${start} million to ${end} million over {n} years. "
           f"What was the compound annual growth rate (CAGR)?{_PCT['en']}")
    steps = [
        _t(lang, "年复合增长率 = (期末值 ÷ 期初值)^(1/n) − 1", "CAGR = (ending value ÷ beginning value)^(1/n) − 1"),
        _t(lang, "代入数据：", "Substitute: ") + f"({end} ÷ {start})^(1/{n}) − 1 = {ratio:.6f}^(1/{n}) − 1",
        _t(lang, "计算得：", "Compute: ") + f"{ratio ** (1 / n):.6f} − 1 = {ratio ** (1 / n) - 1:.6f} ≈ {format_gold(v)}%",
    ]
    mistakes = [(ratio - 1) / n * 100, (ratio ** (1 / (n - 1)) - 1) * 100, (ratio - 1) * 100]
    return Problem(q, v, "%", _t(lang, "年复合增长率", "CAGR"), steps, mistakes, {"start": start, "end": end, "years": n})


def _gen_simple_interest(rng: random.Random, lang: str) -> Problem:
    p, r, t = rng.randrange(10000, 500000, 1000), rng.randrange(6, 25) / 4, rng.randint(2, 6)
    v = simple_interest(p, r, t)
    q = _t(lang, f"某人将 {p} 元存入银行，年利率为 {_n(r)}%，按单利计息，存期 {t} 年。到期可获得的利息是多少元？{_ROUND['zh']}",
           f"An investor deposits ${p} at a simple interest rate of {_n(r)}% per year for {t} years. "
           f"How much interest is earned?{_ROUND['en']}")
    steps = [
        _t(lang, "单利利息 = 本金 × 年利率 × 年数", "Simple interest = principal × annual rate × years"),
        _t(lang, "代入数据：", "Substitute: ") + f"{p} × {_n(r)}% × {t} = {p} × {r / 100:g} × {t}",
        _t(lang, "计算得：利息 = ", "Compute: interest = ") + display(v, "money", lang),
    ]
    mistakes = [p * ((1 + r / 100) ** t - 1), p * r / 100, p * (1 + r / 100 * t)]
    return Problem(q, v, "money", _t(lang, "到期利息", "interest earned"), steps, mistakes,
                   {"principal": p, "rate_pct": r, "years": t})


_PERIODS = {2: ("半年", "semi-annually"), 4: ("季度", "quarterly"), 12: ("月", "monthly")}


def _gen_compound_interest(rng: random.Random, lang: str) -> Problem:
    p, r, t = rng.randrange(10000, 500000, 1000), rng.randrange(8, 33) / 4, rng.randint(2, 10)
    m = rng.choice(sorted(_PERIODS))
    i, periods = r / 100 / m, m * t
    v = compound_interest(p, r, m, t)
    word = _PERIODS[m][0 if lang == "zh" else 1]
    q = _t(lang, f"本金 {p} 元，年利率 {_n(r)}%，按{word}复利计息（每年计息 {m} 次），投资 {t} 年。到期获得的利息总额是多少元？{_ROUND['zh']}",
           f"${p} is invested at an annual rate of {_n(r)}% compounded {word} ({m} times a year) for {t} years. "
           f"How much interest is earned in total?{_ROUND['en']}")
    steps = [
        _t(lang, "复利利息 = 本金 × [(1 + 年利率 ÷ m)^(m × t) − 1]", "Compound interest = principal × [(1 + annual rate ÷ m)^(m × t) − 1]"),
        _t(lang, f"每期利率 = {_n(r)}% ÷ {m} = {i:.6f}，计息期数 = {m} × {t} = {periods}",
           f"Periodic rate = {_n(r)}% ÷ {m} = {i:.6f}; number of periods = {m} × {t} = {periods}"),
        _t(lang, "计算得：", "Compute: ") + f"{p} × [(1 + {i:.6f})^{periods} − 1] = {p} × {(1 + i) ** periods - 1:.6f} ≈ "
        + display(v, "money", lang),
    ]
    mistakes = [p * ((1 + r / 100) ** t - 1), p * r / 100 * t, p * (1 + i) ** periods]
    return Problem(q, v, "money", _t(lang, "利息总额", "total interest earned"), steps, mistakes,
                   {"principal": p, "rate_pct": r, "per_year": m, "years": t})


def _gen_future_value(rng: random.Random, lang: str) -> Problem:
    pv, r, n = rng.randrange(5000, 200000, 500), rng.randrange(8, 41) / 4, rng.randint(3, 15)
    v, g = future_value(pv, r, n), 1 + r / 100
    q = _t(lang, f"现在投资 {pv} 元，年收益率为 {_n(r)}%，按年复利计算，{n} 年后的终值是多少元？{_ROUND['zh']}",
           f"What is the future value of ${pv} invested today for {n} years at {_n(r)}% per year, compounded annually?{_ROUND['en']}")
    steps = [
        _t(lang, "终值 FV = PV × (1 + r)^n", "Future value FV = PV × (1 + r)^n"),
        _t(lang, "代入数据：", "Substitute: ") + f"{pv} × (1 + {_n(r)}%)^{n} = {pv} × {g:g}^{n}",
        _t(lang, "计算得：", "Compute: ") + f"{pv} × {g ** n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [pv * (1 + r / 100 * n), pv * g ** (n - 1), pv * g ** (n + 1)]
    return Problem(q, v, "money", _t(lang, "终值", "future value"), steps, mistakes, {"pv": pv, "rate_pct": r, "years": n})


def _gen_present_value(rng: random.Random, lang: str) -> Problem:
    fv, r, n = rng.randrange(10000, 1000000, 1000), rng.randrange(8, 41) / 4, rng.randint(2, 15)
    v, g = present_value(fv, r, n), 1 + r / 100
    q = _t(lang, f"{n} 年后将收到一笔 {fv} 元的款项，年折现率为 {_n(r)}%（按年复利），这笔款项的现值是多少元？{_ROUND['zh']}",
           f"You will receive ${fv} in {n} years. At a discount rate of {_n(r)}% per year (compounded annually), "
           f"what is its present value?{_ROUND['en']}")
    steps = [
        _t(lang, "现值 PV = FV ÷ (1 + r)^n", "Present value PV = FV ÷ (1 + r)^n"),
        _t(lang, "代入数据：", "Substitute: ") + f"{fv} ÷ (1 + {_n(r)}%)^{n} = {fv} ÷ {g:g}^{n}",
        _t(lang, "计算得：", "Compute: ") + f"{fv} ÷ {g ** n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [fv / (1 + r / 100 * n), fv * (1 - r / 100) ** n, fv / g ** (n - 1)]
    return Problem(q, v, "money", _t(lang, "现值", "present value"), steps, mistakes, {"fv": fv, "rate_pct": r, "years": n})


def _gen_annuity_fv(rng: random.Random, lang: str) -> Problem:
    pmt, r, n = rng.randrange(1000, 50000, 500), rng.randrange(8, 33) / 4, rng.randint(3, 20)
    v, g = annuity_fv(pmt, r, n), 1 + r / 100
    q = _t(lang, f"每年年末向账户存入 {pmt} 元，年利率为 {_n(r)}%（按年复利），连续存 {n} 年。第 {n} 年末（最后一次存入后）"
                 f"账户余额，即普通年金终值，是多少元？{_ROUND['zh']}",
           f"You deposit ${pmt} at the end of each year for {n} years into an account earning {_n(r)}% per year, "
           f"compounded annually. What is the balance right after the last deposit (the future value of this "
           f"ordinary annuity)?{_ROUND['en']}")
    steps = [
        _t(lang, "普通年金终值 FV = PMT × [(1 + r)^n − 1] ÷ r", "Future value of an ordinary annuity FV = PMT × [(1 + r)^n − 1] ÷ r"),
        _t(lang, "代入数据：", "Substitute: ") + f"{pmt} × [{g:g}^{n} − 1] ÷ {r / 100:g}",
        _t(lang, "计算得：", "Compute: ") + f"{pmt} × {(g ** n - 1) / (r / 100):.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [pmt * n, v * g, pmt * g ** n]
    return Problem(q, v, "money", _t(lang, "年金终值", "future value of the annuity"), steps, mistakes,
                   {"payment": pmt, "rate_pct": r, "years": n})


def _gen_loan_payment(rng: random.Random, lang: str) -> Problem:
    p, r, years = rng.randrange(100000, 3000000, 10000), rng.randrange(12, 25) / 4, rng.choice((5, 10, 15, 20, 25, 30))
    i, n = r / 1200, 12 * years
    v = loan_payment(p, r, years)
    q = _t(lang, f"某人申请 {p} 元的住房贷款，年利率 {_n(r)}%，期限 {years} 年，采用等额本息方式按月还款。每月还款额是多少元？{_ROUND['zh']}",
           f"A ${p} mortgage has an annual interest rate of {_n(r)}% and a term of {years} years, repaid in equal "
           f"monthly payments (fully amortizing). What is the monthly payment?{_ROUND['en']}")
    steps = [
        _t(lang, "等额本息月供 = P × i ÷ [1 − (1 + i)^(−N)]，i 为月利率，N 为还款月数",
           "Monthly payment = P × i ÷ [1 − (1 + i)^(−N)], where i is the monthly rate and N the number of payments"),
        _t(lang, f"月利率 i = {_n(r)}% ÷ 12 = {i:.6f}，还款月数 N = {years} × 12 = {n}",
           f"Monthly rate i = {_n(r)}% ÷ 12 = {i:.6f}; N = {years} × 12 = {n}"),
        _t(lang, "计算得：", "Compute: ") + f"{p} × {i:.6f} ÷ {1 - (1 + i) ** -n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [p / n + p * i, p * (1 + r / 100 * years) / n, p / n]
    return Problem(q, v, "money", _t(lang, "每月还款额", "monthly payment"), steps, mistakes,
                   {"principal": p, "rate_pct": r, "years": years})


def _gen_current_ratio(rng: random.Random, lang: str) -> Problem:
    ca = rng.randrange(2000, 50000, 10)
    cl = round(ca / rng.uniform(0.8, 3.0), -1)
    inv = round(ca * rng.uniform(0.15, 0.45), -1)
    tl = cl + rng.randrange(1000, 40000, 10)
    v = current_ratio(ca, cl)
    q = _t(lang, f"某公司年末流动资产为 {ca} 万元（其中存货 {_n(inv)} 万元），流动负债为 {_n(cl)} 万元，负债总额为 {_n(tl)} 万元。"
                 f"求该公司的流动比率{_ROUND['zh']}。",
           f"At year end a company has current assets of ${ca} thousand (of which inventory ${_n(inv)} thousand), "
           f"current liabilities of ${_n(cl)} thousand and total liabilities of ${_n(tl)} thousand. "
           f"What is its current ratio?{_ROUND['en']}")
    steps = [
        _t(lang, "流动比率 = 流动资产 ÷ 流动负债", "Current ratio = current assets ÷ current liabilities"),
        _t(lang, "代入数据：", "Substitute: ") + f"{ca} ÷ {_n(cl)}",
        _t(lang, "计算得：流动比率 ≈ ", "Compute: current ratio ≈ ") + format_gold(v),
    ]
    mistakes = [cl / ca, (ca - inv) / cl, ca / tl]
    return Problem(q, v, "ratio", _t(lang, "流动比率", "current ratio"), steps, mistakes,
                   {"current_assets": ca, "current_liabilities": cl})


def _gen_debt_to_equity(rng: random.Random, lang: str) -> Problem:
    ta = rng.randrange(5000, 100000, 10)
    tl = round(ta * rng.uniform(0.25, 0.75), -1)
    eq = ta - tl
    v = debt_to_equity(ta, tl)
    q = _t(lang, f"某公司资产总额为 {ta} 万元，负债总额为 {_n(tl)} 万元。求该公司的产权比率（负债总额 ÷ 所有者权益）{_ROUND['zh']}。",
           f"A company has total assets of ${ta} thousand and total liabilities of ${_n(tl)} thousand. "
           f"What is its debt-to-equity ratio (total liabilities ÷ shareholders' equity)?{_ROUND['en']}")
    steps = [
        _t(lang, f"所有者权益 = 资产总额 − 负债总额 = {ta} − {_n(tl)} = {_n(eq)} 万元",
           f"Shareholders' equity = total assets − total liabilities = {ta} − {_n(tl)} = {_n(eq)} thousand"),
        _t(lang, "产权比率 = 负债总额 ÷ 所有者权益", "Debt-to-equity = total liabilities ÷ shareholders' equity"),
        _t(lang, "计算得：", "Compute: ") + f"{_n(tl)} ÷ {_n(eq)} ≈ {format_gold(v)}",
    ]
    mistakes = [tl / ta, ta / eq, eq / tl]
    return Problem(q, v, "ratio", _t(lang, "产权比率", "debt-to-equity ratio"), steps, mistakes,
                   {"total_assets": ta, "total_liabilities": tl})


def _gen_gross_margin(rng: random.Random, lang: str) -> Problem:
    rev = rng.randrange(5000, 200000, 10)
    cogs = round(rev * rng.uniform(0.35, 0.85), -1)
    opex = round((rev - cogs) * rng.uniform(0.2, 0.7), -1)
    v = gross_margin(rev, cogs)
    q = _t(lang, f"某公司本年营业收入 {rev} 万元，营业成本 {_n(cogs)} 万元，期间费用 {_n(opex)} 万元。求该公司的毛利率{_PCT['zh']}。",
           f"A company reports revenue of ${rev} thousand, cost of goods sold of ${_n(cogs)} thousand and operating "
           f"expenses of ${_n(opex)} thousand. What is its gross margin?{_PCT['en']}")
    steps = [
        _t(lang, "毛利率 = (营业收入 − 营业成本) ÷ 营业收入 × 100%", "Gross margin = (revenue − COGS) ÷ revenue × 100%"),
        _t(lang, "代入数据：", "Substitute: ") + f"({rev} − {_n(cogs)}) ÷ {rev} × 100% = {_n(rev - cogs)} ÷ {rev} × 100%",
        _t(lang, "计算得：", "Compute: ") + f"{(rev - cogs) / rev:.6f} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [(rev - cogs) / cogs * 100, (rev - cogs - opex) / rev * 100, cogs / rev * 100]
    return Problem(q, v, "%", _t(lang, "毛利率", "gross margin"), steps, mistakes, {"revenue": rev, "cogs": cogs})


def _gen_roe(rng: random.Random, lang: str) -> Problem:
    e0 = rng.randrange(5000, 100000, 10)
    e1 = round(e0 * rng.uniform(0.9, 1.3), -1)
    avg = (e0 + e1) / 2
    ni = round(avg * rng.uniform(0.04, 0.25), -1)
    ta = round(e1 * rng.uniform(1.5, 4.0), -1)
    v = roe(ni, e0, e1)
    q = _t(lang, f"某公司本年净利润为 {_n(ni)} 万元，年初所有者权益为 {e0} 万元，年末所有者权益为 {_n(e1)} 万元，年末资产总额为 {_n(ta)} 万元。"
                 f"按平均所有者权益计算，该公司的净资产收益率（ROE）是多少{_PCT['zh']}？",
           f"A company earned net income of ${_n(ni)} thousand this year. Shareholders' equity was ${e0} thousand at the "
           f"start of the year and ${_n(e1)} thousand at the end; total assets at year end were ${_n(ta)} thousand. "
           f"Using average equity, what is its return on equity (ROE)?{_PCT['en']}")
    steps = [
        _t(lang, "净资产收益率 = 净利润 ÷ 平均所有者权益 × 100%", "ROE = net income ÷ average shareholders' equity × 100%"),
        _t(lang, f"平均所有者权益 = ({e0} + {_n(e1)}) ÷ 2 = {_n(avg)} 万元",
           f"Average equity = ({e0} + {_n(e1)}) ÷ 2 = {_n(avg)} thousand"),
        _t(lang, "计算得：", "Compute: ") + f"{_n(ni)} ÷ {_n(avg)} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [ni / e1 * 100, ni / e0 * 100, ni / ta * 100]
    return Problem(q, v, "%", _t(lang, "净资产收益率", "return on equity"), steps, mistakes,
                   {"net_income": ni, "equity_start": e0, "equity_end": e1})


def _gen_dividend_yield(rng: random.Random, lang: str) -> Problem:
    price = rng.randrange(500, 20000) / 100
    q_div = max(0.01, round(price * rng.uniform(0.01, 0.08) / 4, 2))
    eps = round(q_div * 4 / rng.uniform(0.2, 0.8), 2)
    annual = q_div * 4
    v = dividend_yield(price, q_div)
    q = _t(lang, f"某股票当前股价为 {price:.2f} 元，公司每季度派发现金股息每股 {q_div:.2f} 元，上一年度每股收益为 {eps:.2f} 元。"
                 f"求该股票的股息率{_PCT['zh']}。",
           f"A stock trades at ${price:.2f}. The company pays a quarterly dividend of ${q_div:.2f} per share, and its "
           f"annual earnings per share are ${eps:.2f}. What is the stock's dividend yield?{_PCT['en']}")
    steps = [
        _t(lang, "股息率 = 每股年度股息 ÷ 股价 × 100%", "Dividend yield = annual dividend per share ÷ price × 100%"),
        _t(lang, f"每股年度股息 = {q_div:.2f} × 4 = {annual:.2f} 元", f"Annual dividend per share = {q_div:.2f} × 4 = ${annual:.2f}"),
        _t(lang, "计算得：", "Compute: ") + f"{annual:.2f} ÷ {price:.2f} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [q_div / price * 100, annual / eps * 100, price / annual]
    return Problem(q, v, "%", _t(lang, "股息率", "dividend yield"), steps, mistakes,
                   {"price": price, "quarterly_dividend": q_div})


def _gen_break_even_units(rng: random.Random, lang: str) -> Problem:
    price = rng.randrange(20, 500)
    var = rng.randrange(int(price * 0.3), int(price * 0.8))
    units = rng.randrange(500, 20000, 10)
    cm = price - var
    fixed = units * cm  # chosen so the answer is a whole number of units
    v = break_even_units(fixed, price, var)
    q = _t(lang, f"某产品单价为 {price} 元，单位变动成本为 {var} 元，每年固定成本为 {fixed} 元。求盈亏平衡点的销售量（件）。",
           f"A product sells for ${price} per unit with a variable cost of ${var} per unit; annual fixed costs are "
           f"${fixed}. How many units must be sold to break even?")
    steps = [
        _t(lang, "盈亏平衡销售量 = 固定成本 ÷ (单价 − 单位变动成本)", "Break-even units = fixed costs ÷ (price − variable cost per unit)"),
        _t(lang, f"单位边际贡献 = {price} − {var} = {cm} 元", f"Contribution margin per unit = {price} − {var} = ${cm}"),
        _t(lang, "计算得：", "Compute: ") + f"{fixed} ÷ {cm} = " + display(v, "units", lang),
    ]
    mistakes = [fixed / price, fixed / var, fixed / cm * price]
    return Problem(q, v, "units", _t(lang, "盈亏平衡销售量", "break-even volume"), steps, mistakes,
                   {"fixed_cost": fixed, "price": price, "variable_cost": var})


GENERATORS: dict[str, Callable[[random.Random, str], Problem]] = {
    "pct_change": _gen_pct_change,
    "cagr": _gen_cagr,
    "simple_interest": _gen_simple_interest,
    "compound_interest": _gen_compound_interest,
    "future_value": _gen_future_value,
    "present_value": _gen_present_value,
    "annuity_fv": _gen_annuity_fv,
    "loan_payment": _gen_loan_payment,
    "current_ratio": _gen_current_ratio,
    "debt_to_equity": _gen_debt_to_equity,
    "gross_margin": _gen_gross_margin,
    "roe": _gen_roe,
    "dividend_yield": _gen_dividend_yield,
    "break_even_units": _gen_break_even_units,
}
# The formula behind each kind; `params` of an example are its keyword arguments.
FORMULAS: dict[str, Callable[..., float]] = {
    "pct_change": pct_change, "cagr": cagr, "simple_interest": simple_interest,
    "compound_interest": compound_interest, "future_value": future_value, "present_value": present_value,
    "annuity_fv": annuity_fv, "loan_payment": loan_payment, "current_ratio": current_ratio,
    "debt_to_equity": debt_to_equity, "gross_margin": gross_margin, "roe": roe,
    "dividend_yield": dividend_yield, "break_even_units": break_even_units,
}
KIND_NAMES: dict[str, tuple[str, str]] = {
    "pct_change": ("同比变化率", "percentage change"), "cagr": ("年复合增长率", "CAGR"),
    "simple_interest": ("单利", "simple interest"), "compound_interest": ("复利", "compound interest"),
    "future_value": ("终值", "future value"), "present_value": ("现值", "present value"),
    "annuity_fv": ("年金终值", "annuity future value"), "loan_payment": ("贷款月供", "loan payment"),
    "current_ratio": ("流动比率", "current ratio"), "debt_to_equity": ("产权比率", "debt-to-equity"),
    "gross_margin": ("毛利率", "gross margin"), "roe": ("净资产收益率", "return on equity"),
    "dividend_yield": ("股息率", "dividend yield"), "break_even_units": ("盈亏平衡", "break-even"),
}


# --- examples -----------------------------------------------------------------------------------
def _distractors(problem: Problem, lang: str) -> list[str]:
    """Three displayed wrong values: the mistakes first, then ±10-50% perturbations, all distinct."""
    v = problem.value
    shown = [display(v, problem.unit, lang)]
    for x in [*problem.mistakes, v * 1.1, v * 0.9, v * 1.25, v * 0.8, v * 1.5]:
        if math.isfinite(x) and len(shown) < 4:
            s = display(x, problem.unit, lang)
            if s not in shown:
                shown.append(s)
    return shown[1:]


def _answer_text(target: str, shown: str, lang: str, letter: str | None) -> str:
    if letter is None:
        return _t(lang, f"{target}为 {shown}。", f"The {target} is {shown}.")
    return _t(lang, f"{target}为 {shown}，对应选项 {letter}。", f"The {target} is {shown}, which is option {letter}.")


def make_example(kind: str, lang: str, form: str, rng: random.Random, ex_id: str) -> Example:
    """One example of a given kind, language and form, drawn with `rng`."""
    problem = GENERATORS[kind](rng, lang)
    shown = display(problem.value, problem.unit, lang)
    ex: Example = {"id": ex_id, "task": FinCalcTask.name, "lang": lang, "form": form, "kind": kind,
                   "question": problem.question}
    letter = None
    if form == "mcq":
        options = [shown, *_distractors(problem, lang)]
        rng.shuffle(options)
        ex["choices"] = dict(zip(LETTERS, options))
        letter = LETTERS[options.index(shown)]
        ex["gold"] = letter
    else:
        ex["gold"] = format_gold(problem.value)
    ex.update(derivation=list(problem.derivation), answer_text=_answer_text(problem.target, shown, lang, letter),
              answer=shown, value=problem.value, unit=problem.unit, params=dict(problem.params))
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


def _validate(path: Path, line: int, rec: Any) -> Example:
    if not isinstance(rec, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")

    def need(name: str, ok: Callable[[Any], bool], want: str) -> Any:
        value = rec.get(name)
        if not ok(value):
            got = "nothing" if name not in rec else repr(value)[:60]
            raise DataError(path, line, name, f"expected {want}, got {got}")
        return value

    nonempty = lambda v: isinstance(v, str) and bool(v.strip())  # noqa: E731
    need("id", nonempty, "a non-empty string")
    need("lang", lambda v: v in LANGS, f"one of {LANGS}")
    form = need("form", lambda v: v in FORMS, f"one of {FORMS}")
    need("kind", lambda v: v in GENERATORS, "a known kind: " + ", ".join(GENERATORS))
    need("question", nonempty, "a non-empty string")
    need("derivation", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of strings")
    need("answer_text", lambda v: isinstance(v, str), "a string")
    if "unit" in rec:
        need("unit", lambda v: v in UNITS, f"one of {UNITS}")
    if form == "mcq":
        choices = need("choices", lambda v: isinstance(v, dict) and list(v) == list(LETTERS)
                       and all(nonempty(t) for t in v.values()), "options A-D as {letter: text}")
        need("gold", lambda v: v in choices, "a letter among the choices")
    else:
        need("gold", lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
             or (isinstance(v, str) and parse_number_ex(v) is not None), "a number")
    return {**rec, "task": FinCalcTask.name}


def load(path: str | Path) -> list[Example]:
    """Read FinCalc JSONL (as written by `write_jsonl`); DataError names the line and field."""
    path = Path(path)
    return [_validate(path, lineno, rec) for lineno, rec in jsonl_records(path)]


# --- reasoning text -----------------------------------------------------------------------------
def reasoning(example: Example) -> str:
    """The derivation as step-by-step reasoning in the example's language (offline teacher text)."""
    lang = example.get("lang", "zh")
    kind_name = KIND_NAMES.get(example.get("kind", ""), ("", ""))[0 if lang == "zh" else 1]
    lines = [_t(lang, f"这是一道{kind_name}计算题，按公式逐步计算。", f"This is a {kind_name} calculation; work through the formula step by step.")]
    for i, step in enumerate(example.get("derivation") or [], 1):
        lines.append(_t(lang, f"第{i}步：{step}", f"Step {i}: {step}"))
    if example.get("form") == "mcq" and example.get("choices"):
        letter = str(example["gold"])
        lines.append(_t(lang, f"对照选项，{letter} 项（{example['choices'].get(letter, '')}）与计算结果一致，因此选 {letter}。",
                        f"Comparing with the options, option {letter} ({example['choices'].get(letter, '')}) matches "
                        f"the result, so the answer is {letter}."))
    elif example.get("answer"):
        lines.append(_t(lang, f"因此答案为 {example['answer']}。", f"So the answer is {example['answer']}."))
    return "\n".join(lines)


# --- prompt -------------------------------------------------------------------------------------
PROMPTS: dict[tuple[str, str], str] = {
    ("zh", "open"): "请解答下面的金融计算题。\n\n{question}\n\n请先在<think></think>中逐步推理，然后在<answer></answer>中给出答案，"
                    "并把最终数值写在\\boxed{{}}中（只写数字，不带单位；百分比只写百分数的数值，例如 12.34% 写作 \\boxed{{12.34}}）。",
    ("zh", "mcq"): "请解答下面的金融计算选择题（只有一个正确选项）。\n\n{question}\n{options}\n\n请先在<think></think>中逐步推理，"
                   "然后在<answer></answer>中给出答案，并把正确选项的字母写在\\boxed{{}}中（例如 \\boxed{{A}}）。",
    ("en", "open"): "Solve the following financial calculation problem.\n\n{question}\n\nThink step by step inside "
                    "<think></think>, then give your answer inside <answer></answer> with the final number in \\boxed{{}} "
                    "(the number only, no units; for a percentage write the percent number, e.g. 12.34% as \\boxed{{12.34}}).",
    ("en", "mcq"): "Solve the following financial calculation problem (exactly one option is correct).\n\n{question}\n{options}\n\n"
                   "Think step by step inside <think></think>, then give your answer inside <answer></answer> with the "
                   "letter of the correct option in \\boxed{{}} (e.g. \\boxed{{A}}).",
}


# --- answer extraction and checking -------------------------------------------------------------
_MARKUP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_STRIP = re.compile(r"[*$`]|\\[()\[\]]")
# A short answer that is an option label: "B", "(B)", "选B", "答案：B", "option B", "B. 12.34%".
_LONE_LETTER = re.compile(
    r"(?:选项|选择|选|(?:最终)?答案\s*(?:是|为)?\s*[:：]?|(?:the\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?)?\s*"
    r"[(（\[]?\s*(?-i:([A-D]))(?:\s*[)）\]])?(?:\s*|\s*[.、:：,，][^A-D]*|\s+[^A-Za-z\s][^A-D]*)",
    re.IGNORECASE | re.DOTALL,
)
# An answer phrase followed by a letter, in free text; the last one wins.
_PHRASE_LETTER = re.compile(
    r"(?:答案|选项|故选|应选|因此选|所以选|选择|answer|option|choice)\s*(?:is|are|为|是|应为|:|：)?\s*[(（\[]?\s*"
    r"(?-i:([A-D]))(?![A-Za-z])",
    re.IGNORECASE,
)
# Answer phrases after which the number sits (free-text fallback of the open form).
_PHRASE_NUMBER = re.compile(r"(?:最终)?答案\s*(?:是|为)?\s*[:：]?|(?:final\s+)?answer\s*(?:is|:)|\bresult\s+is", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[。\n;；]|\.\s")
SHORT_CHARS = 40


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[-fmt.TAIL_CHARS :])
    return _STRIP.sub(" ", _MARKUP.sub(r"\1", text)).strip()


def extract_choice(text: str, choices: dict[str, str] | None = None) -> str | None:
    """The option letter named by an answer text; None when it names none.

    A short text that is a label ("B", "(B)", "选B", "B. 12.34%", no other letter after it) or the
    value of exactly one option ("12.34%" or "12.34"); otherwise the last answer phrase with a
    letter ("答案是 B", "the answer is B").
    """
    text = _clean(text)
    if not text:
        return None
    valid = "".join(choices) if choices else LETTERS
    if len(text) <= SHORT_CHARS:
        m = _LONE_LETTER.fullmatch(text)
        if m and m.group(1) in valid:
            return m.group(1)
        if choices:
            got = parse_number_ex(text)
            values = {k: parse_number_ex(v) for k, v in choices.items()}
            hits = [k for k, v in values.items() if got is not None and v is not None and abs(v[0] - got[0]) < 1e-9]
            if len(hits) == 1:
                return hits[0]
    for m in reversed(list(_PHRASE_LETTER.finditer(text))[-32:]):
        if m.group(1) in valid:
            return m.group(1)
    return None


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
        lang = example.get("lang") if example.get("lang") in LANGS else "zh"
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
            gold = str(example.get("gold", "")).strip().upper()
            if gold not in LETTERS:
                return None, f"unparseable gold {example.get('gold')!r}"
            got = extract_choice(str(pred), example.get("choices") or None)
            return (got == gold), (f"letter {got} matches the gold" if got == gold else f"predicted {got or pred!r}, gold {gold}")
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
