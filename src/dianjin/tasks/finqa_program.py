"""A safe executor for FinQA programs ("add(29, 4), divide(#0, 100)"), without eval.

FinQA gold answers (`qa.exe_ans`) are the results of executing `qa.program` over the record's
`table`. This module reproduces the official scorer (`czyssrs/FinQA` `code/evaluate/evaluate.py`,
`eval_program` / `str_to_num` / `process_row`, see docs/upstream.md §9.1):

- operations: add, subtract, multiply, divide, exp (`a ** b`), greater (-> "yes"/"no"), and the
  row aggregates table_max / table_min / table_sum / table_average, whose first argument is a row
  name looked up in the table's first column (a later row with the same name wins, as upstream)
  and whose second argument (always "none") is ignored, as upstream;
- arguments: `#k` (result of step k), `const_<n>` (`const_m1` = -1), numbers with thousands
  commas, and percentages ("5%" -> 0.05);
- table cells: "$" removed, anything from the first "(" on dropped ("12.5 ( 3% )" -> 12.5),
  commas removed, "%" divides by 100; a row with any other cell is not usable;
- the final result is `round(x, 5)` (Python's round, like upstream), or "yes"/"no".

Where we deviate, we are stricter or clearer, never more permissive about arithmetic: a malformed
program, an unknown row, a non-numeric row, division by zero, a non-finite or complex result, or
`#k` pointing at a later step raise `ProgramError` with the step number (upstream returns an
"invalid" flag). One addition: a row name that misses exactly is retried case- and
space-insensitively, for programs written against `table_ori`.

Programs are accepted as the string form (`qa.program`) or as the token list of FinQA prediction
files (`["divide(", "#0", "const_100", ")", "EOF"]`).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BINARY_OPS", "TABLE_OPS", "ProgramError", "Step", "cell_number", "execute", "parse", "steps", "str_to_num"]

Table = Sequence[Sequence[str]]
Value = float | str  # a number, or "yes"/"no" from `greater`


class ProgramError(ValueError):
    """A FinQA program that cannot be executed; the message names the step and the problem."""


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _exp(a: float, b: float) -> float:
    result = a**b  # OverflowError for huge results; complex for a negative base with a fractional power
    if isinstance(result, complex):
        raise ValueError(f"{a} ** {b} is not a real number")
    return float(result)


BINARY_OPS: dict[str, Callable[[float, float], Value]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": _divide,
    "exp": _exp,
    "greater": lambda a, b: "yes" if a > b else "no",
}
TABLE_OPS: dict[str, Callable[[list[float]], float]] = {
    "table_max": max,
    "table_min": min,
    "table_sum": sum,
    "table_average": lambda row: sum(row) / len(row),
}
_ALL_OPS = {**BINARY_OPS, **TABLE_OPS}

# "), " between steps, when followed by something shaped like an operation name and "(".
_STEP_BREAK = re.compile(r"\)\s*,\s*(?=[A-Za-z_]\w*\s*\()")
_STEP = re.compile(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", re.DOTALL)
_REF = re.compile(r"#(\d+)")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Step:
    """One parsed step: the operation and its two raw argument strings."""

    op: str
    args: tuple[str, str]


def str_to_num(text: str) -> float | None:
    """Upstream `str_to_num`: "1,234" -> 1234.0, "5%" -> 0.05, "const_m1" -> -1.0; None otherwise."""
    text = text.replace(",", "").strip()
    if text.startswith("const_"):
        text = "-1" if text == "const_m1" else text[len("const_") :]
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        value = float(text) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def cell_number(cell: str) -> float | None:
    """A table cell as upstream `process_row` reads it: "$ 1,234 ( 5% )" -> 1234.0; None if not a number."""
    return str_to_num(cell.replace("$", "").strip().split("(")[0].strip())


def _tokens_to_string(tokens: Sequence[str]) -> str:
    """FinQA prediction tokens (`op(`, arg, arg, `)` ... `EOF`) back to the string form."""
    toks = [t for t in tokens if t != "EOF"]
    if len(toks) % 4:
        raise ProgramError(f"token program has {len(toks)} tokens, expected groups of 4 (op(, arg, arg, ))")
    parts = []
    for i in range(0, len(toks), 4):
        op, a1, a2, close = toks[i : i + 4]
        if not op.endswith("(") or close != ")":
            raise ProgramError(f"step {i // 4}: malformed tokens {toks[i : i + 4]!r}")
        parts.append(f"{op}{a1}, {a2})")
    return ", ".join(parts)


def parse(program: str | Sequence[str]) -> list[Step]:
    """Split a program into steps; ProgramError when it is not `op(a, b), op(a, b), ...`."""
    if not isinstance(program, str):
        program = _tokens_to_string(program)
    text = program.strip()
    if not text:
        raise ProgramError("empty program")
    pieces = _STEP_BREAK.split(text)
    pieces = [p + ")" for p in pieces[:-1]] + [pieces[-1]]
    parsed = []
    for i, piece in enumerate(pieces):
        m = _STEP.fullmatch(piece)
        if not m:
            raise ProgramError(f"step {i}: cannot parse {piece.strip()!r}; expected op(arg1, arg2)")
        op, inside = m.group(1), m.group(2)
        if op not in _ALL_OPS:
            raise ProgramError(f"step {i}: unknown operation {op!r}; known: {', '.join(_ALL_OPS)}")
        sep = ", " if ", " in inside else ","
        args = [a.strip() for a in inside.rsplit(sep, 1)]
        if len(args) != 2 or not all(args):
            raise ProgramError(f"step {i}: {op} needs two arguments, got {inside.strip()!r}")
        parsed.append(Step(op, (args[0], args[1])))
    return parsed


def _operand(arg: str, i: int, results: list[Value]) -> float:
    ref = _REF.fullmatch(arg)
    if ref:
        k = int(ref.group(1))
        if k >= i:
            raise ProgramError(f"step {i}: {arg} refers to a step that is not computed yet")
        value = results[k]
        if isinstance(value, str):
            raise ProgramError(f"step {i}: {arg} is {value!r}, not a number")
        return value
    num = str_to_num(arg)
    if num is None:
        raise ProgramError(f"step {i}: argument {arg!r} is not a number, #k reference or const_<n>")
    return num


def _row(name: str, i: int, table: Table) -> list[float]:
    rows = {row[0]: list(row[1:]) for row in table if row}
    cells = rows.get(name)
    if cells is None:
        loose = {_SPACES.sub(" ", k.strip().lower()): v for k, v in rows.items()}
        cells = loose.get(_SPACES.sub(" ", name.strip().lower()))
    if cells is None:
        raise ProgramError(f"step {i}: no table row named {name!r}")
    if not cells:
        raise ProgramError(f"step {i}: row {name!r} has no values")
    numbers: list[float] = []
    for cell in cells:
        value = cell_number(cell)
        if value is None:
            raise ProgramError(f"step {i}: row {name!r} has a non-numeric cell {cell!r}")
        numbers.append(value)
    return numbers


def steps(program: str | Sequence[str], table: Table) -> list[dict[str, Any]]:
    """Execute step by step: one dict per step with `index`, `op`, `args` (raw strings),
    `values` (the numbers used: two operands, or the row's numbers for table ops) and `result`
    (unrounded; "yes"/"no" for greater)."""
    out: list[dict[str, Any]] = []
    results: list[Value] = []
    for i, step in enumerate(parse(program)):
        if step.op in TABLE_OPS:
            if _REF.fullmatch(step.args[0]):
                raise ProgramError(f"step {i}: {step.op} needs a row name, got {step.args[0]}")
            values = _row(step.args[0], i, table)
        else:
            values = [_operand(a, i, results) for a in step.args]
        try:
            result = TABLE_OPS[step.op](values) if step.op in TABLE_OPS else BINARY_OPS[step.op](*values)
        except (ArithmeticError, ValueError) as e:
            raise ProgramError(f"step {i}: {step.op}({', '.join(step.args)}) failed: {e}") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise ProgramError(f"step {i}: {step.op}({', '.join(step.args)}) is not finite")
        results.append(result)
        out.append({"index": i, "op": step.op, "args": list(step.args), "values": list(values), "result": result})
    return out


def execute(program: str | Sequence[str], table: Table) -> float | str:
    """The program's result as the official scorer computes it: round(x, 5), or "yes"/"no"."""
    result = steps(program, table)[-1]["result"]
    return result if isinstance(result, str) else round(float(result), 5)
