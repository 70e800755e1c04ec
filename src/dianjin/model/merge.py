"""Turn training checkpoints into a HuggingFace model directory: FSDP/DCP shards, or a LoRA adapter.

    dianjin merge fsdp CKPT_DIR --base BASE_DIR --output-dir OUT_DIR [--dtype auto|bf16|fp16|fp32] [--verify]
    dianjin merge lora ADAPTER_DIR --base BASE_DIR --output-dir OUT_DIR

`CKPT_DIR` is one of
* verl's actor layout: `model_world_size_{W}_rank_{r}.pt` (+ `fsdp_config.json`): each file is one
  rank's `torch.save` of the sharded state dict: DTensors (FSDP1 with a device mesh, FSDP2, HSDP) with
  `Shard(d)` / `Replicate()` placements on a mesh of any shape, or plain tensors (single-rank or
  replicated entries, which must then agree across ranks);
* a torch.distributed.checkpoint (DCP) directory (`.metadata` + `__{r}_{i}.distcp`); only the model
  entries are taken (`{"model": ...}` if present, else all tensors; optimizer state is ignored);
* a verl `global_step_N` directory with an `actor/` inside.

How it differs from upstream's `merge_model.py` (docs/upstream.md §7.1), which loads
every rank file whole, concatenates everything, builds an fp32 model and calls `save_pretrained`:
* Memory is bounded by the largest tensor, not the model. Rank files are opened with `mmap=True`
  (only metadata is read); the output layout is planned from the DTensor metadata; then one tensor
  at a time is allocated in the output dtype, each local piece is copied into place (`copy_` casts)
  and its file pages are handed back to the kernel (`madvise(MADV_DONTNEED)`: a private, unmodified
  file mapping simply re-reads on the next touch), and the bytes are streamed into a safetensors
  shard whose header was written up front.
* The default dtype is the base model's (upstream saves fp32, twice the size of a bf16 base).
* Loading is safe: `torch.load(weights_only=True)`, and DCP's `.metadata` is read with an allow-list
  unpickler (torch's own reader uses plain `pickle.load`).
* Everything is checked before a byte is written: rank files present and of one world size, DTensor
  meshes of that size, pieces that tile the global shape, keys and shapes equal to the base config's
  model, tied weights really equal. Errors name the file. The output is built under a temporary name
  and renamed only when complete (and verified, with `--verify`).
Tied weights (Qwen2.5-0.5B's `lm_head.weight` = `embed_tokens.weight`) are written once, as HF does.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dianjin.model.checkpoints import MergeError, Source, Spec, open_checkpoint
from dianjin.model.legacy_config import add_legacy_keys

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# torch dtype name -> safetensors dtype code
ST_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}  # fmt: skip
SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


# ------------------------------------------------------------------------------------------------
# Plan: check against the base model, choose dtypes and shards


@dataclass(frozen=True)
class Item:
    spec: Spec
    dtype: torch.dtype  # output dtype


@dataclass
class Plan:
    shards: list[list[Item]]
    skipped: dict[str, str]  # key -> why (tied duplicates)

    @property
    def items(self) -> list[Item]:
        return [it for shard in self.shards for it in shard]

    def shard_name(self, i: int) -> str:
        return f"model-{i + 1:05d}-of-{len(self.shards):05d}.safetensors"


def expected_tensors(base: Path) -> tuple[dict[str, tuple[int, ...]], list[list[str]]]:
    """The base config's model on the meta device: {key: shape} of its state dict, and groups of
    keys that share one tensor (tied weights; the first one is kept)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(base)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    return shapes, [g for g in groups.values() if len(g) > 1]


def make_plan(src: Source, base: Path, out_dtype: torch.dtype | None, max_shard_bytes: int) -> Plan:
    specs = {s.key: s for s in src.specs()}
    shapes, tied = expected_tensors(base)
    for s in specs.values():
        if s.key not in shapes:
            raise MergeError(f"{s.where}: {s.key} is not a tensor of the base model {base}")
        if s.shape != shapes[s.key]:
            raise MergeError(
                f"{s.where}: {s.key} has shape {s.shape}, but the base config {base / 'config.json'} "
                f"expects {shapes[s.key]}"
            )
    skipped, in_groups = {}, set()
    for group in tied:
        in_groups |= set(group)
        present = [k for k in group if k in specs]
        if not present:
            continue
        for k in present[1:]:
            if not _same_values(src, present[0], k):
                raise MergeError(f"{specs[k].where}: {k} differs from {present[0]}, but the base config ties them")
            skipped[k] = f"tied to {present[0]}"
    missing = [k for k in shapes if k not in in_groups and k not in specs]
    missing += [g[0] for g in tied if not set(g) & set(specs)]
    if missing:
        raise MergeError(f"{src.path}: missing {len(missing)} tensor(s) of the base model, e.g. {missing[:3]}")
    shards: list[list[Item]] = [[]]
    size = 0
    for s in specs.values():
        if s.key in skipped:
            continue
        dtype = out_dtype if (out_dtype is not None and s.dtype.is_floating_point) else s.dtype
        nbytes = math.prod(s.shape) * dtype.itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(Item(s, dtype))
        size += nbytes
    return Plan(shards, skipped)


def _same_values(src: Source, a: str, b: str) -> bool:
    """Whether two keys hold equal values, compared piece by piece when their layouts agree."""
    import torch

    with contextlib.closing(src.pieces(a)) as pa, contextlib.closing(src.pieces(b)) as pb:
        for (sa, ta), (sb, tb) in zip(pa, pb):
            if sa != sb:
                break
            if not torch.equal(ta, tb):
                return False
        else:
            return True
    dtype = next(s.dtype for s in src.specs() if s.key == a)
    return torch.equal(assemble(src, a, dtype), assemble(src, b, dtype))


def assemble(src: Source, key: str, dtype: torch.dtype) -> torch.Tensor:
    """The full tensor `key` in `dtype`, built piece by piece (peak: the result plus one piece)."""
    import torch

    spec = next(s for s in src.specs() if s.key == key)
    out = torch.empty(spec.shape, dtype=dtype)
    for idx, piece in src.pieces(key):
        out[idx].copy_(piece)
    return out


# ------------------------------------------------------------------------------------------------
# Write: streamed safetensors shards


def _st_header(items: list[Item]) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    for it in items:
        n = math.prod(it.spec.shape) * it.dtype.itemsize
        code = ST_DTYPES.get(str(it.dtype).removeprefix("torch."))
        if code is None:
            raise MergeError(f"{it.spec.where}: {it.spec.key} has dtype {it.dtype}, which safetensors cannot store")
        header[it.spec.key] = {"dtype": code, "shape": list(it.spec.shape), "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw


def write_shards(src: Source, plan: Plan, out_dir: Path, progress: Callable[[str], None] | None = None) -> int:
    """Stream every planned tensor into its shard; write the index. Returns the bytes written."""
    import torch

    weight_map, total = {}, 0
    for i, items in enumerate(plan.shards):
        name = plan.shard_name(i)
        with open(out_dir / name, "wb") as f:
            f.write(_st_header(items))
            for it in items:
                out = torch.empty(it.spec.shape, dtype=it.dtype)
                for idx, piece in src.pieces(it.spec.key):
                    out[idx].copy_(piece)
                f.write(out.reshape(-1).view(torch.uint8).numpy().data)
                total += out.numel() * out.element_size()
                weight_map[it.spec.key] = name
                del out
        if progress:
            progress(f"wrote {name}")
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return total


def save_companions(base: Path, out_dir: Path, dtype: torch.dtype | None) -> None:
    """config.json (dtype updated), generation_config.json and the tokenizer, from the base model."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    cfg = AutoConfig.from_pretrained(base)
    if dtype is not None:
        cfg.dtype = dtype
    cfg.save_pretrained(out_dir)
    add_legacy_keys(out_dir)
    if (base / "generation_config.json").exists():
        GenerationConfig.from_pretrained(base).save_pretrained(out_dir)
    try:
        tok = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as e:
        log.warning("no tokenizer copied from %s: %s", base, e)
    else:
        tok.save_pretrained(out_dir)


# ------------------------------------------------------------------------------------------------
# Verify


def verify(out_dir: Path, src: Source | None = None, plan: Plan | None = None, reference: Path | None = None,
           generate: bool = True, say: Callable[[str], None] = print) -> None:  # fmt: skip
    """Re-read `out_dir`: keys, shapes and dtypes against the plan, values against the source shards
    (bitwise, after the planned cast) and against a reference HF model directory (after casting it);
    then one greedy generation with AutoModelForCausalLM."""
    from safetensors import safe_open

    index = json.loads((out_dir / "model.safetensors.index.json").read_text())
    planned = {it.spec.key: it for it in plan.items} if plan is not None else None
    files = sorted(set(index["weight_map"].values()))
    seen: dict[str, str] = {}
    for name in files:
        with safe_open(out_dir / name, framework="pt") as f:
            for k in f.keys():
                if index["weight_map"].get(k) != name:
                    raise MergeError(f"{out_dir / name}: {k} is not mapped to this file in the index")
                seen[k] = name
                if planned is None:
                    continue
                t, it = f.get_tensor(k), planned.get(k)
                if it is None or tuple(t.shape) != it.spec.shape or t.dtype != it.dtype:
                    want = "not planned" if it is None else f"{it.spec.shape} {it.dtype}"
                    raise MergeError(f"{out_dir / name}: {k} is {tuple(t.shape)} {t.dtype}, expected {want}")
                if src is not None and not _bitwise_equal(t, assemble(src, k, t.dtype)):
                    raise MergeError(f"{out_dir / name}: {k} differs from the checkpoint shards")
    if set(seen) != set(index["weight_map"]) or (planned is not None and set(seen) != set(planned)):
        odd = set(seen) ^ set(index["weight_map"]) | (set(seen) ^ set(planned or seen))
        raise MergeError(f"{out_dir}: shards, index and plan disagree on {sorted(odd)[:3]}")
    say(f"verify: {len(seen)} tensors in {len(files)} file(s): keys, shapes, dtypes"
        + (" and values match the checkpoint shards" if src is not None else " read back"))  # fmt: skip
    if reference is not None:
        ref = _read_hf_weights(Path(reference))
        if set(ref) != set(seen):
            raise MergeError(f"{reference}: keys differ from the merged model's: {sorted(set(ref) ^ set(seen))[:3]}")
        worst = 0.0
        for k, name in seen.items():
            t = _get(out_dir / name, k)
            r = ref[k]().to(t.dtype)
            if t.shape != r.shape:
                raise MergeError(f"{reference}: {k} has shape {tuple(r.shape)}, merged {tuple(t.shape)}")
            if not _bitwise_equal(t, r):
                worst = max(worst, (t.double() - r.double()).abs().max().item())
        if worst:
            raise MergeError(f"{out_dir}: differs from the reference {reference} (max abs diff {worst:g})")
        say(f"verify: identical to the reference {reference} (after casting it to the merged dtype)")
    if generate:
        say(f"verify: greedy generation: {greedy_sample(out_dir)!r}")


def _bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    import torch

    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))
    )


def _read_hf_weights(d: Path) -> dict[str, Callable[[], torch.Tensor]]:
    """{key: loader} over a HF model directory's safetensors files (lazy: one tensor at a time)."""
    from safetensors import safe_open

    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise MergeError(f"{d}: no *.safetensors files")
    out: dict[str, Callable[[], Any]] = {}
    for p in files:
        with safe_open(p, framework="pt") as f:
            for k in f.keys():
                out[k] = functools.partial(_get, p, k)
    return out


def _get(p: Path, k: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(p, framework="pt") as f:
        return f.get_tensor(k)


def greedy_sample(model_dir: Path, prompt: str = "What is 2 + 2?", max_new_tokens: int = 12) -> str:
    """Load the model with AutoModelForCausalLM and greedily continue one chat prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BatchEncoding

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = cast(BatchEncoding, tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                      return_tensors="pt", return_dict=True))  # fmt: skip
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return str(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=False))


# ------------------------------------------------------------------------------------------------
# Orchestration


@contextlib.contextmanager
def staged_dir(out: Path, force: bool) -> Iterator[Path]:
    """A temporary directory beside `out`, renamed to `out` only if the block completes."""
    out = Path(out)
    if out.exists() and not force:
        raise MergeError(f"{out}: already exists (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def resolve_dtype(name: str | None, base: Path) -> torch.dtype | None:
    """`auto`/None: the base config's dtype (None if it has none: keep the stored dtypes)."""
    import torch

    if name in (None, "auto"):
        cfg = json.loads((base / "config.json").read_text())
        name = cfg.get("dtype") or cfg.get("torch_dtype")
        return getattr(torch, name) if isinstance(name, str) and hasattr(torch, name) else None
    return getattr(torch, DTYPES.get(name, name))


def parse_size(s: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", s)
    if not m or m[2].upper() not in SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (e.g. 5GB, 500MB)")
    return int(float(m[1]) * SIZE_UNITS[m[2].upper()])


def merge_fsdp(
    ckpt: str | Path,
    base: str | Path,
    out: str | Path,
    dtype: str | None = None,
    max_shard_size: int | str = "5GB",
    verify_output: bool = False,
    reference: str | Path | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> Path:
    """Merge an FSDP (verl layout) or DCP checkpoint into a HF model directory at `out`."""
    base, out = Path(base), Path(out)
    if not (base / "config.json").exists():
        raise MergeError(f"{base}: no config.json (--base must be a local HuggingFace model directory)")
    src = open_checkpoint(ckpt)
    out_dtype = resolve_dtype(dtype, base)
    limit = parse_size(max_shard_size) if isinstance(max_shard_size, str) else max_shard_size
    plan = make_plan(src, base, out_dtype, limit)
    in_bytes = sum(s.nbytes for s in src.specs())
    say(f"merge: {src.kind} checkpoint {src.path}: {len(plan.items)} tensors, {in_bytes / 1e6:.1f} MB "
        f"-> {out} ({out_dtype or 'stored dtypes'}, {len(plan.shards)} shard(s))")  # fmt: skip
    for k, why in plan.skipped.items():
        say(f"merge: {k} not written: {why} (the base config ties them)")
    t0 = time.perf_counter()
    with staged_dir(out, force) as tmp:
        written = write_shards(src, plan, tmp)
        save_companions(base, tmp, out_dtype)
        dt = time.perf_counter() - t0
        say(f"merge: wrote {written / 1e6:.1f} MB in {dt:.1f} s ({in_bytes / 1e6 / max(dt, 1e-9):.0f} MB/s read)")
        if verify_output or reference is not None:
            verify(tmp, src, plan, Path(reference) if reference is not None else None, say=say)
    say(f"merge: done: {out}")
    return out


def merge_lora(adapter: str | Path, base: str | Path | None, out: str | Path, dtype: str | None = None,
               force: bool = False, say: Callable[[str], None] = print) -> Path:  # fmt: skip
    """Merge a PEFT adapter into its base model (`merge_and_unload`) and save a plain HF model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = Path(adapter)
    cfg_file = adapter / "adapter_config.json"
    if not cfg_file.exists():
        raise MergeError(f"{cfg_file}: not found (ADAPTER_DIR must hold a PEFT adapter)")
    if base is None:
        base = json.loads(cfg_file.read_text()).get("base_model_name_or_path")
        if not base:
            raise MergeError(f"{cfg_file}: no base_model_name_or_path; pass --base")
    base = Path(base)
    out_dtype = resolve_dtype(dtype, base) or torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=out_dtype)
    try:
        merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as e:
        raise MergeError(f"{adapter}: cannot apply this adapter to {base}: {e}") from None
    with staged_dir(Path(out), force) as tmp:
        merged.save_pretrained(tmp)
        add_legacy_keys(tmp)
        tok_dir = adapter if (adapter / "tokenizer_config.json").exists() else base
        AutoTokenizer.from_pretrained(tok_dir).save_pretrained(tmp)
    say(f"merge: LoRA adapter {adapter} merged into {base} -> {out}")
    return Path(out)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dianjin merge", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fsdp", help="FSDP (verl layout) or DCP shards -> HuggingFace safetensors")
    f.add_argument("ckpt", help="verl actor dir (model_world_size_W_rank_R.pt), global_step_N dir, or DCP dir")
    f.add_argument("--base", required=True, help="HF model dir of the base model (config, tokenizer)")
    f.add_argument(
        "--output-dir",
        "--out",
        dest="out",
        required=True,
        help="new HF model dir (written under a temporary name, then renamed)",
    )
    f.add_argument("--dtype", default="auto", choices=["auto", *DTYPES], help="default: the base model's")
    f.add_argument("--max-shard-size", default="5GB", type=parse_size, help="per safetensors file (default 5GB)")
    f.add_argument("--verify", action="store_true", help="re-read and compare, then generate once")
    f.add_argument("--reference", help="HF model dir the merged weights must equal (implies --verify)")
    f.add_argument("--force", action="store_true", help="replace OUT if it exists")
    lo = sub.add_parser("lora", help="merge a PEFT LoRA adapter into its base model")
    lo.add_argument("adapter")
    lo.add_argument("--base", help="default: the adapter's base_model_name_or_path")
    lo.add_argument("--output-dir", "--out", dest="out", required=True, help="new HF model dir")
    lo.add_argument("--dtype", default="auto", choices=["auto", *DTYPES])
    lo.add_argument("--force", action="store_true")
    return ap


# subcommand -> runner(args)
RUNNERS: dict[str, Callable[[argparse.Namespace], Path]] = {
    "fsdp": lambda a: merge_fsdp(a.ckpt, a.base, a.out, a.dtype, a.max_shard_size, a.verify, a.reference, a.force),
    "lora": lambda a: merge_lora(a.adapter, a.base, a.out, a.dtype, a.force),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        RUNNERS[args.what](args)
    except MergeError as e:
        print(f"dianjin merge: error: {e}", file=sys.stderr)
        return 1
    return 0
