"""CCC (Chinese Compliance Check): schema loader, prompt, verdict reading, scoring.

tests/assets/ccc_sample.jsonl holds 16 dialogues invented for these tests (8 violation, 8
compliant; default rules, a custom rule set, customer/agent roles, records with and without
findings). CCC itself is proprietary and never released, so there is no realdata test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dianjin.answer import render
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.ccc import (
    COMPLIANT,
    DEFAULT_RULES,
    VIOLATION,
    normalize_label,
    read_verdict,
    render_dialogue,
    render_rules,
)

ASSET = Path(__file__).parent / "assets" / "ccc_sample.jsonl"
TASK = get_task("ccc")
V, C = VIOLATION, COMPLIANT


# --- verdict reading ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("客服违规", V),  # the canonical violation verdict
        ("存在违规", V),  # "there is a violation"
        ("违规", V),  # bare word
        ("客服违反了工单升级规则", V),  # 违反 = violated
        ("不合规", V),  # "not compliant" is a violation, not a negated violation
        ("非合规", V),  # another negation of 合规
        ("不符合规定", V),  # "does not meet the rules"
        ("客服没有及时升级工单，违规", V),  # 没有 negates 升级, not 违规 (comma in between)
        ("客服未安抚客户构成违规", V),  # 未 + a verb that is not a filler word
        ("客服未违规", C),  # the canonical compliant verdict
        ("不存在违规", C),  # "no violation exists"
        ("没有违规", C),  # "did not violate"
        ("无违规", C),  # "no violation"
        ("不违规", C),  # "not a violation"
        ("客服未发现有违规行为", C),  # negation with filler words before 违规
        ("客服没有违反任何规则", C),  # 没有 + 违反
        ("合规", C),  # bare compliant
        ("客服的回答完全合规", C),  # compliant inside a sentence
        ("符合规定", C),  # "meets the rules"
        ("是否违规", None),  # a question echo is not a verdict
        ("违规与否需要判断", None),  # "whether or not" echo
        ("合规要求很重要", None),  # 合规 as a noun (compliance requirements)
        ("判断客服是否违规。客服违规。", V),  # echo skipped, the real verdict read
        ("有无违规：无", C),  # an answered question: "any violation? none"
        ("客服是否违规：否", C),  # answered question, no
        ("客服是否违规：是", V),  # answered question, yes
        ("是否合规：否", V),  # answered compliance question, no
        ("违规/合规", None),  # an option list, not a verdict
        ("客服违规，不符合合规要求", V),  # 合规要求 is a noun phrase, not a compliant verdict
        (
            "最终结果为：客服违规。原因是客服没有违规地安抚客户，其余规则均未违规。",
            V,
        ),  # the final phrase beats later words
        (
            "最终结果为：客服未违规。虽然客户提到投诉，但客服已升级工单，不存在违反规则的违规行为",
            C,
        ),  # anchored compliant
        ("第一条：未违规。第二条：违规。", V),  # no final phrase: the last verdict
        ("结论：合规。", C),  # 结论 anchor
        ("综上所述，客服违规", V),  # 综上 anchor
        ("**最终结果为：客服未违规**", C),  # markdown around the verdict
        ("违规", V),  # a \boxed{} content is read the same way
        ("ｃｏｍｐｌｉａｎｔ", C),  # full-width letters (NFKC)
        ("no violation", C),  # English negation
        ("not a violation", C),  # English negation with article
        ("compliant", C),  # English compliant
        ("The agent does not violate any rule.", C),  # English verb negation
        ("The agent didn't violate the rules", C),  # contraction
        ("The agent has not clearly violated anything", C),  # adverb between
        ("The agent did not escalate and violated the rule.", V),  # "not" negates escalate, not violate
        ("The agent is non-compliant.", V),  # non-compliant
        ("The agent is not compliant.", V),  # not compliant
        ("The agent is in compliance with all rules.", C),  # in compliance
        ("The agent breached the escalation rule.", V),  # breach
        ("Violation.", V),  # bare noun
        ("We check whether the agent violated any rule. The agent did not violate any rule.", C),  # echo then verdict
        ("Is there a violation? No violation.", C),  # English question echo
        ("violation or not", None),  # option echo
        ("Verdict: compliant. The customer mentioned a violation by the bank.", C),  # anchored beats later word
        ("Final answer: violation", V),  # English final phrase
        ("", None),  # empty
        ("hello", None),  # nothing verdict-like
    ],
)
def test_read_verdict(text, expected):
    assert read_verdict(text) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("violation", V),  # canonical
        ("compliant", C),  # canonical
        ("违规", V),  # Chinese
        ("合规", C),  # Chinese
        ("客服违规", V),  # the paper's wording
        ("客服未违规", C),  # the paper's negative wording
        (" Violation ", V),  # case and whitespace
        ("maybe", None),  # not a label
        (1, None),  # not a string
    ],
)
def test_normalize_label(value, expected):
    assert normalize_label(value) == expected


# --- scoring ---------------------------------------------------------------------------------
VIO: dict = {"gold": "violation"}  # a bare `dianjin score` line
OK: dict = {"gold": "compliant"}


@pytest.mark.parametrize(
    "response, example, eval_correct, reward",
    [
        (render("逐条检查……", "最终结果为：客服违规。原因：未升级工单。"), VIO, True, 1.0),  # canonical answer
        (render("逐条检查……", "最终结果为：客服未违规。"), OK, True, 1.0),  # compliant answer
        (render("逐条检查……", "最终结果为：客服未违规。"), VIO, False, 0.0),  # wrong verdict
        (render("……", "最终结果为：客服违规"), {"gold": "违规"}, True, 1.0),  # gold given in Chinese
        (render("……", "结论如下", boxed="合规"), {"gold": "合规"}, True, 1.0),  # a boxed verdict is read
        (render("The agent failed to escalate.", "Verdict: violation"), VIO, True, 1.0),  # English answer
        (
            "<think>客服是否违规？需要检查。</think>最终结果为：客服违规",
            VIO,
            True,
            0.0,
        ),  # no answer block: eval ok, reward 0
        ("<think>……</think><answer>是否违规？</answer>", VIO, False, 0.0),  # only an echo: no verdict
        (
            render("a", "最终结果为：客服违规") + "<answer>x</answer>",
            VIO,
            True,
            0.0,
        ),  # two answer blocks fail the format
        ("最终结果为：客服违规", {"gold": "unknown"}, None, 0.0),  # unparseable gold: cannot verify
    ],
)
def test_score(response, example, eval_correct, reward):
    assert TASK.score(response, example, mode="eval").correct is eval_correct
    assert TASK.score(response, example, mode="reward").reward == reward


def test_score_reasoning_content():
    # a server moved the thinking into reasoning_content
    v = TASK.score("<answer>最终结果为：客服违规</answer>", VIO, mode="reward", reasoning_content="逐条检查")
    assert (v.format_ok, v.correct, v.pred) == (True, True, V)


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        (V, "violation", True),  # normalised pred
        (C, "violation", False),  # wrong
        ("客服未违规", "compliant", True),  # raw text pred is read again
        ("violation", "违规", True),  # Chinese gold
        ("???", "compliant", False),  # nothing readable
    ],
)
def test_check(pred, gold, correct):
    assert TASK.check(pred, {"gold": gold})[0] is correct


# --- loading ---------------------------------------------------------------------------------
def test_load_sample():
    examples = TASK.load(str(ASSET))
    assert len(examples) == 16
    assert sum(e["gold"] == V for e in examples) == 8  # half violation
    assert len({e["id"] for e in examples}) == 16
    first = examples[0]
    assert first["task"] == "ccc" and first["rules"] == DEFAULT_RULES
    assert first["question"].startswith("[1] 客户：")
    english_roles = next(e for e in examples if e["id"] == "ccc-sample-09")
    assert {t["role"] for t in english_roles["dialogue"]} == {"客户", "客服"}  # customer/agent normalised
    assert english_roles["findings"] == []
    custom = next(e for e in examples if e["id"] == "ccc-sample-14")
    assert [r["id"] for r in custom["rules"]] == ["identity_check", "politeness"]


def test_sample_references_score_correct():
    # the rendered reference answer of every sample dialogue reads back as its own gold
    for ex in TASK.load(str(ASSET)):
        response = render("按质检规则逐条检查。", TASK.reference(ex))
        assert TASK.score(response, ex, mode="reward").reward == 1.0, ex["id"]


GOOD = {
    "id": "x1",
    "dialogue": [{"role": "客户", "text": "你好"}, {"role": "客服", "text": "您好"}],
    "label": "compliant",
}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": ""}, "id"),  # empty id
        ({"dialogue": []}, "dialogue"),  # no turns
        ({"dialogue": "客户：你好"}, "dialogue"),  # not a list
        ({"dialogue": ["你好"]}, "dialogue[0]"),  # a turn that is not an object
        ({"dialogue": [{"role": "经理", "text": "你好"}]}, "dialogue[0].role"),  # unknown role
        ({"dialogue": [{"role": "客户", "text": " "}]}, "dialogue[0].text"),  # blank text
        ({"label": "ok"}, "label"),  # unknown label
        ({"label": None}, "label"),  # missing label
        ({"rules": [{"id": "r1", "name": "n"}]}, "rules[0].description"),  # rule without description
        (
            {"rules": [{"id": "r", "name": "a", "description": "d"}, {"id": "r", "name": "b", "description": "d"}]},
            "rules[1].id",
        ),  # duplicate rule id
        ({"findings": [{"rule_id": "nope", "triggered": False}]}, "findings[0].rule_id"),  # unknown rule id
        ({"findings": [{"rule_id": "legal_risk", "triggered": "yes"}]}, "findings[0].triggered"),  # not a bool
        ({"findings": [{"rule_id": "legal_risk", "triggered": True}]}, "label"),  # triggered but compliant
        (
            {"label": "violation", "findings": [{"rule_id": "legal_risk", "triggered": False}]},
            "findings",
        ),  # violation without a triggered finding
    ],
)
def test_load_errors(tmp_path, change, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(GOOD, ensure_ascii=False)
        + "\n"
        + json.dumps({**GOOD, "id": "x2", **change}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as e:
        TASK.load(str(path))
    assert (e.value.line, e.value.field) == (2, field)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "content, line",
    [
        ('{"id": "a"\n', 1),  # broken JSON
        ("\n[1, 2]\n", 2),  # not an object (blank first line skipped)
        (json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n", 2),  # duplicate id
    ],
)
def test_load_bad_lines(tmp_path, content, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as e:
        TASK.load(str(path))
    assert e.value.line == line


def test_load_chinese_label_and_default_rules(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text(
        json.dumps({**GOOD, "label": "违规", "dialogue": [{"role": "agent", "text": "好"}]}) + "\n", encoding="utf-8"
    )
    (ex,) = TASK.load(str(path))
    assert ex["gold"] == V and ex["findings"] == []
    ex["rules"][0]["name"] = "changed"  # examples get a copy: the defaults stay intact
    assert DEFAULT_RULES[0]["name"] == "监管机构投诉风险"


# --- prompt and helpers -----------------------------------------------------------------------
def test_messages_default_rules():
    ex = TASK.load(str(ASSET))[0]
    (msg,) = TASK.messages(ex)
    content = msg["content"]
    assert msg["role"] == "user"
    for rule in DEFAULT_RULES:  # every default rule is rendered
        assert rule["name"] in content and rule["description"] in content
    assert "[4] 客服：您投诉也没用" in content  # the numbered dialogue
    assert "<think>" in content and "<answer>" in content and "最终结果为：客服违规" in content


def test_messages_custom_rules_and_bare():
    ex = next(e for e in TASK.load(str(ASSET)) if e["id"] == "ccc-sample-14")
    content = TASK.messages(ex)[0]["content"]
    assert "1. 身份核验：" in content and DEFAULT_RULES[0]["name"] not in content
    bare = TASK.messages({"gold": "violation", "question": "客户：你好\n客服：滚"})[0]["content"]
    assert "客服：滚" in bare and DEFAULT_RULES[0]["name"] in bare  # bare line: question text, default rules


def test_render_helpers():
    ex = {"dialogue": [{"role": "customer", "text": " 你好 "}, {"role": "客服", "text": "您好"}]}
    assert render_dialogue(ex) == "[1] 客户：你好\n[2] 客服：您好"
    assert render_rules([{"id": "a", "name": "甲", "description": "乙"}]) == "1. 甲：乙"


@pytest.mark.parametrize(
    "example, expected",
    [
        ({"gold": "violation"}, "最终结果为：客服违规。"),  # no findings: verdict only
        ({"gold": "compliant"}, "最终结果为：客服未违规。客服的表现没有触犯任何一条质检规则。"),  # compliant
        (
            {
                "gold": "violation",
                "findings": [{"rule_id": "ticket_escalation", "triggered": True, "note": "未升级。"}],
            },
            "最终结果为：客服违规。原因：客服违反了“工单升级”（未升级）。",
        ),  # reason from a triggered finding
    ],
)
def test_reference(example, expected):
    assert TASK.reference(example) == expected


@pytest.mark.parametrize("alias", ["ccc", "ccc_r1", "dianjin/ccc", "CCC", "chinese_compliance_check"])
def test_aliases(alias):
    assert get_task(alias) is TASK
