"""Sources: every input the pipeline accepts, turned into task examples with stable ids.

A source is `{task, path, ...}` in the build config (`SourceSpec`); `task` picks the loader:

- a registered task name (`cflue`, `finqa`, `ccc`, `cflue_oe`, `math500`, ...): the task's own
  `load(path)`, so ids and fields are the task module's (CFLUE: `cflue-<hash>`, FinQA: the record id);
- `fincalc`: generated (`dianjin.tasks.fincalc.generate(n, seed, **options)`), or loaded from `path`;
- `jsonl`: any JSONL (or JSON array) of `{id?, question, answer, choices?, ...}`. The record's `id`
  is kept (a number becomes a string); without one the id is `jsonl-<sha256(question, choices)[:12]>`.
  The task that prompts and scores it is `score_as`, by default `cflue` (letters) when the record has
  `choices` and `cflue_oe` (judge against the answer text) when not. Other fields (`analysis`,
  `context`, ...) are kept. A record's own `task` field is ignored: it is often a question type;
- `released` (alias `alpaca`): the released DianJin-R1-Data files (`{instruction, input?, output,
  system?, id?}`, docs/upstream.md §3.4). These are finished SFT rows, so they bypass filter/distill and
  go straight to `sft.jsonl`. Each row is checked: `instruction` and `output` non-empty strings,
  `input`/`system` strings if present, no multi-turn `history`, and `output` in the strict
  `<think>/<answer>` format (a `\\boxed{}` in the answer for boxed subsets). The subset (`score_as`)
  comes from the file name (`cflue_mcq.json`, `fin_qa.json`, upstream's `CFLUE_MCQ_SFT.json`, ...)
  unless given. A malformed row raises `DataError` naming file, line and field; with `strict: false`
  it is skipped and reported instead.

JSON arrays report the record's index and the line where it starts (`file: record 12 (line 40)`, read
with an incremental decoder), JSONL the line itself (`file:40`). Ids must be unique across all sources.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dianjin import answer as fmt
from dianjin.errors import DataError, Record
from dianjin.tasks import TASKS, get_task
from dianjin.tasks.base import Example, jsonl_records, read_text
from dianjin.tasks.cflue import gold_letters, parse_choices

log = logging.getLogger("dianjin.data")


@dataclass
class SourceSpec:
    """One entry of `sources:` in the build config."""

    task: str  # a task name, or jsonl / released (alpaca) / fincalc
    path: str | None = None
    score_as: str | None = None  # jsonl: the scoring task; released: the subset's task
    limit: int | None = None  # keep the first `limit` examples
    n: int = 0  # fincalc: how many to generate (when no path)
    seed: int = 0  # fincalc: generator seed
    options: dict[str, Any] = field(default_factory=dict)  # fincalc: langs / forms / kinds
    strict: bool = True  # released: a malformed row is an error (false: skip it and report)


@dataclass
class Loaded:
    """What one source gave: examples for the pipeline, finished SFT rows, skipped-row problems."""

    examples: list[Example] = field(default_factory=list)
    sft_rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- reading records --------------------------------------------------------------------------------
def iter_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, record) from a JSON array or a JSONL file; `line` is where the record starts, a `Record`
    (the line, and the index in the array) for a JSON array, which errors name as `record 12 (line 40)`."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        yield from _iter_array(path, text)
    else:
        yield from jsonl_records(path, text)


def _iter_array(path: Path, text: str) -> Iterator[tuple[Record, Any]]:
    decoder = json.JSONDecoder()
    pos, index, line, counted = text.index("[") + 1, 0, 1, 0

    def skip_ws(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    pos = skip_ws(pos)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        where = Record(line, index)
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        except (RecursionError, ValueError) as e:  # nested too deep; an integer over int_max_str_digits
            raise DataError(path, where, None, f"unreadable JSON: {str(e)[:120]}") from None
        yield where, obj
        index += 1
        pos = skip_ws(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        bad_line = text.count("\n", 0, pos) + 1
        raise DataError(path, bad_line, None, "invalid JSON array: expected ',' or ']'")


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]


def _unique(ident: str, seen: dict[str, int]) -> str:
    """`ident`, or `ident-2`, `ident-3`, ... when generated ids repeat (stable in file order)."""
    seen[ident] = n = seen.get(ident, 0) + 1
    return ident if n == 1 else f"{ident}-{n}"


def _first(where: int) -> str:
    return f"first: {where}" if isinstance(where, Record) else f"first on line {where}"


def _record_id(path: Path, line: int, rec: dict) -> str | None:
    value = rec.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(path, line, "id", f"expected a non-empty string or an integer, got {value!r}")
    return str(value).strip()


# --- generic JSONL ----------------------------------------------------------------------------------
_GENERIC_OWN = ("id", "question", "answer", "choices", "task")


def _choices(path: Path, line: int, value: Any) -> dict[str, str]:
    if isinstance(value, list):  # ["text A", "text B", ...] -> {"A": ..., "B": ...}
        if not 1 <= len(value) <= 7:
            raise DataError(path, line, "choices", f"expected 1 to 7 options, got {len(value)}")
        value = {chr(ord("A") + i): v for i, v in enumerate(value)}
    try:
        return parse_choices(value)
    except ValueError as e:
        raise DataError(path, line, "choices", str(e)) from None


def load_generic(path: str | Path, score_as: str | None = None) -> list[Example]:
    """Any JSONL of `{id?, question, answer, choices?}` (see the module docstring)."""
    path = Path(path)
    out: list[Example] = []
    ids: dict[str, int] = {}
    generated: dict[str, int] = {}
    for line, rec in iter_records(path):
        if not isinstance(rec, dict):
            raise DataError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")
        question = rec.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(path, line, "question", f"expected a non-empty string, got {question!r:.60}")
        answer = rec.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
            raise DataError(path, line, "answer", f"expected a non-empty string or a number, got {answer!r:.60}")
        choices = _choices(path, line, rec["choices"]) if rec.get("choices") is not None else None
        task_name = score_as or ("cflue" if choices else "cflue_oe")
        try:
            task = get_task(task_name)
        except KeyError as e:
            raise DataError(path, None, "score_as", str(e)) from None
        gold: Any = answer
        if choices is not None and task.name == "cflue":
            gold = gold_letters(str(answer))
            if gold is None or any(c not in choices for c in gold):
                raise DataError(path, line, "answer", f"{answer!r} is not option letters among {''.join(choices)}")
        ident = _record_id(path, line, rec)
        if ident is None:
            key = json.dumps(choices, ensure_ascii=False, sort_keys=True) if choices else ""
            ident = _unique("jsonl-" + _short_hash(question.strip(), key), generated)
        if ident in ids:
            raise DataError(path, line, "id", f"duplicate id {ident!r} ({_first(ids[ident])})")
        ids[ident] = line
        ex: Example = {k: v for k, v in rec.items() if k not in _GENERIC_OWN}
        ex.update(id=ident, task=task.name, question=question.strip(), gold=gold)
        if choices is not None:
            ex["choices"] = choices
        out.append(ex)
    return out


# --- released DianJin-R1-Data (alpaca) --------------------------------------------------------------
# File stem (lower case) -> task: the HF names and the names in upstream's dataset_info.json.
RELEASED_FILES: dict[str, str] = {
    "cflue_mcq": "cflue",
    "cflue_oe": "cflue_oe",
    "fin_qa": "finqa",
    "cflue_mcq_sft": "cflue",
    "cflue_open_sft": "cflue_oe",
    "fin-qa_sft": "finqa",
    "ccc_r1_sft": "ccc",
}


def released_task(
    path: Path, score_as: str | None, files: dict[str, str] = RELEASED_FILES, arg: str = "score_as"
) -> str:
    """The subset's task: `score_as`, else the file stem looked up in `files`; errors name `arg`."""
    name = score_as or files.get(path.stem.lower())
    if name is None:
        raise DataError(
            path,
            None,
            arg,
            f"cannot tell the subset from the file name {path.name!r} "
            f"(known: {', '.join(sorted(files))}); set {arg} to a task name",
        )
    try:
        return get_task(name).name
    except KeyError as e:
        raise DataError(path, None, arg, str(e)) from None


def _opt_str(path: Path, line: int, rec: dict, name: str) -> str:
    value = rec.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(path, line, name, f"expected a string, got {type(value).__name__}")
    return value.strip()


def released_row(path: Path, line: int, rec: Any, task_name: str, boxed: bool) -> tuple[str | None, dict[str, Any]]:
    """(record id or None, SFT row without id) from one alpaca record; DataError when malformed."""
    if not isinstance(rec, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")
    for name in ("instruction", "output"):
        value = rec.get(name)
        if not isinstance(value, str) or not value.strip():
            got = "nothing" if name not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
            raise DataError(path, line, name, f"expected a non-empty string, got {got}")
    if rec.get("history"):
        raise DataError(path, line, "history", "multi-turn history is not supported")
    extra_input, system = _opt_str(path, line, rec, "input"), _opt_str(path, line, rec, "system")
    output = rec["output"].strip()
    parsed = fmt.parse_strict(output, require_boxed=boxed)
    if not parsed.ok:
        raise DataError(path, line, "output", f"not in the <think>/<answer> format: {parsed.reason}")
    if not parsed.reasoning:
        raise DataError(path, line, "output", "empty <think> block")
    prompt = rec["instruction"].strip() + ("\n" + extra_input if extra_input else "")
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": output},
    ]
    row = {
        "task": task_name,
        "messages": messages,
        "reasoning": parsed.reasoning,
        "answer": parsed.answer,
        "attempts": 0,
        "teacher": "released",
    }
    return _record_id(path, line, rec), row


def load_released(path: str | Path, score_as: str | None = None, strict: bool = True) -> Loaded:
    """SFT rows from a released DianJin-R1-Data file (see the module docstring)."""
    path = Path(path)
    task_name = released_task(path, score_as)
    return released_rows(path, task_name, get_task(task_name).boxed, strict)


def released_rows(path: Path, task_name: str, boxed: bool, strict: bool = True) -> Loaded:
    """SFT rows `{id, **released_row}` of an alpaca file whose subset is known; ids unique in the file
    (a record's own, else `<task>-r1-<sha256(prompt)[:12]>`, `-2`, `-3`, ... for repeats)."""
    out = Loaded()
    ids: dict[str, int] = {}
    generated: dict[str, int] = {}
    for line, rec in iter_records(path):
        try:
            ident, row = released_row(path, line, rec, task_name, boxed)
        except DataError as e:
            if strict:
                raise
            out.problems.append(str(e))
            continue
        if ident is None:
            ident = _unique(f"{task_name}-r1-" + _short_hash(row["messages"][-2]["content"]), generated)
        if ident in ids:
            problem = DataError(path, line, "id", f"duplicate id {ident!r} ({_first(ids[ident])})")
            if strict:
                raise problem
            out.problems.append(str(problem))
            continue
        ids[ident] = line
        out.sft_rows.append({"id": ident, **row})
    return out


# --- dispatch -----------------------------------------------------------------------------------------
def _need_path(spec: SourceSpec, where: str) -> Path:
    if not spec.path:
        raise DataError(where, None, "path", f"source {spec.task!r} needs a path")
    path = Path(spec.path)
    if not path.exists():
        raise DataError(where, None, "path", f"{path} does not exist")
    return path


def _load_fincalc(spec: SourceSpec, where: str) -> Loaded:
    from dianjin.data.synthetic import fincalc

    if spec.path:
        return Loaded(get_task("fincalc").load(str(_need_path(spec, where))))
    if spec.n <= 0:
        raise DataError(where, None, "n", "fincalc without a path generates `n` examples: set n > 0")
    try:
        return Loaded(fincalc.generate(spec.n, spec.seed, **spec.options))
    except (TypeError, ValueError) as e:
        raise DataError(where, None, "options", str(e)) from None


# Source kinds that are not plain task loaders.
LOADERS: dict[str, Callable[[SourceSpec, str], Loaded]] = {
    "jsonl": lambda s, w: Loaded(load_generic(_need_path(s, w), s.score_as)),
    "released": lambda s, w: load_released(_need_path(s, w), s.score_as, s.strict),
    "alpaca": lambda s, w: load_released(_need_path(s, w), s.score_as, s.strict),
    "fincalc": _load_fincalc,
}


def _kind(spec: SourceSpec, where: str) -> str:
    """The source's kind: a LOADERS key or a task name (DataError naming `task` otherwise)."""
    kind = spec.task.strip().lower()
    if kind not in LOADERS:
        try:
            get_task(kind)
        except KeyError as e:
            raise DataError(where, None, "task", f"{e.args[0]}; or one of: {', '.join(LOADERS)}") from None
    return kind


def check_sources(specs: list[SourceSpec]) -> None:
    """What loading would fail on first, checked without reading a file: each source's kind, and that
    the file it reads exists (the preflight of `dianjin data`, before it writes anything)."""
    for i, spec in enumerate(specs):
        where = f"sources[{i}]"
        if _kind(spec, where) != "fincalc" or spec.path:  # fincalc without a path generates its examples
            _need_path(spec, where)


def load_source(spec: SourceSpec, where: str = "source") -> Loaded:
    """One source's examples (or released SFT rows), first `limit` kept."""
    kind = _kind(spec, where)
    loader = LOADERS.get(kind)
    if loader is None:
        loaded = Loaded(get_task(kind).load(str(_need_path(spec, where))))
    else:
        loaded = loader(spec, where)
    if spec.limit is not None:
        loaded.examples, loaded.sft_rows = loaded.examples[: spec.limit], loaded.sft_rows[: spec.limit]
    for ex in loaded.examples:
        if ex.get("task") not in TASKS:
            raise DataError(
                spec.path or where, None, "task", f"example {ex.get('id')!r} has unknown task {ex.get('task')!r}"
            )
    return loaded


def load_sources(specs: list[SourceSpec]) -> Loaded:
    """All sources, in config order; ids must be unique across them."""
    out = Loaded()
    first: dict[str, str] = {}
    for i, spec in enumerate(specs):
        where = f"sources[{i}]"
        loaded = load_source(spec, where)
        label = f"{where} ({spec.path or spec.task})"
        for rec in (*loaded.examples, *loaded.sft_rows):
            if rec["id"] in first:
                raise DataError(
                    spec.path or where,
                    None,
                    "id",
                    f"id {rec['id']!r} appears in {first[rec['id']]} and again in {label}",
                )
            first[rec["id"]] = label
        out.examples += loaded.examples
        out.sft_rows += loaded.sft_rows
        out.problems += loaded.problems
        log.info(
            "sources: %s: %d examples, %d released SFT rows%s",
            label,
            len(loaded.examples),
            len(loaded.sft_rows),
            f", {len(loaded.problems)} malformed rows skipped" if loaded.problems else "",
        )
        for p in loaded.problems[:5]:
            log.warning("sources: skipped %s", p)
    return out


__all__ = [
    "LOADERS",
    "Loaded",
    "RELEASED_FILES",
    "SourceSpec",
    "check_sources",
    "iter_records",
    "load_generic",
    "load_released",
    "load_source",
    "load_sources",
    "released_row",
    "released_rows",
    "released_task",
]
