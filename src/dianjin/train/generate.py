"""Batched generation with HF `generate` for sample dumps during training, and the strict-format
verdict of one completion (`score_text`), shared by SFT's sample callback and GRPO's rollout dumps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dianjin import answer as fmt
from dianjin.tasks import get_task

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    text: str  # decoded completion (special tokens dropped; <think>/<answer> are normal tokens and stay)
    tokens: int  # completion tokens up to and including the end-of-sequence token
    truncated: bool  # stopped at max_new_tokens without an end-of-sequence token


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Messages],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    k: int = 1,
    batch_size: int = 8,
) -> list[list[Generation]]:
    """`k` completions per chat prompt with HF `generate`, batched with left padding.
    temperature 0 is greedy (then k should be 1)."""
    import torch

    eos = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    eos.discard(None)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    out: list[list[Generation]] = []
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                for p in prompts[i : i + batch_size]
            ]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.no_grad():
                # transformers 5 types PreTrainedModel without GenerationMixin (the *ForCausalLM classes add it)
                seqs = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=k,  # type: ignore[operator]
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
            new = seqs[:, enc["input_ids"].shape[1] :].tolist()  # [b*k, T_new]
            for j in range(0, len(new), k):
                out.append([_one(ids, eos, tokenizer) for ids in new[j : j + k]])
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def _one(ids: list[int], eos: set[int], tokenizer: PreTrainedTokenizerBase) -> Generation:
    end = next((n for n, t in enumerate(ids) if t in eos), None)
    body = ids if end is None else ids[:end]
    text = cast(str, tokenizer.decode(body, skip_special_tokens=True))  # one sequence: a str (typed str | list[str])
    return Generation(text, len(ids) if end is None else end + 1, end is None)


def score_text(text: str, item: dict[str, Any]) -> dict[str, Any]:
    """Strict-format verdict of one completion; correctness too when the item has a gold answer."""
    task = None
    try:
        task = get_task(item["task"]) if item.get("task") else None
    except KeyError:
        pass
    if task is not None and item.get("example") is not None:
        v = task.score(text, item["example"], mode="reward")
        return {"format_ok": v.format_ok, "correct": v.correct, "pred": v.pred}
    ok = fmt.parse_strict(text, require_boxed=task.boxed if task else True).ok
    return {"format_ok": ok, "correct": None, "pred": None}
