"""`dianjin eval run | rescore | compare` (dianjin.eval.cli): a YAML config, key=value overrides and flags
resolve to one EvalConfig (flags over overrides over the file); bad keys are one error line naming the file
and the field; the flag form of the previous release still works, with one deprecation line; `rescore` and
`compare` run end to end on small run directories answered by the loopback fake server."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from evalkit import Script, rows_of, write_data
from fake_openai import FakeOpenAI

from dianjin.cli import COMMANDS
from dianjin.cli import main as cli
from dianjin.eval.cli import rescore_config, run_config
from dianjin.eval.run import EvalConfig

TASKS = ("cflue", "math500")

YAML = """\
output_dir: runs/from_yaml
tasks: [cflue, finqa]
data_dir: data
limit: 3
endpoint: {base_url: "http://yaml:8000/v1", model: yaml-model, concurrency: 4}
judge: {base_url: "https://judge/v1", model: gpt-4o, api_key_env: OPENAI_API_KEY, timeout: 120}
"""


def field(cfg: EvalConfig, dotted: str):
    value = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "eval.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


# --- resolution: YAML < key=value overrides < flags ------------------------------------------------------
# (argv after `dianjin eval run`, with CONFIG standing for the YAML above; fields that must result)
@pytest.mark.parametrize(
    "argv, want",
    [
        # flags alone, as in the previous release: the endpoint gets eval's 900 s timeout, --quiet turns progress off
        (
            [
                "--base-url",
                "http://h:1/v1",
                "--model",
                "m",
                "--tasks",
                "cflue,gpqa",
                "--data-dir",
                "d",
                "--output-dir",
                "o",
                "--quiet",
            ],
            {
                "endpoint.base_url": "http://h:1/v1",
                "endpoint.model": "m",
                "endpoint.timeout": 900.0,
                "endpoint.concurrency": 64,
                "tasks": ["cflue", "gpqa"],
                "data_dir": Path("d"),
                "output_dir": Path("o"),
                "progress": False,
                "judge": None,
                "agents": None,
            },
        ),
        # no --tasks: the paper's five
        (
            ["--base-url", "http://h:1/v1", "--model", "m", "--output-dir", "o"],
            {"tasks": ["cflue", "finqa", "ccc", "math500", "gpqa"], "limit": None, "progress": None},
        ),
        # --out is the old name of --output-dir
        (["--base-url", "http://h:1/v1", "--model", "m", "--out", "old"], {"output_dir": Path("old")}),
        # the YAML alone: paths become Paths, endpoint mappings EndpointConfigs, defaults fill the rest
        (
            ["CONFIG"],
            {
                "output_dir": Path("runs/from_yaml"),
                "tasks": ["cflue", "finqa"],
                "data_dir": Path("data"),
                "limit": 3,
                "endpoint.model": "yaml-model",
                "endpoint.concurrency": 4,
                "endpoint.timeout": 900.0,
                "judge.model": "gpt-4o",
                "judge.timeout": 120,
                "judge.api_key_env": "OPENAI_API_KEY",
                "n": None,
            },
        ),
        # overrides beat the file: a nested key, a list, a scalar
        (
            ["CONFIG", "endpoint.model=other", "tasks=[math500]", "limit=5", "output_dir=elsewhere"],
            {
                "endpoint.model": "other",
                "endpoint.base_url": "http://yaml:8000/v1",
                "tasks": ["math500"],
                "limit": 5,
                "output_dir": Path("elsewhere"),
            },
        ),
        # flags beat overrides, which beat the file; positionals and flags may be mixed
        (
            ["CONFIG", "limit=5", "--limit", "7", "endpoint.model=over", "--model", "flag-model", "--tasks", "gpqa"],
            {"limit": 7, "endpoint.model": "flag-model", "endpoint.concurrency": 4, "tasks": ["gpqa"]},
        ),
        # --concurrency / --timeout / --max-retries set every endpoint's, the YAML's included
        (
            ["CONFIG", "--concurrency", "8", "--timeout", "5", "--max-retries", "0"],
            {
                "endpoint.concurrency": 8,
                "judge.concurrency": 8,
                "endpoint.timeout": 5.0,
                "judge.timeout": 5.0,
                "judge.max_retries": 0,
            },
        ),
        # a judge flag overrides one key of the YAML's judge; the rest stays
        (
            ["CONFIG", "--judge-model", "gpt-4o-mini"],
            {"judge.model": "gpt-4o-mini", "judge.base_url": "https://judge/v1"},
        ),
        # judge=null drops the YAML's judge
        (["CONFIG", "judge=null"], {"judge": None, "endpoint.model": "yaml-model"}),
        # tasks as a comma-separated string (YAML or override), as --tasks takes them
        (["CONFIG", "tasks=cflue,ccc"], {"tasks": ["cflue", "ccc"]}),
        # --data TASK=PATH adds to the YAML's data mapping
        (
            ["CONFIG", "data={cflue: a.json}", "--data", "finqa=b.json"],
            {"data": {"cflue": "a.json", "finqa": "b.json"}},
        ),
        # sampling flags and the system message
        (
            [
                "CONFIG",
                "--temperature",
                "0",
                "--top-p",
                "0.5",
                "--max-tokens",
                "64",
                "--system",
                "be brief",
                "--n",
                "4",
            ],
            {"temperature": 0.0, "top_p": 0.5, "max_tokens": 64, "system": "be brief", "n": 4},
        ),
        # a local model: --engine is local_engine; no endpoint
        (
            ["--model-dir", "m_dir", "--engine", "transformers", "--batch-size", "4", "--output-dir", "o"],
            {"model_dir": Path("m_dir"), "local_engine": "transformers", "batch_size": 4, "endpoint": None},
        ),
        # the agents' endpoint from flags
        (
            ["CONFIG", "--agents-base-url", "http://agents/v1", "--agents-model", "a"],
            {"agents.base_url": "http://agents/v1", "agents.model": "a", "agents.timeout": 900.0},
        ),
    ],
)
def test_run_config_resolves(yaml_file: Path, argv, want):
    cfg = run_config([str(yaml_file) if a == "CONFIG" else a for a in argv])
    assert {k: field(cfg, k) for k in want} == want
    assert not cfg.rescore


def test_rescore_config_never_calls_the_model(yaml_file: Path, tmp_path: Path):
    # the YAML's evaluated endpoint is dropped; its judge stays; --tasks chooses
    cfg = rescore_config([str(yaml_file), "--tasks", "cflue"])
    assert cfg.rescore and cfg.endpoint is None and cfg.judge is not None and cfg.tasks == ["cflue"]
    # without --tasks: every task the run directory holds (eval.json)
    run = tmp_path / "run"
    run.mkdir()
    (run / "eval.json").write_text(json.dumps({"tasks": {"gpqa": {}, "math500": {}}}))
    assert rescore_config(["--output-dir", str(run)]).tasks == ["gpqa", "math500"]


def test_evalconfig_out_is_a_deprecated_alias(tmp_path: Path):
    with pytest.warns(DeprecationWarning, match="output_dir"):
        cfg = EvalConfig(out=tmp_path, tasks=["cflue"])
    assert cfg.output_dir == tmp_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EvalConfig(output_dir=str(tmp_path), tasks=["cflue"]).output_dir == tmp_path  # a str becomes a Path
    with pytest.raises(TypeError, match="output_dir is required"):
        EvalConfig(tasks=["cflue"])


# --- errors: one line naming the file and the field ------------------------------------------------------
# (the YAML's text or an override on top of YAML, what the one error line must say besides the file)
@pytest.mark.parametrize(
    "text, overrides, message",
    [
        (YAML + "bogus: 1\n", [], "unknown key(s) bogus"),  # a key EvalConfig does not have
        (YAML.replace("concurrency: 4", "concurency: 4"), [], "field 'concurency': unknown key"),  # an endpoint's typo
        (YAML.replace("limit: 3", "limit: many"), [], "limit: expected int, got 'many'"),  # a wrong type
        (YAML, ["endpoint.api_key=sk-123"], "never put an API key in a config"),  # a secret in the config
        (YAML, ["judge.model=null"], "judge: base_url and model go together"),  # half an endpoint
        (YAML, ["endpoint.timeout=-1"], "field 'timeout': must be a number of seconds > 0"),  # a bad value
        (YAML, ["rescore=true"], "rescore: use `dianjin eval rescore`"),  # the wrong subcommand
        (YAML.replace("output_dir: runs/from_yaml\n", ""), [], "output_dir is required"),  # no run directory
        ("- a list\n", [], "the top level must be a mapping"),  # not a mapping
    ],
)
def test_bad_config_is_one_line_naming_file_and_field(tmp_path: Path, capsys, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert cli(["eval", "run", str(path), *overrides]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dianjin eval: {path}") and message in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--base-url", "http://h:1/v1", "--output-dir", "o"], "base_url and model go together"),  # no --model
        (["run", "a.yaml", "b.yaml"], "one config file at most"),  # two configs
        (["run", "--base-url", "http://h/v1", "--model", "m", "--output-dir", "o", "--data", "cflue"], "TASK=PATH"),
        (["frobnicate"], "unknown command 'frobnicate'"),  # not a subcommand
    ],
)
def test_misuse_is_reported(capsys, argv, message):
    assert cli(["eval", *argv]) == 2
    assert message in capsys.readouterr().err


def test_registry_and_help(capsys):
    assert COMMANDS["eval"][0] == "dianjin.eval.cli"
    assert cli(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"dianjin eval {c}" in out for c in ("run", "rescore", "compare"))


# --- end to end on small run directories -------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """data/, a/ (`eval run CONFIG.yaml`, scripted: a known share right) and b/ (`eval run` flags, the
    prompts echoed back: hardly anything right), and the script."""
    root = tmp_path_factory.mktemp("runs")
    data = write_data(root / "data")
    script = Script(data, tasks=TASKS)
    with FakeOpenAI(script=script) as srv:
        config = root / "a.yaml"
        config.write_text(
            f"tasks: [{', '.join(TASKS)}]\ndata_dir: {data}\nprogress: false\n"
            f"endpoint: {{base_url: '{srv.base_url}', model: fake-model, timeout: 5}}\n"
        )
        assert cli(["eval", "run", str(config), f"output_dir={root / 'a'}"]) == 0
    with FakeOpenAI() as srv:
        assert (
            cli(
                [
                    "eval",
                    "run",
                    "--base-url",
                    srv.base_url,
                    "--model",
                    "echo",
                    "--tasks",
                    ",".join(TASKS),
                    "--data-dir",
                    str(data),
                    "--output-dir",
                    str(root / "b"),
                    "--quiet",
                ]
            )
            == 0
        )
    return root, script


def test_run_from_yaml_writes_the_run(runs):
    root, script = runs
    summary = json.loads((root / "a" / "summary.json").read_text())
    for task in TASKS:
        assert summary["tasks"][task]["accuracy"] == pytest.approx(script.accuracy(task))
    assert summary["settings"]["model"] == "fake-model"


def test_rescore_subcommand(runs, tmp_path: Path, capsys):
    root, script = runs
    out = shutil.copytree(root / "a", tmp_path / "a")
    for task in TASKS:  # pretend an older scorer got every verdict backwards
        path = out / "samples" / f"{task}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        path.write_text(
            "".join(json.dumps({**r, "correct": not r["correct"]}, ensure_ascii=False) + "\n" for r in rows),
            encoding="utf-8",
        )
    capsys.readouterr()
    assert cli(["eval", "rescore", "--output-dir", str(out), "--quiet"]) == 0  # no server: never calls the model
    assert "deprecated" not in capsys.readouterr().err
    for task in TASKS:  # every task of the run (no --tasks), scored again
        assert {k: r["correct"] for k, r in rows_of(out, task).items()} == script.truth[task]


def test_compare_subcommand(runs, tmp_path: Path, capsys):
    root, script = runs
    capsys.readouterr()
    assert cli(["eval", "compare", str(root / "a"), str(root / "b"), "--output-dir", str(tmp_path / "cmp")]) == 0
    printed, err = capsys.readouterr()
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    b = json.loads((root / "b" / "summary.json").read_text())["tasks"]
    for task in TASKS:  # paired per item: B's accuracy minus A's
        assert result["tasks"][task]["diff"] == pytest.approx(b[task]["accuracy"] - script.accuracy(task))
    assert any(result["tasks"][t]["diff"] < 0 for t in TASKS)
    assert (tmp_path / "cmp" / "compare.md").read_text().strip() == printed.strip()
    assert "deprecated" not in err


# --- the flag form of the previous release: works, with one deprecation line --------------------------------
# (argv after `dianjin eval`, RUN/A/B/DATA/URL standing for the fixture's paths; the new form the line names)
@pytest.mark.parametrize(
    "argv, new_form",
    [
        # an evaluation: --base-url ... --out
        (
            [
                "--base-url",
                "URL",
                "--model",
                "m",
                "--tasks",
                "math500",
                "--data-dir",
                "DATA",
                "--out",
                "RUN",
                "--quiet",
            ],
            "dianjin eval run",
        ),
        # a re-score: --rescore --out (here of a copy of run a)
        (["--rescore", "--out", "RUN", "--tasks", "cflue", "--quiet"], "dianjin eval rescore"),
        # a comparison: --compare A B --out
        (["--compare", "A", "B", "--out", "RUN"], "dianjin eval compare"),
    ],
)
def test_old_flag_form_still_works(runs, tmp_path: Path, capsys, argv, new_form):
    root, _ = runs
    run = tmp_path / "run"
    if "--rescore" in argv:
        shutil.copytree(root / "a", run)
    with FakeOpenAI() as srv:
        paths = {
            "URL": srv.base_url,
            "DATA": str(root / "data"),
            "RUN": str(run),
            "A": str(root / "a"),
            "B": str(root / "b"),
        }
        capsys.readouterr()
        assert cli(["eval", *[paths.get(a, a) for a in argv]]) == 0
    err = capsys.readouterr().err.splitlines()
    deprecations = [line for line in err if "deprecated" in line]
    assert len(deprecations) == 1 and f"use `{new_form}" in deprecations[0] and err[0] == deprecations[0], err
    written = "compare.json" if "--compare" in argv else "summary.json"
    assert (run / written).is_file()


def test_the_paper_recipe_loads():
    # recipes/eval_paper.yaml: the five tasks, a served model, GPT-4o judging with its key from the environment
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "eval_paper.yaml"
    cfg = run_config([str(recipe), "endpoint.model=served", "--limit", "10"])
    assert cfg.tasks == ["cflue", "finqa", "ccc", "math500", "gpqa"] and cfg.limit == 10
    assert (cfg.endpoint.model, cfg.judge.model, cfg.judge.api_key_env) == ("served", "gpt-4o", "OPENAI_API_KEY")
