"""What the synthetic generators share: the bilingual wording pick, number formats, the simple-interest
formula and its classic mistakes, distinct displayed options, count checks, the phrase tables
(package data under tables/) and the JSON writer."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from dianjin.files import atomic_write_text
from dianjin.tasks.numeric import round_half_up

Record = dict[str, Any]


def tr(lang: str, zh: str, en: str) -> str:
    """The Chinese or the English wording, by the record's language."""
    return zh if lang == "zh" else en


def num(x: float) -> str:
    """A number as written in a question or a FinQA program: 1500, 4.25 (no thousands commas)."""
    return str(int(x)) if float(x).is_integer() else f"{x:.10g}"


def f2(x: float) -> str:
    """Two decimals, rounded half-up: "12.30" (a FinCalc gold, every CFLUE calculation option)."""
    return f"{round_half_up(x, 2):.2f}"


def simple_interest(principal: float, rate_pct: float, years: float) -> float:
    return principal * rate_pct / 100 * years


def simple_interest_mistakes(principal: float, rate_pct: float, years: float) -> tuple[float, float, float]:
    """The classic wrong results: compounded yearly, one year only, principal plus interest."""
    p, r, t = principal, rate_pct, years
    return p * ((1 + r / 100) ** t - 1), p * r / 100, p * (1 + r / 100 * t)


def distinct_shown(value: float, candidates: Iterable[float], show: Callable[[float], str], k: int) -> list[str]:
    """`show(value)`, then the candidates as shown, in order, skipping repeats and non-finite values,
    until there are `k` texts (fewer if the candidates run out): the answer and its distractors."""
    out = [show(value)]
    for x in candidates:
        if len(out) >= k:
            break
        if math.isfinite(x):
            text = show(x)
            if text not in out:
                out.append(text)
    return out


def check_n(n: int, what: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{what}: n must be a non-negative int, got {n!r}")


def load_table(name: str) -> Any:
    """The phrase table tables/<name>.json shipped with this package."""
    text = resources.files("dianjin.data.synthetic").joinpath("tables", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def write_json(records: list[Record], path: str | Path) -> Path:
    """A JSON array (CFLUE's knowledge.json, FinQA's {train,dev,test}.json), written atomically."""
    return atomic_write_text(path, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
