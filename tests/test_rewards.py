"""TRL rewards, the verl entry point and `dianjin score`, all on top of the task scorers."""

import json
import subprocess
import sys

import pytest

from dianjin import verl_reward
from dianjin.answer import render
from dianjin.rewards import accuracy_reward, dianjin_reward, format_reward, get_reward
from dianjin.score import main as score_main

GOOD = render("推理过程", "答案如下", boxed="AC")
NO_THINK = "<answer>\\boxed{AC}</answer>"
WRONG = render("推理过程", "答案如下", boxed="B")
ORDER = "<answer>\\boxed{AC}</answer><think>x</think>"


@pytest.mark.parametrize(
    "completion, gated, fmt, acc",
    [
        (GOOD, 1.0, 1.0, 1.0),  # right format, right letters
        (NO_THINK, 0.0, 0.0, 1.0),  # right letters but no think block: gated to 0, accuracy still 1
        (WRONG, 0.0, 1.0, 0.0),  # right format, wrong letters
        (ORDER, 0.0, 0.0, 1.0),  # answer before think fails the order check upstream lacks
        ([{"role": "assistant", "content": GOOD}], 1.0, 1.0, 1.0),  # conversational completion
        ([{"role": "assistant", "content": "<answer>\\boxed{AC}</answer>", "reasoning_content": "想"}], 1.0, 1.0, 1.0),  # split reasoning
    ],
)
def test_trl_rewards_cflue(completion, gated, fmt, acc):
    cols = {"task": ["cflue"], "gold": ["AC"], "choices": [{"A": "甲", "B": "乙", "C": "丙", "D": "丁"}]}
    assert dianjin_reward([completion], **cols) == [gated]
    assert format_reward([completion], **cols) == [fmt]
    assert accuracy_reward([completion], **cols) == [acc]


def test_trl_reward_uses_data_source_and_logs():
    extra, metrics = {}, {}
    out = dianjin_reward(
        [render("r", "", boxed="0.5"), render("r", "", boxed="2")],
        data_source=["math500", "math500"], ground_truth=["\\frac{1}{2}", "3"],
        log_extra=lambda k, v: extra.setdefault(k, v), log_metric=lambda k, v: metrics.setdefault(k, v),
    )
    assert out == [1.0, 0.0]
    assert extra["pred"][0] is not None and extra["format_ok"] == [True, True]
    assert metrics["accuracy"] == 0.5 and metrics["reward/math500"] == 0.5


def test_trl_reward_missing_column_is_clear():
    with pytest.raises(KeyError, match="missing dataset column 'gold'"):
        dianjin_reward([GOOD], task=["cflue"])


def test_get_reward_registry():
    assert get_reward("dianjin") is dianjin_reward
    with pytest.raises(KeyError, match="known: dianjin, format, accuracy"):
        get_reward("nope")


@pytest.mark.parametrize(
    "data_source, solution, gt, score",
    [
        ("cflue", GOOD, "AC", 1.0),  # canonical task name
        ("cflue_mcq", GOOD, "CA", 1.0),  # alias; gold letters in any order
        ("dianjin/cflue", WRONG, "AC", 0.0),  # wrong answer
        ("finqa", render("r", "", boxed="7.88%"), 0.07879, 1.0),  # percent vs fraction ambiguity
        ("math500", render("r", "", boxed="\\dfrac{1}{2}"), "\\frac12", 1.0),  # math-verify equivalence
    ],
)
def test_verl_compute_score(data_source, solution, gt, score):
    out = verl_reward.compute_score(data_source, solution, gt, extra_info={"index": 0})
    assert out["score"] == score and set(out) == {"score", "acc", "pred"}


def test_verl_entry_point_imports_without_torch():
    code = ("import sys, importlib.util; spec = importlib.util.spec_from_file_location('r', sys.argv[1]);"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
            "print(m.compute_score('cflue', '<think>x</think><answer>\\\\boxed{B}</answer>', 'B')['score']);"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, verl_reward.__file__], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1.0", "False", "False"]  # loaded by path as verl does, no torch imported


def test_score_cli(tmp_path, capsys):
    lines = [
        {"id": "a", "task": "cflue", "gold": "AC", "response": GOOD, "choices": "{'A': '甲', 'B': '乙', 'C': '丙'}"},
        {"id": "b", "task": "cflue", "gold": "AC", "response": NO_THINK},
        "this is not json",
        {"id": "c", "task": "finqa", "response": GOOD},
        {"id": "d", "task": "finqa", "gold": 0.5, "response": "<think>x</think><answer>\\boxed{50%}</answer>"},
        {"id": "e", "task": "nosuchtask", "gold": "x", "response": "y"},
    ]
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    assert score_main([str(p), "--mode", "reward"]) == 1  # bad lines make the exit status 1
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    err = capsys.readouterr().err
    assert [o.get("id") for o in out] == ["a", "b", None, "c", "d", "e"]  # same order, one line per input
    assert out[0]["score"] == 1.0 and out[0]["correct"] is True
    assert out[1]["score"] == 0.0 and out[1]["correct"] is True and out[1]["format_ok"] is False
    assert "in.jsonl:3" in out[2]["error"]
    assert "in.jsonl:4: field 'gold'" in out[3]["error"]
    assert out[4]["score"] == 1.0
    assert "field 'task'" in out[5]["error"]
    del err


def test_score_cli_eval_mode_summary(tmp_path, capsys):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"task": "gpqa", "gold": "C", "response": "Reasoning... Answer: C"}) + "\n")
    assert score_main([str(p)]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)
    assert row["correct"] is True and row["format_ok"] is False and row["score"] == 1.0  # lenient eval ignores format
    assert "gpqa" in captured.err and "1.0000" in captured.err


def test_verl_compute_score_decodes_exported_extra_info():
    # as written by dianjin.data.export: non-string task fields JSON-encoded and listed in json_fields
    extra = {"index": 3, "split": "train", "choices": json.dumps({"A": "1 eV", "B": "2 eV", "C": "3 eV", "D": "4 eV"}),
             "json_fields": ["choices"], "lang": None}
    out = verl_reward.compute_score("gpqa", render("r", "", boxed="3 eV"), "C", extra_info=extra)
    assert out == {"score": 1.0, "acc": True, "pred": "C"}  # the option's text maps to its letter
