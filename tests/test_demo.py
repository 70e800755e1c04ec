"""`dianjin demo`: the whole pipeline in one command.

The end-to-end test runs every stage for real with a smaller config than recipes/demo.yaml: the
synthetic FinQA- and CCC-style sets, the offline data build, a tiny model, `dianjin eval` of a local
model three times (in-process batches), TRL SFT and GRPO (LoRA) in child processes, mining, the LoRA
merge and the report. It checks each stage's outputs, the format rate after SFT, the
GRPO reward curve, the report in Chromium, and that a re-run reuses every stage. The other tests
check the stage graph (what a config change re-runs), config errors and the real-data slicing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser import browse, needs_chromium, page_errors

from dianjin import answer as fmt
from dianjin.config import ConfigError, load_config
from dianjin.demo import STAGE_NAMES, DemoConfig, check_config, fingerprints, main, run
from dianjin.files import read_jsonl
from dianjin.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
DEMO_YAML = ROOT / "recipes" / "demo.yaml"
# The CI config: the demo restricted to CCC-style dialogues, whose reference reasoning (one rule at a
# time, then the verdict) a 2-layer model learns in a few hundred steps; recipes/demo.yaml adds CFLUE,
# FinQA and FinCalc and trains twice as long.
SMALL = [
    "tiny={hidden: 64, layers: 2}",
    "sets.train={ccc: 300}",
    "sets.rl={ccc: 8}",
    "sets.eval={ccc: 16}",
    "sft.config.max_steps=700",
    "sft.config.save_steps=350",
    "sft.config.sample_every=350",
    "mine.config.k=4",
    "grpo.config.max_steps=3",
    "grpo.config.save_steps=3",
    "grpo.config.num_generations=4",
    "grpo.config.per_device_train_batch_size=16",
    "grpo.config.max_completion_length=320",
    "eval.max_tokens=384",
]


# The end-to-end tests share one pipeline run (~3 minutes on 2 cores): the first one pays for it.
E2E_SLOW = pytest.mark.slow
E2E_TIMEOUT = pytest.mark.timeout(1200)  # the demo fixture takes ~300 s on 2 quiet cores


def small_config(out: Path, *more: str) -> DemoConfig:
    return load_config(DemoConfig, DEMO_YAML, [f"output_dir={out}", *SMALL, *more])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    run(small_config(out))
    return out


# --- end to end ------------------------------------------------------------------------------------------
@E2E_SLOW
@E2E_TIMEOUT
def test_every_stage_wrote_valid_outputs(demo: Path):
    records = {n: json.loads((demo / "stages" / f"{n}.json").read_text()) for n in STAGE_NAMES}
    assert all(r["seconds"] > 0 for r in records.values())
    # sets: the three splits in the real schemas, loadable by the task loaders, disjoint
    files = records["sets"]["result"]["files"]
    assert {split: sorted(f) for split, f in files.items()} == {"eval": ["ccc"], "rl": ["ccc"], "train": ["ccc"]}
    questions = {
        split: {ex["question"] for t, p in f.items() for ex in get_task(t).load(p)} for split, f in files.items()
    }
    assert not questions["eval"] & (questions["train"] | questions["rl"])
    assert len(read_jsonl(demo / "sets" / "rl.jsonl")) == 8
    # data: SFT rows in the strict format, from the reference teacher
    sft_rows = read_jsonl(demo / "data" / "sft.jsonl")
    assert len(sft_rows) > 250 and all(r["teacher"] == "reference" for r in sft_rows)
    assert all(fmt.parse_strict(r["messages"][-1]["content"], get_task(r["task"]).boxed).ok for r in sft_rows)
    # model, SFT final model, merged model: loadable HF directories
    for d in ("model", "sft/final", "merged"):
        assert (demo / d / "config.json").exists() and list((demo / d).glob("*.safetensors")), d
    assert (demo / "grpo" / "final" / "adapter_config.json").exists()  # LoRA: merged by the merge stage
    assert records["merge"]["result"]["from"] == "lora"
    # mining: every candidate scored
    mine = json.loads((demo / "mine" / "summary.json").read_text())
    assert len(read_jsonl(demo / "mine" / "mine_log.jsonl")) == 8 and mine
    # evaluations: every eval item answered and scored, no failed request
    for name in ("eval_base", "eval_sft", "eval_grpo"):
        summary = json.loads((demo / name / "summary.json").read_text())
        assert {t: s["n"] for t, s in summary["tasks"].items()} == {"ccc": 16}, name
        assert all(s["errors"] == 0 for s in summary["tasks"].values()), name
    # the report and the one-screen summary
    assert (demo / "report" / "index.html").exists() and (demo / "report" / "report.md").exists()
    s = json.loads((demo / "summary.json").read_text())
    assert list(s["evaluations"]) == ["before training", "after SFT", "after GRPO"]
    assert set(s["stages"]) == set(STAGE_NAMES) and s["report"] == str(demo / "report" / "index.html")
    assert "after GRPO" in (demo / "summary.md").read_text()


@E2E_SLOW
@E2E_TIMEOUT
def test_sft_teaches_the_format(demo: Path):
    points = json.loads((demo / "summary.json").read_text())["learning"]["points"]
    assert points["before training"]["format_rate"]["value"] == 0.0  # a random model never writes the format
    assert points["after SFT"]["format_rate"]["value"] > 0.9, points["after SFT"]


@E2E_SLOW
@E2E_TIMEOUT
def test_summary_gives_cis_and_paired_steps(demo: Path):
    learning = json.loads((demo / "summary.json").read_text())["learning"]
    for label, p in learning["points"].items():  # every point: value, n, 95% CI around the value
        for m in ("format_rate", "accuracy"):
            lo, hi = p[m]["ci95"]
            assert p[m]["n"] == 16 and lo <= p[m]["value"] <= hi, (label, m)
    sft = learning["steps"]["SFT - base"]["format_rate"]  # format 0 -> > 0.9 on 16 questions: far above noise
    assert sft["n"] == 16 and sft["lo"] > 0 and sft["verdict"] == "helps"
    assert set(learning["steps"]) == {"SFT - base", "GRPO - SFT"}
    md = (demo / "summary.md").read_text()
    assert "| SFT - base |" in md and "| GRPO - SFT |" in md and "95% bootstrap CIs" in md
    floor = json.loads((demo / "summary.json").read_text())["guessing_floor"]  # beside the points: guessing
    assert floor["n"] == 16 and 0 < floor["value"] < 1 and "| guessing (uniform over options) |" in md


@E2E_SLOW
@E2E_TIMEOUT
def test_grpo_reward_curve_is_recorded(demo: Path):
    rows = [r for r in read_jsonl(demo / "grpo" / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(0.0 <= r["reward"] <= 2.0 for r in rows)  # format + accuracy, each 0/1
    assert all("format_rate" in r and "kl" in r for r in rows)
    g = json.loads((demo / "summary.json").read_text())["grpo"]
    assert g["steps"] == 3 and g["reward"]["points"] == 3
    assert (demo / "report" / "curve_reward.png").exists()


@E2E_SLOW
@E2E_TIMEOUT
@needs_chromium
def test_report_opens_in_chromium(demo: Path, tmp_path: Path):
    dom, console = browse((demo / "report" / "index.html").as_uri(), tmp_path, "--dump-dom")
    assert page_errors(dom, console) == []


@E2E_SLOW
@E2E_TIMEOUT
def test_rerun_reuses_every_stage(demo: Path, capsys: pytest.CaptureFixture[str]):
    before = {n: (demo / "stages" / f"{n}.json").read_text() for n in STAGE_NAMES}
    t0 = time.time()
    run(small_config(demo))
    assert time.time() - t0 < 60
    assert {n: (demo / "stages" / f"{n}.json").read_text() for n in STAGE_NAMES} == before
    out = capsys.readouterr().out
    assert out.count("reused") == len(STAGE_NAMES) and "after SFT" in out
    log = read_jsonl(demo / "metrics.jsonl")  # one row per stage per invocation, appended
    assert [(r["stage"], r["reused"]) for r in log] == [(n, False) for n in STAGE_NAMES] + [
        (n, True) for n in STAGE_NAMES
    ]


@E2E_SLOW
@E2E_TIMEOUT
def test_redo_moves_the_old_output_aside_and_runs_again(demo: Path):
    before = {n: (demo / "stages" / f"{n}.json").read_text() for n in STAGE_NAMES}
    run(small_config(demo), redo="report")  # the last stage: nothing after it
    after = {n: (demo / "stages" / f"{n}.json").read_text() for n in STAGE_NAMES}
    assert [n for n in STAGE_NAMES if before[n] != after[n]] == ["report"]
    stale = list((demo / "stale").glob("report-*/report/index.html"))
    assert len(stale) == 1 and (demo / "report" / "index.html").exists()


# --- the stage graph ----------------------------------------------------------------------------------------
AFTER_SFT = {"sft", "eval_sft", "mine", "grpo", "merge", "eval_grpo", "report"}


@pytest.mark.parametrize(
    "override,rerun",
    [
        ("eval.max_tokens=100", {"eval_base", "eval_sft", "eval_grpo", "report"}),  # evaluation only
        ("sft.config.max_steps=5", AFTER_SFT),  # SFT and everything built on it
        ("grpo.config.max_steps=5", {"grpo", "merge", "eval_grpo", "report"}),  # not the SFT model or its eval
        ("min_mined=1", {"grpo", "merge", "eval_grpo", "report"}),  # which rows GRPO trains on
        ("mine.config.k=2", {"mine", "grpo", "merge", "eval_grpo", "report"}),  # mining feeds GRPO
        ("tiny.hidden=32", set(STAGE_NAMES) - {"sets", "data"}),  # a new base model: all but the data
        ("sets.seed=3", set(STAGE_NAMES)),  # new data: everything
        (
            "launcher=[torchrun]",
            {"sft", "eval_sft", "mine", "grpo", "merge", "eval_grpo", "report"},
        ),  # how training runs
        (
            "model=/models/Qwen2.5-0.5B-Instruct",
            set(STAGE_NAMES) - {"sets", "data"},
        ),  # a given model instead of the tiny one
        ("output_dir=elsewhere", set()),  # where it runs is not part of any stage
        ("cpu_malloc=tcmalloc", set()),  # the allocator changes speed, not results
        ("grpo.config.learning_rate=5e-4", set()),  # the same value as the recipe's 5.0e-4, written another way
        ("sft.recipe=recipes/tiny_sft.yaml", AFTER_SFT),  # a recipe file's keys count, not just its name
    ],
)
def test_a_config_change_reruns_its_stage_and_those_after(tmp_path: Path, override: str, rerun: set[str]):
    base = fingerprints(small_config(tmp_path))
    changed = fingerprints(small_config(tmp_path, override))
    assert {n for n in STAGE_NAMES if base[n] != changed[n]} == rerun


# --- config errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override,message",
    [
        ("sft.config.no_such_key=1", "no_such_key"),  # a typo in a stage's command config
        ("grpo.recipe=recipes/missing.yaml", "missing.yaml"),  # a recipe that is not there
        ("sets.eval={math500: 5}", "no sets.data_dir"),  # no synthetic MATH-500: needs sets.data_dir
        ("sets.data_dir=/nonexistent", None),  # (filled in below) a data dir without the task's file
        ("eval.tasks=[gpqa]", "gpqa"),  # an eval task without an eval split
        ("cpu_malloc=mimalloc", "cpu_malloc: 'mimalloc' is not an allocator; known: glibc"),  # not in the registry
        ("cpu_malloc=true", "cpu_malloc: expected str"),  # the old boolean form
    ],
)
def test_bad_configs_fail_before_anything_runs(tmp_path: Path, override: str, message: str | None):
    more = [override]
    if message is None:
        more, message = [override, "sets.eval={math500: 5}"], "no file for them under /nonexistent"
    with pytest.raises(ConfigError, match=message):
        check_config(small_config(tmp_path, *more))


def test_cli_reports_errors_and_unknown_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main([str(DEMO_YAML), f"output_dir={tmp_path}", "--redo", "nope"]) == 2
    assert "--redo nope: no such stage" in capsys.readouterr().err
    assert not (tmp_path / "stages").exists()


def test_the_paper_scale_config_checks_and_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from dianjin.data.synthetic import write_demo_sets

    data = tmp_path / "data"  # the layout the config expects: CFLUE, FinQA, MATH-500, GPQA files
    write_demo_sets(data, n_cflue=4, n_finqa=4, n_ccc=0)
    (data / "math500").mkdir()
    (data / "math500" / "test.jsonl").write_text('{"problem": "1+1?", "answer": "2", "unique_id": "a"}\n')
    (data / "gpqa").mkdir()
    (data / "gpqa" / "gpqa_diamond.csv").write_bytes((ROOT / "tests" / "assets" / "gpqa_sample.csv").read_bytes())
    out_dir = tmp_path / "run"
    args = [
        str(ROOT / "recipes" / "pipeline_qwen2.5_7b.yaml"),
        f"output_dir={out_dir}",
        f"sets.data_dir={data}",
        "--dry-run",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert all(f" {n} " in out for n in STAGE_NAMES) and out.count("to do") == len(STAGE_NAMES)
    assert not out_dir.exists() or not list(out_dir.iterdir())  # a dry run writes nothing


# --- real files: disjoint slices in the file's own format ---------------------------------------------------
def test_real_files_are_sliced_eval_first(tmp_path: Path):
    from dianjin.data.synthetic import write_demo_sets
    from dianjin.demo import Demo, stage_sets

    write_demo_sets(tmp_path / "data", n_cflue=30, n_finqa=12, n_ccc=0, seed=9)  # stands in for ../shared/data
    cfg = small_config(
        tmp_path / "run",
        f"sets.data_dir={tmp_path / 'data'}",
        "sets.train={cflue: 20, finqa: 6}",
        "sets.rl={cflue: 4}",
        "sets.eval={cflue: 6, finqa: 6, ccc: 3}",
    )
    result = stage_sets(Demo(cfg))
    assert result["sizes"] == {
        "eval": {"ccc": 3, "cflue": 6, "finqa": 6},
        "rl": {"cflue": 4},
        "train": {"cflue": 20, "finqa": 6},
    }
    assert sorted(result["real"]) == ["cflue", "finqa"]  # no CCC file there: the synthetic set stands in
    whole = json.loads((tmp_path / "data" / "cflue" / "knowledge.json").read_text())
    parts = [json.loads(Path(result["files"][s]["cflue"]).read_text()) for s in ("eval", "rl", "train")]
    assert parts[0] + parts[1] + parts[2] == whole  # eval, then RL, then train: a slice each, nothing shared


@pytest.mark.realdata
def test_real_data_dir_gives_real_cflue_and_finqa(real_data: Path, tmp_path: Path):
    from dianjin.demo import Demo, stage_sets

    cfg = load_config(DemoConfig, DEMO_YAML, [f"output_dir={tmp_path}", f"sets.data_dir={real_data}"])
    check_config(cfg)
    result = stage_sets(Demo(cfg))
    assert sorted(result["real"]) == ["cflue", "finqa"]  # fincalc is generated, CCC was never released
    assert result["sizes"]["eval"]["cflue"] == 24 and result["sizes"]["train"]["cflue"] == 1000
    assert 0 < result["sizes"]["train"]["finqa"] <= 500  # what the file has left after eval and RL


def test_a_changed_real_file_reruns_everything(tmp_path: Path):
    from dianjin.data.synthetic import write_demo_sets

    paths = write_demo_sets(tmp_path / "data", n_cflue=8, n_finqa=0, n_ccc=0)
    cfg = small_config(
        tmp_path / "run",
        f"sets.data_dir={tmp_path / 'data'}",
        "sets.train={cflue: 4}",
        "sets.rl={}",
        "sets.eval={cflue: 4}",
    )
    before = fingerprints(cfg)
    paths["cflue"].write_text(paths["cflue"].read_text().replace("A", "B", 1))  # same name, new content
    after = fingerprints(cfg)
    assert {n for n in STAGE_NAMES if before[n] != after[n]} == set(STAGE_NAMES)
