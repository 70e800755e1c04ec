"""A real, fast, loopback OpenAI-compatible server for tests and benchmarks.

    with FakeOpenAI(script={"2+2?": "<think>..</think><answer>4</answer>"}, delay=0.05) as srv:
        client = LLMClient(EndpointConfig(base_url=srv.base_url, model="m"))
        ...
        srv.requests          # every received request (a thread-safe snapshot)
        srv.answers           # Counter: distinct request key -> times answered successfully
        srv.duplicates()      # keys answered more than once (must stay empty across kill/re-run)

Why hand-written: the benchmark needs ~1,280 req/s at 50 ms latency and concurrency 64 on a 2-core
box, so this is a plain asyncio `Protocol` speaking HTTP/1.1 with keep-alive, parsed by hand (no
framework, no task per request: the reply is scheduled with `loop.call_later`). It runs on its own
event loop in a background thread (tests: `srv.requests` is live), or in a separate process
(`process=True`, benchmarks: no shared GIL; counters come back over `GET /_fake/stats`).

Endpoints: `POST /v1/chat/completions`, `GET /v1/models`, `GET /_fake/stats`.

Scripted answers (`script=`): None (a deterministic echo of the last user message), a dict keyed by
the last user message, or a function `request_json -> reply`. A reply is a str (the content), a
tuple `(content, reasoning_content, finish_reason)`, or a dict with any of `content`,
`reasoning_content`, `reasoning` (vLLM/OpenRouter's field name), `finish_reason`, `usage`, or
`status` + `error` for a scripted HTTP error. A dict script without the prompt answers 400.

Faults (`faults=`): a `FaultPlan` (`tests/fake_plans.py`: the first `attempts` receipts of a `fraction`
of distinct requests chosen by hash, or a seeded per-receipt `rate`), or a function `(request_json,
receipt_number) -> kind | None`. Kinds (`FAULTS`): 429 with Retry-After, 500, 503, 400, timeout (hold
the request past the client's timeout, then close), malformed JSON, empty choices, a dropped connection,
an HTML page with status 200, a body cut off by a dropped connection, JSON nested past the parser's
recursion limit, a truncated answer (finish_reason "length").

Delays: every reply waits `delay` seconds (429 and dropped connections answer at once), or, with
`delay_dist=LogNormalDelay(median, sigma, cap, seed)`, a seeded log-normal draw per receipt.

A request's identity ("key") is the client's `X-Dianjin-Key` header when sent (it is the client's
cache key, so repeated samples of one prompt stay distinct), else the sha256 of the body.
"Answered successfully" means a 200 with a well-formed completion was written to an open connection.
`stats()` also sums the usage tokens of those answers and records the most requests ever in flight.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fake_plans import FAULT_KINDS, FaultPlan, LogNormalDelay, count_tokens, default_script, last_user

Reply = str | tuple | dict
Script = Callable[[dict], Reply] | dict[str, Reply] | None
FaultFn = Callable[[dict, int], str | None]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# --- HTTP plumbing -------------------------------------------------------------------------------
def _http(status: int, body: bytes, headers: dict[str, str] | None = None, ctype: str = "application/json") -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "fake_error", "code": status}}).encode()
    return _http(status, body, headers)


class _Conn(asyncio.Protocol):
    """One keep-alive connection; requests are handled one at a time, in order."""

    def __init__(self, server: _Server):
        self.server = server
        self.buf = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.server.conns.add(self)

    def connection_lost(self, exc) -> None:
        self.server.conns.discard(self)
        if self.busy:
            self.busy = False
            self.server.ended()
        if self.timer:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.next()

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def next(self) -> None:
        if self.busy or not self.open:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, _ = head[0].split(" ", 2)
        except ValueError:
            self.send(_error(400, "bad request line"), close=True)
            return
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.send(_error(411, "chunked bodies are not supported"), close=True)
            return
        n = int(headers.get("content-length", "0") or 0)
        if len(self.buf) < end + 4 + n:
            return
        body = bytes(self.buf[end + 4 : end + 4 + n])
        del self.buf[: end + 4 + n]
        self.busy = True
        self.server.started()
        self.server.handle(self, method, target.split("?", 1)[0], headers, body)

    def send(self, data: bytes, close: bool = False) -> bool:
        """Write a response; False if the peer is gone. Then serve the next pipelined request."""
        self.timer = None
        if not self.open:
            return False
        self.transport.write(data)  # type: ignore[union-attr]
        self.server.ended()
        self.busy = False
        if close:
            self.transport.close()  # type: ignore[union-attr]
        else:
            self.next()
        return True

    def drop(self) -> None:
        self.timer = None
        if self.transport is not None:
            self.transport.abort()


class _Server:
    """The request handler and its counters; lives on the server's event loop."""

    def __init__(
        self,
        script: Script,
        faults: FaultPlan | FaultFn | None,
        delay: float,
        model: str,
        reasoning_field: str,
        answer_limit: int | None,
        log_requests: bool,
        delay_dist: LogNormalDelay | None = None,
    ):
        self.script, self.faults, self.delay, self.model = script, faults, delay, model
        self.delay_dist = delay_dist
        self.reasoning_field = reasoning_field
        self.answer_limit = answer_limit
        self.log_requests = log_requests
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.receipts: collections.Counter[str] = collections.Counter()
        self.answers: collections.Counter[str] = collections.Counter()
        self.fault_counts: collections.Counter[str] = collections.Counter()
        self.script_errors: list[str] = []
        self.received = 0
        self.inflight = self.max_inflight = 0
        self.tokens = {"prompt_tokens": 0, "completion_tokens": 0}
        self.paused = False
        self.parked: list[tuple[_Conn, Callable[[], None]]] = []
        self.conns: set[_Conn] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seq = 0

    # routing ------------------------------------------------------------------------------------
    def handle(self, conn: _Conn, method: str, path: str, headers: dict, body: bytes) -> None:
        if path.endswith("/chat/completions") and method == "POST":
            self.chat(conn, headers, body)
        elif path.endswith("/models") and method == "GET":
            data = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fake"}]}
            conn.send(_http(200, json.dumps(data).encode()))
        elif path == "/_fake/stats" and method == "GET":
            conn.send(_http(200, json.dumps(self.stats()).encode()))
        else:
            conn.send(_error(404, f"no route for {method} {path}"))

    def started(self) -> None:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)

    def ended(self) -> None:
        self.inflight -= 1

    def stats(self) -> dict:
        with self.lock:
            return {
                "received": self.received,
                "answered": sum(self.answers.values()),
                "max_inflight": self.max_inflight,
                **self.tokens,
                "distinct_answered": len(self.answers),
                "duplicates": {k: n for k, n in self.answers.items() if n > 1},
                "faults": dict(self.fault_counts),
                "script_errors": list(self.script_errors),
            }

    # chat completions ---------------------------------------------------------------------------
    def chat(self, conn: _Conn, headers: dict, body: bytes) -> None:
        try:
            req = json.loads(body)
            assert isinstance(req, dict)
        except Exception:
            conn.send(_error(400, "request body is not a JSON object"))
            return
        key = headers.get("x-dianjin-key") or hashlib.sha256(body).hexdigest()
        with self.lock:
            self.received += 1
            self.receipts[key] += 1
            receipt = self.receipts[key]
        kind = self.pick_fault(req, key, receipt)
        if self.log_requests:
            with self.lock:
                self.requests.append(
                    {
                        "json": req,
                        "headers": headers,
                        "key": key,
                        "receipt": receipt,
                        "fault": kind,
                        "time": time.monotonic(),
                    }
                )
        if kind is not None:
            with self.lock:
                self.fault_counts[kind] += 1
            FAULTS[kind](self, conn, req, key)
            return
        reply = self.answer(req)
        if "status" in reply:
            self.later(conn, lambda: conn.send(_error(int(reply["status"]), str(reply.get("error", "scripted error")))))
            return
        self.later(conn, lambda: self.finish(conn, key, self.completion(req, reply)))

    def pick_fault(self, req: dict, key: str, receipt: int) -> str | None:
        if self.faults is None:
            return None
        if isinstance(self.faults, FaultPlan):
            return self.faults.pick(key, receipt)
        kind = self.faults(req, receipt)
        if kind is not None and kind not in FAULTS:
            raise ValueError(f"fault function returned unknown kind {kind!r}")
        return kind

    def answer(self, req: dict) -> dict:
        """The scripted reply as a dict with content/reasoning/finish_reason (or status/error)."""
        try:
            if self.script is None:
                reply: Any = default_script(req)
            elif isinstance(self.script, dict):
                q = last_user(req)
                if q not in self.script:
                    return {"status": 400, "error": f"no scripted answer for prompt {q[:80]!r}"}
                reply = self.script[q]
            else:
                reply = self.script(req)
        except Exception as e:  # a bug in a test's script: answer 500 and keep it for the test to see
            with self.lock:
                self.script_errors.append(f"{type(e).__name__}: {e}")
            return {"status": 500, "error": f"script error: {type(e).__name__}: {e}"}
        if isinstance(reply, str):
            return {"content": reply}
        if isinstance(reply, tuple):
            return dict(zip(("content", "reasoning_content", "finish_reason"), reply))
        return dict(reply)

    def completion(self, req: dict, reply: dict) -> dict:
        reasoning = reply.get("reasoning_content", reply.get("reasoning"))
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
        if reasoning is not None:
            message[reply.get("reasoning_field") or self.reasoning_field] = reasoning
        prompt = " ".join(str(m.get("content", "")) for m in req.get("messages") or [] if isinstance(m, dict))
        r_tokens = count_tokens(reasoning)
        usage = reply.get("usage") or {
            "prompt_tokens": count_tokens(prompt),
            "completion_tokens": count_tokens(reply.get("content")) + r_tokens,
            "completion_tokens_details": {"reasoning_tokens": r_tokens},
        }
        if "total_tokens" not in usage:
            usage = {**usage, "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
        self.seq += 1
        return {
            "id": f"chatcmpl-fake-{self.seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model", self.model),
            "choices": [{"index": 0, "message": message, "finish_reason": reply.get("finish_reason", "stop")}],
            "usage": usage,
        }

    # timing, pausing and counting ---------------------------------------------------------------
    def later(self, conn: _Conn, fn: Callable[[], None], delay: float | None = None) -> None:
        if delay is not None:
            wait = delay
        else:
            wait = self.delay if self.delay_dist is None else self.delay_dist.draw()
        conn.timer = self.loop.call_later(wait, self.release_or_park, conn, fn)  # type: ignore[union-attr]

    def release_or_park(self, conn: _Conn, fn: Callable[[], None]) -> None:
        if self.paused:
            self.parked.append((conn, fn))
        else:
            fn()

    def finish(self, conn: _Conn, key: str, completion: dict) -> None:
        if not conn.open:  # the client gave up (timeout) or died: not answered
            return
        with self.lock:  # counted before the write, so a client that has the answer sees the count
            self.answers[key] += 1
            for k in self.tokens:
                self.tokens[k] += int(completion["usage"].get(k, 0))
            total = sum(self.answers.values()) if self.answer_limit is not None else 0
        conn.send(_http(200, json.dumps(completion, ensure_ascii=False).encode()))
        if self.answer_limit is not None and total >= self.answer_limit:
            self.paused = True

    def resume(self) -> None:
        self.paused, self.answer_limit = False, None
        parked, self.parked = self.parked, []
        for conn, fn in parked:
            if conn.open:
                fn()


# --- fault kinds: name -> action(server, conn, request, key) ------------------------------------
def _f_429(s: _Server, c: _Conn, req: dict, key: str) -> None:
    ra = s.faults.retry_after if isinstance(s.faults, FaultPlan) else 0.05
    hdr = {"Retry-After": f"{ra:g}"} if ra is not None else {}
    s.later(c, lambda: c.send(_error(429, "rate limited (fake)", hdr)), delay=0.0)


def _f_status(status: int) -> Callable[[_Server, _Conn, dict, str], None]:
    return lambda s, c, req, key: s.later(c, lambda: c.send(_error(status, f"injected {status} (fake)")))


def _f_timeout(s: _Server, c: _Conn, req: dict, key: str) -> None:
    hang = s.faults.hang if isinstance(s.faults, FaultPlan) else 3.0
    s.later(c, c.drop, delay=hang)


def _f_malformed(s: _Server, c: _Conn, req: dict, key: str) -> None:
    s.later(c, lambda: c.send(_http(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "tru')))


def _f_empty(s: _Server, c: _Conn, req: dict, key: str) -> None:
    s.later(c, lambda: c.send(_http(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())))


def _f_drop(s: _Server, c: _Conn, req: dict, key: str) -> None:
    s.later(c, c.drop, delay=0.0)


def _f_html(s: _Server, c: _Conn, req: dict, key: str) -> None:  # a proxy's error page, with status 200
    s.later(c, lambda: c.send(_http(200, b"<html><body>502 Bad Gateway</body></html>", ctype="text/html")))


def _f_cut(s: _Server, c: _Conn, req: dict, key: str) -> None:  # the connection dies mid-body
    def cut() -> None:
        if c.open:
            c.transport.write(_http(200, b'{"id": "chatcmpl-cut", "choices": [' + b" " * 500)[:-400])  # type: ignore[union-attr]
        c.drop()

    s.later(c, cut)


def _f_nested(s: _Server, c: _Conn, req: dict, key: str) -> None:  # valid JSON past the parser's recursion limit
    s.later(c, lambda: c.send(_http(200, b"[" * 100_000 + b"]" * 100_000)))


def _f_length(s: _Server, c: _Conn, req: dict, key: str) -> None:
    reply = s.answer(req)
    content = reply.get("content") or ""
    reply.update(content=content[: len(content) // 2], finish_reason="length")
    s.later(c, lambda: s.finish(c, key, s.completion(req, reply)))


FAULTS: dict[str, Callable[[_Server, _Conn, dict, str], None]] = {
    "429": _f_429,
    "500": _f_status(500),
    "503": _f_status(503),
    "400": _f_status(400),
    "timeout": _f_timeout,
    "malformed": _f_malformed,
    "empty": _f_empty,
    "drop": _f_drop,
    "html": _f_html,
    "cut": _f_cut,
    "nested": _f_nested,
    "length": _f_length,
}
assert tuple(FAULTS) == FAULT_KINDS, "fake_plans.FAULT_KINDS names every fault kind, in order"


# --- the public context manager ------------------------------------------------------------------
@dataclass
class FakeOpenAI:
    """Start with `with FakeOpenAI(...) as srv:`; see the module docstring."""

    script: Script = None
    faults: FaultPlan | FaultFn | None = None
    delay: float = 0.0
    model: str = "fake-model"
    reasoning_field: str = "reasoning_content"  # or "reasoning" (vLLM >= 0.9 / OpenRouter style)
    answer_limit: int | None = None  # pause (hold every reply) after this many successful answers
    process: bool = False  # run in a subprocess (script must be None or a dict; faults a FaultPlan)
    log_requests: bool = True
    delay_dist: LogNormalDelay | None = None  # per-receipt delay drawn from this instead of the fixed `delay`
    port: int = field(default=0, init=False)
    _srv: _Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> FakeOpenAI:
        if self.process:
            return self._start_process()
        self._srv = _Server(
            self.script,
            self.faults,
            self.delay,
            self.model,
            self.reasoning_field,
            self.answer_limit,
            self.log_requests,
            self.delay_dist,
        )
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._srv.loop = loop  # type: ignore[union-attr]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        server = loop.run_until_complete(loop.create_server(lambda: _Conn(self._srv), sock=sock, backlog=1024))
        ready.set()
        loop.run_forever()
        server.close()
        for c in list(self._srv.conns):  # type: ignore[union-attr]
            c.drop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None
        if self._thread is not None and self._srv is not None and self._srv.loop is not None:
            self._srv.loop.call_soon_threadsafe(self._srv.loop.stop)
            self._thread.join(10)
            self._thread = None

    def _start_process(self) -> FakeOpenAI:
        if callable(self.script) or (self.faults is not None and not isinstance(self.faults, FaultPlan)):
            raise ValueError("process=True needs script=None or a dict, and faults=None or a FaultPlan")
        cfg = {
            "script": self.script,
            "faults": self.faults.to_json() if self.faults else None,
            "delay": self.delay,
            "model": self.model,
            "reasoning_field": self.reasoning_field,
            "answer_limit": self.answer_limit,
            "delay_dist": self.delay_dist.to_json() if self.delay_dist else None,
        }
        self._proc = subprocess.Popen([sys.executable, __file__, json.dumps(cfg)], stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"fake OpenAI server process failed to start: {line!r}")
        self.port = int(line.split()[1])
        return self

    # control and inspection ---------------------------------------------------------------------
    def _local(self) -> _Server:
        if self._srv is None:
            raise RuntimeError("only available for an in-process server (process=False) that was started")
        return self._srv

    @property
    def requests(self) -> list[dict]:
        """Received chat requests: {json, headers, key, receipt, fault, time}; a snapshot."""
        s = self._local()
        with s.lock:
            return list(s.requests)

    @property
    def answers(self) -> collections.Counter:
        """Distinct request key -> number of successful answers."""
        s = self._local()
        with s.lock:
            return collections.Counter(s.answers)

    @property
    def script_errors(self) -> list[str]:
        return list(self._local().script_errors)

    def duplicates(self) -> dict[str, int]:
        return {k: n for k, n in self.answers.items() if n > 1}

    def stats(self) -> dict:
        """Counters (works for both modes): received, answered, distinct_answered, duplicates, faults."""
        if self._srv is not None:
            return self._srv.stats()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_fake/stats", timeout=10) as r:
            return json.loads(r.read())

    def pause(self) -> None:
        """Hold every reply that becomes due from now on (the requests stay open)."""
        self._local().paused = True

    def resume(self) -> None:
        """Send the held replies (to connections still open) and stop holding."""
        s = self._local()
        s.loop.call_soon_threadsafe(s.resume)  # type: ignore[union-attr]

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Block until no client connection is open (e.g. after killing the client process)."""
        end = time.monotonic() + timeout
        while self._local().conns:
            if time.monotonic() > end:
                raise TimeoutError(f"{len(self._local().conns)} connections still open after {timeout}s")
            time.sleep(0.01)

    def wait_answered(self, n: int, timeout: float = 10.0) -> None:
        """Block until at least n successful answers were sent."""
        end = time.monotonic() + timeout
        while sum(self.answers.values()) < n:
            if time.monotonic() > end:
                raise TimeoutError(f"fake server answered {sum(self.answers.values())} < {n} within {timeout}s")
            time.sleep(0.01)


def _main(argv: list[str]) -> int:
    """Subprocess entry point: `python fake_openai.py CONFIG_JSON`; prints `LISTENING PORT`."""
    cfg = json.loads(argv[0]) if argv else {}
    plan, dist = cfg.pop("faults", None), cfg.pop("delay_dist", None)
    faults, cfg["delay_dist"] = FaultPlan(**plan) if plan else None, LogNormalDelay(**dist) if dist else None
    srv = FakeOpenAI(faults=faults, log_requests=False, **cfg).start()
    print(f"LISTENING {srv.port}", flush=True)
    try:
        srv._thread.join()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
