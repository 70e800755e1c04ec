"""The LLM client's cost at a realistic latency mix: seconds-long, long-tailed answers, faults, 256 in flight.

    .venv/bin/python bench/bench_client.py [--n 2000] [--concurrency 256] [--median 2.0] [--sigma 0.6] [--cap 30]
                                           [--fault-rate 0.2] [--loops dianjin,openai,httpx2] [--json OUT]
    .venv/bin/python bench/bench_client.py --delay-ms 50 --fault-rate 0 --concurrency 64 --n 4000   # old synthetic load

The fake OpenAI server (tests/fake_openai.py) runs in its own process (no shared GIL, and its CPU is
not counted here). Each answer waits a seeded log-normal delay (median `--median` s, `--sigma`, capped
at `--cap` s; `--delay-ms` replaces it with a fixed delay), and a share `--fault-rate` of all receipts
(retries included) is faulted: 429 (Retry-After: 0) or a dropped connection at once, a 500 or a
malformed 200 body after the usual delay. In this one client process, one after the other, each loop
sends `--n` distinct chat requests with `--concurrency` in flight:

- dianjin: `LLMClient.iter_completed` (what `map` runs on; it gives each completion's time) with everything
  on (a fresh SQLite cache per loop, ledger, retries, in-flight dedup);
- openai: the official SDK's `AsyncOpenAI` the way a user would write it: its own retries
  (`max_retries`, same count as ours), default connection pool, `asyncio.gather` under an
  `asyncio.Semaphore(concurrency)`;
- httpx2: a bare `httpx2.AsyncClient` worker loop that retries at once until answered (the floor);
- raw (only with `--fault-rate 0`): hand-written HTTP/1.1 over asyncio, no retries (`raw_loop`,
  which bench/bench_eval.py also uses).

Reported per loop: answered/failed, HTTP attempts the server saw, wall time, requests/s over the
whole loop and between its 10th and 90th percentile completions (no start-up or tail), that rate
against Little's bound, and the client process's CPU (`time.process_time()` around the loop): seconds,
milliseconds per request, and share of one core (CPU s / wall s). Little's bound is
concurrency / (mean time one answered request holds a slot): mean delay x (1 + the extra delayed
attempts faults cost), no backoff. Exit status 1 if the dianjin loop failed any request.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx2  # noqa: E402
import openai  # noqa: E402
from fake_openai import FakeOpenAI, FaultPlan, LogNormalDelay  # noqa: E402

from dianjin.llm.client import ChatRequest, EndpointConfig, LLMClient  # noqa: E402
from dianjin.llm.ledger import Ledger  # noqa: E402

INSTANT_FAULTS = {"429", "drop"}  # answered at once; every other kind waits the usual delay first
MAX_RETRIES = EndpointConfig(base_url="http://x", model="m").max_retries  # ours, given to the peers too


def loadavg() -> str:
    """The first three fields of /proc/loadavg (1, 5 and 15 min)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def messages(i: int, tag: str) -> list[dict]:
    return [{"role": "user", "content": f"{tag} question {i}: what is {i} + {i}?"}]


async def raw_loop(port: int, n: int, conc: int, tag: str, stamps: list[float] | None = None) -> None:
    """Hand-written HTTP/1.1 over `asyncio.open_connection` and nothing else: the bare bound for a
    fault-free server (no retries). `stamps`, when given, gets each completion time. Also used by
    bench/bench_eval.py."""
    items = iter(range(n))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in items:
            data = json.dumps({"model": "bench", "messages": messages(i, tag)}).encode()
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            json.loads(await reader.readexactly(length))
            if stamps is not None:
                stamps.append(time.perf_counter())
        writer.close()

    await asyncio.gather(*[worker() for _ in range(conc)])


async def raw_counted(port: int, n: int, conc: int, tag: str, stamps: list[float]) -> int:
    await raw_loop(port, n, conc, tag, stamps)
    return 0


async def dianjin_loop(base_url: str, n: int, conc: int, tag: str, cache: Path, stamps: list[float]) -> int:
    cfg = EndpointConfig(base_url=base_url, model="bench", concurrency=conc, timeout=60)
    failed = 0
    async with LLMClient(cfg, cache=cache, ledger=Ledger(), progress=False) as llm:
        async for _, res in llm.iter_completed([ChatRequest(messages(i, tag)) for i in range(n)], stage="bench"):
            stamps.append(time.perf_counter())
            failed += not res.ok
    return failed


async def openai_loop(
    base_url: str, n: int, conc: int, tag: str, stamps: list[float], errors: collections.Counter
) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=MAX_RETRIES, timeout=60)
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> str | None:
        async with sem:
            try:
                r = await client.chat.completions.create(model="bench", messages=messages(i, tag))  # type: ignore[arg-type]
                return r.choices[0].message.content
            finally:
                stamps.append(time.perf_counter())

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    finally:
        await client.close()
    errors.update(type(r).__name__ for r in results if isinstance(r, BaseException))
    return sum(isinstance(r, BaseException) for r in results)


async def httpx2_loop(base_url: str, n: int, conc: int, tag: str, stamps: list[float]) -> int:
    limits = httpx2.Limits(max_connections=conc, max_keepalive_connections=conc)
    failed = 0
    async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
        items = iter(range(n))

        async def worker() -> None:
            nonlocal failed
            for i in items:
                for _ in range(1 + MAX_RETRIES):
                    try:
                        r = await http.post(
                            base_url + "/chat/completions", json={"model": "bench", "messages": messages(i, tag)}
                        )
                        if r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None:
                            break
                    except (httpx2.HTTPError, ValueError, KeyError, IndexError, TypeError):
                        pass
                else:
                    failed += 1
                stamps.append(time.perf_counter())

        await asyncio.gather(*[worker() for _ in range(conc)])
    return failed


def run_loop(name: str, srv: FakeOpenAI, n: int, conc: int, tmp: Path) -> dict:
    stamps: list[float] = []
    errors: collections.Counter = collections.Counter()
    tag = f"{name}-{time.time_ns()}"
    coro = {
        "dianjin": lambda: dianjin_loop(srv.base_url, n, conc, tag, tmp / f"{tag}.sqlite", stamps),
        "openai": lambda: openai_loop(srv.base_url, n, conc, tag, stamps, errors),
        "httpx2": lambda: httpx2_loop(srv.base_url, n, conc, tag, stamps),
        "raw": lambda: raw_counted(srv.port, n, conc, tag, stamps),
    }[name]
    before = srv.stats()
    t, c = time.perf_counter(), time.process_time()
    failed = asyncio.run(coro())
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    after = srv.stats()
    stamps = sorted(s - t for s in stamps)
    lo, hi = stamps[int(0.1 * len(stamps))], stamps[int(0.9 * len(stamps)) - 1]
    return {
        "n": n,
        "failed": failed,
        "attempts": after["received"] - before["received"],
        "faults": {k: v - before["faults"].get(k, 0) for k, v in after["faults"].items()},
        "wall_s": round(wall, 2),
        "req_per_s": round(n / wall, 1),
        "steady_req_per_s": round((int(0.9 * len(stamps)) - 1 - int(0.1 * len(stamps))) / (hi - lo), 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_req": round(1e3 * cpu / n, 3),
        "core_share": round(cpu / wall, 4),
        "errors": dict(errors),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="requests per loop")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--median", type=float, default=2.0, help="median server delay, seconds")
    ap.add_argument("--sigma", type=float, default=0.6, help="log-normal sigma of the server delay")
    ap.add_argument("--cap", type=float, default=30.0, help="longest server delay, seconds")
    ap.add_argument("--delay-ms", type=float, help="a fixed server delay instead (the old synthetic load: 50)")
    ap.add_argument("--fault-rate", type=float, default=0.2, help="share of receipts faulted")
    ap.add_argument("--fault-kinds", default="429,500,malformed,drop")
    ap.add_argument(
        "--loops",
        default="dianjin,openai,httpx2",
        help="comma-separated: dianjin, openai, httpx2, raw (raw: only with --fault-rate 0)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    n, conc = args.n, args.concurrency
    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    kinds = tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip())
    if set(loops) - {"dianjin", "openai", "httpx2", "raw"}:
        ap.error(f"unknown loops {sorted(set(loops) - {'dianjin', 'openai', 'httpx2', 'raw'})}")
    if "raw" in loops and args.fault_rate > 0:
        ap.error("the raw loop has no retries: use it with --fault-rate 0")
    if args.delay_ms is not None:
        dist, mean_delay, delay = None, args.delay_ms / 1e3, args.delay_ms / 1e3
        what = f"fixed {args.delay_ms:g} ms delay"
    else:
        dist = LogNormalDelay(median=args.median, sigma=args.sigma, cap=args.cap, seed=args.seed)
        mean_delay, delay = dist.mean(), 0.0
        what = f"log-normal delay, median {args.median:g} s, sigma {args.sigma:g}, cap {args.cap:g} s (mean {mean_delay:.2f} s)"
    faults = (
        FaultPlan(rate=args.fault_rate, kinds=kinds, retry_after=0, seed=args.seed) if args.fault_rate > 0 else None
    )
    slow_share = sum(k not in INSTANT_FAULTS for k in kinds) / len(kinds) if kinds else 0.0
    extra = (
        args.fault_rate / (1 - args.fault_rate) * slow_share if faults else 0.0
    )  # delayed faulted attempts per answer
    bound_clean = conc / mean_delay
    bound = conc / (mean_delay * (1 + extra))
    tmp = Path(tempfile.mkdtemp(prefix="bench_client_"))

    load_before = loadavg()
    rows: dict[str, dict] = {}
    with FakeOpenAI(delay=delay, delay_dist=dist, faults=faults, process=True) as srv:
        for name in loops:
            rows[name] = run_loop(name, srv, n, conc, tmp)
            print(f"  {name}: {rows[name]['wall_s']:.1f} s, load {rows[name]['loadavg_after']:.2f}", file=sys.stderr)
    load_after = loadavg()
    for row in rows.values():
        row["of_bound"] = round(row["req_per_s"] / bound, 3)
        row["steady_of_bound"] = round(row["steady_req_per_s"] / bound, 3)

    fault_txt = (
        f"{args.fault_rate:.0%} of receipts faulted ({', '.join(kinds)}; Retry-After 0)" if faults else "no faults"
    )
    print(
        f"LLM client benchmark: {n} requests per loop, {conc} in flight, {what}, {fault_txt}; "
        f"server in its own process."
    )
    print(
        f"Little's bound: {bound:.1f} req/s ({conc} / ({mean_delay:.3f} s x {1 + extra:.3f}); "
        f"{bound_clean:.1f} req/s without faults). "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"openai {openai.__version__}, httpx2 {getattr(httpx2, '__version__', '?')}."
    )
    print(f"Load average (1/5/15 min) before: {load_before}; after: {load_after}\n")
    print(
        "| loop | answered / failed | HTTP attempts | wall s | req/s | of bound | steady req/s (p10-p90) "
        "| of bound | client CPU s | CPU ms/req | share of one core |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['n'] - r['failed']} / {r['failed']} | {r['attempts']} | {r['wall_s']:.1f} | "
            f"{r['req_per_s']:.1f} | {r['of_bound']:.0%} | {r['steady_req_per_s']:.1f} | {r['steady_of_bound']:.0%} | "
            f"{r['cpu_s']:.2f} | {r['cpu_ms_per_req']:.2f} | {r['core_share']:.1%} |"
        )
    for name, r in rows.items():
        if r["errors"]:
            print(f"\n{name} failures by exception: {', '.join(f'{k} x{v}' for k, v in r['errors'].items())}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "n": n,
                    "concurrency": conc,
                    "delay": what,
                    "mean_delay": mean_delay,
                    "fault_rate": args.fault_rate if faults else 0,
                    "fault_kinds": list(kinds),
                    "bound": bound,
                    "bound_without_faults": bound_clean,
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                    "loops": rows,
                },
                indent=2,
            )
        )
    return 1 if rows.get("dianjin", {}).get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
