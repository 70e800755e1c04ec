"""The evaluation harness (`dianjin eval`) against the loopback OpenAI server with scripted answers.

Every item gets a scripted kind of answer (right, wrong, malformed, truncated at max_tokens, right
with the reasoning in `reasoning_content`), so the true score of each sample is known in advance;
the harness must reproduce it exactly, with or without injected 429s, 500s and timeouts. The data
files (real schemas, invented content) and the scripted model are in tests/evalkit.py, the `data`
fixture in tests/conftest.py. Also: resuming, `--rescore`, judging, `--compare`, n > 1 (mean@k /
pass@k), the CCC multi-agent system beside the single call, and the statistics.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from evalkit import KINDS, TASKS, Script, eval_args, reply_for, rows_of, write_cflue_oe
from fake_openai import FakeOpenAI, FaultPlan, last_user

from dianjin.cli import main as cli
from dianjin.errors import DataError
from dianjin.eval import paper, stats
from dianjin.eval.run import EvalConfig, run_eval
from dianjin.eval.specs import build_units, resolve_data, scoring_task
from dianjin.llm.client import EndpointConfig
from dianjin.tasks.math500 import PROMPT as MATH_PROMPT


# --- scores equal the scripted truth, with and without faults ----------------------------------------------
@pytest.mark.parametrize(
    "faults",
    [
        None,  # a clean server
        FaultPlan(
            kinds=("429", "500", "timeout"), fraction=0.5, attempts=1, retry_after=0.01, hang=1.0
        ),  # half the requests fail once
        FaultPlan(
            kinds=("503", "malformed", "drop", "empty"), fraction=0.6, attempts=2, retry_after=0.01
        ),  # broken bodies, twice
    ],
)
def test_scores_equal_scripted_truth(data: Path, tmp_path: Path, faults):
    script = Script(data)
    with FakeOpenAI(script=script, faults=faults) as srv:
        assert cli(eval_args(srv, data, tmp_path / "run")) == 0
        assert not srv.script_errors
        if faults is not None:
            assert sum(srv.stats()["faults"].values()) > 0  # faults really were injected
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    for task in TASKS:
        rows = rows_of(tmp_path / "run", task)
        assert {k: r["correct"] for k, r in rows.items()} == script.truth[task], task
        s = summary["tasks"][task]
        assert s["accuracy"] == pytest.approx(script.accuracy(task)), task
        assert s["errors"] == 0 and s["missing"] == 0
        assert s["truncated"] == sum(k == "truncated" for k in script.kinds[task].values())
        lo, hi = s["ci95"]
        assert lo <= s["accuracy"] <= hi
        for key, r in rows.items():  # the strict format holds exactly for the well-formed answers
            assert r["format_ok"] == (script.kinds[task][key] in ("right", "reasoning", "wrong")), (task, key)
    assert summary["average"] == pytest.approx(sum(script.accuracy(t) for t in TASKS) / len(TASKS))


def test_sample_rows_hold_what_the_spec_lists(data: Path, tmp_path: Path):
    script = Script(data, tasks=("math500",))
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, tmp_path / "run", tasks=("math500",))) == 0
    rows = rows_of(tmp_path / "run", "math500")
    by_kind = {script.kinds["math500"][k]: r for k, r in rows.items()}
    r = by_kind["reasoning"]
    assert r["reasoning"] == "逐步分析：先看题目，再计算。" and r["correct"] is True and r["pred"]
    assert r["prompt"] == [{"role": "user", "content": MATH_PROMPT.format(problem=r["question"])}]
    assert r["tokens"]["completion"] > 0 and r["tokens"]["reasoning"] > 0 and r["latency"] >= 0
    assert by_kind["truncated"]["finish_reason"] == "length" and by_kind["truncated"]["correct"] is False
    for field in ("id", "prompt", "response", "reasoning", "pred", "correct", "tokens", "latency", "finish_reason"):
        assert all(field in row for row in rows.values()), field
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    st = summary["settings"]["tasks"]["math500"]
    assert st["temperature"] == 0.6 and st["top_p"] == 0.95 and st["max_tokens"] == 16384
    assert "\\boxed{{}}" in st["prompt_template"]
    md = (tmp_path / "run" / "summary.md").read_text(encoding="utf-8")
    assert "DianJin-R1-7B (paper)" in md and "76.60" in md  # the paper's rows beside ours


def test_sampling_settings_are_sent_and_overridable(data: Path, tmp_path: Path):
    script = Script(data, tasks=("cflue",))
    with FakeOpenAI(script=script) as srv:
        assert (
            cli(eval_args(srv, data, tmp_path / "run", "--temperature", "0", "--max-tokens", "77", tasks=("cflue",)))
            == 0
        )
        sent = [r["json"] for r in srv.requests]
    assert {(b["temperature"], b["top_p"], b["max_tokens"]) for b in sent} == {(0.0, 0.95, 77)}


def test_python_api_on_generated_fincalc(tmp_path: Path):
    from dianjin.data.synthetic import fincalc

    fincalc.write_jsonl(fincalc.generate(8, seed=3), tmp_path / "data" / "fincalc" / "test.jsonl")
    units = build_units("fincalc", tmp_path / "data" / "fincalc" / "test.jsonl", 1, None)
    task = scoring_task("fincalc")
    replies = {
        task.messages(u.example)[-1]["content"]: reply_for("fincalc-" + u.example["form"], u.example, KINDS[i % 5])
        for i, u in enumerate(units)
    }
    truth = {u.key: KINDS[i % 5] in ("right", "reasoning") for i, u in enumerate(units)}
    with FakeOpenAI(script=lambda req: replies[last_user(req)]) as srv:
        endpoint = EndpointConfig(base_url=srv.base_url, model="fake-model", backoff_base=0.01)
        summary = run_eval(
            EvalConfig(
                out=tmp_path / "run", tasks=["fincalc"], endpoint=endpoint, data_dir=tmp_path / "data", progress=False
            )
        )
    assert {k: r["correct"] for k, r in rows_of(tmp_path / "run", "fincalc").items()} == truth
    assert summary["tasks"]["fincalc"]["accuracy"] == pytest.approx(sum(truth.values()) / len(truth))


# --- resuming and re-scoring ---------------------------------------------------------------------------------
def test_rerun_reuses_finished_samples_and_retries_failed(data: Path, tmp_path: Path):
    script = Script(data, tasks=("cflue",))
    out = tmp_path / "run"
    fail = {"on": True}

    def flaky(req: dict, receipt: int):  # items about 表外业务 fail for good in the first run
        return "500" if fail["on"] and "表外业务" in last_user(req) else None

    with FakeOpenAI(script=script, faults=flaky) as srv:
        assert cli(eval_args(srv, data, out, "--limit", "4", "--max-retries", "1", tasks=("cflue",))) == 1
        first = json.loads((out / "summary.json").read_text())["tasks"]["cflue"]
        assert first["errors"] == 1 and first["n"] == 4
        fail["on"] = False
        before = Counter(srv.answers)
        assert cli(eval_args(srv, data, out, tasks=("cflue",))) == 0  # all 6 items now
        new = Counter(srv.answers) - before
    assert sum(new.values()) == 3  # the failed one and the two new items; nothing paid twice
    (out / "cache.sqlite").unlink()  # the finished rows alone are enough to resume
    with open(out / "samples" / "cflue.jsonl", "a", encoding="utf-8") as f:
        f.write('{"key": "partial line left by a crash')
    with FakeOpenAI(script=script) as srv2:
        assert cli(eval_args(srv2, data, out, tasks=("cflue",))) == 0
        assert srv2.requests == []
    rows = rows_of(out, "cflue")
    assert {k: r["correct"] for k, r in rows.items()} == script.truth["cflue"]


def test_changed_settings_in_the_same_run_dir_are_refused(data: Path, tmp_path: Path, capsys):
    script = Script(data, tasks=("cflue",))
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, tmp_path / "run", tasks=("cflue",))) == 0
        assert cli(eval_args(srv, data, tmp_path / "run", "--temperature", "1.0", tasks=("cflue",))) == 2
    assert "temperature" in capsys.readouterr().err


def test_rescore_uses_current_scorers_without_calling_the_model(data: Path, tmp_path: Path):
    script = Script(data, tasks=("cflue", "gpqa"))
    out = tmp_path / "run"
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, out, tasks=("cflue", "gpqa"))) == 0
    for task in ("cflue", "gpqa"):  # pretend an older scorer got every verdict backwards
        path = out / "samples" / f"{task}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        path.write_text(
            "".join(json.dumps({**r, "correct": not r["correct"]}, ensure_ascii=False) + "\n" for r in rows),
            encoding="utf-8",
        )
    # the server is gone: any model call would fail
    assert cli(["eval", "--rescore", "--out", str(out), "--tasks", "cflue,gpqa", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for task in ("cflue", "gpqa"):
        assert {k: r["correct"] for k, r in rows_of(out, task).items()} == script.truth[task]
        assert summary["tasks"][task]["accuracy"] == pytest.approx(script.accuracy(task))


# --- judging -----------------------------------------------------------------------------------------------------
def judge_script(req: dict) -> str:
    """A judge that checks FinQA by the numbers in its prompt and CFLUE-OE by the reference text."""
    text = last_user(req)
    if "Reference answer:" in text:
        gold = text.split("Reference answer:")[1].split("\n")[0].strip()
        answer = text.split("Answer to grade:")[1].split("\n")[0].strip()
        try:
            same = abs(float(answer.rstrip("%")) - float(gold)) < 1e-6
        except ValueError:
            same = answer.lower() == gold.lower()
        return f"The answer {'matches' if same else 'does not match'}. \\boxed{{{int(same)}}}"
    ref = text.split("【参考答案】")[1].split("【参考解析】")[0].strip()
    cand = text.split("【考生回答】")[1].split("请先用")[0]
    return "理由：核心结论一致。\n结论：正确" if ref in cand else "理由：与参考答案矛盾。\n结论：错误"


def test_judge_scores_finqa_and_cflue_oe_and_rescore_can_add_it(data: Path, tmp_path: Path):
    write_cflue_oe(data)
    oe_answers = {
        "我国的中央银行是哪家机构？": "中国人民银行",
        "债券价格与利率如何变动？": "同向变动",
        "货币基金能否投资股票？": "不能",
        "存款保险的最高偿付限额是多少？": "100万元",
    }
    finqa = Script(data, tasks=("finqa",))

    def model(req: dict):
        q = last_user(req)
        for k, a in oe_answers.items():
            if k in q:
                return f"<think>想一想</think><answer>{a}</answer>"
        return finqa(req)

    out = tmp_path / "run"
    with FakeOpenAI(script=model) as srv, FakeOpenAI(script=judge_script) as judge:
        base = eval_args(srv, data, out, tasks=("finqa", "cflue_oe"))
        assert cli(base) == 0  # no judge: cflue_oe cannot be verified, finqa is rule-scored
        s0 = json.loads((out / "summary.json").read_text())["tasks"]
        assert s0["cflue_oe"]["accuracy"] is None and s0["cflue_oe"]["unverified"] == 4
        assert s0["finqa"]["accuracy"] == pytest.approx(finqa.accuracy("finqa"))
        judged = base + ["--judge-base-url", judge.base_url, "--judge-model", "judge-model"]
        assert cli(judged) == 0
        n_judge = len(judge.requests)
        assert (
            cli(
                [
                    "eval",
                    "--rescore",
                    "--out",
                    str(out),
                    "--tasks",
                    "finqa,cflue_oe",
                    "--quiet",
                    "--judge-base-url",
                    judge.base_url,
                    "--judge-model",
                    "judge-model",
                ]
            )
            == 0
        )
        assert len(judge.requests) == n_judge  # judge replies come from the run's cache
    summary = json.loads((out / "summary.json").read_text())
    oe, fq = summary["tasks"]["cflue_oe"], summary["tasks"]["finqa"]
    assert oe["accuracy"] == pytest.approx(0.5) and oe["judged"] and oe["judge_calls"] == 4
    assert fq["accuracy"] == pytest.approx(finqa.accuracy("finqa")) and fq["accuracy_rule"] == fq["accuracy"]
    assert "Reference answer" in summary["settings"]["tasks"]["finqa"]["judge_prompt"]
    assert "结论：正确" in summary["settings"]["tasks"]["cflue_oe"]["judge_prompt"]
    rows = rows_of(out, "cflue_oe")
    assert all(r["judge"] and "结论" in r["judge"] for r in rows.values())


# --- n > 1, the CCC system comparison, --compare -------------------------------------------------------------------
def test_n_samples_give_mean_and_pass_at_k(data: Path, tmp_path: Path):
    seen: Counter = Counter()
    lock = threading.Lock()
    script = Script(data, tasks=("cflue",))
    gold = {
        scoring_task("cflue").messages(u.example)[-1]["content"]: u.example["gold"]
        for u in build_units("cflue", resolve_data("cflue", data, {}), 1, None)
    }

    def alternate(req: dict) -> dict:  # of each prompt's 3 samples, the first that arrives is right
        q = last_user(req)
        with lock:
            seen[q] += 1
            first = seen[q] == 1
        return reply_for("cflue", gold[q], "right" if first else "wrong")

    def always_a(req: dict) -> str:  # GPQA shuffles: right exactly when the shuffle put the answer at A
        return "<think>.</think><answer>\\boxed{A}</answer>"

    with FakeOpenAI(script=alternate) as srv:
        assert cli(eval_args(srv, data, tmp_path / "c", "--n", "3", tasks=("cflue",))) == 0
    with FakeOpenAI(script=always_a) as srv:
        assert cli(eval_args(srv, data, tmp_path / "g", "--n", "4", tasks=("gpqa",))) == 0
    c = json.loads((tmp_path / "c" / "summary.json").read_text())["tasks"]["cflue"]
    assert (c["n"], c["samples"], c["k"]) == (6, 18, 3)
    assert c["mean_at_k"] == pytest.approx(1 / 3) and c["pass_at_k"]["1"] == pytest.approx(1 / 3)
    assert c["pass_at_k"]["3"] == pytest.approx(1.0)
    g = json.loads((tmp_path / "g" / "summary.json").read_text())["tasks"]["gpqa"]
    rows = rows_of(tmp_path / "g", "gpqa").values()
    truth = [r["gold"] == "A" for r in rows]
    assert (g["n"], g["samples"]) == (3, 12) and g["accuracy"] == pytest.approx(sum(truth) / len(truth))
    assert g["chance"] == pytest.approx(1 / 4) and c["chance"] is not None  # always-A guesses at the floor
    assert len(g["run_accuracies"]) == 4 and g["std_over_runs"] >= 0
    del script


def agents_script(data: Path):
    """Agents answer per rule; the auditor is right on even-numbered dialogues and wrong on odd ones."""
    examples = scoring_task("ccc").load(str(data / "ccc" / "test.jsonl"))
    single = Script(data, tasks=("ccc",))

    def script(req: dict) -> dict | str:
        q = last_user(req)
        if "客服服务审计专家，负责汇总" in q:
            i, ex = next((i, ex) for i, ex in enumerate(examples) if ex["dialogue"][0]["text"] in q)
            verdict = ex["gold"] if i % 2 == 0 else {"violation": "compliant", "compliant": "violation"}[ex["gold"]]
            return (
                "复核完毕。\n最终结果为："
                + {"violation": "客服违规", "compliant": "客服未违规"}[verdict]
                + "。原因：见上。"
            )
        if "的质检专家。你只负责检查下面这一条质检规则" in q:
            return "分析：对话中未出现触发本规则的情形。\n结论：客服未违规"
        return single(req)

    truth = {f"{ex['id']}|0": i % 2 == 0 for i, ex in enumerate(examples)}
    return script, single, truth


def test_ccc_multi_agent_system_beside_single_call(data: Path, tmp_path: Path):
    script, single, truth = agents_script(data)
    out = tmp_path / "run"
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, out, tasks=("ccc", "ccc_agents"))) == 0
        assert not srv.script_errors
    summary = json.loads((out / "summary.json").read_text())
    one, multi = summary["tasks"]["ccc"], summary["tasks"]["ccc_agents"]
    assert one["accuracy"] == pytest.approx(single.accuracy("ccc")) and one["calls_per_item"] == 1
    assert {k: r["correct"] for k, r in rows_of(out, "ccc_agents").items()} == truth
    assert multi["accuracy"] == pytest.approx(3 / 5)
    assert multi["calls_per_item"] == 8  # 7 rule agents + the auditor
    assert multi["tokens_per_item"] > 3 * one["tokens_per_item"]
    assert multi["system"] and summary["average_tasks"] == ["ccc"]  # a system is not averaged as a task
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "single call vs multi-agent" in md and "8.00" in md and "8.15" in md


def test_compare_two_runs_paired(data: Path, tmp_path: Path, capsys):
    good = Script(data, tasks=("cflue", "math500"))
    everything_right = {p: reply_for("cflue", "A", "right") for p in good.replies}
    for task in ("cflue", "math500"):
        for u in build_units(task, resolve_data(task, data, {}), 1, None):
            everything_right[scoring_task(task).messages(u.example)[-1]["content"]] = reply_for(
                task, u.example["gold"], "right"
            )
    with FakeOpenAI(script=good) as srv:
        assert cli(eval_args(srv, data, tmp_path / "a", tasks=("cflue", "math500"))) == 0
    with FakeOpenAI(script=lambda req: everything_right[last_user(req)]) as srv:
        assert cli(eval_args(srv, data, tmp_path / "b", tasks=("cflue", "math500"))) == 0
    capsys.readouterr()
    assert cli(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    for task in ("cflue", "math500"):
        d = result["tasks"][task]
        assert d["diff"] == pytest.approx(1 - good.accuracy(task)) and d["mean_b"] == 1.0
        assert 0 <= d["lo"] <= d["diff"] <= d["hi"] <= 1
    assert "MATH-500" in printed and "+60.00" in printed


# --- data resolution, CLI errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "files,task,want",
    [
        (
            ["finqa/test_100.json", "finqa/train_100.json", "finqa/example_predictions.json"],
            "finqa",
            "finqa/test_100.json",
        ),  # test split first
        (["finqa/dev.json", "finqa/train.json"], "finqa", "finqa/dev.json"),  # no test split: dev
        (["ccc/a.jsonl"], "ccc", "ccc/a.jsonl"),  # a single CCC file, whatever its name
        (["ccc/test.jsonl", "ccc/train.jsonl"], "ccc", "ccc/test.jsonl"),  # the test file among several
    ],
)
def test_data_file_resolution(tmp_path: Path, files, task, want):
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("[]")
    assert resolve_data(task, tmp_path, {}) == tmp_path / want


@pytest.mark.parametrize(
    "files,task,message",
    [
        (["ccc/a.jsonl", "ccc/b.jsonl"], "ccc", "several files match"),  # ambiguous: the user must choose
        ([], "math500", "no data file"),  # nothing there
    ],
)
def test_data_file_resolution_errors(tmp_path: Path, files, task, message):
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    with pytest.raises(DataError, match=message):
        resolve_data(task, tmp_path, {})


@pytest.mark.parametrize(
    "args,message",
    [
        (["--tasks", "nosuch"], "no eval settings for task 'nosuch'"),  # unknown task
        (["--data", "cflue=/nonexistent.json", "--tasks", "cflue"], "no such file"),  # bad --data path
    ],
)
def test_cli_errors_are_clear(data: Path, tmp_path: Path, capsys, args, message):
    with FakeOpenAI() as srv:
        argv = [
            "eval",
            "--base-url",
            srv.base_url,
            "--model",
            "m",
            "--data-dir",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--quiet",
            *args,
        ]
        assert cli(argv) == 2
    assert message in capsys.readouterr().err


def test_rescore_of_a_task_never_run_is_refused(tmp_path: Path, capsys):
    assert cli(["eval", "--rescore", "--out", str(tmp_path / "empty"), "--tasks", "cflue", "--quiet"]) == 2
    assert "never run" in capsys.readouterr().err


def test_rerun_without_n_keeps_the_runs_n(data: Path, tmp_path: Path):
    script = Script(data, tasks=("math500",), n=2)
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, tmp_path / "run", "--n", "2", tasks=("math500",))) == 0
        sent = len(srv.requests)
        assert cli(eval_args(srv, data, tmp_path / "run", tasks=("math500",))) == 0
        assert len(srv.requests) == sent == 10  # the re-run found all 5 x 2 samples done
    s = json.loads((tmp_path / "run" / "summary.json").read_text())["tasks"]["math500"]
    assert (s["k"], s["samples"]) == (2, 10) and s["accuracy"] == pytest.approx(script.accuracy("math500"))


def test_bad_record_names_file_line_and_field(data: Path, tmp_path: Path, capsys):
    (data / "math500" / "test.jsonl").write_text(
        '{"problem": "1+1?", "answer": "2", "unique_id": "a"}\n{"problem": "x"}\n'
    )
    with FakeOpenAI() as srv:
        assert cli(eval_args(srv, data, tmp_path / "r", tasks=("math500",))) == 2
    err = capsys.readouterr().err
    assert "test.jsonl:2" in err and "answer" in err


# --- statistics -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n,c,k,want",
    [
        (5, 0, 1, 0.0),  # nothing right
        (5, 5, 3, 1.0),  # everything right
        (4, 1, 1, 0.25),  # pass@1 is the fraction right
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2)
        (3, 1, 3, 1.0),  # k = n with one right
    ],
)
def test_pass_at_k_item(n, c, k, want):
    assert stats.pass_at_k_item(n, c, k) == pytest.approx(want)


def test_bootstrap_ci_covers_the_mean_and_narrows_with_n():
    small = [1.0, 0.0] * 10
    large = [1.0, 0.0] * 1000
    lo_s, hi_s = stats.bootstrap_ci(small)
    lo_l, hi_l = stats.bootstrap_ci(large)
    assert lo_s < 0.5 < hi_s and lo_l < 0.5 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5  # about 1/sqrt(100) as wide
    assert stats.bootstrap_ci(large) == (lo_l, hi_l)  # fixed seed: reproducible
    assert stats.bootstrap_ci([]) is None and stats.bootstrap_ci([0.7]) == (0.7, 0.7)


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 1.0, 1.0] * 100,  # 0/1 scores
        [0.0, 0.25, 0.5, 1.0, 1.0] * 60,  # mean@4 item scores
    ],
)
def test_bootstrap_by_counts_matches_bootstrap_by_indices(monkeypatch, values):
    fast = stats.bootstrap_ci(values, n_boot=20_000)
    monkeypatch.setattr(stats, "_MAX_LEVELS", 0)  # force drawing item indices
    slow = stats.bootstrap_ci(values, n_boot=20_000)
    assert fast == pytest.approx(slow, abs=0.01)


@pytest.mark.parametrize(
    "a,b,diff,significant",
    [
        ([0, 1] * 50, [1, 1] * 50, 0.5, True),  # B fixes half the items
        ([0, 1] * 50, [1, 0] * 50, 0.0, False),  # same accuracy, different items
        ([1] * 10, [1] * 10, 0.0, False),  # identical
    ],
)
def test_paired_bootstrap(a, b, diff, significant):
    d = stats.paired_bootstrap(a, b)
    assert d.diff == pytest.approx(diff) and d.lo <= d.diff <= d.hi
    assert (d.p < 0.05) == significant


def test_paper_rows_match_upstream_and_average_over_subsets():
    row = paper.PAPER_ROWS["DianJin-R1-7B"]
    assert (row["cflue"], row["finqa"], row["ccc"], row["math500"], row["gpqa"]) == (80.32, 77.72, 94.50, 76.60, 37.54)
    for model, r in paper.PAPER_ROWS.items():  # the published average is the mean of the five, to rounding
        mean = sum(r[t] for t in paper.PAPER_TASKS) / 5
        assert mean == pytest.approx(paper.PUBLISHED_AVG_ERRATA.get(model, r["avg"]), abs=0.01), model
    assert paper.paper_average(paper.PAPER_ROWS["DeepSeek-V3"], paper.PAPER_TASKS) == pytest.approx(
        69.326
    )  # not the misprint
    assert paper.paper_average(row, ["cflue", "ccc"]) == pytest.approx((80.32 + 94.50) / 2)


@pytest.mark.realdata
def test_real_records_scored_right_when_answered_with_the_reference(real_data: Path, tmp_path: Path):
    tasks = ("cflue", "finqa", "math500")
    replies = {}
    for task in tasks:
        t = scoring_task(task)
        for u in build_units(task, resolve_data(task, real_data, {}), 1, 40):
            replies[t.messages(u.example)[-1]["content"]] = (
                f"<think>.</think><answer>\\boxed{{{t.reference(u.example)}}}</answer>"
            )
    with FakeOpenAI(script=lambda req: replies[last_user(req)]) as srv:
        assert (
            cli(
                [
                    "eval",
                    "--base-url",
                    srv.base_url,
                    "--model",
                    "m",
                    "--tasks",
                    ",".join(tasks),
                    "--data-dir",
                    str(real_data),
                    "--out",
                    str(tmp_path / "run"),
                    "--limit",
                    "40",
                    "--quiet",
                ]
            )
            == 0
        )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for task in tasks:
        assert summary["tasks"][task]["accuracy"] == 1.0 and summary["tasks"][task]["n"] == 40, task


@pytest.mark.realdata
def test_real_files_resolve_and_expand(real_data: Path):
    assert resolve_data("finqa", real_data, {}).name == "test_100.json"
    units = build_units("cflue", resolve_data("cflue", real_data, {}), 2, 50)
    assert len(units) == 100 and len({u.item for u in units}) == 50
    assert len(build_units("math500", resolve_data("math500", real_data, {}), 1, None)) == 500
