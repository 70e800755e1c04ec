"""`dianjin export`: hand training off to verl (GRPO) or LLaMA-Factory (SFT), upstream's own trainers.

    dianjin export verl --data DIR_OR_RL_JSONL --model SFT_MODEL --output-dir DIR [--n-gpus 8 --nnodes 1 ...]
    dianjin export llamafactory --data DIR_OR_SFT_JSONL --model BASE_MODEL --output-dir DIR [--n-gpus 8 ...]

Both frameworks pin libraries that conflict with ours (verl: transformers < 5.11; LLaMA-Factory:
transformers <= 5.6, trl <= 0.24), so they run in their own environment or container; this command
only writes files (docs/training.md has the commands).

`verl` writes, under DIR:
    verl/train.parquet, verl/val.parquet   the RL pool via `dianjin.data.export` (format "verl")
    run_grpo.sh                            upstream's DianJin-R1/src/rl/grpo.sh, every flag kept
                                           (`GRPO_FLAGS`), with this export's data, model and reward
The reward is `custom_reward_function.path` = the absolute path of `dianjin/verl_reward.py` in the
installed package, `custom_reward_function.name` = `compute_score_float` (`--verl-style upstream`:
verl 0.3.x puts the score into a float tensor and rejects a dict) or `compute_score` (`current`,
verl >= 0.4.1: the dict also logs acc and pred). verl loads that file by path in its own Python, so
`dianjin` must be importable there (`pip install --no-deps`, plus math-verify with the antlr4_9_3
extra for MATH-500 rows: Hydra's antlr; see docs/training.md). Before it starts verl the script runs
`dianjin.verl_reward.preflight` in that Python: the file loaded by path as verl loads it, one row per
data_source of the parquet files (read with pandas, as verl 0.3 reads them) scored through the
entry point, and the style checked against the installed verl version. It falls back to
`import dianjin.verl_reward` in verl's Python when the path does not exist on that machine.
The export itself scores the rows through the same entry point (`dianjin.data.export`), so a reward
that cannot import what it needs fails there first.
Deviations from upstream: the script runs in the foreground and tees its log (upstream: `nohup ... &`;
run the script under nohup for that), checks the reward first, names our reward function, and passes
extra arguments through to verl as further Hydra overrides. `--verl-style current` renames the one
upstream key that verl 0.4.1 renamed (`VERL_RENAMES`), drops the V0-only
`VLLM_ATTENTION_BACKEND=XFORMERS`, and passes the reward function under the key the installed verl
reads (`$REWARD_KEY`, from `dianjin.verl_reward.reward_key` at launch): `reward.custom_reward_function`
from verl 0.7.1 (verl >= 0.9 ignores the top-level `custom_reward_function` and would fall back to its
own scorer, which raises NotImplementedError for our data_sources), the top-level key before.

`llamafactory` writes, under DIR:
    llamafactory/dataset_info.json, llamafactory/<subset>.json   alpaca files via `dianjin.data.export`
    ds_z3_config.json      LLaMA-Factory's examples/deepspeed/ds_z3_config.json (`DS_Z3_CONFIG`)
    qwen2.5_sft.yaml       upstream's DianJin-R1/src/sft/qwen2.5_sft.yaml values (`LF_SFT`)
    sft.sh                 `llamafactory-cli train qwen2.5_sft.yaml`, one or several nodes
Paths inside are relative to DIR (the script `cd`s there), so DIR can be copied to the GPU machine.
`gradient_accumulation_steps` is derived so that the effective batch stays upstream's 128 sequences
on `--n-gpus` x `--nnodes` GPUs.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import dianjin
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, atomic_write_text
from dianjin.tasks.base import jsonl_records
from dianjin.verl_reward import ENTRY_POINTS, MATH_VERIFY_FOR_VERL

Row = dict[str, Any]

# --- upstream values --------------------------------------------------------------------------------------
# Upstream grpo.sh (aliyun/qwen-dianjin DianJin-R1/src/rl/grpo.sh; docs/upstream.md §6.1), in
# its order. A value "{name}" is filled from the export options (`VerlOptions`), "$NAME" by the script's
# shell variables (paths and cluster size, overridable from the environment at launch).
GRPO_FLAGS: list[tuple[str, str]] = [
    ("algorithm.adv_estimator", "grpo"),
    ("data.train_files", "$DATA_DIR/train.parquet"),
    ("data.val_files", "$VAL_FILE"),
    ("data.train_batch_size", "{train_batch_size}"),
    ("data.max_prompt_length", "{max_prompt_length}"),
    ("data.max_response_length", "{max_response_length}"),
    ("data.filter_overlong_prompts", "True"),
    ("data.truncation", "'error'"),
    ("actor_rollout_ref.model.path", "$BASE_MODEL"),
    ("actor_rollout_ref.model.enable_gradient_checkpointing", "True"),
    ("actor_rollout_ref.model.use_remove_padding", "True"),
    ("actor_rollout_ref.actor.optim.lr", "{lr}"),
    ("actor_rollout_ref.actor.ppo_mini_batch_size", "{mini_batch_size}"),
    ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", "{micro_batch_size}"),
    ("actor_rollout_ref.actor.use_kl_loss", "True"),
    ("actor_rollout_ref.actor.kl_loss_coef", "0.001"),
    ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
    ("actor_rollout_ref.actor.entropy_coeff", "0"),
    ("actor_rollout_ref.actor.fsdp_config.param_offload", "True"),
    ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", "True"),
    ("actor_rollout_ref.actor.checkpoint.contents", "['model','hf_model','optimizer','extra']"),
    ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", "{micro_batch_size}"),
    ("actor_rollout_ref.rollout.tensor_model_parallel_size", "{tp}"),
    ("actor_rollout_ref.rollout.name", "vllm"),
    ("actor_rollout_ref.rollout.gpu_memory_utilization", "{gpu_memory_utilization}"),
    ("actor_rollout_ref.rollout.temperature", "0.6"),
    ("actor_rollout_ref.rollout.top_p", "0.95"),
    ("actor_rollout_ref.rollout.n", "{n}"),
    ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", "{micro_batch_size}"),
    ("actor_rollout_ref.ref.fsdp_config.param_offload", "True"),
    ("algorithm.kl_ctrl.kl_coef", "0.001"),
    ("custom_reward_function.path", "$REWARD_PATH"),
    ("custom_reward_function.name", "{reward_name}"),  # upstream: its own compute_score; ours: ENTRY_POINTS
    ("trainer.critic_warmup", "0"),
    ("trainer.logger", "['console']"),
    ("trainer.n_gpus_per_node", "$N_GPUS"),
    ("trainer.nnodes", "$NNODES"),
    ("trainer.save_freq", "{save_freq}"),
    ("trainer.test_freq", "{test_freq}"),
    ("trainer.total_epochs", "{epochs}"),
    ("trainer.default_local_dir", "$CKPT_DIR"),
]
# Upstream's environment for the launch (vLLM 0.8.2's V0 engine).
GRPO_ENV: dict[str, str] = {"VLLM_ATTENTION_BACKEND": "XFORMERS"}
# `--verl-style current`: keys renamed in verl since upstream's v0.3.x (checkpoint.contents -> save_contents, 0.4.1).
# The reward function's keys are chosen at launch (`dianjin.verl_reward.reward_key`): verl 0.9 reads only
# reward.custom_reward_function.*, verl before 0.7.1 only the top-level custom_reward_function.*.
VERL_RENAMES: dict[str, str] = {
    "actor_rollout_ref.actor.checkpoint.contents": "actor_rollout_ref.actor.checkpoint.save_contents",
    "custom_reward_function.path": "$REWARD_KEY.path",
    "custom_reward_function.name": "$REWARD_KEY.name",
}

# Upstream qwen2.5_sft.yaml (DianJin-R1/src/sft/qwen2.5_sft.yaml; docs/upstream.md §5), in its order. Filled in per
# export: model_name_or_path, deepspeed, dataset, dataset_dir, output_dir, gradient_accumulation_steps.
LF_SFT: dict[str, Any] = {
    "model_name_or_path": None,
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "deepspeed": "ds_z3_config.json",
    "dataset": None,
    "dataset_dir": "llamafactory",
    "template": "qwen",
    "cutoff_len": 16384,
    "max_samples": 1000000,
    "overwrite_cache": True,
    "preprocessing_num_workers": 128,
    "output_dir": None,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "plot_loss": True,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 16,
    "learning_rate": 1.0e-5,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.03,
    "bf16": True,
    "ddp_timeout": 180000000,
}
LF_GLOBAL_BATCH = 128  # upstream: 1 per device x 16 accumulation x 8 GPUs

# LLaMA-Factory's examples/deepspeed/ds_z3_config.json (what upstream's yaml names); the same content as
# recipes/deepspeed/ds_z3_config.json (tests/test_recipes.py checks they agree).
DS_Z3_CONFIG: dict[str, Any] = {
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "zero_allow_untested_optimizer": True,
    "fp16": {
        "enabled": "auto",
        "loss_scale": 0,
        "loss_scale_window": 1000,
        "initial_scale_power": 16,
        "hysteresis": 2,
        "min_loss_scale": 1,
    },
    "bf16": {"enabled": "auto"},
    "zero_optimization": {
        "stage": 3,
        "overlap_comm": False,
        "contiguous_gradients": True,
        "sub_group_size": 1e9,
        "reduce_bucket_size": "auto",
        "stage3_prefetch_bucket_size": "auto",
        "stage3_param_persistence_threshold": "auto",
        "stage3_max_live_parameters": 1e9,
        "stage3_max_reuse_distance": 1e9,
        "stage3_gather_16bit_weights_on_model_save": True,
    },
}


# --- options ------------------------------------------------------------------------------------------------
@dataclass
class VerlOptions:
    """What `dianjin export verl` fills into upstream's flags (defaults: upstream's 7B run)."""

    n_gpus: int = 8  # trainer.n_gpus_per_node
    nnodes: int = 1  # trainer.nnodes
    tp: int = 4  # rollout tensor_model_parallel_size (upstream 4 for 7B; 8 suits 32B)
    train_batch_size: int = 1024  # prompts per step
    mini_batch_size: int = 256  # prompts per actor update (4 updates per step upstream)
    micro_batch_size: int = 8  # sequences per GPU per forward (actor, rollout log-prob, ref)
    n: int = 8  # rollouts per prompt
    lr: float = 1e-6
    max_prompt_length: int = 1024
    max_response_length: int = 4096
    gpu_memory_utilization: float = 0.6
    epochs: int = 15
    save_freq: int = 50
    test_freq: int = 10
    experiment_name: str = "DianJin-R1-7B"
    style: str = "upstream"  # "upstream": upstream's keys, verl 0.3.x; "current": VERL_RENAMES applied, verl >= 0.4.1


def check_verl_batches(o: VerlOptions, n_train: int) -> list[str]:
    """The batch-size constraints verl asserts at start-up (and one it does not: an empty epoch), as messages."""
    world = o.n_gpus * o.nnodes
    problems = []
    if o.train_batch_size % o.mini_batch_size:
        problems.append(
            f"--train-batch-size {o.train_batch_size} is not a multiple of --mini-batch-size {o.mini_batch_size}"
        )
    if (o.mini_batch_size * o.n) % world:
        problems.append(f"--mini-batch-size x n = {o.mini_batch_size * o.n} responses do not split over {world} GPUs")
    elif (o.mini_batch_size * o.n // world) % o.micro_batch_size:
        problems.append(
            f"{o.mini_batch_size * o.n // world} responses per GPU per update are not a multiple of "
            f"--micro-batch-size {o.micro_batch_size}"
        )
    if o.n_gpus % o.tp:
        problems.append(f"--n-gpus {o.n_gpus} is not a multiple of --tp {o.tp}")
    if n_train < o.train_batch_size:
        problems.append(
            f"train.parquet has {n_train} rows, fewer than --train-batch-size {o.train_batch_size}: verl drops "
            "the incomplete last batch and would train 0 steps (lower --train-batch-size and --mini-batch-size)"
        )
    return problems


# --- shell helpers ------------------------------------------------------------------------------------------
def default(var: str, value: str) -> str:
    """A bash line giving `var` the literal `value` unless the environment sets it (shell-quoted, so a
    path with spaces, quotes or `$` stays as it is)."""
    return f'if [ -z "${{{var}:-}}" ]; then {var}={shlex.quote(value)}; fi'


def num(x: float) -> str:
    """A float as upstream writes it: 1e-6, 0.6 (not 1e-06)."""
    return f"{x:g}".replace("e-0", "e-").replace("e+0", "e+")


def grpo_flags(o: VerlOptions) -> list[tuple[str, str]]:
    """GRPO_FLAGS with the option values filled in and, for `style` current, the renamed keys."""
    values = {k: num(v) if isinstance(v, float) else str(v) for k, v in vars(o).items()}
    values["reward_name"] = ENTRY_POINTS[o.style]
    renames = VERL_RENAMES if o.style == "current" else {}
    return [(renames.get(k, k), v.format(**values) if v.startswith("{") else v) for k, v in GRPO_FLAGS]


REWARD_CHECK = r"""import importlib.util, sys
# Load the reward the way verl does (by path), then score one row per data_source through the entry point.
spec = importlib.util.spec_from_file_location("custom_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["custom_module"] = module
spec.loader.exec_module(module)
sys.exit(module.preflight(sys.argv[2], sys.argv[4:], style=sys.argv[3]))"""


def grpo_script(o: VerlOptions, model: str, reward_path: str, has_val: bool) -> str:
    env = {} if o.style == "current" else GRPO_ENV
    lines = [
        "#!/usr/bin/env bash",
        "# DianJin-R1 GRPO with verl: upstream's DianJin-R1/src/rl/grpo.sh (every flag kept) with this export's",
        f"# data, model and reward. Written by `dianjin export verl` (dianjin {dianjin.__version__}, --verl-style {o.style}).",
        "# Run it in verl's own environment, where `import dianjin.verl_reward` works (docs/training.md), with",
        f"# verl {'0.3.x (upstream: 0.3.0.post1)' if o.style == 'upstream' else '>= 0.4.1'} and, for MATH-500 rows,",
        f"# `pip install '{MATH_VERIFY_FOR_VERL}'` (antlr 4.9.3, Hydra's: the antlr4_13_2 extra makes OmegaConf fail",
        '# with "Could not deserialize ATN"):',
        "#   bash run_grpo.sh [more Hydra overrides, e.g. trainer.val_before_train=False]",
        "#   nohup bash run_grpo.sh > /dev/null 2>&1 &       # in the background, as upstream (log: $LOG_DIR)",
        "# Several nodes: start Ray first (head: `ray start --head --port 6379`; every other node:",
        "# `ray start --address HEAD_IP:6379`), then run this script on the head node only, with NNODES set.",
        "# Every variable below can be set from the environment, e.g. BASE_MODEL=/ckpt/sft N_GPUS=4 bash run_grpo.sh",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        'PYTHON="${PYTHON:-python3}"',
        'DATA_DIR="${DATA_DIR:-$HERE/verl}"',
        default("BASE_MODEL", model),
        default("REWARD_PATH", reward_path),
        f'N_GPUS="${{N_GPUS:-{o.n_gpus}}}"',
        f'NNODES="${{NNODES:-{o.nnodes}}}"',
        default("EXPERIMENT_NAME", o.experiment_name),
        'CKPT_DIR="${CKPT_DIR:-$HERE/experiments/checkpoints/$EXPERIMENT_NAME}"',
        'LOG_DIR="${LOG_DIR:-$HERE/experiments/logs}"',
        # no val split (too few rows per task): validate on the training file, as a smoke check
        'VAL_FILE="${VAL_FILE:-$DATA_DIR/val.parquet}"'
        if has_val
        else 'VAL_FILE="${VAL_FILE:-$DATA_DIR/train.parquet}"  # no val split was written',
        *[f"{default(k, v)}; export {k}" for k, v in env.items()],
        "",
        "# verl imports the reward by path in this Python: check it imports and scores a row of each data_source",
        'if [ ! -f "$REWARD_PATH" ]; then',
        '  REWARD_PATH="$("$PYTHON" -c \'import dianjin.verl_reward as m; print(m.__file__)\')"',
        "fi",
        f'"$PYTHON" - "$REWARD_PATH" {ENTRY_POINTS[o.style]} {o.style} "$DATA_DIR/train.parquet" "$VAL_FILE" <<\'PY\'',
        REWARD_CHECK,
        "PY",
        *(
            []
            if o.style != "current"
            else [
                "# the reward function's Hydra key for this verl: reward.custom_reward_function from 0.7.1 (only it from 0.9.0)",
                'if [ -z "${REWARD_KEY:-}" ]; then',
                '  REWARD_KEY="$("$PYTHON" -c \'from dianjin.verl_reward import reward_key; print(reward_key())\')"',
                "fi",
            ]
        ),
        "",
        'mkdir -p "$LOG_DIR" "$CKPT_DIR"',
        '"$PYTHON" -m verl.trainer.main_ppo \\',
        *[f'    "{k}={v}" \\' for k, v in grpo_flags(o)],
        '    "$@" 2>&1 | tee "$LOG_DIR/$EXPERIMENT_NAME.log"',
        "",
    ]
    return "\n".join(lines)


def sft_script(n_gpus: int, nnodes: int, config_name: str) -> str:
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            "# DianJin-R1 SFT with LLaMA-Factory: upstream's DianJin-R1/src/sft/sft.sh for this export",
            f"# (written by `dianjin export llamafactory`, dianjin {dianjin.__version__}). Run it in LLaMA-Factory's own",
            "# environment (docs/training.md):",
            "#   bash sft.sh [key=value overrides of the yaml]",
            "#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash sft.sh    # on every node, NODE_RANK = 0 .. NNODES-1",
            f"# gradient_accumulation_steps in {config_name} keeps 128 sequences per step on {n_gpus} GPUs x {nnodes} node(s);",
            "# with other counts pass gradient_accumulation_steps=128/(GPUs in all) too.",
            "set -euo pipefail",
            'cd "$(dirname "${BASH_SOURCE[0]}")"',
            f'N_GPUS="${{N_GPUS:-{n_gpus}}}"',
            f'NNODES="${{NNODES:-{nnodes}}}"',
            'export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-$(seq -s, 0 $((N_GPUS - 1)))}"',
            'if [ "$NNODES" -gt 1 ]; then',
            '  : "${NODE_RANK:?set NODE_RANK (0 .. NNODES-1) on each node}" "${MASTER_ADDR:?set MASTER_ADDR to node 0}"',
            '  export FORCE_TORCHRUN=1 NNODES NODE_RANK MASTER_ADDR MASTER_PORT="${MASTER_PORT:-29500}"',
            "fi",
            f'llamafactory-cli train {config_name} "$@"',
            "",
        ]
    )


# --- reading the input ----------------------------------------------------------------------------------------
def resolve_data(paths: list[str], default_name: str) -> list[Path]:
    """Each path as a JSONL file; a directory means its `default_name` (a data build's output_dir)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            f = p / default_name
            if not f.is_file():
                found = ", ".join(sorted(x.name for x in p.glob("*.jsonl"))) or "none"
                raise DataError(p, None, None, f"no {default_name} in this directory (JSONL files there: {found})")
            p = f
        elif not p.is_file():
            raise DataError(p, None, None, "not found")
        out.append(p)
    return out


def read_rows(paths: list[Path]) -> tuple[list[Row], list[tuple[Path, int]]]:
    """All rows and, for each, (file, line), so an error found later can name where the row came from."""
    rows, where = [], []
    for path in paths:
        for n, obj in jsonl_records(path):
            if not isinstance(obj, dict):
                raise DataError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
            rows.append(obj)
            where.append((path, n))
    if not rows:
        raise DataError(", ".join(map(str, paths)), None, None, "no rows")
    return rows, where


def run_export(out: Path, sft: list[Row], rl: list[Row], where: list[tuple[Path, int]], **cfg: Any) -> dict[str, Path]:
    """`dianjin.data.export.run`, with its row-index errors turned into file:line errors."""
    from dianjin.data import export

    try:
        return export.run(out, sft, rl, export.ExportConfig(**cfg))
    except DataError as e:
        if isinstance(e.line, int) and 0 <= e.line < len(where):
            path, line = where[e.line]
            raise DataError(path, line, e.field, e.problem) from None
        raise


def model_ref(model: str) -> str:
    """A local model directory as an absolute path; anything else (a hub id) as given."""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else model


def reward_file() -> Path:
    import dianjin.verl_reward

    return Path(dianjin.verl_reward.__file__).resolve()


# --- the two targets ------------------------------------------------------------------------------------------
def export_verl(args: argparse.Namespace) -> dict[str, Path]:
    o = VerlOptions(
        n_gpus=args.n_gpus,
        nnodes=args.nnodes,
        tp=args.tp,
        train_batch_size=args.train_batch_size,
        mini_batch_size=args.mini_batch_size,
        micro_batch_size=args.micro_batch_size,
        n=args.n,
        epochs=args.epochs,
        save_freq=args.save_freq,
        test_freq=args.test_freq,
        max_response_length=args.max_response_length,
        gpu_memory_utilization=args.gpu_memory_utilization,
        experiment_name=args.experiment_name,
        style=args.verl_style,
    )
    out = Path(args.out)
    rows, where = read_rows(resolve_data(args.data, "rl.jsonl"))
    paths = run_export(
        out,
        [],
        rows,
        where,
        formats=["verl"],
        system=args.system,
        val_fraction=args.val_fraction,
        seed=args.seed,
        check_rewards=not args.no_reward_check,
        verl_style=args.verl_style,
    )
    import pyarrow.parquet as pq

    n_train = pq.read_metadata(paths["verl_train"]).num_rows
    problems = check_verl_batches(o, n_train)
    if problems:
        raise DataError(out / "verl", None, None, "; ".join(problems))
    script = grpo_script(o, model_ref(args.model), str(reward_file()), "verl_val" in paths)
    paths["run_grpo.sh"] = atomic_write_text(out / "run_grpo.sh", script)
    paths["run_grpo.sh"].chmod(0o755)
    return paths


def export_llamafactory(args: argparse.Namespace) -> dict[str, Path]:
    world = args.n_gpus * args.nnodes
    if LF_GLOBAL_BATCH % world:
        raise DataError(
            "--n-gpus/--nnodes", None, None, f"{world} GPUs do not divide upstream's batch of {LF_GLOBAL_BATCH}"
        )
    out = Path(args.out)
    rows, where = read_rows(resolve_data(args.data, "sft.jsonl"))
    paths = run_export(out, rows, [], where, formats=["llamafactory"], system=args.system)
    datasets = list(json.loads(paths["llamafactory"].read_text(encoding="utf-8")))
    model = model_ref(args.model)
    name = args.output_name or f"{Path(model).name or 'model'}-R1"
    cfg = {
        **LF_SFT,
        "model_name_or_path": model,
        "dataset": ",".join(datasets),
        "output_dir": f"experiments/checkpoints/{name}",
        "gradient_accumulation_steps": LF_GLOBAL_BATCH // world,
    }
    header = (
        f"# DianJin-R1 SFT for LLaMA-Factory: upstream's qwen2.5_sft.yaml with this export's model and data\n"
        f"# (dianjin export llamafactory, dianjin {dianjin.__version__}). Paths are relative to this folder: "
        f"run sft.sh.\n# Effective batch {LF_GLOBAL_BATCH} = 1 per device x {LF_GLOBAL_BATCH // world} accumulation "
        f"x {args.n_gpus} GPUs x {args.nnodes} node(s).\n"
    )
    paths["qwen2.5_sft.yaml"] = atomic_write_text(
        out / "qwen2.5_sft.yaml", header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    )
    paths["ds_z3_config.json"] = atomic_write_json(out / "ds_z3_config.json", DS_Z3_CONFIG)
    paths["sft.sh"] = atomic_write_text(out / "sft.sh", sft_script(args.n_gpus, args.nnodes, "qwen2.5_sft.yaml"))
    paths["sft.sh"].chmod(0o755)
    return paths


# target -> (writer, one-line help)
TARGETS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Path]], str]] = {
    "verl": (export_verl, "GRPO parquet + run_grpo.sh (upstream's grpo.sh flags) for verl"),
    "llamafactory": (export_llamafactory, "alpaca files + dataset_info.json + upstream's SFT yaml + sft.sh"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dianjin export", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="target", required=True)
    d = VerlOptions()
    for target, (_, help_) in TARGETS.items():
        s = sub.add_parser(target, help=help_, description=help_)
        default = "rl.jsonl" if target == "verl" else "sft.jsonl"
        s.add_argument(
            "--data", nargs="+", required=True, help=f"JSONL file(s), or a data build's output_dir (its {default})"
        )
        s.add_argument(
            "--model",
            required=True,
            help=(
                "the SFT model GRPO starts from"
                if target == "verl"
                else "the base model (e.g. Qwen/Qwen2.5-7B-Instruct)"
            ),
        )
        s.add_argument("--output-dir", "--out", dest="out", required=True, help="output directory (--out: alias)")
        s.add_argument("--n-gpus", type=int, default=d.n_gpus, help="GPUs per node (default %(default)s)")
        s.add_argument("--nnodes", type=int, default=d.nnodes, help="nodes (default %(default)s)")
        s.add_argument("--system", default=None, help="replace every row's system message ('' removes it)")
        if target == "verl":
            s.add_argument("--tp", type=int, default=d.tp, help="vLLM tensor parallel size (default %(default)s)")
            s.add_argument(
                "--train-batch-size", type=int, default=d.train_batch_size, help="prompts per step (%(default)s)"
            )
            s.add_argument(
                "--mini-batch-size", type=int, default=d.mini_batch_size, help="prompts per update (%(default)s)"
            )
            s.add_argument(
                "--micro-batch-size",
                type=int,
                default=d.micro_batch_size,
                help="sequences per GPU per forward (%(default)s)",
            )
            s.add_argument("--n", type=int, default=d.n, help="rollouts per prompt (%(default)s)")
            s.add_argument("--epochs", type=int, default=d.epochs, help="epochs (%(default)s)")
            s.add_argument("--save-freq", type=int, default=d.save_freq, help="steps between checkpoints (%(default)s)")
            s.add_argument("--test-freq", type=int, default=d.test_freq, help="steps between validations (%(default)s)")
            s.add_argument("--max-response-length", type=int, default=d.max_response_length, help="(%(default)s)")
            s.add_argument(
                "--gpu-memory-utilization", type=float, default=d.gpu_memory_utilization, help="vLLM (%(default)s)"
            )
            s.add_argument("--experiment-name", default=d.experiment_name, help="log and checkpoint name (%(default)s)")
            s.add_argument(
                "--verl-style",
                choices=["upstream", "current"],
                default=d.style,
                help=(
                    "upstream: upstream's keys and a float reward, for verl 0.3.x (upstream's 0.3.0.post1); "
                    "current: the renamed keys and the dict reward of verl >= 0.4.1"
                ),
            )
            s.add_argument("--val-fraction", type=float, default=0.05, help="share of each task held out (%(default)s)")
            s.add_argument("--seed", type=int, default=0, help="validation draw (%(default)s)")
            s.add_argument(
                "--no-reward-check",
                action="store_true",
                help="keep rows whose reference answer does not score 1.0 (default: leave them out)",
            )
        else:
            s.add_argument("--output-name", default=None, help="checkpoint folder name (default: MODEL-R1)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = TARGETS[args.target][0](args)
    except (DataError, ValueError, OSError, RuntimeError) as e:  # RuntimeError: a missing dependency
        print(f"dianjin export {args.target}: error: {e}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
