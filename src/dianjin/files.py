"""Crash-safe file I/O: atomic writes (temporary name, then rename) and append-only JSONL.

A long run appends one JSON object per line and flushes it; a crash can at worst leave a partial
last line (one without its newline, maybe cut inside a multi-byte UTF-8 character), which
`read_jsonl` skips (with a warning) so a re-run continues from what is complete. Any other malformed
line (bad JSON, or bytes that are not UTF-8) is an error naming the file and line.

Credentials never reach a file: everything written here goes through `redact`, which replaces the
user information of a URL (`https://user:pass@host/v1` -> `https://***@host/v1`), as a base URL
with a key in it would carry. `redact_logging()` does the same for the log lines of a command.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


_ENCODER = json.JSONEncoder(ensure_ascii=False)
_UMASK = os.umask(0o022)  # read the process umask (setting it back at once): new files get 0o666 & ~umask
os.umask(_UMASK)


class JsonlError(ValueError):
    pass


# "scheme://USERINFO@": the user information (user, user:password, a token) ends at the last "@" before
# the host; it holds no "/", "?", "#", whitespace, quote or backslash (so a JSON or YAML string stays valid).
_USERINFO = re.compile(r"://[^/?#\s\"'<>\\]+@")


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***` (`https://***@host/v1`)."""
    if "@" not in text or "://" not in text:  # the common case, at the cost of one fast scan for "@"
        return text
    return _USERINFO.sub("://***@", text)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean is not msg:
            record.msg, record.args = clean, None
        return True


def redact_logging() -> None:
    """Redact URL credentials in every log line that the root logger's handlers write."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactFilter) for f in handler.filters):
            handler.addFilter(_RedactFilter())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (redacted) to `path` via a temporary file in the same folder and an atomic rename.
    The file gets the permissions `open()` would give it (mkstemp's are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(redact(text))
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
        self._f.write(redact(_ENCODER.encode(row)) + "\n")  # == json.dumps(row, ensure_ascii=False), minus an encoder
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
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
    """Read JSONL records; a bad line raises JsonlError naming file and line. A partial last line (no
    final newline: an interrupted write) is skipped when it is not a whole record, undecodable or not."""
    path = Path(path)
    with open(path, "rb") as f:
        lines = f.readlines()
    for n, raw in enumerate(lines, 1):
        partial = n == len(lines) and not raw.endswith(b"\n")
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            obj = json.loads(line)
        except UnicodeDecodeError as e:
            if partial:
                log.warning("%s:%d: skipping a partial last line (cut inside a character)", path, n)
                return
            raise JsonlError(f"{path}:{n}: not UTF-8 (byte {e.start + 1} of the line: {e.reason})") from None
        except json.JSONDecodeError as e:
            if partial:
                log.warning("%s:%d: skipping a partial last line", path, n)
                return
            raise JsonlError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
        except (RecursionError, ValueError) as e:  # nested too deep; an integer over int_max_str_digits
            raise JsonlError(f"{path}:{n}: unreadable JSON ({type(e).__name__}: {str(e)[:120]})") from None
        if not isinstance(obj, dict):
            raise JsonlError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        yield obj


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))
