"""Tests of the client's per-request paths: the per-attempt timeout, the cache commit before an answer
is reported, and the prebuilt JSON encoders (byte-identical output).

    .venv/bin/python -m pytest -q tests/test_client_fastpath.py
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from dianjin.files import JsonlAppender, write_jsonl
from dianjin.llm.client import ChatRequest, EndpointConfig, LLMClient, _canonical


# --- per-attempt timeout ------------------------------------------------------------------------
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


# --- cache commits before reports -------------------------------------------------------------------------
def _committed_keys(path: Path) -> set[str]:
    """Keys another connection sees: committed rows only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return {k for (k,) in con.execute("SELECT key FROM responses")}


@pytest.mark.parametrize(
    "n, concurrency, duplicates",
    [
        (40, 8, 0),  # more requests than workers: answers arrive in bursts
        (20, 64, 0),  # every request in flight at once
        (12, 4, 6),  # identical requests share one answer; still committed before it is reported
    ],
)
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


# --- prebuilt encoders: the same bytes as json.dumps -------------------------------------------------
ROWS = [
    {"key": "a|0", "prompt": [{"role": "user", "content": "久期是多少？"}], "response": None},  # CJK, None
    {"z": 1.5, "a": [1, 2, {"b": True}], "m": 'tab\there "quoted" \\ \u2028'},  # order kept, escapes
    {"nan": float("nan"), "inf": float("inf"), "big": 10**30, "neg": -0.0},  # non-finite floats allowed as before
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
