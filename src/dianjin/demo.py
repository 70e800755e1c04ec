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
run on the memory allocator `cpu_malloc` names (`dianjin.malloc.ALLOCATORS`): under glibc's defaults
every optimizer step pays page faults for the logits' buffers, which halves the training speed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from dianjin import demo_sets, demo_summary
from dianjin.config import ConfigError, from_dict, load_config, to_dict
from dianjin.demo_sets import SPLITS, SYNTHETIC_TASKS, DemoError, SetsConfig
from dianjin.demo_stages import (
    ROOT,
    _converted,
    eval_stage,
    stage_data,
    stage_dict,
    stage_grpo,
    stage_merge,
    stage_mine,
    stage_model,
    stage_report,
    stage_sets,
    stage_sft,
)
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, atomic_write_text
from dianjin.malloc import ALLOCATORS
from dianjin.rundir import RunDir


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
    dtype: str = "auto"  # local: auto (bfloat16 where the hardware has it: dianjin.model.precision), float32, ...
    concurrency: int = 8  # serve: requests in flight
    timeout: float = 600.0


@dataclass
class DemoConfig:
    KEY_ALIASES: ClassVar[dict[str, str]] = {"out": "output_dir"}  # the old name of output_dir still reads

    output_dir: str = "runs/demo"
    # HF model directory, a .gguf file or `smollm2` (converted into model/); None: the tiny model
    model: str | None = None
    tiny: TinyConfig = field(default_factory=TinyConfig)
    sets: SetsConfig = field(default_factory=SetsConfig)
    data: StageConfig = field(default_factory=lambda: StageConfig("recipes/data_offline.yaml"))
    sft: StageConfig = field(default_factory=StageConfig)
    mine: StageConfig = field(default_factory=StageConfig)
    grpo: StageConfig = field(default_factory=StageConfig)
    min_mined: int = 8  # GRPO trains on the mined rows when at least this many, else on the whole RL pool
    launcher: list[str] = field(default_factory=list)  # training processes: [] = this Python, one process
    cpu_malloc: str = "glibc-keep"  # training children's allocator when CUDA is absent (dianjin.malloc.ALLOCATORS)
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
        self.out = Path(cfg.output_dir)
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


def _jsonable(x: Any) -> Any:
    return to_dict(x) if hasattr(x, "__dataclass_fields__") else x


# --- the stages (their code: dianjin.demo_stages) --------------------------------------------------------
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
    if cfg.cpu_malloc not in ALLOCATORS:
        raise ConfigError(f"cpu_malloc: {cfg.cpu_malloc!r} is not an allocator; known: {', '.join(ALLOCATORS)}")
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
        "guessing_floor": demo_summary.guessing_floor(rec["eval_base"]["result"]),
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
    ap.add_argument(
        "overrides", nargs="*", help="key.sub=value overrides, e.g. output_dir=runs/demo2 sft.config.max_steps=50"
    )
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
