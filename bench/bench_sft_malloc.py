"""SFT step time and peak memory of one SFT config under different memory allocators, side by side.

    .venv/bin/python bench/bench_sft_malloc.py runs/demo-smollm2/configs/sft.yaml --steps 12

Each variant runs the real stage, `python -m dianjin.train.sft CONFIG output_dir=TMP max_steps=N
save_strategy=no sample_every=0 logging_steps=1`, in a fresh child with only its environment
changed, the way `dianjin demo` sets it for its training children (`cpu_malloc`, one of
`dianjin.malloc.ALLOCATORS`):
- glibc: the default malloc;
- glibc-mmap: glibc with `MALLOC_MMAP_THRESHOLD_` at 4 GiB, so big tensors come from the heap
  instead of a fresh mmap (and its page faults) each time;
- glibc-keep: glibc with all of `dianjin.malloc.KEEP_ENV` (the tiny demo's `cpu_malloc`);
- jemalloc, tcmalloc: preloaded (`LD_PRELOAD`) where Debian's libjemalloc2 / libtcmalloc-minimal4
  are installed; skipped otherwise.
Reported per variant: the median time between consecutive `[sft]` progress lines after the first
`--warmup` steps, the child's wall time, its user and system CPU seconds and its peak resident
memory (`os.wait4`). Run it alone on the machine: a second busy process changes every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dianjin.malloc import ALLOCATORS, allocator_env

VARIANTS = list(ALLOCATORS)


def run_variant(config: Path, steps: int, warmup: int, extra: dict[str, str]) -> dict[str, float]:
    """One SFT child; the times between its progress lines, its wall time and rusage."""
    with tempfile.TemporaryDirectory(prefix="bench-sft-") as out:
        cmd = [sys.executable, "-m", "dianjin.train.sft", str(config), f"output_dir={out}", f"max_steps={steps}"]
        cmd += ["save_strategy=no", "sample_every=0", "logging_steps=1"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env={**env, **extra}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert child.stdout is not None
        stamps = []
        for line in child.stdout:
            if line.startswith("[sft] step "):
                stamps.append(time.perf_counter())
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0 or len(stamps) < warmup + 2:
        raise SystemExit(f"{' '.join(cmd)}: exit {os.waitstatus_to_exitcode(status)}, {len(stamps)} progress lines")
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return {
        "step_s": statistics.median(gaps),
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "max_rss_gb": usage.ru_maxrss / 1e6,  # ru_maxrss is in KiB on Linux
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="an SFT config (e.g. a demo run's configs/sft.yaml)")
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the median")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    print(f"{args.config}: {args.steps} steps per variant, median step time after {args.warmup}\n")
    print("| allocator | s/step (median) | wall s | user s | sys s | peak RSS GB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        extra: dict[str, str] = {}
        missing = allocator_env(name, extra)
        if missing:  # not the fallback: skip it
            print(f"| {name} | {missing} | | | | |", flush=True)
            continue
        r = run_variant(args.config, args.steps, args.warmup, extra)
        print(
            f"| {name} | {r['step_s']:.2f} | {r['wall_s']:.0f} | {r['user_s']:.0f} | {r['sys_s']:.0f} | "
            f"{r['max_rss_gb']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
