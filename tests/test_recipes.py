"""The 7B/32B recipes, accelerate and DeepSpeed configs: each recipe loads with its stage's config class and
holds upstream's values; every launch command in a recipe's header names files that exist and overrides
that load; the GRPO batch geometry reproduces upstream's (1,024 prompts x 8 per rollout batch, 256 per
update, 4 updates per batch, 240 updates in 15 epochs) on 1, 8 and 32 GPUs. Every usage command in a module
docstring names a registered `dianjin` subcommand, an importable module and repository files that exist, and the
docs, README and recipes name only repository files (and, outside the repository, only ../shared/data)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

from dianjin.cli import COMMANDS
from dianjin.config import load_config
from dianjin.train.export_cmd import DS_Z3_CONFIG
from dianjin.train.grpo import GRPORunConfig, batch_geometry
from dianjin.train.sft import SFTRunConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
STAGES = {"sft": SFTRunConfig, "grpo": GRPORunConfig}  # recipe name prefix -> config class
SCALE_RECIPES = ["sft_qwen2.5_7b.yaml", "sft_qwen2.5_32b.yaml", "grpo_qwen2.5_7b.yaml", "grpo_qwen2.5_32b.yaml"]

# Upstream qwen2.5_sft.yaml (docs/upstream.md §5), as SFTRunConfig fields.
UPSTREAM_SFT = {
    "learning_rate": 1e-5,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.03,
    "per_device_train_batch_size": 1,
    "global_batch_size": 128,
    "max_length": 16384,
    "bf16": True,
    "packing": False,
    "lora": None,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "assistant_only_loss": True,
}
# Upstream grpo.sh (docs/upstream.md §6.1), as GRPORunConfig fields.
UPSTREAM_GRPO = {
    "learning_rate": 1e-6,
    "num_train_epochs": 15.0,
    "num_generations": 8,
    "temperature": 0.6,
    "top_p": 0.95,
    "beta": 0.001,
    "max_prompt_length": 1024,
    "max_completion_length": 4096,
    "prompts_per_generation": 1024,
    "prompts_per_update": 256,
    "num_iterations": 1,
    "epsilon": 0.2,
    "scale_rewards": "group",
    "rewards": {"dianjin": 1.0},
    "bf16": True,
    "gradient_checkpointing": True,
    "lr_scheduler_type": "constant",
}


def stage(name: str) -> type:
    return STAGES[name.split("_")[0]]


@pytest.mark.parametrize(
    "name, upstream, model",
    [
        ("sft_qwen2.5_7b.yaml", UPSTREAM_SFT, "Qwen/Qwen2.5-7B-Instruct"),  # the released 7B SFT config
        ("sft_qwen2.5_32b.yaml", UPSTREAM_SFT, "Qwen/Qwen2.5-32B-Instruct"),  # 32B: same values (none released)
        (
            "grpo_qwen2.5_7b.yaml",
            UPSTREAM_GRPO,
            "runs/qwen2.5-7b/sft/final",
        ),  # the released grpo.sh, from our SFT model
        ("grpo_qwen2.5_32b.yaml", UPSTREAM_GRPO, "runs/qwen2.5-32b/sft/final"),  # 32B: same values
    ],
)
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
        recipe, *overrides = argv[argv.index("-m") + 2 :]
        assert recipe == f"recipes/{name}"
        cfg = load_config(stage(name), ROOT / recipe, overrides)
        assert (ROOT / cfg.deepspeed).is_file()


@pytest.mark.parametrize(
    "name, processes, accumulation, steps_per_generation",
    [
        ("grpo_qwen2.5_7b.yaml", 8, 32, 128),  # upstream's node: 2,048 / (8 x 8); 8,192 / (8 x 8)
        ("grpo_qwen2.5_7b.yaml", 1, 256, 1024),  # one GPU: the same batches by accumulation
        ("grpo_qwen2.5_7b.yaml", 16, 16, 64),  # two nodes
        ("grpo_qwen2.5_32b.yaml", 32, 16, 64),  # 32B on 4 nodes, 4 completions per GPU: 2,048 / (4 x 32)
        ("grpo_qwen2.5_32b.yaml", 8, 64, 256),  # 32B on one node
    ],
)
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
        assert {
            cfg[k] for k in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")
        } == {"auto"}


@pytest.mark.parametrize(
    "name, distributed, processes, machines, ds_file",
    [
        ("1gpu.yaml", "NO", 1, 1, None),  # plain single process
        ("1gpu_ds_z3_offload.yaml", "DEEPSPEED", 1, 1, "recipes/deepspeed/ds_z3_offload_config.json"),  # 7B on one GPU
        ("ds_z3_8gpu.yaml", "DEEPSPEED", 8, 1, "recipes/deepspeed/ds_z3_config.json"),  # upstream's node
        (
            "ds_z3_multinode.yaml",
            "DEEPSPEED",
            16,
            2,
            "recipes/deepspeed/ds_z3_config.json",
        ),  # nodes x 8, standard launcher
    ],
)
def test_accelerate_configs(name, distributed, processes, machines, ds_file):
    from accelerate.commands.config.config_args import load_config_from_file

    c = load_config_from_file(str(RECIPES / "accelerate" / name))
    assert (str(c.distributed_type).split(".")[-1], c.num_processes, c.num_machines) == (
        distributed,
        processes,
        machines,
    )
    assert c.deepspeed_config.get("deepspeed_config_file") == ds_file
    if ds_file:
        assert (ROOT / ds_file).is_file()


# --- Docstrings, docs and recipes name only what exists ----------------------------------------------------

SRC = ROOT / "src" / "dianjin"
MODULES = sorted(p.relative_to(ROOT).as_posix() for p in SRC.rglob("*.py"))
TEXTS = sorted(
    p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("docs/*.md"), ROOT / "README.md", *RECIPES.glob("*.yaml")]
)
# A path in the repository (a top-level folder and what follows), or one that leaves it ("../..."); not the tail of
# another path (upstream's "DianJin-R1/src/rl/grpo.sh") or of a URL.
REPO_PATH = re.compile(r"(?<![\w./~$-])((?:\.\./)+[\w./-]*|(?:recipes|bench|docs|src|tests)/[\w./*-]*)")
EXTERNAL_DATA = "../shared/data"  # the one place outside the repository that may be named: the benchmark data directory
# The start of a command line: the CLI, a Python module or bench script, a launcher, a make target.
COMMAND = re.compile(r"(?:\.venv/bin/)?(?:dianjin|python3?|torchrun|accelerate launch|make)\s")
MAKEFILE = (ROOT / "Makefile").read_text()


def usage_lines(module: str) -> list[str]:
    """The command lines of a module docstring: indented lines that start like a command."""
    doc = ast.get_docstring(ast.parse((ROOT / module).read_text()), clean=False) or ""
    return [ln.strip() for ln in doc.splitlines() if ln.startswith("    ") and COMMAND.match(ln.strip())]


def docstrings(module: str) -> list[str]:
    """Every docstring of a module: the module's, its classes' and its functions'."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    nodes = ast.walk(ast.parse((ROOT / module).read_text()))
    return [d for n in nodes if isinstance(n, kinds) and (d := ast.get_docstring(n, clean=False))]


def path_errors(text: str) -> list[str]:
    """The paths in `text` that are not in the repository (outside it: anything but ../shared/data)."""
    errors = []
    for path in (m.group(1).rstrip(".") for m in REPO_PATH.finditer(text)):
        if path.startswith(".."):
            ok = path == EXTERNAL_DATA or path.startswith(EXTERNAL_DATA + "/")
        else:
            ok = any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
        if not ok:
            errors.append(f"{path}: not in the repository")
    return errors


def command_errors(cmd: str) -> list[str]:
    """What a command line names that does not exist: subcommand, action, module, make target or file."""
    words = [w.strip("[]`'\"") for w in re.split(r"\s#\s", cmd)[0].split()]
    prog = words[0].removeprefix(".venv/bin/")
    errors = path_errors(" ".join(words))
    if prog == "dianjin":
        sub, action = (words[1:] + ["", ""])[:2]
        if sub not in COMMANDS:
            return errors + [f"dianjin {sub}: no such subcommand (dianjin/cli.py)"]
        source = Path(importlib.util.find_spec(COMMANDS[sub][0]).origin).read_text()  # the subcommand's module
        if re.fullmatch(r"[a-z][a-z0-9_]*", action) and f'"{action}"' not in source and f"'{action}'" not in source:
            errors.append(f"dianjin {sub} {action}: {COMMANDS[sub][0]} has no {action!r}")
    if "-m" in words[:-1] and words[words.index("-m") + 1].startswith("dianjin"):
        module = words[words.index("-m") + 1]
        if importlib.util.find_spec(module) is None:
            errors.append(f"-m {module}: no such module")
    if prog == "make" and not re.search(rf"^{re.escape(words[1])}:", MAKEFILE, re.MULTILINE):
        errors.append(f"make {words[1]}: no such Makefile target")
    return errors


@pytest.mark.parametrize("module", MODULES)
def test_module_docstrings_name_what_exists(module):
    """The usage commands (subcommand, action, module, files) and every repository path in any docstring."""
    errors = [f"{cmd!r}: {e}" for cmd in usage_lines(module) for e in command_errors(cmd)]
    errors += [e for doc in docstrings(module) for e in path_errors(doc)]
    assert not errors, f"{module}: " + "; ".join(errors)


@pytest.mark.parametrize(
    "module, at_least",
    [
        ("src/dianjin/cli.py", 3),  # score, merge fsdp, serve
        ("src/dianjin/train/sft.py", 3),  # the CPU demo stage, torchrun on the 7B recipe, accelerate launch
        ("src/dianjin/train/grpo.py", 3),  # the same three for GRPO
        ("src/dianjin/train/mine.py", 2),  # the CPU demo stage, a served model
        ("src/dianjin/demo.py", 5),  # make demo, the CPU and 7B recipes, --dry-run, --redo
        ("src/dianjin/data/build.py", 2),  # every stage, one stage
        ("src/dianjin/eval/run.py", 4),  # an endpoint, a local model, rescore, compare
        ("src/dianjin/eval/cli.py", 5),  # a YAML config, an endpoint, a local model, rescore, compare
        ("src/dianjin/model/merge.py", 2),  # merge fsdp, merge lora
        ("src/dianjin/train/export_cmd.py", 2),  # export verl, export llamafactory
        ("src/dianjin/model/gguf.py", 2),  # model gguf, model smollm2
    ],
)
def test_usage_lines_are_found(module, at_least):
    """The extractor sees the usage block of the modules that have one (else the check above checks nothing)."""
    assert len(usage_lines(module)) >= at_least


@pytest.mark.parametrize(
    "cmd, wrong",
    [
        ("torchrun --nproc_per_node 8 -m dianjin.train.sft recipes/sft_7b.yaml", "recipes/sft_7b.yaml"),  # the old name
        ("dianjin train CONFIG.yaml", "dianjin train"),  # not a registered subcommand
        ("dianjin merge zip CKPT_DIR --base B --out O", "dianjin merge zip"),  # not an action of dianjin.model.merge
        (
            "accelerate launch --config_file recipes/accelerate/8gpu.yaml -m dianjin.train.grpo CONFIG.yaml",
            "recipes/accelerate/8gpu.yaml",
        ),  # a missing accelerate config
        ("python -m dianjin.train.rlhf CONFIG.yaml", "dianjin.train.rlhf"),  # a module that does not exist
        (".venv/bin/python bench/bench_everything.py", "bench/bench_everything.py"),  # a missing bench script
        ("make demo-gpu", "make demo-gpu"),  # not a Makefile target
        ("dianjin eval --data-dir ../shared/seed --out RUN", "../shared/seed"),  # outside the repo, and not the data
        ("dianjin demo recipes/demo.yaml sets.data_dir=../shared/data", None),  # all exists
        ("dianjin data build recipes/data_offline.yaml  # every stage", None),  # an action the module knows
    ],
)
def test_command_check_catches(cmd, wrong):
    errors = command_errors(cmd)
    assert (wrong is None and errors == []) or (wrong is not None and any(wrong in e for e in errors)), errors


def text_commands(text: str) -> list[str]:
    """Commands in a document: code lines (indented or fenced Markdown, an indented recipe comment) and inline code."""
    code, fenced = [], False
    for ln in text.splitlines():
        fenced ^= ln.startswith("```")
        if fenced or ln.startswith(("    ", "#  ")):
            code.append(ln.lstrip("#").strip())
    return [ln for ln in code if COMMAND.match(ln)] + [s for s in re.findall(r"`([^`]+)`", text) if COMMAND.match(s)]


@pytest.mark.parametrize("name", TEXTS)
def test_docs_name_what_exists(name):
    """Paths (in the repository, or ../shared/data), relative Markdown links, and the commands shown."""
    text = (ROOT / name).read_text()
    errors = path_errors(text)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target) and not ((ROOT / name).parent / target.split("#")[0]).exists():
            errors.append(f"link {target}: not in the repository")
    errors += [f"{cmd!r}: {e}" for cmd in text_commands(text) for e in command_errors(cmd)]
    assert not errors, f"{name}: " + "; ".join(errors)


# Notes that live outside the repository (the reference folder beside it, or its files by bare name): the facts
# they held are in docs/upstream.md, which is what code, tests, recipes and docs cite.
OUTSIDE_NOTES = re.compile(r"\.\./(?:shared/)?reference\b|(?<![\w/])(?:upstream|stack|datasets|peers|style)\.md\b")
PROJECT_FILES = [
    "src/**/*.py",
    "src/dianjin/prompts/*.txt",
    "tests/**/*.py",
    "recipes/**/*.yaml",
    "docs/*.md",
    "bench/*.py",
    "README.md",
    "Makefile",
    "pyproject.toml",
]


def test_no_reference_outside_the_repo():
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {m.group(0)}"
        for pattern in PROJECT_FILES
        for path in sorted(ROOT.glob(pattern))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for m in OUTSIDE_NOTES.finditer(line)
    ]
    assert not hits, "cite docs/upstream.md instead: " + "; ".join(hits)


# Tracker tags (an issue number, or a parenthesis opening with the word): the text says what a thing does, not
# which ticket asked for it.
ISSUE_TAG = re.compile(r"\b[Ii]ssues?\s*#?\d+|[(][Ii]ssues?\b")


def test_no_issue_tags():
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for pattern in PROJECT_FILES
        for path in sorted(ROOT.glob(pattern))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ISSUE_TAG.search(line)
    ]
    assert not hits, "; ".join(hits)
