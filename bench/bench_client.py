"""Throughput of the LLM client against a server that answers after a fixed delay.

    .venv/bin/python bench/bench_client.py [--n 4000] [--concurrency 64] [--delay 0.05] [--rounds 3] [--json OUT]

The fake OpenAI server (tests/fake_openai.py) runs in its own process, so server and client do not
share a GIL. In this one client process, round-robin over `--rounds` rounds, each loop sends `--n`
distinct chat requests with `--concurrency` in flight:

- raw asyncio: hand-written HTTP/1.1 over `asyncio.open_connection`, nothing else (the bare bound);
- bare httpx2: `httpx2.AsyncClient` with its default transport, a minimal worker loop;
- dianjin: `LLMClient.map` with everything on (SQLite cache written as answers arrive, committed
  once per event-loop turn, ledger, progress object, retry loop, in-flight dedup), over its lean
  HTTP/1.1 transport;
- dianjin/httpx2: the same client forced onto httpx2's default transport (`fast_http=False`);
- dianjin cached: a re-run of the same requests, all answered from the cache.

Reported: median requests/s per loop, the share of Little's bound (concurrency / delay), the share
of the raw loop, and CPU microseconds per request in this process (our overhead is the difference
from the raw loop). Exit status 1 if dianjin reaches neither 90% of the bound nor 90% of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import httpx2  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

from dianjin.client import ChatRequest, EndpointConfig, LLMClient  # noqa: E402
from dianjin.ledger import Ledger  # noqa: E402


def body(i: int, tag: str) -> dict:
    return {"model": "bench", "messages": [{"role": "user", "content": f"{tag} question {i}: what is {i} + {i}?"}]}


async def raw_loop(port: int, n: int, conc: int, tag: str, stamps: list[float] | None = None) -> None:
    """`stamps`, when given, gets the time of each completed request (for a steady-state rate)."""
    items = iter(range(n))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in items:
            data = json.dumps(body(i, tag)).encode()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            json.loads(await reader.readexactly(length))
            if stamps is not None:
                stamps.append(time.perf_counter())
        writer.close()

    await asyncio.gather(*[worker() for _ in range(conc)])


async def httpx2_loop(base_url: str, n: int, conc: int, tag: str) -> None:
    limits = httpx2.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
        items = iter(range(n))

        async def worker() -> None:
            for i in items:
                r = await http.post(base_url + "/chat/completions", json=body(i, tag))
                r.json()

        await asyncio.gather(*[worker() for _ in range(conc)])


async def dianjin_loop(base_url: str, n: int, conc: int, tag: str, cache: Path, fast: bool = True) -> None:
    cfg = EndpointConfig(base_url=base_url, model="bench", concurrency=conc, timeout=60, fast_http=fast)
    async with LLMClient(cfg, cache=cache, ledger=Ledger(), progress=False) as llm:
        results = await llm.map([ChatRequest(body(i, tag)["messages"]) for i in range(n)], stage="bench")
    bad = [r for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{len(bad)} failed requests, e.g. {bad[0].error}")


def timed(coro_fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one asyncio.run."""
    t, c = time.perf_counter(), time.process_time()
    asyncio.run(coro_fn())
    return time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="requests per loop and round")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--delay", type=float, default=0.05, help="server answer delay in seconds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    n, conc = args.n, args.concurrency
    bound = conc / args.delay
    tmp = Path(tempfile.mkdtemp(prefix="bench_client_"))
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                  ("raw asyncio", "bare httpx2", "dianjin", "dianjin/httpx2", "dianjin cached")}
    with FakeOpenAI(delay=args.delay, process=True) as srv:
        timed(lambda: raw_loop(srv.port, min(n, 500), conc, "warmup"))
        for r in range(args.rounds):
            cache = tmp / f"cache{r}.sqlite"
            runs["raw asyncio"].append(timed(lambda: raw_loop(srv.port, n, conc, f"raw{r}")))
            runs["bare httpx2"].append(timed(lambda: httpx2_loop(srv.base_url, n, conc, f"httpx{r}")))
            runs["dianjin"].append(timed(lambda: dianjin_loop(srv.base_url, n, conc, f"ours{r}", cache)))
            runs["dianjin/httpx2"].append(timed(lambda: dianjin_loop(srv.base_url, n, conc, f"ours-h{r}",
                                                                     tmp / f"h{r}.sqlite", fast=False)))
            runs["dianjin cached"].append(timed(lambda: dianjin_loop(srv.base_url, n, conc, f"ours{r}", cache)))
        stats = srv.stats()
    expected = args.rounds * 4 * n + min(n, 500)
    if stats["answered"] != expected:
        print(f"warning: server answered {stats['answered']} requests, expected {expected}", file=sys.stderr)

    rows = {}
    for name, rs in runs.items():
        rps = statistics.median(n / w for w, _ in rs)
        cpu = statistics.median(1e6 * c / n for _, c in rs)
        rows[name] = {"req_per_s": round(rps, 1), "cpu_us_per_req": round(cpu, 1), "rounds": [round(n / w, 1) for w, _ in rs]}
    raw = rows["raw asyncio"]["req_per_s"]
    for row in rows.values():
        row["of_bound"] = round(row["req_per_s"] / bound, 3)
        row["of_raw"] = round(row["req_per_s"] / raw, 3)
    ours = rows["dianjin"]
    overhead_cpu = ours["cpu_us_per_req"] - rows["raw asyncio"]["cpu_us_per_req"]
    overhead_latency_ms = 1e3 * (conc / ours["req_per_s"] - args.delay)

    print(f"LLM client benchmark: {n} requests x {args.rounds} rounds per loop, concurrency {conc}, "
          f"server delay {args.delay * 1e3:.0f} ms (separate process); Little's bound {bound:.0f} req/s\n")
    print("| loop | req/s (median) | of bound | of raw | CPU us/req (client process) | rounds |")
    print("|---|---:|---:|---:|---:|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['req_per_s']:.0f} | {row['of_bound']:.1%} | {row['of_raw']:.1%} | "
              f"{row['cpu_us_per_req']:.0f} | {', '.join(f'{x:.0f}' for x in row['rounds'])} |")
    print(f"\ndianjin overhead per request vs raw asyncio: {overhead_cpu:.0f} us CPU; "
          f"mean time per request {1e3 * conc / ours['req_per_s']:.1f} ms = {args.delay * 1e3:.0f} ms server "
          f"+ {overhead_latency_ms:.1f} ms client/queueing")
    ok = ours["of_bound"] >= 0.9 or ours["of_raw"] >= 0.9
    print(f"target (>= 90% of the bound or of raw): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"n": n, "concurrency": conc, "delay": args.delay, "bound": bound, "loops": rows,
                                         "overhead_cpu_us": round(overhead_cpu, 1),
                                         "overhead_latency_ms": round(overhead_latency_ms, 2), "target_met": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
