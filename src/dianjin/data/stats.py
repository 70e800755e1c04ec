"""Stats: the DianJin-R1-Data table (Size, Q_token, R_token, A_token per subset) for our data.

    table = stats.run(output_dir, sft_rows, rl_rows, tokenizer="path/to/hf-tokenizer")  # or None

writes `stats.md` and `stats.json` in `output_dir` and returns the JSON dict. Layout as the seed
README's table (docs/upstream.md §3.1): Dataset, Language, Size and the mean token counts, in two
sections, "Used in SFT" (one row per task of the SFT rows) and "Used in RL" (one per task of the
RL pool, R_token "-"). Subsets are named as upstream (CFLUE_MCQ, CFLUE_OE, FinQA, CCC) or after
the task (FinCalc, ...), in that order.

What is counted (upstream never said; this is our reading):
- Q_token: the user content (the task prompt the model reads, without system prompt or chat
  template tokens); upstream's alpaca `instruction`;
- R_token: the reasoning inside `<think>` (the row's `reasoning`, else parsed from the assistant
  message);
- A_token: the answer inside `<answer>` (SFT), or the gold answer (RL: upstream's 2.15 tokens is
  the option letters);
- Language: Chinese for a row whose question has more CJK characters than other words, else
  English; a subset lists every language with at least 10% of its rows.

Counting: with `tokenizer` (a HuggingFace tokenizer directory or hub id, loaded with
`transformers.AutoTokenizer`, imported only then), the number of token ids without special tokens.
With None, the documented fallback: one per CJK character plus one per run of other
non-whitespace characters ("营业收入 rose 12.5%。" is 4 + 2 = 6), roughly a word count for
English and a character count for Chinese; `tokenizer` in the output says which was used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dianjin import answer as fmt
from dianjin.data.decontam import CJK
from dianjin.data.export import SUBSET_NAMES, ground_truth, subset_name
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, atomic_write_text

Row = dict[str, Any]
Counter_ = Callable[[list[str]], list[int]]

FALLBACK = "fallback: CJK characters + other whitespace-separated runs"
_FALLBACK_TOKEN = re.compile(f"[{CJK}]|[^\\s{CJK}]+")
_CJK_CHAR = re.compile(f"[{CJK}]")
_WORD = re.compile(f"[^\\W_{CJK}]+")
LANG_NAMES = {"zh": "Chinese", "en": "English"}
MIN_LANG_SHARE = 0.1
BATCH = 512


def fallback_count(text: str) -> int:
    """CJK characters plus runs of other non-whitespace characters (see the module docstring)."""
    return len(_FALLBACK_TOKEN.findall(text))


def language(text: str) -> str:
    """ "zh" when the text has more CJK characters than other words, else "en"."""
    return "zh" if len(_CJK_CHAR.findall(text)) > len(_WORD.findall(text)) else "en"


def token_counter(tokenizer: str | None) -> tuple[str, Counter_]:
    """(description, counter over a batch of texts) for a tokenizer path, or the fallback for None."""
    if tokenizer is None:
        return FALLBACK, lambda texts: [fallback_count(t) for t in texts]
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise RuntimeError(
            "stats with a tokenizer needs transformers: pip install 'dianjin[train]', "
            "or leave the tokenizer unset for the fallback count"
        ) from None
    tok = AutoTokenizer.from_pretrained(str(tokenizer))

    def count(texts: list[str]) -> list[int]:
        out: list[int] = []
        for i in range(0, len(texts), BATCH):
            out += [len(ids) for ids in tok(texts[i : i + BATCH], add_special_tokens=False)["input_ids"]]
        return out

    return str(tokenizer), count


def _user_text(msgs: Any, pool: str, i: int, field: str, row: Row) -> str:
    if isinstance(msgs, list):
        users = [m.get("content") for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        texts = [u for u in users if isinstance(u, str)]
        if users and len(texts) == len(users):
            return "\n".join(texts)
    raise DataError(pool, i, field, f"row {row.get('id')!r} has no user message")


def _sft_parts(row: Row, i: int) -> tuple[str, str, str]:
    """(question, reasoning, answer) of an SFT row."""
    question = _user_text(row.get("messages"), "sft", i, "messages", row)
    reasoning, answer = row.get("reasoning"), row.get("answer")
    if not (isinstance(reasoning, str) and isinstance(answer, str)):
        target = [m.get("content") for m in row["messages"] if isinstance(m, dict) and m.get("role") == "assistant"]
        parsed = fmt.parse_strict(target[-1] if target and isinstance(target[-1], str) else "", require_boxed=False)
        if not parsed.ok:
            raise DataError(
                "sft",
                i,
                "messages",
                f"row {row.get('id')!r}: no reasoning/answer fields and the "
                f"assistant message does not parse: {parsed.reason}",
            )
        reasoning, answer = parsed.reasoning, parsed.answer
    return question, reasoning or "", answer or ""


def _subset_order(task: str) -> tuple[int, str]:
    known = list(SUBSET_NAMES)
    return (known.index(task), "") if task in known else (len(known), task)


def _languages(questions: list[str]) -> str:
    langs = [language(q) for q in questions]
    shares = {lang: langs.count(lang) / len(langs) for lang in set(langs)}
    keep = sorted((lang for lang, s in shares.items() if s >= MIN_LANG_SHARE), key=lambda lang: -shares[lang])
    return "/".join(LANG_NAMES.get(lang, lang) for lang in keep)


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def subset_stats(used_in: str, task: str, parts: list[tuple[str, str | None, str]], count: Counter_) -> dict[str, Any]:
    """One table row from (question, reasoning or None, answer) triples."""
    qs = [q for q, _, _ in parts]
    has_r = all(r is not None for _, r, _ in parts)
    return {
        "used_in": used_in,
        "subset": subset_name(task),
        "task": task,
        "language": _languages(qs),
        "size": len(parts),
        "q_token": _mean(count(qs)),
        "r_token": _mean(count([r or "" for _, r, _ in parts])) if has_r else None,
        "a_token": _mean(count([a for _, _, a in parts])),
    }


def compute(sft_rows: list[Row], rl_rows: list[Row], tokenizer: str | None = None) -> dict[str, Any]:
    """The stats dict (see `run`) without writing anything."""
    name, count = token_counter(tokenizer)
    groups: dict[tuple[str, str], list[tuple[str, str | None, str]]] = {}
    for i, row in enumerate(sft_rows):
        groups.setdefault(("SFT", str(row.get("task"))), []).append(_sft_parts(row, i))
    for i, row in enumerate(rl_rows):
        if row.get("gold") is None:
            raise DataError("rl", i, "gold", f"row {row.get('id')!r} has no gold answer")
        q = _user_text(row.get("prompt"), "rl", i, "prompt", row)
        groups.setdefault(("RL", str(row.get("task"))), []).append((q, None, ground_truth(row["gold"])))
    keys = sorted(groups, key=lambda k: (k[0] != "SFT", _subset_order(k[1])))
    return {
        "tokenizer": name,
        "counted": {
            "q_token": "user content",
            "r_token": "reasoning in <think>",
            "a_token": "answer in <answer> (SFT) / gold answer (RL)",
        },
        "subsets": [subset_stats(used_in, task, groups[(used_in, task)], count) for used_in, task in keys],
        "totals": {"sft": len(sft_rows), "rl": len(rl_rows)},
    }


def markdown(stats: dict[str, Any]) -> str:
    """The table in the seed README's layout, with a line saying how tokens were counted."""
    lines = ["| Dataset | Language | Size | Q_token | R_token | A_token |", "|---|---|---:|---:|---:|---:|"]
    for section in ("SFT", "RL"):
        rows = [s for s in stats["subsets"] if s["used_in"] == section]
        if not rows:
            continue
        lines.append(f"| *Used in {section}* | | | | | |")
        for s in rows:
            r = "-" if s["r_token"] is None else f"{s['r_token']:.2f}"
            lines.append(
                f"| {s['subset']} | {s['language']} | {s['size']} | {s['q_token']:.2f} | {r} | {s['a_token']:.2f} |"
            )
    return "\n".join([f"Mean tokens per row; tokenizer: {stats['tokenizer']}.", "", *lines, ""])


def run(
    output_dir: str | Path, sft_rows: list[Row], rl_rows: list[Row], tokenizer: str | None = None
) -> dict[str, Any]:
    """Compute the stats, write `stats.md` and `stats.json` in `output_dir` and return the dict."""
    stats = compute(sft_rows, rl_rows, tokenizer)
    out = Path(output_dir)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "stats.md", markdown(stats))
    return stats


__all__ = ["FALLBACK", "compute", "fallback_count", "language", "markdown", "run", "subset_stats", "token_counter"]
