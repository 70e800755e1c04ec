"""Expected accuracy of a uniform guess on a demo's held-out questions: the floor to read
`make demo-real`'s accuracy against.

    .venv/bin/python bench/guess_rate.py runs/demo-smollm2/sets/eval

A guess picks uniformly among the answers a question's form allows: one of the options of a
single-choice or true/false question, one of the 2^n - 1 non-empty option sets of a CFLUE
multiple-choice question (its answer must be the exact set), yes or no for a FinQA yes/no question.
An open numeric question has no finite answer set: a guess scores 0. Prints one line per task and
the total, as expected right answers and as a rate.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _n_options(choices: dict[str, str] | str) -> int:
    """CFLUE keeps its options as a dict literal string, FinCalc as a dict."""
    return len(choices if isinstance(choices, dict) else ast.literal_eval(choices))


def _cflue(rec: dict[str, Any]) -> float:
    n = _n_options(rec["choices"])
    return 1 / (2**n - 1) if rec["task"] == "多项选择题" else 1 / n


def _fincalc(rec: dict[str, Any]) -> float:
    return 1 / _n_options(rec["choices"]) if rec["form"] == "mcq" else 0.0


def _finqa(rec: dict[str, Any]) -> float:
    return 0.5 if str(rec["qa"]["answer"]).strip().lower() in ("yes", "no") else 0.0


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".jsonl":
        yield from (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    else:
        yield from json.loads(path.read_text(encoding="utf-8"))


# task folder under sets/eval -> probability that a uniform guess is right on one record
GUESS: dict[str, Callable[[dict[str, Any]], float]] = {"cflue": _cflue, "fincalc": _fincalc, "finqa": _finqa}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path, help="a demo run's sets/eval folder")
    args = ap.parse_args(argv)
    total, n_total = 0.0, 0
    for task, guess in GUESS.items():
        files = sorted(p for p in (args.eval_dir / task).glob("*.json*"))
        probs = [guess(rec) for f in files for rec in _records(f)]
        if not probs:
            continue
        total, n_total = total + sum(probs), n_total + len(probs)
        print(f"{task}: {sum(probs):.2f} of {len(probs)} expected right ({sum(probs) / len(probs):.1%})")
    if not n_total:
        raise SystemExit(f"{args.eval_dir}: no cflue, fincalc or finqa records")
    print(f"total: {total:.2f} of {n_total} ({total / n_total:.1%})")


if __name__ == "__main__":
    main()
