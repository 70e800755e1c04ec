"""Builders shared by the data-pipeline tests (test_data_pipeline, test_data_faults): source files in
the real schemas with our own records (`write_data`), the scripted teacher and judge of the loopback
server (`script`), the build config that points at it (`config`, `write_config`), and readers of what a
build wrote (`rows`, `without_attempts`). Not a test module: nothing here is collected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from fake_openai import last_user

from dianjin.data.synthetic import fincalc

# --- fixture data (our own records, in the real schemas) -------------------------------------------
CFLUE = [
    # q1: right at the first attempt; reasoning in reasoning_content, answer without our tags
    {
        "名称": "证券从业",
        "task": "多项选择题",
        "question": "面值100元、票面利率5%的债券，每年付息一次，每年利息为（ ）元。",
        "choices": "{'A': '5', 'B': '10', 'C': '50'}",
        "answer": "A",
        "analysis": "100×5%=5元。",
    },
    # q2: wrong at attempt 1, right from attempt 2; reasoning in <think> inside the content
    {
        "名称": "银行从业",
        "task": "多项选择题",
        "question": "下列属于货币市场工具的有（ ）。",
        "choices": "{'A': '国库券', 'B': '股票', 'C': '商业票据', 'D': '长期债券'}",
        "answer": "AC",
        "analysis": "国库券和商业票据期限短。",
    },
    # q3: never right -> RL pool
    {
        "名称": "证券从业",
        "task": "判断题",
        "question": "股票属于固定收益证券，投资者按期获得固定利息。",
        "choices": "{'A': '对', 'B': '错'}",
        "answer": "B",
        "analysis": "股票收益不固定。",
    },
    # q4: the only 单项选择题 -> converted to an open question (its MCQ leaves the MCQ branch)
    {
        "名称": "银行从业",
        "task": "单项选择题",
        "question": "我国负责制定和执行货币政策的机构是（ ）。",
        "choices": "{'A': '中国人民银行', 'B': '财政部', 'C': '证监会'}",
        "answer": "A",
        "analysis": "中国人民银行负责货币政策。",
    },
    # q5: too short (question + options < min_chars) -> dropped by the length filter
    {
        "名称": "x",
        "task": "判断题",
        "question": "对吗？",
        "choices": "{'A': '对', 'B': '错'}",
        "answer": "A",
        "analysis": "",
    },
    # q6: judged ambiguous -> dropped
    {
        "名称": "基金从业",
        "task": "多项选择题",
        "question": "关于这道模糊题所说的那个基金，下列说法正确的有（ ）。",
        "choices": "{'A': '甲', 'B': '乙'}",
        "answer": "A",
        "analysis": "无法确定。",
    },
    # q7: right answer, but the judge says the reasoning contradicts the analysis -> RL pool
    {
        "名称": "基金从业",
        "task": "多项选择题",
        "question": "推理检查不通过：基金份额持有人享有的权利包括（ ）。",
        "choices": "{'A': '收益分配权', 'B': '经营管理权'}",
        "answer": "A",
        "analysis": "持有人享有收益分配权。",
    },
]
FINQA = [
    {
        "id": "fq-1",
        "pre_text": ["revenue grew."],
        "post_text": [],
        "table": [["", "2020", "2019"], ["revenue", "120", "100"]],
        "qa": {
            "question": "what is the change in revenue from 2019 to 2020?",
            "program": "subtract(120, 100)",
            "exe_ans": 20.0,
            "answer": "20",
        },
    },
    {
        "id": "fq-2",
        "pre_text": ["costs grew."],
        "post_text": [],
        "table": [["", "2020", "2019"], ["costs", "90", "60"]],
        "qa": {
            "question": "what is the growth rate of costs from 2019 to 2020?",
            "program": "subtract(90, 60), divide(#0, 60)",
            "exe_ans": 0.5,
            "answer": "50%",
        },
    },
]
GENERIC = [
    {"id": "g-1", "question": "一年期存款利率为2%，存入100元，到期利息是多少元？", "answer": "2元"},
    {
        "question": "下列哪一项是衡量通货膨胀的常用指标？",
        "answer": "B",
        "choices": ["国内生产总值", "居民消费价格指数"],
    },
]
CCC = [
    {
        "id": "c-1",
        "label": "violation",
        "dialogue": [
            {"role": "客户", "text": "理财本金一直没到账，我要去金融监管总局投诉你们！"},
            {"role": "客服", "text": "您投诉也没用，还是等着吧。"},
        ],
        "findings": [
            {"rule_id": "regulator_complaint", "triggered": True, "note": "劝阻监管投诉"},
            {"rule_id": "ticket_escalation", "triggered": True, "note": "未升级工单"},
        ],
    },
    {
        "id": "c-2",
        "label": "compliant",
        "dialogue": [
            {"role": "客户", "text": "信用卡年费多扣了，请帮我处理。"},
            {"role": "客服", "text": "非常抱歉，已为您登记并升级工单，两个工作日内回复。"},
        ],
    },
    # c-3: the agents never notice the breach -> the refined verdict is wrong 3 times -> RL pool
    {
        "id": "c-3",
        "label": "violation",
        "dialogue": [
            {"role": "客户", "text": "网银登录不上去了。"},
            {"role": "客服", "text": "请把短信验证码告诉我。"},
        ],
        "findings": [{"rule_id": "information_security", "triggered": True, "note": "索要验证码"}],
    },
]
RELEASED = [
    {
        "instruction": "假设你是一位金融行业专家，请回答：1+1=？ A. 2 B. 3",
        "input": "",
        "output": "<think>1+1=2。</think><answer>\\boxed{A}</answer>",
    },
    {
        "id": "r-2",
        "instruction": "假设你是一位金融行业专家，请回答：2+2=？ A. 3 B. 4",
        "input": "",
        "output": "<think>2+2=4。</think>\n<answer>答案是 \\boxed{B}</answer>",
    },
]
VIOLATING_RULES = {"c-1": {"监管机构投诉风险", "工单升级"}, "c-2": set(), "c-3": set()}


def write_data(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cflue.json").write_text(json.dumps(CFLUE, ensure_ascii=False, indent=1), encoding="utf-8")
    (d / "finqa.json").write_text(json.dumps(FINQA), encoding="utf-8")
    (d / "generic.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in GENERIC), "utf-8")
    (d / "ccc.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CCC), "utf-8")
    (d / "cflue_mcq.json").write_text(json.dumps(RELEASED, ensure_ascii=False), encoding="utf-8")
    return d


# --- the scripted teacher and judge --------------------------------------------------------------
# marker in the prompt -> (plan, style, right answer, wrong answer)
FINCALC = fincalc.generate(2, 0)
PLANS = {
    "每年利息为": ("right", "rc", "\\boxed{A}", "\\boxed{B}"),
    "货币市场工具": ("wrong_then_right", "think", "\\boxed{AC}", "\\boxed{A}"),
    "固定收益证券": ("never", "tags", "\\boxed{B}", "\\boxed{A}"),
    "负责制定和执行货币政策": ("right", "tags", "负责的机构是中国人民银行。", "财政部。"),
    "推理检查不通过": ("right", "rc", "\\boxed{A}", "\\boxed{B}"),
    "change in revenue": ("right", "tags", "The change is \\boxed{20}.", "\\boxed{25}"),
    "growth rate of costs": ("right", "bare", "\\boxed{50%}", "\\boxed{40%}"),  # no reasoning at all -> RL
    "到期利息是多少元": ("right", "think", "到期利息为2元。", "3元。"),
    "衡量通货膨胀": ("right", "rc", "\\boxed{B}", "\\boxed{A}"),
    **{ex["question"][:30]: ("right", "tags", f"\\boxed{{{ex['gold']}}}", "\\boxed{0}") for ex in FINCALC},
}
STYLES = {
    "rc": lambda a: {"content": f"最终答案：{a}", "reasoning_content": "逐步分析题意，计算并核对各选项。"},
    "think": lambda a: {"content": f"<think>逐步分析题意，计算并核对。</think>\n最终答案：{a}"},
    "tags": lambda a: {"content": f"<think>\nStep by step: check the facts.\n</think>\n<answer>{a}</answer>"},
    "bare": lambda a: {"content": a},
}


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start) + len(start)
    return text[i : text.index(end, i)]


def teacher(req: dict) -> dict:
    q, k = last_user(req), int(req.get("seed", 0))
    marker = next(m for m in PLANS if m in q)
    plan, style, right, wrong = PLANS[marker]
    good = plan == "right" or (plan == "wrong_then_right" and k >= 1)
    return STYLES[style](right if good else wrong)


def _ccc_item(q: str) -> str:
    return next(c["id"] for c in CCC if c["dialogue"][0]["text"] in q)


def _convert(q: str) -> str:
    return f"<question>请说明：{_between(q, '【原题】', '【选项】').strip().replace('（ ）', '')}</question>"


def _oe_judge(q: str) -> str:
    ok = _between(q, "【参考答案】", "【参考解析】").strip() in _between(q, "【考生回答】", "请先")
    return "要点" + ("一致。\n结论：正确" if ok else "不符。\n结论：错误")


def _agent(q: str) -> str:
    breach = re.search("负责“(.+?)”", q).group(1) in VIOLATING_RULES[_ccc_item(q)]
    return "分析：逐轮检查。\n结论：客服" + ("违规" if breach else "未违规")


def _auditor(q: str) -> str:
    return "复核完毕。\n最终结果为：客服" + ("违规" if "：客服违规\n分析" in q else "未违规") + "。原因：见各专家结论。"


def _refine(q: str) -> str:
    v = _between(q, "【系统的最终裁定】", "写作要求").strip()
    return (
        f"<think>现在，我们基于质检流程逐一检查。\n综合以上所有判断，最终结果为：{v}。</think>\n"
        f"<answer>最终结果为：{v}。</answer>"
    )


JUDGE_REPLIES = {  # a prompt's fixed phrase -> reply
    "你是一位金融考试命题专家": _convert,
    "审题专家": lambda q: "题干含糊。\n结论：剔除" if "模糊题" in q else "题意清楚。\n结论：保留",
    "推理过程是否与参考解析一致": lambda q: "相悖。\n结论：错误" if "推理检查不通过" in q else "一致。\n结论：正确",
    "【考生回答】": _oe_judge,
    "只负责检查下面这一条质检规则": _agent,
    "负责汇总各条质检规则": _auditor,
    "请把这些日志整合成": _refine,
}


def script(req: dict) -> dict | str:
    if req["model"] == "fake-teacher":
        return teacher(req)
    q = last_user(req)
    return next(fn(q) for phrase, fn in JUDGE_REPLIES.items() if phrase in q)


def config(base_url: str, out: Path, data: Path, timeout: float = 5.0) -> dict:
    endpoint = {
        "base_url": base_url,
        "concurrency": 8,
        "timeout": timeout,
        "backoff_base": 0.01,
        "backoff_max": 0.1,
        "max_retries": 8,
    }
    return {
        "output_dir": str(out),
        "sources": [
            {"task": "released", "path": str(data / "cflue_mcq.json")},
            {"task": "cflue", "path": str(data / "cflue.json")},
            {"task": "finqa", "path": str(data / "finqa.json")},
            {"task": "jsonl", "path": str(data / "generic.jsonl")},
            {"task": "fincalc", "n": 2, "seed": 0},
            {"task": "ccc", "path": str(data / "ccc.jsonl")},
        ],
        "teacher": {**endpoint, "model": "fake-teacher", "price_in": 1.0, "price_out": 2.0},
        "judge": {**endpoint, "model": "fake-judge"},
        "filter": {"min_chars": 20, "ambiguity": True},
        "convert": {"enabled": True, "fraction": 1.0},
        "distill": {"seed": 0, "reasoning_check": True},
        "progress": False,
        "skip": ["export", "stats"],  # the offline test runs them; here they would only add time
    }


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def rows(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name).read_text(encoding="utf-8").splitlines()]


def without_attempts(rs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "attempts"} for r in rs]
