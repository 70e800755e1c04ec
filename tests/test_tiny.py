"""The tiny model builder: deterministic, fast, and a tokenizer that the later stages can rely on."""

from __future__ import annotations

import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from dianjin.model.tiny import FORMAT_TOKENS, SPECIAL_TOKENS, build_model, build_tiny, build_tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny") / "m")


def test_deterministic_and_fast(tiny, tmp_path):
    t0 = time.perf_counter()
    again = build_tiny(tmp_path / "again")
    assert time.perf_counter() - t0 < 3.0
    names = sorted(p.name for p in tiny.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for n in names:
        assert (tiny / n).read_bytes() == (again / n).read_bytes(), n
    other = build_model(tmp_path / "seed1", tiny, seed=1)
    assert (other / "model.safetensors").read_bytes() != (tiny / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    "text",
    [
        "平安银行2020年净利润为100亿元，同比增长5.2%。",  # Chinese round-trips exactly (byte-level BPE)
        "<think>EBITDA rose 12%.</think><answer>\\boxed{B}</answer>",  # format tags survive decoding
        "emoji 📈 and tabs\tand\nnewlines",  # any byte sequence, even outside the corpus
    ],
)
def test_round_trip(tiny, text):
    tok = AutoTokenizer.from_pretrained(tiny)
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=True) == text  # <think>/<answer> are not special


@pytest.mark.parametrize("token", FORMAT_TOKENS + SPECIAL_TOKENS)  # each a single id, and kept or not as intended
def test_added_tokens(tiny, token):
    tok = AutoTokenizer.from_pretrained(tiny)
    ids = tok(token)["input_ids"]
    assert len(ids) == 1
    kept = tok.decode(ids, skip_special_tokens=True)
    assert kept == ("" if token in SPECIAL_TOKENS else token)


def test_chat_template_marks_assistant_tokens(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    msgs = [
        {"role": "system", "content": "You are a financial analyst."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>add</think><answer>4</answer>"},
    ]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a financial analyst.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>add</think><answer>4</answer><|im_end|>\n"
    )
    enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(masked) == "<think>add</think><answer>4</answer><|im_end|>"
    prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_model_matches_tokenizer_and_generates(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    cfg = model.config
    assert cfg.vocab_size == len(tok) and cfg.model_type == "qwen2" and cfg.tie_word_embeddings
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (64, 2, 4, 2)
    assert cfg.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id
    assert cfg.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.padding_side == "left"  # batched generation
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)  # fmt: skip
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


@pytest.mark.parametrize(
    "corpus,vocab_size,lo,hi",
    [
        (None, 2000, 2004, 2004),  # default generated corpus reaches the requested size (+4 format tokens)
        (["profit 利润 " * 20] * 50, 2000, 256, 400),  # a tiny repetitive corpus stops far below: use len(tok)
    ],
)
def test_vocab_size_is_an_upper_bound(tmp_path, corpus, vocab_size, lo, hi):
    tok = build_tokenizer(tmp_path / "t", corpus=corpus, vocab_size=vocab_size)
    assert lo <= len(tok) <= hi
    model_dir = build_model(tmp_path / "t", tok)
    assert AutoModelForCausalLM.from_pretrained(model_dir).get_input_embeddings().weight.shape[0] == len(tok)
    assert torch.isfinite(AutoModelForCausalLM.from_pretrained(model_dir).lm_head.weight).all()


@pytest.mark.parametrize(
    "text,digits",
    [
        ("营业收入为12345.67亿元", ["1", "2", "3", "4", "5", "6", "7"]),  # every digit its own token, as Qwen2.5
        ("rose 3.5% to 1,024", ["3", "5", "1", "0", "2", "4"]),  # inside English text and thousands separators
    ],
)
def test_split_digits(tmp_path, text, digits):
    tok = build_tokenizer(tmp_path / "t", split_digits=True)
    pieces = [tok.convert_tokens_to_string([t]) for t in tok.tokenize(text)]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == digits
    assert tok.decode(tok(text)["input_ids"]) == text  # still round-trips exactly
