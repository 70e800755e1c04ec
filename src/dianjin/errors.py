"""Errors shared across layers (tasks, data, training, evaluation, the LLM client), so that no layer
imports another just for an exception: `DataError` names the file, line (or JSON-array record) and
field of bad input.
"""

from __future__ import annotations

from typing import Any


class Record(int):
    """Where a record of a JSON array is: the line it starts on (an int, so it compares as a line) and
    its 0-based `index` in the array; `str()` and DataError write `record 12 (line 40)`."""

    index: int

    def __new__(cls, line: int, index: int) -> Record:
        obj = super().__new__(cls, line)
        obj.index = index
        return obj

    def __getnewargs__(self) -> tuple[int, int]:  # type: ignore[override]  # pickling: int has one argument, Record two
        return int(self), self.index

    def __str__(self) -> str:
        return f"record {self.index} (line {int(self)})"


class DataError(ValueError):
    """Bad input data; the message names the file, the line (or record) and the field."""

    def __init__(self, path: Any, line: int | None, field: str | None, problem: str):
        at = "" if line is None else f": {line}" if isinstance(line, Record) else f":{line}"
        where = f"{path}{at}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = path, line, field, problem
