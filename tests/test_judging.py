"""Judging is a task hook: every task has the same `judge_messages` / `parse_judge` / `judge_template`
(only cflue_oe and finqa answer them), and `dianjin eval` asks the judge itself, in bulk; a judge
call that fails leaves the answer unverified, with its prediction and format kept.

    .venv/bin/python -m pytest -q tests/test_judging.py
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from evalkit import Script, eval_args, rows_of, write_cflue_oe
from fake_openai import FakeOpenAI, last_user

from dianjin.cli import main as cli
from dianjin.tasks import TASKS
from dianjin.tasks.base import Task


def _params(f) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(f).parameters.values()]


def test_judge_hooks_have_one_signature():
    for name, task in TASKS.items():
        for hook in ("judge_messages", "parse_judge", "judge_template"):
            assert _params(getattr(type(task), hook)) == _params(getattr(Task, hook)), (name, hook)
    example = {"id": "x", "question": "q", "gold": "g", "analysis": ""}
    judged = {n for n, t in TASKS.items() if t.judge_messages("a", example) is not None}
    assert judged == {"cflue_oe", "finqa"}
    assert all(TASKS[n].judge_template() for n in judged)
    assert TASKS["finqa"].parse_judge("... \\boxed{1}") == (True, "judge: correct")
    assert TASKS["cflue_oe"].parse_judge("结论：错误") == (False, "judge: incorrect")


def test_a_failed_judge_leaves_answers_unverified(data: Path, tmp_path: Path):
    write_cflue_oe(data)
    finqa = Script(data, tasks=("finqa",))

    def model(req: dict):
        q = last_user(req)
        return "<think>想一想</think><answer>中国人民银行</answer>" if "金融行业专家" in q else finqa(req)

    def broken_judge(req: dict):  # CFLUE-OE: refused; FinQA: cut off at max_tokens
        if "Reference answer:" in last_user(req):
            return {"content": "The answer", "finish_reason": "length"}
        return {"status": 400, "error": "bad request"}

    out = tmp_path / "run"
    with FakeOpenAI(script=model) as srv, FakeOpenAI(script=broken_judge) as judge:
        assert (
            cli(
                eval_args(
                    srv,
                    data,
                    out,
                    "--judge-base-url",
                    judge.base_url,
                    "--judge-model",
                    "judge-model",
                    tasks=("finqa", "cflue_oe"),
                )
            )
            == 0
        )
    for task, why in (("cflue_oe", "judge failed: "), ("finqa", "judge failed: answer truncated")):
        answered = [r for r in rows_of(out, task).values() if r["pred"] is not None]
        assert answered and all(
            r["correct"] is None and r["reason"].startswith(why) and r["judge"] is None for r in answered
        ), task
    oe = json.loads((out / "summary.json").read_text())["tasks"]["cflue_oe"]
    assert oe["accuracy"] is None and oe["format_rate"] == 1.0  # the format is the answer's, not the judge's
