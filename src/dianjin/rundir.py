"""Run directories: every stage writes its resolved config, provenance and metrics here.

    run = RunDir.create("runs/demo/sft", cfg)   # writes config.yaml and meta.json
    run.log(step=1, loss=2.3)                   # appends to metrics.jsonl

`meta.json` holds the git commit (and whether the tree was dirty), library versions, the Python
version, the command line and a start time. Nothing secret is written: configs name the
environment variables that hold API keys, never the keys.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from dianjin.config import dump_yaml
from dianjin.io import JsonlAppender, atomic_write_json, atomic_write_text

PACKAGES = ("dianjin", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
            "safetensors", "math-verify", "openai", "httpx2", "pyyaml", "vllm", "deepspeed")


def git_commit(cwd: Path | None = None) -> dict[str, Any]:
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if sha.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class RunDir:
    path: Path

    @classmethod
    def create(cls, path: str | Path, cfg: Any | None = None, **extra: Any) -> "RunDir":
        run = cls(Path(path))
        run.path.mkdir(parents=True, exist_ok=True)
        if cfg is not None:
            atomic_write_text(run.path / "config.yaml", dump_yaml(cfg))
        meta = {"git": git_commit(), "versions": versions(), "python": sys.version.split()[0],
                "platform": platform.platform(), "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **extra}
        atomic_write_json(run.path / "meta.json", meta)
        return run

    def log(self, **metrics: Any) -> None:
        with JsonlAppender(self.path / "metrics.jsonl") as f:
            f.write(metrics)

    def metrics(self) -> list[dict[str, Any]]:
        p = self.path / "metrics.jsonl"
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []
