"""Completion tokens per second of `dianjin eval run --model-dir` (in-process batches) against `dianjin serve`.

    .venv/bin/python bench/bench_local_eval.py [--model-dir DIR] [--n 32] [--max-tokens 64] [--temperature 0]
                                               [--dtype auto] [--batch-size 16] [--segments 32] [--no-refill]
                                               [--batch 16[,32,...]] [--concurrency 32[,16,...]]
                                               [--serve plain,cb] [--cb-memory F] [--rounds 1] [--json OUT]

The same `--n` FinCalc questions (generated, `dianjin.tasks.fincalc.generate(n, seed=0)`), the same
max_tokens and the same sampling go through `dianjin.eval.run.evaluate` in one run, one loop after
the other, round-robin over `--rounds` (each loop into a fresh run directory, so nothing is resumed):

- **local**: `--model-dir`: `LocalEngine` (HF `generate` with continuous batching, at most
  `--batch-size` requests in the batch, in this process, 32 new tokens per `generate` call; between
  calls finished rows leave and queued requests take their places). Its generation phase includes
  loading the model (the first request loads it). `--segments 32,0` adds a loop per other segment
  length (the eval config's `segment`; 0: one call per batch, each answer riding along to its
  batch's longest); `--no-refill` adds a loop at the first segment length where queued requests
  wait until the whole batch is done (`refill: false`: batches that only shrink, the engine before
  continuous batching);
- **batch**: `--batch 16,32`: transformers' own continuous batching in this process
  (`model.generate_batch`, its paged KV cache capped as the cb server's, at most that many requests
  per step), on the same prompts (the task's chat messages through the model's template, encoded
  as the local engine does) and max_tokens, timed from loading the model to the last answer, as
  local is: the peer engine without HTTP. Not part of the target;
- **serve (cb)**: `dianjin serve MODEL_DIR --engine transformers` as it runs (`transformers serve
  --continuous-batching`, its KV cache capped at `--cb-memory`, default `dianjin serve`'s: 0.05 of
  RAM on a CPU), queried by the eval's HTTP client with `--concurrency` requests in flight; a list
  (`--concurrency 16,32,48`) runs a cb loop per value, named by it, and the fastest is the bar;
- **serve (plain)**: the same with `--no-continuous-batching` (one request at a time; one loop, at
  the first `--concurrency`).
Both sides load the model in `--dtype` (default auto: `dianjin.model.precision`, bfloat16 where the
CPU computes it natively); `--dtype float32` compares the engines at float32. The servers' start-up
(model load) is not counted.

Per loop: questions, completion tokens (the `usage` the server reported, or the local count: up to
and including the eos), wall seconds of the generation phase (timed inside the eval's chat runner,
as bench_eval.py does), tokens/s (the median over the rounds, each round's listed), and local's
speed-up over it (ratio of the medians), and the 1-minute load average before and after. On a
machine shared with other jobs the load moves every number a lot: torch's 2 threads stall whenever
another process holds a core, so compare loops of the same run only. With greedy decoding (the default,
`--temperature 0`) both paths decode the same way, and the number of answers whose text is the same
on both sides is printed too. Why greedy: `transformers serve` starts from the model's
generation_config, and where that has `do_sample: false` (the tiny model's, SmolLM2's) it decodes
greedily whatever temperature a request asks for, while the local engine samples for temperature > 0:
only temperature 0 compares like with like.

Model: `--model-dir DIR`, default the tiny Qwen2 model (`dianjin.model.tiny.build_tiny`, built into a
temporary folder). A real small model: convert SmolLM2-135M-Instruct with `dianjin model smollm2
--out DIR` and pass `--model-dir DIR`. Exit status 1 if local is not >= 4x the tokens/s of every
server loop (the faster server is the bar).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dianjin.answer import join_reasoning
from dianjin.data.synthetic import fincalc
from dianjin.eval import backends, specs
from dianjin.eval import run as eval_run
from dianjin.eval.summarize import load_rows
from dianjin.llm.client import EndpointConfig
from dianjin.model import serve
from dianjin.model.precision import DTYPES, resolve_dtype
from dianjin.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
TARGET = 4.0


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import torch
    import transformers

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
    }


async def timed_eval(cfg: eval_run.EvalConfig) -> tuple[dict, float]:
    """Run the eval; (summary, seconds of its generation phase)."""
    phase: dict[str, float] = {}
    chat = eval_run.RUNNERS["chat"]

    async def timed(ctx, work):
        t = time.perf_counter()
        await chat(ctx, work)
        phase["gen"] = time.perf_counter() - t

    eval_run.RUNNERS["chat"] = timed
    try:
        summary = await eval_run.evaluate(cfg)
    finally:
        eval_run.RUNNERS["chat"] = chat
    return summary, phase["gen"]


def loop_result(name: str, out: Path, summary: dict, gen: float, load1: float) -> dict:
    s = summary["tasks"]["fincalc"]
    rows = {k: r for k, r in load_rows(out / "samples" / "fincalc.jsonl").items() if not r.get("error")}
    if s["errors"] or s["missing"]:
        print(f"{name}: {s['errors']} requests failed, {s['missing']} missing: counted without them", file=sys.stderr)
    tokens = sum(r["tokens"]["completion"] for r in rows.values())
    return {
        "loop": name,
        "questions": len(rows),
        "failed": s["errors"] + s["missing"],
        "completion_tokens": tokens,
        "wall_s": gen,
        "tokens_s": tokens / gen,
        "truncated": s["truncated"],
        "load_before": load1,
        "load_after": os.getloadavg()[0],
        "texts": {k: join_reasoning(r["response"], r["reasoning"]).strip() for k, r in rows.items()},
    }


def summarize_loop(rounds: list[dict]) -> dict:
    """The median round (by tokens/s) of a loop, with every round's figures."""
    mid = sorted(rounds, key=lambda x: x["tokens_s"])[len(rounds) // 2]
    return {
        **mid,
        "tokens_s": statistics.median(x["tokens_s"] for x in rounds),
        "rounds": [{k: v for k, v in x.items() if k != "texts"} for x in rounds],
    }


def local_name(segment: int, refill: bool = True) -> str:
    name = "local" if segment == backends.SEGMENT else f"local (segments of {segment or 'max_tokens'})"
    return name if refill else f"{name}, no refill"


def local_loop(
    args: argparse.Namespace, model_dir: Path, data: Path, out: Path, segment: int, refill: bool = True
) -> dict:
    load1 = os.getloadavg()[0]
    cfg = eval_run.EvalConfig(
        output_dir=out,
        tasks=["fincalc"],
        model_dir=model_dir,
        local_engine="transformers",
        batch_size=args.batch_size,
        dtype=args.dtype,
        segment=segment or args.max_tokens,  # 0: the whole answer in one call
        refill=refill,
        data_dir=data,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        progress=False,
    )
    summary, gen = asyncio.run(timed_eval(cfg))
    return loop_result(local_name(segment, refill), out, summary, gen, load1)


def batch_loop(args: argparse.Namespace, rows: int, model_dir: Path, data: Path) -> dict:
    """transformers' own continuous batching in this process (`generate_batch`, at most `rows` requests
    per step) on the eval's prompts: the same chat messages through the model's template, the same
    max_tokens, greedy or sampled as asked; seconds from loading the model to the last answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, ContinuousBatchingConfig, GenerationConfig

    task = get_task("fincalc")
    items = task.load(str(data / "fincalc" / "test.jsonl"))
    load1 = os.getloadavg()[0]
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    dtype = getattr(torch, resolve_dtype(args.dtype, model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype).eval()
    texts = [tok.apply_chat_template(task.prompt(x), add_generation_prompt=True, tokenize=False) for x in items]
    prompts = [tok(text, add_special_tokens=False)["input_ids"] for text in texts]  # as HFModel.encode
    pinned = specs.sampling("fincalc", args.temperature, None, args.max_tokens)  # what the eval asks for
    sampled = {"do_sample": True, "temperature": pinned["temperature"], "top_p": pinned["top_p"]}
    gen_eos = model.generation_config.eos_token_id
    eos = {tok.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])} - {None}  # as HFModel stops
    gen_cfg = GenerationConfig(
        max_new_tokens=args.max_tokens,
        eos_token_id=sorted(eos),
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        **(sampled if args.temperature > 0 else {"do_sample": False}),
    )
    memory = args.cb_memory if args.cb_memory is not None else serve.CPU_CB_MEMORY
    cb = ContinuousBatchingConfig(max_memory_percent=memory, max_requests_per_batch=rows)
    with torch.inference_mode():
        outs = model.generate_batch(prompts, generation_config=gen_cfg, continuous_batching_config=cb)
    wall = time.perf_counter() - t
    by_request = sorted(outs.values(), key=lambda o: int(o.request_id.rsplit("_", 1)[-1]))  # "req_0", "req_1", ...
    answers = {  # keyed as the eval's samples (`dianjin.eval.specs.Unit.key`: "id|sample")
        f"{x['id']}|0": str(tok.decode(o.generated_tokens, skip_special_tokens=True)).strip()
        for x, o in zip(items, by_request)
    }
    tokens = sum(len(o.generated_tokens) for o in by_request)
    return {
        "loop": f"batch ({rows} in flight)",
        "questions": len(items),
        "failed": len(items) - len(by_request),
        "completion_tokens": tokens,
        "wall_s": wall,
        "tokens_s": tokens / wall,
        "truncated": sum(len(o.generated_tokens) >= args.max_tokens for o in by_request),
        "load_before": load1,
        "load_after": os.getloadavg()[0],
        "texts": answers,
    }


def serve_name(mode: str, concurrency: int, several: bool) -> str:
    return f"serve ({mode}, {concurrency} in flight)" if several and mode == "cb" else f"serve ({mode})"


def serve_loop(args: argparse.Namespace, mode: str, concurrency: int, model_dir: Path, data: Path, out: Path) -> dict:
    options = {"dtype": args.dtype, "continuous_batching": mode == "cb", "cb_memory": args.cb_memory}
    with serve.serving(model_dir, engine="transformers", **options) as url:
        load1 = os.getloadavg()[0]
        endpoint = EndpointConfig(
            base_url=url, model=str(model_dir), concurrency=concurrency, timeout=7200, max_retries=0
        )
        cfg = eval_run.EvalConfig(
            output_dir=out,
            tasks=["fincalc"],
            endpoint=endpoint,
            data_dir=data,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            progress=False,
        )
        summary, gen = asyncio.run(timed_eval(cfg))
    return loop_result(serve_name(mode, concurrency, len(args.concurrency) > 1), out, summary, gen, load1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, help="HF model directory (default: the tiny model, built here)")
    ap.add_argument("--n", type=int, default=32, help="FinCalc questions (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=64, help="max_tokens of every request (default %(default)s)")
    ap.add_argument("--temperature", type=float, default=0.0, help="temperature of every request (default: greedy)")
    ap.add_argument("--batch-size", type=int, default=16, help="local batch size (default %(default)s)")
    ap.add_argument(
        "--concurrency",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[32],
        help="HTTP requests in flight; a list runs a cb loop per value (default 32)",
    )
    ap.add_argument(
        "--segments",
        default=str(backends.SEGMENT),
        help="local loops: new tokens per generate call, 0 = one call per batch (default %(default)s; the first is "
        "the bar the others are compared with)",
    )
    ap.add_argument("--no-refill", action="store_true", help="add a local loop without continuous batching")
    ap.add_argument(
        "--batch",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[],
        help="add a loop of transformers' generate_batch in this process per value: its max requests per step",
    )
    ap.add_argument("--serve", default="plain,cb", help="server loops to run: plain, cb (default %(default)s)")
    ap.add_argument("--cb-memory", type=float, help="KV cache share of RAM of the cb server (default: dianjin serve's)")
    ap.add_argument("--dtype", default="auto", choices=DTYPES, help="both sides (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=1, help="round-robin rounds (default %(default)s)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    modes = [m for m in args.serve.split(",") if m]
    segments = [int(x) for x in args.segments.split(",") if x]
    info = machine()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        tmp_path = Path(tmp)
        model_dir = args.model_dir
        if model_dir is None:
            from dianjin.model.tiny import build_tiny

            model_dir = build_tiny(tmp_path / "tiny")
        data = tmp_path / "data"
        fincalc.write_jsonl(fincalc.generate(args.n, seed=0), data / "fincalc" / "test.jsonl")
        for rnd in range(args.rounds):
            for seg in segments:
                runs.setdefault(local_name(seg), []).append(
                    local_loop(args, model_dir, data, tmp_path / f"local{seg}-{rnd}", seg)
                )
            if args.no_refill:
                runs.setdefault(local_name(segments[0], False), []).append(
                    local_loop(args, model_dir, data, tmp_path / f"static-{rnd}", segments[0], False)
                )
            for rows in args.batch:
                runs.setdefault(f"batch ({rows} in flight)", []).append(batch_loop(args, rows, model_dir, data))
            for mode in modes:
                for c in args.concurrency if mode == "cb" else args.concurrency[:1]:
                    runs.setdefault(serve_name(mode, c, len(args.concurrency) > 1), []).append(
                        serve_loop(args, mode, c, model_dir, data, tmp_path / f"{mode}{c}-{rnd}")
                    )
    results = [summarize_loop(rs) for rs in runs.values()]
    bar = results[0]
    print(
        f"model {model_dir}; {args.n} FinCalc questions, max_tokens {args.max_tokens}, temperature "
        f"{args.temperature}, dtype {resolve_dtype(args.dtype, model_dir)}, local batch {args.batch_size}, "
        f"HTTP concurrency {','.join(map(str, args.concurrency))}"
    )
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, torch {info['torch']} ({info['torch_threads']} threads), "
        f"transformers {info['transformers']}"
    )
    head = (
        f"{'loop':<30} {'questions':>9} {'compl. tokens':>13} {'wall s':>8} {'tokens/s':>9} {'local speed-up':>14} "
        f"{'same text':>9}  rounds (tokens/s; load avg before-after)"
    )
    print(head)
    for r in results:
        r["speedup"] = bar["tokens_s"] / r["tokens_s"] if r["tokens_s"] else float("inf")
        r["same_text"] = sum(bar["texts"][k] == t for k, t in r["texts"].items())
        rounds = ", ".join(f"{x['tokens_s']:.1f} ({x['load_before']:.1f}-{x['load_after']:.1f})" for x in r["rounds"])
        print(
            f"{r['loop']:<30} {r['questions']:>9} {r['completion_tokens']:>13} {r['wall_s']:>8.1f} "
            f"{r['tokens_s']:>9.1f} {r['speedup']:>13.2f}x {r['same_text']:>5}/{r['questions']:<3}  {rounds}"
        )
    servers = [r for r in results if r["loop"].startswith("serve")]
    ok = all(r["speedup"] >= TARGET for r in servers)
    if servers:
        low = min(servers, key=lambda r: r["speedup"])
        print(
            f"target: local >= {TARGET:g}x the tokens/s of every server loop: {'met' if ok else 'NOT met'} "
            f"({low['speedup']:.2f}x over {low['loop']})"
        )
    if args.json:
        for r in results:
            r.pop("texts")
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json), "model_dir": str(model_dir)},
                    "machine": info,
                    "loops": results,
                    "target": TARGET,
                    "ok": ok,
                },
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
