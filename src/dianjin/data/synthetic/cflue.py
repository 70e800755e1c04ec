"""CFLUE-style records: CFLUE knowledge.json's schema `{名称, task, question, choices, answer, analysis}`.

`task` is 单项选择题 / 多项选择题 / 判断题, `choices` a Python dict literal STRING (as in CFLUE),
`answer` sorted letters, `analysis` an explanation of every option. Kinds (`CFLUE_KINDS`):
classification questions from `TAXONOMIES` (货币政策工具, 会计要素, 税种, 证券品种, 金融市场, 银行风险;
"belongs to", "does not belong to", select-all, true/false), statements from `TOPICS` (each fact
has a true and a false wording and a reason), and calculations from `CALCS` (simple interest, real
rate, deposit creation, quick ratio, equity after a transaction, current yield, VAT payable, bill
discount) with seeded numbers and distractors from common mistakes. The taxonomies and topics are
package data (tables/cflue.json). One block of len(CFLUE_KINDS) records in four is English.
Deviation: CFLUE has no English questions; ours are bilingual on purpose (the model is).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dianjin.data.synthetic.common import (
    Record,
    check_n,
    distinct_shown,
    f2,
    load_table,
    num,
    simple_interest,
    simple_interest_mistakes,
    tr,
    write_json,
)

LETTERS = "ABCDEFG"
LANG_CYCLE = ("zh", "en", "zh", "zh")  # one block in four is English: "mostly Chinese"

SINGLE, MULTI, TF = "单项选择题", "多项选择题", "判断题"
TF_CHOICES = {"zh": {"A": "对", "B": "错"}, "en": {"A": "True", "B": "False"}}


@dataclass(frozen=True)
class Group:
    """One category of a taxonomy and its members, each as (zh, en)."""

    zh: str
    en: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Taxonomy:
    exam: str  # CFLUE's 名称
    noun_zh: str  # what the options are: 选项 / 税种 / 情形
    noun_en: str
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Fact:
    """A statement with a true and a false wording and the reason, in both languages."""

    true_zh: str
    false_zh: str
    why_zh: str
    true_en: str
    false_en: str
    why_en: str

    def text(self, lang: str, true: bool) -> str:
        return getattr(self, f"{'true' if true else 'false'}_{lang}")

    def why(self, lang: str) -> str:
        return getattr(self, f"why_{lang}")


@dataclass(frozen=True)
class Topic:
    zh: str
    en: str
    exam: str
    facts: tuple[Fact, ...]


def _taxonomy(d: dict[str, Any]) -> Taxonomy:
    groups = tuple(Group(g["zh"], g["en"], tuple((zh, en) for zh, en in g["members"])) for g in d["groups"])
    return Taxonomy(d["exam"], d["noun_zh"], d["noun_en"], groups)


def _topic(d: dict[str, Any]) -> Topic:
    return Topic(d["zh"], d["en"], d["exam"], tuple(Fact(**fact) for fact in d["facts"]))


_TABLES = load_table("cflue")
TAXONOMIES: dict[str, Taxonomy] = {name: _taxonomy(d) for name, d in _TABLES["taxonomies"].items()}
TOPICS: dict[str, Topic] = {name: _topic(d) for name, d in _TABLES["topics"].items()}


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


# --- CFLUE record assembly ---------------------------------------------------------------------
def _cflue_record(exam: str, qtype: str, question: str, options: list[str], correct: set[int], analysis: str) -> Record:
    """The CFLUE record; `options` already in display order, `correct` their indices."""
    choices = {LETTERS[k]: text for k, text in enumerate(options)}
    answer = "".join(LETTERS[k] for k in sorted(correct))
    return {
        "名称": exam,
        "task": qtype,
        "question": question,
        "choices": repr(choices),
        "answer": answer,
        "analysis": analysis,
    }


def _conclude(lang: str, answer: str) -> str:
    return tr(lang, f"因此，本题答案为{answer}。", f"Therefore the answer is {answer}.")


def _quote(lang: str, text: str) -> str:
    return tr(lang, f"“{text}”", f'"{text}"')


def _join(lang: str, *parts: str) -> str:
    """Sentences run together in Chinese, space-separated in English."""
    return tr(lang, "", " ").join(p.strip() for p in parts if p.strip())


def _pick_taxonomy(rng: random.Random, min_members: int = 1) -> tuple[Taxonomy, int]:
    """A taxonomy and the index of one of its groups with at least `min_members` members."""
    tax = TAXONOMIES[rng.choice(sorted(TAXONOMIES))]
    fits = [g for g, group in enumerate(tax.groups) if len(group.members) >= min_members]
    return tax, rng.choice(fits)


def _member_lines(lang: str, tax: Taxonomy, options: list[tuple[int, int]]) -> str:
    """One clause per option: which group it belongs to."""
    parts = []
    for k, (g, m) in enumerate(options):
        group, text = tax.groups[g], tax.groups[g].members[m][0 if lang == "zh" else 1]
        parts.append(
            tr(
                lang,
                f"{LETTERS[k]}项{_quote(lang, text)}属于{group.zh}",
                f"({LETTERS[k]}) {_quote(lang, text)} falls under {group.en}",
            )
        )
    return tr(lang, "；".join(parts) + "。", "; ".join(parts) + ".")


def _group_intro(lang: str, group: Group) -> str:
    names = [m[0 if lang == "zh" else 1] for m in group.members]
    return tr(lang, f"{group.zh}包括{'、'.join(names)}等。", f"The category of {group.en} covers {', '.join(names)}.")


def _classify(rng: random.Random, lang: str, negate: bool = False, multi: bool = False) -> Record:
    """Options drawn from the groups of one taxonomy; the answer is membership (or its absence)."""
    tax, g = _pick_taxonomy(rng, min_members=3 if (negate or multi) else 1)
    group, others = (
        tax.groups[g],
        [(h, m) for h, grp in enumerate(tax.groups) if h != g for m in range(len(grp.members))],
    )
    inside = [(g, m) for m in range(len(group.members))]
    if multi:
        n_opts = rng.choice((4, 5)) if len(others) >= 3 else 4
        n_in = rng.randint(2, min(len(inside), n_opts - 1))
        picked = rng.sample(inside, n_in) + rng.sample(others, n_opts - n_in)
    elif negate:
        picked = rng.sample(inside, 3) + [rng.choice(others)]
    else:
        picked = [rng.choice(inside)] + rng.sample(others, 3)
    rng.shuffle(picked)
    want_inside = not negate
    correct = {k for k, (h, _) in enumerate(picked) if (h == g) == want_inside}
    options = [tax.groups[h].members[m][0 if lang == "zh" else 1] for h, m in picked]
    noun_zh, noun_en = tax.noun_zh, tax.noun_en
    if multi:
        qtype = MULTI
        q = tr(
            lang,
            f"下列{noun_zh}中，属于{group.zh}的有（ ）。",
            f"Which of the following {noun_en} belong to {group.en}? (Select all that apply.)",
        )
    else:
        qtype = SINGLE
        q = tr(
            lang,
            f"下列{noun_zh}中，{'不' if negate else ''}属于{group.zh}的是（ ）。",
            f"Which of the following {noun_en} {'does NOT belong' if negate else 'belongs'} to {group.en}?",
        )
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _join(lang, _group_intro(lang, group), _member_lines(lang, tax, picked), _conclude(lang, answer))
    return _cflue_record(tax.exam, qtype, q, options, correct, analysis)


def _classify_tf(rng: random.Random, lang: str) -> Record:
    tax, g = _pick_taxonomy(rng)
    group = tax.groups[g]
    true = rng.random() < 0.5
    if true:
        h, m = g, rng.randrange(len(group.members))
    else:
        h = rng.choice([x for x in range(len(tax.groups)) if x != g])
        m = rng.randrange(len(tax.groups[h].members))
    text = tax.groups[h].members[m][0 if lang == "zh" else 1]
    q = tr(lang, f"{text}属于{group.zh}。（ ）", f"The category of {group.en} includes {text}. (True or False?)")
    fact = tr(
        lang,
        f"{_quote(lang, text)}属于{tax.groups[h].zh}",
        f"The category of {tax.groups[h].en} includes {_quote(lang, text)}",
    )
    verdict = tr(
        lang, f"，题目说法{'正确' if true else '错误'}。", f", so the statement is {'true' if true else 'false'}."
    )
    answer = "A" if true else "B"
    analysis = _join(lang, _group_intro(lang, group), fact + verdict, _conclude(lang, answer))
    return _cflue_record(tax.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _statement_lines(lang: str, facts: list[Fact], truths: list[bool]) -> str:
    parts = [
        tr(
            lang,
            f"{LETTERS[k]}项{'正确' if ok else '错误'}：{f.why(lang)}",
            f"({LETTERS[k]}) is {'correct' if ok else 'incorrect'}: {f.why(lang)}",
        )
        for k, (f, ok) in enumerate(zip(facts, truths))
    ]
    return "\n".join(parts)


def _statements(rng: random.Random, lang: str, multi: bool = False) -> Record:
    """Options are statements of one topic, each in its true or its false wording."""
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    if multi:
        n_opts = rng.choice((4, 5))
        n_true = rng.randint(2, n_opts - 1)
        truths = [True] * n_true + [False] * (n_opts - n_true)
        want = True
    else:
        n_opts, want = 4, rng.random() < 0.5  # want: ask for the correct one or the incorrect one
        truths = [want] + [not want] * 3
    facts = rng.sample(topic.facts, n_opts)
    order = list(range(n_opts))
    rng.shuffle(order)
    facts, truths = [facts[k] for k in order], [truths[k] for k in order]
    options = [f.text(lang, ok) for f, ok in zip(facts, truths)]
    correct = {k for k, ok in enumerate(truths) if ok == want}
    if multi:
        qtype = MULTI
        q = tr(
            lang,
            f"关于{topic.zh}，下列说法中正确的有（ ）。",
            f"Regarding {topic.en}, which of the following statements are correct? (Select all that apply.)",
        )
    else:
        qtype = SINGLE
        q = tr(
            lang,
            f"关于{topic.zh}，下列说法{'正确' if want else '错误'}的是（ ）。",
            f"Regarding {topic.en}, which of the following statements is {'correct' if want else 'INCORRECT'}?",
        )
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _statement_lines(lang, facts, truths) + "\n" + _conclude(lang, answer)
    return _cflue_record(topic.exam, qtype, q, options, correct, analysis)


def _statement_tf(rng: random.Random, lang: str) -> Record:
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    fact, true = rng.choice(topic.facts), rng.random() < 0.5
    q = fact.text(lang, true) + tr(lang, "（ ）", " (True or False?)")
    verdict = tr(lang, f"该说法{'正确' if true else '错误'}。", f"The statement is {'true' if true else 'false'}. ")
    answer = "A" if true else "B"
    analysis = _join(lang, verdict, fact.why(lang), _conclude(lang, answer))
    return _cflue_record(topic.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _value_text(x: float, percent: bool) -> str:
    return f2(x) + ("%" if percent else "")


def distinct_values(calc: Calc, k: int) -> list[str]:
    """The answer and k - 1 distinct distractors (mistakes first, then ±10%, ±20%... of the answer)."""
    bumps = [calc.value * (1 + s * j / 10) for j in range(1, 10) for s in (1, -1)]
    return distinct_shown(calc.value, [*calc.mistakes, *bumps], lambda x: _value_text(x, calc.percent), k)


def _calc_mcq(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = distinct_values(calc, 4)
    order = list(range(4))
    rng.shuffle(order)
    options = [values[k] for k in order]
    correct = {order.index(0)}
    answer = LETTERS[order.index(0)]
    analysis = _join(lang, *calc.steps, _conclude(lang, answer))
    return _cflue_record(calc.exam, SINGLE, _join(lang, calc.context, calc.ask), options, correct, analysis)


def _calc_tf(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = distinct_values(calc, 2)
    true = rng.random() < 0.5
    shown = values[0] if true else values[1]
    claim = calc.claim.format(value=shown)
    q = _join(lang, calc.context, claim + tr(lang, "（ ）", " (True or False?)"))
    verdict = tr(
        lang,
        f"正确结果为{values[0]}，题目说法{'正确' if true else '错误'}。",
        f"The correct result is {values[0]}, so the statement is {'true' if true else 'false'}.",
    )
    answer = "A" if true else "B"
    analysis = _join(lang, *calc.steps, verdict, _conclude(lang, answer))
    return _cflue_record(calc.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


# kind -> fn(rng, lang) -> CFLUE record
CFLUE_KINDS: dict[str, Callable[[random.Random, str], Record]] = {
    "classify": _classify,
    "classify_not": lambda rng, lang: _classify(rng, lang, negate=True),
    "classify_multi": lambda rng, lang: _classify(rng, lang, multi=True),
    "classify_tf": _classify_tf,
    "statement": _statements,
    "statement_multi": lambda rng, lang: _statements(rng, lang, multi=True),
    "statement_tf": _statement_tf,
    "calc": _calc_mcq,
    "calc_tf": _calc_tf,
}


def cflue_style(n: int, seed: int) -> list[Record]:
    """`n` CFLUE knowledge.json records; kinds cycle, one block of len(CFLUE_KINDS) in four is English."""
    check_n(n, "cflue_style")
    kinds = list(CFLUE_KINDS)
    out = []
    for i in range(n):
        kind, lang = kinds[i % len(kinds)], LANG_CYCLE[(i // len(kinds)) % len(LANG_CYCLE)]
        out.append(CFLUE_KINDS[kind](random.Random(f"cflue:{seed}:{i}"), lang))
    return out


def write_cflue(records: list[Record], path: str | Path) -> Path:
    """A JSON array, like CFLUE's knowledge.json."""
    return write_json(records, path)
