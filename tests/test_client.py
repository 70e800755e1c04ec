"""Tests of the LLM client (dianjin.llm.client, cache, ledger) against the real loopback server
in tests/fake_openai.py: faults, Retry-After, 4xx errors, the cache across re-runs and SIGKILL,
key hygiene, the ledger, reasoning fields, rate and concurrency limits (bounded responses:
tests/test_client_bounds.py).

    .venv/bin/python -m pytest -q tests/test_client.py
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, FaultPlan, count_tokens, default_script

from dianjin.errors import DataError
from dianjin.llm.cache import ResponseCache
from dianjin.llm.client import (
    ChatRequest,
    ChatResult,
    EndpointConfig,
    LLMClient,
    LLMError,
    SyncClient,
    backoff,
    cache_key,
    retry_after,
)
from dianjin.llm.ledger import Ledger, Progress

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-9f8e7d6c5b4a-do-not-leak"


def prompts(n: int, tag: str = "q") -> list[list[dict]]:
    return [
        [{"role": "system", "content": "你是金融分析师。"}, {"role": "user", "content": f"{tag}{i}: 利率是多少?"}]
        for i in range(n)
    ]


def cfg(srv: FakeOpenAI, **kw) -> EndpointConfig:
    base = dict(base_url=srv.base_url, model="fake-model", timeout=2.0, backoff_base=0.005, backoff_max=0.05)
    return EndpointConfig(**{**base, **kw})


def run_map(config: EndpointConfig, reqs, cache=None, ledger=None, stage="test") -> list[ChatResult]:
    async def go():
        async with LLMClient(config, cache=cache, ledger=ledger, progress=False) as llm:
            return await llm.map(reqs, stage=stage)

    return asyncio.run(go())


def expected_content(messages: list[dict]) -> str:
    return default_script({"messages": messages})["content"]


# --- retries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kinds, fraction, attempts",
    [
        (("429",), 0.5, 2),  # rate limited twice, Retry-After honoured each time
        (("500",), 0.5, 1),  # server error
        (("503",), 0.5, 3),  # repeated unavailability, still within max_retries
        (("timeout",), 0.3, 1),  # the server holds the request past the client's timeout
        (("malformed",), 0.5, 1),  # a 200 whose body is cut-off JSON
        (("empty",), 0.5, 1),  # a 200 with no choices
        (("drop",), 0.5, 1),  # connection closed without a response
        (("html",), 0.5, 1),  # a proxy's HTML error page with status 200
        (("cut",), 0.5, 1),  # the connection dies in the middle of the body
        (("nested",), 0.5, 1),  # JSON nested deeper than the parser's recursion limit
        (("429", "500", "timeout", "malformed", "drop"), 0.2, 1),  # a 20% mix of the common faults
    ],
)
def test_faults_give_fault_free_results(kinds, fraction, attempts):
    reqs = prompts(30)
    plan = FaultPlan(kinds=kinds, fraction=fraction, attempts=attempts, retry_after=0.02, hang=3.0)
    with FakeOpenAI(faults=plan) as srv:  # a timeout of 1 s: a busy 2-core box never takes that long to answer
        results = run_map(cfg(srv, timeout=1.0), reqs)
        faulted = {r["key"] for r in srv.requests if r["fault"]}
        assert faulted, "the plan faulted nothing; the case tests nothing"
        assert srv.duplicates() == {}
        assert sum(srv.answers.values()) == len(reqs)
    assert [r.content for r in results] == [expected_content(m) for m in reqs]
    assert all(r.ok and r.error is None for r in results)
    assert {r.key for r in results if r.attempts == attempts + 1} == faulted


@pytest.mark.parametrize(
    "headers, want",
    [
        ({"retry-after": "2"}, 2.0),  # integer seconds
        ({"retry-after": "0.25"}, 0.25),  # fractional seconds (common in practice)
        ({"retry-after-ms": "150"}, 0.15),  # OpenAI's millisecond header wins
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),  # ...over the seconds one
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # an HTTP date in the past: no wait
        ({"retry-after": "soon"}, None),  # junk: fall back to exponential backoff
        ({}, None),  # absent
    ],
)
def test_retry_after_parsing(headers, want):
    assert retry_after(headers) == pytest.approx(want) if want is not None else retry_after(headers) is None


def test_retry_after_is_honoured_in_time():
    plan = FaultPlan(kinds=("429",), fraction=1.0, attempts=1, retry_after=0.3)
    with FakeOpenAI(faults=plan) as srv:
        results = run_map(cfg(srv, backoff_base=0.001), prompts(3))
        times: dict[str, list[float]] = {}
        for r in srv.requests:
            times.setdefault(r["key"], []).append(r["time"])
    assert all(r.ok and r.attempts == 2 for r in results)
    gaps = [t[1] - t[0] for t in times.values()]
    assert len(gaps) == 3 and all(0.3 <= g < 0.3 * 1.1 + 0.15 for g in gaps), gaps


@pytest.mark.parametrize(
    "attempt, lo, hi",
    [
        (1, 0.05, 0.1),  # first retry: half to full backoff_base
        (3, 0.2, 0.4),  # doubles per attempt
        (10, 0.5, 1.0),  # capped at backoff_max
    ],
)
def test_backoff_is_exponential_with_jitter(attempt, lo, hi):
    c = EndpointConfig(base_url="http://x/v1", model="m", backoff_base=0.1, backoff_max=1.0)
    waits = [backoff(c, attempt, None) for _ in range(200)]
    assert all(lo <= w <= hi for w in waits) and len(set(waits)) > 100


# --- clear errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, message",
    [
        (400, "max_tokens is too large: 999999"),  # bad request
        (401, "invalid api key"),  # auth
        (404, "model fake-x does not exist"),  # unknown model
        (422, "messages[0].role must be one of system/user/assistant"),  # validation
    ],
)
def test_4xx_is_a_clear_error_without_retry(status, message):
    with FakeOpenAI(script=lambda req: {"status": status, "error": message}) as srv:

        async def one():
            async with LLMClient(cfg(srv), progress=False) as llm:
                return await llm.chat(prompts(1)[0])

        with pytest.raises(LLMError) as err:
            asyncio.run(one())
        text = str(err.value)
        assert srv.base_url + "/chat/completions" in text and f"HTTP {status}" in text and message in text
        assert err.value.status == status and err.value.attempts == 1
        assert len(srv.requests) == 1  # not retried
        [res] = run_map(cfg(srv), prompts(1))  # map() captures it on the item instead of raising
        assert res.error and message in res.error and not res.ok and res.content is None


def test_retries_exhausted_names_the_last_failure():
    with FakeOpenAI(faults=FaultPlan(kinds=("500",), fraction=1.0, attempts=99)) as srv:
        [res] = run_map(cfg(srv, max_retries=2), prompts(1))
        assert len(srv.requests) == 3
    assert res.error and "gave up after 3 attempts" in res.error and "HTTP 500" in res.error and res.attempts == 3


# --- batch API -----------------------------------------------------------------------------------
def test_map_keeps_order_and_captures_failures():
    bad = {"q3: 利率是多少?", "q7: 利率是多少?"}

    def script(req):
        q = req["messages"][-1]["content"]
        return {"status": 400, "error": "refused"} if q in bad else default_script(req)

    reqs = [ChatRequest(m, tag=i) for i, m in enumerate(prompts(12))]
    with FakeOpenAI(script=script, delay=0.01) as srv:
        results = run_map(cfg(srv, concurrency=4), reqs)

        async def stream():
            async with LLMClient(cfg(srv), progress=False) as llm:
                return [i async for i, _ in llm.iter_completed(reqs)]

        seen = asyncio.run(stream())
    assert [r.tag for r in results] == list(range(12))
    assert [i for i, r in enumerate(results) if r.error] == [3, 7]
    assert all(r.content == expected_content(reqs[i].messages) for i, r in enumerate(results) if i not in (3, 7))
    assert sorted(seen) == list(range(12))


def test_identical_requests_in_flight_are_sent_once():
    reqs = prompts(1) * 5 + [ChatRequest(prompts(1)[0], sample=1)]  # 5 duplicates, plus a distinct 2nd sample
    with FakeOpenAI(delay=0.05) as srv:
        results = run_map(cfg(srv), reqs)
        assert len(srv.requests) == 2 and srv.duplicates() == {}
    assert len({r.content for r in results}) == 1 and sum(r.cached for r in results[:5]) == 4


# --- cache ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, hit",
    [
        ({}, True),  # the same requests again
        ({"sample": 1}, False),  # another sample/attempt index is another request
        ({"temperature": 0.7}, False),  # sampling parameters are in the key
        ({"max_tokens": 64}, False),  # so is max_tokens
        ({"new_server": True}, True),  # the base URL is not: a run moved to another port reuses its cache
        ({"key": "sk-other-key"}, True),  # the API key is not part of the key
        ({"salt": "ckpt-2"}, False),  # cache_salt separates e.g. two checkpoints served under one name
    ],
)
def test_cache_hit_on_rerun(tmp_path, monkeypatch, change, hit):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    cache = tmp_path / "cache.sqlite"
    reqs = prompts(8)
    with FakeOpenAI() as srv:
        first = run_map(cfg(srv, api_key_env="FAKE_KEY"), reqs, cache=cache)
        if "key" in change:
            monkeypatch.setenv("FAKE_KEY", change["key"])
        params = {k: v for k, v in change.items() if k in ("sample", "temperature", "max_tokens")}
        again = [ChatRequest(m, **params) for m in reqs]
        with FakeOpenAI() as srv2:
            target = srv2 if change.get("new_server") else srv
            before = len(target.requests)
            second = run_map(cfg(target, api_key_env="FAKE_KEY", cache_salt=change.get("salt")), again, cache=cache)
            sent = len(target.requests) - before
    assert sent == (0 if hit else len(reqs))
    assert all(r.cached == hit for r in second) and not any(r.cached for r in first)
    assert [r.content for r in second] == [r.content for r in first]
    if hit:
        assert [(r.attempts, r.latency, r.prompt_tokens) for r in second] == [
            (r.attempts, r.latency, r.prompt_tokens) for r in first
        ]


KILL_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from dianjin.llm.client import ChatRequest, EndpointConfig, LLMClient
    base_url, cache, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reqs = [ChatRequest([{"role": "user", "content": f"item {i}"}], tag=i) for i in range(n)]
    async def main():
        cfg = EndpointConfig(base_url=base_url, model="fake-model", concurrency=8, timeout=5)
        async with LLMClient(cfg, cache=cache, progress=False) as llm:
            return await llm.map(reqs, stage="kill")
    print(json.dumps([[r.tag, r.content, r.cached] for r in asyncio.run(main())]))
""")


def _cached_rows(path: Path) -> int:
    """Rows committed to the cache file at `path` (0 before it exists); the connection is closed."""
    if not path.exists():
        return 0
    with ResponseCache(path) as cache:
        return len(cache)


def test_cache_survives_sigkill_mid_run(tmp_path):
    script, cache, n = tmp_path / "run.py", tmp_path / "cache.sqlite", 60
    script.write_text(KILL_SCRIPT)
    cmd = [sys.executable, str(script), "", str(cache), str(n)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with FakeOpenAI(delay=0.02, answer_limit=25) as srv:  # the server holds every reply after 25 answers
        cmd[2] = srv.base_url
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        srv.wait_answered(25)
        deadline = time.monotonic() + 20  # the client commits what it received; 8 requests wait on held replies
        while _cached_rows(cache) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert _cached_rows(cache) == 25  # every answer received before the kill was committed
        srv.wait_disconnected()  # the server has seen every connection of the killed client close
        srv.resume()  # held replies go to dead connections: not answered
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert srv.duplicates() == {} and len(srv.answers) == n  # each request answered exactly once
    rows = json.loads(done.stdout)
    assert [r[0] for r in rows] == list(range(n))
    assert [r[1] for r in rows] == [expected_content([{"role": "user", "content": f"item {i}"}]) for i in range(n)]
    assert sum(r[2] for r in rows) == 25


# --- secrets -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "auth_header, sent",
    [
        ("Authorization", f"Bearer {SECRET}"),  # the OpenAI-style bearer token
        ("api-key", SECRET),  # Azure-style key header
    ],
)
def test_api_key_never_stored_or_logged(tmp_path, monkeypatch, caplog, capfd, auth_header, sent):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    plan = FaultPlan(kinds=("500", "429", "malformed"), fraction=0.5, retry_after=0.01)

    def script(req):  # q0 gets a 400, so an error message is produced too
        return {"status": 400, "error": "nope"} if "q0" in req["messages"][-1]["content"] else default_script(req)

    ledger = Ledger(tmp_path / "ledger.json")
    with FakeOpenAI(faults=plan, script=script) as srv:
        c = cfg(srv, api_key_env="FAKE_KEY", auth_header=auth_header)
        results = run_map(c, prompts(10), cache=tmp_path / "cache.sqlite", ledger=ledger)
        auth = {r["headers"].get(auth_header.lower()) for r in srv.requests}
        llm = LLMClient(c, progress=False)
        shown = [
            repr(c),
            str(c),
            repr(llm),
            *(r.error or "" for r in results),
            json.dumps([r.to_dict() for r in results]),
        ]
    assert auth == {sent}  # it is sent...
    assert results[0].error and "nope" in results[0].error  # (an error and retries were logged)
    out, err = capfd.readouterr()
    blobs = [p.read_bytes() for p in tmp_path.iterdir()] + [caplog.text.encode(), out.encode(), err.encode()]
    blobs += [s.encode() for s in shown]
    assert not any(SECRET.encode() in b for b in blobs)  # ...and nowhere else


# --- ledger --------------------------------------------------------------------------------------
def test_ledger_matches_server_usage(tmp_path):
    plan = FaultPlan(kinds=("length", "500"), fraction=0.4, retry_after=0.01)
    ledger = Ledger()
    with FakeOpenAI(faults=plan) as srv:
        c = cfg(srv, price_in=2.0, price_out=8.0)
        first = run_map(c, prompts(20), cache=tmp_path / "c.sqlite", ledger=ledger, stage="distill")
        run_map(c, prompts(20), cache=tmp_path / "c.sqlite", ledger=ledger, stage="distill")  # all cached
        run_map(c, prompts(5, "judge"), cache=tmp_path / "c.sqlite", ledger=ledger, stage="verify")
        stats = srv.stats()
    d, v, t = ledger.rows[("distill", "fake-model")], ledger.rows[("verify", "fake-model")], ledger.total()
    assert (t.prompt_tokens, t.completion_tokens, t.calls) == (stats["prompt_tokens"], stats["completion_tokens"], 25)
    assert t.cost == pytest.approx((2.0 * stats["prompt_tokens"] + 8.0 * stats["completion_tokens"]) / 1e6)
    assert (d.calls, d.cached, v.calls, v.cached) == (20, 20, 5, 0)
    assert d.truncated == sum(r.truncated for r in first) > 0 and d.retries == stats["faults"].get("500", 0) > 0
    assert d.prompt_tokens == sum(r.prompt_tokens for r in first)
    assert all(not r.ok for r in first if r.truncated)
    path = ledger.save(tmp_path / "ledger.json")
    assert Ledger.load(path).to_json() == ledger.to_json()
    table = ledger.table()
    assert "distill" in table and "verify" in table and "TOTAL" in table


# --- reasoning fields ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply, field, want",
    [
        (
            {"content": "<answer>B</answer>", "reasoning_content": "先看选项"},
            "reasoning_content",
            ("<answer>B</answer>", "先看选项", "stop", True),
        ),  # DeepSeek-R1 style
        (
            {"content": "<answer>B</answer>", "reasoning": "look at the options"},
            "reasoning",
            ("<answer>B</answer>", "look at the options", "stop", True),
        ),  # vLLM >= 0.9 / OpenRouter field name
        (
            {"content": "<think>inline</think><answer>B</answer>"},
            "reasoning_content",
            ("<think>inline</think><answer>B</answer>", None, "stop", True),
        ),  # no reasoning field: left in content
        (
            {"content": None, "reasoning_content": "long thought", "finish_reason": "length"},
            "reasoning_content",
            (None, "long thought", "length", False),
        ),  # ran out of tokens while thinking: truncated, not ok
        (
            {"content": "partial", "finish_reason": "length"},
            "reasoning_content",
            ("partial", None, "length", False),
        ),  # truncated answer
    ],
)
def test_reasoning_content_handling(reply, field, want):
    with FakeOpenAI(script=lambda req: reply, reasoning_field=field) as srv:
        [r] = run_map(cfg(srv), prompts(1))
    assert (r.content, r.reasoning_content, r.finish_reason, r.ok) == want
    assert r.truncated == (want[2] == "length") and r.error is None
    reasoning = reply.get("reasoning_content") or reply.get("reasoning")
    assert r.completion_tokens == count_tokens(reply.get("content")) + count_tokens(reasoning)


# --- limits --------------------------------------------------------------------------------------
def test_concurrency_is_bounded():
    with FakeOpenAI(delay=0.05) as srv:
        run_map(cfg(srv, concurrency=3), prompts(12))
        assert srv.stats()["max_inflight"] == 3


def test_rate_limit_spaces_requests():
    with FakeOpenAI() as srv:
        run_map(cfg(srv, rps=25.0), prompts(11, "rate"))
        times = sorted(r["time"] for r in srv.requests)
    assert times[-1] - times[0] >= 10 / 25 * 0.95  # 10 gaps of 40 ms (burst 1)


# --- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, field, fragment",
    [
        ({"model": "m"}, "base_url", "required"),  # missing URL
        ({"base_url": "api.deepseek.com", "model": "m"}, "base_url", "http://"),  # no scheme
        ({"base_url": "http://h/v1", "model": ""}, "model", "non-empty"),  # empty model
        ({"base_url": "http://h/v1", "model": "m", "concurrency": 0}, "concurrency", ">= 1"),  # no concurrency
        ({"base_url": "http://h/v1", "model": "m", "rps": -1}, "rps", "> 0"),  # negative rate
        ({"base_url": "http://h/v1", "model": "m", "temperature": 3}, "temperature", "[0, 2]"),  # out of range
        ({"base_url": "http://h/v1", "model": "m", "max_tokens": "1k"}, "max_tokens", "integer"),  # wrong type
        (
            {"base_url": "http://h/v1", "model": "m", "max_retries": True},
            "max_retries",
            "integer",
        ),  # a bool is not an int
        ({"base_url": "http://h/v1", "model": "m", "temprature": 0.6}, "temprature", "unknown key"),  # typo
        ({"base_url": "http://h/v1", "model": "m", "api_key": "sk-abc"}, "api_key", "api_key_env"),  # key in config
        (
            {"base_url": "http://h/v1", "model": "m", "headers": {"Authorization": "Bearer sk"}},
            "headers",
            "api_key_env",
        ),
        # ^ nor in a header
    ],
)
def test_config_errors_name_the_field(data, field, fragment):
    with pytest.raises(DataError) as err:
        EndpointConfig.from_dict(data, where="recipes/x.yaml: teacher")
    assert err.value.field == field and fragment in str(err.value) and "recipes/x.yaml: teacher" in str(err.value)


def test_config_never_echoes_a_pasted_key_and_needs_the_env_var(monkeypatch):
    with pytest.raises(DataError) as err:
        EndpointConfig.from_dict({"base_url": "http://h/v1", "model": "m", "api_key_env": "sk-" + SECRET})
    assert SECRET not in str(err.value) and "NAME of an environment variable" in str(err.value)
    with pytest.raises(DataError) as err:
        EndpointConfig.from_dict({"base_url": "http://h/v1", "model": "m", "headers": {"api-key": SECRET}})
    assert SECRET not in str(err.value)
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    c = EndpointConfig.from_dict(
        {"base_url": "http://h/v1/chat/completions/", "model": "m", "api_key_env": "NO_SUCH_KEY_VAR"}
    )
    assert c.base_url == "http://h/v1"  # normalised
    with pytest.raises(LLMError, match="NO_SUCH_KEY_VAR"):
        LLMClient(c)


def test_cache_key_is_canonical():
    c = EndpointConfig(base_url="http://h/v1", model="m", temperature=0.6)
    llm = LLMClient(c)
    _, body, key = llm.prepare(ChatRequest([{"content": "x", "role": "user"}]))
    _, body2, key2 = llm.prepare([{"role": "user", "content": "x"}])  # dict order does not matter
    assert key == key2 and body == body2 and json.loads(body)["temperature"] == 0.6
    assert key == cache_key(body, 0, None) != cache_key(body, 1, None)


# --- sync helper ---------------------------------------------------------------------------------
def test_sync_client_is_a_judge_even_inside_an_event_loop(tmp_path):
    script = {"判断: A": "<answer>\\boxed{1}</answer>", "long": ("cut", None, "length")}
    with FakeOpenAI(script=script) as srv, SyncClient(cfg(srv), cache=tmp_path / "j.sqlite", stage="judge") as judge:
        assert judge([{"role": "user", "content": "判断: A"}]) == "<answer>\\boxed{1}</answer>"

        async def inside():  # e.g. a scorer called from an async pipeline
            return judge([{"role": "user", "content": "判断: A"}])

        assert asyncio.run(inside()) == "<answer>\\boxed{1}</answer>"
        with pytest.raises(LLMError, match="truncated"):
            judge([{"role": "user", "content": "long"}])
        assert len(srv.requests) == 2 and judge.ledger.rows[("judge", "fake-model")].cached == 1


# --- progress ------------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_and_throttles():
    stream = _Tty()
    p = Progress(1000, desc="distill", stream=stream)
    for i in range(1000):
        p.start()
        p.finish(ok=i % 10 != 0, cached=i < 100)
    p.close()
    assert stream.getvalue().count("\r") <= 3  # 1000 updates in well under a second: throttled
    assert "distill: 900/1000 done, 100 failed, 0 in flight, 100 cached" in p.line()
    assert "ETA -" in p.line()


@pytest.mark.parametrize(
    "ok,truncated,expect",
    [
        (True, True, "1/1 done (1 truncated), 0 failed"),  # an answer cut at max_tokens is an answer, not a failure
        (True, False, "1/1 done, 0 failed"),  # a whole answer
        (False, True, "0/1 done, 1 failed"),  # an error stays an error, whatever its finish reason
    ],
)
def test_progress_counts_truncated_answers_as_done(ok: bool, truncated: bool, expect: str):
    p = Progress(1, desc="eval", stream=io.StringIO())
    p.start()
    p.finish(ok, truncated=truncated)
    assert f"eval: {expect}," in p.line()


def test_null_content_is_never_cached(tmp_path):
    def script(req):
        return {"content": None, "finish_reason": "stop"} if "q0" in last_user_text(req) else default_script(req)

    with FakeOpenAI(script=script) as srv:
        results = run_map(cfg(srv, max_retries=1), prompts(2), cache=tmp_path / "c.sqlite")
    assert results[0].error and "content is null" in results[0].error and results[1].ok
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 1  # only the real answer


def last_user_text(req: dict) -> str:
    return req["messages"][-1]["content"]


def test_models_endpoint():
    with FakeOpenAI(model="qwen-fin") as srv:

        async def go():
            async with LLMClient(cfg(srv), progress=False) as llm:
                return await llm.models()

        assert asyncio.run(go()) == ["qwen-fin"]
