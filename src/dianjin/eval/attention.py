"""Decode attention for local generation: one query token per row on SDPA's grouped-query kernel.

    model.set_attn_implementation(register())        # "dianjin_decode": sdpa, decode steps changed

A decode step attends one new token per row to the whole KV cache. For a model with grouped-query
attention (SmolLM2: 9 query heads on 3 kv heads) and a padding mask, transformers' sdpa packs each
kv head's query heads as rows of one query (`pack_gqa`) on a CPU, and torch's flash kernel runs
that shape slowly. Here a decode step calls `scaled_dot_product_attention(..., enable_gqa=True)`
with the query heads as they are: the same sums, on the cache's buffers without a copy. SmolLM2 on
2 CPU cores, 48 rows: a decode step 10% faster (`bench/bench_decode_floor.py`). Everything else
(prefill, dropout, softcap, position biases) goes to transformers' own `sdpa_attention_forward`,
and the masks are sdpa's (`sdpa_mask`).
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "dianjin_decode"


def decode_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query `[B, Hq, q, D]`, key and value `[B, Hkv, L, D]`,
    attention_mask `[B, 1, q, L]` (bool: True attends; or additive) or None; returns `[B, q, Hq, D]`."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    hq, q_len = query.shape[1], query.shape[2]
    hkv, length = key.shape[1], key.shape[2]
    if q_len != 1 or dropout or hq % hkv or any(kwargs.get(k) is not None for k in ("softcap", "position_bias")):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    mask = None if attention_mask is None else attention_mask[:, :, -1:, -length:]  # [B, 1, 1, L]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, scale=scaling, enable_gqa=hq != hkv
    )  # [B, Hq, 1, D]
    return out.transpose(1, 2).contiguous(), None  # [B, 1, Hq, D]


def register() -> str:
    """Register `decode_attention` (with sdpa's masks) under NAME in transformers; returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    return NAME
