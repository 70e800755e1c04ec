"""Tests of the client's per-request fast paths (issue #6): the shared per-attempt timeout timer
(`dianjin.client._Deadlines`), batched cache commits (nothing reported before it is committed), the
one-pass HTTP/1.1 header parser, and the prebuilt JSON encoders (byte-identical output).

    .venv/bin/python -m pytest -q tests/test_client_fastpath.py
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from dianjin.cache import ResponseCache
from dianjin.client import ChatRequest, EndpointConfig, LLMClient, _canonical, _Deadlines
from dianjin.http1 import _Conn
from dianjin.io import JsonlAppender, write_jsonl

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402


# --- one timer for every attempt's timeout ---------------------------------------------------------
async def _attempt(deadlines: _Deadlines, start: float, work: float) -> tuple[str, float, int]:
    """One attempt like LLMClient._call's: ('ok' | 'timeout' | 'cancelled', seconds from its start,
    the task's pending cancellation requests after it)."""
    await asyncio.sleep(start)
    task = asyncio.current_task()
    t0 = time.monotonic()
    att = deadlines.enter()
    try:
        try:
            await asyncio.sleep(work)
        except BaseException as e:
            if deadlines.exit(att, isinstance(e, asyncio.CancelledError)):
                raise TimeoutError from e
            raise
        deadlines.exit(att, False)
        return "ok", time.monotonic() - t0, task.cancelling()
    except TimeoutError:
        return "timeout", time.monotonic() - t0, task.cancelling()
    except asyncio.CancelledError:
        return "cancelled", time.monotonic() - t0, task.cancelling()


@pytest.mark.parametrize("delay, attempts, cancel, expected", [
    (0.2, [(0, 0.01)], None, ["ok"]),  # finishes well before its deadline
    (0.1, [(0, 5.0)], None, ["timeout"]),  # held past the deadline: TimeoutError, not CancelledError
    (0.1, [(0, 0.01), (0.02, 5.0), (0.04, 5.0), (0.06, 0.01)], None, ["ok", "timeout", "timeout", "ok"]),
    # ^ staggered starts: each slow attempt expires at its own deadline, the quick ones are untouched
    (0.1, [(0, 5.0), (0.05, 0.3)], None, ["timeout", "timeout"]),  # the timer re-arms for the next deadline
    (5.0, [(0, 5.0)], 0.05, ["cancelled"]),  # someone else's cancellation stays a CancelledError
])
def test_deadlines_expire_each_attempt_at_its_own_deadline(delay, attempts, cancel, expected):
    async def go():
        deadlines = _Deadlines(asyncio.get_running_loop(), delay)
        tasks = [asyncio.create_task(_attempt(deadlines, s, w)) for s, w in attempts]
        if cancel is not None:
            await asyncio.sleep(cancel)
            tasks[0].cancel()
        out = await asyncio.gather(*tasks)
        return out, len(deadlines.pending)

    out, left = asyncio.run(go())
    assert [kind for kind, _, _ in out] == expected
    for kind, took, cancelling in out:
        if kind == "timeout":
            assert delay <= took < delay + 0.5, took  # not early; late only by scheduling
        elif kind == "ok":
            assert took < delay
        assert cancelling == (kind == "cancelled")  # our own cancellation is withdrawn, as asyncio.timeout does
    assert left == 0  # finished and expired attempts are dropped, nothing piles up


def test_client_attempt_times_out_and_the_next_request_is_unaffected():
    """The client path end to end: a held request times out (TimeoutError -> the item's error) and the
    shared timer does not touch the request after it."""

    def faults(req, receipt):  # hold "slow" past the client's timeout
        return "timeout" if req["messages"][0]["content"] == "slow" else None

    async def go(srv):
        cfg = EndpointConfig(base_url=srv.base_url, model="m", timeout=0.2, max_retries=0)
        async with LLMClient(cfg, progress=False) as llm:
            slow = await llm.map([ChatRequest([{"role": "user", "content": "slow"}])])
            fast = await llm.map([ChatRequest([{"role": "user", "content": "fast"}])])
        return slow[0], fast[0]

    with FakeOpenAI(faults=faults) as srv:
        slow, fast = asyncio.run(go(srv))
    assert slow.error is not None and "timed out after 0.2s" in slow.error
    assert fast.ok


# --- batched cache commits -------------------------------------------------------------------------
def _committed_keys(path: Path) -> set[str]:
    """Keys another connection sees: committed rows only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return {k for (k,) in con.execute("SELECT key FROM responses")}


@pytest.mark.parametrize("n, concurrency, duplicates", [
    (40, 8, 0),  # more requests than workers: answers arrive in bursts and are committed per burst
    (20, 64, 0),  # every request in flight at once
    (12, 4, 6),  # identical requests share one answer; still committed before it is reported
])
def test_batch_reports_only_committed_answers(tmp_path, n, concurrency, duplicates):
    path = tmp_path / "cache.sqlite"
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(n)]
    reqs = [ChatRequest(m) for m in msgs] + [ChatRequest(msgs[i]) for i in range(duplicates)]

    async def go(srv):
        cfg = EndpointConfig(base_url=srv.base_url, model="m", concurrency=concurrency)
        seen = []
        async with LLMClient(cfg, cache=path, progress=False) as llm:
            async for i, res in llm.iter_completed(reqs):
                assert res.ok, res.error
                assert res.key in _committed_keys(path), f"request {i} reported before its commit"
                seen.append(i)
        return seen

    with FakeOpenAI(delay=0.02) as srv:
        seen = asyncio.run(go(srv))
        assert srv.duplicates() == {}
    assert sorted(seen) == list(range(len(reqs)))
    assert len(_committed_keys(path)) == n


@pytest.mark.parametrize("how", [
    "commit",  # the batch's commit
    "close",  # closing the cache commits what is pending
    "plain put",  # a plain put (e.g. another thread's SyncClient) commits the open transaction too
])
def test_deferred_put_is_invisible_until_committed(tmp_path, how):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put("k1", "m", "{}", "{}", 0.1, 1, defer=True)
    assert cache.pending and "k1" in cache  # the writer sees its own row...
    assert _committed_keys(path) == set()  # ...nobody else does yet
    {"commit": cache.commit, "close": cache.close,
     "plain put": lambda: cache.put("k2", "m", "{}", "{}", 0.1, 1)}[how]()
    assert "k1" in _committed_keys(path)
    assert not cache.pending
    cache.close()  # closing twice is harmless


class _FailingCommits:
    """A connection whose COMMIT fails (a full disk, say); everything else goes to the real one."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, sql: str, *args):
        if sql == "COMMIT":
            self.db.execute("ROLLBACK")  # what SQLite may do on an I/O error: the batch is gone
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


@pytest.mark.parametrize("how", [
    "commit",  # the batch's own commit
    "plain put",  # another caller's plain put committed (and lost) the batch's rows
])
def test_failed_commit_is_never_reported_as_done(tmp_path, how):
    cache = ResponseCache(tmp_path / "c.sqlite")
    real = cache._db
    cache._db = _FailingCommits(real)
    cache.put("k1", "m", "{}", "{}", 0.1, 1, defer=True)
    with pytest.raises(sqlite3.OperationalError):
        {"commit": cache.commit, "plain put": lambda: cache.put("k2", "m", "{}", "{}", 0.1, 1)}[how]()
    assert "k1" not in cache and cache.commit_error is not None
    llm = LLMClient(EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m"), cache=cache)
    with pytest.raises(sqlite3.OperationalError):  # a batch raises instead of reporting a lost answer
        llm._committed()
    cache._db = real
    cache.close()


# --- HTTP/1.1 head parsing -------------------------------------------------------------------------
@pytest.mark.parametrize("head, headers, length, keep_alive", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1", {"content-length": "0", "x-a": "1"}, 0, True),
    # ^ names lower-cased
    (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0", {"x-a": "2", "content-length": "0"}, 0, True),
    # ^ a repeated header keeps its last value
    (b"HTTP/1.1 200 OK\r\nX-A:\t v \x0b\r\nContent-Length:  3 ", {"x-a": "v", "content-length": "3"}, 3, True),
    # ^ ASCII whitespace stripped around values, as bytes.strip() does
    (b"HTTP/1.1 200 OK\r\nX-A: \xa0caf\xe9\xa0\r\nContent-Length: 0", {"x-a": "\xa0caf\xe9\xa0",
                                                                        "content-length": "0"}, 0, True),
    # ^ latin-1 bytes kept; \xa0 is not stripped (str.strip() would)
    (b"HTTP/1.1 200 OK\r\nCONNECTION: Close\r\nContent-Length: 0", {"connection": "Close",
                                                                     "content-length": "0"}, 0, False),
    # ^ Connection: close, any case
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0", {"connection": "keep-alive",
                                                                          "content-length": "0"}, 0, True),
    # ^ HTTP/1.0 with keep-alive
])
def test_http1_head_parsed_to_header_dict(head, headers, length, keep_alive):
    async def feed():
        conn = _Conn()
        conn.waiter = asyncio.get_running_loop().create_future()
        conn.data_received(head + b"\r\n\r\n" + b"x" * length)
        assert conn.waiter.done() and conn.waiter.exception() is None
        return conn

    conn = asyncio.run(feed())
    assert (conn.headers, conn.length, conn.keep_alive, bytes(conn.body)) == (headers, length, keep_alive,
                                                                              b"x" * length)


# --- prebuilt encoders: the same bytes as json.dumps -------------------------------------------------
ROWS = [
    {"key": "a|0", "prompt": [{"role": "user", "content": "久期是多少？"}], "response": None},  # CJK, None
    {"z": 1.5, "a": [1, 2, {"b": True}], "m": "tab\there \"quoted\" \\ \u2028"},  # order kept, escapes
    {"nan": float("nan"), "inf": float("inf"), "big": 10 ** 30, "neg": -0.0},  # non-finite floats allowed as before
]


@pytest.mark.parametrize("row", ROWS)
def test_jsonl_and_canonical_match_json_dumps(tmp_path, row):
    with JsonlAppender(tmp_path / "a.jsonl") as app:
        app.write(row)
    write_jsonl(tmp_path / "w.jsonl", [row])
    want = json.dumps(row, ensure_ascii=False) + "\n"
    assert (tmp_path / "a.jsonl").read_text(encoding="utf-8") == want
    assert (tmp_path / "w.jsonl").read_text(encoding="utf-8") == want
    assert _canonical(row) == json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
