"""FinQA task: loading, prompt, extraction, checking, judge mode, scoring robustness.

.venv/bin/python -m pytest -q tests/test_task_finqa.py
"""

from __future__ import annotations

import json

import pytest

from dianjin import answer as fmt
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.finqa import judge_messages, parse_verdict, render_table, table_scale
from dianjin.tasks.finqa_program import execute

TASK = get_task("finqa")


def _record(i: int = 0, **qa_overrides) -> dict:
    """A record in the official FinQA schema, written for these tests (not real data)."""
    qa = {
        "question": "what was the percentage change in net sales from 2018 to 2019?",
        "answer": "20%",
        "program": "subtract(1200, 1000), divide(#0, 1000)",
        "exe_ans": 0.2,
        **qa_overrides,
    }
    return {
        "id": f"ACME/2019/page_{10 + i}.pdf-1",
        "filename": f"ACME/2019/page_{10 + i}.pdf",
        "pre_text": ["acme corp sells widgets .", "results are below ."],
        "post_text": ["amounts are in millions ."],
        "table": [["( in millions )", "2019", "2018"], ["net sales", "$ 1,200", "$ 1,000"], ["a | b", "1", "2"]],
        "table_ori": [["(in millions)", "2019", "2018"], ["Net sales", "$1,200", "$1,000"], ["a | b", "1", "2"]],
        "qa": qa,
    }


def _write(tmp_path, records) -> str:
    path = tmp_path / "finqa.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return str(path)


# --- loading ------------------------------------------------------------------------------------
def test_load_builds_examples(tmp_path):
    records = [
        _record(0),
        _record(1, exe_ans="Yes", answer="yes", program="greater(1200, 1000)"),
        _record(2, exe_ans=7),
    ]
    examples = TASK.load(_write(tmp_path, records))
    first = examples[0]
    assert first["id"] == "ACME/2019/page_10.pdf-1" and first["task"] == "finqa"
    assert first["gold"] == 0.2 and first["program"].startswith("subtract") and first["answer"] == "20%"
    assert first["table"][1] == ["net sales", "$ 1,200", "$ 1,000"]
    assert "acme corp sells widgets . results are below ." in first["context"]
    assert "| net sales | $ 1,200 | $ 1,000 |" in first["context"]
    assert first["context"].endswith("amounts are in millions .")
    assert examples[1]["gold"] == "yes"  # yes/no gold lower-cased
    assert examples[2]["gold"] == 7.0 and isinstance(examples[2]["gold"], float)  # integer exe_ans becomes float
    assert execute(first["program"], first["table"]) == first["gold"]


@pytest.mark.parametrize(
    "content, where",
    [
        ("{not json", "finqa.json:1: invalid JSON"),  # broken JSON names the line
        ('{"id": "x"}', "expected a JSON array"),  # an object instead of an array
        (json.dumps([_record(), 5]), "finqa.json:1: record is int"),  # a record that is not an object
        (json.dumps([{k: v for k, v in _record().items() if k != "qa"}]), "finqa.json:0: field 'qa': missing"),  # no qa
        (json.dumps([_record(exe_ans="n/a")]), "field 'qa.exe_ans': expected a number or yes/no"),  # bad gold
        (json.dumps([_record(exe_ans=None)]), "field 'qa.exe_ans': expected"),  # null gold
        (json.dumps([_record(exe_ans=True)]), "field 'qa.exe_ans': expected"),  # a boolean is not a number
        (json.dumps([_record(question=3)]), "field 'qa.question': expected str"),  # non-string question
        (json.dumps([{**_record(), "table": [["a", 1]]}]), "field 'table'"),  # non-string cell
        (json.dumps([{**_record(), "pre_text": "text"}]), "field 'pre_text': expected list"),  # string, not list
        (json.dumps([{**_record(), "id": 12}]), "field 'id': expected str"),  # numeric id
    ],
)
def test_load_errors_name_record_and_field(tmp_path, content, where):
    path = tmp_path / "finqa.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=where.replace("|", r"\|")):
        TASK.load(str(path))


def test_render_table_pads_and_escapes():
    assert (
        render_table([["h", "2019"], ["a | b", "1", "2"]])
        == "| h | 2019 |  |\n| --- | --- | --- |\n| a \\| b | 1 | 2 |"
    )


@pytest.mark.parametrize("alias", ["finqa", "fin_qa", "finqa_r1", "FIN_QA_R1", "dianjin/finqa"])  # registry aliases
def test_aliases(alias):
    assert get_task(alias) is TASK


def test_messages_carry_context_question_and_format(tmp_path):
    example = TASK.load(_write(tmp_path, [_record()]))[0]
    (msg,) = TASK.messages(example)
    assert msg["role"] == "user"
    for piece in (
        "| net sales | $ 1,200 | $ 1,000 |",
        example["question"],
        "<think></think>",
        "<answer></answer>",
        "\\boxed{yes}",
    ):
        assert piece in msg["content"]


# --- extraction ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("7.88\\%", "7.88%"),  # box content with an escaped percent
        ("0.07879", "0.07879"),  # plain fraction
        ("-6.1%", "-6.1%"),  # negative percentage
        ("(1,234)", "-1234"),  # accounting negative
        ("$ 1,200", "1200"),  # FinQA cell style
        ("approximately $12.3 million", "12.3 million"),  # unit word kept for the check
        ("\\frac{1}{4}", "0.25"),  # LaTeX fraction
        ("The change is 200, i.e. 20%.", "20%"),  # the last number wins
        ("Yes.", "yes"),  # leading yes
        ("no, because the margin fell from 12% to 10%", "no"),  # leading no beats the numbers
        ("\\text{Yes}", "yes"),  # yes inside \text{}
        ("**No**", "no"),  # markdown bold
        ("The answer is yes: 5.2 > 3.1", "yes"),  # stated yes beats the numbers after it
        ("Therefore, the answer is: No.", "no"),  # stated no
        ("None of the rows changed by 5", "5"),  # "None" is not "no"
        ("There is no data", None),  # a stray "no" in prose is not an answer
        ("I cannot determine this.", None),  # nothing answer-like
        ("约3.5亿元", "3.5 亿"),  # Chinese 亿 with leading 约
        ("1.2万亿元", "1.2 trillion"),  # Chinese 万亿
        ("百分之12.5", "12.5%"),  # Chinese percent
        ("增长率为１２．５％", "12.5%"),  # full-width digits and percent
        ("1.50", "1.50"),  # the written precision is kept (a trailing zero is a stated digit)
        ("-1,234.50 million", "-1234.50 million"),  # written digits kept before the unit word
        ("1.2 \\times 10^{6}", "1.2E+6"),  # exponent form keeps two significant digits
    ],
)
def test_extract(text, expected):
    assert TASK.extract(text, {"gold": 0.2}) == expected


# --- checking -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pred, gold, expected",
    [
        ("7.88%", 0.07879, True),  # percent written for a fraction gold
        ("0.0788", 0.07879, True),  # fraction within 1e-3
        ("7.87%", 0.07879, False),  # FinQA's own "7.87%": 7.879 rounds to 7.88, and 1.1e-3 off is outside tolerance
        ("7.9%", 0.07879, True),  # 7.879 rounds to 7.9 (was False under the old 1e-3-only rule)
        ("8.1%", 0.07879, False),  # 7.879 does not round to 8.1
        ("56%", 0.56197, True),  # FinQA human answer: percent at the writer's precision
        ("1.16", 1.15663, True),  # FinQA human answer: two decimals
        ("4.9", 4.85514, True),  # FinQA human answer: one decimal
        ("2", 2.4, False),  # one significant digit is not enough
        ("10%", 1026.0, False),  # a percent is not rounded against gold / 100 (10.26)
        ("10", 1026.0, True),  # a bare number may be the fraction of a percent gold: 10.26 rounds to 10
        ("0.56", 56.197, True),  # fraction written for a percent gold, at its precision
        ("0.05", 0.04545, False),  # one significant digit (FinQA's "0.05" for 0.04545 stays a mismatch)
        ("1.1580", 1.15663, False),  # more digits than the gold and 1.2e-3 off: no rounding rescue
        ("2.33 million", 2.334, True),  # unit word as a label, precision of the written "2.33"
        ("2.33 million", 2334000.0, True),  # unit applied: precise to 10,000
        ("20%", 0.2, True),  # integer percent
        ("0.2", "0.2", True),  # gold as a string (score input line)
        ("20%", "20%", True),  # gold as a human answer string
        ("1,200", 1200, True),  # integer gold
        ("1200.4", 1200.0, True),  # rounds to the integer gold
        ("1210", 1200.0, False),  # 0.8% off
        ("12.3 million", 12.3, True),  # unit word dropped: FinQA tables state "in millions" once
        ("12.3 million", 12300000.0, True),  # unit word applied
        ("-1234", -1234.0, True),  # negative
        ("1234", -1234.0, False),  # sign matters
        ("3.5 亿", 350000000.0, True),  # Chinese unit applied
        ("yes", "yes", True),  # yes/no exact
        ("no", "yes", False),  # wrong yes/no
        ("yes", "YES ", True),  # gold case and space normalised
        ("5", "yes", False),  # number for a yes/no gold
        ("yes", 5.0, False),  # yes/no for a numeric gold
    ],
)
def test_check(pred, gold, expected):
    correct, reason = TASK.check(pred, {"gold": gold})
    assert correct is expected, reason


def _table(header: str) -> list[list[str]]:
    return [[header, "2019"], ["revenue", "1,000"]]


@pytest.mark.parametrize(
    "example, scale",
    [
        ({"table": _table("( in thousands )")}, 1e3),  # the usual header cell
        ({"table": _table("$ in millions")}, 1e6),  # dollar-prefixed
        ({"table": _table("in millions of dollars")}, 1e6),  # unit then currency
        ({"table": _table("dollars in billions")}, 1e9),  # currency then unit
        ({"table": _table("( thousands of barrels per day )")}, 1e3),  # a quantity stated in thousands
        ({"table": _table("单位：万元")}, 1e4),  # Chinese unit line
        ({"table": [["", "2019"], ["sales", "$ 3.6 billion"]]}, None),  # a singular "billion" is a value, not the unit
        ({"table": [["( in millions )", "eop assets ( in billions )"]]}, None),  # two units: ambiguous
        (
            {"table": _table(""), "context": "fees ( in thousands ) :\n\n| | 2019 |"},
            1e3,
        ),  # stated just before the table
        ({"table": _table(""), "context": "in thousands " + "x" * 200 + "\n\n| | 2019 |"}, None),  # too far before
        ({"table": [], "context": "( in millions )"}, None),  # no table
        ({"gold": 1.0}, None),  # a score input line without a table
    ],
)
def test_table_scale(example, scale):
    assert table_scale(example) == scale


@pytest.mark.parametrize(
    "pred, header, gold, expected",
    [
        ("73576 thousand", "( in thousands )", 73576.0, True),  # unit word = the table's unit: 73576 table units
        ("73.576 million", "( in thousands )", 73576.0, True),  # converted into the table's thousands
        (
            "73.6 million",
            "( in thousands )",
            73576.0,
            True,
        ),  # converted, precise to 100 thousand: 73576 rounds to 73600
        ("73.7 million", "( in thousands )", 73576.0, False),  # converted, but 73576 does not round to 73700
        ("2.33 million", "( in millions )", 2.33, True),  # unit word = the table's unit
        ("2.33 million", "( in thousands )", 2330.0, True),  # converted: 2330 thousand, precise to the ten
        ("2.33 million", "( in thousands )", 2.33, True),  # as written: the gold may come from text in millions
        ("2330 thousand", "( in millions )", 2.33, True),  # converted down: 2.330 million
        ("2.33 million", "", 2330.0, False),  # no table unit: no conversion
        ("3.5亿", "单位：万元", 35000.0, True),  # Chinese: 3.5亿 in a table in 万 is 35000
        ("2 million", "( in thousands )", 2400.0, False),  # one significant digit: converted but not rounded onto 2400
    ],
)
def test_check_in_table_units(pred, header, gold, expected):
    correct, reason = TASK.check(TASK.extract(pred, {}), {"gold": gold, "table": _table(header)})
    assert correct is expected, reason


@pytest.mark.parametrize(
    "pred, gold, phrase",
    [
        ("0.0788", 0.07879, "matches gold 0.07879"),  # within tolerance: no precision note
        ("1.16", 1.15663, "at the answer's precision"),  # matched by rounding the gold: said so
    ],
)
def test_check_reason(pred, gold, phrase):
    correct, reason = TASK.check(pred, {"gold": gold})
    assert correct is True and reason.endswith(phrase)


@pytest.mark.parametrize(
    "gold",
    [
        None,  # missing gold
        "n/a",  # text gold
        True,  # a boolean is not a number
    ],
)
def test_check_unverifiable_gold(gold):
    correct, reason = TASK.check("5", {"gold": gold})
    assert correct is None and "neither a number nor yes/no" in reason


# --- end-to-end scoring -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "response, gold, mode, correct, format_ok",
    [
        (
            fmt.render("Sales rose 200 on 1000.", "The change is 20%.", boxed="20\\%"),
            0.2,
            "reward",
            True,
            True,
        ),  # canonical
        (fmt.render("Compare 1200 and 1000.", "Yes.", boxed="yes"), "yes", "reward", True, True),  # yes/no in the box
        (fmt.render("r", "About 8.1%.", boxed="8.1\\%"), 0.07879, "reward", False, True),  # wrong number
        (
            fmt.render("r", "About 7.9%.", boxed="7.9\\%"),
            0.07879,
            "reward",
            True,
            True,
        ),  # rounded answer: right (was wrong)
        ("The change is \\boxed{1.16}", 1.15663, "eval", True, False),  # same rule in eval mode
        (fmt.render("r", "a", boxed="2"), 2.4, "reward", False, True),  # one digit: wrong in reward mode too
        ("The change is \\boxed{0.2}", 0.2, "eval", True, False),  # no tags: eval still reads the box
        ("<think>grew</think><answer>Yes, sales grew.</answer>", "yes", "eval", True, False),  # no box: answer block
        ("<think>x</think>\nSo the ratio is 12.5%", 0.125, "eval", True, False),  # free text after the reasoning
        (
            "<think>计算：3.5亿元</think><answer>答案是\\boxed{3.5亿元}</answer>",
            350000000.0,
            "reward",
            True,
            True,
        ),  # Chinese units
        ("<think>x</think><answer>I don't know</answer>", 0.2, "eval", False, False),  # nothing to read
    ],
)
def test_score(response, gold, mode, correct, format_ok):
    verdict = TASK.score(response, {"gold": gold, "question": "q"}, mode=mode)
    assert verdict.correct is correct, verdict
    assert verdict.format_ok is format_ok, verdict


def test_reward_is_gated_on_format():
    example = {"gold": 0.2}
    assert TASK.score(fmt.render("r", "20%", boxed="20\\%"), example, mode="reward").reward == 1.0
    assert TASK.score("\\boxed{20\\%}", example, mode="reward").reward == 0.0  # right answer, no tags


@pytest.mark.parametrize(
    "answer, gold, expected",
    [
        ("20%", 0.2, "20%"),  # human answer agrees with exe_ans: kept
        ("7.87%", 0.07879, "0.07879"),  # human answer disagrees: exe_ans
        ("56%", 0.56197, "56%"),  # human answer at its own precision agrees: kept
        ("", 1200.0, "1200"),  # no human answer: exe_ans without ".0"
        ("yes", "yes", "yes"),  # yes/no
    ],
)
def test_reference(answer, gold, expected):
    example = {"gold": gold, "answer": answer}
    assert TASK.reference(example) == expected
    assert TASK.score(fmt.render("r", "a", boxed=expected), example, mode="reward").reward == 1.0


# --- judge mode ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("\\boxed{1}", True),  # the fixed form
        ("boxed{{1}}", True),  # upstream's literal double braces
        ("The answer is wrong. \\boxed{0}", False),  # rejection
        ("\\boxed{ 1 }", True),  # spaces inside the box
        ("first \\boxed{0}, on reflection \\boxed{1}", True),  # the last verdict counts
        ("I think it is correct", None),  # no verdict
        ("\\boxed{2}", None),  # not a verdict value
        ("", None),  # empty reply
        (None, None),  # no reply at all
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_judge_mode_uses_the_judge():
    seen = []

    def judge(messages):
        seen.append(messages[0]["content"])
        return "Correct. \\boxed{1}"

    example = {"gold": 0.07879, "question": "what was the increase?"}
    assert TASK.check("7.87%", example)[0] is False  # the rule says no ...
    correct, reason = TASK.check("7.87%", example, judge=judge)  # ... the judge says yes
    assert correct is True and "judge" in reason
    assert "what was the increase?" in seen[0] and "0.07879" in seen[0] and "7.87%" in seen[0]
    verdict = TASK.score(fmt.render("r", "a", boxed="7.87\\%"), example, judge=judge)
    assert verdict.correct is True


@pytest.mark.parametrize(
    "judge, reason",
    [
        (lambda m: "no verdict here", "no \\boxed{1}/\\boxed{0}"),  # unreadable reply
        (lambda m: (_ for _ in ()).throw(RuntimeError("timeout")), "judge failed: RuntimeError"),  # judge raised
    ],
)
def test_judge_failures_are_unverified(judge, reason):
    correct, why = TASK.check("5", {"gold": 5.0, "question": "q"}, judge=judge)
    assert correct is None and reason in why


def test_judge_messages_shape():
    (msg,) = judge_messages("", "yes", "Yes, it grew.")
    assert msg["role"] == "user" and "(not given)" in msg["content"] and "\\boxed{1}" in msg["content"]


# --- real data ----------------------------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.parametrize("name", ["test_100.json", "train_100.json"])
def test_real_files(real_data, name):
    examples = TASK.load(str(real_data / "finqa" / name))
    assert len(examples) == 100 and len({e["id"] for e in examples}) == 100
    for e in examples:
        assert isinstance(e["gold"], float) or e["gold"] in ("yes", "no")
        assert e["question"] in TASK.messages(e)[0]["content"] and "| --- |" in e["context"]
        # the reference answer, rendered in the target format, earns the reward
        response = fmt.render("Read the table.", f"The answer is {TASK.reference(e)}.", boxed=TASK.reference(e))
        verdict = TASK.score(response, e, mode="reward")
        assert verdict.reward == 1.0, (e["id"], verdict)
