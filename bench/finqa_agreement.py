"""FinQA's human answers (`qa.answer`) against its gold (`qa.exe_ans`), through our one scoring path.

    .venv/bin/python bench/finqa_agreement.py [PATH ...]

PATH is a FinQA file in the official schema or a folder of them (default: ../shared/data/finqa
beside the repository; files that are not FinQA record arrays, such as example_predictions.json,
are skipped and named). For every record, `qa.answer` is scored with `FinQATask.score` (eval mode,
the path used by data verification, the RL reward and evaluation) against the record's own
exe_ans, under the current rule and under the old one (1e-3 relative tolerance or the answer
rounded to the gold's decimals; no precision rule and no table-unit conversion), re-implemented
here so both are measured on the same run.

False positives: each answer is also scored against other records' golds. "shift" is the fixed
derangement record i -> record i+1 (wrapping) in the same file; "all pairs" is every other record
of the file. A pair counts only when both golds are numbers that differ (the other gold does not
match this record's gold under the old rule either way), since a "yes" that matches another
"yes" is not a false positive. Prints Markdown: the table, then every disagreement with a reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.finqa import REL_TOL, table_scale
from dianjin.tasks.numeric import find_number, numbers_match, rounds_to, significant_digits

TASK = get_task("finqa")
DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "finqa"
SHOW = 60  # characters of an answer shown in the disagreement list


def new_rule(answer: str, example: dict) -> bool:
    """The current rule: the task's single scoring path, as the reward and evaluation use it."""
    return TASK.score(answer, example, mode="eval").correct is True


def old_rule(answer: str, example: dict) -> bool:
    """The old rule: floats only, the answer with and without its unit word."""
    pred = TASK.extract(answer, example) if answer else None
    gold = example["gold"]
    if pred is None:
        return False
    if isinstance(gold, str) or pred in ("yes", "no"):
        return pred == gold
    found = find_number(pred)
    return found is not None and any(
        numbers_match(v, gold, rel_tol=REL_TOL, percent_ambiguity=True) for v in {found.value, found.mantissa}
    )


def _written(answer: str, example: dict) -> list[Decimal]:
    """The answer's written number in each reading the scorer tries (as written, table unit, absolute)."""
    pred = TASK.extract(answer, example)
    found = find_number(pred) if pred not in (None, "yes", "no") else None
    if found is None or found.written is None:
        return []
    out = [found.written]
    scale = round(math.log10(found.scale))
    unit = table_scale(example)
    if scale:
        out.append(found.written.scaleb(scale))
        if unit is not None:
            out.append(found.written.scaleb(scale - round(math.log10(unit))))
    return out


def _golds(gold: float) -> list[Decimal]:
    g = Decimal(repr(gold))
    return [g, g.scaleb(2), g.scaleb(-2)]


def _truncated(w: Decimal, g: Decimal) -> bool:
    exp = w.as_tuple().exponent
    assert isinstance(exp, int)
    return g.quantize(Decimal(1).scaleb(exp), rounding="ROUND_DOWN") == w and g != w


def reason(answer: str, example: dict) -> str:
    """Why a human answer disagrees with exe_ans: the first category that explains it."""
    gold = example["gold"]
    pred = TASK.extract(answer, example) if answer.strip() else None
    if pred is None:
        return "no answer" if not answer.strip() else "no number in the answer"
    if isinstance(gold, str) or pred in ("yes", "no"):
        return "yes/no vs number"

    def as_gold(g: float) -> bool:
        return TASK.check(pred, {**example, "gold": g})[0] is True

    written = _written(answer, example)
    if any(rounds_to(w, gold, min_digits=1) for w in written):
        return "one significant digit"
    if as_gold(-gold):
        return "sign"
    if any(_truncated(w, g) for w in written for g in _golds(gold)):
        return "truncated, not rounded"
    if as_gold(gold - 1) or as_gold(gold + 1):
        return "ratio vs change (off by 1 = 100%)"
    if any(as_gold(gold * 10.0**k) for k in range(-9, 10) if k not in (-2, 0, 2)):
        return "scale (a power of ten)"
    for w in written:
        exp = w.as_tuple().exponent
        assert isinstance(exp, int)
        if significant_digits(w) >= 2 and any(abs(g - w) <= Decimal("1.5").scaleb(exp) for g in _golds(gold)):
            return "last digit off by one (rounded from rounded figures)"
    return "other value"


def _differs(a, b) -> bool:
    """Both golds are numbers and neither matches the other (so a match would be a false positive)."""
    if isinstance(a, str) or isinstance(b, str):
        return False
    return not (numbers_match(a, b, rel_tol=REL_TOL) or numbers_match(b, a, rel_tol=REL_TOL))


def load(path: Path) -> tuple[list[tuple[str, list[dict]]], list[str]]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    out, skipped = [], []
    for f in files:
        try:
            out.append((f.name, TASK.load(str(f))))
        except DataError as e:
            skipped.append(f"{f.name} (field {e.field}: {e.problem})" if e.field else f"{f.name} ({e.problem})")
    return out, skipped


def measure(name: str, examples: list[dict]) -> dict:
    n = len(examples)
    answers = [str(e.get("answer") or "") for e in examples]
    row: dict[str, Any] = {"file": name, "records": n, "agree": 0, "agree_old": 0, "disagreements": [], "fp_list": []}
    for e, a in zip(examples, answers):
        ok, ok_old = new_rule(a, e), old_rule(a, e)
        row["agree"] += ok
        row["agree_old"] += ok_old
        if not ok:
            row["disagreements"].append((e["id"], a, e["gold"], reason(a, e)))
    for key in ("shift", "all"):
        pairs = fp = fp_old = 0
        for i, a in enumerate(answers):
            others = [(i + 1) % n] if key == "shift" else [j for j in range(n) if j != i]
            for j in others:
                if not _differs(examples[i]["gold"], examples[j]["gold"]):
                    continue
                pairs += 1
                hit, hit_old = new_rule(a, examples[j]), old_rule(a, examples[j])
                fp, fp_old = fp + hit, fp_old + hit_old
                if key == "all" and (hit or hit_old):
                    row["fp_list"].append(
                        (examples[i]["id"], a, examples[i]["gold"], examples[j]["gold"], hit, hit_old)
                    )
        row[key] = (pairs, fp, fp_old)
    return row


def _pct(k: int, n: int) -> str:
    return f"{k} ({100 * k / max(n, 1):.0f}%)"


def _cell(text: str) -> str:
    if not text.strip():
        return "(empty)"
    return "`" + json.dumps(text[:SHOW], ensure_ascii=False)[1:-1].replace("|", "\\|") + "`"


def report(rows: list[dict], skipped: list[str]) -> str:
    head = (
        "file",
        "records",
        "agree",
        "disagree",
        "agree, old rule",
        "false positives, shift (old rule)",
        "false positives, all pairs (old rule)",
    )
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---:|---:|---:|"]
    total: dict[str, Any] = {
        "file": "**all**",
        "records": 0,
        "agree": 0,
        "agree_old": 0,
        "shift": (0, 0, 0),
        "all": (0, 0, 0),
    }
    for r in rows:
        for k in ("records", "agree", "agree_old"):
            total[k] += r[k]
        for k in ("shift", "all"):
            total[k] = tuple(x + y for x, y in zip(total[k], r[k]))
    for r in [*rows, total] if len(rows) > 1 else rows:
        (sp, sf, so), (ap, af, ao) = r["shift"], r["all"]
        lines.append(
            f"| {r['file']} | {r['records']} | {_pct(r['agree'], r['records'])} | {r['records'] - r['agree']} "
            f"| {_pct(r['agree_old'], r['records'])} | {sf} of {sp} ({so}) | {af} of {ap} ({ao}) |"
        )
    if skipped:
        lines += ["", "Skipped (not FinQA record arrays): " + ", ".join(skipped)]
    for r in rows:
        lines += [
            "",
            f"Disagreements in {r['file']} ({len(r['disagreements'])}):",
            "",
            "| id | qa.answer | exe_ans | reason |",
            "|---|---|---|---|",
        ]
        for rid, a, gold, why in sorted(r["disagreements"], key=lambda d: (d[3], d[0])):
            lines.append(f"| {rid} | {_cell(a)} | {gold} | {why} |")
    for r in rows:
        lines += [
            "",
            f"Matches against another record's gold in {r['file']} (all pairs; {len(r['fp_list'])}):",
            "",
            "| id | qa.answer | own exe_ans | other exe_ans | new rule | old rule |",
            "|---|---|---|---|---|---|",
        ]
        for rid, a, own, other, hit, hit_old in r["fp_list"]:
            lines.append(
                f"| {rid} | {_cell(a)} | {own} | {other} | {'match' if hit else '-'} | {'match' if hit_old else '-'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, default=[DEFAULT], help="FinQA files or folders")
    args = ap.parse_args(argv)
    rows, skipped = [], []
    for p in args.paths:
        if not p.exists():
            print(f"not found: {p}", file=sys.stderr)
            return 2
        found, skip = load(p)
        rows += [measure(name, ex) for name, ex in found]
        skipped += skip
    print(report(rows, skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
