"""CFLUE knowledge MCQ: loader, prompt, letter extraction, eval and reward scoring.

tests/assets/cflue_sample.json holds six records written by hand for these tests in CFLUE's
knowledge.json schema (single, multiple and true/false questions; a null analysis; a 3-option
question; a 多项选择题 with a one-letter answer). None of them comes from the real data set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dianjin.answer import render
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.cflue import extract_letters, gold_letters, make_id, parse_choices

ASSET = Path(__file__).parent / "assets" / "cflue_sample.json"
TASK = get_task("cflue")

FOUR = {"gold": "AC", "choices": {"A": "债券", "B": "股票", "C": "基金", "D": "期货"}}
TF = {"gold": "B", "qtype": "判断题", "choices": {"A": "对", "B": "错"}}
BARE: dict = {"gold": "AC"}  # a `dianjin score` line: no choices, letters A-G allowed


# --- extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, example, expected",
    [
        ("A", FOUR, "A"),  # plain letter
        ("ABD", FOUR, "ABD"),  # a run of letters is a multi-choice answer
        ("DBA", FOUR, "ABD"),  # order does not matter, output is sorted
        ("A. 债券", FOUR, "A"),  # upstream reads "A. Bond"-style boxes as AB: only the label counts
        ("A. Bond", FOUR, "A"),  # English option text after the label, the upstream bug case
        ("(B) 股票", FOUR, "B"),  # bracketed label with text
        ("A. 债券；C. 基金", FOUR, "AC"),  # two labelled options
        ("Both A and C", FOUR, "AC"),  # upstream gives ABC (the B of "Both")
        ("A and C are correct", FOUR, "AC"),  # English approval suffix
        ("\\text{B}", FOUR, "B"),  # LaTeX text wrapper
        ("\\mathrm{A},\\mathrm{C}", FOUR, "AC"),  # LaTeX wrappers around each letter
        ("A、C", FOUR, "AC"),  # enumeration comma
        ("A,C", FOUR, "AC"),  # ASCII comma
        ("A，C", FOUR, "AC"),  # full-width comma
        ("A和C", FOUR, "AC"),  # Chinese "and"
        ("A and C", FOUR, "AC"),  # English "and"
        ("A C", FOUR, "AC"),  # space separated
        ("(A)(C)", FOUR, "AC"),  # bracketed letters
        ("Ａ", FOUR, "A"),  # full-width letter
        ("Ａ、Ｃ", FOUR, "AC"),  # full-width letters and comma
        ("b", FOUR, "B"),  # a lone lowercase letter
        ("选B", FOUR, "B"),  # "choose B"
        ("选项B", FOUR, "B"),  # "option B" as the whole answer
        ("选项A和C都正确", FOUR, "AC"),  # prefix and approval suffix together
        ("B选项", FOUR, "B"),  # letter then "option"
        ("答案：B", FOUR, "B"),  # answer colon
        ("答案是B", FOUR, "B"),  # "the answer is B"
        ("正确答案为 C", FOUR, "C"),  # "the correct answer is C"
        ("**答案：C**", FOUR, "C"),  # markdown bold
        ("Answer: B", FOUR, "B"),  # English label
        ("the answer is B", FOUR, "B"),  # English sentence
        ("The final answer is (D).", FOUR, "D"),  # English with brackets and a full stop
        ("final " * 300 + "correct answer would be B", FOUR, "B"),  # a run of qualifiers (matched from "answer")
        ("本题的最终答案应为C", FOUR, "C"),  # qualifiers before 答案 (matched from 答案)
        ("The answer is Both A and C.", FOUR, "AC"),  # English, "Both" is not a letter
        ("答案：A。解析：B选项错误", FOUR, "A"),  # CFLUE two-line style: the analysis is not scanned
        ("经分析，B选项错误，D选项无关，因此答案是A和C。", FOUR, "AC"),  # free text: the answer phrase wins
        ("答案可能是B，但再想想，最终答案是C", FOUR, "C"),  # the last answer phrase wins
        ("所以，我认为不选B，故选D。", FOUR, "D"),  # a negated choice is skipped
        ("B不正确，不应选B。", FOUR, None),  # only negated mentions: no answer
        ("本题应选C。", FOUR, "C"),  # "should choose C"
        ("After checking each option, I choose D.", FOUR, "D"),  # English choosing verb
        ("I would not choose B; D is better.", FOUR, None),  # English negated choice, no answer phrase
        ("The correct options are A, C, and D.", FOUR, "ACD"),  # English list with a serial comma
        ("最终答案：B. 股票", FOUR, "B"),  # label and text after an answer phrase
        ("我认为A是错误的，因为债券有风险。", FOUR, None),  # free text without an answer phrase: no letter scan
        ("A或C", FOUR, None),  # a hedge is not an answer
        ("E", FOUR, None),  # not one of the four options
        ("A、E", FOUR, None),  # names a missing option
        ("E", BARE, "E"),  # without choices A-G are allowed
        ("None", FOUR, None),  # a word, not a letter
        ("CAFE", FOUR, None),  # a word made of letters that are partly not options
        ("", FOUR, None),  # empty
        ("股票", FOUR, "B"),  # the exact option text
        ("答案：基金", FOUR, "C"),  # option text after an answer phrase
        ("答案：99.01。", {"choices": {"A": "99.01", "B": "100.00"}}, "A"),  # a numeric option text keeps its dot
        ("对", TF, "A"),  # 判断题: the option text
        ("错误", TF, "B"),  # 判断题: a synonym of 错
        ("答案：错", TF, "B"),  # 判断题: after an answer phrase
        ("正确。", TF, "A"),  # 判断题: synonym with a full stop
        ("True", TF, "A"),  # 判断题: English
        ("F", TF, "B"),  # 判断题: F is not an option here, so it means False
        ("\\checkmark", TF, "A"),  # 判断题: LaTeX tick
        ("\\times", TF, "B"),  # 判断题: LaTeX cross
        ("因此该说法错误，答案为B", TF, "B"),  # 判断题: free text with a letter answer
        ("对", FOUR, None),  # 对 is not an option of an ordinary MCQ
    ],
)
def test_extract(text, example, expected):
    assert TASK.extract(text, example) == expected


@pytest.mark.parametrize(
    "gold, expected",
    [
        ("ACD", "ACD"),  # the data set's form
        ("DCA", "ACD"),  # unsorted
        ("A,C", "AC"),  # separated
        (["C", "A"], "AC"),  # a list
        ("ｂ", "B"),  # full-width lowercase
        ("", None),  # empty
        ("对", None),  # not letters
        (3, None),  # not a string
    ],
)
def test_gold_letters(gold, expected):
    assert gold_letters(gold) == expected


# --- scoring ------------------------------------------------------------------------------
GOOD = render("债券和基金都是……", "综上，答案是A和C。", boxed="A、C")


@pytest.mark.parametrize(
    "response, example, eval_correct, reward",
    [
        (GOOD, FOUR, True, 1.0),  # right format, right set
        (render("...", "", boxed="CA"), FOUR, True, 1.0),  # order-insensitive
        (render("...", "", boxed="A"), FOUR, False, 0.0),  # a subset is wrong
        (render("...", "", boxed="ACD"), FOUR, False, 0.0),  # a superset is wrong
        (render("...", "", boxed="A. Bond, C. Fund"), FOUR, True, 1.0),  # labels with text
        (render("...", "", boxed="Both A and C"), FOUR, True, 1.0),  # upstream would read ABC
        ("推理……\\boxed{AC}", FOUR, True, 0.0),  # no tags: eval finds the box, reward needs the format
        ("<answer>\\boxed{AC}</answer>", FOUR, True, 0.0),  # no <think>: reward 0 even though correct
        ("<answer>\\boxed{AC}</answer><think>x</think>", FOUR, True, 0.0),  # tags out of order
        ("<think>x</think><answer>答案：AC</answer>", FOUR, True, 0.0),  # no box inside <answer>
        ("<think>x</think>\\boxed{AC}<answer>\\boxed{B}</answer>", FOUR, False, 0.0),  # reward reads the answer box
        ("<think>x</think>答案：A、C", FOUR, True, 0.0),  # eval falls back to the text after </think>
        (render("...", "", boxed="对"), TF, False, 0.0),  # 判断题: 对 is A, gold is B
        (render("...", "", boxed="错"), TF, True, 1.0),  # 判断题: 错 is B
        (render("...", "", boxed="A,C"), BARE, True, 1.0),  # bare example, no choices
    ],
)
def test_score(response, example, eval_correct, reward):
    assert TASK.score(response, example, mode="eval").correct is eval_correct
    assert TASK.score(response, example, mode="reward").reward == reward


def test_score_reasoning_content():
    # a server split the thinking off: joined back, the strict format holds
    v = TASK.score("<answer>\\boxed{AC}</answer>", FOUR, mode="reward", reasoning_content="思考")
    assert (v.reward, v.pred) == (1.0, "AC")


@pytest.mark.parametrize(
    "gold, correct, reason_part",
    [
        ("AC", True, "match"),  # normal gold
        ("C,A", True, "match"),  # separated gold
        ("B", False, "gold B"),  # wrong: the reason names both sides
        ("??", None, "unparseable gold"),  # gold cannot be read: unverifiable, not wrong
    ],
)
def test_check(gold, correct, reason_part):
    ok, reason = TASK.check("AC", {"gold": gold})
    assert ok is correct and reason_part in reason


# --- loading ------------------------------------------------------------------------------
def test_load_sample():
    examples = TASK.load(str(ASSET))
    assert [e["gold"] for e in examples] == ["A", "ACD", "B", "B", "B", "ABD"]
    assert [e["qtype"] for e in examples][:3] == ["单项选择题", "多项选择题", "判断题"]
    first = examples[0]
    assert first["task"] == "cflue" and first["exam"] == "基金从业资格"
    assert first["choices"] == {"A": "99.01", "B": "100.00", "C": "101.00", "D": "90.91"}
    assert first["id"] == make_id(first["question"], first["choices"])
    assert first["id"].startswith("cflue-") and len(first["id"]) == len("cflue-") + 12
    assert len({e["id"] for e in examples}) == len(examples)
    assert examples[3]["analysis"] is None and len(examples[3]["choices"]) == 3
    assert TASK.load(str(ASSET)) == examples  # ids are stable across loads


def test_load_jsonl_and_duplicates(tmp_path):
    rec = json.loads(ASSET.read_text(encoding="utf-8"))[0]
    path = tmp_path / "k.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [rec, rec]) + "\n\n", encoding="utf-8")
    a, b = TASK.load(str(path))
    assert b["id"] == a["id"] + "-2"  # the same question twice keeps distinct, stable ids


GOOD_REC = {
    "名称": "x",
    "task": "单项选择题",
    "question": "q",
    "choices": "{'A': '1', 'B': '2'}",
    "answer": "A",
    "analysis": None,
}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"task": "填空题"}, "task"),  # unknown 题型
        ({"question": "  "}, "question"),  # blank question
        ({"choices": "{'A': '1', 'B': "}, "choices"),  # truncated literal
        ({"choices": "__import__('os').getcwd()"}, "choices"),  # code is never evaluated
        ({"choices": "['A', 'B']"}, "choices"),  # a list, not a dict
        ({"choices": "{'a': '1'}"}, "choices"),  # lowercase key
        ({"choices": "{'A': 1}"}, "choices"),  # option text not a string
        ({"answer": "C"}, "answer"),  # letter not among the choices
        ({"answer": "A,B"}, "answer"),  # not a bare letter run
        ({"answer": None}, "answer"),  # missing gold
        ({"analysis": 3}, "analysis"),  # analysis must be text or null
    ],
)
def test_load_errors(tmp_path, change, field):
    path = tmp_path / "k.json"
    path.write_text(json.dumps([GOOD_REC, {**GOOD_REC, **change}], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK.load(str(path))
    assert (err.value.line, err.value.field) == (1, field)  # JSON arrays: 0-based record index
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content, line",
    [
        ("[{]", 1),  # broken JSON array
        ('{"task": "判断题"}\n{oops\n', 2),  # broken JSONL line
        ("[1]", 0),  # a record that is not an object
    ],
)
def test_load_bad_json(tmp_path, content, line):
    path = tmp_path / "k.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK.load(str(path))
    assert err.value.line == line


def test_parse_choices():
    assert parse_choices("{'B': '错', 'A': '对'}") == {"A": "对", "B": "错"}  # sorted by key
    with pytest.raises(ValueError):
        parse_choices("{'A': '对'} if True else 0")  # expressions are not literals


# --- prompt and registry -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "index, wording",
    [
        (0, "单项选择题"),  # single choice
        (1, "多项选择题"),  # multiple choice
        (2, "判断题"),  # true/false
    ],
)
def test_messages(index, wording):
    ex = TASK.load(str(ASSET))[index]
    (msg,) = TASK.messages(ex)
    text = msg["content"]
    assert msg["role"] == "user" and wording in text and ex["question"] in text
    for key, option in ex["choices"].items():
        assert f"\n{key}. {option}" in text
    assert "<think>" in text and "<answer>" in text and "\\boxed{}" in text


def test_messages_bare():
    # a bare example still renders, with the neutral wording
    text = TASK.messages({"question": "哪个对？", "gold": "A"})[0]["content"]
    assert "选择题" in text and "哪个对？" in text


@pytest.mark.parametrize("alias", ["cflue", "cflue_mcq", "cflue_mcq_r1", "dianjin/cflue", "CFLUE_MCQ"])
def test_aliases(alias):
    assert get_task(alias) is TASK


def test_reference():
    assert TASK.reference({"gold": "CA"}) == "AC"


# --- real data ---------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_knowledge(real_data):
    examples = TASK.load(str(real_data / "cflue" / "knowledge.json"))
    assert len(examples) == 3864 and len({e["id"] for e in examples}) == 3864
    for ex in examples:
        gold = ex["gold"]
        keys = "".join(ex["choices"])
        # a different set: the next option for one letter, else drop the last letter (a subset)
        other = keys[(keys.index(gold) + 1) % len(keys)] if len(gold) == 1 else gold[:-1]
        for mode in ("eval", "reward"):
            assert TASK.score(render("", "", boxed=gold), ex, mode=mode).reward == 1.0, (ex["id"], mode)
            assert TASK.score(render("", "", boxed=other), ex, mode=mode).correct is False, (ex["id"], mode)
        assert extract_letters(gold, ex) == gold
