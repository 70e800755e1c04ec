"""Crash-safe file I/O: atomic writes (temporary name, then rename) and append-only JSONL.

A long run appends one JSON object per line and flushes it; a crash can at worst leave a partial
last line, which `read_jsonl` skips (with a warning) so a re-run continues from what is complete.
Any other malformed line is an error naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)


_ENCODER = json.JSONEncoder(ensure_ascii=False)
_UMASK = os.umask(0o022)  # read the process umask (setting it back at once): new files get 0o666 & ~umask
os.umask(_UMASK)


class JsonlError(ValueError):
    pass


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder and an atomic rename. The file
    gets the permissions `open()` would give it (mkstemp's are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a whole JSONL file atomically."""
    return atomic_write_text(path, "".join(_ENCODER.encode(r) + "\n" for r in rows))


class JsonlAppender:
    """Append-only JSONL writer; each record is flushed as it is written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(_ENCODER.encode(row) + "\n")  # == json.dumps(row, ensure_ascii=False), minus building an encoder
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _drop_partial_tail(path: Path) -> None:
    """Truncate a trailing line without newline (left by a crash) so appends stay well formed."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        cut = data.rfind(b"\n") + 1
        log.warning("%s: dropping a partial last line left by an interrupted run", path)
        f.truncate(cut)


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read JSONL records; a bad line raises JsonlError naming file and line (a partial last line is skipped)."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines) and not line.endswith("\n"):
                log.warning("%s:%d: skipping a partial last line", path, n)
                return
            raise JsonlError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise JsonlError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        yield obj


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))
