"""Export round-trips: TRL JSONL through `datasets`, LLaMA-Factory alpaca + dataset_info, verl parquet
scored through `dianjin.verl_reward.compute_score`, the dataset card, and `load_alpaca`."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from exportkit import rl_row
from taskdata import CFLUE, CFLUE_OE, FINQA, reference_reply

from dianjin import answer as fmt
from dianjin.data import export
from dianjin.data.export import ExportConfig
from dianjin.data.synthetic.fincalc import generate
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.verl_reward import compute_score, compute_score_float

ASSETS = Path(__file__).parent / "assets"
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

WRONG_BOX = {"cflue": "D", "fincalc": "123456.78", "finqa": "-1"}


def wrong(ex: dict) -> str:
    if ex["task"] == "ccc":
        return fmt.render(
            "逐步推理。", "最终结果为：客服未违规。" if ex["gold"] == "violation" else "最终结果为：客服违规。"
        )
    box = (
        "A"
        if ex.get("form") == "mcq" and ex["gold"] != "A"
        else ("B" if ex.get("form") == "mcq" else WRONG_BOX[ex["task"]])
    )
    return fmt.render("逐步推理。", "", box)


def sft_row(ex: dict, system: str | None = None) -> dict:
    msgs = ([{"role": "system", "content": system}] if system else []) + get_task(ex["task"]).messages(ex)
    target = reference_reply(ex)
    parsed = fmt.parse_strict(target, require_boxed=False)
    return {
        "id": ex["id"],
        "task": ex["task"],
        "messages": msgs + [{"role": "assistant", "content": target}],
        "reasoning": parsed.reasoning,
        "answer": parsed.answer,
        "attempts": 1,
        "teacher": "reference",
    }


@pytest.fixture(scope="module")
def data():
    open_fc = generate(2, 3, forms=("open",), kinds=("pct_change",))  # zh, en
    mcq_fc = generate(2, 4, forms=("mcq",), kinds=("gross_margin",))
    ccc = get_task("ccc").load(str(ASSETS / "ccc_sample.jsonl"))[:2]
    sft_examples = [CFLUE[0], CFLUE[1], open_fc[0], FINQA, ccc[0]]
    rl_examples = [*CFLUE, open_fc[1], *mcq_fc, FINQA, *ccc, CFLUE_OE]
    return {
        "sft": [sft_row(e, QWEN_SYSTEM if i == 0 else None) for i, e in enumerate(sft_examples)],
        "rl": [rl_row(e) for e in rl_examples],
        "rl_examples": {e["id"]: e for e in rl_examples},
    }


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    paths = export.run(
        out,
        data["sft"],
        data["rl"],
        ExportConfig(val_fraction=0.3, seed=7, teacher="deepseek-reasoner", judge="gpt-4o"),
    )
    return out, paths


def test_all_formats_written_atomically(exported):
    out, paths = exported
    assert {"trl", "llamafactory", "verl_train", "verl_val", "verl_skipped", "card"} <= set(paths)
    assert all(p.exists() for p in paths.values())
    assert not list(out.rglob("*.tmp"))  # no temporary file left behind


def test_trl_jsonl_loads_with_datasets(exported, data, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    _, paths = exported
    ds = load_dataset("json", data_files=str(paths["trl"]), split="train", cache_dir=str(tmp_path / "hf"))
    assert set(ds.column_names) == {"messages", "task", "id"}
    assert ds["id"] == [r["id"] for r in data["sft"]]
    assert [m["role"] for m in ds[0]["messages"]] == ["system", "user", "assistant"]  # the row's own system kept
    assert [m["role"] for m in ds[1]["messages"]] == ["user", "assistant"]
    assert ds[3]["messages"][-1]["content"] == data["sft"][3]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "system, roles, first",
    [
        (None, ["system", "user", "assistant"], QWEN_SYSTEM),  # None: the row's own system message stays
        ("", ["user", "assistant"], None),  # "": system messages removed
        ("你是金融专家。", ["system", "user", "assistant"], "你是金融专家。"),  # text: replaces it
    ],
)
def test_system_prompt_option(data, tmp_path, system, roles, first):
    paths = export.run(tmp_path, data["sft"][:1], [], ExportConfig(formats=["trl", "llamafactory"], system=system))
    [row] = [json.loads(line) for line in paths["trl"].read_text(encoding="utf-8").splitlines()]
    assert [m["role"] for m in row["messages"]] == roles
    assert (row["messages"][0]["content"] if first else None) == first
    [rec] = json.loads(paths["llamafactory/cflue_mcq_r1"].read_text(encoding="utf-8"))
    assert rec.get("system") == first


@pytest.mark.parametrize(
    "name, file_name, task, rows",
    [
        ("cflue_mcq_r1", "CFLUE_MCQ_SFT.json", "cflue", 2),  # upstream's names
        ("fin_qa_r1", "Fin-qa_SFT.json", "finqa", 1),
        ("ccc_r1", "ccc_r1_sft.json", "ccc", 1),
        ("fincalc_r1", "fincalc_r1_sft.json", "fincalc", 1),  # a task upstream does not have: <task>_r1
    ],
)
def test_llamafactory_dataset_info(exported, data, name, file_name, task, rows):
    _, paths = exported
    info = json.loads(paths["llamafactory"].read_text(encoding="utf-8"))
    entry = info[name]
    assert entry["file_name"] == file_name and entry["formatting"] == "alpaca"
    records = json.loads((paths["llamafactory"].parent / file_name).read_text(encoding="utf-8"))
    assert len(records) == rows
    for rec in records:
        for role, column in entry["columns"].items():
            assert isinstance(rec[column], str), (role, column)  # every mapped column exists in every record
        assert entry["columns"]["prompt"] == "instruction" and entry["columns"]["response"] == "output"
    originals = [r for r in data["sft"] if r["task"] == task]
    assert [r["output"] for r in records] == [r["messages"][-1]["content"] for r in originals]
    assert [r["instruction"] for r in records] == [
        next(m["content"] for m in r["messages"] if m["role"] == "user") for r in originals
    ]


def _verl_rows(paths) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for key in ("verl_train", "verl_val") for row in pq.read_table(paths[key]).to_pylist()]


def test_verl_rows_score_through_compute_score(exported, data):
    _, paths = exported
    rows = _verl_rows(paths)
    assert len(rows) == len(data["rl"]) - 1  # the CFLUE_OE item (needs a judge) is left out
    for row in rows:
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        assert row["ability"] == "finance" and row["reward_model"]["style"] == "rule"
        ex = data["rl_examples"][row["extra_info"]["id"]]
        assert row["prompt"] == get_task(ex["task"]).messages(ex)
        gt, info = row["reward_model"]["ground_truth"], row["extra_info"]
        assert compute_score(row["data_source"], reference_reply(ex), gt, info)["score"] == 1.0, ex["id"]
        assert compute_score(row["data_source"], wrong(ex), gt, info)["score"] == 0.0, ex["id"]


def test_verl_rows_as_verl_03_reads_them(exported, data):
    # verl 0.3 reads parquet with pandas (list columns as numpy arrays, json_fields among them) and puts the
    # reward into a float tensor: compute_score_float on each row as read gives floats, 1 right and 0 wrong
    import pandas as pd

    _, paths = exported
    frame = pd.concat([pd.read_parquet(paths[k]) for k in ("verl_train", "verl_val")])
    rows = [frame.iloc[i].to_dict() for i in range(len(frame))]
    assert any(len(r["extra_info"]["json_fields"]) > 1 for r in rows)  # an ndarray of two: its truth value raises
    for row in rows:
        ex = data["rl_examples"][row["extra_info"]["id"]]
        gt, info = row["reward_model"]["ground_truth"], row["extra_info"]
        for response, score in ((reference_reply(ex), 1.0), (wrong(ex), 0.0)):
            out = compute_score_float(
                data_source=row["data_source"], solution_str=response, ground_truth=gt, extra_info=info
            )
            assert type(out) is float and out == score, ex["id"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "key",
    [
        "verl_train",  # parquet: mkstemp's 0600 replaced by what open() gives
        "verl_val",
        "verl_skipped",  # JSONL through dianjin.files
        "card",  # text through dianjin.files
    ],
)
def test_outputs_share_one_mode(exported, key):
    _, paths = exported
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(paths[key]) == 0o666 & ~umask


@pytest.mark.parametrize(
    "style, name",
    [
        ("upstream", "compute_score_float"),  # verl 0.3.x: a float
        ("current", "compute_score"),  # verl >= 0.4.1: the dict
    ],
)
def test_verl_style_names_the_entry_point(data, tmp_path, style, name):
    paths = export.run(tmp_path, [], data["rl"], ExportConfig(formats=["verl", "card"], verl_style=style))
    assert f"custom_reward_function.name={name}`" in paths["card"].read_text(encoding="utf-8")
    assert "math-verify[antlr4_9_3]" in paths["card"].read_text(encoding="utf-8")  # Hydra's antlr in verl's environment
    assert export.reward_entry_point(style).__name__ == name


def test_unknown_verl_style(data, tmp_path):
    with pytest.raises(ValueError, match="unknown verl_style 'v0.2'"):
        export.run(tmp_path, [], data["rl"], ExportConfig(formats=["verl"], verl_style="v0.2"))


def test_verl_extra_info_round_trip(exported, data):
    _, paths = exported
    for row in _verl_rows(paths):
        ex = data["rl_examples"][row["extra_info"]["id"]]
        decoded = export.decode_extra_info(row["extra_info"])
        for key, value in ex.items():
            if key not in ("id", "task", "gold") and value is not None:
                assert decoded[key] == value, key  # dicts, lists and numbers come back from JSON
        if ex.get("form") == "mcq":  # an option-text answer needs choices as a dict: decoded extra_info scores it
            answer = fmt.render("逐步推理。", "", ex["choices"][ex["gold"]])
            gt = row["reward_model"]["ground_truth"]
            assert compute_score(row["data_source"], answer, gt, decoded)["score"] == 1.0
    by_id = {r["extra_info"]["id"]: r for r in _verl_rows(paths)}
    assert by_id["ACME/2020/page_1.pdf-1"]["reward_model"]["ground_truth"] == "94.0"  # a float gold as JSON text
    assert by_id["cflue-t2"]["extra_info"]["json_fields"] == ["choices"]


def test_verl_split(exported, data, tmp_path):
    _, paths = exported
    import pyarrow.parquet as pq

    val = pq.read_table(paths["verl_val"]).to_pylist()
    train = pq.read_table(paths["verl_train"]).to_pylist()
    for split, rows in (("train", train), ("val", val)):
        assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))
        assert {r["extra_info"]["split"] for r in rows} == {split}
    # every task with two or more rows is represented in val; 30% of 3 CFLUE rows rounds to 1
    assert sorted(r["data_source"] for r in val) == ["ccc", "cflue", "fincalc"]
    again = export.run(tmp_path, [], data["rl"], ExportConfig(formats=["verl"], val_fraction=0.3, seed=7))
    assert [r["extra_info"]["id"] for r in pq.read_table(again["verl_val"]).to_pylist()] == [
        r["extra_info"]["id"] for r in val
    ]
    skipped = [json.loads(line) for line in paths["verl_skipped"].read_text(encoding="utf-8").splitlines()]
    assert [(s["id"], s["task"]) for s in skipped] == [("oe-1", "cflue_oe")] and "no judge" in skipped[0]["reason"]


def test_card(exported):
    _, paths = exported
    card = paths["card"].read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: cc-by-nc-sa-4.0\n")  # CFLUE rows make the whole export NC-SA
    assert "CC BY-NC-SA 4.0" in card and "deepseek-reasoner" in card and "gpt-4o" in card
    assert "| CFLUE_MCQ | cflue | 2 | cflue_mcq_r1 | 3 | 2 | 1 | 0 |" in card  # rows per subset and per export
    assert "| **total** |  | 5 |  | 10 | 6 | 3 | 1 |" in card
    assert "dataset: cflue_mcq_r1,fincalc_r1,fin_qa_r1,ccc_r1" in card


def test_card_without_cflue_is_mit(tmp_path):
    row = sft_row(generate(1, 0)[0])
    paths = export.run(tmp_path, [row], [], ExportConfig(formats=["card"]))
    assert paths["card"].read_text(encoding="utf-8").startswith("---\nlicense: mit\n")


@pytest.mark.parametrize(
    "formats, keys",
    [
        (["trl"], {"trl"}),  # only what was asked
        (["card"], {"card"}),
        ([], set()),
    ],
)
def test_formats_selection(data, tmp_path, formats, keys):
    assert set(export.run(tmp_path, data["sft"], data["rl"], ExportConfig(formats=formats))) == keys


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export.run(tmp_path, [], [], ExportConfig(formats=["parquet2"]))


def test_missing_pyarrow_is_a_clear_error(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(RuntimeError, match="pyarrow"):
        export.run(tmp_path, [], data["rl"], ExportConfig(formats=["verl"]))


@pytest.mark.parametrize(
    "pool, row, field",
    [
        (
            "sft",
            {
                "id": "x",
                "task": "cflue",
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "q2"},
                    {"role": "assistant", "content": "a2"},
                ],
            },
            "messages",
        ),  # multi-turn: alpaca has no place for it
        ("sft", {"id": "x", "task": "nope", "messages": [{"role": "user", "content": "q"}]}, "task"),  # unknown task
        ("rl", {"id": "x", "task": "cflue", "prompt": [{"role": "user", "content": "q"}]}, "gold"),  # no gold
        ("rl", {"id": "x", "task": "cflue", "prompt": "q", "gold": "A"}, "prompt"),  # prompt not a chat list
    ],
)
def test_bad_rows(tmp_path, pool, row, field):
    sft, rl = ([row], []) if pool == "sft" else ([], [row])
    with pytest.raises(DataError) as e:
        export.run(tmp_path, sft, rl, ExportConfig(formats=["llamafactory"] if pool == "sft" else ["verl"]))
    assert (e.value.path, e.value.line, e.value.field) == (pool, 0, field)


# --- load_alpaca ---------------------------------------------------------------------------------------
def test_load_alpaca_round_trip(exported, data):
    _, paths = exported
    rows = export.load_alpaca(paths["llamafactory/cflue_mcq_r1"])
    originals = [r for r in data["sft"] if r["task"] == "cflue"]
    assert [r["messages"] for r in rows] == [r["messages"] for r in originals]
    assert [(r["reasoning"], r["answer"]) for r in rows] == [(r["reasoning"], r["answer"]) for r in originals]
    assert {r["task"] for r in rows} == {"cflue"} and {r["teacher"] for r in rows} == {"released"}
    assert all(r["id"].startswith("cflue-r1-") for r in rows)


GOOD = {
    "instruction": "题目：下列属于货币市场工具的是？",
    "input": "",
    "output": "<think>\n国库券期限短。\n</think>\n<answer>\n\\boxed{B}\n</answer>",
}


@pytest.mark.parametrize(
    "file_name, task",
    [
        ("cflue_mcq.json", "cflue"),  # the released HF name
        ("CFLUE_Open_SFT.json", "cflue_oe"),  # upstream's dataset_info name
        ("fin_qa.jsonl", "finqa"),  # JSONL works too
        ("Fin-qa_SFT.json", "finqa"),
    ],
)
def test_load_alpaca_task_from_file_name(tmp_path, file_name, task):
    path = tmp_path / file_name
    text = (
        json.dumps(GOOD, ensure_ascii=False) + "\n"
        if file_name.endswith(".jsonl")
        else json.dumps([GOOD, {**GOOD, "id": 7}])
    )
    path.write_text(text, encoding="utf-8")
    rows = export.load_alpaca(path)
    assert {r["task"] for r in rows} == {task}
    assert rows[0]["messages"] == [
        {"role": "user", "content": GOOD["instruction"]},
        {"role": "assistant", "content": GOOD["output"]},
    ]
    assert rows[0]["reasoning"] == "国库券期限短。" and rows[0]["answer"] == "\\boxed{B}"
    if len(rows) > 1:
        assert rows[1]["id"] == "7"  # a record's own id is kept


@pytest.mark.parametrize(
    "record, where, field, problem",
    [
        ({**GOOD, "output": ""}, 1, "output", "non-empty"),  # empty output
        ({"output": GOOD["output"]}, 1, "instruction", "got nothing"),  # no instruction
        (
            {**GOOD, "output": "<think>a</think><think>b</think><answer>B</answer>"},
            1,
            "output",
            "one think block",
        ),  # two thinks
        ({**GOOD, "output": "<think>a</think>B"}, 1, "output", "one answer block"),  # no answer block
        ({**GOOD, "output": "<answer>B</answer><think>a</think>"}, 1, "output", "out of order"),  # answer first
        ({**GOOD, "output": "<think> </think><answer>B</answer>"}, 1, "output", "empty"),  # empty reasoning
        ({**GOOD, "history": [["q", "a"]]}, 1, "history", "multi-turn"),  # multi-turn
        ({**GOOD, "system": 3}, 1, "system", "expected a string"),  # wrong type
        ([1, 2], 1, None, "JSON object"),  # not an object
        ({**GOOD, "id": "a"}, 1, "id", "duplicate"),  # the id of record 0 again
    ],
)
def test_load_alpaca_errors(tmp_path, record, where, field, problem):
    path = tmp_path / "cflue_mcq.json"
    path.write_text(json.dumps([{**GOOD, "id": "a"}, record], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError) as e:
        export.load_alpaca(path)
    assert (Path(e.value.path), e.value.line, e.value.field) == (path, where, field)
    assert problem in str(e.value)


def test_load_alpaca_jsonl_line_numbers_and_unknown_names(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "output": "no tags"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        export.load_alpaca(path)
    assert e.value.field == "task"  # an unknown file name needs task=
    with pytest.raises(DataError) as e:
        export.load_alpaca(path, task="cflue")
    assert (e.value.line, e.value.field) == (3, "output")  # JSONL errors name the line
