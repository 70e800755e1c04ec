"""Every config.json we write also carries the RoPE keys transformers 4.x reads (`rope_theta`,
`rope_scaling`), agreeing with what transformers 5 uses, and transformers 5 still reads it unchanged."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import transformers
from transformers import CONFIG_MAPPING, AutoConfig, AutoModelForCausalLM

from dianjin.model.legacy_config import add_legacy_keys, legacy_view, with_legacy_keys
from dianjin.model.merge import merge_lora, save_companions
from dianjin.model.tiny import build_tiny
from dianjin.train.common import save_final


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("legacy") / "tiny")


def _lora_merge(tiny: Path, d: Path) -> Path:
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                                LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))  # fmt: skip
    peft_model.save_pretrained(d / "adapter")
    return merge_lora(d / "adapter", tiny, d / "merged", say=lambda m: None)


def _save_final(tiny: Path, d: Path) -> Path:
    """`save_final` of a full fine-tune, with a stand-in for the Trainer (it only saves the model)."""
    from transformers import AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny)
    trainer = SimpleNamespace(save_model=model.save_pretrained, is_world_process_zero=lambda: True,
                              accelerator=SimpleNamespace(wait_for_everyone=lambda: None))  # fmt: skip
    cfg = SimpleNamespace(output_dir=str(d / "run"), lora=None, merge_lora=False, model=str(tiny))
    return save_final(trainer, AutoTokenizer.from_pretrained(tiny), cfg, "sft")


def _save_companions(tiny: Path, d: Path) -> Path:
    """What `dianjin merge fsdp` writes beside the weights (config, generation config, tokenizer)."""
    (d / "fsdp").mkdir()
    save_companions(tiny, d / "fsdp", None)
    return d / "fsdp"


def _config(cfg: Any) -> Callable[[Path, Path], Path]:
    """Save the transformers config `cfg`, then add the legacy keys."""

    def save(tiny: Path, d: Path) -> Path:
        cfg.save_pretrained(d / "cfg")
        return add_legacy_keys(d / "cfg").parent

    return save


LINEAR = {"rope_type": "linear", "rope_theta": 500000.0, "factor": 4.0}
YARN = {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "original_max_position_embeddings": 2048}
GEMMA = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
         "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}  # fmt: skip


def _ultrabert(tiny: Path, d: Path) -> Path:
    cfg = AutoConfig.for_model("ultrabert")
    cfg.rope_parameters["full_attention"] = {"rope_type": "linear", "factor": 2.0, "rope_theta": 2560000.0}
    return _config(cfg)(tiny, d)


@pytest.mark.parametrize(
    "save,scaling",
    [
        (lambda t, d: build_tiny(d / "m"), None),  # dianjin.model.tiny: Qwen2, default RoPE (theta 10000)
        (_lora_merge, None),  # dianjin merge lora / save_final with merge_lora
        (_save_final, None),  # save_final of a full fine-tune
        (_save_companions, None),  # dianjin merge fsdp's config.json
        (
            _config(transformers.LlamaConfig(num_hidden_layers=1, rope_parameters=dict(LINEAR))),
            {"type": "linear", "rope_type": "linear", "factor": 4.0},
        ),  # linear scaling, both spellings of the type
        (
            _config(transformers.LlamaConfig(num_hidden_layers=1, rope_parameters=dict(YARN))),
            {"type": "yarn", "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
        ),  # yarn
        (
            _config(transformers.Gemma3TextConfig(num_hidden_layers=2, rope_parameters=copy.deepcopy(GEMMA))),
            {"type": "linear", "rope_type": "linear", "factor": 8.0},
        ),  # per layer type: the full-attention one
        (_ultrabert, None),  # per layer type, but 5.x would let rope_scaling replace them all: left out
    ],
    ids=["tiny", "lora-merge", "save-final", "fsdp-companions", "linear", "yarn", "gemma3-nested", "ultrabert-nested"],
)
def test_legacy_keys_agree_with_transformers5(tiny, tmp_path, save, scaling):
    d = save(tiny, tmp_path)
    raw = json.loads((d / "config.json").read_text())
    t5 = AutoConfig.from_pretrained(d).rope_parameters
    t5 = t5.get("full_attention", t5)
    assert legacy_view(raw) == {"rope_theta": t5["rope_theta"], "rope_scaling": scaling}
    assert "rope_theta" in raw  # explicit, not the 4.x default by luck
    # transformers 5 reads the config as it did without the legacy keys
    plain = {k: v for k, v in raw.items() if k not in ("rope_theta", "rope_scaling")}
    assert _t5_dict(raw) == _t5_dict(plain)
    before = (d / "config.json").read_bytes()
    add_legacy_keys(d)  # idempotent
    assert (d / "config.json").read_bytes() == before
    assert not [p.name for p in d.iterdir() if p.name.startswith(".config.json")]  # no temporary files left


def _t5_dict(raw: dict) -> dict:
    cfg = CONFIG_MAPPING[raw["model_type"]].from_dict(copy.deepcopy(raw)).to_dict()

    def strip(x: Any) -> Any:  # `type` is the 4.x spelling of `rope_type`, tolerated by 5.x
        return {k: strip(v) for k, v in x.items() if k != "type"} if isinstance(x, dict) else x

    return strip(cfg)


@pytest.mark.parametrize(
    "cfg,want",
    [
        ({}, {"rope_theta": 10000.0, "rope_scaling": None}),  # 4.x defaults
        ({"rope_theta": 5e5, "rope_scaling": None}, {"rope_theta": 5e5, "rope_scaling": None}),  # plain 4.x config
        (
            {"rope_parameters": {"rope_theta": 5e5, "rope_type": "default"}},
            {"rope_theta": 10000.0, "rope_scaling": None},
        ),  # a 5.x-only config: 4.x silently uses its default
        (
            {"rope_theta": 1e6, "rope_scaling": {"type": "linear", "factor": 2.0}},
            {"rope_theta": 1e6, "rope_scaling": {"type": "linear", "rope_type": "linear", "factor": 2.0}},
        ),  # old spelling
    ],
    ids=["empty", "legacy", "v5-only", "type-only"],
)
def test_legacy_view(cfg, want):
    assert legacy_view(cfg) == want


@pytest.mark.parametrize(
    "cfg",
    [
        {"model_type": "gpt2", "n_embd": 64},  # no RoPE: untouched
        {"model_type": "llama", "rope_theta": 1e4},  # no rope_parameters: nothing to derive from
    ],
    ids=["no-rope", "no-rope-parameters"],
)
def test_configs_without_rope_parameters_are_untouched(cfg):
    assert with_legacy_keys(cfg) == cfg
