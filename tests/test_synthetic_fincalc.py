"""FinCalc's generator (`dianjin.data.synthetic.fincalc`): formulas, deterministic generation, MCQ
options, reasoning text. The task that reads these examples is tested in tests/test_task_fincalc.py.
"""

from __future__ import annotations

import random

import pytest

from dianjin.data.synthetic import fincalc as fc
from dianjin.tasks import fincalc as task_fincalc
from dianjin.tasks.numeric import round_half_up

ALL = fc.generate(
    len(fc.GENERATORS) * len(task_fincalc.LANGS) * len(task_fincalc.FORMS), seed=11
)  # every kind x lang x form once


# --- formulas, by hand --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, params, expected",
    [
        ("pct_change", {"old": 1000, "new": 1250}, 25.0),  # (1250 - 1000) / 1000 = 0.25 -> 25%
        ("pct_change", {"old": 800, "new": 600}, -25.0),  # (600 - 800) / 800 = -0.25 -> -25%
        ("cagr", {"start": 1000, "end": 1331, "years": 3}, 10.0),  # 1.331^(1/3) = 1.1 -> 10%
        ("simple_interest", {"principal": 10000, "rate_pct": 5, "years": 3}, 1500.0),  # 10000 x 0.05 x 3
        ("compound_interest", {"principal": 10000, "rate_pct": 8, "per_year": 4, "years": 1}, 824.32),
        # ^ quarterly 2%: 1.02^4 = 1.08243216, interest 10000 x 0.08243216 = 824.3216
        ("future_value", {"pv": 1000, "rate_pct": 10, "years": 2}, 1210.0),  # 1000 x 1.1^2
        ("present_value", {"fv": 1210, "rate_pct": 10, "years": 2}, 1000.0),  # 1210 / 1.21
        ("annuity_fv", {"payment": 1000, "rate_pct": 10, "years": 3}, 3310.0),  # 1000 x (1.331 - 1) / 0.1
        ("loan_payment", {"principal": 100000, "rate_pct": 12, "years": 1}, 8884.88),
        # ^ i = 0.01, N = 12: 1.01^-12 = 0.887449, 100000 x 0.01 / 0.112551 = 8884.879
        ("current_ratio", {"current_assets": 3000, "current_liabilities": 2000}, 1.5),  # 3000 / 2000
        ("debt_to_equity", {"total_assets": 10000, "total_liabilities": 6000}, 1.5),  # 6000 / (10000 - 6000)
        ("gross_margin", {"revenue": 5000, "cogs": 3000}, 40.0),  # 2000 / 5000 -> 40%
        ("roe", {"net_income": 120, "equity_start": 1000, "equity_end": 1400}, 10.0),  # 120 / 1200 -> 10%
        ("dividend_yield", {"price": 50, "quarterly_dividend": 0.5}, 4.0),  # 0.5 x 4 = 2; 2 / 50 -> 4%
        ("break_even_units", {"fixed_cost": 60000, "price": 50, "variable_cost": 30}, 3000.0),  # 60000 / 20
    ],
)
def test_formulas(kind, params, expected):
    assert round_half_up(fc.FORMULAS[kind](**params), task_fincalc.PLACES) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "x, expected",
    [
        (2.675, "2.68"),  # half-up as written (Python's round gives 2.67 on the binary float)
        (12.3, "12.30"),  # always two decimals
        (-43.2979, "-43.30"),  # negative rounding
        (8884.879, "8884.88"),  # plain rounding
    ],
)
def test_format_gold(x, expected):
    assert fc.format_gold(x) == expected


def test_registries_agree():
    assert set(fc.GENERATORS) == set(fc.FORMULAS) == set(fc.KIND_NAMES)
    assert tuple(fc.GENERATORS) == task_fincalc.KINDS  # the kinds the task's loader accepts, in generation order
    assert len(fc.GENERATORS) >= 12


# --- generation ---------------------------------------------------------------------------------
def test_deterministic():
    assert fc.generate(40, seed=3) == fc.generate(40, seed=3)  # same seed, same data
    assert fc.generate(10, seed=3) == fc.generate(40, seed=3)[:10]  # example i depends only on (seed, i)
    assert fc.generate(10, seed=3) != fc.generate(10, seed=4)  # another seed, other numbers
    assert [e["id"] for e in fc.generate(3, seed=3)] == ["fincalc-3-0", "fincalc-3-1", "fincalc-3-2"]


def test_every_combination_appears():
    combos = {(e["kind"], e["lang"], e["form"]) for e in ALL}
    assert len(combos) == len(fc.GENERATORS) * 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kinds": ["cagr", "npv"]}, "npv"),  # unknown kind
        ({"langs": ["fr"]}, "fr"),  # unknown language
        ({"forms": ["essay"]}, "essay"),  # unknown form
        ({"forms": []}, "forms"),  # empty selection
    ],
)
def test_generate_rejects_bad_names(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fc.generate(2, seed=0, **kwargs)


def test_filters():
    exs = fc.generate(12, seed=1, langs=("en",), forms=("mcq",), kinds=["cagr", "roe"])
    assert {(e["lang"], e["form"]) for e in exs} == {("en", "mcq")}
    assert {e["kind"] for e in exs} == {"cagr", "roe"}


@pytest.mark.parametrize("ex", ALL, ids=lambda e: f"{e['kind']}-{e['lang']}-{e['form']}")
def test_example_fields_and_params(ex):
    assert ex["task"] == "fincalc" and ex["question"] and len(ex["derivation"]) >= 3
    exact = fc.FORMULAS[ex["kind"]](**ex["params"])  # the stored inputs reproduce the answer
    assert exact == pytest.approx(ex["value"], rel=1e-12)
    assert ex["answer"] == fc.display(exact, ex["unit"], ex["lang"])
    if ex["form"] == "open":
        assert ex["gold"] == fc.format_gold(exact) and "choices" not in ex
    else:
        assert ex["choices"][ex["gold"]] == ex["answer"]
    has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in ex["question"])
    assert has_cjk == (ex["lang"] == "zh")  # the question is in the example's language


def test_mcq_distractors_distinct():
    exs = fc.generate(len(fc.GENERATORS) * 20, seed=7, forms=("mcq",))
    for ex in exs:
        options = list(ex["choices"].values())
        assert list(ex["choices"]) == list("ABCD")
        assert len(set(options)) == 4, ex  # four different displayed values
        assert options.count(ex["answer"]) == 1
    golds = {ex["gold"] for ex in exs}
    assert golds == set("ABCD")  # the right answer is not always in the same place


def test_mcq_distractors_from_mistakes():
    # distractors come from common mistakes first, e.g. the current ratio turned upside down
    ex = fc.make_example("current_ratio", "en", "mcq", random.Random(0), "t")
    p = ex["params"]
    inverted = fc.display(p["current_liabilities"] / p["current_assets"], "ratio", "en")
    assert inverted in ex["choices"].values()  # liabilities / assets, the classic inversion


# --- reasoning text ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lang, form, words",
    [
        ("zh", "open", ["第1步：", "第3步：", "因此答案为"]),  # Chinese steps and conclusion
        ("en", "open", ["Step 1: ", "Step 3: ", "So the answer is"]),  # English
        ("zh", "mcq", ["第1步：", "对照选项"]),  # MCQ names the matching option
        ("en", "mcq", ["Step 2: ", "Comparing with the options"]),  # English MCQ
    ],
)
def test_reasoning(lang, form, words):
    ex = fc.generate(1, seed=2, langs=(lang,), forms=(form,))[0]
    text = fc.reasoning(ex)
    for w in words:
        assert w in text
    positions = [text.index(step) for step in ex["derivation"]]
    assert positions == sorted(positions)  # every step, in order
    if form == "mcq":
        assert f"{ex['gold']}" in text.splitlines()[-1]
