"""`dianjin merge`: real FSDP1/FSDP2/HSDP checkpoints (2 processes over gloo, made once per module by
tests/fsdp_worker.py) in verl's layout and as DCP, merged and compared bit for bit with the unsharded
state dict; the clear errors for broken checkpoints; LoRA merging."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from dianjin.model.merge import MergeError, main, make_plan, open_checkpoint, verify
from dianjin.model.tiny import build_tiny

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> Path:
    """Tiny bases (intermediate 99: uneven pieces) and the worker's FSDP checkpoints under one dir."""
    d = tmp_path_factory.mktemp("fsdp")
    build_tiny(d / "tied", intermediate=99)
    build_tiny(d / "untied", intermediate=99, tie=False, seed=1)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parent / "src"))
    cmd = [sys.executable, str(HERE / "fsdp_worker.py"), str(d / "out"), str(d / "tied"), str(d / "untied")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return d


def base_of(variant: str) -> str:
    return "untied" if variant == "fsdp1" else "tied"


def read_out(d: Path) -> dict[str, torch.Tensor]:
    index = json.loads((d / "model.safetensors.index.json").read_text())
    out = {}
    for name in sorted(set(index["weight_map"].values())):
        with safe_open(d / name, framework="pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    assert set(out) == set(index["weight_map"])
    return out


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize(
    "variant,layout",
    [
        ("fsdp1", "actor"),  # FSDP1 with a device mesh (verl's wrap), untied lm_head, uneven Shard(0)
        ("fsdp1", "dcp"),  # the same model as DCP, with optimizer state beside it to be ignored
        ("fsdp2", "actor"),  # FSDP2: Shard(0) and Shard(1) pieces, tied embeddings (lm_head dropped)
        ("fsdp2", "dcp"),  # FSDP2 as DCP
        ("hsdp", "actor"),  # 2-D (ddp, fsdp) mesh: (Replicate(), Shard(0)) DTensors
    ],
)
def test_merge_is_bitwise_the_unsharded_state_dict(ckpts, tmp_path, variant, layout):
    from transformers import AutoModelForCausalLM

    base = ckpts / base_of(variant)
    out = tmp_path / "hf"
    assert main(["fsdp", str(ckpts / "out" / variant / layout), "--base", str(base), "--out", str(out)]) == 0
    ref = torch.load(ckpts / "out" / variant / "reference.pt", weights_only=True)
    got = read_out(out)
    tied = variant != "fsdp1"
    assert set(got) == set(ref) - ({"lm_head.weight"} if tied else set())
    for k, t in got.items():
        assert t.dtype == torch.float32 and t.shape == ref[k].shape, k
        assert torch.equal(bits(t), bits(ref[k])), k
    assert not torch.equal(ref["model.norm.weight"], torch.ones_like(ref["model.norm.weight"]))  # AdamW moved it
    # the merged directory is a working HF model: same logits and greedy tokens as the reference weights
    merged = AutoModelForCausalLM.from_pretrained(out)
    want = AutoModelForCausalLM.from_pretrained(base)
    want.load_state_dict(ref)
    ids = torch.tensor([[5, 17, 300, 42, 7]])
    with torch.no_grad():
        assert torch.equal(merged(ids).logits, want(ids).logits)
        g1 = merged.generate(ids, max_new_tokens=6, do_sample=False)
        assert torch.equal(g1, want.generate(ids, max_new_tokens=6, do_sample=False))
    assert (out / "tokenizer.json").exists() and (out / "generation_config.json").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "base_dtype,flag,want,code",
    [
        ("float32", None, torch.float32, "F32"),  # default: the base model's dtype
        ("bfloat16", None, torch.bfloat16, "BF16"),  # a bf16 base gives bf16, not upstream's fp32
        ("float32", "bf16", torch.bfloat16, "BF16"),  # explicit --dtype wins
        ("float32", "fp16", torch.float16, "F16"),  # fp16 too
    ],
)
def test_single_rank_plain_tensors_dtype_and_sharding(ckpts, tmp_path, base_dtype, flag, want, code):
    from transformers import AutoModelForCausalLM

    base = build_tiny(tmp_path / "base", intermediate=99, dtype=base_dtype)
    sd = torch.load(ckpts / "out" / "fsdp2" / "reference.pt", weights_only=True)
    actor = tmp_path / "actor"
    actor.mkdir()
    torch.save(sd, actor / "model_world_size_1_rank_0.pt")  # no fsdp_config.json: W inferred from the name
    out = tmp_path / "hf"
    argv = ["fsdp", str(actor), "--base", str(base), "--out", str(out), "--max-shard-size", "100KB"]
    assert main(argv + (["--dtype", flag] if flag else [])) == 0
    got = read_out(out)
    files = sorted(set(json.loads((out / "model.safetensors.index.json").read_text())["weight_map"].values()))
    assert len(files) >= 3  # 100 KB shards of a 0.4-0.8 MB model
    for k, t in got.items():
        assert t.dtype == want and torch.equal(bits(t), bits(sd[k].to(want))), k
    raw = (out / files[0]).read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {code}
    assert json.loads((out / "config.json").read_text())["dtype"] == str(want).removeprefix("torch.")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False).shape == (1, 6)


def _truncate(p: Path, keep: int | None = None) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2 if keep is None else keep])


def _narrow_piece(p: Path) -> None:
    import torch.distributed.tensor  # noqa: F401

    sd = torch.load(p, weights_only=True)
    dt = sd["model.layers.1.mlp.gate_proj.weight"]
    dt._local_tensor = dt._local_tensor[:-3].clone()
    torch.save(sd, p)


def _plain_ranks(d: Path, ckpts_out: Path, differ: bool) -> None:
    """Both rank files hold the same plain (non-DTensor) state dict; rank 1's norm moved if `differ`."""
    sd = torch.load(ckpts_out / "fsdp2" / "reference.pt", weights_only=True)
    torch.save(sd, d / "model_world_size_2_rank_0.pt")
    if differ:
        sd["model.norm.weight"] = sd["model.norm.weight"] + 1e-3
    torch.save(sd, d / "model_world_size_2_rank_1.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# name -> (variant, layout, base, mutation(copied checkpoint dir, worker output dir), message fragment)
ERRORS = {
    "missing rank": ("fsdp2", "actor", "tied", lambda d, c: (d / "model_world_size_2_rank_1.pt").unlink(),
                     "model_world_size_2_rank_1.pt: missing rank file"),
    "world size": ("fsdp2", "actor", "tied", lambda d, c: (d / "fsdp_config.json").write_text('{"world_size": 4}'),
                   "fsdp_config.json: world_size is 4, but"),
    "truncated rank": ("fsdp2", "actor", "tied", lambda d, c: _truncate(d / "model_world_size_2_rank_1.pt"),
                       "model_world_size_2_rank_1.pt: cannot read rank file"),
    "not a zip": ("fsdp1", "actor", "untied", lambda d, c: (d / "model_world_size_2_rank_0.pt").write_bytes(b"x" * 99),
                  "model_world_size_2_rank_0.pt: cannot read rank file"),
    "piece shape": ("fsdp2", "actor", "tied", lambda d, c: _narrow_piece(d / "model_world_size_2_rank_1.pt"),
                    "the local pieces of model.layers.1.mlp.gate_proj.weight"),
    "base shape": ("fsdp2", "actor", "other", lambda d, c: None,
                   "model_world_size_2_rank_0.pt: model.embed_tokens.weight has shape (2004, 64), but the base"),
    "tied base": ("fsdp1", "actor", "tied", lambda d, c: None,
                  "lm_head.weight differs from model.embed_tokens.weight, but the base config ties them"),
    "plain differs": ("fsdp2", "actor", "tied", lambda d, c: _plain_ranks(d, c, True),
                      "model_world_size_2_rank_1.pt: model.norm.weight is a plain tensor that differs from rank 0's"),
    "dcp missing": ("fsdp1", "dcp", "untied", lambda d, c: (d / "__1_0.distcp").unlink(),
                    "__1_0.distcp: missing DCP data file"),
    "dcp truncated": ("fsdp1", "dcp", "untied", lambda d, c: _truncate(d / "__1_0.distcp", 300_000),
                      "__1_0.distcp: truncated"),
    "dcp evil pickle": ("fsdp2", "dcp", "tied", lambda d, c: (d / ".metadata").write_bytes(pickle.dumps(_Evil())),
                        ".metadata: cannot read DCP metadata (truncated or corrupt?): refusing to load"),
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        "missing rank",  # a rank file is gone: named
        "world size",  # fsdp_config.json disagrees with the files' world size
        "truncated rank",  # half a rank file (zip directory lost)
        "not a zip",  # garbage in place of a rank file
        "piece shape",  # one rank's local piece is 3 rows short: pieces don't tile the global shape
        "base shape",  # --base of another architecture (hidden 32): shape mismatch names the rank file
        "tied base",  # an untied checkpoint merged onto a base whose config ties lm_head
        "plain differs",  # replicated plain tensors must agree across ranks
        "dcp missing",  # a DCP data file is gone (untied: found while writing, the partial output is removed)
        "dcp truncated",  # a DCP data file cut inside the model's chunks (found while writing)
        "dcp evil pickle",  # .metadata that would run code under plain pickle.load is refused
    ],
)
def test_broken_checkpoints_give_clear_errors_and_no_output(ckpts, tmp_path, capsys, case):
    variant, layout, base, mutate, fragment = ERRORS[case]
    if base == "other":
        base_dir = build_tiny(tmp_path / "other", hidden=32, intermediate=99)
    else:
        base_dir = ckpts / base
    ck = tmp_path / "ck"
    shutil.copytree(ckpts / "out" / variant / layout, ck)
    mutate(ck, ckpts / "out")
    out = tmp_path / "sub" / "hf"
    rc = main(["fsdp", str(ck), "--base", str(base_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "dianjin merge: error:" in err
    assert fragment in err, err
    assert not out.exists() and (not out.parent.exists() or leftovers(out.parent) == [])


def test_plain_tensors_replicated_across_ranks(ckpts, tmp_path):
    ck = tmp_path / "actor"
    ck.mkdir()
    _plain_ranks(ck, ckpts / "out", differ=False)
    out = tmp_path / "hf"
    assert main(["fsdp", str(ck), "--base", str(ckpts / "tied"), "--out", str(out)]) == 0
    ref = torch.load(ckpts / "out" / "fsdp2" / "reference.pt", weights_only=True)
    assert all(torch.equal(bits(t), bits(ref[k])) for k, t in read_out(out).items())


def test_existing_output_needs_force(ckpts, tmp_path, capsys):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    argv = ["fsdp", str(ckpts / "out" / "fsdp2" / "actor"), "--base", str(ckpts / "tied"), "--out", str(out)]
    assert main(argv) == 1 and "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main(argv + ["--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors.index.json").exists()
    assert leftovers(tmp_path) == []


def test_verify_and_reference(ckpts, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    ck, base = ckpts / "out" / "fsdp2" / "actor", ckpts / "tied"
    ref_dir = tmp_path / "ref"  # the unsharded weights saved the HF way
    model = AutoModelForCausalLM.from_pretrained(base)
    model.load_state_dict(torch.load(ckpts / "out" / "fsdp2" / "reference.pt", weights_only=True))
    model.save_pretrained(ref_dir)
    out = tmp_path / "hf"
    assert main(["fsdp", str(ck), "--base", str(base), "--out", str(out), "--verify", "--reference", str(ref_dir)]) == 0
    said = capsys.readouterr().out
    assert "values match the checkpoint shards" in said and "identical to the reference" in said
    assert "greedy generation:" in said
    # the base model (weights before the optimizer step) is not the reference: verify refuses it
    with pytest.raises(MergeError, match="differs from the reference"):
        verify(out, reference=base, generate=False, say=lambda s: None)
    # a flipped byte in the written shard is caught against the checkpoint shards
    shard = out / "model-00001-of-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0x40
    shard.write_bytes(bytes(raw))
    src = open_checkpoint(ck)
    plan = make_plan(src, base, torch.float32, 10**9)
    with pytest.raises(MergeError, match="differs from the checkpoint shards"):
        verify(out, src, plan, generate=False, say=lambda s: None)


def test_lora_merge(ckpts, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = ckpts / "tied"
    torch.manual_seed(0)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    out = tmp_path / "merged"
    assert main(["lora", str(adapter), "--base", str(base), "--out", str(out)]) == 0
    merged = AutoModelForCausalLM.from_pretrained(out)
    with safe_open(out / "model.safetensors", framework="pt") as f:
        assert not [k for k in f.keys() if "lora" in k]
    ids = torch.tensor([[3, 14, 159, 26]])
    with torch.no_grad():
        got, want = merged(ids).logits, peft_model(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base)(ids).logits
    assert (got - want).abs().max() < 1e-5
    assert (got - plain).abs().max() > 1e-3  # the adapter changed the model
    assert (out / "tokenizer.json").exists()
