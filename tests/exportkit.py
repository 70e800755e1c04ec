"""Shared builders of the export tests (tests/test_export_cmd.py, tests/test_export_llamafactory.py):
data rows in our formats, and stand-ins for verl's Python and `llamafactory-cli` that record what
an exported script would launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dianjin import answer as fmt
from dianjin.tasks import get_task

# Stand-in for verl's Python: records a `-m verl.trainer.main_ppo` launch (argv + env), runs anything else
# (the script's reward check) with the real interpreter.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "verl.trainer.main_ppo" ]; then
  shift 2
  printf '%s\\n' "$@" > "$RECORD"
  echo "VLLM_ATTENTION_BACKEND=${VLLM_ATTENTION_BACKEND:-unset}" > "$RECORD.env"
  exit 0
fi
exec "$REAL_PYTHON" "$@"
"""
FAKE_LF = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$RECORD"
{ echo "cwd=$PWD"; echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; echo "FORCE_TORCHRUN=${FORCE_TORCHRUN:-}";
  echo "NNODES=${NNODES:-}"; echo "NODE_RANK=${NODE_RANK:-}"; echo "MASTER_ADDR=${MASTER_ADDR:-}"; } > "$RECORD.env"
"""


def rl_row(ex: dict) -> dict:
    return {
        "id": ex["id"],
        "task": ex["task"],
        "prompt": get_task(ex["task"]).messages(ex),
        "gold": ex["gold"],
        "attempts": 3,
        "extra": {k: v for k, v in ex.items() if k not in ("id", "task", "gold")},
    }


def sft_row(ex: dict) -> dict:
    answer = fmt.render("先写公式，再代入。", "", str(get_task(ex["task"]).reference(ex)))
    return {
        "id": ex["id"],
        "task": ex["task"],
        "messages": get_task(ex["task"]).messages(ex) + [{"role": "assistant", "content": answer}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def run_script(
    script: Path, tmp: Path, fake: str, name: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, list[str], dict[str, str]]:
    bindir = tmp / f"bin-{name}"
    bindir.mkdir(exist_ok=True)
    (bindir / name).write_text(fake)
    (bindir / name).chmod(0o755)
    record = tmp / f"record-{name}"
    record.unlink(missing_ok=True)
    full_env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "REAL_PYTHON": sys.executable,
        **(env or {}),
    }
    if "CUDA_VISIBLE_DEVICES" not in (env or {}):
        full_env.pop("CUDA_VISIBLE_DEVICES", None)  # the script's default is what is tested
    proc = subprocess.run(
        ["bash", str(script), *args], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    argv = record.read_text().splitlines() if record.exists() else []
    envs = (
        dict(line.split("=", 1) for line in Path(f"{record}.env").read_text().splitlines()) if record.exists() else {}
    )
    return proc, argv, envs


def flags(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv)


def unquote(v: str) -> str:
    """What Hydra reads: 'error' and error, ['a','b'] and [a,b] are the same values."""
    return v.replace("'", "")
