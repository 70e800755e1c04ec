"""DeepSpeed ZeRO-3 on CPU: a 2-process SFT of the tiny model with `dianjin sft` and the recipes' own
recipes/deepspeed/ds_z3_config.json (unchanged: its "auto" values take bf16=False from the Trainer).

Marked `slow`; skipped unless deepspeed imports (it is the `deepspeed` extra, installed with
`DS_BUILD_OPS=0 pip install --no-build-isolation 'dianjin[deepspeed]'`; no compiled ops are needed).
Run it from a venv that has it, e.g. `python -m pytest -m slow tests/test_deepspeed.py`.

Why a launcher shim on CPU (`WORKER`): accelerate (1.15) has no "DeepSpeed on CPU" state. With
`use_cpu=True` the Trainer never starts DeepSpeed's communication, so DeepSpeed sees a world of 1 and
its batch check fails; with `use_cpu=False` accelerate finds no GPU backend, starts DeepSpeed's comm
(gloo) but records 1 process, and the first gather fails. Creating the state first, with
`PartialState(backend="gloo")` and ACCELERATE_USE_DEEPSPEED=true, and telling the Trainer to use it
(`accelerator_config.use_configured_state`) gives DeepSpeed and accelerate the same world of 2.
On GPUs none of this is needed: accelerate picks NCCL (docs/training.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed (extra: deepspeed)"
    ),
]

WORKER = """
import datetime, json, os, sys
os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
from accelerate import PartialState
PartialState(backend="gloo", timeout=datetime.timedelta(seconds=120))  # DeepSpeed comm over gloo, torchrun's world
import trl
from dianjin.train import sft

train = trl.SFTTrainer.train
def checked_train(self, *args, **kwargs):
    out = train(self, *args, **kwargs)
    engine = self.model_wrapped  # the DeepSpeed engine
    params = list(engine.module.parameters())
    check = os.path.join(os.environ["CHECK_DIR"], "ds_check_%s.json" % os.environ["RANK"])
    with open(check, "w") as f:  # one file per rank: the ranks' stdout lines interleave
        json.dump({"rank": int(os.environ["RANK"]), "stage": engine.zero_optimization_stage(), "world": engine.world_size,
                   "full": sum(p.ds_numel for p in params),  # parameters in the model
                   "local": sum(p.ds_tensor.numel() for p in params),  # this rank's partition
                   "gathered": sum(p.numel() for p in params)}, f)  # materialised now
    return out
trl.SFTTrainer.train = checked_train
sys.exit(sft.main(sys.argv[1:] + ["trainer_args={use_cpu: false, accelerator_config: {use_configured_state: true}}"]))
"""

RECIPE = """
model: {d}/tiny
data: [{d}/sft.jsonl]
output_dir: {d}/run
record_batches: true
learning_rate: 5.0e-3
max_steps: 8
per_device_train_batch_size: 2
global_batch_size: 8
max_length: 256
warmup_ratio: 0.0
logging_steps: 1
save_strategy: "no"
deepspeed: {ds}
"""


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    (d / "worker.py").write_text(WORKER)
    from dianjin.data.fincalc_rows import write_rows
    from dianjin.model.tiny import build_tiny

    build_tiny(d / "tiny")
    write_rows(d / "sft.jsonl", "sft", 64, 0, forms=["mcq"], prompt="question")
    (d / "sft.yaml").write_text(RECIPE.format(d=d, ds=ROOT / "recipes" / "deepspeed" / "ds_z3_config.json"))
    env = {
        **os.environ,
        "CHECK_DIR": str(d),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29531",
            str(d / "worker.py"),
            str(d / "sft.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    checks = [json.loads(p.read_text()) for p in sorted(d.glob("ds_check_*.json"))]
    return d, checks


def test_zero3_partitions_parameters(zero3_run):
    _, checks = zero3_run
    assert sorted(c["rank"] for c in checks) == [0, 1]
    for c in checks:
        assert (c["stage"], c["world"]) == (3, 2)
        # outside a forward only the tiny parameters under stage3_param_persistence_threshold (norms, biases) stay whole
        assert 0 < c["gathered"] < c["full"] / 100
        assert (
            c["full"] / 2 <= c["local"] < 0.6 * c["full"]
        )  # each rank holds about half of the rest (padded partitions)


def test_zero3_trains_and_saves(zero3_run):
    d, _ = zero3_run
    rows = [json.loads(line) for line in (d / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0]  # the loss falls over the 8 steps
    batches = [json.loads(line) for line in (d / "run" / "batches.jsonl").read_text().splitlines()]
    assert [len(b["ids"]) for b in batches] == [4] * 8  # rank 0 trains on its half of each global batch of 8

    import torch
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(d / "run" / "final")  # ZeRO-3 gathered the 16-bit weights on save
    base = AutoModelForCausalLM.from_pretrained(d / "tiny")
    assert sum(p.numel() for p in final.parameters()) == sum(p.numel() for p in base.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(final.parameters(), base.parameters()))
