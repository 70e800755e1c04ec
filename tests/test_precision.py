"""`dianjin.model.precision`: the dtype `dtype: auto` picks for generation (eval, mining, serve)."""

from __future__ import annotations

import json

import pytest
import torch

from dianjin.model import precision


@pytest.mark.parametrize(
    "name,stored,cuda,native,want",
    [
        ("auto", "float32", False, True, "bfloat16"),  # our checkpoints on a CPU with AVX512-BF16/AMX
        ("auto", "float32", False, False, "float32"),  # a CPU without native bf16: stay in float32
        ("auto", "bfloat16", False, False, "float32"),  # a bf16 checkpoint too: emulated bf16 is slower there
        ("auto", "float16", False, True, "bfloat16"),  # float16 on a CPU is slow: bf16 where native
        ("auto", "float32", True, True, "bfloat16"),  # a bf16-capable GPU runs float32 checkpoints in bf16
        ("auto", "float32", True, False, "float32"),  # an older GPU without bf16
        ("auto", "float16", True, True, "float16"),  # a GPU keeps a half-precision checkpoint's own dtype
        ("auto", None, False, True, "bfloat16"),  # no dtype in config.json reads as float32
        ("float32", "float32", False, True, "float32"),  # an explicit dtype is kept whatever the hardware
        ("bfloat16", "float32", False, False, "bfloat16"),  # ... even where bf16 is emulated
    ],
)
def test_resolve_dtype(tmp_path, monkeypatch, name, stored, cuda, native, want):
    (tmp_path / "config.json").write_text(json.dumps({} if stored is None else {"dtype": stored}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    assert precision.resolve_dtype(name, tmp_path) == want


@pytest.mark.parametrize(
    "config,want",
    [
        ({"dtype": "bfloat16"}, "bfloat16"),  # transformers 5's key
        ({"torch_dtype": "float16"}, "float16"),  # transformers 4.x's key
        ({}, "float32"),  # neither: float32, as from_pretrained loads it
        (None, "float32"),  # no config.json at all
    ],
)
def test_checkpoint_dtype(tmp_path, config, want):
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    assert precision.checkpoint_dtype(tmp_path) == want


def test_unknown_dtype_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown dtype 'fp8'; choose from auto, float32, bfloat16, float16"):
        precision.resolve_dtype("fp8", tmp_path)
