"""FinCalc's question generators: `GENERATORS` (kind -> `fn(rng, lang) -> Problem`, in the task's
`KINDS` order) draw a question's inputs with the seeded `rng`, compute the answer with the formula
of `fincalc_formulas`, and write the bilingual (zh/en) question, the step-by-step derivation
(formula, substitution, result) and the values a student gets from common mistakes (the MCQ
distractors) into a `Problem`. Also here: how answers are shown (`format_gold`: 2 dp half-up;
`display`: with "%", currency or units per language) and `KIND_NAMES`; the kind names,
compounding periods and rounding instructions are package data (tables/fincalc.json). `fincalc`
turns a `Problem` into an example.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dianjin.data.synthetic.common import f2, load_table, num, simple_interest, simple_interest_mistakes, tr
from dianjin.data.synthetic.fincalc_formulas import (
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
from dianjin.tasks.fincalc import KINDS, PLACES
from dianjin.tasks.numeric import round_half_up


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


# --- formatting --------------------------------------------------------------------------------
def format_gold(x: float) -> str:
    """The gold string: PLACES (2) dp, half-up, "12.30"."""
    return f2(x)


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


_TABLES = load_table("fincalc")
_ROUND: dict[str, str] = _TABLES["round"]  # "round to 2 dp", per language
_PCT: dict[str, str] = _TABLES["percent"]  # "as a percentage, 2 dp", per language


# --- generators ---------------------------------------------------------------------------------
def _gen_pct_change(rng: random.Random, lang: str) -> Problem:
    old = rng.randrange(500, 20000, 10)
    new = round(old * (1 + rng.choice((-1, 1)) * rng.uniform(0.03, 0.6)))
    v = pct_change(old, new)
    a = format_gold(v)
    q = tr(
        lang,
        f"某公司 2023 年营业收入为 {old} 万元，2024 年为 {new} 万元。求 2024 年营业收入的同比变化率{_PCT['zh']}。",
        f"A company's revenue was ${old} thousand in 2023 and ${new} thousand in 2024. "
        f"What was the year-over-year percentage change in revenue?{_PCT['en']}",
    )
    steps = [
        tr(
            lang,
            "同比变化率 = (本期值 − 上期值) ÷ 上期值 × 100%",
            "Percentage change = (current − previous) ÷ previous × 100%",
        ),
        tr(lang, "代入数据：", "Substitute: ") + f"({new} − {old}) ÷ {old} × 100% = {new - old} ÷ {old} × 100%",
        tr(lang, "计算得：", "Compute: ") + f"{(new - old) / old:.6f} × 100% ≈ {a}%",
    ]
    return Problem(
        q,
        v,
        "%",
        tr(lang, "营业收入同比变化率", "percentage change in revenue"),
        steps,
        [(new - old) / new * 100, new / old * 100, -v],
        {"old": old, "new": new},
    )


def _gen_cagr(rng: random.Random, lang: str) -> Problem:
    start, n = rng.randrange(1000, 20000, 100), rng.randint(3, 8)
    end = round(start * (1 + rng.uniform(0.03, 0.25)) ** n)
    v, ratio = cagr(start, end, n), end / start
    q = tr(
        lang,
        f"某基金的资产规模由 {start} 万元增长到 {n} 年后的 {end} 万元。求这 {n} 年的年复合增长率 CAGR{_PCT['zh']}。",
        f"A fund's assets grew from ${start} million to ${end} million over {n} years. "
        f"What was the compound annual growth rate (CAGR)?{_PCT['en']}",
    )
    steps = [
        tr(lang, "年复合增长率 = (期末值 ÷ 期初值)^(1/n) − 1", "CAGR = (ending value ÷ beginning value)^(1/n) − 1"),
        tr(lang, "代入数据：", "Substitute: ") + f"({end} ÷ {start})^(1/{n}) − 1 = {ratio:.6f}^(1/{n}) − 1",
        tr(lang, "计算得：", "Compute: ")
        + f"{ratio ** (1 / n):.6f} − 1 = {ratio ** (1 / n) - 1:.6f} ≈ {format_gold(v)}%",
    ]
    mistakes = [(ratio - 1) / n * 100, (ratio ** (1 / (n - 1)) - 1) * 100, (ratio - 1) * 100]
    return Problem(
        q, v, "%", tr(lang, "年复合增长率", "CAGR"), steps, mistakes, {"start": start, "end": end, "years": n}
    )


def _gen_simple_interest(rng: random.Random, lang: str) -> Problem:
    p, r, t = rng.randrange(10000, 500000, 1000), rng.randrange(6, 25) / 4, rng.randint(2, 6)
    v = simple_interest(p, r, t)
    q = tr(
        lang,
        f"某人将 {p} 元存入银行，年利率为 {num(r)}%，按单利计息，存期 {t} 年。到期可获得的利息是多少元？{_ROUND['zh']}",
        f"An investor deposits ${p} at a simple interest rate of {num(r)}% per year for {t} years. "
        f"How much interest is earned?{_ROUND['en']}",
    )
    steps = [
        tr(lang, "单利利息 = 本金 × 年利率 × 年数", "Simple interest = principal × annual rate × years"),
        tr(lang, "代入数据：", "Substitute: ") + f"{p} × {num(r)}% × {t} = {p} × {r / 100:g} × {t}",
        tr(lang, "计算得：利息 = ", "Compute: interest = ") + display(v, "money", lang),
    ]
    mistakes = list(simple_interest_mistakes(p, r, t))
    return Problem(
        q,
        v,
        "money",
        tr(lang, "到期利息", "interest earned"),
        steps,
        mistakes,
        {"principal": p, "rate_pct": r, "years": t},
    )


_PERIODS: dict[int, tuple[str, str]] = {int(m): (zh, en) for m, (zh, en) in _TABLES["periods"].items()}  # per year


def _gen_compound_interest(rng: random.Random, lang: str) -> Problem:
    p, r, t = rng.randrange(10000, 500000, 1000), rng.randrange(8, 33) / 4, rng.randint(2, 10)
    m = rng.choice(sorted(_PERIODS))
    i, periods = r / 100 / m, m * t
    v = compound_interest(p, r, m, t)
    word = _PERIODS[m][0 if lang == "zh" else 1]
    q = tr(
        lang,
        f"本金 {p} 元，年利率 {num(r)}%，按{word}复利计息（每年计息 {m} 次），投资 {t} 年。到期获得的利息总额是多少元？{_ROUND['zh']}",
        f"${p} is invested at an annual rate of {num(r)}% compounded {word} ({m} times a year) for {t} years. "
        f"How much interest is earned in total?{_ROUND['en']}",
    )
    steps = [
        tr(
            lang,
            "复利利息 = 本金 × [(1 + 年利率 ÷ m)^(m × t) − 1]",
            "Compound interest = principal × [(1 + annual rate ÷ m)^(m × t) − 1]",
        ),
        tr(
            lang,
            f"每期利率 = {num(r)}% ÷ {m} = {i:.6f}，计息期数 = {m} × {t} = {periods}",
            f"Periodic rate = {num(r)}% ÷ {m} = {i:.6f}; number of periods = {m} × {t} = {periods}",
        ),
        tr(lang, "计算得：", "Compute: ")
        + f"{p} × [(1 + {i:.6f})^{periods} − 1] = {p} × {(1 + i) ** periods - 1:.6f} ≈ "
        + display(v, "money", lang),
    ]
    mistakes = [p * ((1 + r / 100) ** t - 1), p * r / 100 * t, p * (1 + i) ** periods]
    return Problem(
        q,
        v,
        "money",
        tr(lang, "利息总额", "total interest earned"),
        steps,
        mistakes,
        {"principal": p, "rate_pct": r, "per_year": m, "years": t},
    )


def _gen_future_value(rng: random.Random, lang: str) -> Problem:
    pv, r, n = rng.randrange(5000, 200000, 500), rng.randrange(8, 41) / 4, rng.randint(3, 15)
    v, g = future_value(pv, r, n), 1 + r / 100
    q = tr(
        lang,
        f"现在投资 {pv} 元，年收益率为 {num(r)}%，按年复利计算，{n} 年后的终值是多少元？{_ROUND['zh']}",
        f"What is the future value of ${pv} invested today for {n} years at {num(r)}% per year, compounded annually?{_ROUND['en']}",
    )
    steps = [
        tr(lang, "终值 FV = PV × (1 + r)^n", "Future value FV = PV × (1 + r)^n"),
        tr(lang, "代入数据：", "Substitute: ") + f"{pv} × (1 + {num(r)}%)^{n} = {pv} × {g:g}^{n}",
        tr(lang, "计算得：", "Compute: ") + f"{pv} × {g**n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [pv * (1 + r / 100 * n), pv * g ** (n - 1), pv * g ** (n + 1)]
    return Problem(
        q, v, "money", tr(lang, "终值", "future value"), steps, mistakes, {"pv": pv, "rate_pct": r, "years": n}
    )


def _gen_present_value(rng: random.Random, lang: str) -> Problem:
    fv, r, n = rng.randrange(10000, 1000000, 1000), rng.randrange(8, 41) / 4, rng.randint(2, 15)
    v, g = present_value(fv, r, n), 1 + r / 100
    q = tr(
        lang,
        f"{n} 年后将收到一笔 {fv} 元的款项，年折现率为 {num(r)}%（按年复利），这笔款项的现值是多少元？{_ROUND['zh']}",
        f"You will receive ${fv} in {n} years. At a discount rate of {num(r)}% per year (compounded annually), "
        f"what is its present value?{_ROUND['en']}",
    )
    steps = [
        tr(lang, "现值 PV = FV ÷ (1 + r)^n", "Present value PV = FV ÷ (1 + r)^n"),
        tr(lang, "代入数据：", "Substitute: ") + f"{fv} ÷ (1 + {num(r)}%)^{n} = {fv} ÷ {g:g}^{n}",
        tr(lang, "计算得：", "Compute: ") + f"{fv} ÷ {g**n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [fv / (1 + r / 100 * n), fv * (1 - r / 100) ** n, fv / g ** (n - 1)]
    return Problem(
        q, v, "money", tr(lang, "现值", "present value"), steps, mistakes, {"fv": fv, "rate_pct": r, "years": n}
    )


def _gen_annuity_fv(rng: random.Random, lang: str) -> Problem:
    pmt, r, n = rng.randrange(1000, 50000, 500), rng.randrange(8, 33) / 4, rng.randint(3, 20)
    v, g = annuity_fv(pmt, r, n), 1 + r / 100
    q = tr(
        lang,
        f"每年年末向账户存入 {pmt} 元，年利率为 {num(r)}%（按年复利），连续存 {n} 年。第 {n} 年末（最后一次存入后）"
        f"账户余额，即普通年金终值，是多少元？{_ROUND['zh']}",
        f"You deposit ${pmt} at the end of each year for {n} years into an account earning {num(r)}% per year, "
        f"compounded annually. What is the balance right after the last deposit (the future value of this "
        f"ordinary annuity)?{_ROUND['en']}",
    )
    steps = [
        tr(
            lang,
            "普通年金终值 FV = PMT × [(1 + r)^n − 1] ÷ r",
            "Future value of an ordinary annuity FV = PMT × [(1 + r)^n − 1] ÷ r",
        ),
        tr(lang, "代入数据：", "Substitute: ") + f"{pmt} × [{g:g}^{n} − 1] ÷ {r / 100:g}",
        tr(lang, "计算得：", "Compute: ") + f"{pmt} × {(g**n - 1) / (r / 100):.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [pmt * n, v * g, pmt * g**n]
    return Problem(
        q,
        v,
        "money",
        tr(lang, "年金终值", "future value of the annuity"),
        steps,
        mistakes,
        {"payment": pmt, "rate_pct": r, "years": n},
    )


def _gen_loan_payment(rng: random.Random, lang: str) -> Problem:
    p, r, years = rng.randrange(100000, 3000000, 10000), rng.randrange(12, 25) / 4, rng.choice((5, 10, 15, 20, 25, 30))
    i, n = r / 1200, 12 * years
    v = loan_payment(p, r, years)
    q = tr(
        lang,
        f"某人申请 {p} 元的住房贷款，年利率 {num(r)}%，期限 {years} 年，采用等额本息方式按月还款。每月还款额是多少元？{_ROUND['zh']}",
        f"A ${p} mortgage has an annual interest rate of {num(r)}% and a term of {years} years, repaid in equal "
        f"monthly payments (fully amortizing). What is the monthly payment?{_ROUND['en']}",
    )
    steps = [
        tr(
            lang,
            "等额本息月供 = P × i ÷ [1 − (1 + i)^(−N)]，i 为月利率，N 为还款月数",
            "Monthly payment = P × i ÷ [1 − (1 + i)^(−N)], where i is the monthly rate and N the number of payments",
        ),
        tr(
            lang,
            f"月利率 i = {num(r)}% ÷ 12 = {i:.6f}，还款月数 N = {years} × 12 = {n}",
            f"Monthly rate i = {num(r)}% ÷ 12 = {i:.6f}; N = {years} × 12 = {n}",
        ),
        tr(lang, "计算得：", "Compute: ") + f"{p} × {i:.6f} ÷ {1 - (1 + i) ** -n:.6f} ≈ " + display(v, "money", lang),
    ]
    mistakes = [p / n + p * i, p * (1 + r / 100 * years) / n, p / n]
    return Problem(
        q,
        v,
        "money",
        tr(lang, "每月还款额", "monthly payment"),
        steps,
        mistakes,
        {"principal": p, "rate_pct": r, "years": years},
    )


def _gen_current_ratio(rng: random.Random, lang: str) -> Problem:
    ca = rng.randrange(2000, 50000, 10)
    cl = round(ca / rng.uniform(0.8, 3.0), -1)
    inv = round(ca * rng.uniform(0.15, 0.45), -1)
    tl = cl + rng.randrange(1000, 40000, 10)
    v = current_ratio(ca, cl)
    q = tr(
        lang,
        f"某公司年末流动资产为 {ca} 万元（其中存货 {num(inv)} 万元），流动负债为 {num(cl)} 万元，负债总额为 {num(tl)} 万元。"
        f"求该公司的流动比率{_ROUND['zh']}。",
        f"At year end a company has current assets of ${ca} thousand (of which inventory ${num(inv)} thousand), "
        f"current liabilities of ${num(cl)} thousand and total liabilities of ${num(tl)} thousand. "
        f"What is its current ratio?{_ROUND['en']}",
    )
    steps = [
        tr(lang, "流动比率 = 流动资产 ÷ 流动负债", "Current ratio = current assets ÷ current liabilities"),
        tr(lang, "代入数据：", "Substitute: ") + f"{ca} ÷ {num(cl)}",
        tr(lang, "计算得：流动比率 ≈ ", "Compute: current ratio ≈ ") + format_gold(v),
    ]
    mistakes = [cl / ca, (ca - inv) / cl, ca / tl]
    return Problem(
        q,
        v,
        "ratio",
        tr(lang, "流动比率", "current ratio"),
        steps,
        mistakes,
        {"current_assets": ca, "current_liabilities": cl},
    )


def _gen_debt_to_equity(rng: random.Random, lang: str) -> Problem:
    ta = rng.randrange(5000, 100000, 10)
    tl = round(ta * rng.uniform(0.25, 0.75), -1)
    eq = ta - tl
    v = debt_to_equity(ta, tl)
    q = tr(
        lang,
        f"某公司资产总额为 {ta} 万元，负债总额为 {num(tl)} 万元。求该公司的产权比率（负债总额 ÷ 所有者权益）{_ROUND['zh']}。",
        f"A company has total assets of ${ta} thousand and total liabilities of ${num(tl)} thousand. "
        f"What is its debt-to-equity ratio (total liabilities ÷ shareholders' equity)?{_ROUND['en']}",
    )
    steps = [
        tr(
            lang,
            f"所有者权益 = 资产总额 − 负债总额 = {ta} − {num(tl)} = {num(eq)} 万元",
            f"Shareholders' equity = total assets − total liabilities = {ta} − {num(tl)} = {num(eq)} thousand",
        ),
        tr(lang, "产权比率 = 负债总额 ÷ 所有者权益", "Debt-to-equity = total liabilities ÷ shareholders' equity"),
        tr(lang, "计算得：", "Compute: ") + f"{num(tl)} ÷ {num(eq)} ≈ {format_gold(v)}",
    ]
    mistakes = [tl / ta, ta / eq, eq / tl]
    return Problem(
        q,
        v,
        "ratio",
        tr(lang, "产权比率", "debt-to-equity ratio"),
        steps,
        mistakes,
        {"total_assets": ta, "total_liabilities": tl},
    )


def _gen_gross_margin(rng: random.Random, lang: str) -> Problem:
    rev = rng.randrange(5000, 200000, 10)
    cogs = round(rev * rng.uniform(0.35, 0.85), -1)
    opex = round((rev - cogs) * rng.uniform(0.2, 0.7), -1)
    v = gross_margin(rev, cogs)
    q = tr(
        lang,
        f"某公司本年营业收入 {rev} 万元，营业成本 {num(cogs)} 万元，期间费用 {num(opex)} 万元。求该公司的毛利率{_PCT['zh']}。",
        f"A company reports revenue of ${rev} thousand, cost of goods sold of ${num(cogs)} thousand and operating "
        f"expenses of ${num(opex)} thousand. What is its gross margin?{_PCT['en']}",
    )
    steps = [
        tr(
            lang, "毛利率 = (营业收入 − 营业成本) ÷ 营业收入 × 100%", "Gross margin = (revenue − COGS) ÷ revenue × 100%"
        ),
        tr(lang, "代入数据：", "Substitute: ")
        + f"({rev} − {num(cogs)}) ÷ {rev} × 100% = {num(rev - cogs)} ÷ {rev} × 100%",
        tr(lang, "计算得：", "Compute: ") + f"{(rev - cogs) / rev:.6f} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [(rev - cogs) / cogs * 100, (rev - cogs - opex) / rev * 100, cogs / rev * 100]
    return Problem(q, v, "%", tr(lang, "毛利率", "gross margin"), steps, mistakes, {"revenue": rev, "cogs": cogs})


def _gen_roe(rng: random.Random, lang: str) -> Problem:
    e0 = rng.randrange(5000, 100000, 10)
    e1 = round(e0 * rng.uniform(0.9, 1.3), -1)
    avg = (e0 + e1) / 2
    ni = round(avg * rng.uniform(0.04, 0.25), -1)
    ta = round(e1 * rng.uniform(1.5, 4.0), -1)
    v = roe(ni, e0, e1)
    q = tr(
        lang,
        f"某公司本年净利润为 {num(ni)} 万元，年初所有者权益为 {e0} 万元，年末所有者权益为 {num(e1)} 万元，年末资产总额为 {num(ta)} 万元。"
        f"按平均所有者权益计算，该公司的净资产收益率（ROE）是多少{_PCT['zh']}？",
        f"A company earned net income of ${num(ni)} thousand this year. Shareholders' equity was ${e0} thousand at the "
        f"start of the year and ${num(e1)} thousand at the end; total assets at year end were ${num(ta)} thousand. "
        f"Using average equity, what is its return on equity (ROE)?{_PCT['en']}",
    )
    steps = [
        tr(
            lang,
            "净资产收益率 = 净利润 ÷ 平均所有者权益 × 100%",
            "ROE = net income ÷ average shareholders' equity × 100%",
        ),
        tr(
            lang,
            f"平均所有者权益 = ({e0} + {num(e1)}) ÷ 2 = {num(avg)} 万元",
            f"Average equity = ({e0} + {num(e1)}) ÷ 2 = {num(avg)} thousand",
        ),
        tr(lang, "计算得：", "Compute: ") + f"{num(ni)} ÷ {num(avg)} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [ni / e1 * 100, ni / e0 * 100, ni / ta * 100]
    return Problem(
        q,
        v,
        "%",
        tr(lang, "净资产收益率", "return on equity"),
        steps,
        mistakes,
        {"net_income": ni, "equity_start": e0, "equity_end": e1},
    )


def _gen_dividend_yield(rng: random.Random, lang: str) -> Problem:
    price = rng.randrange(500, 20000) / 100
    q_div = max(0.01, round(price * rng.uniform(0.01, 0.08) / 4, 2))
    eps = round(q_div * 4 / rng.uniform(0.2, 0.8), 2)
    annual = q_div * 4
    v = dividend_yield(price, q_div)
    q = tr(
        lang,
        f"某股票当前股价为 {price:.2f} 元，公司每季度派发现金股息每股 {q_div:.2f} 元，上一年度每股收益为 {eps:.2f} 元。"
        f"求该股票的股息率{_PCT['zh']}。",
        f"A stock trades at ${price:.2f}. The company pays a quarterly dividend of ${q_div:.2f} per share, and its "
        f"annual earnings per share are ${eps:.2f}. What is the stock's dividend yield?{_PCT['en']}",
    )
    steps = [
        tr(lang, "股息率 = 每股年度股息 ÷ 股价 × 100%", "Dividend yield = annual dividend per share ÷ price × 100%"),
        tr(
            lang,
            f"每股年度股息 = {q_div:.2f} × 4 = {annual:.2f} 元",
            f"Annual dividend per share = {q_div:.2f} × 4 = ${annual:.2f}",
        ),
        tr(lang, "计算得：", "Compute: ") + f"{annual:.2f} ÷ {price:.2f} × 100% ≈ {format_gold(v)}%",
    ]
    mistakes = [q_div / price * 100, annual / eps * 100, price / annual]
    return Problem(
        q, v, "%", tr(lang, "股息率", "dividend yield"), steps, mistakes, {"price": price, "quarterly_dividend": q_div}
    )


def _gen_break_even_units(rng: random.Random, lang: str) -> Problem:
    price = rng.randrange(20, 500)
    var = rng.randrange(int(price * 0.3), int(price * 0.8))
    units = rng.randrange(500, 20000, 10)
    cm = price - var
    fixed = units * cm  # chosen so the answer is a whole number of units
    v = break_even_units(fixed, price, var)
    q = tr(
        lang,
        f"某产品单价为 {price} 元，单位变动成本为 {var} 元，每年固定成本为 {fixed} 元。求盈亏平衡点的销售量（件）。",
        f"A product sells for ${price} per unit with a variable cost of ${var} per unit; annual fixed costs are "
        f"${fixed}. How many units must be sold to break even?",
    )
    steps = [
        tr(
            lang,
            "盈亏平衡销售量 = 固定成本 ÷ (单价 − 单位变动成本)",
            "Break-even units = fixed costs ÷ (price − variable cost per unit)",
        ),
        tr(
            lang, f"单位边际贡献 = {price} − {var} = {cm} 元", f"Contribution margin per unit = {price} − {var} = ${cm}"
        ),
        tr(lang, "计算得：", "Compute: ") + f"{fixed} ÷ {cm} = " + display(v, "units", lang),
    ]
    mistakes = [fixed / price, fixed / var, fixed / cm * price]
    return Problem(
        q,
        v,
        "units",
        tr(lang, "盈亏平衡销售量", "break-even volume"),
        steps,
        mistakes,
        {"fixed_cost": fixed, "price": price, "variable_cost": var},
    )


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
KIND_NAMES: dict[str, tuple[str, str]] = {kind: (zh, en) for kind, (zh, en) in _TABLES["kind_names"].items()}
if tuple(GENERATORS) != KINDS:
    raise ValueError(f"FinCalc generators {list(GENERATORS)} differ from the task's kinds {list(KINDS)}")
