"""Task-form examples shared by the export and peer tests: hand-written in the shapes `dianjin.tasks`
loads (never records from ../shared/data), and the reply each one is scored right for."""

from __future__ import annotations

from dianjin import answer as fmt
from dianjin.tasks import get_task

CFLUE = [  # hand-written, in the shape `dianjin.tasks.cflue` loads; three 题型 with different option keys
    {
        "id": "cflue-t1",
        "task": "cflue",
        "question": "下列属于货币市场工具的是（ ）。",
        "qtype": "单项选择题",
        "exam": "测试",
        "choices": {"A": "股票", "B": "国库券", "C": "公司债券", "D": "可转换债券"},
        "gold": "B",
        "analysis": "国库券期限短、流动性高。",
    },
    {
        "id": "cflue-t2",
        "task": "cflue",
        "question": "下列属于商业银行表外业务的有（ ）。",
        "qtype": "多项选择题",
        "exam": "测试",
        "choices": {"A": "银行承兑汇票", "B": "吸收存款", "C": "备用信用证", "D": "发放贷款", "E": "同业拆入"},
        "gold": "AC",
        "analysis": None,
    },
    {
        "id": "cflue-t3",
        "task": "cflue",
        "question": "国库券属于资本市场工具。（ ）",
        "qtype": "判断题",
        "exam": "测试",
        "choices": {"A": "对", "B": "错"},
        "gold": "B",
        "analysis": "国库券属于货币市场工具。",
    },
]
FINQA = {
    "id": "ACME/2020/page_1.pdf-1",
    "task": "finqa",
    "question": "what was the change in revenue from 2019 to 2020?",
    "gold": 94.0,
    "program": "subtract(5829, 5735)",
    "answer": "94",
    "table": [["", "2020", "2019"], ["revenue", "5829", "5735"]],
    "context": "| | 2020 | 2019 |\n| --- | --- | --- |\n| revenue | 5829 | 5735 |",
}
CFLUE_OE = {
    "id": "oe-1",
    "task": "cflue_oe",
    "question": "什么是国库券？",
    "gold": "国库券是政府发行的短期债务凭证。",
    "analysis": None,
}


def reference_reply(ex: dict) -> str:
    """A well-formed reply carrying the example's reference answer (boxed where the task boxes)."""
    task = get_task(ex["task"])
    ref = str(task.reference(ex))
    return fmt.render("逐步推理。", "", ref) if task.boxed else fmt.render("逐步推理。", ref)
