"""Tests of the CCC multi-agent workflow (dianjin.data.ccc_agents) against the loopback OpenAI server:
the standalone compliance checker (sync and async), its log and call counts, re-asking unclear agents,
errors, the prompts it builds, and the refine + verify flow.

    .venv/bin/python -m pytest -q tests/test_ccc_agents.py
"""

from __future__ import annotations

import asyncio
import collections
import re

import pytest
from fake_openai import FakeOpenAI, last_user

from dianjin.data.ccc_agents import (
    AUDITOR,
    CccConfig,
    CheckResult,
    acheck_dialogue,
    auditor_messages,
    ccc_flow,
    check_dialogue,
    refine_messages,
)
from dianjin.data.distill import Unfinished, drive_sync
from dianjin.llm.client import EndpointConfig, LLMClient, SyncClient
from dianjin.tasks import get_task
from dianjin.tasks.ccc import DEFAULT_RULES

RULES = [
    {
        "id": "regulator_complaint",
        "name": "监管机构投诉风险",
        "description": "客户扬言向监管投诉时，客服应安抚并升级工单。",
    },
    {"id": "information_security", "name": "信息安全", "description": "客服不得索要密码或短信验证码。"},
]


def example(ex_id: str, customer: str, agent: str, label: str, rules=None) -> dict:
    ex = {
        "id": ex_id,
        "task": "ccc",
        "dialogue": [{"role": "客户", "text": customer}, {"role": "客服", "text": agent}],
        "gold": label,
        "findings": [],
    }
    if rules:
        ex["rules"] = rules
    return ex


COMPLAINT = example("d-1", "再不处理我就去金融监管总局投诉！", "投诉也没用，您等着吧。", "violation")
POLITE = example("d-2", "年费多扣了，请处理。", "抱歉，已升级工单，两个工作日内回复。", "compliant")
CODE = example("d-3", "网银登录不上。", "请把短信验证码告诉我。", "violation", RULES)
# (dialogue marker, rule name) pairs the scripted agents call a breach
BREACHES = {("金融监管总局", "监管机构投诉风险"), ("金融监管总局", "工单升级"), ("短信验证码", "信息安全")}


def make_script(unclear: dict[str, int] | None = None):
    """Scripted agents/auditor/refiner; `unclear[rule name]` = how many first answers lack a verdict."""
    seen: collections.Counter[str] = collections.Counter()
    unclear = unclear or {}

    def script(req: dict) -> dict | str:
        q = last_user(req)
        if "请把这些日志整合成" in q:
            v = re.search(r"【系统的最终裁定】\s*(\S+)", q).group(1)
            return (
                f"<think>现在，我们基于质检流程逐一检查。综合以上所有判断，最终结果为：{v}。</think>"
                f"<answer>最终结果为：{v}。</answer>"
            )
        if "负责汇总各条质检规则" in q:
            breach = "：客服违规\n分析" in q
            return "复核完毕。\n最终结果为：客服" + ("违规" if breach else "未违规") + "。"
        if "只负责检查下面这一条质检规则" in q:
            rule = re.search("负责“(.+?)”", q).group(1)
            seen[rule] += 1
            if seen[rule] <= unclear.get(rule, 0):
                return {"content": "这条规则我还需要再看看。"}
            dialogue = q[q.index("【客服对话】") :]
            breach = any(m in dialogue and rule == r for m, r in BREACHES)
            return f"分析：第[2]轮客服的回复。\n结论：客服{'违规' if breach else '未违规'}"
        return {"status": 400, "error": "unexpected prompt"}

    return script


def endpoint(srv: FakeOpenAI) -> EndpointConfig:
    return EndpointConfig(base_url=srv.base_url, model="fake-judge", timeout=5, backoff_base=0.01, max_retries=1)


@pytest.mark.parametrize(
    "ex, rules, verdict, breached",
    [
        (COMPLAINT, None, "violation", {"regulator_complaint", "ticket_escalation"}),  # default rules, two breaches
        (POLITE, None, "compliant", set()),  # default rules, nothing breached
        (CODE, None, "violation", {"information_security"}),  # the example's own two rules
        (COMPLAINT, RULES, "violation", {"regulator_complaint"}),  # rules given by the caller win
    ],
)
def test_check_dialogue(ex, rules, verdict, breached):
    with FakeOpenAI(script=make_script()) as srv, SyncClient(endpoint(srv)) as client:
        result = check_dialogue(ex, client, rules=rules)
    n_rules = len(rules or ex.get("rules") or DEFAULT_RULES)
    assert isinstance(result, CheckResult) and result.verdict == verdict
    assert result.calls == n_rules + 1 == len(result.log)  # one call per agent, one for the auditor
    assert [e["agent"] for e in result.log][-1] == AUDITOR["id"]
    assert {e["agent"] for e in result.log[:-1] if e["verdict"] == "violation"} == breached
    assert all(e["verdict"] in ("violation", "compliant") and e["analysis"] for e in result.log)
    assert result.tokens == sum(e["tokens"] for e in result.log) > 0


@pytest.mark.parametrize(
    "unclear, calls, verdict_of_rule",
    [
        ({"信息安全": 1}, 4, "violation"),  # one unclear answer: asked again, then clear
        ({"信息安全": 5}, 5, None),  # never clear within max_samples=3: recorded as no verdict
    ],
)
def test_unclear_agents_are_asked_again(unclear, calls, verdict_of_rule):
    with FakeOpenAI(script=make_script(unclear)) as srv, SyncClient(endpoint(srv)) as client:
        result = check_dialogue(CODE, client, max_samples=3)
        keys = [r["key"] for r in srv.requests]
    entry = next(e for e in result.log if e["agent"] == "information_security")
    assert result.calls == calls and entry["verdict"] == verdict_of_rule
    assert len(keys) == len(set(keys))  # each re-ask is a new sample (a distinct cache key)


def test_async_checker_matches_sync():
    async def go(srv: FakeOpenAI) -> CheckResult:
        async with LLMClient(endpoint(srv), progress=False) as llm:
            return await acheck_dialogue(COMPLAINT, llm)

    with FakeOpenAI(script=make_script()) as srv:
        got = asyncio.run(go(srv))
        with SyncClient(endpoint(srv)) as client:
            assert check_dialogue(COMPLAINT, client) == got


def test_failed_request_is_unfinished_not_a_verdict():
    with FakeOpenAI(script=lambda req: {"status": 400, "error": "bad model"}) as srv:
        with SyncClient(endpoint(srv)) as client, pytest.raises(Unfinished, match="HTTP 400"):
            check_dialogue(POLITE, client)


def test_prompts_carry_the_log():
    log = [
        {"agent": r["id"], "name": r["name"], "verdict": v, "analysis": f"分析{r['id']}", "calls": 1, "tokens": 1}
        for r, v in zip(RULES, ["violation", None])
    ]
    audit = auditor_messages(CODE, RULES, log)[0]["content"]
    assert "1. 监管机构投诉风险：客服违规\n分析：分析regulator_complaint" in audit
    assert "2. 信息安全：无法判断" in audit and "[2] 客服：请把短信验证码告诉我。" in audit
    check = CheckResult(
        "violation",
        log
        + [
            {
                "agent": "auditor",
                "name": AUDITOR["name"],
                "verdict": "violation",
                "analysis": "审计意见",
                "calls": 1,
                "tokens": 1,
            }
        ],
        3,
        3,
    )
    refine = refine_messages(CODE, RULES, check)[0]["content"]
    assert "分析regulator_complaint" in refine and "【审计专家的复核】\n审计意见" in refine
    assert "【系统的最终裁定】\n客服违规" in refine and "{" not in refine  # every placeholder filled


@pytest.mark.parametrize(
    "ex, pool, attempts",
    [
        (CODE, "sft", 1),  # the workflow finds the breach: refined, verified, SFT
        # the label says violation but the agents see none: wrong three times, RL pool
        (example("d-4", "网银登录不上。", "请稍候。", "violation", RULES), "rl", 3),
    ],
)
def test_ccc_flow_refines_and_verifies(ex, pool, attempts):
    with FakeOpenAI(script=make_script()) as srv, SyncClient(endpoint(srv)) as client:
        rec = drive_sync(ccc_flow(ex, CccConfig(), teacher="agents"), {"agent": client, "refine": client})
    assert rec["pool"] == pool and len(rec["tries"]) == attempts
    assert rec["calls"] == attempts * (len(RULES) + 2)  # agents + auditor + refine per attempt
    if pool == "sft":
        target = rec["row"]["messages"][-1]["content"]
        assert get_task("ccc").score(target, ex, mode="reward").reward == 1.0
        assert rec["row"]["messages"][0]["content"] == get_task("ccc").messages(ex)[0]["content"]
    else:
        assert rec["row"]["gold"] == "violation" and rec["tries"][-1]["reason"].startswith("answer:")
