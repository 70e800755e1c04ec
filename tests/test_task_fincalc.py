"""FinCalc, the task: prompt, extraction, checking, JSONL loading.

Everything is generated in the tests with the generator (`dianjin.data.synthetic.fincalc`, tested
in tests/test_synthetic_fincalc.py); there is no real data file.
"""

from __future__ import annotations

import json

import pytest

from dianjin.answer import render
from dianjin.data.synthetic import fincalc as gen
from dianjin.errors import DataError
from dianjin.tasks import fincalc as fc
from dianjin.tasks import get_task

TASK = get_task("fincalc")
ALL = gen.generate(len(fc.KINDS) * len(fc.LANGS) * len(fc.FORMS), seed=11)  # every kind x lang x form once


# --- the task scores its own generated answers -------------------------------------------------
@pytest.mark.parametrize("ex", ALL, ids=lambda e: f"{e['kind']}-{e['lang']}-{e['form']}")
def test_own_answer_right_perturbed_wrong(ex):
    good = render(gen.reasoning(ex), ex["answer_text"], boxed=TASK.reference(ex))
    assert TASK.score(good, ex, mode="reward").reward == 1.0
    assert TASK.score(render("…", ex["answer_text"]), ex, mode="eval").correct is True  # the sentence alone
    if ex["form"] == "open":
        wrong = gen.format_gold(float(ex["gold"]) * 1.1)  # 10% off
    else:
        wrong = next(k for k in fc.LETTERS if k != ex["gold"])  # another option
    verdict = TASK.score(render("…", "", boxed=wrong), ex, mode="reward")
    assert verdict.correct is False and verdict.reward == 0.0


# --- prompt ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lang, form, words",
    [
        ("zh", "open", ["金融计算题", "<think></think>", "\\boxed{}", "12.34% 写作 \\boxed{12.34}"]),  # Chinese open
        ("en", "open", ["financial calculation", "<answer></answer>", "\\boxed{12.34}"]),  # English open
        ("zh", "mcq", ["选择题", "\nA. ", "\nD. ", "\\boxed{A}"]),  # Chinese MCQ with options
        ("en", "mcq", ["exactly one option", "\nB. ", "\\boxed{A}"]),  # English MCQ
    ],
)
def test_messages(lang, form, words):
    ex = gen.generate(1, seed=2, langs=(lang,), forms=(form,))[0]
    (msg,) = TASK.messages(ex)
    assert msg["role"] == "user" and ex["question"] in msg["content"]
    for w in words:
        assert w in msg["content"]


# --- extraction and checking --------------------------------------------------------------------
CHOICES = {"A": "10.00%", "B": "12.34%", "C": "15.00%", "D": "20.00%"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", "B"),  # bare letter
        ("(C)", "C"),  # bracketed
        ("选B", "B"),  # Chinese "choose"
        ("答案：D", "D"),  # answer colon
        ("B. 12.34%", "B"),  # label with the option text
        ("Ｂ", "B"),  # full-width letter
        ("\\text{C}", "C"),  # LaTeX wrapper
        ("12.34%", "B"),  # the value of exactly one option
        ("12.34", "B"),  # the value without %
        ("B，不对，应该是C", None),  # a hedge with a second letter is no lone label (and no answer phrase)
        ("The answer is C.", "C"),  # English sentence
        ("答案是B，不对，最终答案是C", "C"),  # the last answer phrase wins
        ("A company grew 5%", None),  # an article is not a letter, and 5% is no option
        ("E", None),  # not an option
        ("99%", None),  # a value that is no option
        ("", None),  # empty
    ],
)
def test_extract_choice(text, expected):
    assert fc.extract_choice(text, CHOICES) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("25.00", "25.0"),  # plain number
        ("25.00%", "25.0%"),  # percent kept as a flag
        ("\\text{25.00}\\%", "25.0%"),  # LaTeX wrapper and escaped percent
        ("答案：1,234.57 元", "1234.57"),  # thousands separator and unit
        ("The answer is 12.5%. Over 3 years it compounds.", "12.5%"),  # the number after the answer phrase
        ("最终答案是 8884.88 元。共 12 期", "8884.88"),  # Chinese answer phrase, later numbers ignored
        ("所以增长率为 25%，即 0.25", "0.25"),  # no phrase: the last number
        ("no number here", None),  # nothing
    ],
)
def test_extract_number(text, expected):
    assert fc.extract_number(text) == expected


PCT = {"gold": "12.34", "unit": "%", "form": "open"}
PCT_ROUND = {"gold": "25.00", "unit": "%", "form": "open"}
RATIO = {"gold": "0.75", "unit": "ratio", "form": "open"}
MONEY = {"gold": "1234.57", "unit": "money", "form": "open"}
BARE = {"gold": "12.34"}  # a `dianjin score` line: unit unknown


@pytest.mark.parametrize(
    "pred, example, correct",
    [
        ("12.34", PCT, True),  # exact
        ("12.34%", PCT, True),  # with the percent sign
        ("0.1234", PCT, True),  # a fraction for a percent gold
        ("12.3412", PCT, True),  # within rel 1e-3
        ("12.336", PCT, True),  # rounds half-up to 12.34
        ("12.35", PCT, True),  # a cent off at 2 dp, but within rel 1e-3 (0.08%)
        ("12.36", PCT, False),  # two cents off: 0.16%, outside both
        ("0.1234%", PCT, False),  # a percent sign on the fraction: 0.1234% is not 12.34%
        ("1234", PCT, False),  # x100 is not accepted for a percent gold
        ("25", PCT_ROUND, True),  # trailing zeros do not matter
        ("25.004", PCT_ROUND, True),  # rounds to 25.00
        ("25.4", PCT_ROUND, False),  # numbers_match would accept (gold 25.0 has 0 decimals); 2 dp does not
        ("0.25", PCT_ROUND, True),  # fraction
        ("0.75", RATIO, True),  # exact ratio
        ("75%", RATIO, True),  # a ratio written as a percent
        ("75", RATIO, False),  # x100 without a percent sign
        ("0.7512", RATIO, True),  # rounds to 0.75
        ("0.76", RATIO, False),  # off by 1.3%
        ("1234.5", MONEY, True),  # within rel 1e-3
        ("1240", MONEY, False),  # off by 0.44%
        ("123457", MONEY, False),  # no percent scaling for money
        ("12.3457", MONEY, False),  # no percent scaling for money
        ("0.1234", BARE, True),  # unknown unit: fraction accepted
        ("12.34%", BARE, True),  # unknown unit: percent accepted
        ("13.57", BARE, False),  # x1.1
        ("abc", PCT, False),  # no number
    ],
)
def test_check_open(pred, example, correct):
    assert TASK.check(pred, example)[0] is correct


@pytest.mark.parametrize(
    "response, example, correct",
    [
        ("<think>…</think><answer>\\boxed{0.1234}</answer>", BARE, True),  # bare line, fraction
        ("<think>…</think><answer>\\boxed{1500}</answer>", {"gold": 1500.0}, True),  # JSON number gold
        ("<think>…</think><answer>\\boxed{B}</answer>", {"gold": "B"}, True),  # bare MCQ line: letter gold
        ("<think>…</think><answer>\\boxed{C}</answer>", {"gold": "B"}, False),  # wrong letter
        ("<think>…</think><answer>\\boxed{12.34\\%}</answer>", {"gold": "B", "choices": CHOICES}, True),  # value of B
        ("<think>…</think><answer>\\boxed{12.34}</answer>", {"gold": "n/a"}, None),  # unparseable gold
        ("<think>…</think><answer>\\boxed{B}</answer>", {"gold": "F", "form": "mcq"}, None),  # gold not a letter
    ],
)
def test_score_minimal(response, example, correct):
    assert TASK.score(response, example).correct is correct


# --- JSONL --------------------------------------------------------------------------------------
def test_write_and_load_roundtrip(tmp_path):
    path = tmp_path / "sub" / "fincalc.jsonl"
    gen.write_jsonl(ALL, path)  # the generator writes, the task reads
    assert TASK.load(str(path)) == ALL
    assert fc.load(path) == ALL


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": ""}, "id"),  # empty id
        ({"lang": "fr"}, "lang"),  # unknown language
        ({"form": "essay"}, "form"),  # unknown form
        ({"kind": "npv"}, "kind"),  # unknown kind
        ({"question": None}, "question"),  # missing question
        ({"derivation": "step"}, "derivation"),  # not a list
        ({"gold": "twelve"}, "gold"),  # open gold that is no number
        ({"unit": "km"}, "unit"),  # unknown unit
        ({"form": "mcq", "gold": "A"}, "choices"),  # an MCQ without options
        (
            {"form": "mcq", "choices": {"A": "1", "B": "2", "C": "3", "D": "4"}, "gold": "E"},
            "gold",
        ),  # gold not an option
    ],
)
def test_load_errors(tmp_path, change, field):
    good = next(e for e in ALL if e["form"] == "open")
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(good, ensure_ascii=False) + "\n" + json.dumps({**good, **change}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as e:
        fc.load(path)
    assert (e.value.line, e.value.field) == (2, field)


def test_load_bad_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        fc.load(path)
    assert e.value.line == 2


@pytest.mark.parametrize("alias", ["fincalc", "dianjin/fincalc", "fin_calc", "FinCalc"])
def test_aliases(alias):
    assert get_task(alias) is TASK
