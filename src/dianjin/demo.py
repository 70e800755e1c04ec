"""`dianjin demo`: the whole DianJin-R1 recipe in one command, on a laptop CPU or on GPUs.

    make demo                                                      # fresh clone: .venv, then the next line
    dianjin demo [recipes/demo.yaml] [key.sub=value ...]            # tiny model, offline teacher, CPU
    dianjin demo recipes/pipeline_qwen2.5_7b.yaml                   # Qwen2.5-7B, a real teacher API, vLLM, GPUs
    dianjin demo CONFIG --dry-run                                   # the plan: each stage's config, command, state
    dianjin demo CONFIG --redo sft                                  # run `sft` and every stage after it again

Stages, in order (`STAGES`); each writes under `out`:

| stage     | does                                                                       | writes                  |
|-----------|----------------------------------------------------------------------------|-------------------------|
| sets      | train / RL / eval splits: the project's synthetic sets, or slices of the real files in `sets.data_dir`; the RL pool as rl.jsonl rows | sets/ |
| data      | `dianjin data build` (the offline reference teacher, or a teacher API)     | data/ (sft.jsonl ...)   |
| model     | the tiny tokenizer (trained on the SFT texts) and Qwen2 model, unless `model` is given | model/        |
| eval_base | serve the base model (`dianjin serve`), `dianjin eval` on the eval split   | eval_base/              |
| sft       | `dianjin sft` on data/sft.jsonl                                            | sft/ (final/)           |
| eval_sft  | serve and evaluate the SFT model                                           | eval_sft/               |
| mine      | `dianjin mine`: keep the RL pool's questions the SFT model gets right sometimes | mine/              |
| grpo      | `dianjin grpo` from the SFT model on the mined rows (LoRA in the CPU demo) | grpo/                   |
| merge     | `dianjin merge lora` of the GRPO adapter into the SFT model (a full fine-tune needs none) | merged/  |
| eval_grpo | serve and evaluate the merged model                                        | eval_grpo/              |
| report    | `dianjin report` over the three evaluations and the two training runs      | report/index.html       |

Then `summary.json` / `summary.md`: format rate and accuracy before training, after SFT and after
GRPO, the GRPO reward curve's ends, and seconds per stage; the same table is printed.

Re-running: a finished stage leaves `stages/NAME.json` with a fingerprint of its config and of the
stages it reads; a re-run skips every stage whose fingerprint still matches (a re-run of a finished
demo takes seconds). A stage whose config changed runs again, after its old output is moved to
`stale/`, and so does every stage after it. A stage that was interrupted resumes: the commands it
calls are resumable themselves (data logs, eval rows, training checkpoints).

Training stages run as child processes, `launcher + -m dianjin.train.X CONFIG`: `launcher` is
empty for one process (this Python), or e.g. `[torchrun, --nproc_per_node, "8"]` or
`[accelerate, launch, --config_file, recipes/accelerate/ds_z3_8gpu.yaml]` on GPUs. On CPU the children
get glibc malloc settings that keep big freed blocks (`CPU_MALLOC_ENV`): without them every
optimizer step pays page faults for the logits' buffers, which halves the tiny model's speed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from dianjin import demo_sets, demo_summary
from dianjin.config import ConfigError, from_dict, load_config, read_mapping, to_dict
from dianjin.demo_sets import SPLITS, SYNTHETIC_TASKS, DemoError, SetsConfig
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, atomic_write_text, iter_jsonl
from dianjin.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
# glibc: serve big allocations from the heap and keep freed memory (see the module docstring).
CPU_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "1073741824",
}


# --- config ----------------------------------------------------------------------------------------------
@dataclass
class TinyConfig:
    """The tiny model built when `model` is not given (dianjin.model.tiny)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vocab_size: int = 4000  # BPE trained on the SFT texts (and dianjin.model.tiny.finance_corpus)
    split_digits: bool = True  # one token per digit, as Qwen2.5 (numbers are learnt much faster)
    max_len: int = 1024
    seed: int = 0


@dataclass
class StageConfig:
    """A stage's command config: the keys of `recipe` (a YAML file), then `config` over them; the demo
    fills in `model`, `data` and `output_dir` unless `config` sets them."""

    recipe: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSection:
    tasks: list[str] | None = None  # None: the tasks of `sets.eval`
    limit: int | None = None  # items per task (None: the whole eval split)
    n: int = 1  # samples per item
    temperature: float | None = None  # None: each task's pinned value (dianjin.eval.specs)
    top_p: float | None = None
    max_tokens: int | None = None  # None: the task's pinned value (8k-16k: set a small one on CPU)
    backend: Literal["local", "serve"] = "local"  # local: in-process batches (dianjin eval run --model-dir); serve:
    # `dianjin serve` (the `serve` section) and HTTP, as an endpoint would be evaluated
    engine: str = "auto"  # local: auto (vLLM with a GPU, else transformers), transformers or vllm
    batch_size: int = 16  # local: prompts per generate call
    concurrency: int = 8  # serve: requests in flight
    timeout: float = 600.0


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    model: str | None = (
        None  # HF model directory, a .gguf file or `smollm2` (converted into model/); None: the tiny model
    )
    tiny: TinyConfig = field(default_factory=TinyConfig)
    sets: SetsConfig = field(default_factory=SetsConfig)
    data: StageConfig = field(default_factory=lambda: StageConfig("recipes/data_offline.yaml"))
    sft: StageConfig = field(default_factory=StageConfig)
    mine: StageConfig = field(default_factory=StageConfig)
    grpo: StageConfig = field(default_factory=StageConfig)
    min_mined: int = 8  # GRPO trains on the mined rows when at least this many, else on the whole RL pool
    launcher: list[str] = field(default_factory=list)  # training processes: [] = this Python, one process
    cpu_malloc: bool = True  # CPU_MALLOC_ENV for training children when CUDA is absent
    serve: dict[str, Any] = field(default_factory=lambda: {"engine": "auto"})  # dianjin.model.serve.serving keywords
    eval: EvalSection = field(default_factory=EvalSection)


# --- stage bookkeeping -----------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    run: Callable[[Demo], dict[str, Any]]
    keys: tuple[str, ...]  # config sections its fingerprint covers
    needs: tuple[str, ...]  # earlier stages whose fingerprints it covers
    outputs: tuple[str, ...]  # paths under `out` it writes (moved to stale/ when it must run again)
    what: str


class Demo:
    def __init__(self, cfg: DemoConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.records: dict[str, dict[str, Any]] = {}
        self.fps: dict[str, str] = {}

    # paths
    def p(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    @property
    def model_dir(self) -> Path:
        return Path(self.cfg.model) if self.cfg.model and not _converted(self.cfg.model) else self.p("model")

    def fingerprint(self, stage: Stage) -> str:
        """A hash of what the stage's output depends on: its config sections (a command's config as
        the command will see it: the recipe file's keys merged and every value checked and coerced,
        so `lr=5e-4` and `lr: 5.0e-4` are the same), the real data files' contents, and the
        fingerprints of the stages it reads."""
        checks = _checks()
        config = {
            k: to_dict(from_dict(checks[k][0], stage_dict(self, k, *checks[k])))
            if k in checks
            else _jsonable(getattr(self.cfg, k))
            for k in stage.keys
        }
        data: dict[str, Any] = {"stage": stage.name, "config": config, "needs": {n: self.fps[n] for n in stage.needs}}
        if stage.name == "model":
            data["model"] = self.cfg.model
        if stage.name == "sets" and self.cfg.sets.data_dir:
            from dianjin.eval.specs import file_sha256

            tasks = {t for split in SPLITS for t in getattr(self.cfg.sets, split)}
            data["files"] = {
                t: file_sha256(p) for t in sorted(tasks) if (p := demo_sets.real_file(self.cfg.sets, t)) is not None
            }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def record_path(self, name: str) -> Path:
        return self.p("stages", f"{name}.json")

    def read_record(self, name: str) -> dict[str, Any] | None:
        path = self.record_path(name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # a torn record: the stage runs again (its commands resume)


# --- stages --------------------------------------------------------------------------------------------
def stage_sets(d: Demo) -> dict[str, Any]:
    return demo_sets.write_sets(d.cfg.sets, d.out)


def stage_data(d: Demo) -> dict[str, Any]:
    """`dianjin data build` over the train split (sources are the demo's unless data.config sets them)."""
    from dianjin.data.build import BuildConfig
    from dianjin.data.build import main as data_main

    files = d.records["sets"]["result"]["files"]
    wiring = {
        "output_dir": str(d.p("data")),
        "sources": [{"task": t, "path": p} for t, p in sorted(files["train"].items())],
        "decontam": {"eval_sets": [{"task": t, "path": p} for t, p in sorted(files["eval"].items())]},
    }
    cfg_file = write_stage_config(d, "data", BuildConfig, wiring)
    if data_main(["build", str(cfg_file)]) != 0:
        raise DemoError(f"data: `dianjin data build {cfg_file}` failed (see above); re-run the demo to resume it")
    sft = d.p("data", "sft.jsonl")
    n = sum(1 for _ in iter_jsonl(sft)) if sft.exists() else 0
    if not n:
        raise DemoError(f"data: {sft} has no rows; nothing to fine-tune on")
    return {"sft_rows": n, "build": json.loads(d.p("data", "build.json").read_text(encoding="utf-8"))}


def _converted(model: str) -> bool:
    """A model given as a GGUF file (or the packaged SmolLM2), converted into model/ by the model stage."""
    return model == "smollm2" or model.endswith(".gguf")


def stage_model(d: Demo) -> dict[str, Any]:
    if d.cfg.model and _converted(d.cfg.model):
        from dianjin.model.gguf import convert_gguf, smollm2_gguf

        src = smollm2_gguf() if d.cfg.model == "smollm2" else Path(d.cfg.model)
        convert_gguf(src, d.p("model"), force=True)
        print(f"[demo] model: {src.name} converted to {d.p('model')}", flush=True)
        return {"model": str(d.p("model")), "built": False, "gguf": str(src), "parameters": _n_params(d.p("model"))}
    if d.cfg.model:
        if not (Path(d.cfg.model) / "config.json").exists():
            print(f"[demo] model: {d.cfg.model} (not a local directory: loaded by name)", flush=True)
        return {"model": d.cfg.model, "built": False}
    from dianjin.model.tiny import build_tiny, finance_corpus

    t = d.cfg.tiny
    texts = [m["content"] for row in iter_jsonl(d.p("data", "sft.jsonl")) for m in row["messages"]]
    pool = d.p("sets", "rl.jsonl")
    if pool.exists():
        texts += [m["content"] for row in iter_jsonl(pool) for m in row["prompt"]]
    tmp = d.p("model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny(
        tmp,
        corpus=texts + list(finance_corpus()),
        vocab_size=t.vocab_size,
        split_digits=t.split_digits,
        hidden=t.hidden,
        layers=t.layers,
        heads=t.heads,
        kv_heads=t.kv_heads,
        max_len=t.max_len,
        seed=t.seed,
    )
    shutil.rmtree(d.p("model"), ignore_errors=True)  # a build that finished without its stage record
    tmp.rename(d.p("model"))
    n_params = _n_params(d.p("model"))
    print(f"[demo] model: tiny Qwen2, {n_params:,} parameters, tokenizer trained on {len(texts)} texts", flush=True)
    return {"model": str(d.p("model")), "built": True, "parameters": n_params}


def _n_params(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():
                n = 1
                for x in st.get_slice(k).get_shape():
                    n *= x
                total += n
    return total


def stage_sft(d: Demo) -> dict[str, Any]:
    from dianjin.train.sft import SFTRunConfig

    files = d.records["sets"]["result"]["files"]
    wiring = {
        "model": str(d.model_dir),
        "data": [str(d.p("data", "sft.jsonl"))],
        "output_dir": str(d.p("sft")),
        "sample_data": [str(d.p("sets", "rl.jsonl"))] if files["rl"] else [],
    }
    cfg_file = write_stage_config(d, "sft", SFTRunConfig, wiring)
    run_child(d, "sft", "dianjin.train.sft", cfg_file)
    return {"final": str(d.p("sft", "final")), "metrics": train_ends(d.p("sft"), ("loss", "mean_token_accuracy"))}


def stage_mine(d: Demo) -> dict[str, Any]:
    from dianjin.train.mine import MineConfig

    wiring = {"model": str(d.p("sft", "final")), "data": [str(d.p("sets", "rl.jsonl"))], "output_dir": str(d.p("mine"))}
    cfg_file = write_stage_config(d, "mine", MineConfig, wiring)
    run_child(d, "mine", "dianjin.train.mine", cfg_file, launcher=False)
    summary = json.loads(d.p("mine", "summary.json").read_text(encoding="utf-8"))
    return {"summary": {k: summary.get(k) for k in ("candidates", "kept", "histogram") if k in summary}}


def stage_grpo(d: Demo) -> dict[str, Any]:
    from dianjin.train.grpo import GRPORunConfig

    mined = d.p("mine", "rl_mined.jsonl")
    n_mined = sum(1 for _ in iter_jsonl(mined)) if mined.exists() else 0
    data = mined if n_mined >= d.cfg.min_mined else d.p("sets", "rl.jsonl")
    if data != mined:
        print(
            f"[demo] grpo: mining kept {n_mined} rows (< min_mined={d.cfg.min_mined}); training on the whole "
            f"RL pool {data}",
            flush=True,
        )
    wiring = {"model": str(d.p("sft", "final")), "data": [str(data)], "output_dir": str(d.p("grpo"))}
    cfg_file = write_stage_config(d, "grpo", GRPORunConfig, wiring)
    run_child(d, "grpo", "dianjin.train.grpo", cfg_file)
    return {
        "data": str(data),
        "mined_rows": n_mined,
        "metrics": train_ends(d.p("grpo"), ("reward", "format_rate", "accuracy", "kl")),
    }


def stage_merge(d: Demo) -> dict[str, Any]:
    final = d.p("grpo", "final")
    if (final / "adapter_config.json").exists():
        from dianjin.model.merge import merge_lora

        merge_lora(
            final, d.p("sft", "final"), d.p("merged"), force=True, say=lambda m: print(f"[demo] {m}", flush=True)
        )
        return {"merged": str(d.p("merged")), "from": "lora"}
    if not (final / "config.json").exists():
        raise DemoError(f"merge: {final} holds neither a LoRA adapter nor a model")
    print(f"[demo] merge: {final} is a full model (no adapter to merge); evaluating it as is", flush=True)
    return {"merged": str(final), "from": "full"}


def eval_stage(label: str, model: Callable[[Demo], Path]) -> Callable[[Demo], dict[str, Any]]:
    def run(d: Demo) -> dict[str, Any]:
        from dianjin.eval.run import EvalConfig, run_eval

        e = d.cfg.eval
        files = d.records["sets"]["result"]["files"]["eval"]
        tasks = e.tasks or sorted(files)
        model_dir = model(d)
        cfg = EvalConfig(
            output_dir=d.p(label),
            tasks=tasks,
            data=files,
            n=e.n,
            limit=e.limit,
            temperature=e.temperature,
            top_p=e.top_p,
            max_tokens=e.max_tokens,
            data_dir=Path(d.cfg.sets.data_dir) if d.cfg.sets.data_dir else None,
        )
        if e.backend == "local":
            print(f"[demo] {label}: {model_dir} in-process ({e.engine}); evaluating {', '.join(tasks)}", flush=True)
            summary = run_eval(replace(cfg, model_dir=model_dir, local_engine=e.engine, batch_size=e.batch_size))
        else:
            summary = _served_eval(d, label, model_dir, cfg)
        errors = {t: s["errors"] for t, s in summary["tasks"].items() if s.get("errors")}
        if errors:
            raise DemoError(
                f"{label}: requests failed for good ({errors}; see {d.p(label, 'samples')}); "
                "re-run the demo to retry them"
            )
        return {"model": str(model_dir), **demo_summary.headline(summary)}

    return run


def _served_eval(d: Demo, label: str, model_dir: Path, cfg: Any) -> dict[str, Any]:
    from dianjin.eval.run import run_eval
    from dianjin.llm.client import EndpointConfig
    from dianjin.model.serve import serving

    print(f"[demo] {label}: serving {model_dir} ...", flush=True)
    t0 = time.time()
    with serving(model_dir, **d.cfg.serve) as url:
        print(
            f"[demo] {label}: server up at {url} in {time.time() - t0:.1f} s; evaluating {', '.join(cfg.tasks)}",
            flush=True,
        )
        endpoint = from_dict(
            EndpointConfig,
            {
                "base_url": url,
                "model": str(model_dir),
                "concurrency": d.cfg.eval.concurrency,
                "timeout": d.cfg.eval.timeout,
            },
        )
        return run_eval(replace(cfg, endpoint=endpoint))


def stage_report(d: Demo) -> dict[str, Any]:
    from dianjin.eval.report import make_report

    runs = [d.p(n) for n in ("eval_base", "eval_sft", "eval_grpo", "sft", "grpo") if d.p(n).exists()]
    html = make_report(runs, d.p("report"))
    return {"html": str(html)}


STAGES: list[Stage] = [
    Stage("sets", stage_sets, ("sets",), (), ("sets",), "train / RL / eval splits"),
    Stage("data", stage_data, ("data",), ("sets",), ("data",), "verified reasoning data (dianjin data build)"),
    Stage("model", stage_model, ("tiny",), ("data",), ("model",), "the base model"),
    Stage(
        "eval_base",
        eval_stage("eval_base", lambda d: d.model_dir),
        ("eval", "serve"),
        ("model", "sets"),
        ("eval_base",),
        "evaluate the base model",
    ),
    Stage("sft", stage_sft, ("sft", "launcher"), ("model", "data"), ("sft",), "SFT (dianjin sft)"),
    Stage(
        "eval_sft",
        eval_stage("eval_sft", lambda d: d.p("sft", "final")),
        ("eval", "serve"),
        ("sft", "sets"),
        ("eval_sft",),
        "evaluate the SFT model",
    ),
    Stage("mine", stage_mine, ("mine",), ("sft", "sets"), ("mine",), "hard-item mining (dianjin mine)"),
    Stage("grpo", stage_grpo, ("grpo", "min_mined", "launcher"), ("mine",), ("grpo",), "GRPO (dianjin grpo)"),
    Stage("merge", stage_merge, (), ("grpo",), ("merged",), "merge the adapter (dianjin merge lora)"),
    Stage(
        "eval_grpo",
        eval_stage("eval_grpo", lambda d: Path(d.records["merge"]["result"]["merged"])),
        ("eval", "serve"),
        ("merge", "sets"),
        ("eval_grpo",),
        "evaluate the GRPO model",
    ),
    Stage("report", stage_report, (), ("eval_base", "eval_sft", "eval_grpo"), ("report",), "HTML report"),
]
STAGE_NAMES = [s.name for s in STAGES]


# --- helpers -------------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    return to_dict(x) if hasattr(x, "__dataclass_fields__") else x


def stage_dict(d: Demo, name: str, cls: type, wiring: dict[str, Any]) -> dict[str, Any]:
    """recipe keys, then the demo's wiring, then the stage's own `config` keys; checked against `cls`."""
    sc: StageConfig = getattr(d.cfg, name)
    data: dict[str, Any] = {}
    if sc.recipe:
        path = Path(sc.recipe)
        if not path.is_absolute() and not path.exists() and (ROOT / path).exists():
            path = ROOT / path
        try:
            data = read_mapping(path)
        except ConfigError as e:
            raise ConfigError(f"{name}.recipe: {e}") from None
    data = {**data, **wiring, **sc.config}
    try:
        from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None
    return data


def write_stage_config(d: Demo, name: str, cls: type, wiring: dict[str, Any]) -> Path:
    data = stage_dict(d, name, cls, wiring)
    path = d.p("configs", f"{name}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def child_env(d: Demo) -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if d.cfg.cpu_malloc and not _cuda():
        for k, v in CPU_MALLOC_ENV.items():
            env.setdefault(k, v)
    return env


@functools.lru_cache(maxsize=1)
def _cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def run_child(d: Demo, name: str, module: str, cfg_file: Path, launcher: bool = True) -> None:
    head = d.cfg.launcher if (launcher and d.cfg.launcher) else [sys.executable]
    cmd = [*head, "-m", module, str(cfg_file)]
    print(f"[demo] {name}: {' '.join(cmd)}", flush=True)
    rc = subprocess.run(cmd, env=child_env(d)).returncode
    if rc != 0:
        raise DemoError(
            f"{name}: `{' '.join(cmd)}` exited with status {rc}; fix and re-run the demo "
            "(the stage resumes from its last checkpoint)"
        )


def train_ends(run_dir: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """First and last logged value of each metric, and the number of logged steps."""
    rows = [r for r in RunDir(run_dir).metrics() if "step" in r]
    out: dict[str, Any] = {"steps": max((r["step"] for r in rows), default=0)}
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
        if vals:
            w = max(1, min(5, len(vals) // 4))
            out[k] = {"first": sum(vals[:w]) / w, "last": sum(vals[-w:]) / w, "points": len(vals)}
    return out


# --- running ---------------------------------------------------------------------------------------------
def fingerprints(cfg: DemoConfig) -> dict[str, str]:
    """Each stage's fingerprint under `cfg` (what decides whether a finished stage is reused)."""
    d = Demo(cfg)
    for stage in STAGES:
        d.fps[stage.name] = d.fingerprint(stage)
    return dict(d.fps)


# stage -> (command config class, placeholder wiring) for checking configs before anything runs
@functools.lru_cache(maxsize=1)
def _checks() -> dict[str, tuple[type, dict[str, Any]]]:
    from dianjin.data.build import BuildConfig
    from dianjin.train.grpo import GRPORunConfig
    from dianjin.train.mine import MineConfig
    from dianjin.train.sft import SFTRunConfig

    wiring = {"model": "MODEL", "data": ["DATA"], "output_dir": "OUT"}
    return {
        "data": (BuildConfig, {"output_dir": "OUT"}),
        "sft": (SFTRunConfig, wiring),
        "mine": (MineConfig, wiring),
        "grpo": (GRPORunConfig, wiring),
    }


def check_config(cfg: DemoConfig) -> None:
    """Every stage's command config, checked against its class (as it will be at run time)."""
    d = Demo(cfg)
    for name, (cls, wiring) in _checks().items():
        stage_dict(d, name, cls, wiring)  # raises ConfigError naming the stage and key
    unknown = set(cfg.eval.tasks or []) - set(cfg.sets.eval)
    if unknown:
        raise ConfigError(f"eval.tasks: {sorted(unknown)} have no eval split in sets.eval")
    missing = {t for split in SPLITS for t in getattr(cfg.sets, split)} - set(SYNTHETIC_TASKS)
    if missing and cfg.sets.data_dir:
        d = Demo(cfg)
        missing = {t for t in missing if demo_sets.real_file(cfg.sets, t) is None}
    if missing:
        where = f"no file for them under {cfg.sets.data_dir}" if cfg.sets.data_dir else "no sets.data_dir"
        raise ConfigError(
            f"sets: {sorted(missing)} have no synthetic set (those are {', '.join(SYNTHETIC_TASKS)}) and {where}"
        )


def run(cfg: DemoConfig, redo: str | None = None, dry_run: bool = False) -> Demo:
    """Run (or resume, or only plan) the stages; returns the Demo with every stage's record."""
    d = Demo(cfg)
    if redo is not None and redo not in STAGE_NAMES:
        raise ConfigError(f"--redo {redo}: no such stage; stages: {', '.join(STAGE_NAMES)}")
    check_config(cfg)
    d.out.mkdir(parents=True, exist_ok=True)
    run_dir = None if dry_run else RunDir.create(d.out, cfg)  # config.yaml, meta.json; metrics.jsonl below
    forced = False
    t_all = time.time()
    for i, stage in enumerate(STAGES, 1):
        fp = d.fingerprint(stage)
        d.fps[stage.name] = fp
        rec = d.read_record(stage.name)
        forced = forced or stage.name == redo
        fresh = rec if rec is not None and rec.get("fingerprint") == fp and not forced else None  # the record to reuse
        if dry_run:
            state = "done" if fresh is not None else ("changed" if rec else "to do")
            print(f"[demo] {i:>2}/{len(STAGES)} {stage.name:<9} {state:<7} {stage.what}")
            if fresh is not None:
                d.records[stage.name] = fresh
            continue
        assert run_dir is not None  # made above unless dry_run
        if fresh is not None:
            d.records[stage.name] = fresh
            print(
                f"[demo] {i:>2}/{len(STAGES)} {stage.name}: done before ({fresh['seconds']:.1f} s), reused", flush=True
            )
            run_dir.log(stage=stage.name, index=i, seconds=0.0, reused=True)
            continue
        if rec is not None:  # changed config or --redo: keep the old output aside
            stale = d.p("stale", f"{stage.name}-{time.strftime('%Y%m%d-%H%M%S')}")
            for rel in stage.outputs:
                if d.p(rel).exists():
                    stale.mkdir(parents=True, exist_ok=True)
                    d.p(rel).rename(stale / rel)
            d.record_path(stage.name).unlink()
            print(f"[demo] {stage.name}: config changed or --redo; old output moved to {stale}", flush=True)
        print(f"[demo] {i:>2}/{len(STAGES)} {stage.name}: {stage.what}", flush=True)
        t0 = time.time()
        result = stage.run(d)
        rec = {
            "stage": stage.name,
            "fingerprint": fp,
            "seconds": round(time.time() - t0, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "result": result,
        }
        atomic_write_json(d.record_path(stage.name), rec)
        d.records[stage.name] = rec
        run_dir.log(stage=stage.name, index=i, seconds=rec["seconds"], reused=False)
        print(f"[demo] {stage.name}: done in {rec['seconds']:.1f} s", flush=True)
    if not dry_run:
        summary = summarize(d, time.time() - t_all)
        atomic_write_json(d.p("summary.json"), summary)
        atomic_write_text(d.p("summary.md"), demo_summary.render(summary))
        print(demo_summary.render(summary), flush=True)
    return d


def summarize(d: Demo, wall: float) -> dict[str, Any]:
    rec = d.records
    return {
        "out": str(d.out),
        "model": rec["model"]["result"]["model"],
        "data": d.cfg.sets.data_dir or "synthetic sets (dianjin.data.synthetic) and FinCalc",
        "learning": demo_summary.learning(d.out),
        "evaluations": {label: rec[name]["result"] for label, name in demo_summary.POINTS},
        "grpo": rec["grpo"]["result"].get("metrics", {}),
        "mined": rec["mine"]["result"].get("summary", {}),
        "grpo_data": rec["grpo"]["result"].get("data"),
        "stages": {s.name: rec[s.name]["seconds"] for s in STAGES},
        "total_seconds": round(sum(rec[s.name]["seconds"] for s in STAGES), 1),
        "this_run_seconds": round(wall, 1),
        "report": rec["report"]["result"]["html"],
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dianjin demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", default=None, help="YAML config (default: recipes/demo.yaml)")
    ap.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. out=runs/demo2 sft.config.max_steps=50")
    ap.add_argument("--dry-run", action="store_true", help="print the stages and whether each is done; run nothing")
    ap.add_argument("--redo", metavar="STAGE", help=f"run STAGE and every later stage again ({', '.join(STAGE_NAMES)})")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = args.config
    if config is not None and "=" in config and not Path(config).exists():  # only overrides were given
        args.overrides.insert(0, config)
        config = None
    config = config or str(ROOT / "recipes" / "demo.yaml")
    try:
        cfg = load_config(DemoConfig, config, args.overrides)
        run(cfg, redo=args.redo, dry_run=args.dry_run)
    except (ConfigError, DataError, DemoError) as e:
        print(f"dianjin demo: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
