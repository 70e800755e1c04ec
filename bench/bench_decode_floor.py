"""Where local generation's time goes on this machine, and the most any transformers engine could make.

    .venv/bin/python bench/bench_decode_floor.py --model-dir DIR [--n 16] [--max-tokens 128] [--dtype auto]
                                                 [--compile] [--server-tokens-s X] [--json OUT]

The `--n` FinCalc questions of bench_local_eval.py (`fincalc.generate(n, seed=0)`, the task's
prompt, the model's chat template) as one batch, in one process, the model in `--dtype`:

- **prefill**: seconds to fill the KV cache with the prompts, two ways: one prompt at a time,
  unpadded (`dianjin.eval.kvcache.prefill`, what `dianjin eval --model-dir` does), and the
  left-padded batch in one forward (what HF `generate` does); prompt tokens per second;
- **decode**: `--max-tokens` forward steps of the whole batch (one new token per row, greedy, no
  row leaving: the shape where every answer runs to its cap), on the unpadded cache: the sum of the
  steps' seconds, the median step, the first and the last, with the local engine's decode attention
  (`dianjin.eval.attention`); the median step with transformers' sdpa too;
- **weights**: their bytes, the machine's copy bandwidth (a buffer of that size copied, median of
  5; bytes read plus bytes written per second) and the time to stream the weights once at it,
  which every decode step pays at least;
- **bound**: `n * max_tokens` tokens over prefill (unpadded) plus decode: the tokens/s of an
  engine that costs nothing beyond the model's forward passes on this machine (no sampling, no
  stopping checks, no scheduling, no HTTP) with every answer running to max_tokens. With
  `--server-tokens-s X` (a server's tokens/s from bench_local_eval.py on the same shape) the most
  any such engine could be faster than that server: bound / X;
- **compiled** (`--compile`): `--max-tokens` + 2 decode steps through `torch.compile(model.forward,
  dynamic=True)` (inductor, weights frozen as constants: `torch._inductor.config.freezing`), on a
  fresh prefill: how many steps took over a second (the compiles: the first shapes, then again
  when the shapes go dynamic or a guard fails) and their seconds, the median of the other steps,
  and the bound with those steps (their mean) and the compiles left out.

Run it alone: on a machine shared with other jobs every figure moves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from dianjin.data.synthetic import fincalc
from dianjin.eval import attention, kvcache
from dianjin.eval.backends import HFModel
from dianjin.model.precision import DTYPES
from dianjin.tasks import get_task


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def copy_bandwidth(nbytes: int) -> float:
    """Bytes read plus bytes written per second copying a buffer of `nbytes` (median of 5)."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * nbytes / statistics.median(timed(lambda: dst.copy_(src)) for _ in range(5))


def decode(forward, cache, tok, mask, max_tokens: int) -> list[float]:
    """Seconds of each of `max_tokens` greedy `forward` steps of the batch from `cache` (one token per row)."""
    pos, steps = mask.sum(-1, keepdim=True) - 1, []  # [n, 1]
    for _ in range(max_tokens):
        mask = torch.cat([mask, torch.ones_like(tok)], 1)
        t = time.perf_counter()
        out = forward(input_ids=tok, attention_mask=mask, cache=cache, position_ids=pos, logits_to_keep=1)
        tok, pos = out.logits[:, -1].argmax(-1, keepdim=True), pos + 1
        steps.append(time.perf_counter() - t)
    return steps


def measure(model_dir: Path, n: int, max_tokens: int, dtype: str, compile_: bool = False) -> dict:
    hf = HFModel.load(model_dir, dtype=dtype)
    model, task = hf.model, get_task("fincalc")
    prompts = [hf.encode(task.prompt(ex)) for ex in fincalc.generate(n, seed=0)]
    width, pad = max(map(len, prompts)), hf.tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # [n, width]
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        model(input_ids=ids[:2, -8:], attention_mask=mask[:2, -8:])  # warm-up
        padded_s = timed(lambda: model(input_ids=ids, attention_mask=mask, logits_to_keep=1))
        steps, prefill_s, compiled = {}, 0.0, []
        for impl in ("sdpa", attention.NAME):  # transformers' sdpa, then ours (what the local engine runs)
            model.set_attn_implementation(impl)
            t = time.perf_counter()
            cache = kvcache.prefill(model, prompts, k=1, width=width)
            prefill_s = time.perf_counter() - t
            steps[impl] = decode(model, cache, ids[:, -1:], mask, max_tokens)
        if compile_:  # the local engine's attention, compiled: the steps over 1 s are the (re)compiles
            import torch._inductor.config as inductor

            inductor.freezing = True
            cache = kvcache.prefill(model, prompts, k=1, width=width)
            compiled = decode(torch.compile(model.forward, dynamic=True), cache, ids[:, -1:], mask, max_tokens + 2)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(weight_bytes)
    ours, sdpa = steps[attention.NAME], steps["sdpa"]
    decode_s, prompt_tokens = sum(ours), sum(map(len, prompts))
    return {
        "model_dir": str(model_dir),
        "dtype": str(model.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "questions": n,
        "max_tokens": max_tokens,
        "prompt_tokens": prompt_tokens,
        "padded_prompt_tokens": width * n,
        "prefill_unpadded_s": prefill_s,
        "prefill_padded_s": padded_s,
        "prefill_tokens_s": prompt_tokens / prefill_s,
        "decode_s": decode_s,
        "step_ms_median": 1000 * statistics.median(ours),
        "step_ms_first": 1000 * ours[0],
        "step_ms_last": 1000 * ours[-1],
        "sdpa_step_ms_median": 1000 * statistics.median(sdpa),
        "weight_mb": weight_bytes / 1e6,
        "copy_gb_s": bandwidth / 1e9,
        "weights_stream_ms": 1000 * weight_bytes / (bandwidth / 2),  # read at half the read+write rate
        "bound_tokens_s": n * max_tokens / (prefill_s + decode_s),
    } | (
        {
            "compiled_steps_s": compiled,
            "compiles": len(slow := [x for x in compiled if x > 1.0]),  # a step over 1 s is a (re)compile
            "compile_s": sum(slow),
            "compiled_step_ms_median": 1000 * statistics.median(fast := [x for x in compiled if x <= 1.0]),
            "compiled_bound_tokens_s": n * max_tokens / (prefill_s + statistics.mean(fast) * max_tokens),
        }
        if compile_
        else {}
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="HF model directory")
    ap.add_argument("--n", type=int, default=16, help="FinCalc questions, one batch (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=128, help="decode steps (default %(default)s)")
    ap.add_argument("--dtype", default="auto", choices=DTYPES, help="(default %(default)s)")
    ap.add_argument("--compile", action="store_true", help="also time the decode steps under torch.compile")
    ap.add_argument("--server-tokens-s", type=float, help="a server's tokens/s on the same shape")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = measure(args.model_dir, args.n, args.max_tokens, args.dtype, args.compile)
    if args.server_tokens_s:
        r["server_tokens_s"] = args.server_tokens_s
        r["max_speedup"] = r["bound_tokens_s"] / args.server_tokens_s
    print(
        f"{r['questions']} prompts, {r['prompt_tokens']} tokens ({r['padded_prompt_tokens']} padded), {r['dtype']}, "
        f"{r['torch_threads']} threads\n"
        f"prefill: unpadded {r['prefill_unpadded_s']:.2f} s ({r['prefill_tokens_s']:.0f} tokens/s), "
        f"padded {r['prefill_padded_s']:.2f} s\n"
        f"decode: {r['max_tokens']} steps of {r['questions']} rows {r['decode_s']:.2f} s, step median "
        f"{r['step_ms_median']:.1f} ms (first {r['step_ms_first']:.1f}, last {r['step_ms_last']:.1f}; transformers' "
        f"sdpa {r['sdpa_step_ms_median']:.1f})\n"
        f"weights: {r['weight_mb']:.0f} MB, copy {r['copy_gb_s']:.1f} GB/s, streamed once in "
        f"{r['weights_stream_ms']:.1f} ms\n"
        f"bound: {r['bound_tokens_s']:.1f} tokens/s"
        + (f", at most {r['max_speedup']:.2f}x the server's {args.server_tokens_s}" if args.server_tokens_s else "")
    )
    if args.compile:
        print(
            f"compiled: {r['compiles']} compiles, {r['compile_s']:.0f} s; then a step median "
            f"{r['compiled_step_ms_median']:.1f} ms; bound without the compiles {r['compiled_bound_tokens_s']:.1f} "
            f"tokens/s"
            + (f", {r['compiled_bound_tokens_s'] / args.server_tokens_s:.2f}x" if args.server_tokens_s else "")
        )
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
