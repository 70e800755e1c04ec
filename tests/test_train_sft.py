"""SFT stage: the loss falls and the strict format is learned on fincalc; the run directory
carries its provenance; a run killed (SIGKILL) after a checkpoint resumes with the right step count
and data order; 2 processes under torchrun (gloo, CPU) train; LoRA merges; configs and bad data fail
clearly. Everything is built in the test: tiny model, generated fincalc data; no downloads.

The SFT run itself is the session fixture `tiny_sft` (tests/conftest.py), shared with the GRPO and mining tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dianjin import answer as fmt
from dianjin.config import ConfigError, from_dict, load_config, to_dict
from dianjin.errors import DataError
from dianjin.files import iter_jsonl
from dianjin.train.callbacks import read_batches
from dianjin.train.common import divide, last_checkpoint, load_sft_rows, trainer_kwargs
from dianjin.train.sft import SFTRunConfig, run

ROOT = Path(__file__).resolve().parents[1]
STEPS = 100  # the tiny_sft fixture's max_steps (tests/conftest.py)


@pytest.fixture(scope="module")
def root(tiny_sft) -> Path:
    return tiny_sft


def metrics(run_dir: Path) -> list[dict]:
    return list(iter_jsonl(run_dir / "metrics.jsonl"))


def strict_rate(path: Path) -> float:
    rows = list(iter_jsonl(path))
    return sum(fmt.parse_strict(r["completion"]).ok for r in rows) / len(rows)


# --- the training run ---------------------------------------------------------------------------
def test_loss_falls(root):
    losses = [m["loss"] for m in metrics(root / "sft") if "loss" in m]
    assert len(losses) == STEPS // 5
    assert losses[-1] < 0.25 * losses[0], losses


def test_strict_format_rate_rises(root):
    samples = root / "sft" / "samples"
    # checked again here with parse_strict on the text, not only the recorded verdicts
    assert strict_rate(samples / "step-000000.jsonl") < 0.1
    assert strict_rate(samples / f"step-{STEPS:06d}.jsonl") > 0.9
    logged = {m["step"]: m["samples/format_rate"] for m in metrics(root / "sft") if "samples/format_rate" in m}
    assert logged[0] < 0.1 and logged[STEPS] > 0.9


def test_run_dir_provenance(root, sft_config):
    run_dir = root / "sft"
    assert load_config(SFTRunConfig, run_dir / "config.yaml") == from_dict(SFTRunConfig, sft_config(root))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert {"commit", "dirty"} <= set(meta["git"]) and meta["stage"] == "sft" and meta["world_size"] == 1
    assert {"torch", "transformers", "trl"} <= set(meta["versions"])
    data = root / "data" / "sft.jsonl"
    assert meta["data"]["files"][str(data)]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (run_dir / "final").iterdir()}


def test_batches_record_the_data_order(root):
    batches = read_batches(root / "sft")
    ids = {r["id"] for r in load_sft_rows([root / "data" / "sft.jsonl"])}
    assert [b["step"] for b in batches] == list(range(1, STEPS + 1))
    assert all(len(b["ids"]) == 8 and set(b["ids"]) <= ids for b in batches)
    epoch1 = [i for b in batches[:25] for i in b["ids"]]  # 200 rows / 8 = 25 steps: each row once
    assert sorted(epoch1) == sorted(ids)


# --- resume after SIGKILL -----------------------------------------------------------------------
def test_resume_after_sigkill(root, tmp_path, sft_config):
    out = tmp_path / "killed"
    cfg = sft_config(
        root,
        output_dir=str(out),
        max_steps=30,
        save_strategy="steps",
        save_steps=10,
        save_total_limit=None,
        sample_every=0,
    )
    cfg_path = tmp_path / "resume.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dianjin.train.sft", str(cfg_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    deadline = time.monotonic() + 180
    while last_checkpoint(out) is None:
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = int(last_checkpoint(out).name.split("-")[1])
    assert 10 <= killed_at < 30 and not (out / "final").exists()

    run(load_config(SFTRunConfig, cfg_path))  # the same command again: resumes

    state = json.loads((out / "checkpoint-30" / "trainer_state.json").read_text())
    assert state["global_step"] == 30 and state["max_steps"] == 30
    assert json.loads((out / "meta.json").read_text())["resumed_from"].endswith(f"checkpoint-{killed_at}")
    batches = read_batches(out)
    reference = read_batches(root / "sft")[:30]  # the uninterrupted run: same data, seed and batch size
    assert [b["step"] for b in batches] == list(range(1, 31))  # each step once: logs were cut back on resume
    assert [b["ids"] for b in batches] == [b["ids"] for b in reference]
    assert [m["step"] for m in metrics(out) if "loss" in m] == [5, 10, 15, 20, 25, 30]


# --- 2 processes --------------------------------------------------------------------------------
def test_torchrun_two_processes(root, tmp_path, sft_config):
    out = tmp_path / "ddp"
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            sft_config(
                root, output_dir=str(out), max_steps=4, per_device_train_batch_size=4, logging_steps=1, sample_every=0
            )
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dianjin.train.sft",
        str(cfg_path),
    ]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert json.loads((out / "meta.json").read_text())["world_size"] == 2
    assert [m["step"] for m in metrics(out) if "loss" in m] == [1, 2, 3, 4]
    assert res.stdout.count("[sft] step 1/4") == 1  # one progress line per step: the main process only
    batches = read_batches(out)
    assert [len(b["ids"]) for b in batches] == [4, 4, 4, 4]  # rank 0's half of each global batch of 8
    assert (out / "final" / "model.safetensors").exists()


# --- LoRA ---------------------------------------------------------------------------------------
def test_lora_is_merged_into_final(root, tmp_path, sft_config):
    out = tmp_path / "lora"
    final = run(
        from_dict(
            SFTRunConfig,
            sft_config(
                root, output_dir=str(out), max_steps=3, sample_every=0, lora={"r": 4, "alpha": 8, "dropout": 0.0}
            ),
        )
    )
    from safetensors import safe_open

    assert (out / "adapter" / "adapter_config.json").exists()
    with safe_open(str(final / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora" in k]  # noqa: SIM118 (safe_open has no __iter__)


# --- config and data errors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, key, value",
    [
        (["max_steps=7"], "max_steps", 7),  # YAML scalar parsing
        (
            ["lora.r=4"],
            "lora",
            {"r": 4, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        ),  # nested, defaults kept
        (["save_strategy=no"], "save_strategy", False),  # YAML reads `no` as false ...
        (["learning_rate=2e-5"], "learning_rate", 2e-5),  # "2e-5" is a string in YAML; coerced to float
    ],
)
def test_overrides(overrides, key, value):
    cfg = load_config(SFTRunConfig, None, ["model=m", "data=[d]", "output_dir=o", *overrides])
    assert to_dict(cfg)[key] == value


def test_save_strategy_no_reaches_trl():
    cfg = load_config(SFTRunConfig, None, ["save_strategy=no"])
    assert trainer_kwargs(cfg)["save_strategy"] == "no"  # ... and means "no"


def test_defaults_follow_upstream():
    cfg = SFTRunConfig()
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.lr_scheduler_type, cfg.warmup_ratio) == (
        1e-5,
        3.0,
        "linear",
        0.03,
    )
    assert (cfg.global_batch_size, cfg.max_length, cfg.packing, cfg.assistant_only_loss) == (128, 16384, False, True)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["max_step=5"], "unknown key(s) max_step"),  # a typo names the key
        (["packing=maybe"], "packing"),  # wrong type names the key
        (["lora.rank=4"], "rank"),  # nested typo
    ],
)
def test_bad_config(overrides, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(SFTRunConfig, None, overrides)


@pytest.mark.parametrize(
    "total, per, ok",
    [
        (128, 8, 16),  # upstream: 128 sequences = 1 per GPU x 8 GPUs x 16 accumulation steps
        (128, 1, 128),  # one process
        (128, 48, None),  # 128 / 48 is not whole: an error, not a silent rounding
        (4, 8, None),  # fewer than one micro-batch
    ],
)
def test_global_batch_division(total, per, ok):
    if ok is None:
        with pytest.raises(DataError, match="global_batch_size"):
            divide(total, per, "global_batch_size", "cfg")
    else:
        assert divide(total, per, "global_batch_size", "cfg") == ok


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"id": "a", "messages": "hi"}', "messages"),  # not a list
        ('{"id": "a", "messages": [{"role": "user", "content": "q"}]}', "messages"),  # no assistant target
        (
            '{"id": "a", "messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "a"}]}',
            "messages[0]",
        ),
        (
            '{"id": "a", "messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}',
            "messages[0]",
        ),
        ('{"id": "a", ', None),  # invalid JSON (not the last line)
    ],
)
def test_bad_sft_rows_name_file_line_field(tmp_path, line, field):
    good = '{"id": "g", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
    p = tmp_path / "sft.jsonl"
    p.write_text(good + "\n" + line + "\n" + good + "\n")
    with pytest.raises(DataError) as e:
        load_sft_rows([p])
    assert e.value.line == 2 and e.value.field == field and str(p) in str(e.value)
