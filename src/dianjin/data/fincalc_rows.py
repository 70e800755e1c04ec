"""FinCalc training rows with short targets, for quick training runs (tests, benchmarks): a model
trained from scratch learns the DianJin format from them in about a hundred steps (it cannot learn
the arithmetic). The demo and real runs train on the data pipeline's output instead.

    write_rows("sft.jsonl", "sft", n=200, seed=0, forms=("mcq",), langs=("en",), prompt="question")
    write_rows("rl.jsonl", "rl", n=64, seed=1)       # rl.jsonl rows: {id, task, prompt, gold, attempts, extra}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from dianjin import answer as fmt
from dianjin.files import write_jsonl
from dianjin.tasks import get_task

Messages = list[dict[str, str]]
Prompt = Literal["task", "question"]
RL_TOP = ("id", "task", "prompt", "gold", "attempts", "extra")  # rl.jsonl keys that are not task fields
REASONING = {"en": "Recall the formula, substitute the numbers and compute.", "zh": "先写出公式，再代入数据计算。"}


def examples(
    n: int,
    seed: int,
    *,
    forms: Sequence[str] = ("open", "mcq"),
    langs: Sequence[str] = ("en", "zh"),
    kinds: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """`n` FinCalc examples (the generator's seed `seed`)."""
    from dianjin.data.synthetic import fincalc

    return fincalc.generate(n, seed, langs=tuple(langs), forms=tuple(forms), kinds=tuple(kinds) if kinds else None)


def prompt_messages(ex: dict[str, Any], prompt: Prompt = "task") -> Messages:
    """The task's chat prompt, or (prompt="question") the bare question: ~110 instead of ~300 tokens."""
    if prompt == "question":
        options = "\n".join(f"{k}. {v}" for k, v in (ex.get("choices") or {}).items())
        return [{"role": "user", "content": f"{ex['question']}\n{options}".strip()}]
    return get_task(ex["task"]).messages(ex)


def sft_row(ex: dict[str, Any], prompt: Prompt = "task") -> dict[str, Any]:
    """A short target in the DianJin format: a fixed sentence of reasoning, then the boxed answer."""
    target = fmt.render(REASONING.get(ex.get("lang", "en"), REASONING["en"]), "", ex["gold"])
    return {
        "id": ex["id"],
        "task": ex["task"],
        "messages": prompt_messages(ex, prompt) + [{"role": "assistant", "content": target}],
    }


def rl_row(ex: dict[str, Any], prompt: Prompt = "task") -> dict[str, Any]:
    return {
        "id": ex["id"],
        "task": ex["task"],
        "prompt": prompt_messages(ex, prompt),
        "gold": ex["gold"],
        "attempts": 0,
        "extra": {k: v for k, v in ex.items() if k not in RL_TOP},
    }


ROWS: dict[str, Callable[[dict[str, Any], Prompt], dict[str, Any]]] = {"sft": sft_row, "rl": rl_row}


def write_rows(
    path: str | Path, kind: Literal["sft", "rl"], n: int, seed: int, *, prompt: Prompt = "task", **draw: Any
) -> Path:
    """Write `n` rows of `kind` ("sft" or "rl") to `path`; `draw`: forms, langs, kinds (see `examples`)."""
    write_jsonl(path, [ROWS[kind](ex, prompt) for ex in examples(n, seed, **draw)])
    return Path(path)
