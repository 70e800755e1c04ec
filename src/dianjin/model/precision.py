"""The dtype a model is loaded in for generation: `dtype` of `dianjin eval`, `dianjin mine` and `dianjin serve`.

    resolve_dtype("auto", "runs/sft/final")   # "bfloat16" on a bf16-capable CPU or GPU when the checkpoint is float32
    resolve_dtype("float32", model_dir)       # as asked

"auto" follows vLLM's `--dtype auto`, which runs a float32 checkpoint in half precision:
- on a CUDA GPU, a bfloat16 or float16 checkpoint runs in its own dtype, a float32 one in bfloat16
  where the GPU supports it (else float32);
- on a CPU, every checkpoint runs in bfloat16 where the CPU computes it natively (AVX512-BF16 or
  AMX), else in float32 (a CPU without them emulates half precision, slower than float32).

Why: a CPU with native bf16 multiplies twice as many bfloat16 numbers per instruction, and
generation reads every weight once per token; on SmolLM2-135M, 2 cores, `bench/bench_local_eval.py`
made 1.65x the tokens/s of float32. Training keeps float32 master weights (`bf16: true` is
autocast), so our checkpoints are float32 and "auto" is what makes their evaluation fast. The cost:
greedy answers can differ from float32 ones wherever bfloat16 rounds a near-tie the other way, and
on `make demo-real`'s SFT model bfloat16 evaluation scored −3.0 points of format rate [−6.5, +0.5]
against float32 (200 answers each; docs/benchmarks.md). Pass "float32" where that matters more than
the time, or to compare with a float32 run token for token.
"""

from __future__ import annotations

import json
from pathlib import Path

DTYPES = ("auto", "float32", "bfloat16", "float16")


def native_bf16() -> bool:
    """bfloat16 matrix multiplies in hardware: a CUDA GPU that supports them, or a CPU with AVX512-BF16 or AMX."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    cpu = torch.cpu
    return any(
        bool(getattr(cpu, probe, lambda: False)()) for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def checkpoint_dtype(model_dir: str | Path) -> str:
    """The dtype `config.json` records (`dtype`, or transformers 4.x's `torch_dtype`); float32 when absent."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return "float32"
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def check_dtype(name: str) -> str:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    return name


def resolve_dtype(name: str, model_dir: str | Path) -> str:
    """The dtype to load `model_dir` in: `name` unless "auto" (see the module docstring)."""
    if check_dtype(name) != "auto":
        return name
    import torch

    stored = checkpoint_dtype(model_dir)
    if torch.cuda.is_available() and stored in ("bfloat16", "float16"):
        return stored
    return "bfloat16" if native_bf16() else "float32"


__all__ = ["DTYPES", "check_dtype", "checkpoint_dtype", "native_bf16", "resolve_dtype"]
