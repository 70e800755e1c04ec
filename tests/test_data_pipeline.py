"""Tests of the data pipeline (dianjin.data): the whole build against the loopback OpenAI server
(tests/fake_openai.py) with scripted teacher and judge answers (tests/datakit.py), under injected
faults and SIGKILL; the offline recipe with no server; the source loaders (released alpaca files,
generic JSONL); reasoning/answer splitting and target rendering.

    .venv/bin/python -m pytest -q tests/test_data_pipeline.py
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datakit import CFLUE, FINCALC, VIOLATING_RULES, config, rows, script, without_attempts, write_config, write_data
from fake_openai import FakeOpenAI, FaultPlan, last_user

from dianjin import answer as fmt
from dianjin.config import load_config
from dianjin.data import build as build_mod
from dianjin.data.convert import parse_question
from dianjin.data.distill import render_target, split_response
from dianjin.data.filter import parse_decision
from dianjin.data.sources import load_generic, load_released
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.ccc import DEFAULT_RULES
from dianjin.tasks.cflue import make_id, parse_choices

ROOT = Path(__file__).resolve().parents[1]


def cflue_id(i: int) -> str:
    return make_id(CFLUE[i]["question"], parse_choices(CFLUE[i]["choices"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, data) -> tuple[Path, dict]:
    """The fault-free build, and the server's statistics."""
    out = tmp_path_factory.mktemp("clean")
    with FakeOpenAI(script=script) as srv:
        cfg = write_config(out.parent / "clean.yaml", config(srv.base_url, out, data))
        assert build_mod.main(["build", str(cfg)]) == 0
        stats = {"received": srv.stats()["received"], "duplicates": srv.duplicates(), "errors": srv.script_errors}
        # a second run of the same command: everything is skipped or cached, nothing is sent again
        before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
        assert build_mod.main(["build", str(cfg)]) == 0
        stats["rerun_received"] = srv.stats()["received"] - stats["received"]
        stats["rerun_same"] = all((out / n).read_bytes() == b for n, b in before.items() if n != "ledger_history.jsonl")
    return out, stats


# --- the whole build, fault-free ------------------------------------------------------------------
def test_build_routes_every_item(clean):
    out, stats = clean
    assert stats["errors"] == [] and stats["duplicates"] == {}
    sft = {r["id"]: r for r in rows(out, "sft.jsonl")}
    rl = {r["id"]: r for r in rows(out, "rl.jsonl")}
    ids = [cflue_id(i) for i in range(len(CFLUE))]
    want_sft = {
        ids[0]: 1,
        ids[1]: 2,
        f"{ids[3]}-oe": 1,
        "fq-1": 1,
        "g-1": 1,
        "c-1": 1,
        "c-2": 1,
        FINCALC[0]["id"]: 1,
        FINCALC[1]["id"]: 1,
        "r-2": 0,
    }
    want_rl = {ids[2]: 3, ids[6]: 3, "fq-2": 3, "c-3": 3}
    generic_mcq = [i for i in sft if i.startswith("jsonl-")]
    released = [i for i in sft if i.startswith("cflue-r1-")]
    assert len(generic_mcq) == 1 and len(released) == 1  # generated ids: the generic MCQ, the released row
    assert {i: r["attempts"] for i, r in sft.items() if i not in generic_mcq + released} == want_sft
    assert {i: r["attempts"] for i, r in rl.items()} == want_rl
    assert ids[4] not in sft | rl and ids[5] not in sft | rl  # filtered: too short, ambiguous
    assert ids[3] not in sft | rl  # converted, so not also an MCQ item
    assert stats["rerun_received"] == 0 and stats["rerun_same"]


def test_sft_rows_are_what_eval_sends_and_reward_accepts(clean, data):
    out, _ = clean
    examples = {ex["id"]: ex for ex in rows(out, "items.jsonl")}
    for row in rows(out, "sft.jsonl"):
        prompt, target = row["messages"][:-1], row["messages"][-1]["content"]
        task = get_task(row["task"])
        assert fmt.parse_strict(target, require_boxed=task.boxed).ok, row["id"]
        if row["teacher"] == "released":
            continue
        ex = examples[row["id"]]
        assert prompt == task.messages(ex)  # SFT trains on exactly the prompt eval/RL send
        assert row["teacher"] == ("ccc-agents:fake-judge+refine:fake-judge" if ex["task"] == "ccc" else "fake-teacher")
        if task.name != "cflue_oe":  # the judge-free reward of the target is 1
            assert task.score(target, ex, mode="reward").reward == 1.0, row["id"]
    oe = next(r for r in rows(out, "sft.jsonl") if r["task"] == "cflue_oe")
    assert oe["source_id"] == cflue_id(3) and "中国人民银行" in oe["answer"]
    for r in rows(out, "rl.jsonl"):
        assert r["prompt"] == get_task(r["task"]).messages(examples[r["id"]]) and "gold" in r
        assert "question" in r["extra"] and "id" not in r["extra"]


@pytest.mark.parametrize(
    "item, reason",
    [
        (2, "answer: predicted 'A', gold B"),  # q3: wrong every time
        (6, "reasoning check: inconsistent with the analysis"),  # q7: judge rejects the reasoning
    ],
)
def test_distill_log_keeps_each_attempt(clean, item, reason):
    out, _ = clean
    rec = next(r for r in rows(out, "distill.log.jsonl") if r["id"] == cflue_id(item))
    assert [t["sample"] for t in rec["tries"]] == [0, 1, 2]
    assert all(
        t["reason"] == reason and t["finish_reason"] == "stop" and t["completion_tokens"] > 0 for t in rec["tries"]
    )


def test_ccc_log_counts_agent_calls(clean):
    out, _ = clean
    logs = {r["id"]: r for r in rows(out, "ccc.log.jsonl")}
    n_rules = len(DEFAULT_RULES)
    assert logs["c-1"]["calls"] == n_rules + 2  # agents + auditor + refine, one attempt
    assert logs["c-3"]["calls"] == 3 * (n_rules + 2) and logs["c-3"]["pool"] == "rl"
    first = logs["c-1"]["tries"][0]
    assert [e["agent"] for e in first["log"]][-1] == "auditor" and first["workflow_verdict"] == "violation"
    assert {e["name"] for e in first["log"][:-1] if e["verdict"] == "violation"} == VIOLATING_RULES["c-1"]
    assert json.loads((out / "build.json").read_text())["stages"]["ccc"]["ccc_calls_per_item"] > n_rules


def test_ledger_is_saved_per_stage(clean):
    out, _ = clean
    history = rows(out, "ledger_history.jsonl")[0]  # the first run's ledger, kept when the re-run started
    stages = {(r["stage"], r["model"]) for r in history["rows"]}
    assert {
        ("distill", "fake-teacher"),
        ("verify", "fake-judge"),
        ("convert", "fake-judge"),
        ("filter", "fake-judge"),
        ("ccc_agents", "fake-judge"),
        ("ccc_refine", "fake-judge"),
        ("reasoning_check", "fake-judge"),
    } <= stages
    distill = next(r for r in history["rows"] if r["stage"] == "distill")
    assert distill["cost"] == pytest.approx((distill["prompt_tokens"] * 1.0 + distill["completion_tokens"] * 2.0) / 1e6)
    rerun = json.loads((out / "ledger.json").read_text())
    assert rerun["total"]["calls"] == 0  # the re-run paid for nothing


# --- faults ----------------------------------------------------------------------------------------
def test_faults_do_not_change_the_output(clean, data, tmp_path):
    out, _ = clean
    faults = FaultPlan(
        kinds=("429", "500", "timeout", "malformed", "length"), fraction=0.2, seed=0, hang=1.0, retry_after=0.02
    )
    with FakeOpenAI(script=script, faults=faults) as srv:
        cfg = write_config(tmp_path / "f.yaml", config(srv.base_url, tmp_path / "out", data, timeout=0.5))
        assert build_mod.main(["build", str(cfg)]) == 0
        kinds = srv.stats()["faults"]
        assert srv.duplicates() == {} and srv.script_errors == []
    assert set(kinds) == {"429", "500", "timeout", "malformed", "length"}, kinds
    for name in ("sft.jsonl", "rl.jsonl"):
        got, want = rows(tmp_path / "out", name), rows(out, name)
        assert without_attempts(got) == without_attempts(want)
        # a truncated answer is a failed attempt (spec), so it can only add attempts, never remove them
        extra = [g["attempts"] - w["attempts"] for g, w in zip(got, want)]
        assert min(extra) >= 0 and sum(1 for e in extra if e) <= kinds["length"]
    tries = [t for r in rows(tmp_path / "out", "distill.log.jsonl") for t in r["tries"]]
    truncated = [t["reason"] for t in tries if t["finish_reason"] == "length"]
    assert truncated and set(truncated) == {"truncated at max_tokens"}  # the fault hit the teacher, as a failed attempt


# --- SIGKILL mid-run --------------------------------------------------------------------------------
def cached(out: Path) -> int:
    db = out / "cache.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_rerun_loses_and_repeats_nothing(clean, data, tmp_path):
    out_clean, _ = clean
    out = tmp_path / "out"
    with FakeOpenAI(script=script, answer_limit=40, delay=0.005) as srv:
        cfg = write_config(tmp_path / "k.yaml", config(srv.base_url, out, data))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dianjin.data.build", "build", str(cfg), "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            srv.wait_answered(40, timeout=30)
            deadline = time.monotonic() + 10
            while cached(out) < 40 and time.monotonic() < deadline:  # every answer sent is in the cache
                time.sleep(0.01)
            logged = sum(len(rows(out, p.name)) for p in out.glob("*.log.jsonl"))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        assert cached(out) == 40 and logged > 0  # killed mid-run, after some records
        time.sleep(0.2)  # the server sees the connections close
        srv.resume()
        assert build_mod.main(["build", str(cfg)]) == 0
        assert srv.duplicates() == {}  # no request was answered twice
    for name in ("sft.jsonl", "rl.jsonl", "items.jsonl"):
        assert rows(out, name) == rows(out_clean, name), name
    for p in out.glob("*.log.jsonl"):
        ids = [r["id"] for r in rows(out, p.name)]
        assert len(ids) == len(set(ids)), p.name  # nothing recorded twice


# --- offline ----------------------------------------------------------------------------------------
def test_offline_recipe_runs_without_any_server(data, tmp_path, monkeypatch):
    def no_client(*a, **kw):
        raise AssertionError("the offline build must not create an LLM client")

    monkeypatch.setattr(build_mod.LLMClient, "__init__", no_client)
    sources = (
        "sources=[{{task: fincalc, n: 6, seed: 1}}, {{task: cflue, path: {}}}, {{task: finqa, path: {}}}, "
        "{{task: ccc, path: {}}}]".format(data / "cflue.json", data / "finqa.json", data / "ccc.jsonl")
    )
    (tmp_path / "eval.json").write_text(json.dumps(CFLUE[:1], ensure_ascii=False), encoding="utf-8")
    evals = "decontam.eval_sets=[{task: cflue, path: %s}]" % (tmp_path / "eval.json")
    assert (
        build_mod.main(["build", str(ROOT / "recipes" / "data_offline.yaml"), f"output_dir={tmp_path}", sources, evals])
        == 0
    )
    sft, rl = rows(tmp_path, "sft.jsonl"), rows(tmp_path, "rl.jsonl")
    assert {r["teacher"] for r in sft} == {"reference"}
    by_id = {r["id"]: r for r in sft}
    assert "Step 1: subtract(90, 60) = 90 - 60 = 30" in by_id["fq-2"]["reasoning"]
    assert "Step 2: divide(#0, 60) = 30 ÷ 60 = 0.5" in by_id["fq-2"]["reasoning"]
    assert "最终结果为：客服违规" in by_id["c-1"]["reasoning"] and "劝阻监管投诉" in by_id["c-1"]["reasoning"]
    assert {r["id"] for r in rl} == {cflue_id(4)}  # the only item without an analysis
    assert not (tmp_path / "cache.sqlite").exists()
    assert cflue_id(0) not in by_id and cflue_id(1) in by_id  # the evaluation item was dropped by decontam
    assert [o["id"] for o in json.loads((tmp_path / "decontam.json").read_text())["overlaps"]] == [cflue_id(0)]
    stages = json.loads((tmp_path / "build.json").read_text())["stages"]
    assert all("skipped" not in stages[s] for s in ("decontam", "export", "stats"))  # the last stages ran
    for r in sft:
        ex = next(e for e in rows(tmp_path, "items.jsonl") if e["id"] == r["id"])
        assert get_task(r["task"]).score(r["messages"][-1]["content"], ex, mode="reward").format_ok


@pytest.mark.realdata
def test_offline_build_on_real_files(real_data, tmp_path):
    """Every real FinQA record's program renders a verified target; CFLUE items with an analysis do too."""
    sources = "sources=[{{task: finqa, path: {}}}, {{task: cflue, path: {}}}]".format(
        real_data / "finqa" / "train_100.json", real_data / "cflue" / "knowledge.json"
    )
    recipe = str(ROOT / "recipes" / "data_offline.yaml")
    assert build_mod.main(["build", recipe, f"output_dir={tmp_path}", sources, "skip=[export, stats]"]) == 0
    sft, rl = rows(tmp_path, "sft.jsonl"), rows(tmp_path, "rl.jsonl")
    assert sum(r["task"] == "finqa" for r in sft) == 100 and all(r["task"] == "cflue" for r in rl)
    log = [r for r in rows(tmp_path, "distill.log.jsonl") if r["pool"] == "rl"]
    assert {t["reason"] for r in log for t in r["tries"]} == {"no reference reasoning"}  # never a failed check


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["teacher=null"], "needs the 'teacher' endpoint"),  # an LLM build without a teacher
        (["filter.nope=1"], "unknown key(s) nope"),  # typo in a key
        (["teacher.api_key_env=DIANJIN_TEST_UNSET_KEY"], "DIANJIN_TEST_UNSET_KEY"),  # key variable not exported
        (["sources=[{task: nosuch, path: x}]"], "unknown task 'nosuch'"),  # unknown source kind
    ],
)
def test_config_errors_name_the_problem(data, tmp_path, capsys, overrides, message):
    cfg = write_config(tmp_path / "c.yaml", config("http://127.0.0.1:9/v1", tmp_path / "out", data))
    assert build_mod.main(["build", str(cfg), *overrides]) == 2
    assert message in capsys.readouterr().err


def test_failed_requests_leave_items_for_a_rerun(data, tmp_path):
    broken = {"on": True}

    def flaky(req: dict) -> dict | str:  # the teacher rejects one prompt (HTTP 400) until "fixed"
        if broken["on"] and "到期利息是多少元" in last_user(req):
            return {"status": 400, "error": "context too long"}
        return script(req)

    cfg = config("http://127.0.0.1:9/v1", tmp_path / "out", data)
    cfg["sources"] = [{"task": "jsonl", "path": str(data / "generic.jsonl")}]
    with FakeOpenAI(script=flaky) as srv:
        cfg["teacher"]["base_url"] = cfg["judge"]["base_url"] = srv.base_url
        path = write_config(tmp_path / "c.yaml", cfg)
        assert build_mod.main(["build", str(path)]) == 1  # incomplete: says so, exit code 1
        report = json.loads((tmp_path / "out" / "build.json").read_text())
        assert report["complete"] is False and report["unfinished"] == {"distill": 1}
        assert [r["task"] for r in rows(tmp_path / "out", "sft.jsonl")] == ["cflue"]
        broken["on"] = False
        assert build_mod.main(["build", str(path)]) == 0
        assert [r["id"] for r in rows(tmp_path / "out", "sft.jsonl")][0] == "g-1"  # source order, not finishing order
        assert srv.duplicates() == {}


@pytest.mark.parametrize(
    "stage, message",
    [
        ("filter", "sources.jsonl is missing: run the 'sources' stage first"),  # stages read the previous file
        ("distill", "items.jsonl is missing: run the 'convert' stage first"),
        ("export", "sft.jsonl is missing: run the 'distill' stage first"),
    ],
)
def test_single_stage_needs_its_input(data, tmp_path, capsys, stage, message):
    cfg = write_config(tmp_path / "c.yaml", config("http://127.0.0.1:9/v1", tmp_path / "out", data))
    assert build_mod.main([stage, str(cfg), "reference_teacher=true"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe, teacher, judge",
    [
        ("data_paper.yaml", "deepseek-reasoner", "gpt-4o"),  # the paper's teacher and judge, keys from the environment
        ("data_offline.yaml", None, None),  # no endpoint at all
    ],
)
def test_recipes_load(recipe, teacher, judge):
    cfg = load_config(build_mod.BuildConfig, ROOT / "recipes" / recipe)
    eps = build_mod.endpoints(cfg)
    assert (eps.get("teacher") and eps["teacher"].model, eps.get("judge") and eps["judge"].model) == (teacher, judge)
    assert cfg.reference_teacher is (teacher is None)
    if teacher:
        assert (eps["teacher"].api_key_env, eps["judge"].api_key_env) == ("DEEPSEEK_API_KEY", "OPENAI_API_KEY")
    text = (ROOT / "recipes" / recipe).read_text(encoding="utf-8")
    assert f"dianjin data build recipes/{recipe}" in text  # the exact command is in the top comment


# --- loaders --------------------------------------------------------------------------------------
GOOD = {"instruction": "题目：1+1=？", "output": "<think>计算。</think><answer>\\boxed{A}</answer>"}


@pytest.mark.parametrize(
    "bad, field, problem",
    [
        ({"output": GOOD["output"]}, "instruction", "got nothing"),  # instruction missing
        ({**GOOD, "output": 3}, "output", "got int"),  # output not a string
        ({**GOOD, "output": "答案是 \\boxed{A}"}, "output", "expected one think block"),  # no <think>
        ({**GOOD, "output": "<think>a</think><answer>A</answer>"}, "output", "no \\boxed{}"),  # MCQ subset needs a box
        ({**GOOD, "output": "<answer>\\boxed{A}</answer><think>a</think>"}, "output", "out of order"),  # tags reversed
        ({**GOOD, "output": "<think> </think><answer>\\boxed{A}</answer>"}, "output", "empty <think>"),  # no reasoning
        ({**GOOD, "history": [["q", "a"]]}, "history", "multi-turn"),  # LLaMA-Factory history
        ({**GOOD, "input": 5}, "input", "expected a string"),  # input not a string
        ({**GOOD, "id": ["x"]}, "id", "non-empty string"),  # id not a scalar
        ([1, 2], None, "expected a JSON object"),  # not an object
    ],
)
@pytest.mark.parametrize("layout", ["array", "jsonl"])
def test_released_loader_rejects_malformed_rows(tmp_path, bad, field, problem, layout):
    recs = [GOOD, {**GOOD, "instruction": "题目：2+2=？"}, bad]
    body = [json.dumps(r, ensure_ascii=False) for r in recs]
    path = tmp_path / "cflue_mcq.json"
    text = "[\n" + ",\n".join(body) + "\n]\n" if layout == "array" else "\n".join(body) + "\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_released(path)
    assert (e.value.path, e.value.line, e.value.field) == (path, 4 if layout == "array" else 3, field)
    assert problem in str(e.value) and str(path) in str(e.value)
    skipped = load_released(path, strict=False)  # lenient: the two good rows load, the bad one is reported
    assert len(skipped.sft_rows) == 2 and len(skipped.problems) == 1 and f"{path}:" in skipped.problems[0]


@pytest.mark.parametrize(
    "name, score_as, task, boxed_ok",
    [
        ("cflue_oe.json", None, "cflue_oe", "<think>a</think><answer>央行</answer>"),  # OE: no box needed
        ("Fin-qa_SFT.json", None, "finqa", "<think>a</think><answer>\\boxed{3}</answer>"),  # upstream's file name
        ("mine.json", "ccc", "ccc", "<think>a</think><answer>最终结果为：客服违规</answer>"),  # named by score_as
    ],
)
def test_released_loader_picks_the_subset(tmp_path, name, score_as, task, boxed_ok):
    path = tmp_path / name
    path.write_text(json.dumps([{"instruction": "q", "input": "补充", "system": "sys", "output": boxed_ok}]), "utf-8")
    row = load_released(path, score_as).sft_rows[0]
    assert row["task"] == task and row["teacher"] == "released"
    assert row["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q\n补充"},
        {"role": "assistant", "content": boxed_ok},
    ]


def test_released_loader_needs_a_known_subset(tmp_path):
    path = tmp_path / "mystery.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(DataError, match="set score_as"):
        load_released(path)


@pytest.mark.parametrize(
    "rec, score_as, want",
    [
        (
            {"id": 7, "question": "q?", "answer": "42"},
            None,
            {"id": "7", "task": "cflue_oe", "gold": "42"},
        ),  # int id kept
        (
            {"question": "q?", "answer": "b", "choices": {"A": "x", "B": "y"}},
            None,
            {"task": "cflue", "gold": "B"},
        ),  # MCQ
        (
            {"id": "n1", "question": "q?", "answer": 3.5, "context": "c"},
            "finqa",
            {"task": "finqa", "gold": 3.5, "context": "c"},
        ),  # a numeric answer scored as FinQA; context kept
        (
            {"id": "m", "question": "q?", "answer": "A", "choices": ["x", "y"], "analysis": "z"},
            None,
            {"choices": {"A": "x", "B": "y"}, "analysis": "z"},
        ),  # list choices become letters; extra fields kept
    ],
)
def test_generic_jsonl_loader(tmp_path, rec, score_as, want):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    ex = load_generic(path, score_as)[0]
    assert want.items() <= ex.items()
    assert ex["id"] == want.get("id", ex["id"]) and (ex["id"].startswith("jsonl-") or "id" in rec)
    assert load_generic(path, score_as)[0]["id"] == ex["id"]  # stable


@pytest.mark.parametrize(
    "lines, line, field",
    [
        ([{"answer": "1"}], 1, "question"),  # question missing
        ([{"question": "q", "answer": ""}], 1, "answer"),  # empty answer
        ([{"question": "q", "answer": "E", "choices": ["x", "y"]}], 1, "answer"),  # answer not among the options
        ([{"question": "q", "answer": "A", "choices": "nope"}], 1, "choices"),  # choices not a mapping
        (
            [{"id": "a", "question": "q", "answer": "1"}, {"id": "a", "question": "r", "answer": "2"}],
            2,
            "id",
        ),  # duplicate
    ],
)
def test_generic_jsonl_loader_errors(tmp_path, lines, line, field):
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_generic(path)
    assert (e.value.line, e.value.field) == (line, field)


# --- response handling ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, reasoning_content, want",
    [
        ("\\boxed{A}", "想一想", ("想一想", "\\boxed{A}")),  # DeepSeek: reasoning_content field
        ("<think>想</think>答案 \\boxed{A}", None, ("想", "答案 \\boxed{A}")),  # R1 style in the content
        ("想</think><answer>B</answer>", None, ("想", "B")),  # template prefilled <think>
        ("<think>a <answer>x</answer></think><answer>B</answer>", None, ("a x", "B")),  # stray tags stripped
        ("just an answer", None, ("", "just an answer")),  # no reasoning at all
        ("", "r", ("r", "")),  # reasoning but no answer
    ],
)
def test_split_response(content, reasoning_content, want):
    assert split_response(content, reasoning_content) == want


@pytest.mark.parametrize(
    "task, answer, pred, want",
    [
        ("cflue", "选A", "A", "<answer>\n选A\n\\boxed{A}\n</answer>"),  # no box: the prediction is boxed
        ("cflue", "答案 \\boxed{A}", "A", "<answer>\n答案 \\boxed{A}\n</answer>"),  # a box already: kept as is
        (
            "cflue_oe",
            "中国人民银行",
            "中国人民银行",
            "<answer>\n中国人民银行\n</answer>",
        ),  # open answers are never boxed
    ],
)
def test_render_target(task, answer, pred, want):
    target = render_target(get_task(task), "推理", answer, pred)
    assert target.endswith(want) and fmt.parse_strict(target, require_boxed=get_task(task).boxed).ok


@pytest.mark.parametrize(
    "text, want",
    [
        ("理由。\n结论：保留", True),  # keep
        ("理由。\n结论：剔除", False),  # drop
        ("结论：保留……不，结论：剔除", False),  # the last conclusion wins
        ("无法判断", None),  # no conclusion
    ],
)
def test_parse_decision(text, want):
    assert parse_decision(text) is want


@pytest.mark.parametrize(
    "text, want",
    [
        ("<question>请说明货币政策由谁制定？</question>", "请说明货币政策由谁制定？"),  # the block
        ("说明：<question>  </question>", None),  # empty block
        ("没有标签的问题", None),  # no block
    ],
)
def test_parse_question(text, want):
    assert parse_question(text) == want
