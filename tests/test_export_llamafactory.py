"""`dianjin export llamafactory`: upstream's SFT config key by key, the dataset files, the launch
script run with a stand-in `llamafactory-cli` (one node, fewer GPUs, multi-node), and the effective
batch kept at upstream's 128 whatever the GPUs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from exportkit import FAKE_LF, run_script, sft_row, write_jsonl

from dianjin import answer as fmt
from dianjin.cli import main as cli_main
from dianjin.data.synthetic import fincalc

# Upstream DianJin-R1/src/sft/qwen2.5_sft.yaml (docs/upstream.md §5); None: filled per export (checked separately).
UPSTREAM_SFT = {
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "template": "qwen",
    "cutoff_len": 16384,
    "max_samples": 1000000,
    "overwrite_cache": True,
    "preprocessing_num_workers": 128,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 16,
    "learning_rate": 1.0e-5,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.03,
    "bf16": True,
    "ddp_timeout": 180000000,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "plot_loss": True,
    "deepspeed": None,
    "dataset": None,
    "model_name_or_path": None,
    "output_dir": None,
}


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return fincalc.generate(40, 7)


@pytest.fixture(scope="module")
def lf_out(tmp_path_factory, examples) -> Path:
    d = tmp_path_factory.mktemp("lf")
    write_jsonl(d / "sft.jsonl", [sft_row(ex) for ex in examples[:30]])
    rc = cli_main(
        [
            "export",
            "llamafactory",
            "--data",
            str(d / "sft.jsonl"),
            "--model",
            "Qwen/Qwen2.5-7B-Instruct",
            "--out",
            str(d / "out"),
        ]
    )
    assert rc == 0
    return d / "out"


def test_llamafactory_files(lf_out):
    cfg = yaml.safe_load((lf_out / "qwen2.5_sft.yaml").read_text())
    assert set(cfg) == set(UPSTREAM_SFT) | {"dataset_dir"}  # upstream's keys, plus where our dataset_info.json is
    assert {k: v for k, v in cfg.items() if UPSTREAM_SFT.get(k) is not None} == {
        k: v for k, v in UPSTREAM_SFT.items() if v is not None
    }
    assert cfg["model_name_or_path"] == "Qwen/Qwen2.5-7B-Instruct"
    assert cfg["output_dir"] == "experiments/checkpoints/Qwen2.5-7B-Instruct-R1"
    info = json.loads((lf_out / cfg["dataset_dir"] / "dataset_info.json").read_text())
    assert cfg["dataset"].split(",") == list(info) == ["fincalc_r1"]
    records = json.loads((lf_out / cfg["dataset_dir"] / info["fincalc_r1"]["file_name"]).read_text())
    assert len(records) == 30 and all(fmt.parse_strict(r["output"]).ok for r in records)
    ds = json.loads((lf_out / cfg["deepspeed"]).read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert subprocess.run(["bash", "-n", str(lf_out / "sft.sh")], check=False).returncode == 0


@pytest.mark.parametrize(
    "env, expect",
    [
        ({}, {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "FORCE_TORCHRUN": ""}),  # upstream's sft.sh: one node, 8 GPUs
        ({"N_GPUS": "2"}, {"CUDA_VISIBLE_DEVICES": "0,1"}),  # fewer GPUs
        (
            {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.1.2.3"},
            {"FORCE_TORCHRUN": "1", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.1.2.3"},
        ),  # LLaMA-Factory multi-node
    ],
)
def test_llamafactory_script(lf_out, tmp_path, env, expect):
    proc, argv, seen = run_script(
        lf_out / "sft.sh", tmp_path, FAKE_LF, "llamafactory-cli", env, ("num_train_epochs=1",)
    )
    assert proc.returncode == 0, proc.stderr
    assert argv == ["train", "qwen2.5_sft.yaml", "num_train_epochs=1"]
    assert seen["cwd"] == str(lf_out.resolve())  # relative paths in the yaml resolve against the export folder
    assert {k: seen[k] for k in expect} == expect


def test_llamafactory_multinode_needs_rank(lf_out, tmp_path):
    proc, argv, _ = run_script(lf_out / "sft.sh", tmp_path, FAKE_LF, "llamafactory-cli", {"NNODES": "2"})
    assert proc.returncode != 0 and "NODE_RANK" in proc.stderr and argv == []


@pytest.mark.parametrize(
    "gpus, nodes, accumulation",
    [
        ("8", "1", 16),  # upstream: 1 x 16 x 8 = 128
        ("4", "1", 32),  # half the GPUs, twice the accumulation
        ("8", "4", 4),  # 32 GPUs
        ("3", "1", None),  # 128 is not a multiple of 3: refused
    ],
)
def test_llamafactory_effective_batch(tmp_path, examples, capsys, gpus, nodes, accumulation):
    write_jsonl(tmp_path / "sft.jsonl", [sft_row(ex) for ex in examples[:4]])
    rc = cli_main(
        [
            "export",
            "llamafactory",
            "--data",
            str(tmp_path / "sft.jsonl"),
            "--model",
            "base",
            "--out",
            str(tmp_path / "o"),
            "--n-gpus",
            gpus,
            "--nnodes",
            nodes,
        ]
    )
    if accumulation is None:
        assert rc == 2 and "do not divide" in capsys.readouterr().err
        return
    assert rc == 0
    cfg = yaml.safe_load((tmp_path / "o" / "qwen2.5_sft.yaml").read_text())
    assert cfg["gradient_accumulation_steps"] == accumulation
    assert cfg["per_device_train_batch_size"] * accumulation * int(gpus) * int(nodes) == 128
