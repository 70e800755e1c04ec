"""The response cache: every successful LLM answer, in SQLite, keyed by a hash of the request.

A re-run never pays twice, and a crash loses nothing that was reported: `put` commits the row
before it returns (autocommit), and the client reports an answer only after its `put`. WAL
journal with `synchronous=NORMAL` makes a commit cheap (no fsync per row) and still durable when
the process is killed (only a power cut can lose the last rows). The key (see
`dianjin.llm.client.cache_key`) covers model, messages, sampling parameters and the sample/attempt
index; the base URL and the API key are not part of it, and the key is never stored: the `request`
column is the JSON body sent, which carries no credentials.

One connection guarded by a lock, so one cache may be shared by an async client (event-loop thread)
and a `SyncClient` (its own thread); operations are tens of microseconds, so they run inline.
Two processes may also share the file (SQLite's own locking, `busy_timeout` 30 s). A file that is
not a usable cache (corrupt, not SQLite, another schema, unwritable) is a `CacheError` naming it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key      TEXT PRIMARY KEY,   -- sha256 of the canonical request (dianjin.llm.client.cache_key)
    model    TEXT NOT NULL,      -- the configured model name
    request  TEXT NOT NULL,      -- the JSON body sent (no credentials)
    response TEXT NOT NULL,      -- the raw JSON body received
    latency  REAL NOT NULL,      -- seconds of the successful attempt
    attempts INTEGER NOT NULL,   -- HTTP attempts it took
    created  REAL NOT NULL       -- unix time
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INSERT = "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)"
_SELECT = "SELECT key, model, request, response, latency, attempts, created FROM responses WHERE key=?"


class CacheError(ValueError):
    """The cache file cannot be used; the message names it and says what to do."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path


@dataclass(frozen=True)
class CachedResponse:
    key: str
    model: str
    request: str
    response: str
    latency: float
    attempts: int
    created: float


class ResponseCache:
    """`ResponseCache(path)`; `get(key)`, `put(...)`, `len()`, `close()`; usable as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(self.path.parent, f"cannot create the cache's directory ({e.strerror or e})") from None
        # isolation_level=None: autocommit, so every INSERT is committed on its own, immediately.
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as e:
            raise CacheError(self.path, f"cannot open the response cache ({e})") from None
        try:
            with self._lock:
                self._open()
        except (sqlite3.Error, ValueError) as e:
            self._db.close()
            if isinstance(e, CacheError):
                raise
            advice = (
                ""
                if isinstance(e, sqlite3.OperationalError)
                # locked, read-only: not damaged
                else ("; move it aside to start a fresh cache (the answers in it would be paid for again)")
            )
            raise CacheError(self.path, f"not a usable response cache ({e}){advice}") from None

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise CacheError(self.path, f"cache schema version {row[0]}, this code reads {SCHEMA_VERSION}")
        self._db.execute("SELECT key FROM responses LIMIT 1").fetchall()  # a damaged table fails here, not mid-run

    def get(self, key: str) -> CachedResponse | None:
        try:
            with self._lock:
                row = self._db.execute(_SELECT, (key,)).fetchone()
        except sqlite3.DatabaseError as e:  # damaged after it was opened
            raise CacheError(self.path, f"unreadable response cache ({e})") from None
        return CachedResponse(*row) if row else None

    def put(self, key: str, model: str, request: str, response: str, latency: float, attempts: int) -> None:
        """Store one response, committed on return. A key already present is kept as it was."""
        with self._lock:
            self._db.execute(_INSERT, (key, model, request, response, float(latency), int(attempts), time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM responses WHERE key=?", (key,)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
