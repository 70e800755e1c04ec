"""Stats: the seed's Size / Q_token / R_token / A_token table, hand-checked on a tiny case."""

from __future__ import annotations

import json

import pytest

from dianjin import answer as fmt
from dianjin.data import stats
from dianjin.errors import DataError


def sft(ident: str, task: str, question: str, reasoning: str, answer: str, fields: bool = True) -> dict:
    row = {
        "id": ident,
        "task": task,
        "messages": [
            {"role": "system", "content": "系统提示不计入"},
            {"role": "user", "content": question},
            {"role": "assistant", "content": fmt.render(reasoning, answer)},
        ],
    }
    if fields:
        row.update(reasoning=reasoning, answer=answer)
    return row


def rl(ident: str, task: str, question: str, gold) -> dict:
    return {"id": ident, "task": task, "prompt": [{"role": "user", "content": question}], "gold": gold}


# Fallback counts, by hand: 甲乙丙丁 4; 一二三 3; \boxed{A} 1; 甲乙 2; "one two three four five" 5; "答案 A" 2+1 = 3;
# "What is the net change in revenue?" 7; "Subtract 5735 from 5829." 4; \boxed{94} 1; 甲乙丙 3; 甲乙丙丁戊 5; AC 1; B 1.
SFT = [
    sft("c1", "cflue", "甲乙丙丁", "一二三", "\\boxed{A}"),
    sft("c2", "cflue", "甲乙", "one two three four five", "答案 A", fields=False),  # parsed from the assistant message
    sft("f1", "finqa", "What is the net change in revenue?", "Subtract 5735 from 5829.", "\\boxed{94}"),
]
RL = [
    rl("r1", "cflue", "甲乙丙", "AC"),
    rl("r2", "cflue", "甲乙丙丁戊", "B"),
    rl("r3", "finqa", "What is the net change in revenue?", 94.0),
]


@pytest.mark.parametrize(
    "text, count",
    [
        ("营业收入 rose 12.5%。", 6),  # 4 characters + "rose" + "12.5%。"
        ("A. 债券", 3),  # "A." + 2 characters
        ("hello   world\n", 2),  # whitespace runs do not count
        ("", 0),  # nothing
    ],
)
def test_fallback_count(text, count):
    assert stats.fallback_count(text) == count


@pytest.mark.parametrize(
    "text, lang",
    [
        ("下列属于货币市场工具的是", "zh"),  # all CJK
        ("What was the change in revenue?", "en"),  # all words
        ("计算 ROE: net income / equity", "en"),  # 2 characters < 5 words
        ("请计算公司的ROE", "zh"),  # 6 characters > 1 word
    ],
)
def test_language(text, lang):
    assert stats.language(text) == lang


def test_fallback_table_hand_checked(tmp_path):
    out = stats.run(tmp_path, SFT, RL, tokenizer=None)
    assert out["tokenizer"] == stats.FALLBACK
    got = [
        (s["used_in"], s["subset"], s["language"], s["size"], s["q_token"], s["r_token"], s["a_token"])
        for s in out["subsets"]
    ]
    assert got == [
        ("SFT", "CFLUE_MCQ", "Chinese", 2, 3.0, 4.0, 2.0),  # Q (4+2)/2, R (3+5)/2, A (1+3)/2
        ("SFT", "FinQA", "English", 1, 7.0, 4.0, 1.0),
        ("RL", "CFLUE_MCQ", "Chinese", 2, 4.0, None, 1.0),  # Q (3+5)/2; the gold letters
        ("RL", "FinQA", "English", 1, 7.0, None, 1.0),  # gold 94.0 as "94.0"
    ]
    assert out["totals"] == {"sft": 3, "rl": 3}
    assert json.loads((tmp_path / "stats.json").read_text(encoding="utf-8")) == out
    md = (tmp_path / "stats.md").read_text(encoding="utf-8").splitlines()
    assert md[2] == "| Dataset | Language | Size | Q_token | R_token | A_token |"
    assert md[4:] == [
        "| *Used in SFT* | | | | | |",
        "| CFLUE_MCQ | Chinese | 2 | 3.00 | 4.00 | 2.00 |",
        "| FinQA | English | 1 | 7.00 | 4.00 | 1.00 |",
        "| *Used in RL* | | | | | |",
        "| CFLUE_MCQ | Chinese | 2 | 4.00 | - | 1.00 |",
        "| FinQA | English | 1 | 7.00 | - | 1.00 |",
    ]


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory) -> str:
    """A word-level HF tokenizer: one token per \\w+ run or punctuation run, so counts are hand-checkable."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[BOS]": 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path_factory.mktemp("wordtok")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]").save_pretrained(path)
    return str(path)


def test_tokenizer_table_hand_checked(tmp_path, word_tokenizer):
    out = stats.run(tmp_path, SFT, RL, tokenizer=word_tokenizer)
    assert out["tokenizer"] == word_tokenizer
    got = [(s["subset"], s["q_token"], s["r_token"], s["a_token"]) for s in out["subsets"]]
    # \w+ runs: 甲乙丙丁 is one word; "revenue?" is two tokens; "\boxed{A}" is \ boxed { A } = 5.
    assert got == [
        ("CFLUE_MCQ", 1.0, 3.0, 3.5),  # R (1 + 5)/2, A (5 + "答案 A" 2)/2
        ("FinQA", 8.0, 5.0, 5.0),  # "Subtract 5735 from 5829." is 5
        ("CFLUE_MCQ", 1.0, None, 1.0),
        ("FinQA", 8.0, None, 3.0),  # "94.0" is 94 . 0
    ]


@pytest.mark.parametrize(
    "sft_rows, rl_rows, where",
    [
        (
            [
                {
                    "id": "x",
                    "task": "cflue",
                    "messages": [{"role": "assistant", "content": "<think>a</think><answer>b</answer>"}],
                }
            ],
            [],
            ("sft", 0, "messages"),
        ),  # no user message
        (
            [
                {
                    "id": "x",
                    "task": "cflue",
                    "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "no tags"}],
                }
            ],
            [],
            ("sft", 0, "messages"),
        ),  # no fields and the target does not parse
        (
            [],
            [{"id": "y", "task": "cflue", "prompt": [{"role": "user", "content": "q"}]}],
            ("rl", 0, "gold"),
        ),  # no gold
    ],
)
def test_bad_rows(tmp_path, sft_rows, rl_rows, where):
    with pytest.raises(DataError) as e:
        stats.run(tmp_path, sft_rows, rl_rows, None)
    assert (e.value.path, e.value.line, e.value.field) == where
