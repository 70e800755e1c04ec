"""A random tiny Qwen2 for the KV-cache and batching tests (`test_kvcache.py`, `test_batcher.py`)."""

from __future__ import annotations

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def qwen2(**over) -> Qwen2ForCausalLM:
    """A random float32 Qwen2 (2 layers, 4 query heads on 2 kv heads), weights of std 0.3 so keys differ."""
    cfg = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, **over,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model
