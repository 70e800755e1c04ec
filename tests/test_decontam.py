"""Decontamination: planted overlaps in Chinese and English are found and dropped, unrelated text is kept."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from dianjin.data import decontam
from dianjin.errors import DataError
from dianjin.tasks import get_task

ASSETS = Path(__file__).parent / "assets"

EVAL = [
    {
        "id": "zh-1",
        "task": "cflue",
        "question": "某开放式基金的申购费率为百分之一，投资者以一万元申购，按外扣法计算的申购费用最接近多少元",
        "choices": {"A": "九十九元", "B": "一百元", "C": "一百零一元", "D": "九十一元"},
    },
    {
        "id": "en-1",
        "task": "finqa",
        "question": "what was the percentage change in net revenue of the utility segment from 2015 to 2016",
        "context": "Net revenue of the utility segment rose on higher retail electricity prices and weather.",
    },
    {"id": "short-1", "task": "cflue", "question": "债券是什么"},
]


def sft(ident: str, user: str, task: str = "cflue") -> dict:
    return {
        "id": ident,
        "task": task,
        "messages": [
            {"role": "system", "content": "你是金融专家。"},
            {"role": "user", "content": user},
            {"role": "assistant", "content": "<think>x</think><answer>y</answer>"},
        ],
    }


@pytest.mark.parametrize(
    "user, dropped, eval_id",
    [
        (
            "请回答：某开放式基金的申购费率为百分之一，投资者以一万元申购，按外扣法计算的申购费用最接近多少元？\nA. 九十九元\nB. 一百元\nC. 一百零一元\nD. 九十一元",
            True,
            "zh-1",
        ),  # Chinese question and options pasted into a prompt: characters, punctuation ignored
        (
            "某开放式基金申购费率为百分之一，投资者以一万元申购，按外扣法计算的申购费用最接近多少元？A 九十九元 B 一百元 C 一百零一元 D 九十一元",
            True,
            "zh-1",
        ),  # lightly edited stem ("的" dropped): most 8-grams still shared
        (
            (
                "Context: ... Question: What was the percentage change in net revenue of the utility segment from 2015 to 2016? "
                "Net revenue of the utility segment rose on higher retail electricity prices and weather."
            ),
            True,
            "en-1",
        ),  # English, case and punctuation ignored
        ("下列说法正确的是？某开放式基金的申购费率", False, None),  # one stock phrase shared: below the coverage bar
        (
            "What was the percentage change in net revenue of Acme in 2020?",
            False,
            None,
        ),  # a FinQA-style template, different item
        ("今天天气很好，我们去公园散步吧。", False, None),  # unrelated Chinese
        (
            "债券是什么？请解释债券。",
            False,
            None,
        ),  # the eval item is shorter than n: cannot be matched (counted as short)
    ],
)
def test_planted_overlaps(user, dropped, eval_id):
    kept, _, report = decontam.run([sft("t-1", user)], [], [EVAL])
    assert (kept == []) is dropped
    assert report["dropped"]["sft"] == int(dropped)
    if dropped:
        [entry] = report["overlaps"]
        assert entry["id"] == "t-1" and entry["pool"] == "sft"
        assert entry["matches"][0]["eval_id"] == eval_id and entry["matches"][0]["via"] == "ngram"
        assert entry["matches"][0]["coverage"] >= 0.5


def test_report_names_the_first_shared_ngram():
    row = sft("t-9", "请看：某开放式基金的申购费率为百分之一，投资者以一万元申购，按外扣法计算的申购费用最接近多少元")
    _, _, report = decontam.run([row], [], [EVAL], min_coverage=0.0)
    m = report["overlaps"][0]["matches"][0]
    assert m["ngram"] == "某开放式基金的申"  # eight characters, in text order, joined without spaces
    assert report["eval_sets"][0]["short_items"] == 1  # 债券是什么: 5 characters < 8


@pytest.mark.parametrize(
    "min_coverage, dropped",
    [
        (0.5, 0),  # default: one shared boilerplate sentence is not contamination
        (0.0, 1),  # open-r1's rule: any shared 8-gram drops the row
    ],
)
def test_min_coverage(min_coverage, dropped):
    evals = [
        {
            "id": "e",
            "question": "notes to the consolidated financial statements of the company list every "
            "segment and the revenue of each segment in the fiscal year ending december",
        }
    ]
    row = sft(
        "t", "Union Pacific: notes to the consolidated financial statements of the company, freight revenue", "finqa"
    )
    _, _, report = decontam.run([row], [], [evals], min_coverage=min_coverage)
    assert report["dropped"]["sft"] == dropped


def test_boilerplate_ngrams_are_ignored():
    stock = "下列关于证券市场的说法中正确的是"
    evals = [{"id": f"e{i}", "question": stock + f"第{i}题"} for i in range(40)]
    row = sft("t", stock + "第九十九题")
    _, _, strict = decontam.run([row], [], [evals], min_coverage=0.0, max_eval_df=None)
    _, _, default = decontam.run([row], [], [evals], min_coverage=0.0)
    assert strict["dropped"]["sft"] == 1  # without the filter the stock phrase matches
    assert default["dropped"]["sft"] == 0 and default["eval_sets"][0]["boilerplate_ngrams"] > 0


@pytest.mark.parametrize(
    "row, dropped",
    [
        (
            {"id": "oe-7", "task": "cflue_oe", "source_id": "zh-1", "question": "开放式基金的申购费怎么算？"},
            True,
        ),  # converted from an eval MCQ
        (
            {"id": "oe-8", "task": "cflue_oe", "source_id": "other", "question": "开放式基金的申购费怎么算？"},
            False,
        ),  # other source
    ],
)
def test_source_id_provenance(row, dropped):
    _, _, report = decontam.run([row], [], [EVAL])
    assert report["dropped"]["sft"] == int(dropped)
    if dropped:
        assert report["overlaps"][0]["matches"][0] == {
            "eval_set": report["eval_sets"][0]["name"],
            "eval_id": "zh-1",
            "via": "source_id",
        }


def test_rl_rows_are_filtered_too():
    rl = [
        {
            "id": "r1",
            "task": "finqa",
            "prompt": [{"role": "user", "content": EVAL[1]["question"] + " " + EVAL[1]["context"]}],
            "gold": 1.0,
        },
        {
            "id": "r2",
            "task": "finqa",
            "prompt": [{"role": "user", "content": "How much cash did Acme hold at year end?"}],
            "gold": 2.0,
        },
    ]
    _, kept_rl, report = decontam.run([], rl, [EVAL])
    assert [r["id"] for r in kept_rl] == ["r2"] and report["dropped"] == {"sft": 0, "rl": 1}
    assert report["checked"] == {"sft": 0, "rl": 2}


@pytest.mark.parametrize(
    "text, toks",
    [
        (
            "营业收入 rose 12.5%。",
            ["营", "业", "收", "入", "rose", "12", "5"],
        ),  # CJK per character, words and digit runs
        ("ＡＢＣ Bond", ["abc", "bond"]),  # NFKC full-width letters, case-folded
        ("净利润(net_income)", ["净", "利", "润", "net", "income"]),  # underscore and brackets split
        ("", []),  # nothing
    ],
)
def test_tokens(text, toks):
    assert decontam.tokens(text) == toks


def test_eval_set_specs():
    examples = get_task("cflue").load(str(ASSETS / "cflue_sample.json"))
    # every eval item's own rendered prompt (options behind "A." labels, some only 2-4 characters long)
    rows = [sft(f"t{i}", get_task("cflue").messages(ex)[0]["content"]) for i, ex in enumerate(examples)]
    for spec in (
        ASSETS / "cflue_sample.json",
        str(ASSETS / "cflue_sample.json"),  # a path: the loader is guessed
        {"task": "cflue", "path": str(ASSETS / "cflue_sample.json")},
        examples,
    ):  # explicit spec, loaded examples
        kept, _, report = decontam.run(rows, [], [spec])
        assert kept == [], spec
        assert [o["matches"][0]["eval_id"] for o in report["overlaps"]] == [ex["id"] for ex in examples]
        assert all(o["matches"][0]["coverage"] == 1.0 for o in report["overlaps"])
    assert decontam.load_eval_set(ASSETS / "cflue_sample.json").task == "cflue"
    assert decontam.load_eval_set(ASSETS / "ccc_sample.jsonl").task == "ccc"


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"task": "no_such_task", "path": "x.json"}, "task"),  # unknown task named
        ({"task": "cflue"}, "path"),  # no path
        (42, None),  # not a spec at all
    ],
)
def test_bad_eval_specs(spec, field):
    with pytest.raises(DataError) as e:
        decontam.run([], [], [spec])
    assert e.value.field == field and "eval_sets[0]" in str(e.value)


def test_unloadable_eval_file(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("just some text\n", encoding="utf-8")
    with pytest.raises(DataError, match="no task loader accepts"):
        decontam.run([], [], [bad])


def test_row_without_user_content_is_an_error():
    with pytest.raises(DataError) as e:
        decontam.run([{"id": "x", "messages": [{"role": "assistant", "content": "hi"}]}], [], [EVAL])
    assert (e.value.path, e.value.line, e.value.field) == ("sft", 0, "messages")


def test_speed_10k_by_1k_with_planted_overlaps():
    rng = random.Random(0)
    hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    words = [f"w{i}" for i in range(5000)]

    def text(k: int) -> str:  # mixed Chinese and English, k tokens
        return "".join(rng.choice(hanzi) if rng.random() < 0.6 else f" {rng.choice(words)} " for _ in range(k))

    evals = [{"id": f"e{i}", "question": text(60)} for i in range(1000)]
    rows = [sft(f"t{i}", text(120)) for i in range(10_000)]
    planted = {17: 3, 4242: 512, 9999: 999}  # training row -> eval item pasted into it
    for i, j in planted.items():
        rows[i]["messages"][1]["content"] += evals[j]["question"]
    start = time.perf_counter()
    kept, _, report = decontam.run(rows, [], [evals])
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    found = {o["id"]: o["matches"][0]["eval_id"] for o in report["overlaps"]}
    assert found == {f"t{i}": f"e{j}" for i, j in planted.items()}
    assert len(kept) == 10_000 - 3
    json.dumps(report)  # the report is plain JSON
