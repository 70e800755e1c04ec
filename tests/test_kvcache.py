"""The KV cache local generation prefills and grows (`dianjin.eval.kvcache`), against transformers' own.

Prompts prefilled one at a time hold the keys and values a padded batch prefill computes; a
`GrowingLayer` holds what a `DynamicLayer` holds after any sequence of cache operations; generation
from it gives the text generate's own cache gives; a model with sliding-window layers keeps
generate's cache.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from randmodel import qwen2  # noqa: E402
from transformers import DynamicCache  # noqa: E402
from transformers.cache_utils import DynamicLayer  # noqa: E402

from dianjin.eval import kvcache  # noqa: E402
from dianjin.eval.backends import HFModel  # noqa: E402


@pytest.mark.parametrize(
    "lengths, k",
    [
        ([3, 7, 5], 1),  # uneven prompts: each right-aligned in the longest's slots
        ([4, 4], 3),  # equal prompts, three rows per prompt
        ([1, 6], 2),  # a one-token prompt: nothing to prefill, its slots stay padding
    ],
)
def test_prefill_holds_what_a_padded_batch_prefill_holds(lengths, k):
    model = qwen2()
    prompts = [[(7 * i + j) % 60 + 2 for j in range(n)] for i, n in enumerate(lengths)]
    width = max(lengths)
    with torch.inference_mode():
        got = kvcache.prefill(model, prompts, k=k, width=width)
        ref = DynamicCache(config=model.config)  # the padded batch, every prompt but its last token
        ids = torch.tensor([[0] * (width - n) + p[:-1] for p, n in zip(prompts, lengths)])  # [B, width - 1]
        mask = torch.tensor([[0] * (width - n) + [1] * (n - 1) for n in lengths])
        model(input_ids=ids, attention_mask=mask, cache=ref, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
    assert got is not None and got.get_seq_length() == width - 1
    for layer, want in zip(got.layers, ref.layers):
        assert layer.keys is not None and layer.values is not None and want.keys is not None
        assert layer.keys.shape == (len(prompts) * k, 2, width - 1, 8)  # [B*k, kv heads, width - 1, head dim]
        for r in range(len(prompts) * k):
            i, n = r // k, lengths[r // k]
            real = slice(width - n, width - 1)
            torch.testing.assert_close(layer.keys[r, :, real], want.keys[i, :, real])
            torch.testing.assert_close(layer.values[r, :, real], want.values[i, :, real])
            assert not layer.keys[r, :, : width - n].any()  # padding slots: zeros under a zero mask


def _grow(layer, n: int) -> None:
    """Append n tokens to every row (3 rows to begin with), each row's values its own."""
    b = layer.keys.shape[0] if layer.get_seq_length() else 3
    keys = torch.arange(b * 2 * n * 4, dtype=torch.float32).view(b, 2, n, 4) + 100 * layer.get_seq_length()
    layer.update(keys, -keys)


OPS = {
    "grow": lambda layer: [_grow(layer, n) for n in (2, 1, 1, 1)],
    "select": lambda layer: layer.batch_select_indices(torch.tensor([0, 2])),
    "crop": lambda layer: layer.crop(-2),
    "repeat": lambda layer: layer.batch_repeat_interleave(2),
}


@pytest.mark.parametrize(
    "ops",
    [
        ["grow"],  # appends past the spare room: the buffer grows, the tokens so far copied once
        ["grow", "select", "grow"],  # rows leave, then the rest go on growing
        ["grow", "crop", "grow"],  # cropped tokens are overwritten by the next ones
        ["grow", "repeat", "grow"],  # rows repeated for samples
    ],
)
def test_growing_layer_holds_what_a_dynamic_layer_holds(monkeypatch, ops):
    monkeypatch.setattr(kvcache, "SPARE", 2)
    growing, plain = kvcache.GrowingLayer(), DynamicLayer()
    for op in ops:
        OPS[op](growing)
        OPS[op](plain)
        assert growing.get_seq_length() == plain.get_seq_length()
        assert torch.equal(growing.keys, plain.keys) and torch.equal(growing.values, plain.values)


def test_sliding_window_layers_keep_generates_own_cache():
    model = qwen2(layer_types=["full_attention", "sliding_attention"], sliding_window=4, use_sliding_window=True)
    assert kvcache.growing_cache(model) is None
    assert kvcache.prefill(model, [[3, 4, 5]], k=1, width=3) is None
    assert isinstance(kvcache.growing_cache(qwen2()), DynamicCache)


@pytest.mark.parametrize(
    "k, temperature",
    [
        (1, 0.0),  # greedy
        (2, 1.0),  # two samples per prompt: the same draws from the same logits
    ],
)
def test_generation_from_the_prefilled_cache_matches_generates_own(chatty, monkeypatch, k, temperature):
    hf = HFModel(chatty("float32").model, chatty("float32").tok, segment=4)
    prompts = [hf.encode([{"role": "user", "content": "现金流 " * (i + 1)}]) for i in range(3)]
    kw = {"prompts": prompts, "k": k, "temperature": temperature, "top_p": 1.0, "max_tokens": 10, "seeds": [3]}
    ours = hf.generate(**kw)
    monkeypatch.setattr(kvcache, "prefill", lambda *a, **kw: None)  # generate prefills the padded batch itself
    theirs = hf.generate(**kw)
    assert ours == theirs
    assert len({c.text for g in ours for c in g}) > 1
