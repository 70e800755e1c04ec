"""Throughput and overhead of the evaluation harness (`dianjin eval`) against a server that answers
after a fixed delay.

    .venv/bin/python bench/bench_eval.py [--n 4000] [--concurrency 64] [--delay 0.05] [--rounds 3] [--json OUT]

The fake OpenAI server (tests/fake_openai.py) runs in its own process (no shared GIL) and echoes
each prompt in the `<think>/<answer>` format after `--delay`. The data is `--n` invented CFLUE-style
questions (knowledge.json schema) written to a temporary folder. Round-robin over `--rounds`:

- raw: `bench_client.raw_loop`, hand-written HTTP/1.1 over asyncio and nothing else (what this
  machine can do at the moment: on a shared box the bound itself may be out of reach);
- client: `LLMClient.map` over the same prompts with the cache and ledger on (the client alone);
- harness: `dianjin.eval.run.evaluate` on the cflue task into a fresh run directory: loading the
  data, rendering prompts, the requests, scoring each answer as it arrives, appending each row to
  samples/cflue.jsonl, then the summary (bootstrap CI) and summary.md.

Reported per loop: the steady-state rate (completions per second between the first and the last
completion, the rate a loop sustains: Little's law bounds a steady state, and no answer can come
back in the first `--delay` seconds of a run, nor before the harness has rendered its prompts) and
its share of Little's bound (concurrency / delay = 1,280 req/s by default) and of the raw loop; the
whole-run rate n / T of the generation phase (the harness's is timed inside its chat runner, so it
includes rendering and encoding every prompt first); end-to-end wall time; and CPU microseconds per
request in this process. The harness's own overhead per request is its CPU/request minus the
client's. Exit status 1 if the harness's steady rate reaches neither 90% of the bound nor 90% of
the raw loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_client import raw_loop  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

from dianjin.eval import run as eval_run  # noqa: E402
from dianjin.eval.specs import build_units, scoring_task  # noqa: E402
from dianjin.llm.client import ChatRequest, ChatResult, EndpointConfig, LLMClient  # noqa: E402
from dianjin.llm.ledger import Ledger  # noqa: E402

TOPICS = ("债券", "基金", "股票", "期货", "保险", "银行", "外汇", "信托")


def write_cflue(path: Path, n: int, seed: int = 0) -> None:
    """n invented CFLUE knowledge questions in the real schema (`choices` a Python dict literal)."""
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        choices = {k: f"{topic}选项{k}{i}" for k in "ABCD"}
        recs.append(
            {
                "名称": "基准测试",
                "task": "单项选择题",
                "choices": repr(choices),
                "answer": rng.choice("ABCD"),
                "question": f"第{i}题：关于{topic}的说法，正确的是（ ）。",
                "analysis": None,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")


def steady(stamps: list[float]) -> float:
    """Requests/s between the first and the last completion: the rate the loop sustains, without the
    fill (no answer can come back in the first `delay` seconds) and the one-off set-up before it."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def raw(port: int, n: int, conc: int, tag: str) -> dict:
    stamps: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    await raw_loop(port, n, conc, tag, stamps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": n, "gen_wall": wall, "wall": wall, "cpu": cpu, "steady": steady(stamps)}


async def client_loop(base_url: str, data: Path, conc: int, cache: Path) -> dict:
    units = build_units("cflue", data / "cflue" / "knowledge.json", 1, None)
    task = scoring_task("cflue")
    reqs = [ChatRequest(task.messages(u.example), temperature=0.6, top_p=0.95, max_tokens=8192) for u in units]
    cfg = EndpointConfig(base_url=base_url, model="bench", concurrency=conc, timeout=60)
    stamps: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    async with LLMClient(cfg, cache=cache, ledger=Ledger(), progress=False) as llm:
        results: list[ChatResult | None] = [None] * len(reqs)
        async for i, res in llm.iter_completed(reqs, stage="bench"):  # what `map` does, with a time stamp
            results[i] = res
            stamps.append(time.perf_counter())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(r is not None and r.ok for r in results), "client: some requests failed"
    return {"n": len(reqs), "gen_wall": wall, "wall": wall, "cpu": cpu, "steady": steady(stamps)}


async def harness_loop(base_url: str, data: Path, conc: int, out: Path) -> dict:
    phase: dict[str, float] = {}
    stamps: list[float] = []
    chat, record = eval_run.RUNNERS["chat"], eval_run._record

    def stamped(task, row):  # each row written: a completion
        record(task, row)
        stamps.append(time.perf_counter())

    async def timed(ctx, work):  # time the generation phase inside the harness
        t = time.perf_counter()
        await chat(ctx, work)
        phase["gen"] = time.perf_counter() - t

    eval_run.RUNNERS["chat"], eval_run._record = timed, stamped
    cfg = eval_run.EvalConfig(
        output_dir=out,
        tasks=["cflue"],
        data_dir=data,
        progress=False,
        endpoint=EndpointConfig(base_url=base_url, model="bench", concurrency=conc, timeout=60),
    )
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = await eval_run.evaluate(cfg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        eval_run.RUNNERS["chat"], eval_run._record = chat, record
    s = summary["tasks"]["cflue"]
    assert s["errors"] == 0 and s["missing"] == 0 and s["samples"] > 0, f"harness: {s}"
    return {"n": s["samples"], "gen_wall": phase["gen"], "wall": wall, "cpu": cpu, "steady": steady(stamps)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    bound = args.concurrency / args.delay
    results: dict[str, list[dict]] = {"raw": [], "client": [], "harness": []}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(delay=args.delay, process=True) as srv:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        write_cflue(data / "cflue" / "knowledge.json", args.n)
        asyncio.run(client_loop(srv.base_url, data, args.concurrency, tmp_path / "warm.sqlite"))  # warm-up
        for r in range(args.rounds):
            results["raw"].append(asyncio.run(raw(srv.port, args.n, args.concurrency, f"r{r}")))
            results["client"].append(
                asyncio.run(client_loop(srv.base_url, data, args.concurrency, tmp_path / f"client{r}.sqlite"))
            )
            results["harness"].append(
                asyncio.run(harness_loop(srv.base_url, data, args.concurrency, tmp_path / f"run{r}"))
            )
    rows: dict[str, dict] = {}
    print(f"n={args.n} concurrency={args.concurrency} delay={args.delay}s bound={bound:.0f} req/s rounds={args.rounds}")
    print(
        f"{'loop':<10} {'steady req/s':>12} {'of bound':>9} {'of raw':>7} {'n/T req/s':>10} {'of bound':>9} "
        f"{'end-to-end s':>13} {'CPU us/req':>11}  rounds (steady req/s)"
    )
    for name, rs in results.items():
        rates = [x["steady"] for x in rs]
        med = statistics.median(rates)
        whole = statistics.median(x["n"] / x["gen_wall"] for x in rs)
        cpu_us = statistics.median(1e6 * x["cpu"] / x["n"] for x in rs)
        wall = statistics.median(x["wall"] for x in rs)
        of_raw = med / rows["raw"]["req_s"] if "raw" in rows else 1.0
        rows[name] = {
            "req_s": med,
            "of_bound": med / bound,
            "of_raw": of_raw,
            "n_over_t_req_s": whole,
            "n_over_t_of_bound": whole / bound,
            "wall_s": wall,
            "cpu_us_per_req": cpu_us,
            "rounds": rates,
        }
        print(
            f"{name:<10} {med:>12.0f} {med / bound:>8.1%} {of_raw:>6.1%} {whole:>10.0f} {whole / bound:>8.1%} "
            f"{wall:>13.2f} {cpu_us:>11.0f}  " + ", ".join(f"{x:.0f}" for x in rates)
        )
    overhead = rows["harness"]["cpu_us_per_req"] - rows["client"]["cpu_us_per_req"]
    print(
        f"harness overhead over the client: {overhead:.0f} us CPU per request "
        "(prompt rendering, scoring, row writing, summary)"
    )
    ok = rows["harness"]["of_bound"] >= 0.9 or rows["harness"]["of_raw"] >= 0.9
    print(
        f"target >= 90% of the bound: {'met' if rows['harness']['of_bound'] >= 0.9 else 'NOT met'}; "
        f">= 90% of the raw loop: {'met' if rows['harness']['of_raw'] >= 0.9 else 'NOT met'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "bound": bound,
                    "loops": rows,
                    "overhead_us_per_req": overhead,
                    "ok": ok,
                },
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
