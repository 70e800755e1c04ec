"""Make real FSDP checkpoints on CPU: 2 processes over gloo, one optimizer step, then save.

    python tests/fsdp_worker.py OUT_DIR TIED_BASE_DIR UNTIED_BASE_DIR

Run as a subprocess by tests/test_merge.py (a module-scoped fixture, so the ~10 s is paid once).
For each variant it writes, under OUT_DIR/VARIANT/:
    actor/model_world_size_2_rank_{0,1}.pt + actor/fsdp_config.json   verl's layout (torch.save of the
                                                                       sharded state dict: DTensors)
    dcp/  (.metadata, __0_0.distcp, __1_0.distcp)                      torch.distributed.checkpoint of
                                                                       {"model": ..., "optim": ...}
    reference.pt                                                       the full, unsharded state dict
Variants:
    fsdp1  FSDP1 with a device mesh (as verl wraps it), untied embeddings, SHARDED_STATE_DICT
    fsdp2  FSDP2 fully_shard, tied embeddings, up_proj sharded on dim 1, the rest on dim 0
    hsdp   FSDP2 on a 2-D (ddp=2, fsdp=1) mesh: every DTensor is (Replicate(), Shard(0)); verl layout only
The lm vocabulary and the odd intermediate size make Shard(0) and Shard(1) pieces uneven.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

WORLD = 2


def _step(model, rank: int) -> None:
    """One AdamW step on rank-specific random tokens, so the weights differ from the base model."""
    import torch

    g = torch.Generator().manual_seed(100 + rank)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    return opt


def _full(sd: dict) -> dict:
    """Gather every DTensor (a collective: all ranks call it in the same key order)."""
    from torch.distributed.tensor import DTensor

    return {k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().clone() for k, v in sd.items()}


def _save(out: Path, rank: int, version: int, sd: dict, full: dict) -> None:
    import torch

    actor = out / "actor"
    actor.mkdir(parents=True, exist_ok=True)
    torch.save(sd, actor / f"model_world_size_{WORLD}_rank_{rank}.pt")
    if rank == 0:
        (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": version, "world_size": WORLD}))
        torch.save(full, out / "reference.pt")


def _dcp(out: Path, model, opt) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    dcp.save(
        {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)},
        checkpoint_id=str(out / "dcp"),
    )


def variant_fsdp1(out: Path, base: Path, rank: int) -> None:
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardedStateDictConfig, StateDictType
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers import AutoModelForCausalLM
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    mesh = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("fsdp",))
    model = FSDP(
        model,
        auto_wrap_policy=ModuleWrapPolicy({Qwen2DecoderLayer}),
        device_id=torch.device("cpu"),
        device_mesh=mesh,
        use_orig_params=True,
    )
    opt = _step(model, rank)
    with FSDP.state_dict_type(model, StateDictType.SHARDED_STATE_DICT, ShardedStateDictConfig()):
        sd = model.state_dict()
    _save(out, rank, 1, sd, _full(sd))
    _dcp(out, model, opt)


def variant_fsdp2(out: Path, base: Path, rank: int) -> None:
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    mesh = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("fsdp",))

    # FSDP2 allows uneven pieces only on dim 0: up_proj (intermediate, hidden) goes on dim 1 (even),
    # gate_proj (intermediate odd) stays on dim 0 and splits 50/49.
    on_dim1 = {id(layer.mlp.up_proj.weight) for layer in model.model.layers}

    def placement(p):
        return Shard(1) if id(p) in on_dim1 else Shard(0)

    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh, shard_placement_fn=placement)
    fully_shard(model, mesh=mesh)
    opt = _step(model, rank)
    sd = model.state_dict()
    _save(out, rank, 2, sd, _full(sd))
    _dcp(out, model, opt)


def variant_hsdp(out: Path, base: Path, rank: int) -> None:
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    mesh = init_device_mesh("cpu", (WORLD, 1), mesh_dim_names=("ddp", "fsdp"))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    _step(model, rank)
    sd = model.state_dict()
    _save(out, rank, 2, sd, _full(sd))


# variant -> (builder, which base model)
VARIANTS = {"fsdp1": (variant_fsdp1, "untied"), "fsdp2": (variant_fsdp2, "tied"), "hsdp": (variant_hsdp, "tied")}


def _rank_main(rank: int, out: str, bases: dict[str, str], port: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for name, (fn, base) in VARIANTS.items():
            torch.manual_seed(0)
            fn(Path(out) / name, Path(bases[base]), rank)
            dist.barrier()
    finally:
        dist.destroy_process_group()


def main(argv: list[str]) -> None:
    import torch.multiprocessing as mp

    out, tied, untied = argv
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_rank_main, args=(out, {"tied": tied, "untied": untied}, port), nprocs=WORLD, join=True)


if __name__ == "__main__":
    main(sys.argv[1:])
