"""Score saved responses offline.

    dianjin score responses.jsonl [--mode eval|reward] > scored.jsonl

Each input line: `task`, `gold`, `response`, and optionally `reasoning_content` and task fields
(`choices`, `question`, ...); other fields (such as `id`) pass through. Gold values: cflue the
sorted letters; finqa the exe_ans number or "yes"/"no"; math500 the answer string; gpqa the
letter; ccc "violation" or "compliant".

Each output line (stdout, same order) repeats the input and adds `correct` (true/false/null),
`pred`, `format_ok`, `reason` and `score` (reward mode: the gated reward; eval mode: 1/0 for
correct). A bad line (not UTF-8, not JSON, nested too deep, a number too long to convert, a missing
or malformed field, a value the scorer cannot handle) is reported on stderr with its line number
(and field), written out as `{"line": N, "error": ...}` (with the input's fields when it parsed), and
the rest are still scored (exit status 1 then). A per-task summary goes to stderr. A file that cannot
be opened is a one-line error (exit status 2).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, BinaryIO, TextIO, cast

from dianjin.tasks import get_task
from dianjin.tasks.base import Mode

REQUIRED = ("task", "gold", "response")


class LineError(ValueError):
    def __init__(self, path: str, line: int, field: str | None, problem: str):
        where = f"{path}:{line}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")


def _choices(value: Any) -> Any:
    """Choices may be a dict, a JSON object string, or a Python dict literal string (CFLUE)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)  # literals only: never executes code


def score_record(rec: dict[str, Any], mode: Mode, path: str = "<input>", line: int = 0) -> dict[str, Any]:
    """Score one parsed input record; raises LineError naming the field on bad input."""
    for field in REQUIRED:
        if field not in rec or rec[field] is None:
            raise LineError(path, line, field, "missing")
    if not isinstance(rec["response"], str):
        raise LineError(path, line, "response", f"expected a string, got {type(rec['response']).__name__}")
    try:
        task = get_task(str(rec["task"]))
    except KeyError as e:
        raise LineError(path, line, "task", str(e.args[0])) from None
    example = dict(rec)
    if "choices" in example:
        try:
            example["choices"] = _choices(example["choices"])
        except (ValueError, SyntaxError) as e:
            raise LineError(path, line, "choices", f"not a dict: {e}") from None
    verdict = task.score(rec["response"], example, mode=mode, reasoning_content=rec.get("reasoning_content"))
    score = verdict.reward if mode == "reward" else float(verdict.correct is True)
    return {
        **rec,
        "correct": verdict.correct,
        "pred": verdict.pred,
        "format_ok": verdict.format_ok,
        "reason": verdict.reason,
        "score": score,
    }


def _parse(raw: str | bytes, path: str, n: int) -> dict[str, Any]:
    """One input line as a JSON object; LineError saying what is wrong with it."""
    try:
        text = raw.decode("utf-8-sig" if n == 1 else "utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise LineError(path, n, None, f"not UTF-8 (byte {e.start + 1} of the line: {e.reason})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise LineError(path, n, None, f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise LineError(path, n, None, "not readable: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise LineError(path, n, None, f"not readable: {str(e)[:200]}") from None
    if not isinstance(obj, dict):
        raise LineError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _encodable(row: dict[str, Any], n: int) -> dict[str, Any]:
    """`row` if it can be written back as JSON, else its line and error (the echoed input cannot)."""
    try:
        json.dumps(row, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError) as e:
        return {"line": n, "error": row.get("error") or f"cannot write the record back: {type(e).__name__}"}
    return row


def score_lines(lines: Iterable[str | bytes], mode: Mode, path: str, errors: TextIO) -> Iterable[dict[str, Any]]:
    """Score each non-blank line (text, or bytes decoded here); a bad line is reported on `errors` and
    yielded with an `error` field, and the next one is scored."""
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        rec: dict[str, Any] = {"line": n}
        try:
            rec = _parse(raw, path, n)
            yield _encodable(score_record(rec, mode, path, n), n)
        except LineError as e:
            print(str(e), file=errors)
            yield _encodable({**rec, "error": str(e)}, n)
        except (RecursionError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            msg = f"{path}:{n}: not scored: {type(e).__name__}: {str(e)[:200]}"  # a value the scorer cannot take
            print(msg, file=errors)
            yield _encodable({**rec, "error": msg}, n)


def summarize(rows: list[dict[str, Any]]) -> str:
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        s = stats[str(r.get("task") or "?")]
        s["n"] += 1
        if "error" in r:
            s["errors"] += 1
            continue
        s["format_ok"] += bool(r["format_ok"])
        s["correct"] += r["correct"] is True
        s["unverified"] += r["correct"] is None
        s["score"] += r["score"]
    lines = [f"{'task':<10} {'n':>6} {'acc':>7} {'format':>7} {'score':>7} {'unverif':>7} {'errors':>6}"]
    for task, s in sorted(stats.items()):
        ok = max(s["n"] - s["errors"], 1)
        lines.append(
            f"{task:<10} {int(s['n']):>6} {s['correct'] / ok:>7.4f} {s['format_ok'] / ok:>7.4f} "
            f"{s['score'] / ok:>7.4f} {int(s['unverified']):>7} {int(s['errors']):>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dianjin score", description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="JSONL of responses ('-' for stdin)")
    ap.add_argument(
        "--mode",
        choices=("eval", "reward"),
        default="eval",
        help="eval: lenient extraction, score = correct; reward: strict format gate, score = gated reward",
    )
    args = ap.parse_args(argv)
    try:
        src: BinaryIO = (
            cast(BinaryIO, getattr(sys.stdin, "buffer", sys.stdin)) if args.file == "-" else open(args.file, "rb")
        )
    except OSError as e:
        print(f"dianjin score: {args.file}: cannot read ({e.strerror or e})", file=sys.stderr)
        return 2
    rows = []
    with src:
        for row in score_lines(src, args.mode, args.file, sys.stderr):
            try:
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape: keep the escape
                sys.stdout.write(json.dumps(row) + "\n")
            rows.append(
                {k: row.get(k) for k in ("task", "format_ok", "correct", "score")}
                | ({"error": 1} if "error" in row else {})
            )
    print(summarize(rows), file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0
