"""The KV cache local generation hands to `model.generate`: prompts prefilled one at a time (no
padding), written into buffers that grow in place (no `torch.cat` per token).

    cache = prefill(model, prompts, k=2, width=max(map(len, prompts)))   # None: let generate prefill
    out = model.generate(input_ids=ids, attention_mask=mask, cache=cache, ...)   # ids: [B*k, width]
    cache = regroup(model, out.cache, keep=[0, 2], length=n, joining=[p], k=1)  # rows leave, p joins

HF `generate` given a left-padded batch prefills every row to the batch's longest prompt, and its
`DynamicCache` concatenates each new token's keys and values onto the whole cache, per layer per
step. Here each prompt's tokens but its last run through the model alone, unpadded, and are copied
right-aligned into a `[B*k, heads, width - 1 + spare, head_dim]` buffer per layer (the same keys
a padded prefill computes: positions count from each prompt's first token; the padding slots stay
zero under a zero attention mask). `generate` then feeds each row's last prompt token first.
`GrowingLayer` appends into spare room and only copies when it runs out (`SPARE` tokens at a time).
`regroup` builds the next cache of continuous batching (`dianjin.eval.batcher`): the rows still
going and the joining prompts, prefilled the same way.

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


def prefill_one(model: Any, prompt: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values) `[1, heads, len(prompt) - 1, dim]` of the prompt but its last token,
    run alone; empty when the prompt is one token."""
    if len(prompt) < 2:
        return []
    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    one = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([list(prompt[:-1])], device=model.device), cache=one, use_cache=True, **keep)
    out = []
    for got in one.layers:
        assert isinstance(got, DynamicLayer) and got.keys is not None and got.values is not None
        out.append((got.keys, got.values))
    return out


def regroup(
    model: Any, cache: DynamicCache | None, keep: Sequence[int], length: int, joining: Sequence[Sequence[int]], k: int
) -> DynamicCache | None:
    """A cache of `length` slots per row: the rows `keep` of `cache` (their last `length` slots; zeros in
    front where the cache is shorter), then `k` rows per prompt of `joining`, each prefilled alone
    (`prefill_one`) and right-aligned: its tokens but the last in the last `len(prompt) - 1` slots.
    Continuous batching (`dianjin.eval.batcher`) calls it whenever rows leave or join: one copy of
    the live keys and values, with `SPARE` slots of room after them. None where `growing_cache`
    gives none; `cache` None or `keep` empty starts from an empty one."""
    fresh = growing_cache(model)
    if fresh is None:
        return None
    if too_long := [len(p) for p in joining if len(p) - 1 > length]:
        raise ValueError(f"a joining prompt of {max(too_long)} tokens does not fit {length} slots")
    added = [(prefill_one(model, p), k) for p in joining]
    rows = len(keep) + k * len(joining)
    olds: list[Any] = cache.layers if cache is not None and keep else [None] * len(fresh.layers)
    index = torch.tensor(list(keep), dtype=torch.long, device=model.device)
    for n, (layer, old) in enumerate(zip(fresh.layers, olds)):
        assert isinstance(layer, GrowingLayer)
        like = [got[n] for got, _ in added if got]  # (keys, values) of the joining prompts at this layer
        if old is not None and not old.is_initialized:
            old = None  # a layer that never saw a key (one-token prompts, no step yet)
        if old is not None:
            assert isinstance(old, GrowingLayer)
            like.append((old.buf_k, old.buf_v))
        if not like:
            continue  # no keys anywhere yet (one-token prompts): the first step initializes the layer
        key, value = like[0]
        layer.reserve(key[:1].expand(rows, -1, -1, -1), value[:1].expand(rows, -1, -1, -1), length)
        if old is not None:
            assert isinstance(old, GrowingLayer)
            span = min(length, old.length)  # old rows' last `span` slots
            layer.buf_k[: len(keep), :, length - span : length] = old.buf_k[index, :, old.length - span : old.length]
            layer.buf_v[: len(keep), :, length - span : length] = old.buf_v[index, :, old.length - span : old.length]
        r = len(keep)
        for got, reps in added:
            if got:
                keys, values = got[n]  # [1, heads, m, dim]
                m = keys.shape[2]
                layer.buf_k[r : r + reps, :, length - m : length] = keys  # broadcast over the prompt's k rows
                layer.buf_v[r : r + reps, :, length - m : length] = values
            r += reps
    return fresh


def prefill(model: Any, prompts: Sequence[list[int]], *, k: int, width: int) -> DynamicCache | None:
    """The cache of every prompt but its last token, prefilled one prompt at a time, right-aligned
    in `width - 1` slots, each prompt's row repeated `k` times (prompt i's rows: i*k ... i*k + k-1),
    for a left-padded `[len(prompts) * k, width]` batch. None where `growing_cache` gives none
    (generate prefills then); empty when every prompt is one token long."""
    if width < 2:
        return growing_cache(model)
    return regroup(model, None, [], width - 1, prompts, k)
