"""`dianjin export verl`: the files, the script (valid bash, and run with a stand-in for verl's Python
to see exactly what it would launch), every upstream flag, the reward path verl would load, and clear
errors for bad input (LLaMA-Factory: tests/test_export_llamafactory.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from exportkit import FAKE_PYTHON, flags, rl_row, run_script, unquote, write_jsonl

from dianjin import answer as fmt
from dianjin import verl_reward
from dianjin.cli import main as cli_main
from dianjin.data.synthetic import fincalc
from dianjin.tasks import get_task

# Upstream DianJin-R1/src/rl/grpo.sh, flag by flag (docs/upstream.md §6.1). Values in $CAPS are
# this export's: the test fills them in.
UPSTREAM_GRPO = """
algorithm.adv_estimator=grpo
data.train_files=$DATA_DIR/train.parquet data.val_files=$DATA_DIR/val.parquet
data.train_batch_size=1024 data.max_prompt_length=1024 data.max_response_length=4096
data.filter_overlong_prompts=True data.truncation='error'
actor_rollout_ref.model.path=$BASE_MODEL
actor_rollout_ref.model.enable_gradient_checkpointing=True actor_rollout_ref.model.use_remove_padding=True
actor_rollout_ref.actor.optim.lr=1e-6
actor_rollout_ref.actor.ppo_mini_batch_size=256 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8
actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.001 actor_rollout_ref.actor.kl_loss_type=low_var_kl
actor_rollout_ref.actor.entropy_coeff=0
actor_rollout_ref.actor.fsdp_config.param_offload=True actor_rollout_ref.actor.fsdp_config.optimizer_offload=True
actor_rollout_ref.actor.checkpoint.contents=['model','hf_model','optimizer','extra']
actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 actor_rollout_ref.rollout.tensor_model_parallel_size=4
actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.gpu_memory_utilization=0.6
actor_rollout_ref.rollout.temperature=0.6 actor_rollout_ref.rollout.top_p=0.95 actor_rollout_ref.rollout.n=8
actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 actor_rollout_ref.ref.fsdp_config.param_offload=True
algorithm.kl_ctrl.kl_coef=0.001
custom_reward_function.path=$REWARD_PATH custom_reward_function.name=compute_score
trainer.critic_warmup=0 trainer.logger=['console'] trainer.n_gpus_per_node=8 trainer.nnodes=1
trainer.save_freq=50 trainer.test_freq=10 trainer.total_epochs=15
trainer.default_local_dir=$CKPT_DIR
"""
UPSTREAM_FLAGS = dict(w.split("=", 1) for w in UPSTREAM_GRPO.split())


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return fincalc.generate(40, 7)


@pytest.fixture(scope="module")
def verl_out(tmp_path_factory, examples) -> Path:
    d = tmp_path_factory.mktemp("verl")
    (d / "build").mkdir()
    write_jsonl(d / "build" / "rl.jsonl", [rl_row(ex) for ex in examples])
    (d / "sft_model").mkdir()
    rc = cli_main(
        [
            "export",
            "verl",
            "--data",
            str(d / "build"),
            "--model",
            str(d / "sft_model"),
            "--out",
            str(d / "out"),
            "--train-batch-size",
            "32",
            "--mini-batch-size",
            "8",
        ]
    )
    assert rc == 0
    return d


# --- verl ---------------------------------------------------------------------------------------------------
def test_verl_files(verl_out, examples):
    import pyarrow.parquet as pq

    out = verl_out / "out"
    train, val = pq.read_table(out / "verl" / "train.parquet"), pq.read_table(out / "verl" / "val.parquet")
    assert train.num_rows + val.num_rows == len(examples)  # every fincalc row passes the reward check
    assert val.num_rows >= 1
    assert os.access(out / "run_grpo.sh", os.X_OK)
    assert subprocess.run(["bash", "-n", str(out / "run_grpo.sh")], check=False).returncode == 0


@pytest.fixture(scope="module")
def verl_launch(verl_out, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    return run_script(verl_out / "out" / "run_grpo.sh", tmp, FAKE_PYTHON, "python3")


def test_verl_script_launches_every_upstream_flag(verl_out, verl_launch):
    proc, argv, env = verl_launch
    assert proc.returncode == 0, proc.stderr
    assert "reward ok: compute_score_float scores fincalc" in proc.stdout  # the pre-flight ran with the real Python
    out = (verl_out / "out").resolve()
    ours = flags(argv)
    expected = {
        k: v.replace("$DATA_DIR", str(out / "verl"))
        .replace("$BASE_MODEL", str((verl_out / "sft_model").resolve()))
        .replace("$REWARD_PATH", str(Path(verl_reward.__file__).resolve()))
        .replace("$CKPT_DIR", str(out / "experiments" / "checkpoints" / "DianJin-R1-7B"))
        for k, v in UPSTREAM_FLAGS.items()
    }
    expected.update({"data.train_batch_size": "32", "actor_rollout_ref.actor.ppo_mini_batch_size": "8"})  # as exported
    expected["custom_reward_function.name"] = (
        "compute_score_float"  # upstream's own reward returned a float; ours, for verl 0.3
    )
    assert set(ours) == set(expected)  # every upstream flag, and nothing else
    assert {k: unquote(v) for k, v in ours.items()} == {k: unquote(v) for k, v in expected.items()}
    assert env["VLLM_ATTENTION_BACKEND"] == "XFORMERS"
    assert (out / "experiments" / "logs" / "DianJin-R1-7B.log").exists()  # tee'd log, as upstream's nohup log


@pytest.mark.parametrize(
    "env, args, key, value",
    [
        ({"N_GPUS": "4", "NNODES": "2"}, (), "trainer.nnodes", "2"),  # cluster size from the environment
        ({"N_GPUS": "4", "NNODES": "2"}, (), "trainer.n_gpus_per_node", "4"),  # ... both of them
        ({"BASE_MODEL": "/ckpt/other"}, (), "actor_rollout_ref.model.path", "/ckpt/other"),  # another SFT checkpoint
        (
            {},
            ("trainer.val_before_train=False",),
            "trainer.val_before_train",
            "False",
        ),  # extra Hydra overrides pass through
    ],
)
def test_verl_script_overrides(verl_out, tmp_path, env, args, key, value):
    proc, argv, _ = run_script(verl_out / "out" / "run_grpo.sh", tmp_path, FAKE_PYTHON, "python3", env, args)
    assert proc.returncode == 0, proc.stderr
    assert flags(argv)[key] == value


def test_verl_script_stops_when_the_reward_does_not_import(verl_out, tmp_path):
    # a reward file that cannot import in verl's Python (dianjin missing there): the check fails before verl starts
    bad = tmp_path / "verl_reward.py"
    bad.write_text("import dianjin_is_not_installed_here\n")
    proc, argv, _ = run_script(
        verl_out / "out" / "run_grpo.sh", tmp_path, FAKE_PYTHON, "python3", {"REWARD_PATH": str(bad)}
    )
    assert proc.returncode != 0 and "dianjin_is_not_installed_here" in proc.stderr
    assert argv == []  # verl was never launched


def test_verl_reward_path_imports_and_scores(verl_out, verl_launch):
    """The custom_reward_function.path verl is given, loaded by path as verl does, scores each exported row:
    its reference answer 1, a wrong answer 0, called with the row's data_source, ground_truth and extra_info."""
    import importlib.util

    import pyarrow.parquet as pq

    f = flags(verl_launch[1])
    path = f["custom_reward_function.path"]
    assert f["custom_reward_function.name"] == "compute_score_float"
    assert Path(path).is_absolute() and Path(path).name == "verl_reward.py"
    spec = importlib.util.spec_from_file_location("custom_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = pq.read_table(verl_out / "out" / "verl" / "train.parquet").to_pylist()
    for r in rows:
        gt, info = r["reward_model"]["ground_truth"], r["extra_info"]
        ex = {**module.decode_extra_info(info), "gold": gt}
        right = fmt.render("推理。", "", str(get_task(r["data_source"]).reference(ex)))
        wrong = fmt.render(
            "推理。",
            "",
            "B" if ex.get("form") == "mcq" and gt != "B" else ("A" if ex.get("form") == "mcq" else "-98765.4"),
        )
        fn = getattr(module, f["custom_reward_function.name"])
        for response, score in ((right, 1.0), (wrong, 0.0)):  # a float, as verl 0.3 needs, with the dict's score
            out = fn(data_source=r["data_source"], solution_str=response, ground_truth=gt, extra_info=info)
            assert (
                type(out) is float
                and out == score == module.compute_score(r["data_source"], response, gt, info)["score"]
            )


def test_verl_style_current(verl_out, tmp_path):
    # newer verl renamed checkpoint.contents -> save_contents and has no V0 XFORMERS backend
    rc = cli_main(
        [
            "export",
            "verl",
            "--data",
            str(verl_out / "build" / "rl.jsonl"),
            "--model",
            "Qwen/Qwen2.5-7B-Instruct",
            "--out",
            str(tmp_path / "o"),
            "--train-batch-size",
            "32",
            "--mini-batch-size",
            "8",
            "--verl-style",
            "current",
        ]
    )
    assert rc == 0
    proc, argv, env = run_script(tmp_path / "o" / "run_grpo.sh", tmp_path, FAKE_PYTHON, "python3")
    assert proc.returncode == 0, proc.stderr
    f = flags(argv)
    assert (
        "actor_rollout_ref.actor.checkpoint.save_contents" in f
        and "actor_rollout_ref.actor.checkpoint.contents" not in f
    )
    assert f["custom_reward_function.name"] == "compute_score"  # verl >= 0.4 takes the dict (and logs acc, pred)
    assert "reward ok: compute_score scores fincalc" in proc.stdout
    assert f["actor_rollout_ref.model.path"] == "Qwen/Qwen2.5-7B-Instruct"  # a hub id stays as given
    assert env["VLLM_ATTENTION_BACKEND"] == "unset"


MATH500 = [
    {"id": f"m{i}", "task": "math500", "question": f"What is {i} + 1/2?", "gold": f"{i}+\\frac{{1}}{{2}}"}
    for i in range(4)
]


def fake_site(tmp: Path, verl: str | None = None, no_math_verify: bool = False) -> str:
    """A folder for PYTHONPATH: an installed verl of that version (metadata only), and/or a sitecustomize that
    hides math_verify (as in a verl environment without it: find_spec finds nothing, an import raises)."""
    site = tmp / f"site-{verl}-{no_math_verify}"
    site.mkdir()
    if verl:
        (site / f"verl-{verl}.dist-info").mkdir()
        (site / f"verl-{verl}.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: verl\nVersion: {verl}\n"
        )
    if no_math_verify:
        (site / "sitecustomize.py").write_text("import sys\nsys.modules['math_verify'] = None\n")
    return str(site)


@pytest.mark.parametrize(
    "style, verl, no_math_verify, message, key",
    [
        (
            "upstream",
            "0.3.0.post1",
            False,
            "reward ok: compute_score_float scores fincalc, math500 (verl 0.3.0.post1)",
            "custom_reward_function",
        ),  # upstream's verl
        (
            "current",
            "0.4.1",
            False,
            "reward ok: compute_score scores fincalc, math500 (verl 0.4.1)",
            "custom_reward_function",
        ),  # the first save_contents release reads the top-level reward key
        ("current", "0.7.1", False, "reward ok: compute_score", "reward.custom_reward_function"),  # moved under reward.
        (
            "current",
            "0.9.1",
            False,
            "reward ok: compute_score",
            "reward.custom_reward_function",
        ),  # ... and only read there
        ("upstream", "0.4.1", False, "export with --verl-style current", None),  # 0.4.1 has no checkpoint.contents
        ("current", "0.3.0.post1", False, "export with --verl-style upstream", None),  # 0.3 rejects a dict score
        (
            "upstream",
            None,
            True,
            "pip install 'math-verify[antlr4_9_3]==0.9.0'",
            None,
        ),  # MATH-500 rows without math-verify
    ],
)
def test_verl_preflight_in_verls_python(verl_out, examples, tmp_path, style, verl, no_math_verify, message, key):
    # run_grpo.sh's check before verl starts: one row per data_source through the style's entry point, the style
    # against the installed verl; a failure stops the script before verl is launched. Then the reward's Hydra key.
    write_jsonl(tmp_path / "rl.jsonl", [rl_row(ex) for ex in [*examples, *MATH500]])
    assert (
        cli_main(
            [
                "export",
                "verl",
                "--data",
                str(tmp_path / "rl.jsonl"),
                "--model",
                "m",
                "--out",
                str(tmp_path / "o"),
                "--train-batch-size",
                "32",
                "--mini-batch-size",
                "8",
                "--verl-style",
                style,
            ]
        )
        == 0
    )
    env = {"PYTHONPATH": fake_site(tmp_path, verl, no_math_verify)}
    proc, argv, _ = run_script(tmp_path / "o" / "run_grpo.sh", tmp_path, FAKE_PYTHON, "python3", env)
    ok = message.startswith("reward ok")
    assert (proc.returncode == 0) == ok and (argv != []) == ok, proc.stderr
    assert message in (proc.stdout if ok else proc.stderr)
    if ok:
        f = flags(argv)
        name = "compute_score" if style == "current" else "compute_score_float"
        assert (f[f"{key}.path"], f[f"{key}.name"]) == (str(Path(verl_reward.__file__).resolve()), name)
        assert len([k for k in f if "custom_reward_function" in k]) == 2  # under one key only


@pytest.mark.parametrize(
    "flags_",
    [
        [],  # every row is scored: the first MATH-500 row fails the export
        ["--no-reward-check"],  # no row check, but the preflight still scores one row per data_source
    ],
)
def test_export_fails_without_math_verify(examples, tmp_path, flags_):
    # dianjin export in a Python without math_verify (dianjin installed --no-deps in verl's environment)
    write_jsonl(tmp_path / "rl.jsonl", [rl_row(ex) for ex in [*examples, *MATH500]])
    argv = [
        "export",
        "verl",
        "--data",
        str(tmp_path / "rl.jsonl"),
        "--model",
        "m",
        "--out",
        str(tmp_path / "o"),
        "--train-batch-size",
        "32",
        "--mini-batch-size",
        "8",
        *flags_,
    ]
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from dianjin.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
        env={**os.environ, "PYTHONPATH": fake_site(tmp_path, no_math_verify=True)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "the math500 reward cannot import math_verify" in proc.stderr
    assert not (tmp_path / "o" / "verl" / "train.parquet").exists()  # not skipped rows: no export at all


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "fewer than --train-batch-size 1024"),  # 38 train rows can't fill upstream's 1,024-prompt batch
        (["--train-batch-size", "30", "--mini-batch-size", "8"], "not a multiple of --mini-batch-size 8"),  # 30 % 8
        (
            ["--train-batch-size", "32", "--mini-batch-size", "8", "--tp", "3"],
            "not a multiple of --tp 3",
        ),  # 8 GPUs, TP 3
        (
            ["--train-batch-size", "32", "--mini-batch-size", "8", "--micro-batch-size", "3"],
            "--micro-batch-size 3",
        ),  # 8/GPU
        (
            ["--train-batch-size", "32", "--mini-batch-size", "8", "--n-gpus", "3", "--tp", "1"],
            "do not split over 3 GPUs",
        ),  # 64 % 3
    ],
)
def test_verl_batch_errors(verl_out, tmp_path, capsys, extra, message):
    rc = cli_main(
        [
            "export",
            "verl",
            "--data",
            str(verl_out / "build" / "rl.jsonl"),
            "--model",
            "m",
            "--out",
            str(tmp_path / "o"),
            *extra,
        ]
    )
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "run_grpo.sh").exists()


@pytest.mark.parametrize(
    "content, target, message",
    [
        (None, "verl", "no rl.jsonl in this directory"),  # a directory without the RL pool
        ('{"id": "a", "task": "fincalc"\n', "verl", "rl.jsonl:1: invalid JSON"),  # truncated JSON names the line
        ("\n[1, 2]\n", "verl", "rl.jsonl:2: expected a JSON object"),  # not an object, line 2 (blank line 1 skipped)
        (
            "GOOD\n" + '{"id": "x", "task": "fincalc", "prompt": [{"role": "user", "content": "q"}]}\n',
            "verl",
            "rl.jsonl:2: field 'gold'",
        ),  # a row without gold: the file and line, not an index
        (
            "GOOD\n" + '{"id": "x", "task": "nope", "prompt": [{"role": "user", "content": "q"}], "gold": "1"}\n',
            "verl",
            "rl.jsonl:2: field 'task'",
        ),  # an unknown task
        (
            '{"id": "x", "task": "fincalc", "messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}\n',
            "llamafactory",
            "sft.jsonl:1: field 'messages'",
        ),  # not [user, assistant]
    ],
)
def test_bad_input(tmp_path, capsys, examples, content, target, message):
    name = "rl.jsonl" if target == "verl" else "sft.jsonl"
    data = tmp_path / "d"
    data.mkdir()
    if content is not None:
        good = json.dumps(rl_row(examples[0]), ensure_ascii=False)
        (data / name).write_text(content.replace("GOOD", good), encoding="utf-8")
    rc = cli_main(["export", target, "--data", str(data), "--model", "m", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_cli_lists_export(capsys):
    assert cli_main([]) == 0
    assert "export" in capsys.readouterr().out


def test_scripts_survive_odd_paths(tmp_path, examples):
    # a model path with a space, a quote and a dollar sign reaches verl intact
    odd = tmp_path / "my model's $HOME"
    odd.mkdir()
    write_jsonl(tmp_path / "rl.jsonl", [rl_row(ex) for ex in examples])
    assert (
        cli_main(
            [
                "export",
                "verl",
                "--data",
                str(tmp_path / "rl.jsonl"),
                "--model",
                str(odd),
                "--out",
                str(tmp_path / "o"),
                "--train-batch-size",
                "32",
                "--mini-batch-size",
                "8",
            ]
        )
        == 0
    )
    proc, argv, _ = run_script(tmp_path / "o" / "run_grpo.sh", tmp_path, FAKE_PYTHON, "python3")
    assert proc.returncode == 0, proc.stderr
    assert flags(argv)["actor_rollout_ref.model.path"] == str(odd.resolve())
