"""Merge throughput and peak memory: `dianjin merge fsdp` against a naive load-everything merge.

    .venv/bin/python bench/bench_merge.py [--repeat 3] [--workdir DIR] [--keep] [--json OUT]

1. Writes, in a temporary directory, a verl-layout checkpoint of random fp32 weights for a Qwen2
   config the size of Qwen2.5-0.5B (494M parameters, tied embeddings; 1.98 GB) on 4 ranks: each
   `model_world_size_4_rank_{r}.pt` holds DTensors with Shard(0) placements, exactly what FSDP
   saves. The DTensors are made in one process on a fake 4-rank process group (no real ranks needed).
   The base model directory has that config (dtype bfloat16) and the tiny tokenizer.
2. Runs each merge in its own fresh process (ours, then naive), with the checkpoint in the page cache:
   - ours: `dianjin.model.merge.merge_fsdp` (streamed, bf16 output);
   - naive: upstream's merge_model.py approach: `torch.load` every rank file whole, `torch.cat` each
     key, `AutoModelForCausalLM.from_config` + `load_state_dict` + `save_pretrained`. (Upstream builds
     an fp32 model and saves fp32; here it builds bf16 so all write the same 0.99 GB output.)
   - naive-lean: load everything and `torch.cat`, cast, one `safetensors.save_file`: no model object,
     the fastest load-everything merge we could write (shown for reference; the target is vs naive).
   Each merge runs `--repeat` times (interleaved, after an `os.sync()`; the median time is shown).
   Peak RSS is the child's own high-water mark (`VmHWM` in /proc/self/status, read at its end;
   `ru_maxrss` of a child would inherit this parent's peak across fork+exec); throughput is checkpoint
   bytes / the merge's own wall time (imports excluded; the whole process's wall time is also shown).
3. Checks that the outputs hold bit-identical tensors, prints a table and deletes everything.
Exit status 1 if ours misses the target: peak RSS <= 25% of naive and throughput >= naive's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

WORLD = 4
# Qwen2.5-0.5B's shape (config.json of the released model)
QWEN05: dict[str, Any] = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True, rope_theta=1000000.0,
)  # fmt: skip


def make_checkpoint(work: Path) -> tuple[Path, Path]:
    """Base model dir (config, tokenizer) and the 4-rank verl actor dir of random fp32 weights."""
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard
    from torch.testing._internal.distributed.fake_pg import FakeStore
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from dianjin.model.tiny import build_tokenizer

    base, actor = work / "base", work / "actor"
    actor.mkdir(parents=True)
    cfg = Qwen2Config(**QWEN05, dtype="bfloat16")
    cfg.save_pretrained(base)
    GenerationConfig(eos_token_id=2, pad_token_id=0).save_pretrained(base)
    build_tokenizer(base)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in AutoModelForCausalLM.from_config(cfg).state_dict().items()}
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=WORLD)
    mesh = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("fsdp",))
    for r in range(WORLD):
        g = torch.Generator().manual_seed(r)
        sd: dict[str, Any] = {}
        for k, shape in shapes.items():
            if k == "lm_head.weight":  # tied: the same DTensor under both names, stored once
                sd[k] = sd["model.embed_tokens.weight"]
                continue
            rows = torch.empty(shape[0]).chunk(WORLD)  # torch.chunk sizes, as FSDP splits dim 0
            n = rows[r].shape[0] if r < len(rows) else 0
            local = torch.randn((n, *shape[1:]), generator=g) * 0.02
            sd[k] = DTensor.from_local(local, mesh, [Shard(0)], run_check=False, shape=shape,
                                       stride=torch.empty(shape, device="meta").stride())  # fmt: skip
        torch.save(sd, actor / f"model_world_size_{WORLD}_rank_{r}.pt")
        del sd
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": WORLD}))
    dist.destroy_process_group()
    return base, actor


def run_ours(actor: str, base: str, out: str) -> None:
    from dianjin.model.merge import merge_fsdp

    merge_fsdp(actor, base, out, say=lambda s: None)


def run_naive(actor: str, base: str, out: str) -> None:
    import logging

    import torch
    import torch.distributed.tensor  # noqa: F401
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    logging.getLogger("torch.distributed.device_mesh").setLevel(logging.ERROR)  # unpickling without PGs

    files = sorted(Path(actor).glob("model_world_size_*_rank_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    sds = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
    full = {k: torch.cat([sd[k].to_local() for sd in sds], dim=0) for k in sds[0]}
    cfg = AutoConfig.from_pretrained(base)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.load_state_dict(full)
    model.save_pretrained(out, max_shard_size="10GB")
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


def run_naive_lean(actor: str, base: str, out: str) -> None:
    """The leanest load-everything merge: no model object, just cat, cast and one safetensors file."""
    import logging

    import torch
    import torch.distributed.tensor  # noqa: F401
    from safetensors.torch import save_file

    logging.getLogger("torch.distributed.device_mesh").setLevel(logging.ERROR)
    files = sorted(Path(actor).glob("model_world_size_*_rank_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    sds = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
    full = {k: torch.cat([sd[k].to_local() for sd in sds], dim=0).to(torch.bfloat16) for k in sds[0]}
    full.pop("lm_head.weight")  # tied
    Path(out).mkdir()
    save_file(full, Path(out) / "model.safetensors", metadata={"format": "pt"})


def run_imports(actor: str, base: str, out: str) -> None:
    """Baseline: the imports both merges pay, and nothing else."""
    import torch.distributed.tensor  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401

    import dianjin.model.merge  # noqa: F401


RUNNERS = {"ours": run_ours, "naive": run_naive, "naive-lean": run_naive_lean, "imports": run_imports}


def child(which: str, actor: str, base: str, out: str) -> None:
    """Entry point of a measured child process (Linux: reads /proc): import, then time only the merge."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    run_imports(actor, base, out)
    t0 = time.perf_counter()
    RUNNERS[which](actor, base, out)
    dt = time.perf_counter() - t0
    status = Path("/proc/self/status").read_text()
    hwm_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"merge_s": dt, "peak_rss_mb": hwm_kb / 1024}))


def measure(which: str, actor: Path, base: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, __file__, "--child", which, str(actor), str(base), str(out)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    stdout, _ = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{which} merge failed with exit status {p.returncode}")
    return {"which": which, "process_s": wall, **json.loads(stdout.strip().splitlines()[-1])}


def median_row(rs: list[dict]) -> dict:
    """The run with the median merge time; peak RSS is the maximum over runs."""
    row = dict(sorted(rs, key=lambda r: r["merge_s"])[len(rs) // 2])
    row.update(peak_rss_mb=max(r["peak_rss_mb"] for r in rs), all_merge_s=[round(r["merge_s"], 2) for r in rs])
    return row


def same_outputs(a: Path, b: Path) -> int:
    """Number of tensors compared; raises if any differs (one tensor in memory at a time per side)."""
    import torch
    from safetensors import safe_open

    def tensors(d: Path) -> dict[str, Path]:
        out = {}
        for p in d.glob("*.safetensors"):
            with safe_open(p, framework="pt") as f:
                out.update({k: p for k in f.keys()})
        return out

    ta, tb = tensors(a), tensors(b)
    if set(ta) != set(tb):
        raise SystemExit(f"outputs differ in keys: {sorted(set(ta) ^ set(tb))[:5]}")
    for k in ta:
        with safe_open(ta[k], framework="pt") as fa, safe_open(tb[k], framework="pt") as fb:
            x, y = fa.get_tensor(k), fb.get_tensor(k)
            if x.dtype != y.dtype or not torch.equal(x, y):
                raise SystemExit(f"outputs differ at {k}")
    return len(ta)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=4, metavar=("WHICH", "ACTOR", "BASE", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help="where to put the checkpoint (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint and outputs")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--repeat", type=int, default=3, help="runs per merge; the median is reported")
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_merge_", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        base, actor = make_checkpoint(work)
        ckpt_bytes = sum(p.stat().st_size for p in actor.iterdir())
        print(
            f"checkpoint: {WORLD} rank files, {ckpt_bytes / 1e9:.2f} GB fp32, made in {time.perf_counter() - t0:.0f} s"
        )
        for p in actor.iterdir():  # page cache warm for both runs
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeat):  # interleaved, so drifting background load hits all alike
            for w in ("imports", "ours", "naive", "naive-lean"):
                shutil.rmtree(work / f"out_{w}", ignore_errors=True)
                os.sync()  # start each run without the previous one's dirty pages being written back
                runs.setdefault(w, []).append(measure(w, actor, base, work / f"out_{w}"))
        rows = [median_row(rs) for rs in runs.values()]
        n = same_outputs(work / "out_ours", work / "out_naive")
        same_outputs(work / "out_ours", work / "out_naive-lean")
        out_bytes = sum(p.stat().st_size for p in (work / "out_ours").glob("*.safetensors"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for r in rows[1:]:
        r["mb_per_s"] = ckpt_bytes / 1e6 / r["merge_s"]
    ours, naive = rows[1], rows[2]
    ratio = ours["peak_rss_mb"] / naive["peak_rss_mb"]
    print(f"outputs: {n} tensors, {out_bytes / 1e9:.2f} GB bf16, bit-identical across the merges\n")
    print(f"| merge | merge time (s), median of {args.repeat} [all] | throughput (MB/s of checkpoint) "
          "| peak RSS (MB) | process wall (s) |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(f"| imports only (baseline) | – | – | {rows[0]['peak_rss_mb']:.0f} | {rows[0]['process_s']:.1f} |")
    for r in rows[1:]:
        print(f"| {r['which']} | {r['merge_s']:.1f} {r['all_merge_s']} | {r['mb_per_s']:.0f} | "
              f"{r['peak_rss_mb']:.0f} | {r['process_s']:.1f} |")  # fmt: skip
    ok = ratio <= 0.25 and ours["mb_per_s"] >= naive["mb_per_s"]
    print(f"\npeak RSS ours/naive = {ratio:.1%} (target <= 25%); throughput ours/naive = "
          f"{ours['mb_per_s'] / naive['mb_per_s']:.2f}x (target >= 1): {'OK' if ok else 'MISSED'}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint_bytes": ckpt_bytes, "rows": rows}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
