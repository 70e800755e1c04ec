"""The KV cache local generation hands to `model.generate`: prompts prefilled one at a time (no
padding), written into buffers that grow in place (no `torch.cat` per token).

    cache = prefill(model, prompts, k=2, width=max(map(len, prompts)))   # None: let generate prefill
    out = model.generate(input_ids=ids, attention_mask=mask, cache=cache, ...)   # ids: [B*k, width]

HF `generate` given a left-padded batch prefills every row to the batch's longest prompt, and its
`DynamicCache` concatenates each new token's keys and values onto the whole cache, per layer per
step. Here each prompt's tokens but its last run through the model alone, unpadded, and are copied
right-aligned into a `[B*k, heads, width - 1 + spare, head_dim]` buffer per layer (the same keys
a padded prefill computes: positions count from each prompt's first token; the padding slots stay
zero under a zero attention mask). `generate` then feeds each row's last prompt token first.
`GrowingLayer` appends into spare room and only copies when it runs out (`SPARE` tokens at a time).

Models whose cache has other layer types (sliding windows, linear attention) keep generate's own
padded prefill: `prefill` returns None for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

SPARE = 64  # tokens of room added whenever a layer's buffer is full


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of a buffer with spare room at the end."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.buf_k, self.buf_v = key_states[:, :, :0], value_states[:, :, :0]  # [B, heads, 0, dim]: no room yet
        self.length = 0

    def reserve(self, key_like: torch.Tensor, value_like: torch.Tensor, length: int) -> None:
        """Zeroed buffers shaped as `key_like`/`value_like` [B, heads, *, dim] holding `length` tokens."""
        self.lazy_initialization(key_like, value_like)
        b, h, _, dk = key_like.shape
        self.buf_k = key_like.new_zeros(b, h, length + SPARE, dk)
        self.buf_v = value_like.new_zeros(b, h, length + SPARE, value_like.shape[-1])
        self._view(length)

    def _view(self, length: int) -> None:
        self.length = length
        self.keys, self.values = self.buf_k[:, :, :length], self.buf_v[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, add = self.length, key_states.shape[-2]
        if n + add > self.buf_k.shape[2]:  # out of room: a bigger buffer, the tokens so far copied once
            old_k, old_v = self.buf_k, self.buf_v
            self.reserve(key_states, value_states, n + add)
            if n:
                self.buf_k[:, :, :n], self.buf_v[:, :, :n] = old_k[:, :, :n], old_v[:, :, :n]
        self.buf_k[:, :, n : n + add] = key_states
        self.buf_v[:, :, n : n + add] = value_states
        self._view(n + add)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative number of tokens to remove, got {tokens_to_remove}")
        if self.is_initialized and tokens_to_remove:
            self._view(max(0, self.length + tokens_to_remove))

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length:
            self.buf_k, self.buf_v = (b.repeat_interleave(repeats, dim=0) for b in (self.buf_k, self.buf_v))
            self._view(self.length)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]
            self._view(self.length)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.batch_select_indices(beam_idx)


def growing_cache(model: Any) -> DynamicCache | None:
    """An empty `DynamicCache` for `model` whose layers are `GrowingLayer`s; None when the model's
    cache has layers other than plain `DynamicLayer`s."""
    cache = DynamicCache(config=model.config)
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


def prefill(model: Any, prompts: Sequence[list[int]], *, k: int, width: int) -> DynamicCache | None:
    """The cache of every prompt but its last token, prefilled one prompt at a time, right-aligned
    in `width - 1` slots, each prompt's row repeated `k` times (prompt i's rows: i*k ... i*k + k-1),
    for a left-padded `[len(prompts) * k, width]` batch. None where `growing_cache` gives none
    (generate prefills then); empty when every prompt is one token long."""
    cache = growing_cache(model)
    if cache is None or width < 2:
        return cache
    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    device = model.device
    for i, p in enumerate(prompts):
        if len(p) < 2:
            continue  # nothing before its last token: its slots stay padding
        one = DynamicCache(config=model.config)
        model(input_ids=torch.tensor([p[:-1]], device=device), cache=one, use_cache=True, **keep)
        rows, cols = slice(i * k, (i + 1) * k), slice(width - len(p), width - 1)
        for layer, got in zip(cache.layers, one.layers):
            assert isinstance(layer, GrowingLayer) and isinstance(got, DynamicLayer)
            keys, values = got.keys, got.values  # [1, heads, len(p) - 1, dim]
            assert keys is not None and values is not None
            if not layer.is_initialized:  # shapes and dtypes from the first prompt's keys
                n_rows = len(prompts) * k
                layer.reserve(keys.expand(n_rows, -1, -1, -1), values.expand(n_rows, -1, -1, -1), width - 1)
            layer.buf_k[rows, :, cols] = keys  # broadcast over the prompt's k rows
            layer.buf_v[rows, :, cols] = values
    return cache
