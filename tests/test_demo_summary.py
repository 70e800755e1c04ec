"""The demo summary's statistics (dianjin.demo_summary): each point's pooled rates with 95% bootstrap
CIs, and the paired SFT - base / GRPO - SFT differences, from `dianjin eval` sample rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from dianjin import demo_summary
from dianjin.files import write_jsonl

N = 40


def write_run(root: Path, name: str, outcomes: dict[str, list[tuple[bool, bool]]]) -> None:
    """outcomes: task -> one (format_ok, correct) per question (item index = position)."""
    for task, rows in outcomes.items():
        write_jsonl(
            root / name / "samples" / f"{task}.jsonl",
            [
                {"key": f"{task}-{i}|0", "item": str(i), "run": 0, "format_ok": f, "correct": c}
                for i, (f, c) in enumerate(rows)
            ],
        )


def rows(n_ok: int, n: int = N, correct_every: int = 0) -> list[tuple[bool, bool]]:
    return [(i < n_ok, bool(correct_every) and i % correct_every == 0 and i < n_ok) for i in range(n)]


CASES = [
    # a model that learns the format on every question: SFT helps far beyond noise; GRPO changes nothing
    pytest.param(
        {"eval_base": rows(0), "eval_sft": rows(N), "eval_grpo": rows(N)},
        {"SFT - base": "helps", "GRPO - SFT": "no change beyond noise"},
        id="format-learnt",
    ),
    # one question flips either way: within noise
    pytest.param(
        {"eval_base": rows(20), "eval_sft": rows(21), "eval_grpo": rows(20)},
        {"SFT - base": "no change beyond noise", "GRPO - SFT": "no change beyond noise"},
        id="noise",
    ),
    # GRPO loses the format on most questions: it hurts
    pytest.param(
        {"eval_base": rows(0), "eval_sft": rows(N), "eval_grpo": rows(5)},
        {"SFT - base": "helps", "GRPO - SFT": "hurts"},
        id="grpo-hurts",
    ),
]


@pytest.mark.parametrize("runs,verdicts", CASES)
def test_paired_steps_give_the_right_verdict(tmp_path: Path, runs: dict, verdicts: dict):
    for name, outcome in runs.items():
        write_run(tmp_path, name, {"fincalc": outcome})
    got = demo_summary.learning(tmp_path, n_boot=2000)
    assert {k: v["format_rate"]["verdict"] for k, v in got["steps"].items()} == verdicts
    for label, p in got["points"].items():
        lo, hi = p["format_rate"]["ci95"]
        assert p["format_rate"]["n"] == N and lo <= p["format_rate"]["value"] <= hi, label


def test_questions_are_pooled_over_tasks_and_paired_by_task_and_item(tmp_path: Path):
    # the same item id in two tasks is two questions; a question only one point answered is not paired
    write_run(tmp_path, "eval_base", {"cflue": rows(0, 10), "finqa": rows(0, 10)})
    write_run(tmp_path, "eval_sft", {"cflue": rows(10, 10, 2), "finqa": rows(10, 12, 2)})
    write_run(tmp_path, "eval_grpo", {"cflue": rows(10, 10, 2), "finqa": rows(10, 10, 2)})
    got = demo_summary.learning(tmp_path, n_boot=2000)
    assert got["points"]["before training"]["accuracy"]["n"] == 20
    sft = got["points"]["after SFT"]["format_rate"]
    assert sft["n"] == 22 and sft["value"] == pytest.approx(20 / 22)
    step = got["steps"]["SFT - base"]["accuracy"]
    assert step["n"] == 20 and step["diff"] == pytest.approx(0.5) and step["lo"] > 0


def test_several_samples_of_a_question_count_as_its_mean(tmp_path: Path):
    for name in ("eval_base", "eval_sft", "eval_grpo"):
        write_jsonl(
            tmp_path / name / "samples" / "fincalc.jsonl",
            [{"key": f"q|{k}", "item": "q", "run": k, "format_ok": k < 3, "correct": False} for k in range(4)],
        )
    got = demo_summary.learning(tmp_path, n_boot=100)
    assert got["points"]["after SFT"]["format_rate"] == {"value": 0.75, "n": 1, "ci95": [0.75, 0.75]}


def test_samples_of_several_runs_of_a_model_pool_one_by_one(tmp_path: Path):
    # run a: two samples of q (1 formatted); run b: one sample (formatted); q2 only in run a
    write_jsonl(
        tmp_path / "a" / "samples" / "fincalc.jsonl",
        [{"key": f"q|{k}", "item": "q", "run": k, "format_ok": k == 0, "correct": False} for k in range(2)]
        + [{"key": "q2|0", "item": "q2", "run": 0, "format_ok": True, "correct": True}],
    )
    write_jsonl(
        tmp_path / "b" / "samples" / "fincalc.jsonl",
        [{"key": "q|0", "item": "q", "run": 0, "format_ok": True, "correct": True}],
    )
    got = demo_summary.item_scores(tmp_path / "a", tmp_path / "b")
    assert got["format_rate"] == {"fincalc/q": 2 / 3, "fincalc/q2": 1.0}  # each sample once, not each run's mean
    assert got["accuracy"] == {"fincalc/q": 1 / 3, "fincalc/q2": 1.0}


def test_guessing_floor_pools_each_task_chance_by_its_questions():
    # 30 CFLUE questions at 1/4 and 10 open FinQA ones at 0: one question, one vote -> 7.5 / 40;
    # a task without a chance (an older eval summary) is left out, not counted as 0
    evaluation = {
        "tasks": {
            "cflue": {"n": 30, "accuracy": 0.3, "chance": 0.25},
            "finqa": {"n": 10, "accuracy": 0.1, "chance": 0.0},
            "ccc": {"n": 5, "accuracy": 0.4},
        }
    }
    floor = demo_summary.guessing_floor(evaluation)
    assert floor == {"value": pytest.approx(7.5 / 40), "n": 40, "tasks": {"cflue": 0.25, "finqa": 0.0}}
    assert demo_summary.guessing_floor({"tasks": {}})["value"] is None
