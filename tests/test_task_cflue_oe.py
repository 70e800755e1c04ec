"""CFLUE open-ended: loader, prompts, judge-reply parsing and judged scoring.

The records here are invented for the tests; the judge is a plain function standing in for a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from timing import cpu_seconds

from dianjin.answer import render
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.cflue_oe import JUDGE_FIELDS, MAX_ANSWER_CHARS, judge_messages, judge_template, parse_judge

TASK = get_task("cflue_oe")
EXAMPLE = {
    "id": "oe-1",
    "task": "cflue_oe",
    "question": "商业银行的备用信用证属于哪一类业务？",
    "gold": "表外业务",
    "analysis": "备用信用证是或有负债，不在资产负债表内反映。",
    "source_id": "cflue-000000000000",
}


# --- judge replies -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply, expected",
    [
        ("理由：与参考答案一致。\n结论：正确", True),  # the contract
        ("理由：把表外业务说成了资产业务。\n结论：错误", False),  # the contract, negative
        ("结论：不正确", False),  # negation contains 正确
        ("结论：候选答案与参考答案一致，正确", True),  # verdict words in the first clause
        ("结论：考生回答错误，与参考答案不一致", False),  # two negative words agree
        ("**结论：正确**", True),  # markdown bold
        ("结论:正确", True),  # ASCII colon
        ("结论：\n正确", True),  # verdict on the next line
        ("最终结论为：错误。", False),  # 为 and a colon
        ("判断结果是正确的。", True),  # another label
        ("虽然措辞不同，但意思正确……\n结论：错误", False),  # only the label counts, not the reasoning
        ("结论：正确\n（补充：考生的说法没有错误）", True),  # the text after the label's line is not read
        ("理由……\\boxed{1}", True),  # boxed 1
        ("理由……\\boxed{0}", False),  # boxed 0
        ("理由……boxed{{1}}", True),  # upstream FinQA's literal double-brace form
        ("\\boxed{正确}", True),  # a word in the box
        ("结论：正确\n\\boxed{1}", True),  # two signals that agree
        ("结论：正确\n\\boxed{0}", None),  # two signals that disagree
        ("考生写了 \\boxed{42}，与参考答案一致。\n结论：正确", True),  # a quoted answer box is no signal
        ("Reason: same meaning.\nVerdict: correct", True),  # English label
        ("Final verdict: incorrect", False),  # English negation contains "correct"
        ("Conclusion: not correct.", False),  # English two-word negation
        ("Correct.", True),  # a bare short verdict
        ("错误", False),  # a bare short Chinese verdict
        ("不对", False),  # a bare negation
        ("结论：部分正确", None),  # a hedge is ambiguous
        ("Verdict: partially correct", None),  # English hedge
        ("正确还是错误？我不确定。", None),  # mixed words
        (
            "考生的回答涉及表外业务的定义，也讨论了或有负债，但没有给出任何明确的判断结论，所以这里无法得出意见。" * 2,
            None,
        ),  # long, no label
        ("结论：待定", None),  # a label without a verdict
        ("", None),  # empty
        (None, None),  # no reply at all
    ],
)
def test_parse_judge(reply, expected):
    assert parse_judge(reply) is expected


def test_parse_judge_fast():
    reply = "结论：" * 300_000 + "\\boxed{" * 10_000  # labels and braces without a verdict
    assert parse_judge(reply) is None
    assert cpu_seconds(lambda: parse_judge(reply)) < 0.05


# --- judge prompt ------------------------------------------------------------------------------
def test_judge_template_packaged():
    template = judge_template()
    for field in JUDGE_FIELDS:
        assert template.count("{" + field + "}") == 1
    assert "结论：正确" in template and "结论：错误" in template


def test_judge_messages():
    (msg,) = judge_messages(EXAMPLE, "  属于表外业务。 ")
    text = msg["content"]
    assert msg["role"] == "user"
    for value in (EXAMPLE["question"], EXAMPLE["gold"], EXAMPLE["analysis"], "属于表外业务。"):
        assert value in text
    assert not any("{" + f + "}" in text for f in JUDGE_FIELDS)


@pytest.mark.parametrize(
    "example, answer, present, absent",
    [
        (EXAMPLE, "见 {question} \\boxed{1}", "见 {question} \\boxed{1}", None),  # braces in the answer stay verbatim
        ({**EXAMPLE, "analysis": None}, "x", "（无）", None),  # missing analysis is marked
        (EXAMPLE, "HEAD" + "中" * MAX_ANSWER_CHARS + "TAIL", "TAIL", "HEAD"),  # long answers keep the end
    ],
)
def test_judge_messages_values(example, answer, present, absent):
    text = judge_messages(example, answer)[0]["content"]
    assert present in text
    assert absent is None or absent not in text


# --- scoring ------------------------------------------------------------------------------------
def fixed_judge(reply: str):
    """A judge that records what it was shown and answers `reply`."""
    seen: list = []

    def judge(messages):
        seen.append(messages)
        return reply

    judge.seen = seen
    return judge


def keyword_judge(messages):
    """A judge that says correct iff the candidate section mentions 表外."""
    candidate = messages[-1]["content"].split("【考生回答】", 1)[1]
    return "结论：正确" if "表外" in candidate else "理由：不符。\n结论：错误"


GOOD = render("备用信用证是或有负债……", "备用信用证属于商业银行的表外业务。")
BAD = render("……", "属于资产业务。")


@pytest.mark.parametrize(
    "response, judge, mode, correct, reward",
    [
        (GOOD, None, "eval", None, 0.0),  # no judge: unverifiable, not wrong
        (GOOD, keyword_judge, "eval", True, 1.0),  # judged correct
        (BAD, keyword_judge, "eval", False, 0.0),  # judged wrong
        (GOOD, keyword_judge, "reward", True, 1.0),  # reward: strict format holds
        ("备用信用证属于表外业务。", keyword_judge, "eval", True, 0.0),  # no tags: eval reads it, reward gate fails
        ("备用信用证属于表外业务。", keyword_judge, "reward", True, 0.0),  # no tags: reward 0 even though correct
        (GOOD, fixed_judge("我不确定"), "eval", None, 0.0),  # unparseable judge reply
        (GOOD, fixed_judge("结论：错误"), "eval", False, 0.0),  # the judge overrules
    ],
)
def test_score(response, judge, mode, correct, reward):
    verdict = TASK.score(response, EXAMPLE, mode=mode, judge=judge)
    assert verdict.correct is correct and verdict.reward == reward


@pytest.mark.parametrize("mode", ["eval", "reward"])
def test_score_empty_answer(mode):
    # an empty answer block is no answer: the judge is never asked
    judge = fixed_judge("结论：正确")
    verdict = TASK.score("<think>x</think><answer>  </answer>", EXAMPLE, mode=mode, judge=judge)
    assert (verdict.correct, verdict.pred, judge.seen) == (False, None, [])


def test_check_shows_answer_to_judge():
    judge = fixed_judge("结论：正确")
    ok, reason = TASK.check("属于表外业务", {"gold": "表外业务"}, judge)  # a bare `dianjin score` example
    assert (ok, reason) == (True, "judge: correct")
    assert "属于表外业务" in judge.seen[0][-1]["content"]


def test_check_without_judge():
    assert TASK.check("anything", EXAMPLE) == (None, "no judge configured")


def test_judge_errors_propagate():
    def broken(messages):
        raise ConnectionError("judge server down")

    with pytest.raises(ConnectionError):
        TASK.check("x", EXAMPLE, broken)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  属于表外业务。\n", "属于表外业务。"),  # stripped
        ("<answer>属于表外业务。</answer>", "属于表外业务。"),  # stray tags from the after-think tail removed
        ("<answer> </answer>", None),  # only tags
        ("\n \t", None),  # blank
        ("", None),  # empty
    ],
)
def test_extract(text, expected):
    assert TASK.extract(text, EXAMPLE) == expected


# --- loading, prompt, registry -----------------------------------------------------------------
def write(tmp_path: Path, records: list) -> str:
    path = tmp_path / "oe.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_load(tmp_path):
    minimal = {"id": 7, "question": "什么是久期？", "gold": "债券现金流的加权平均期限"}
    examples = TASK.load(write(tmp_path, [EXAMPLE, "", minimal]))
    assert examples[0] == EXAMPLE
    assert examples[1] == {**minimal, "id": "7", "task": "cflue_oe", "analysis": None, "source_id": None}


@pytest.mark.parametrize(
    "bad, line, field",
    [
        ("{oops", 2, None),  # broken JSON
        ("[1, 2]", 2, None),  # not an object
        ({"id": "b", "question": "q"}, 2, "gold"),  # missing reference answer
        ({"id": "b", "question": " ", "gold": "g"}, 2, "question"),  # blank question
        ({"id": None, "question": "q", "gold": "g"}, 2, "id"),  # missing id
        ({"id": "oe-1", "question": "q", "gold": "g"}, 2, "id"),  # duplicate id
        ({"id": "b", "question": "q", "gold": "g", "analysis": ["x"]}, 2, "analysis"),  # analysis must be text
        ({"id": "b", "question": "q", "gold": "g", "source_id": 5}, 2, "source_id"),  # source id must be text
    ],
)
def test_load_errors(tmp_path, bad, line, field):
    path = write(tmp_path, [EXAMPLE, bad])
    with pytest.raises(DataError) as err:
        TASK.load(path)
    assert (err.value.line, err.value.field) == (line, field)
    assert path in str(err.value)


def test_messages():
    (msg,) = TASK.messages(EXAMPLE)
    text = msg["content"]
    assert msg["role"] == "user" and EXAMPLE["question"] in text
    assert "<think>" in text and "<answer>" in text and "\\boxed" not in text


def test_reference():
    assert TASK.reference(EXAMPLE) == "表外业务"


@pytest.mark.parametrize("alias", ["cflue_oe", "cflue_open", "cflue_oe_r1", "dianjin/cflue_oe"])
def test_aliases(alias):
    assert get_task(alias) is TASK
