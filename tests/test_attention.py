"""Decode attention (`dianjin.eval.attention`) against torch's SDPA, and in a model against sdpa."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from randmodel import qwen2  # noqa: E402

from dianjin.eval import attention  # noqa: E402


class Heads:
    """What transformers' attention functions read off the module."""

    def __init__(self, groups: int):
        self.num_key_value_groups, self.is_causal, self.training = groups, True, False


def reference(q, k, v, mask, scale):
    """SDPA with the kv heads repeated for their query heads: `[B, q, Hq, D]`."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).transpose(1, 2)


@pytest.mark.parametrize(
    "b, hq, hkv, length, mask_kind, view",
    [
        (3, 4, 2, 7, None, False),  # no padding: sdpa's mask is None
        (3, 4, 2, 7, "bool", False),  # left padding, True attends
        (2, 6, 2, 9, "float", False),  # an additive mask
        (4, 9, 3, 11, "bool", True),  # SmolLM2's 9 on 3 heads; keys a view of a buffer with room after them
        (2, 2, 2, 5, "bool", False),  # no grouping (as many kv heads as query heads)
    ],
)
def test_one_query_token_matches_sdpa(b, hq, hkv, length, mask_kind, view):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(b, hq, 1, 8, generator=g)
    if view:  # [B, Hkv, L + 5, D] buffers, attention over their first L slots
        k = torch.randn(b, hkv, length + 5, 8, generator=g)[:, :, :length]
        v = torch.randn(b, hkv, length + 5, 8, generator=g)[:, :, :length]
    else:
        k, v = torch.randn(b, hkv, length, 8, generator=g), torch.randn(b, hkv, length, 8, generator=g)
    keep = torch.arange(length)[None, :] >= torch.arange(b)[:, None]  # row r pads its first r slots
    mask = {
        None: None,
        "bool": keep[:, None, None, :],
        "float": torch.zeros(b, 1, 1, length).masked_fill(~keep[:, None, None, :], float("-inf")),
    }[mask_kind]
    got, _ = attention.decode_attention(Heads(hq // hkv), q, k, v, mask, scaling=0.3)
    assert got.shape == (b, 1, hq, 8)
    torch.testing.assert_close(got, reference(q, k, v, mask, 0.3), rtol=1e-5, atol=1e-5)


def test_longer_queries_go_to_sdpa():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 5, 8, generator=g) for _ in range(3))
    got, _ = attention.decode_attention(Heads(1), q, k, v, None, scaling=0.5, is_causal=True)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5).transpose(1, 2)
    torch.testing.assert_close(got, want)


def test_a_model_generates_the_same_tokens_as_with_sdpa():
    model = qwen2()
    ids = torch.tensor([[0, 0, 5, 9, 3], [4, 8, 2, 7, 6]])  # [2, 5], the first row left-padded
    mask = (ids != 0).long()
    kw = {"attention_mask": mask, "max_new_tokens": 12, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        want = model.generate(ids, **kw)
        model.set_attn_implementation(attention.register())
        got = model.generate(ids, **kw)
    assert model.config._attn_implementation == attention.NAME
    assert torch.equal(got, want)
