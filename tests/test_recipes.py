"""The 7B/32B recipes, accelerate and DeepSpeed configs: each recipe loads with its stage's config class and
holds upstream's values; every launch command in a recipe's header names files that exist and overrides
that load; the GRPO batch geometry reproduces upstream's (1,024 prompts x 8 per rollout batch, 256 per
update, 4 updates per batch, 240 updates in 15 epochs) on 1, 8 and 32 GPUs."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

from dianjin.config import load_config
from dianjin.train.export_cmd import DS_Z3_CONFIG
from dianjin.train.grpo import GRPORunConfig, batch_geometry
from dianjin.train.sft import SFTRunConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
STAGES = {"sft": SFTRunConfig, "grpo": GRPORunConfig}  # recipe name prefix -> config class
SCALE_RECIPES = ["sft_qwen2.5_7b.yaml", "sft_qwen2.5_32b.yaml", "grpo_qwen2.5_7b.yaml", "grpo_qwen2.5_32b.yaml"]

# Upstream qwen2.5_sft.yaml (upstream.md §5), as SFTRunConfig fields.
UPSTREAM_SFT = {"learning_rate": 1e-5, "num_train_epochs": 3.0, "lr_scheduler_type": "linear", "warmup_ratio": 0.03,
                "per_device_train_batch_size": 1, "global_batch_size": 128, "max_length": 16384, "bf16": True,
                "packing": False, "lora": None, "logging_steps": 10, "save_strategy": "epoch", "assistant_only_loss": True}
# Upstream grpo.sh (upstream.md §6.1), as GRPORunConfig fields.
UPSTREAM_GRPO = {"learning_rate": 1e-6, "num_train_epochs": 15.0, "num_generations": 8, "temperature": 0.6, "top_p": 0.95,
                 "beta": 0.001, "max_prompt_length": 1024, "max_completion_length": 4096, "prompts_per_generation": 1024,
                 "prompts_per_update": 256, "num_iterations": 1, "epsilon": 0.2, "scale_rewards": "group",
                 "rewards": {"dianjin": 1.0}, "bf16": True, "gradient_checkpointing": True, "lr_scheduler_type": "constant"}


def stage(name: str) -> type:
    return STAGES[name.split("_")[0]]


@pytest.mark.parametrize("name, upstream, model", [
    ("sft_qwen2.5_7b.yaml", UPSTREAM_SFT, "Qwen/Qwen2.5-7B-Instruct"),  # the released 7B SFT config
    ("sft_qwen2.5_32b.yaml", UPSTREAM_SFT, "Qwen/Qwen2.5-32B-Instruct"),  # 32B: same values (none released)
    ("grpo_qwen2.5_7b.yaml", UPSTREAM_GRPO, "runs/qwen2.5-7b/sft/final"),  # the released grpo.sh, from our SFT model
    ("grpo_qwen2.5_32b.yaml", UPSTREAM_GRPO, "runs/qwen2.5-32b/sft/final"),  # 32B: same values
])
def test_recipe_holds_upstream_values(name, upstream, model):
    cfg = load_config(stage(name), RECIPES / name)
    assert {k: getattr(cfg, k) for k in upstream} == upstream
    assert cfg.model == model
    ds = json.loads((ROOT / cfg.deepspeed).read_text())  # ZeRO-3, as upstream's ds_z3_config.json
    assert ds["zero_optimization"]["stage"] == 3


COMMAND_START = ("accelerate launch", "torchrun")
SCALES = ("1 GPU", "8 GPUs", "several nodes")


def header_commands(path: Path) -> list[str]:
    """The launch commands in a recipe's leading comment (backslash continuations joined)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = re.sub(r"\\\s*\n\s*", " ", "\n".join(lines))
    return [ln for ln in text.splitlines() if ln.startswith(COMMAND_START)]


@pytest.mark.parametrize("name", SCALE_RECIPES)
def test_header_names_every_scale(name):
    head = (RECIPES / name).read_text().split("\n\n")[0]
    for scale in SCALES:  # each scale is addressed (a command, or why there is none)
        assert re.search(rf"^#\s+{scale}\b", head, re.MULTILINE), f"{name}: no '{scale}' launch line"
    assert len(header_commands(RECIPES / name)) >= 2


@pytest.mark.parametrize("name", SCALE_RECIPES)
def test_header_commands_are_runnable(name):
    """Every command's accelerate config exists, its module imports, and recipe + overrides load."""
    from accelerate.commands.config.config_args import load_config_from_file

    for cmd in header_commands(RECIPES / name):
        argv = shlex.split(cmd.replace("$((NNODES * 8))", "16").replace("$", "X_"))
        if argv[0] == "accelerate":
            acc = argv[argv.index("--config_file") + 1]
            assert (ROOT / acc).is_file(), f"{name}: {acc} missing"
            load_config_from_file(str(ROOT / acc))
        module = argv[argv.index("-m") + 1]
        assert module.startswith("dianjin.train.") and importlib.util.find_spec(module), module
        recipe, *overrides = argv[argv.index("-m") + 2:]
        assert recipe == f"recipes/{name}"
        cfg = load_config(stage(name), ROOT / recipe, overrides)
        assert (ROOT / cfg.deepspeed).is_file()


@pytest.mark.parametrize("name, processes, accumulation, steps_per_generation", [
    ("grpo_qwen2.5_7b.yaml", 8, 32, 128),  # upstream's node: 2,048 / (8 x 8); 8,192 / (8 x 8)
    ("grpo_qwen2.5_7b.yaml", 1, 256, 1024),  # one GPU: the same batches by accumulation
    ("grpo_qwen2.5_7b.yaml", 16, 16, 64),  # two nodes
    ("grpo_qwen2.5_32b.yaml", 32, 16, 64),  # 32B on 4 nodes, 4 completions per GPU: 2,048 / (4 x 32)
    ("grpo_qwen2.5_32b.yaml", 8, 64, 256),  # 32B on one node
])
def test_grpo_batch_geometry(name, processes, accumulation, steps_per_generation):
    cfg = load_config(GRPORunConfig, RECIPES / name)
    geo = batch_geometry(cfg, processes)
    assert geo == {"gradient_accumulation_steps": accumulation, "steps_per_generation": steps_per_generation}
    per_micro = cfg.per_device_train_batch_size * processes
    assert per_micro * steps_per_generation == 1024 * 8  # TRL generation_batch_size: upstream's rollout batch
    assert per_micro * accumulation == 256 * 8  # completions per optimizer step: upstream's mini-batch
    assert steps_per_generation // accumulation == 4  # updates per rollout batch, as upstream
    assert int(4096 * cfg.num_train_epochs) // cfg.prompts_per_update == 240  # upstream's 60 verl steps x 4


@pytest.mark.parametrize("processes, accumulation", [(8, 16), (1, 128), (32, 4)])  # 128 = 1 x accumulation x GPUs
def test_sft_effective_batch(processes, accumulation):
    cfg = load_config(SFTRunConfig, RECIPES / "sft_qwen2.5_7b.yaml")
    assert cfg.global_batch_size // (cfg.per_device_train_batch_size * processes) == accumulation


def test_deepspeed_configs():
    z3 = json.loads((RECIPES / "deepspeed" / "ds_z3_config.json").read_text())
    assert z3 == DS_Z3_CONFIG  # what `dianjin export llamafactory` writes beside its yaml
    off = json.loads((RECIPES / "deepspeed" / "ds_z3_offload_config.json").read_text())
    zo = dict(off.pop("zero_optimization"))
    assert zo.pop("offload_optimizer")["device"] == "cpu" and zo.pop("offload_param")["device"] == "cpu"
    assert {**off, "zero_optimization": zo} == z3  # the offload file is ZeRO-3 plus CPU offload, nothing else
    for cfg in (z3, off):  # batch sizes and precision come from the Trainer ("auto")
        assert {cfg[k] for k in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")} == {"auto"}


@pytest.mark.parametrize("name, distributed, processes, machines, ds_file", [
    ("1gpu.yaml", "NO", 1, 1, None),  # plain single process
    ("1gpu_ds_z3_offload.yaml", "DEEPSPEED", 1, 1, "recipes/deepspeed/ds_z3_offload_config.json"),  # 7B on one GPU
    ("ds_z3_8gpu.yaml", "DEEPSPEED", 8, 1, "recipes/deepspeed/ds_z3_config.json"),  # upstream's node
    ("ds_z3_multinode.yaml", "DEEPSPEED", 16, 2, "recipes/deepspeed/ds_z3_config.json"),  # nodes x 8, standard launcher
])
def test_accelerate_configs(name, distributed, processes, machines, ds_file):
    from accelerate.commands.config.config_args import load_config_from_file

    c = load_config_from_file(str(RECIPES / "accelerate" / name))
    assert (str(c.distributed_type).split(".")[-1], c.num_processes, c.num_machines) == (distributed, processes, machines)
    assert c.deepspeed_config.get("deepspeed_config_file") == ds_file
    if ds_file:
        assert (ROOT / ds_file).is_file()
