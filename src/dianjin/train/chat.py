"""Assistant-only labels for any chat template, with or without `{% generation %}` markers.

TRL's `assistant_only_loss` needs a template that marks assistant turns with `{% generation %}`;
Qwen2.5's training template has them, SmolLM2, Llama 3, Mistral, Gemma and most others do not. So
we tokenize SFT rows ourselves and hand TRL `input_ids` + `labels` (it uses them as they are):

    ids, labels = assistant_labels(tokenizer, messages)     # labels: -100 except the assistant's tokens

For each assistant turn `i`, the template renders the conversation up to it twice: the prompt
`messages[:i]` with the generation prompt, and `messages[:i+1]`. The characters between the two are
the turn as the model must produce it: its reply, then the template's end-of-turn markup. The
labelled tokens are the reply and the first special token after it (`<|im_end|>`, `<|eot_id|>`,
`</s>`, `<end_of_turn>`: what stops generation); whatever the template writes after that token (a
newline in ChatML) is not something the model generates, and stays at -100. A template that does
not render the prompt as a prefix of the longer conversation (some strip earlier reasoning) is an
error naming the turn, never a silent mislabel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100  # the label of a token without loss (torch CrossEntropyLoss's ignore_index)
Messages = list[dict[str, str]]


class TemplateError(ValueError):
    """The chat template cannot be used for assistant-only labels; the message says why."""


def render(tokenizer: PreTrainedTokenizerBase, messages: Messages, generation_prompt: bool) -> str:
    # tokenize=False renders to a string (transformers types the result as a union of every return form)
    return cast(str, tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False))


def assistant_spans(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span `[start, end)` of each assistant turn
    (its reply and the template's markup up to the next turn)."""
    text = render(tokenizer, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], True) if i else ""
        upto = render(tokenizer, messages[: i + 1], False)
        for part, what in ((prompt, "the prompt (with the generation prompt)"), (upto, "the conversation up to it")):
            if not text.startswith(part):
                raise TemplateError(
                    f"assistant turn {i}: the chat template does not render {what} as a prefix of "
                    "the whole conversation, so the turn's tokens cannot be told apart"
                )
        if len(upto) <= len(prompt):
            raise TemplateError(f"assistant turn {i}: the chat template renders nothing for it")
        spans.append((len(prompt), len(upto)))
    return text, spans


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    for tid, tok in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(tok, "special", False):
            ids.add(int(tid))
    return ids


def assistant_labels(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of a conversation: labels are the ids on every assistant reply and its
    end-of-turn token, -100 elsewhere."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    special = _special_ids(tokenizer)
    labels = [IGNORE] * len(ids)
    for start, end in spans:
        for n, (a, b) in enumerate(offsets):
            if a < start or a >= end or b <= a:  # outside the turn (or an empty offset)
                continue
            labels[n] = ids[n]
            if ids[n] in special:  # the end-of-turn token: labelled, and nothing after it
                break
    if all(v == IGNORE for v in labels) and spans:
        raise TemplateError("no token falls inside an assistant turn (the tokenizer gives no character offsets?)")
    return ids, labels


def tokenize_rows(
    tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, Any]], assistant_only: bool = True
) -> list[dict[str, Any]]:
    """SFT rows `{id, messages}` as TRL pre-tokenized rows `{id, input_ids, labels}`; with
    `assistant_only=False` every token is labelled (loss on the whole conversation)."""
    out = []
    for r in rows:
        try:
            ids, labels = assistant_labels(tokenizer, r["messages"])
        except TemplateError as e:
            raise TemplateError(f"row {r['id']}: {e}") from None
        out.append({"id": r["id"], "input_ids": ids, "labels": labels if assistant_only else list(ids)})
    return out
