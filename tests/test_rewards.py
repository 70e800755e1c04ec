"""TRL rewards, the verl entry point and `dianjin score`, all on top of the task scorers."""

import json
import subprocess
import sys

import numpy as np
import pytest
from exportkit import rl_row, write_jsonl

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
        (
            [{"role": "assistant", "content": "<answer>\\boxed{AC}</answer>", "reasoning_content": "想"}],
            1.0,
            1.0,
            1.0,
        ),  # split reasoning
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
        data_source=["math500", "math500"],
        ground_truth=["\\frac{1}{2}", "3"],
        log_extra=lambda k, v: extra.setdefault(k, v),
        log_metric=lambda k, v: metrics.setdefault(k, v),
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
    code = (
        "import sys, importlib.util; spec = importlib.util.spec_from_file_location('r', sys.argv[1]);"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(m.compute_score('cflue', '<think>x</think><answer>\\\\boxed{B}</answer>', 'B')['score']);"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
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
    extra = {
        "index": 3,
        "split": "train",
        "choices": json.dumps({"A": "1 eV", "B": "2 eV", "C": "3 eV", "D": "4 eV"}),
        "json_fields": ["choices"],
        "lang": None,
    }
    out = verl_reward.compute_score("gpqa", render("r", "", boxed="3 eV"), "C", extra_info=extra)
    assert out == {"score": 1.0, "acc": True, "pred": "C"}  # the option's text maps to its letter


# --- verl: the float entry point and extra_info as verl's readers give it ----------------------------------
@pytest.mark.parametrize(
    "data_source, solution, gt, score",
    [
        ("cflue", GOOD, "AC", 1.0),  # right: 1.0
        ("cflue", WRONG, "AC", 0.0),  # wrong: 0.0
        ("math500", render("r", "", boxed="\\dfrac{1}{2}"), "\\frac12", 1.0),  # math-verify behind the float too
    ],
)
def test_verl_compute_score_float(data_source, solution, gt, score):
    # verl 0.3 writes the value into a float tensor: a float, the same value as compute_score's "score"
    out = verl_reward.compute_score_float(
        data_source=data_source, solution_str=solution, ground_truth=gt, extra_info=None
    )
    assert type(out) is float and out == score == verl_reward.compute_score(data_source, solution, gt)["score"]


CHOICES = {"A": "1 eV", "B": "2 eV", "C": "3 eV", "D": "4 eV"}


@pytest.mark.parametrize(
    "extra_info, expected",
    [
        (
            {"choices": json.dumps(CHOICES), "json_fields": ["choices"]},
            {"choices": CHOICES, "json_fields": ["choices"]},
        ),  # a list (datasets)
        (
            {"choices": json.dumps(CHOICES), "json_fields": ("choices",)},
            {"choices": CHOICES, "json_fields": ["choices"]},
        ),  # a tuple
        (
            {
                "choices": json.dumps(CHOICES),
                "params": '{"a": 1}',
                "json_fields": np.array(["choices", "params"], dtype=object),
            },
            {"choices": CHOICES, "params": {"a": 1}, "json_fields": ["choices", "params"]},
        ),  # verl 0.3's pandas: an ndarray of 2
        (
            {"choices": json.dumps(CHOICES), "json_fields": np.array([], dtype=object)},
            {"choices": json.dumps(CHOICES), "json_fields": []},
        ),  # an empty ndarray (its truth value is an error)
        (
            {"index": np.int64(3), "split": "train", "lang": None},
            {"index": 3, "split": "train"},
        ),  # numpy scalar; null dropped
        (
            {"table": np.array([np.array(["", "2020"]), np.array(["revenue", "5"])], dtype=object)},
            {"table": [["", "2020"], ["revenue", "5"]]},
        ),  # nested arrays become nested lists
        (None, {}),  # no extra_info at all
    ],
)
def test_decode_extra_info_shapes(extra_info, expected):
    out = verl_reward.decode_extra_info(extra_info)
    assert out == expected
    assert json.loads(json.dumps(out)) == out  # plain Python all the way down


@pytest.mark.parametrize(
    "style, version, problem",
    [
        ("upstream", "0.3.0.post1", None),  # upstream's verl
        ("upstream", "0.4.0", None),  # 0.4.0 still has checkpoint.contents (and takes a float)
        ("upstream", "0.4.1", "--verl-style current"),  # 0.4.1 renamed it to save_contents
        ("current", "0.4.1", None),  # the first release with save_contents
        ("current", "0.9.1", None),  # a current release
        ("current", "0.10.0rc1", None),  # two-digit minor, pre-release
        ("current", "0.4.0", "--verl-style upstream"),  # no save_contents yet
        ("current", "0.3.0.post1", "--verl-style upstream"),  # no save_contents, and a dict score fails
    ],
)
def test_style_fits_verl_version(style, version, problem):
    why = verl_reward.style_problem(style, version)
    assert (why is None) if problem is None else (problem in why)


# --- TRL: raw rl.jsonl rows (task fields under `extra`) give dianjin grpo's verdicts ------------------------
GPQA_EXTRA = {"choices": {**CHOICES, "E": None}, "lang": None}  # E: None is how `datasets` fills a union struct
# Other options A-D (a letter outside an example's choices names no option, so all four are kept).
OTHER = dict(zip("ABCD", ("w", "x", "y", "z")))


@pytest.mark.parametrize(
    "columns",
    [
        {"task": ["gpqa"], "gold": ["C"], "choices": [CHOICES]},  # flat columns
        {
            "task": ["gpqa"],
            "gold": ["C"],
            "extra": [{"choices": CHOICES}],
            "id": ["g1"],
            "attempts": [3],
        },  # rl.jsonl row
        {"task": ["gpqa"], "gold": ["C"], "extra": [GPQA_EXTRA]},  # rl.jsonl through `datasets`: nulls dropped
        {
            "task": ["gpqa"],
            "gold": ["C"],
            "choices": [OTHER],
            "extra": [{"choices": CHOICES}],
        },  # top level wins, as grpo
        {
            "data_source": ["gpqa"],
            "reward_model": [{"style": "rule", "ground_truth": "C"}],
            "extra_info": [{"choices": json.dumps(CHOICES), "json_fields": ["choices"], "index": 0}],
        },  # verl's parquet shape
    ],
)
def test_trl_rewards_read_nested_task_fields(columns):
    # an option-text answer is only right when the scorer sees `choices`
    completions = [render("r", "", boxed="3 eV"), render("r", "", boxed="2 eV"), render("r", "", boxed="C")]
    expected = [0.0, 0.0, 1.0] if columns.get("choices") == [OTHER] else [1.0, 0.0, 1.0]
    cols = {k: v * 3 for k, v in columns.items()}
    assert dianjin_reward(completions, **cols) == expected
    assert accuracy_reward(completions, **cols) == expected


@pytest.mark.parametrize(
    "loader",
    [
        "load_dataset",  # datasets.load_dataset("json"): `extra` as a JSON feature, each row's own keys
        "from_list",  # Dataset.from_list(rows): `extra` as a union struct, missing keys None (choices E: None)
    ],
)
def test_trl_raw_rl_jsonl_matches_dianjin_grpo(tmp_path, loader):
    """rl.jsonl rows in a `datasets` Dataset, passed to the reward column-wise as TRL does, give the verdicts
    of `dianjin grpo` (which flattens `extra` into each row's example_json), completion by completion."""
    pytest.importorskip("datasets")
    pytest.importorskip("transformers")
    from datasets import Dataset, load_dataset

    from dianjin.data.synthetic import fincalc
    from dianjin.tasks import get_task
    from dianjin.train.common import load_prompt_items
    from dianjin.train.grpo import RewardAdapter, rl_dataset

    cflue = [
        {
            "id": f"c{n}",
            "task": "cflue",
            "question": "下列属于货币市场工具的是（ ）。",
            "qtype": "单项选择题",
            "choices": dict(zip("ABCDE", ["股票", "国库券", "公司债券", "可转换债券", "股指期货"][:n])),
            "gold": "B",
        }
        for n in (4, 5)
    ]  # four and five options
    examples = [*cflue, *fincalc.generate(2, 4, forms=("mcq",)), *fincalc.generate(2, 3, forms=("open",))]
    rows = [rl_row(ex) for ex in examples]
    path = write_jsonl(tmp_path / "rl.jsonl", rows)

    def answers(ex: dict) -> list[str]:  # the letter, the option's text (needs choices), the reference, a wrong number
        text = ex.get("choices", {}).get(ex["gold"], "")
        ref = str(get_task(ex["task"]).reference(ex))
        return [render("r", "", boxed=b) for b in (ex["gold"], text, ref, "-98765.4")]

    k = len(answers(examples[0]))
    completions = [a for ex in examples for a in answers(ex)]
    ours = rl_dataset(load_prompt_items([str(path)], need_gold=True))  # dianjin grpo's dataset and reward
    grpo = RewardAdapter("dianjin")(completions, example_json=[s for s in ours["example_json"] for _ in range(k)])
    if loader == "load_dataset":
        ds = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    else:
        ds = Dataset.from_list(rows)
        assert ds[0]["extra"]["choices"]["E"] is None  # the union struct: without dropping it, 国库券 would score 0
    columns = {c: [v for v in ds[c] for _ in range(k)] for c in ds.column_names if c != "prompt"}
    trl = dianjin_reward(completions, **columns)
    assert trl == grpo
    assert trl[:k] == [
        1.0,
        1.0,
        1.0,
        0.0,
    ]  # the four-option CFLUE row: letter, option text, reference right; a number wrong
