"""Run directories: every stage writes its resolved config, provenance and metrics here.

    run = RunDir.create("runs/demo/sft", cfg)   # writes config.yaml and meta.json
    run.log(step=1, loss=2.3)                   # appends to metrics.jsonl

`meta.json` holds the git commit (and whether the tree was dirty), library versions, the Python
version, the command line and a start time. Nothing secret is written: configs name the
environment variables that hold API keys, never the keys, and URL credentials are redacted
(`dianjin.files.redact`).

One writer per run directory: `RunLock.acquire(path, "dianjin eval")` takes an exclusive `flock` on
`path/.lock` (released by the kernel when the process ends, however it ends) and records the holder's
pid and command there; a second writer gets a `RunDirError` naming the directory and the holder.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from dianjin.config import dump_yaml
from dianjin.files import JsonlAppender, atomic_write_json, atomic_write_text, iter_jsonl

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
log = logging.getLogger(__name__)

PACKAGES = (
    "dianjin",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "math-verify",
    "openai",
    "httpx2",
    "pyyaml",
    "vllm",
    "deepspeed",
)


def git_commit(cwd: Path | None = None) -> dict[str, Any]:
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
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


class RunDirError(ValueError):
    """A run directory that cannot be used: not creatable or not writable, or held by another writer."""


def make_dir(path: str | Path) -> Path:
    """Create `path` (and parents); RunDirError naming it when that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{path}: cannot create the output directory ({e.strerror or e})") from None
    return path


class RunLock:
    """An exclusive lock on a run directory for this process's lifetime (or until `release`)."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: str | Path, command: str) -> RunLock:
        path = make_dir(path)
        lock = path / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise RunDirError(f"{path}: the output directory is not writable ({e.strerror or e})") from None
        if fcntl is None:
            return cls(path, fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process
            holder = _holder(fd)
            os.close(fd)
            raise RunDirError(
                f"{path} is in use by another writer{holder}: one process per run directory; wait "
                "for it to finish (or stop it), or use another output directory"
            ) from None
        except OSError as e:  # a file system without locks: go on unlocked, as without fcntl
            log.warning(
                "%s: cannot lock the run directory (%s); make sure no other process writes there", path, e.strerror or e
            )
        info = {"pid": os.getpid(), "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:  # who holds it, for the message a second writer gets
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as e:
            os.close(fd)
            raise RunDirError(f"{path}: the output directory is not writable ({e.strerror or e})") from None
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder(fd: int) -> str:
    """' (pid 123, dianjin eval, since ...)' from the lock file, or '' when it cannot be read."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f" (pid {int(info['pid'])}, {info.get('command', '?')}, since {info.get('started', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@dataclass
class RunDir:
    path: Path

    @classmethod
    def create(cls, path: str | Path, cfg: Any | None = None, **extra: Any) -> RunDir:
        run = cls(make_dir(path))
        meta = {
            "git": git_commit(),
            "versions": versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
        try:
            if cfg is not None:
                atomic_write_text(run.path / "config.yaml", dump_yaml(cfg))
            atomic_write_json(run.path / "meta.json", meta)
        except OSError as e:
            raise RunDirError(f"{run.path}: cannot write to the output directory ({e.strerror or e})") from None
        return run

    def log(self, **metrics: Any) -> None:
        with JsonlAppender(self.path / "metrics.jsonl") as f:
            f.write(metrics)

    def metrics(self) -> list[dict[str, Any]]:
        p = self.path / "metrics.jsonl"
        return list(iter_jsonl(p)) if p.exists() else []
