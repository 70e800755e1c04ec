"""FinQA-style records (English): FinQA's schema `{id, filename, pre_text, post_text, table, table_ori,
qa: {question, answer, explanation, exe_ans, program, program_re, gold_inds, ann_table_rows, ann_text_rows}}`.

Invented company tables (income statement, segments, balance sheet, roll-forward) in FinQA's
lower-case, spaced style with "$ 1,234" cells; company names, regions and the post_text reasons
are package data (tables/finqa.json). Questions (`FINQA_TEMPLATES`): percentage change,
difference, ratio, share of a total, change in a share, table_sum, table_average, greater (yes/no,
across years and across rows), margins, working capital / current ratio, and two from the text
(share repurchase cost, annual dividend). `exe_ans` is `dianjin.tasks.finqa_program.execute(program,
table)`, so it matches by construction; `answer` (the human answer) is exe_ans written with the
fewest decimals within 0.05%.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dianjin.data.synthetic.common import Record, check_n, load_table, num, write_json
from dianjin.tasks.finqa_program import execute
from dianjin.tasks.numeric import round_half_up

_TABLES = load_table("finqa")
COMPANIES: tuple[tuple[str, str, str], ...] = tuple(tuple(c) for c in _TABLES["companies"])  # (name, ticker, industry)
SEGMENTS: tuple[str, ...] = tuple(_TABLES["segments"])
_REASONS = {k: (tuple(d["up"]), tuple(d["down"])) for k, d in _TABLES["reasons"].items()}
# table kind -> (the row post_text discusses, (reasons it rose, reasons it fell))
POST_TEXT: dict[str, tuple[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    kind: (d["row"], _REASONS[d["reasons"]]) for kind, d in _TABLES["post_text"].items()
}


@dataclass
class FinTable:
    """A generated table: rows in display order, values per column (newest year first)."""

    kind: str
    title: str
    corner: str  # the header's first cell
    years: list[str]
    rows: list[tuple[str, list[float]]]
    parts: list[tuple[list[str], str]]  # (part rows, whole row) pairs for share questions
    money_rows: frozenset[str]  # rows displayed with "$ "
    decimals: int

    def value(self, row: str, col: int) -> float:
        return dict(self.rows)[row][col]

    def index(self, row: str) -> int:
        """The row's index in the table (header = 0), for ann_table_rows / gold_inds."""
        return 1 + [name for name, _ in self.rows].index(row)

    def cell(self, row: str, x: float, original: bool = False) -> str:
        text = f"{x:,.{self.decimals}f}"
        if row in self.money_rows:
            return f"${text}" if original else f"$ {text}"
        return text

    def table(self, original: bool = False) -> list[list[str]]:
        header = [self.corner] + self.years
        return [header] + [[name] + [self.cell(name, x, original) for x in vals] for name, vals in self.rows]

    def linear(self, row: str) -> str:
        """FinQA's gold_inds sentence for a table row."""
        vals = dict(self.rows)[row]
        return " ".join(f"the {row} of {y} is {self.cell(row, x)} ;" for y, x in zip(self.years, vals))


def _years(rng: random.Random, k: int) -> list[str]:
    y0 = rng.randint(2012, 2023)
    return [str(y0 - j) for j in range(k)]


def _series(rng: random.Random, start: float, k: int, decimals: int, swing: float = 0.15) -> list[float]:
    """k values, oldest first, each within ±swing of the previous; returned newest first."""
    vals = [round(start, decimals)]
    for _ in range(k - 1):
        vals.append(round(vals[-1] * (1 + rng.uniform(-swing, swing)), decimals))
    return vals[::-1]


def _income_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    rev = _series(rng, rng.uniform(800, 20000), 3, decimals)
    cost_ratio, opex_ratio = rng.uniform(0.48, 0.7), rng.uniform(0.1, 0.18)
    cost = [round(r * (cost_ratio + rng.uniform(-0.03, 0.03)), decimals) for r in rev]
    gross = [round(r - c, decimals) for r, c in zip(rev, cost)]
    opex = [round(r * (opex_ratio + rng.uniform(-0.02, 0.02)), decimals) for r in rev]
    op = [round(g - o, decimals) for g, o in zip(gross, opex)]
    net = [round(o * rng.uniform(0.55, 0.8), decimals) for o in op]
    rows = [
        ("net revenue", rev),
        ("cost of sales", cost),
        ("gross profit", gross),
        ("operating expenses", opex),
        ("operating income", op),
        ("net income", net),
    ]
    parts = [(["cost of sales", "gross profit", "operating expenses", "operating income", "net income"], "net revenue")]
    return FinTable(
        "income",
        "consolidated results of operations",
        "( in millions )",
        years,
        rows,
        parts,
        frozenset({"net revenue", "net income"}),
        decimals,
    )


def _segment_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    segs = rng.sample(SEGMENTS, rng.randint(3, 4))
    rows = [(s, _series(rng, rng.uniform(150, 6000), 3, decimals, 0.2)) for s in segs]
    total = [round(sum(v[j] for _, v in rows), decimals) for j in range(3)]
    rows.append(("total net sales", total))
    return FinTable(
        "segments",
        "net sales by geographic region",
        "( in millions )",
        years,
        rows,
        [(segs, "total net sales")],
        frozenset({segs[0], "total net sales"}),
        decimals,
    )


def _balance_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 2)
    assets = [
        (name, _series(rng, rng.uniform(lo, hi), 2, decimals, 0.2))
        for name, lo, hi in (
            ("cash and cash equivalents", 100, 3000),
            ("accounts receivable", 200, 4000),
            ("inventories", 150, 3500),
            ("other current assets", 50, 600),
        )
    ]
    liabs = [
        (name, _series(rng, rng.uniform(lo, hi), 2, decimals, 0.2))
        for name, lo, hi in (
            ("accounts payable", 150, 2500),
            ("accrued liabilities", 80, 1200),
            ("short-term debt", 50, 1500),
        )
    ]
    tca = [round(sum(v[j] for _, v in assets), decimals) for j in range(2)]
    tcl = [round(sum(v[j] for _, v in liabs), decimals) for j in range(2)]
    rows = assets + [("total current assets", tca)] + liabs + [("total current liabilities", tcl)]
    parts = [([n for n, _ in assets], "total current assets"), ([n for n, _ in liabs], "total current liabilities")]
    money = frozenset(
        {"cash and cash equivalents", "total current assets", "accounts payable", "total current liabilities"}
    )
    return FinTable("balance", "selected balance sheet data", "december 31", years, rows, parts, money, decimals)


def _rollforward_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    begin = round(rng.uniform(100, 3000), decimals)
    cols = []  # oldest first: (begin, additions, reductions, end)
    for _ in range(3):
        add = round(begin * rng.uniform(0.05, 0.4), decimals)
        red = round(begin * rng.uniform(0.05, 0.35), decimals)
        end = round(begin + add - red, decimals)
        cols.append((begin, add, red, end))
        begin = end
    cols.reverse()
    names = ("balance at beginning of year", "additions", "reductions", "balance at end of year")
    rows = [(name, [c[r] for c in cols]) for r, name in enumerate(names)]
    return FinTable(
        "rollforward",
        "changes in the allowance for doubtful accounts",
        "( in millions )",
        years,
        rows,
        [],
        frozenset({names[0], names[3]}),
        decimals,
    )


TABLES: dict[str, Callable[[random.Random, int], FinTable]] = {
    "income": _income_table,
    "segments": _segment_table,
    "balance": _balance_table,
    "rollforward": _rollforward_table,
}


@dataclass
class TextFacts:
    """Numbers stated in pre_text (not in the table), for the text questions."""

    year: str
    shares: float  # millions of shares repurchased
    price: float  # average price per share
    dividend: float  # quarterly dividend per share
    sentences: list[str]
    repurchase_index: int
    dividend_index: int


@dataclass(frozen=True)
class Question:
    question: str
    program: str
    kind: str  # "pct", "num" or "yesno": how the human answer is written
    rows: tuple[str, ...] = ()  # table rows used
    texts: tuple[int, ...] = ()  # pre_text sentences used


def _two_years(rng: random.Random, t: FinTable) -> tuple[int, int]:
    """Column indices (newer, older) of two years."""
    a, b = sorted(rng.sample(range(len(t.years)), 2))
    return a, b


def _q_pct_change(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    new, old = num(t.value(row, a)), num(t.value(row, b))
    return Question(
        f"what was the percentage change in {row} from {t.years[b]} to {t.years[a]}?",
        f"subtract({new}, {old}), divide(#0, {old})",
        "pct",
        (row,),
    )


def _q_difference(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    return Question(
        f"what was the change in {row} between {t.years[b]} and {t.years[a]} , in millions?",
        f"subtract({num(t.value(row, a))}, {num(t.value(row, b))})",
        "num",
        (row,),
    )


def _q_ratio(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    (r1, _), (r2, _) = rng.sample(t.rows, 2)
    c = rng.randrange(len(t.years))
    return Question(
        f"what was the ratio of {r1} to {r2} in {t.years[c]}?",
        f"divide({num(t.value(r1, c))}, {num(t.value(r2, c))})",
        "num",
        (r1, r2),
    )


def _q_share(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    parts, whole = rng.choice(t.parts)
    part, c = rng.choice(parts), rng.randrange(len(t.years))
    return Question(
        f"what percentage of {whole} in {t.years[c]} was {part}?",
        f"divide({num(t.value(part, c))}, {num(t.value(whole, c))})",
        "pct",
        (part, whole),
    )


def _q_share_change(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    parts, whole = rng.choice(t.parts)
    part, (a, b) = rng.choice(parts), _two_years(rng, t)
    v = {k: (num(t.value(part, k)), num(t.value(whole, k))) for k in (a, b)}
    return Question(
        f"what was the change in {part} as a percentage of {whole} from {t.years[b]} to {t.years[a]}?",
        f"divide({v[a][0]}, {v[a][1]}), divide({v[b][0]}, {v[b][1]}), subtract(#0, #1)",
        "pct",
        (part, whole),
    )


def _q_sum(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row = rng.choice(t.rows)[0]
    return Question(
        f"what was the total {row} for {' , '.join(t.years[::-1])} combined , in millions?",
        f"table_sum({row}, none)",
        "num",
        (row,),
    )


def _q_average(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row = rng.choice(t.rows)[0]
    return Question(
        f"what was the average {row} from {t.years[-1]} to {t.years[0]} , in millions?",
        f"table_average({row}, none)",
        "num",
        (row,),
    )


def _q_greater_years(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    return Question(
        f"was {row} in {t.years[a]} greater than in {t.years[b]}?",
        f"greater({num(t.value(row, a))}, {num(t.value(row, b))})",
        "yesno",
        (row,),
    )


def _q_greater_rows(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    (r1, _), (r2, _) = rng.sample(t.rows, 2)
    c = rng.randrange(len(t.years))
    return Question(
        f"in {t.years[c]} , was {r1} greater than {r2}?",
        f"greater({num(t.value(r1, c))}, {num(t.value(r2, c))})",
        "yesno",
        (r1, r2),
    )


def _q_margin(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    c = rng.randrange(len(t.years))
    rev, y = num(t.value("net revenue", c)), t.years[c]
    if rng.random() < 0.5:
        return Question(
            f"what was the gross margin in {y}?",
            f"subtract({rev}, {num(t.value('cost of sales', c))}), divide(#0, {rev})",
            "pct",
            ("net revenue", "cost of sales"),
        )
    return Question(
        f"what was the operating margin in {y}?",
        f"divide({num(t.value('operating income', c))}, {rev})",
        "pct",
        ("operating income", "net revenue"),
    )


def _q_liquidity(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    c = rng.randrange(len(t.years))
    tca, tcl = num(t.value("total current assets", c)), num(t.value("total current liabilities", c))
    rows = ("total current assets", "total current liabilities")
    if rng.random() < 0.5:
        return Question(
            f"what was the working capital at december 31 , {t.years[c]} , in millions?",
            f"subtract({tca}, {tcl})",
            "num",
            rows,
        )
    return Question(f"what was the current ratio at december 31 , {t.years[c]}?", f"divide({tca}, {tcl})", "num", rows)


def _q_repurchase(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    return Question(
        f"what was the total cost of the shares repurchased in {f.year} , in millions?",
        f"multiply({num(f.shares)}, {num(f.price)})",
        "num",
        texts=(f.repurchase_index,),
    )


def _q_dividend(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    return Question(
        f"what was the total annual dividend per share declared in {f.year}?",
        f"multiply({num(f.dividend)}, const_4)",
        "num",
        texts=(f.dividend_index,),
    )


@dataclass(frozen=True)
class FinTemplate:
    fn: Callable[[random.Random, FinTable, TextFacts], Question]
    tables: tuple[str, ...]  # table kinds it applies to


ALL_TABLES = tuple(TABLES)
FINQA_TEMPLATES: dict[str, FinTemplate] = {
    "pct_change": FinTemplate(_q_pct_change, ALL_TABLES),
    "difference": FinTemplate(_q_difference, ALL_TABLES),
    "ratio": FinTemplate(_q_ratio, ALL_TABLES),
    "share": FinTemplate(_q_share, ("income", "segments", "balance")),
    "share_change": FinTemplate(_q_share_change, ("income", "segments", "balance")),
    "table_sum": FinTemplate(_q_sum, ALL_TABLES),
    "table_average": FinTemplate(_q_average, ALL_TABLES),
    "greater_years": FinTemplate(_q_greater_years, ALL_TABLES),
    "greater_rows": FinTemplate(_q_greater_rows, ALL_TABLES),
    "margin": FinTemplate(_q_margin, ("income",)),
    "liquidity": FinTemplate(_q_liquidity, ("balance",)),
    "repurchase": FinTemplate(_q_repurchase, ALL_TABLES),
    "dividend": FinTemplate(_q_dividend, ALL_TABLES),
}


def _text_facts(rng: random.Random, company: tuple[str, str, str], t: FinTable) -> TextFacts:
    name, _, industry = company
    year = t.years[0]
    shares, price, div = round(rng.uniform(0.5, 12), 1), round(rng.uniform(12, 180), 2), round(rng.uniform(0.1, 1.5), 2)
    sentences = [
        (
            f"{name} is {'an' if industry[0] in 'aeiou' else 'a'} {industry} company . the following discussion should "
            f"be read together with the consolidated financial statements ."
        ),
        (
            f"during {year} , we repurchased {num(shares)} million shares of our common stock at an average price of "
            f"$ {price:.2f} per share ."
        ),
        f"in {year} , our board of directors declared a quarterly cash dividend of $ {div:.2f} per share .",
        f"the following table presents the {t.title} for the years indicated :",
    ]
    return TextFacts(year, shares, price, div, sentences, 1, 2)


def _post_text(rng: random.Random, t: FinTable) -> list[str]:
    row, (ups, downs) = POST_TEXT[t.kind]
    up = t.value(row, 0) >= t.value(row, 1)
    change = (
        f"{row} {'increased' if up else 'decreased'} in {t.years[0]} compared with {t.years[1]} primarily due to "
        f"{rng.choice(ups if up else downs)} ."
    )
    return [change, "amounts may not add due to rounding ."]


def human_answer(value: float | str, kind: str) -> str:
    """exe_ans as a person writes it: "yes", "12.3%", "1,234.5": the fewest decimals within 0.05%."""
    if isinstance(value, str):
        return value
    x = value * 100 if kind == "pct" else value
    for places in range(0 if kind == "num" else 1, 7):
        shown = round_half_up(x, places)
        if abs(shown - x) <= 5e-4 * abs(x):
            break
    text = f"{shown:,.{places}f}" if kind == "num" else f"{shown:.{places}f}"
    return text + ("%" if kind == "pct" else "")


def _program_re(program: str) -> str:
    """FinQA's nested form: each `#k` replaced by step k's expression."""
    exprs: list[str] = []
    for step in program.split("), "):
        step = step if step.endswith(")") else step + ")"
        for k in range(len(exprs) - 1, -1, -1):
            step = step.replace(f"#{k}", exprs[k])
        exprs.append(step)
    return exprs[-1]


def _finqa_record(i: int, seed: int, template: str, rng: random.Random) -> Record:
    tpl = FINQA_TEMPLATES[template]
    decimals = 1 if rng.random() < 0.3 else 0
    t = TABLES[rng.choice(tpl.tables)](rng, decimals)
    company = rng.choice(COMPANIES)
    facts = _text_facts(rng, company, t)
    q = tpl.fn(rng, t, facts)
    table = t.table()
    exe_ans = execute(q.program, table)
    gold_inds = {f"table_{t.index(r)}": t.linear(r) for r in dict.fromkeys(q.rows)}
    gold_inds.update({f"text_{k}": facts.sentences[k] for k in q.texts})
    filename = f"{company[1]}/{t.years[0]}/page_{i + 1}.pdf"
    return {
        "id": f"{filename}-{seed}",
        "filename": filename,
        "pre_text": facts.sentences,
        "post_text": _post_text(rng, t),
        "table_ori": t.table(original=True),
        "table": table,
        "qa": {
            "question": q.question,
            "answer": human_answer(exe_ans, q.kind),
            "explanation": "",
            "ann_table_rows": sorted({t.index(r) for r in q.rows}),
            "ann_text_rows": list(q.texts),
            "program": q.program,
            "program_re": _program_re(q.program),
            "gold_inds": gold_inds,
            "exe_ans": exe_ans,
        },
    }


def finqa_style(n: int, seed: int) -> list[Record]:
    """`n` FinQA records (English); question templates cycle, tables and numbers come from the seed."""
    check_n(n, "finqa_style")
    names = list(FINQA_TEMPLATES)
    return [_finqa_record(i, seed, names[i % len(names)], random.Random(f"finqa:{seed}:{i}")) for i in range(n)]


def write_finqa(records: list[Record], path: str | Path) -> Path:
    """A JSON array, like FinQA's {train,dev,test}.json."""
    return write_json(records, path)
