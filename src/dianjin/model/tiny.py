"""A tiny, deterministic Qwen2 model and tokenizer, built locally in about a second, for tests and demos.

Every stage (SFT, GRPO, merge, serve, eval) needs a real HuggingFace model directory to run against,
and nothing may be downloaded. So we train a byte-level BPE on a small bilingual (EN/ZH) finance corpus
that is generated in code, wrap it as a HF fast tokenizer with a ChatML chat template, and save a
randomly initialised `Qwen2ForCausalLM` of ~130k parameters beside it.

    from dianjin.model.tiny import build_tiny
    model_dir = build_tiny(tmp_path / "tiny")           # tokenizer + config + weights, ~0.6 MB

Tokenizer choices (see docs/upstream.md §2.3):
* special tokens `<|endoftext|>` (pad), `<|im_start|>`, `<|im_end|>` (eos), as in Qwen2.5;
* `<think>`, `</think>`, `<answer>`, `</answer>` are *normal* added tokens, so each is one id and
  `skip_special_tokens=True` keeps them (the reward needs to see them);
* the chat template wraps assistant content in `{% generation %}` so TRL's `assistant_only_loss`
  and `return_assistant_tokens_mask=True` work.
`vocab_size` is an upper bound: the model's vocabulary is `len(tok)`, whatever BPE reached.

Determinism: the corpus comes from a seeded `random.Random`, BPE training is deterministic for a
given corpus, and the model is initialised after `torch.manual_seed(seed)`; the same arguments give
byte-identical files.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dianjin.model.legacy_config import add_legacy_keys

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
FORMAT_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# ChatML, as Qwen2.5 uses it (without the default system prompt). The assistant turn, including its
# closing <|im_end|>, is inside {% generation %} so only those tokens count for assistant-only loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_COMPANIES_EN = ["Acme Corp", "Globex", "Initech", "Umbrella Bank", "Stark Capital", "Wayne Holdings"]
_COMPANIES_ZH = ["平安银行", "招商证券", "华夏基金", "中信建投", "宁德时代", "贵州茅台", "工商银行"]
_METRICS_EN = ["revenue", "net income", "operating cash flow", "total assets", "EBITDA", "gross margin"]
_METRICS_ZH = ["营业收入", "净利润", "经营现金流", "总资产", "毛利率", "资产负债率", "每股收益"]
_TEMPLATES_EN = [
    "{c} reported {m} of {a} million dollars in {y}, up {p}% from the previous year.",
    "What is the {m} growth rate of {c} if it rose from {a} to {b} million?",
    "The bond pays a {p}% coupon annually; its price is {a} and it matures in {n} years.",
    "Compute the present value of {a} dollars received in {n} years at a discount rate of {p}%.",
    "Under IFRS 9, the expected credit loss of the portfolio is {a} thousand; the allowance was {b}.",
    "Question: Which of the following is a liability? A. cash B. accounts payable C. inventory D. land",
]
_TEMPLATES_ZH = [
    "{c}{y}年{m}为{a}亿元，同比增长{p}%。",
    "若{c}的{m}从{a}亿元增加到{b}亿元，增长率是多少？",
    "某债券票面利率为{p}%，期限{n}年，当前价格为{a}元，请计算到期收益率。",
    "根据《证券法》，上市公司应当在{n}个工作日内披露重大事项，{c}未按时披露。",
    "以下哪项属于流动资产？A. 应收账款 B. 长期借款 C. 固定资产 D. 无形资产",
    "客服：您好，请问您的基金账户{a}是否需要调整风险等级？客户：我想了解{m}的计算方法。",
]


def finance_corpus(n: int = 3000, seed: int = 0) -> Iterator[str]:
    """`n` generated finance sentences, alternating English and Chinese, including the answer format."""
    rng = random.Random(seed)
    for i in range(n):
        zh = i % 2 == 1
        tpl = rng.choice(_TEMPLATES_ZH if zh else _TEMPLATES_EN)
        text = tpl.format(
            c=rng.choice(_COMPANIES_ZH if zh else _COMPANIES_EN),
            m=rng.choice(_METRICS_ZH if zh else _METRICS_EN),
            a=round(rng.uniform(1, 5000), rng.choice([0, 1, 2])),
            b=round(rng.uniform(1, 5000), 1),
            p=round(rng.uniform(0.5, 30), 1),
            n=rng.randint(1, 30),
            y=rng.randint(2001, 2024),
        )
        if i % 5 == 0:
            text = f"<think>{text}</think><answer>\\boxed{{{rng.choice('ABCD')}}}</answer>"
        yield text


def build_tokenizer(
    out_dir: str | Path,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 2000,
    max_len: int = 512,
    split_digits: bool = False,
) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE on `corpus` (default: `finance_corpus()`), save it as a HF tokenizer with
    the ChatML template to `out_dir`, and return it. `split_digits`: every digit its own token, as in
    Qwen2.5's tokenizer (a small model learns numbers far more easily than from arbitrary merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(finance_corpus() if corpus is None else corpus), trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=max_len,
        padding_side="left",  # for batched generation
    )
    hf.add_tokens(FORMAT_TOKENS)  # normal (non-special) added tokens
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(out_dir)
    return hf


def build_model(
    out_dir: str | Path,
    tokenizer: str | Path | PreTrainedTokenizerBase,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    tie: bool = True,
    seed: int = 0,
    intermediate: int | None = None,
    dtype: str = "float32",
    max_len: int = 512,
) -> Path:
    """Save a randomly initialised `Qwen2ForCausalLM` (and the tokenizer) to `out_dir`.

    `tokenizer` is a tokenizer or a directory holding one; the vocabulary is `len(tokenizer)`.
    `intermediate` defaults to 2 * hidden; pass an odd value to get uneven FSDP shards in tests.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_len,
        tie_word_embeddings=tie,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        dtype=dtype,
    )
    with _seeded(seed):
        model = Qwen2ForCausalLM(cfg).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, do_sample=False
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    add_legacy_keys(out)
    return out


def build_tiny(out_dir: str | Path, **kw: Any) -> Path:
    """Tokenizer and model in one directory. Keyword arguments go to `build_tokenizer` (`corpus`,
    `vocab_size`, `split_digits`, `max_len`) or `build_model` (the rest, `max_len` too)."""
    tok_kw: dict[str, Any] = {k: kw.pop(k) for k in ("corpus", "vocab_size", "split_digits") if k in kw}
    if "max_len" in kw:
        tok_kw["max_len"] = kw["max_len"]
    out = Path(out_dir)
    tok = build_tokenizer(out, **tok_kw)
    return build_model(out, tok, **kw)


class _seeded:
    """Seed torch's CPU generator for a block and restore its state afterwards."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self) -> None:
        import torch

        self.state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.random.set_rng_state(self.state)
