"""Hard-item mining: k answers per question, scored with the task scorer (a pass is the
gated reward), kept when the pass rate is strictly inside the band; through an OpenAI-compatible
endpoint (the loopback fake server, answers scripted per prompt so pass rates are known exactly) and
through HF generation from the tiny SFT model; resumable; rl.jsonl output that GRPO reads back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from dianjin.config import from_dict
from dianjin.data.fincalc_rows import examples, rl_row
from dianjin.errors import DataError
from dianjin.files import iter_jsonl, write_jsonl
from dianjin.train.common import load_prompt_items
from dianjin.train.mine import MineConfig, in_band, run

K = 4
GOOD = "<think>compute</think><answer>\\boxed{%s}</answer>"


@pytest.mark.parametrize(
    "p, low, high, keep",
    [
        (0.5, 0.0, 1.0, True),  # mixed answers: a GRPO group with signal
        (0.0, 0.0, 1.0, False),  # all wrong: zero advantage everywhere
        (1.0, 0.0, 1.0, False),  # all right: zero advantage everywhere
        (0.25, 0.25, 1.0, False),  # the band is exclusive at the low end ...
        (0.75, 0.0, 0.75, False),  # ... and at the high end
        (0.125, 0.1, 0.9, True),  # a narrower band
    ],
)
def test_in_band(p, low, high, keep):
    assert in_band(p, low, high) is keep


# --- through an endpoint, with exactly known pass rates ------------------------------------------
@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    exs = examples(6, 3, forms=["mcq"], langs=["en"])
    path = tmp_path_factory.mktemp("mine") / "candidates.jsonl"
    write_jsonl(path, [rl_row(e, "question") for e in exs])
    return path


def scripted(candidates: Path):
    """Item i (0..4) gets i right answers out of K; item 5 is always right but never in format."""
    items = load_prompt_items([candidates])
    index = {it["prompt"][-1]["content"]: i for i, it in enumerate(items)}
    seen: dict[int, int] = {}

    def reply(req: dict) -> str:
        i = index[req["messages"][-1]["content"]]
        n, seen[i] = seen.get(i, 0), seen.get(i, 0) + 1
        gold = items[i]["example"]["gold"]
        if i == 5:
            return f"The answer is \\boxed{{{gold}}}"  # correct letter, no think/answer blocks: not a pass
        wrong = next(x for x in "ABCD" if x != gold)
        return GOOD % (gold if n < i else wrong)

    return items, reply


@pytest.mark.parametrize(
    "low, high, kept",
    [
        (0.0, 1.0, [1, 2, 3]),  # default band: drop all-wrong (0, 5) and all-right (4)
        (0.25, 1.0, [2, 3]),  # exclusive: 1/4 is not above 0.25
        (0.0, 0.5, [1]),  # exclusive: 2/4 is not below 0.5
        (0.5, 1.0, [3]),
    ],
)
def test_endpoint_mining_keeps_the_band(candidates, tmp_path, low, high, kept):
    items, reply = scripted(candidates)
    out = tmp_path / "mine"
    with FakeOpenAI(script=reply) as srv:
        summary = run(
            from_dict(
                MineConfig,
                {
                    "model": srv.model,
                    "endpoint": {"base_url": srv.base_url},
                    "data": [str(candidates)],
                    "output_dir": str(out),
                    "k": K,
                    "min_pass": low,
                    "max_pass": high,
                },
            )
        )
    log = {r["id"]: r for r in iter_jsonl(out / "mine_log.jsonl")}
    assert [log[it["id"]]["passes"] for it in items] == [0, 1, 2, 3, 4, 0]
    assert (
        log[items[5]["id"]]["format_rate"] == 0.0 and log[items[5]["id"]]["preds"] == [items[5]["example"]["gold"]] * K
    )
    mined = list(iter_jsonl(out / "rl_mined.jsonl"))
    assert [r["id"] for r in mined] == [items[i]["id"] for i in kept]
    assert [r["pass_rate"] for r in mined] == [i / K for i in kept]
    assert all({"id", "task", "prompt", "gold", "attempts", "extra", "mined"} <= set(r) for r in mined)
    assert summary["kept"] == len(kept) and summary["all_pass"] == 1 and summary["all_fail"] == 2
    assert summary["pass_histogram"] == {"0/4": 2, "1/4": 1, "2/4": 1, "3/4": 1, "4/4": 1}


def test_mined_rows_feed_grpo(candidates, tmp_path):
    items, reply = scripted(candidates)
    with FakeOpenAI(script=reply) as srv:
        run(
            from_dict(
                MineConfig,
                {
                    "model": srv.model,
                    "base_url": srv.base_url,  # the key before `endpoint`, still read (endpoint.base_url)
                    "data": [str(candidates)],
                    "output_dir": str(tmp_path),
                    "k": K,
                },
            )
        )
    back = load_prompt_items([tmp_path / "rl_mined.jsonl"], need_gold=True)  # what `dianjin grpo` reads
    by_id = {it["id"]: it for it in items}
    for it in back:  # prompt, gold and the scorer's fields survive the round trip
        assert it["prompt"] == by_id[it["id"]]["prompt"]
        assert it["example"] == by_id[it["id"]]["example"]


# --- HF generation from the tiny SFT model, and resume -------------------------------------------
def test_hf_mining_and_resume(tiny_sft, tmp_path):
    root = tiny_sft
    cand = tmp_path / "cand.jsonl"
    write_jsonl(cand, [rl_row(e, "question") for e in examples(12, 9, forms=["mcq"], langs=["en"])])
    cfg = from_dict(
        MineConfig,
        {
            "model": str(root / "sft" / "final"),
            "data": [str(cand)],
            "output_dir": str(tmp_path / "m"),
            "k": K,
            "temperature": 1.0,
            "top_p": 1.0,
            "max_new_tokens": 64,
            "batch_size": 8,
        },
    )
    summary = run(cfg)
    log = list(iter_jsonl(tmp_path / "m" / "mine_log.jsonl"))
    assert len(log) == summary["scored"] == 12 and all(r["k"] == K and len(r["preds"]) == K for r in log)
    assert sum(r["format_rate"] for r in log) / 12 > 0.5  # the SFT model writes the format when sampling, too
    mined = list(iter_jsonl(tmp_path / "m" / "rl_mined.jsonl"))
    assert [r["id"] for r in mined] == [r["id"] for r in log if 0 < r["pass_rate"] < 1] and summary["kept"] == len(
        mined
    )
    assert sum(summary["pass_histogram"].values()) == 12

    def must_not_sample(batch):
        raise AssertionError("everything was already scored")

    assert run(cfg, sampler=must_not_sample)["kept"] == summary["kept"]  # a re-run reuses mine_log.jsonl
    lines = (tmp_path / "m" / "mine_log.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "m" / "mine_log.jsonl").write_text("".join(lines[:9]) + lines[9][:20])  # a crash mid-line
    asked: list[str] = []

    def count(batch):
        asked.extend(it["id"] for it in batch)
        return [[(GOOD % "A", None, False)] * K for _ in batch]

    run(cfg, sampler=count)
    assert asked == [r["id"] for r in log[9:]]  # only the lost items are sampled again


@pytest.mark.parametrize(
    "over, field",
    [
        ({"temperature": 0.0}, "temperature"),  # k greedy answers would be identical
        ({"min_pass": 0.6, "max_pass": 0.4}, "min_pass"),  # empty band
        ({"k": 0}, "k"),
        ({"data": []}, "data"),
    ],
)
def test_bad_config(tmp_path, candidates, over, field):
    cfg = from_dict(MineConfig, {"model": "m", "data": [str(candidates)], "output_dir": str(tmp_path), **over})
    with pytest.raises(DataError) as e:
        run(cfg)
    assert e.value.field == field
