"""Assistant-only SFT labels under real-world chat templates.

Each case builds a tiny random model whose tokenizer carries a real model's chat template and
special tokens (SmolLM2's ChatML without `{% generation %}` markers, Llama 3's headers, Qwen2.5's
ChatML with its default system prompt, Gemma's turns), and checks that exactly each assistant reply
and its end-of-turn token carry labels: in `dianjin.train.chat.assistant_labels`, and in the batch
TRL's SFTTrainer really trains on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dianjin.train.chat import IGNORE, TemplateError, assistant_labels

# SmolLM2-135M-Instruct's template, as the GGUF ships it: ChatML, a default system prompt, no markers.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Meta-Llama-3-8B-Instruct's template: header tokens, trimmed content, <|eot_id|> ends a turn.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Qwen2.5-Instruct's template without its tool-call branches (which these rows never take).
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + "
    "'\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
# Gemma's template: "model" turns, <end_of_turn> then a newline, a BOS first, no system role.
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' "
    "else message['role'] %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
# A template that renders an earlier assistant turn differently once a later turn follows (as
# Qwen3's drops earlier reasoning): the prompt is not a prefix of the conversation.
REWRITES_HISTORY = (
    "{% for message in messages %}{% if message['role'] == 'assistant' and not loop.last %}"
    "{{ '<|im_start|>assistant\n(omitted)<|im_end|>\n' }}{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name -> (template, extra special tokens, bos, end-of-turn token)
TEMPLATES = {
    "smollm2": (SMOLLM2, [], None, "<|im_end|>"),
    "llama3": (
        LLAMA3,
        ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|begin_of_text|>",
        "<|eot_id|>",
    ),
    "qwen2.5": (QWEN25, [], None, "<|im_end|>"),
    "gemma": (GEMMA, ["<bos>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<end_of_turn>"),
}

REPLY = "<think>Rate 5% on 200.</think>\n<answer>\\boxed{10}</answer>"
SYSTEM = {"role": "system", "content": "Answer in the DianJin format."}
Q1 = {"role": "user", "content": "What is 5% of 200?"}
Q2 = {"role": "user", "content": "And 10% of 200?"}
A1 = {"role": "assistant", "content": REPLY}
A2 = {"role": "assistant", "content": "<think>Twice that.</think>\n<answer>\\boxed{20}</answer>"}

CONVERSATIONS = [
    pytest.param([Q1, A1], id="one-turn"),  # the template's default system prompt, if any, is not labelled
    pytest.param([SYSTEM, Q1, A1], id="system"),  # a system message is never labelled
    pytest.param([Q1, A1, Q2, A2], id="two-turns"),  # every assistant turn is labelled, each with its end token
]


def _tokenizer(tmp: Path, name: str):
    from transformers import AutoTokenizer

    from dianjin.model.tiny import build_tokenizer

    template, extra, bos, _ = TEMPLATES[name]
    d = tmp / f"tok-{name}"
    if not d.exists():
        tok = build_tokenizer(d)
        if extra:
            tok.add_special_tokens({"additional_special_tokens": extra})
        if bos:
            tok.bos_token = bos
        tok.chat_template = template
        tok.save_pretrained(d)
    return AutoTokenizer.from_pretrained(d)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("templates")


def _labelled_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    """The maximal runs of labelled tokens."""
    runs: list[list[int]] = []
    prev = False
    for i, lab in zip(ids, labels):
        if lab != IGNORE:
            assert lab == i
            if not prev:
                runs.append([])
            runs[-1].append(i)
        prev = lab != IGNORE
    return runs


@pytest.mark.parametrize("name", list(TEMPLATES))
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_exactly_each_reply_and_its_end_token_are_labelled(tmp: Path, name: str, messages: list[dict]):
    tok = _tokenizer(tmp, name)
    eot = TEMPLATES[name][3]
    assert "{% generation %}" not in tok.chat_template  # no markers: TRL's assistant_only_loss would refuse it
    ids, labels = assistant_labels(tok, messages)
    assert ids == tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    replies = [m["content"].strip() for m in messages if m["role"] == "assistant"]
    runs = _labelled_runs(ids, labels)
    assert [tok.decode(r) for r in runs] == [r + eot for r in replies]
    assert [r[-1] for r in runs] == [tok.convert_tokens_to_ids(eot)] * len(replies)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_the_prompt_tokens_are_those_generation_sees(tmp: Path, name: str):
    # what precedes the first label is the prompt as eval/GRPO render it (add_generation_prompt=True)
    tok = _tokenizer(tmp, name)
    ids, labels = assistant_labels(tok, [Q1, A1])
    first = next(n for n, lab in enumerate(labels) if lab != IGNORE)
    prompt = tok.apply_chat_template([Q1], add_generation_prompt=True, tokenize=False)
    assert ids[:first] == tok(prompt, add_special_tokens=False)["input_ids"]


def test_a_template_that_rewrites_history_is_refused(tmp: Path):
    tok = _tokenizer(tmp, "smollm2")
    tok.chat_template = REWRITES_HISTORY
    assistant_labels(tok, [Q1, A1])  # one turn: fine
    with pytest.raises(TemplateError, match="assistant turn 1: .*prefix"):
        assistant_labels(tok, [Q1, A1, Q2, A2])


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_trl_trains_on_exactly_those_labels(tmp: Path, name: str):
    """The batch SFTTrainer builds from `dianjin sft`'s dataset carries our labels, padding aside."""
    import torch
    from trl import SFTConfig, SFTTrainer

    from dianjin.model.tiny import build_model
    from dianjin.train.common import sft_dataset

    tok = _tokenizer(tmp, name)
    model_dir = tmp / f"model-{name}"
    if not model_dir.exists():
        build_model(model_dir, tok)
    rows = [{"id": "a", "messages": [SYSTEM, Q1, A1]}, {"id": "b", "messages": [Q1, A1, Q2, A2]}]
    args = SFTConfig(
        output_dir=str(tmp / f"out-{name}"),
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        assistant_only_loss=False,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=str(model_dir), args=args, train_dataset=sft_dataset(rows, tok), processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    eot = TEMPLATES[name][3]
    for row, ids, labels in zip(rows, batch["input_ids"].tolist(), batch["labels"].tolist()):
        runs = _labelled_runs(ids, labels)
        want = [m["content"].strip() + eot for m in row["messages"] if m["role"] == "assistant"]
        assert [tok.decode(r) for r in runs] == want
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))
