"""FinQA program executor (dianjin.tasks.finqa_program), checked against the official scorer's rules.

.venv/bin/python -m pytest -q tests/test_finqa_program.py
"""

from __future__ import annotations

import json

import pytest

from dianjin.tasks.finqa_program import ProgramError, cell_number, execute, parse, steps, str_to_num

# Our own table in the FinQA shape: lower-cased, tokenised cells, row 0 the header.
TABLE = [
    ["( in millions )", "2019", "2018", "2017"],
    ["net sales", "$ 1,200", "$ 1,000", "$ 800"],
    ["operating margin", "12.5%", "10%", "7.5%"],
    ["reductions", "-2 ( 2 )", "-4 ( 4 )", "-6 ( 6 )"],
    ["net income ( loss )", "30", "-10", "20"],
    ["balance as of december 31, 2019", "5", "7", "9"],
    ["notes", "see below", "n/a", "-"],
    ["header only"],
    ["Total Assets", "100", "200", "300"],
    ["duplicate", "1", "1", "1"],
    ["duplicate", "2", "4", "6"],
]


@pytest.mark.parametrize(
    "program, expected",
    [
        ("add(29, 4)", 33.0),  # one step
        ("add(29, 4), divide(#0, 100)", 0.33),  # #k reference
        ("subtract(5829, 5735), divide(#0, 5735)", 0.01639),  # rounded to 5 dp like the official scorer
        ("divide(2, 3)", 0.66667),  # rounding of a repeating decimal
        ("multiply(1,234, 2)", 2468.0),  # thousands comma inside a number argument
        ("multiply(5%, 200)", 10.0),  # "5%" is 0.05
        ("divide(49.9%, const_100)", 0.00499),  # percent and const together
        ("add(const_m1, 0)", -1.0),  # const_m1 is -1
        ("multiply(3, const_1000)", 3000.0),  # const_1000
        ("exp(1.05, 2)", 1.1025),  # exp is a power
        ("exp(4, 0.5)", 2.0),  # fractional exponent
        ("greater(5, 3)", "yes"),  # greater gives yes
        ("greater(3, 5)", "no"),  # ... or no
        ("subtract(10, 4), greater(#0, 6)", "no"),  # greater on a reference; equal is not greater
        ("table_max(net sales, none)", 1200.0),  # "$ 1,200" cells
        ("table_min(net sales, none)", 800.0),  # table_min
        ("table_sum(net sales, none)", 3000.0),  # table_sum
        ("table_average(operating margin, none)", 0.1),  # percent cells become fractions
        ("table_sum(reductions, none)", -12.0),  # "( 2 )" annotations dropped like upstream
        ("table_max(net income ( loss ), none)", 30.0),  # parentheses inside a row name
        ("table_average(balance as of december 31, 2019, none)", 7.0),  # comma inside a row name
        ("table_sum(total assets, none)", 600.0),  # case-insensitive retry of the row name
        ("table_sum(duplicate, none)", 12.0),  # a later duplicate row wins, like upstream
        ("table_sum(net sales, none), divide(#0, const_3)", 1000.0),  # table op feeding arithmetic
        ("  add( 1 , 2 ) ,  add( #0 , 3 )  ", 6.0),  # loose spacing
    ],
)
def test_execute(program, expected):
    assert execute(program, TABLE) == expected


@pytest.mark.parametrize(
    "program, message",
    [
        ("", "empty program"),  # nothing to run
        ("add(1, 2", "cannot parse"),  # missing closing parenthesis
        ("add 1, 2", "cannot parse"),  # no parenthesis at all
        ("power(2, 3)", "unknown operation 'power'"),  # not a FinQA operation
        ("add(1)", "needs two arguments"),  # one argument
        ("add(1, )", "needs two arguments"),  # empty argument
        ("add(#1, 2)", "not computed yet"),  # forward reference
        ("add(#0, 1)", "not computed yet"),  # self reference
        ("add(one, 2)", "not a number"),  # word argument
        ("add(nan, 2)", "not a number"),  # non-finite number literal
        ("divide(1, 0)", "division by zero"),  # division by zero
        ("subtract(5, 5), divide(3, #0)", "division by zero"),  # division by a zero result
        ("exp(-8, 0.5)", "not a real number"),  # complex result
        ("exp(10, 400)", "failed"),  # overflow
        ("greater(2, 1), add(#0, 1)", "'yes', not a number"),  # yes/no result used as a number
        ("table_sum(no such row, none)", "no table row named"),  # unknown row
        ("table_sum(notes, none)", "non-numeric cell 'see below'"),  # row with text cells
        ("table_sum(header only, none)", "has no values"),  # row with a name and nothing else
        ("add(1, 2), table_max(#0, none)", "needs a row name"),  # table op on a reference
        ("add(1, 2); add(3, 4)", "not a number"),  # wrong separator: the steps run together and fail
    ],
)
def test_malformed_programs_raise(program, message):
    with pytest.raises(ProgramError, match=message):
        execute(program, TABLE)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,234", 1234.0),  # comma removed
        ("5%", 0.05),  # percent to fraction
        ("const_m1", -1.0),  # minus one
        ("const_100", 100.0),  # plain constant
        ("-3.5", -3.5),  # signed number
        ("inf", None),  # non-finite rejected (upstream would accept it)
        ("abc", None),  # not a number
    ],
)
def test_str_to_num(text, value):
    assert str_to_num(text) == value


@pytest.mark.parametrize(
    "cell, value",
    [
        ("$ 1,234", 1234.0),  # dollar and comma
        ("-2 ( 2 )", -2.0),  # everything from "(" dropped
        ("( 2 )", None),  # nothing left before "(": not a number, as upstream
        ("12.5%", 0.125),  # percent cell
        ("-", None),  # dash placeholder
        ("n/a", None),  # text placeholder
    ],
)
def test_cell_number(cell, value):
    assert cell_number(cell) == value


def test_steps_record_each_operation():
    got = steps("table_sum(net sales, none), divide(#0, const_3), greater(#1, 999)", TABLE)
    assert [s["op"] for s in got] == ["table_sum", "divide", "greater"]
    assert got[0]["args"] == ["net sales", "none"] and got[0]["values"] == [1200.0, 1000.0, 800.0]
    assert got[1]["values"] == [3000.0, 3.0] and got[1]["result"] == 1000.0
    assert got[2]["result"] == "yes" and [s["index"] for s in got] == [0, 1, 2]


def test_steps_keep_unrounded_results():
    assert steps("divide(2, 3)", TABLE)[0]["result"] == 2 / 3


def test_token_list_form():
    # the official prediction-file format: op( arg arg ) groups ending with EOF
    tokens = ["subtract(", "5829", "5735", ")", "divide(", "#0", "5735", ")", "EOF"]
    assert execute(tokens, TABLE) == 0.01639
    assert parse(tokens) == parse("subtract(5829, 5735), divide(#0, 5735)")
    with pytest.raises(ProgramError, match="groups of 4"):
        execute(["add(", "1", ")", "EOF"], TABLE)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["test_100.json", "train_100.json"])
def test_gold_programs_reproduce_exe_ans(real_data, name):
    records = json.loads((real_data / "finqa" / name).read_text(encoding="utf-8"))
    assert len(records) == 100
    wrong = []
    for rec in records:
        got = execute(rec["qa"]["program"], rec["table"])
        if got != rec["qa"]["exe_ans"]:  # exact equality, like the official scorer
            wrong.append((rec["id"], rec["qa"]["program"], rec["qa"]["exe_ans"], got))
    assert not wrong, wrong


@pytest.mark.realdata
def test_prediction_file_programs_execute(real_data):
    # every predicted program in the official example file (token lists) parses; the ones over
    # records we have execute or fail with a ProgramError, never another exception
    preds = json.loads((real_data / "finqa" / "example_predictions.json").read_text(encoding="utf-8"))
    tables = {
        r["id"]: r["table"]
        for name in ("test_100.json", "train_100.json")
        for r in json.loads((real_data / "finqa" / name).read_text(encoding="utf-8"))
    }
    ran = 0
    for p in preds:
        parse(p["predicted"])
        if p["id"] in tables:
            try:
                execute(p["predicted"], tables[p["id"]])
                ran += 1
            except ProgramError:
                pass
    assert ran > 50
