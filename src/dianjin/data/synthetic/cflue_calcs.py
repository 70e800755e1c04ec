"""CFLUE-style calculation questions: `CALCS` (name -> `fn(rng, lang) -> Calc`) draws seeded
numbers for one exam calculation (simple interest, real rate, deposit creation, quick ratio,
equity after a transaction, current yield, VAT payable, bill discount) and returns a `Calc`: the
given facts, the question with a blank, a true/false claim, the exact answer, the results of
common mistakes and the worked solution, in Chinese or English. `distinct_values` turns a `Calc`
into the shown answer and distinct distractors (the mistakes first). `cflue` builds the "calc"
and "calc_tf" records from these and re-exports `CALCS`, `Calc` and `distinct_values`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from dianjin.data.synthetic.common import distinct_shown, f2, num, simple_interest, simple_interest_mistakes, tr


@dataclass(frozen=True)
class Calc:
    """A calculation: a context, a question with a blank, a claim for true/false, answer and mistakes."""

    exam: str
    context: str  # the facts given
    ask: str  # the question, with a blank "（ ）" (zh) or "____" (en)
    claim: str  # a true/false statement, `{value}` where the number goes
    value: float
    percent: bool  # the value is a percent number; options end in "%"
    mistakes: tuple[float, ...]  # common wrong results, the distractors
    steps: tuple[str, ...]  # the worked solution


def _calc_simple_interest(rng: random.Random, lang: str) -> Calc:
    p, r, t = rng.randrange(10_000, 500_001, 1000), rng.randrange(150, 451, 5) / 100, rng.randint(2, 5)
    v = simple_interest(p, r, t)
    return Calc(
        "银行从业资格",
        tr(
            lang,
            f"某客户将{p}元存入银行{t}年期定期存款，年利率为{num(r)}%，按单利计息。",
            f"A customer deposits ${p} in a {t}-year time deposit at a simple annual interest rate of {num(r)}%.",
        ),
        tr(lang, "到期时该客户可获得的利息为（ ）元。", "The interest received at maturity is ____ dollars."),
        tr(lang, "到期时该客户可获得的利息为{value}元。", "The interest received at maturity is {value} dollars."),
        v,
        False,
        simple_interest_mistakes(p, r, t),
        (
            tr(lang, "单利利息 = 本金 × 年利率 × 年数。", "Simple interest = principal × annual rate × years."),
            f"{p} × {num(r)}% × {t} = {f2(v)}" + tr(lang, "（元）。", " dollars."),
        ),
    )


def _calc_real_rate(rng: random.Random, lang: str) -> Calc:
    i = rng.randrange(200, 801, 5) / 100
    pi = rng.choice([x / 100 for x in range(50, 601, 10) if abs(x / 100 - i) >= 0.3])
    v = i - pi
    return Calc(
        "经济师（金融专业）",
        tr(
            lang,
            f"某年一年期存款的名义利率为{num(i)}%，同期通货膨胀率为{num(pi)}%。",
            f"The nominal one-year deposit rate is {num(i)}% and inflation over the same year is {num(pi)}%.",
        ),
        tr(
            lang,
            "按近似公式计算，实际利率为（ ）。",
            "Using the approximation formula, the real interest rate is ____.",
        ),
        tr(
            lang,
            "按近似公式计算，实际利率为{value}。",
            "Using the approximation formula, the real interest rate is {value}.",
        ),
        v,
        True,
        (i + pi, pi - i, i),
        (
            tr(lang, "实际利率 ≈ 名义利率 − 通货膨胀率。", "Real rate ≈ nominal rate − inflation rate."),
            f"{num(i)}% − {num(pi)}% = {f2(v)}%" + tr(lang, "。", "."),
        ),
    )


def _calc_deposit_creation(rng: random.Random, lang: str) -> Calc:
    d, rr = rng.randrange(100, 1001, 10), rng.choice((8.0, 10.0, 12.5, 15.0, 20.0, 25.0))
    v = d / (rr / 100)
    return Calc(
        "经济师（金融专业）",
        tr(
            lang,
            f"某商业银行吸收原始存款{d}万元，法定存款准备金率为{num(rr)}%，不考虑超额准备金和现金漏损。",
            f"A bank takes in an original deposit of ${d} thousand. The required reserve ratio is {num(rr)}%; "
            "ignore excess reserves and cash leakage.",
        ),
        tr(
            lang,
            "银行体系最多能创造的存款总额（含原始存款）为（ ）万元。",
            "The maximum total deposits the banking system can create, including the original deposit, is ____ "
            "thousand dollars.",
        ),
        tr(
            lang,
            "银行体系最多能创造的存款总额（含原始存款）为{value}万元。",
            "The maximum total deposits the banking system can create, including the original deposit, is {value} "
            "thousand dollars.",
        ),
        v,
        False,
        (d * rr / 100, v - d, d * (1 + rr / 100)),
        (
            tr(
                lang,
                "存款总额 = 原始存款 ÷ 法定存款准备金率。",
                "Total deposits = original deposit ÷ required reserve ratio.",
            ),
            f"{d} ÷ {num(rr)}% = {f2(v)}" + tr(lang, "（万元）。", "."),
        ),
    )


def _calc_quick_ratio(rng: random.Random, lang: str) -> Calc:
    ca = rng.randrange(800, 6001, 10)
    inv = round(ca * rng.uniform(0.2, 0.5))
    cl = round(ca / rng.uniform(1.2, 2.5))
    v = (ca - inv) / cl
    return Calc(
        "注册会计师",
        tr(
            lang,
            f"某公司年末流动资产为{ca}万元，其中存货{inv}万元，流动负债为{cl}万元。",
            f"At year end a company has current assets of ${ca} thousand, of which inventories are ${inv} thousand, "
            f"and current liabilities of ${cl} thousand.",
        ),
        tr(lang, "该公司的速动比率为（ ）。", "The company's quick ratio is ____."),
        tr(lang, "该公司的速动比率为{value}。", "The company's quick ratio is {value}."),
        v,
        False,
        (ca / cl, inv / cl, cl / (ca - inv)),
        (
            tr(
                lang,
                "速动比率 = （流动资产 − 存货）÷ 流动负债。",
                "Quick ratio = (current assets − inventories) ÷ current liabilities.",
            ),
            f"({ca} − {inv}) ÷ {cl} = {ca - inv} ÷ {cl} = {f2(v)}" + tr(lang, "。", "."),
        ),
    )


def _calc_equity_after(rng: random.Random, lang: str) -> Calc:
    a = rng.randrange(1000, 10_001, 50)
    liab = round(a * rng.uniform(0.3, 0.7) / 10) * 10
    x = rng.randrange(50, min(liab, 800), 10)
    v = a - liab
    return Calc(
        "初级会计职称",
        tr(
            lang,
            f"某企业月初资产总额为{a}万元，负债总额为{liab}万元。本月以银行存款偿还短期借款{x}万元。",
            f"At the start of the month a company has total assets of ${a} thousand and total liabilities of ${liab} "
            f"thousand. During the month it repays a ${x} thousand short-term loan from its bank deposits.",
        ),
        tr(
            lang,
            "月末该企业的所有者权益总额为（ ）万元。",
            "Owners' equity at the end of the month is ____ thousand dollars.",
        ),
        tr(
            lang,
            "月末该企业的所有者权益总额为{value}万元。",
            "Owners' equity at the end of the month is {value} thousand dollars.",
        ),
        v,
        False,
        (a - liab - x, a - liab + x, a - x),
        (
            tr(
                lang,
                "所有者权益 = 资产 − 负债；以存款还借款使资产和负债同时减少，所有者权益不变。",
                "Equity = assets − liabilities; repaying a loan from deposits lowers assets and liabilities equally, "
                "so equity does not change.",
            ),
            f"({a} − {x}) − ({liab} − {x}) = {a} − {liab} = {f2(v)}" + tr(lang, "（万元）。", "."),
        ),
    )


def _calc_current_yield(rng: random.Random, lang: str) -> Calc:
    c = rng.randrange(200, 701, 25) / 100
    price = rng.choice([x / 2 for x in range(176, 225) if x != 200])
    v = c * 100 / price
    return Calc(
        "证券从业资格",
        tr(
            lang,
            f"某债券面值为100元，票面利率为{num(c)}%，每年付息一次，当前市场价格为{num(price)}元。",
            f"A bond with a face value of $100 pays an annual coupon of {num(c)}% and trades at ${num(price)}.",
        ),
        tr(lang, "该债券的当期收益率为（ ）。", "The bond's current yield is ____."),
        tr(lang, "该债券的当期收益率为{value}。", "The bond's current yield is {value}."),
        v,
        True,
        (c, (c + 100 - price) / price * 100, c * price / 100),
        (
            tr(lang, "当期收益率 = 年利息 ÷ 市场价格。", "Current yield = annual coupon ÷ market price."),
            f"100 × {num(c)}% ÷ {num(price)} = {num(c)} ÷ {num(price)} = {f2(v)}%" + tr(lang, "。", "."),
        ),
    )


def _calc_vat(rng: random.Random, lang: str) -> Calc:
    s = rng.randrange(100, 2001, 5)
    x = round(s * 0.13 * rng.uniform(0.2, 0.8), 2)
    v = s * 0.13 - x
    return Calc(
        "税务师",
        tr(
            lang,
            f"某增值税一般纳税人本月销售货物取得不含税销售额{s}万元，适用税率13%，本月取得合规的可抵扣进项税额{num(x)}万元。",
            f"A general VAT taxpayer's sales this month are ${s} thousand excluding VAT, taxed at 13%, and its deductible "
            f"input VAT is ${num(x)} thousand.",
        ),
        tr(lang, "该纳税人本月应缴纳增值税（ ）万元。", "VAT payable for the month is ____ thousand dollars."),
        tr(lang, "该纳税人本月应缴纳增值税{value}万元。", "VAT payable for the month is {value} thousand dollars."),
        v,
        False,
        (s * 0.13, s / 1.13 * 0.13 - x, s * 0.13 + x),
        (
            tr(
                lang,
                "应纳税额 = 销项税额 − 进项税额，销项税额 = 不含税销售额 × 税率。",
                "VAT payable = output VAT − input VAT, with output VAT = sales excluding VAT × rate.",
            ),
            f"{s} × 13% − {num(x)} = {f2(s * 0.13)} − {num(x)} = {f2(v)}" + tr(lang, "（万元）。", "."),
        ),
    )


def _calc_bill_discount(rng: random.Random, lang: str) -> Calc:
    f, d, days = rng.randrange(100_000, 5_000_001, 10_000), rng.randrange(120, 401, 5) / 100, rng.randrange(30, 181, 5)
    v = f * d / 100 * days / 360
    return Calc(
        "银行从业资格",
        tr(
            lang,
            f"某企业持一张面额{f}元的银行承兑汇票到银行贴现，距到期日还有{days}天，年贴现率为{num(d)}%（一年按360天计）。",
            f"A company discounts a ${f} banker's acceptance with {days} days to maturity at an annual discount rate of "
            f"{num(d)}% (360-day year).",
        ),
        tr(lang, "银行应扣除的贴现利息为（ ）元。", "The discount interest deducted by the bank is ____ dollars."),
        tr(lang, "银行应扣除的贴现利息为{value}元。", "The discount interest deducted by the bank is {value} dollars."),
        v,
        False,
        (f * d / 100 * days / 365, f * d / 100, f - v),
        (
            tr(
                lang,
                "贴现利息 = 票面金额 × 年贴现率 × 贴现天数 ÷ 360。",
                "Discount interest = face value × annual discount rate × days ÷ 360.",
            ),
            f"{f} × {num(d)}% × {days} ÷ 360 = {f2(v)}" + tr(lang, "（元）。", "."),
        ),
    )


CALCS: dict[str, Callable[[random.Random, str], Calc]] = {
    "simple_interest": _calc_simple_interest,
    "real_rate": _calc_real_rate,
    "deposit_creation": _calc_deposit_creation,
    "quick_ratio": _calc_quick_ratio,
    "equity_after": _calc_equity_after,
    "current_yield": _calc_current_yield,
    "vat": _calc_vat,
    "bill_discount": _calc_bill_discount,
}


def _value_text(x: float, percent: bool) -> str:
    return f2(x) + ("%" if percent else "")


def distinct_values(calc: Calc, k: int) -> list[str]:
    """The answer and k - 1 distinct distractors (mistakes first, then ±10%, ±20%... of the answer)."""
    bumps = [calc.value * (1 + s * j / 10) for j in range(1, 10) for s in (1, -1)]
    return distinct_shown(calc.value, [*calc.mistakes, *bumps], lambda x: _value_text(x, calc.percent), k)
