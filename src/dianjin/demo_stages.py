"""The stages of `dianjin demo` (`dianjin.demo.STAGES`): what each one runs and what it returns for its
record, and the plumbing they share (each command's config file, training children and their
environment, the ends of a training run's metrics).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dianjin import demo_sets, demo_summary
from dianjin.config import ConfigError, from_dict, read_mapping
from dianjin.demo_sets import DemoError
from dianjin.files import atomic_write_text, iter_jsonl
from dianjin.malloc import allocator_env
from dianjin.rundir import RunDir

if TYPE_CHECKING:
    from dianjin.demo import Demo, StageConfig

ROOT = Path(__file__).resolve().parents[2]


# --- the stages --------------------------------------------------------------------------------------------
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
            local = replace(cfg, model_dir=model_dir, local_engine=e.engine, batch_size=e.batch_size, dtype=e.dtype)
            summary = run_eval(local)
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


# --- helpers -------------------------------------------------------------------------------------------
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


def child_env(d: Demo, name: str = "") -> dict[str, str]:
    """This process's environment, with this checkout's src/ first on the path and, without CUDA, the
    settings of the allocator `cpu_malloc` names (dianjin.malloc)."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if not _cuda():
        note = allocator_env(d.cfg.cpu_malloc, env)
        if note:
            print(f"[demo] {name}: cpu_malloc: {note}", flush=True)
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
    rc = subprocess.run(cmd, env=child_env(d, name)).returncode
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
