"""Synthetic CFLUE-, FinQA- and CCC-style sets: determinism, real-schema loading, self-consistency, variety;
the helpers the generators share and the phrase tables they ship as package data.

Everything is generated in the tests; the point is that the task loaders and scorers read the
generated files exactly as they read the real ones. FinCalc's generator: tests/test_synthetic_fincalc.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dianjin.answer import render
from dianjin.data import synthetic as syn
from dianjin.data.reference import reference_target
from dianjin.data.synthetic import ccc, cflue, common
from dianjin.eval.specs import resolve_data
from dianjin.tasks import get_task
from dianjin.tasks.ccc import COMPLIANT, DEFAULT_RULES, VIOLATION
from dianjin.tasks.cflue import QTYPES, parse_choices
from dianjin.tasks.finqa_program import execute

N = 200
GENERATORS = {"cflue": syn.cflue_style, "finqa": syn.finqa_style, "ccc": syn.ccc_style}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("demo")
    return out, syn.write_demo_sets(out, n_cflue=N, n_finqa=N, n_ccc=N, seed=7)


@pytest.fixture(scope="module")
def examples(demo) -> dict[str, list[dict]]:
    _, paths = demo
    return {task: get_task(task).load(str(path)) for task, path in paths.items()}


@pytest.fixture(scope="module")
def records(demo) -> dict[str, list[dict]]:
    _, paths = demo
    return {
        "cflue": json.loads(paths["cflue"].read_text(encoding="utf-8")),
        "finqa": json.loads(paths["finqa"].read_text(encoding="utf-8")),
        "ccc": [json.loads(line) for line in paths["ccc"].read_text(encoding="utf-8").splitlines()],
    }


# --- determinism ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cflue", "finqa", "ccc"])  # each generator
def test_same_seed_same_records_other_seed_others(name):
    gen = GENERATORS[name]
    assert gen(40, seed=3) == gen(40, seed=3)
    assert gen(40, seed=3) != gen(40, seed=4)


@pytest.mark.parametrize("name", ["cflue", "finqa", "ccc"])  # record i depends only on (seed, i)
def test_prefix_stable(name):
    gen = GENERATORS[name]
    assert gen(50, seed=1)[:17] == gen(17, seed=1)


@pytest.mark.parametrize(
    "name, n",
    [
        ("cflue", -1),  # negative count
        ("finqa", True),  # a bool is not a count
        ("ccc", 2.0),  # a float is not a count
    ],
)
def test_bad_count_raises(name, n):
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        GENERATORS[name](n, seed=0)


# --- files in the real layout -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "task, rel",
    [
        ("cflue", "cflue/knowledge.json"),  # CFLUE's own file name
        ("finqa", "finqa/test.json"),  # the first pattern eval looks for
        ("ccc", "ccc/ccc.jsonl"),  # matches ccc/*.jsonl
    ],
)
def test_files_load_and_eval_finds_them(demo, examples, task, rel):
    out, paths = demo
    assert paths[task] == out / rel
    assert resolve_data(task, out, {}) == paths[task]  # `dianjin eval --data-dir OUT` picks this file
    assert len(examples[task]) == N


def test_zero_count_skips_task(tmp_path):
    paths = syn.write_demo_sets(tmp_path, n_cflue=3, n_finqa=0, n_ccc=2, seed=0)
    assert sorted(paths) == ["ccc", "cflue"]
    assert not (tmp_path / "finqa").exists()


def test_main_writes_the_sets(tmp_path, capsys):
    syn.main([str(tmp_path), "--n-cflue", "4", "--n-finqa", "3", "--n-ccc", "2", "--seed", "5"])
    assert len(get_task("finqa").load(str(tmp_path / "finqa/test.json"))) == 3
    assert "ccc: " in capsys.readouterr().out


def test_python_m_writes_the_sets(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "dianjin.data.synthetic",
        str(tmp_path),
        "--n-cflue",
        "2",
        "--n-finqa",
        "0",
        "--n-ccc",
        "1",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"cflue: {tmp_path / 'cflue/knowledge.json'}", f"ccc: {tmp_path / 'ccc/ccc.jsonl'}"]


# --- every record's own reference answer scores correct ----------------------------------------------
def _reasoning(task: str, ex: dict) -> str:
    """Some reasoning text from the record itself."""
    if task == "cflue":
        return ex["analysis"]
    if task == "finqa":
        return f"Compute {ex['program']}."
    return "；".join(f["note"] for f in ex["findings"])


@pytest.mark.parametrize("task", ["cflue", "finqa", "ccc"])  # each task's scorer
@pytest.mark.parametrize("mode", ["reward", "eval"])  # strict gate and lenient extraction
def test_reference_answer_scores_correct(examples, task, mode):
    t = get_task(task)
    for ex in examples[task]:
        ref = t.reference(ex)
        response = render(_reasoning(task, ex), "" if t.boxed else ref, ref if t.boxed else None)
        v = t.score(response, ex, mode=mode)
        assert v.correct is True and v.format_ok, (ex["id"], ref, v)


def _wrong(task: str, ex: dict) -> str:
    """A plausible wrong answer."""
    if task == "cflue":
        return next(k for k in ex["choices"] if k not in ex["gold"])
    if task == "finqa":
        gold = ex["gold"]
        return {"yes": "no", "no": "yes"}[gold] if isinstance(gold, str) else f"{gold * 3 + 7:g}"
    return "最终结果为：" + ("客服未违规" if ex["gold"] == VIOLATION else "客服违规") + "。"


@pytest.mark.parametrize("task", ["cflue", "finqa", "ccc"])  # the scorer is not trivially true on our data
def test_wrong_answer_scores_wrong(examples, task):
    t = get_task(task)
    for ex in examples[task][:40]:
        wrong = _wrong(task, ex)
        response = render("reasoning", "" if t.boxed else wrong, wrong if t.boxed else None)
        assert t.score(response, ex, mode="reward").correct is False, (ex["id"], wrong)


@pytest.mark.parametrize("task", ["cflue", "finqa", "ccc"])  # the offline reference teacher can use every item
def test_reference_teacher_targets_score_one(examples, task):
    t = get_task(task)
    for ex in examples[task]:
        target = reference_target(ex)
        assert target is not None, ex["id"]
        assert t.score(target, ex, mode="reward").reward == 1.0, (ex["id"], target[-300:])


# --- CFLUE ------------------------------------------------------------------------------------------------
def test_cflue_schema(records):
    for i, rec in enumerate(records["cflue"]):
        assert set(rec) == {"名称", "task", "question", "choices", "answer", "analysis"}, i
        assert isinstance(rec["choices"], str) and rec["choices"].startswith("{'A': ")  # a Python dict literal
        choices = parse_choices(rec["choices"])
        assert "".join(choices) == cflue.LETTERS[: len(choices)], i  # A, B, C, ... without gaps
        assert len(set(choices.values())) == len(choices), rec  # no two options alike
        assert rec["answer"] == "".join(sorted(set(rec["answer"]))) and set(rec["answer"]) <= set(choices), i
        assert rec["task"] in QTYPES
        assert rec["answer"] in rec["analysis"], i  # the analysis names the answer


@pytest.mark.parametrize(
    "qtype, n_choices, n_answers",
    [
        ("单项选择题", {4}, {1}),  # one of four
        ("多项选择题", {4, 5}, {2, 3, 4}),  # at least two right, at least one wrong
        ("判断题", {2}, {1}),  # 对/错 or True/False
    ],
)
def test_cflue_question_types(records, qtype, n_choices, n_answers):
    recs = [r for r in records["cflue"] if r["task"] == qtype]
    assert len(recs) >= N // 10
    for r in recs:
        assert len(parse_choices(r["choices"])) in n_choices and len(r["answer"]) in n_answers, r


def test_cflue_bilingual_mostly_chinese(records):
    english = [r for r in records["cflue"] if not re.search(r"[\u4e00-\u9fff]", r["question"] + r["choices"])]
    assert 0.15 * N <= len(english) <= 0.35 * N
    assert {r["task"] for r in english} == set(QTYPES)  # every question type in English too
    tf = [parse_choices(r["choices"]) for r in english if r["task"] == "判断题"]
    assert all(c == {"A": "True", "B": "False"} for c in tf)


@pytest.mark.parametrize(
    "calc, pattern, formula",
    [
        # 本金 × 年利率 × 年数
        ("simple_interest", r"将(\d+)元存入银行(\d+)年期.*年利率为([\d.]+)%", lambda p, t, r: p * r / 100 * t),
        # 原始存款 ÷ 准备金率
        ("deposit_creation", r"原始存款(\d+)万元，法定存款准备金率为([\d.]+)%", lambda d, rr: d / (rr / 100)),
        # 票息 ÷ 价格
        ("current_yield", r"票面利率为([\d.]+)%.*市场价格为([\d.]+)元", lambda c, p: c / p * 100),
        # 面额 × 贴现率 × 天数 ÷ 360
        ("bill_discount", r"面额(\d+)元.*还有(\d+)天，年贴现率为([\d.]+)%", lambda f, n, d: f * d / 100 * n / 360),
        # 所有者权益不受以存款还借款影响
        ("equity_after", r"资产总额为(\d+)万元，负债总额为(\d+)万元", lambda a, liab: a - liab),
    ],
)
def test_cflue_calc_answer_matches_the_numbers_in_the_question(calc, pattern, formula):
    for k in range(5):
        c = cflue.CALCS[calc](random.Random(f"calc-test:{k}"), "zh")
        args = [float(x) for x in re.search(pattern, c.context).groups()]
        assert common.f2(c.value) == common.f2(formula(*args)), (c.context, c.value)
        assert common.f2(c.value) + ("%" if c.percent else "") in c.steps[-1]  # the worked solution ends at the answer


@pytest.mark.parametrize(
    "value, mistakes, k",
    [
        (12.0, (12.0, 12.001, 30.0), 4),  # mistakes equal to the answer once rounded are dropped, then padded
        (5.0, (), 4),  # no mistakes at all: ±10%, ±20% ...
        (7.5, (1.0, 2.0, 3.0), 2),  # true/false needs one wrong value
    ],
)
def test_distinct_values(value, mistakes, k):
    calc = cflue.Calc("x", "ctx", "ask", "{value}", value, False, mistakes, ("step",))
    out = cflue.distinct_values(calc, k)
    assert len(out) == len(set(out)) == k and out[0] == common.f2(value)


# --- FinQA ----------------------------------------------------------------------------------------------------
def test_finqa_exe_ans_is_the_program_result(records):
    for rec in records["finqa"]:
        qa = rec["qa"]
        assert qa["exe_ans"] == execute(qa["program"], rec["table"]), rec["id"]
        assert len({row[0] for row in rec["table"]}) == len(rec["table"])  # row names unique: table ops are unambiguous
        for key in qa["gold_inds"]:
            kind, idx = key.split("_")
            assert int(idx) < len(rec["table"] if kind == "table" else rec["pre_text"]), (rec["id"], key)


def test_finqa_human_answer_checks_against_exe_ans(examples, records):
    finqa = get_task("finqa")
    for ex, rec in zip(examples["finqa"], records["finqa"]):
        assert finqa.reference(ex) == rec["qa"]["answer"], rec["id"]  # the human answer is accepted, not replaced


def test_finqa_variety(records):
    programs = Counter(rec["qa"]["program"].split("(")[0] for rec in records["finqa"])
    assert set(programs) >= {"subtract", "divide", "multiply", "table_sum", "table_average", "greater"}
    yes_no = Counter(rec["qa"]["exe_ans"] for rec in records["finqa"] if isinstance(rec["qa"]["exe_ans"], str))
    assert yes_no["yes"] > 0 and yes_no["no"] > 0
    assert len({rec["id"] for rec in records["finqa"]}) == N


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        (0.07879, "pct", "7.88%"),  # 7.879 -> 7.88 (within 0.05%)
        (0.01141, "pct", "1.141%"),  # 1.14 would be 0.09% off
        (963.264, "num", "963"),  # 0.03% off
        (123.45, "num", "123.5"),  # 123 would be 0.36% off
        (12345.6, "num", "12,346"),  # thousands comma, as FinQA writes
        ("yes", "yesno", "yes"),  # yes/no as is
    ],
)
def test_human_answer(value, kind, expected):
    assert syn.human_answer(value, kind) == expected


# --- CCC -----------------------------------------------------------------------------------------------------
def test_ccc_labels_and_findings_consistent(records):
    recs = records["ccc"]
    assert Counter(r["label"] for r in recs) == {VIOLATION: N // 2, COMPLIANT: N // 2}
    rule_ids = {r["id"] for r in DEFAULT_RULES}
    for r in recs:
        assert "rules" not in r  # the default rules apply
        triggered = [f["rule_id"] for f in r["findings"] if f["triggered"]]
        assert r["findings"] and {f["rule_id"] for f in r["findings"]} <= rule_ids, r["id"]
        assert bool(triggered) == (r["label"] == VIOLATION), r["id"]
        assert all(f["note"] and "{" not in f["note"] for f in r["findings"]), r["id"]  # notes filled in
        assert all("{" not in t["text"] for t in r["dialogue"]), r["id"]  # templates filled in
        assert {t["role"] for t in r["dialogue"]} == {"客户", "客服"}


def test_ccc_every_rule_broken_and_kept(records):
    broken = {f["rule_id"] for r in records["ccc"] for f in r["findings"] if f["triggered"]}
    kept = {f["rule_id"] for r in records["ccc"] for f in r["findings"] if not f["triggered"]}
    assert broken == kept == {r["id"] for r in DEFAULT_RULES}


# --- variety ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task, key, min_unique",
    [
        ("cflue", lambda r: (r["question"], r["choices"]), 0.97),  # items (CFLUE ids hash question + choices)
        ("cflue", lambda r: r["question"], 0.7),  # question wording alone ("下列…属于…的是" repeats per category)
        ("finqa", lambda r: r["qa"]["question"], 0.8),  # questions (tables always differ)
        ("ccc", lambda r: json.dumps(r["dialogue"], ensure_ascii=False), 0.97),  # dialogues
    ],
)
def test_few_duplicates(records, task, key, min_unique):
    assert len({key(r) for r in records[task]}) >= min_unique * N


# --- shared helpers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, candidates, k, expected",
    [
        (1.0, [2.0, 3.0, 4.0], 3, ["1.00", "2.00", "3.00"]),  # stops at k, in candidate order
        (1.0, [1.001, 2.0], 2, ["1.00", "2.00"]),  # a candidate shown like the answer is skipped
        (1.0, [2.0, 2.004, 3.0], 3, ["1.00", "2.00", "3.00"]),  # and one shown like an earlier candidate
        (1.0, [math.inf, math.nan, 2.0], 2, ["1.00", "2.00"]),  # non-finite values are skipped
        (1.0, [2.0], 4, ["1.00", "2.00"]),  # fewer than k when the candidates run out
    ],
)
def test_distinct_shown(value, candidates, k, expected):
    assert common.distinct_shown(value, candidates, common.f2, k) == expected


def test_simple_interest_and_its_mistakes():
    assert common.simple_interest(10000, 5, 3) == 1500.0  # 10000 x 5% x 3
    compounded, one_year, with_principal = common.simple_interest_mistakes(10000, 5, 3)
    assert compounded == pytest.approx(1576.25)  # 10000 x (1.05^3 - 1)
    assert one_year == 500.0  # 10000 x 5%
    assert with_principal == 11500.0  # 10000 x (1 + 5% x 3)


@pytest.mark.parametrize(
    "x, expected",
    [
        (1500.0, "1500"),  # a whole number without ".0"
        (4.25, "4.25"),  # decimals as they are
        (0.1 + 0.2, "0.3"),  # float noise cut at 10 significant digits
    ],
)
def test_num(x, expected):
    assert common.num(x) == expected


@pytest.mark.parametrize("name", ["cflue", "finqa", "ccc", "fincalc"])  # every phrase table is package data
def test_tables_are_package_data(name):
    table = common.load_table(name)
    assert isinstance(table, dict) and table
    assert (Path(common.__file__).parent / "tables" / f"{name}.json").is_file()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"opener": "shout"}, "unknown opener 'shout'"),  # an opener no function implements
        ({"violation": (ccc.Reply("x", (("no_such_rule", True, "n"),)),)}, "unknown rule ids"),  # a typo in a rule id
    ],
)
def test_ccc_tables_checked(monkeypatch, change, message):
    sc = ccc.CCC_SCENARIOS["privacy"]
    monkeypatch.setitem(ccc.CCC_SCENARIOS, "privacy", dataclasses.replace(sc, **change))
    with pytest.raises(ValueError, match=message):
        ccc._check_scenarios()
