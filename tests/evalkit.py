"""Builders shared by the `dianjin eval` tests (test_eval, test_judging, test_faults, test_report):
benchmark files in the real schemas with invented content (`write_data`, `write_cflue_oe`), a scripted
model whose true verdict per sample is known in advance (`Script`, `reply_for`), the `dianjin eval run`
command line (`eval_args`) and the rows a run wrote (`rows_of`). Not a test module: nothing here is
collected.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fake_openai import FakeOpenAI, last_user

from dianjin.eval.specs import build_units, resolve_data, scoring_task
from dianjin.eval.summarize import load_rows

KINDS = ("right", "wrong", "malformed", "truncated", "reasoning")
TASKS = ("cflue", "finqa", "ccc", "math500", "gpqa")

# --- fixtures in the real schemas (invented content) --------------------------------------------------
CFLUE = [
    (
        "单项选择题",
        "某基金申购费率为1%，申购10000元，外扣法下申购费用约为（ ）元。",
        {"A": "99.01", "B": "100", "C": "101", "D": "90"},
        "A",
    ),
    (
        "多项选择题",
        "下列属于商业银行表外业务的有（ ）。",
        {"A": "承兑汇票", "B": "活期存款", "C": "备用信用证", "D": "贷款承诺"},
        "ACD",
    ),
    ("判断题", "货币市场基金可以投资于股票。", {"A": "对", "B": "错"}, "B"),
    (
        "单项选择题",
        "我国负责制定和执行货币政策的机构是（ ）。",
        {"A": "财政部", "B": "中国人民银行", "C": "证监会", "D": "银保监会"},
        "B",
    ),
    (
        "单项选择题",
        "债券价格与市场利率的关系通常是（ ）。",
        {"A": "同向变动", "B": "反向变动", "C": "无关", "D": "不确定"},
        "B",
    ),
    (
        "多项选择题",
        "影响股票价格的宏观因素有（ ）。",
        {"A": "利率", "B": "通货膨胀", "C": "公司名称长度", "D": "经济周期"},
        "ABD",
    ),
]
FINQA = [
    ("what was the percent change in revenue from 2014 to 2015?", 0.05),
    ("what is the total of the two segments?", 1530.0),
    ("did net income increase in 2015?", "yes"),
    ("what is the average cost per unit?", 12.5),
    ("what was the ratio of debt to equity?", 0.4),
]
CCC_DIALOGUES = [
    ("violation", ["理财到期本金没到账，再不处理我就去金融监管总局投诉！", "您投诉也没用，还是等着吧。"]),
    (
        "compliant",
        ["信用卡多扣了年费，不处理我就打12378投诉。", "非常抱歉，已为您升级加急工单，两个工作日内专员联系您。"],
    ),
    ("violation", ["我要在微博上曝光你们乱扣费。", "随便你发，我们不怕。"]),
    ("compliant", ["请问转账限额是多少？", "您好，手机银行单笔限额五万元，可在设置中调整。"]),
    ("violation", ["你们再不退款我就起诉。", "起诉也没用，法院不会受理的，您放心。"]),
]
MATH = [
    ("What is $2+3$?", "5"),
    ("Compute $\\frac{1}{2}+\\frac{1}{4}$.", "\\frac{3}{4}"),
    ("What is $7\\times 6$?", "42"),
    ("Solve $x+4=10$.", "6"),
    ("What is $\\sqrt{81}$?", "9"),
]
GPQA = [
    (
        "Which particle mediates the electromagnetic force in the invented model?",
        "photon",
        "gluon",
        "W boson",
        "graviton",
    ),
    (
        "An invented reaction doubles the rate when the temperature rises by ten kelvin. What is this rule?",
        "a Q10 of 2",
        "zero order",
        "first order",
        "a Q10 of 1",
    ),
    ("In the invented cell, which organelle makes most ATP?", "mitochondrion", "ribosome", "lysosome", "nucleolus"),
]
GPQA_COLUMNS = [
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Record ID",
    "High-level domain",
    "Subdomain",
    "Canary String",
]


def write_data(root: Path) -> Path:
    """A data dir in the layout of ../shared/data, with our own invented records."""
    (root / "cflue").mkdir(parents=True)
    (root / "cflue" / "knowledge.json").write_text(
        json.dumps(
            [
                {"名称": "测试", "task": t, "question": q, "choices": repr(c), "answer": a, "analysis": "略"}
                for t, q, c, a in CFLUE
            ],
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    (root / "finqa").mkdir()
    finqa = [
        {
            "id": f"FAKE/2015/page_{i}.pdf-1",
            "pre_text": ["revenue grew in 2015 ."],
            "post_text": ["end ."],
            "table": [["", "2014", "2015"], ["revenue", "100", "105"]],
            "qa": {"question": q, "program": "divide(1, 1)", "exe_ans": g, "answer": str(g)},
        }
        for i, (q, g) in enumerate(FINQA)
    ]
    (root / "finqa" / "test_5.json").write_text(json.dumps(finqa), encoding="utf-8")
    (root / "finqa" / "example_predictions.json").write_text("[]", encoding="utf-8")  # not a split: never picked
    (root / "ccc").mkdir()
    with open(root / "ccc" / "test.jsonl", "w", encoding="utf-8") as f:
        for i, (label, (cust, agent)) in enumerate(CCC_DIALOGUES):
            rec = {
                "id": f"ccc-t{i}",
                "dialogue": [{"role": "客户", "text": cust}, {"role": "客服", "text": agent}],
                "label": label,
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (root / "math500").mkdir()
    with open(root / "math500" / "test.jsonl", "w", encoding="utf-8") as f:
        for i, (p, a) in enumerate(MATH):
            f.write(
                json.dumps(
                    {
                        "problem": p,
                        "answer": a,
                        "solution": "",
                        "subject": "Algebra",
                        "level": 1,
                        "unique_id": f"test/algebra/{i}.json",
                    }
                )
                + "\n"
            )
    (root / "gpqa").mkdir()
    with open(root / "gpqa" / "gpqa_diamond.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(GPQA_COLUMNS)
        for i, (q, *answers) in enumerate(GPQA):
            w.writerow([q, *answers, f"recInvented{i:04d}", "Physics", "Invented", "invented fixture"])
    return root


# --- scripted answers --------------------------------------------------------------------------------
def _body(task: str, gold, wrong: bool) -> str:
    """The final-answer text of a right (or wrong) answer; for fincalc `gold` is the example."""
    if task == "fincalc-open":
        return f"\\boxed{{{float(gold['gold']) * (3 if wrong else 1) + (1 if wrong else 0):.2f}}}"
    if task == "fincalc-mcq":
        gold = gold["gold"]
    if task == "ccc":
        verdict = {"violation": "客服违规", "compliant": "客服未违规"}[gold]
        if wrong:
            verdict = "客服未违规" if gold == "violation" else "客服违规"
        return f"最终结果为：{verdict}。"
    if task == "finqa":
        value = gold if isinstance(gold, str) else f"{gold:g}"
        if wrong:
            value = {"yes": "no", "no": "yes"}.get(value, f"{float(gold) * 3 + 1:g}")
        return f"\\boxed{{{value}}}"
    if task == "math500":
        return "\\boxed{9999}" if wrong else f"\\boxed{{{gold}}}"
    letters = "ABCD"
    if wrong:
        gold = next(c for c in letters if c not in gold)
    return f"\\boxed{{{gold}}}"


def reply_for(task: str, gold, kind: str) -> dict:
    body = _body(task, gold, kind == "wrong")
    if kind == "malformed":
        return {"content": "Sorry, I cannot help with that!!"}
    if kind == "truncated":
        return {"content": "<think>\nLet me work through this step by step and", "finish_reason": "length"}
    if kind == "reasoning":  # vLLM's reasoning parser: the thinking arrives in reasoning_content
        return {"content": f"<answer>\n{body}\n</answer>", "reasoning_content": "逐步分析：先看题目，再计算。"}
    return {"content": f"<think>\n逐步分析：先看题目，再计算。\n</think>\n<answer>\n{body}\n</answer>"}


class Script:
    """Prompt -> scripted reply for every unit of the given tasks; `truth[task][key]` is the true verdict."""

    def __init__(self, data: Path, tasks=TASKS, n: int = 1):
        self.replies: dict[str, dict] = {}
        self.truth: dict[str, dict[str, bool]] = {}
        self.kinds: dict[str, dict[str, str]] = {}
        for task in tasks:
            units = build_units(task, resolve_data(task, data, {}), n, None)
            items = list(dict.fromkeys(u.item for u in units))
            self.truth[task], self.kinds[task] = {}, {}
            for u in units:
                kind = KINDS[items.index(u.item) % len(KINDS)]
                prompt = scoring_task(task).messages(u.example)[-1]["content"]
                self.replies[prompt] = reply_for(task, u.example["gold"], kind)
                self.truth[task][u.key] = kind in ("right", "reasoning")
                self.kinds[task][u.key] = kind

    def __call__(self, req: dict) -> dict:
        return self.replies[last_user(req)]

    def accuracy(self, task: str) -> float:
        t = self.truth[task]
        return sum(t.values()) / len(t)


def eval_args(srv: FakeOpenAI, data: Path, out: Path, *extra: str, tasks=TASKS) -> list[str]:
    return [
        "eval",
        "run",
        "--base-url",
        srv.base_url,
        "--model",
        "fake-model",
        "--tasks",
        ",".join(tasks),
        "--data-dir",
        str(data),
        "--output-dir",
        str(out),
        "--quiet",
        "--timeout",
        "0.5",
        *extra,
    ]


def rows_of(out: Path, task: str) -> dict[str, dict]:
    return load_rows(out / "samples" / f"{task}.jsonl")


def write_cflue_oe(root: Path) -> None:
    (root / "cflue_oe").mkdir()
    recs = [
        {"id": f"oe{i}", "question": q, "gold": g, "analysis": "略"}
        for i, (q, g) in enumerate(
            [
                ("我国的中央银行是哪家机构？", "中国人民银行"),
                ("债券价格与利率如何变动？", "反向变动"),
                ("货币基金能否投资股票？", "不能"),
                ("存款保险的最高偿付限额是多少？", "50万元"),
            ]
        )
    ]
    (root / "cflue_oe" / "test.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8"
    )
