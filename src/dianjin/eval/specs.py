"""What `dianjin eval` runs per task: where its data lives, its pinned sampling settings, and how
`--n K` turns examples into work units.

Upstream never published its inference prompts or sampling settings (docs/upstream.md §8.1), so ours
are pinned here and written into every run's `summary.json`:

- prompts: each task module's own (`dianjin.tasks.*.PROMPT`, one user message, no system
  prompt unless `--system` is given: Qwen2.5's chat template then adds its default one, as
  upstream's SFT data had);
- sampling: temperature 0.6, top_p 0.95 for every task (DianJin-R1's GRPO rollout setting, and
  EvalScope's recommendation for R1-style models); max_tokens 8,192 for CFLUE, FinQA, CCC and
  FinCalc, 16,384 for MATH-500 and GPQA (R1-style traces are long; lm-eval and EvalScope issues
  report silent truncation below that). `--temperature/--top-p/--max-tokens` override them;
- `--n K`: K samples of each prompt (sample index 0..K-1, each a distinct cached request), except
  GPQA, where the K runs are K option shuffles of each question (`tasks.gpqa.expand`, as
  simple-evals), one sample each. Items are questions either way: statistics group by item.

Data files under `--data-dir` (the layout of ../shared/data), first pattern that matches wins;
a pattern matching several files is an error naming them (pick one with `--data TASK=PATH`).

`resolve(name, ...)` turns all of that, with the command line's overrides, into one `EvalTask`:
the scoring task, its spec, sampling, prompt and judge prompt; `dianjin.eval.run` reads only that.
Prompts and scoring come from the task layer (`dianjin.tasks`), never from the data pipeline.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.base import Example, Task

TEMPERATURE = 0.6
TOP_P = 0.95


@dataclass(frozen=True)
class TaskSpec:
    """How one eval task runs. `base` is the scoring task (default: the same name)."""

    files: tuple[str, ...]  # glob patterns under --data-dir, in priority order
    max_tokens: int
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    units: str = "samples"  # key of UNIT_BUILDERS: how --n K becomes work units
    runner: str = "chat"  # "chat": one call per unit; "agents": the CCC multi-agent workflow
    judged: bool = False  # scored by the judge LLM when one is configured
    system: bool = False  # a system of several calls, shown beside the single-call model
    base: str | None = None

    @property
    def format_applies(self) -> bool:
        """Whether the `<think>/<answer>` format rate means anything (not for a multi-agent system)."""
        return self.runner == "chat"


_CCC_FILES = ("ccc/test.jsonl", "ccc/test*.jsonl", "ccc/*.jsonl")
TASK_SPECS: dict[str, TaskSpec] = {
    "cflue": TaskSpec(("cflue/knowledge.json", "cflue/knowledge*.json*", "cflue/test*.json*"), 8192),
    "cflue_oe": TaskSpec(
        ("cflue_oe/test*.jsonl", "cflue_oe/*.jsonl", "cflue/cflue_oe*.jsonl", "cflue/open*.jsonl"), 8192, judged=True
    ),
    "finqa": TaskSpec(
        (
            "finqa/test.json",
            "finqa/test*.json",
            "finqa/dev.json",
            "finqa/dev*.json",
            "finqa/train.json",
            "finqa/train*.json",
        ),
        8192,
        judged=True,
    ),
    "ccc": TaskSpec(_CCC_FILES, 8192),
    "ccc_agents": TaskSpec(_CCC_FILES, 4096, runner="agents", system=True, base="ccc"),
    "math500": TaskSpec(("math500/test.jsonl",), 16384),
    "gpqa": TaskSpec(("gpqa/gpqa_diamond.csv", "gpqa/*diamond*.csv"), 16384, units="shuffles"),
    "fincalc": TaskSpec(("fincalc/test.jsonl", "fincalc/*.jsonl"), 8192),
}


def spec_of(name: str) -> TaskSpec:
    if name not in TASK_SPECS:
        raise KeyError(f"no eval settings for task {name!r}; known: {', '.join(TASK_SPECS)}")
    return TASK_SPECS[name]


def scoring_task(name: str) -> Task:
    """The registered task that loads and scores eval task `name`."""
    return get_task(spec_of(name).base or name)


def resolve_data(name: str, data_dir: Path | None, overrides: dict[str, str]) -> Path:
    """The data file for a task: `--data TASK=PATH`, else the first matching pattern under data_dir."""
    return _find_data(name, spec_of(name).files, data_dir, overrides)


def _find_data(name: str, files: tuple[str, ...], data_dir: Path | None, overrides: dict[str, str]) -> Path:
    if name in overrides:
        path = Path(overrides[name])
        if not path.is_file():
            raise DataError(path, None, None, f"--data {name}=...: no such file")
        return path
    if data_dir is None:
        raise DataError("--data-dir", None, None, f"task {name}: give --data-dir DIR or --data {name}=PATH")
    for pattern in files:
        found = sorted(p for p in data_dir.glob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(data_dir)) for p in found)
            raise DataError(
                data_dir,
                None,
                None,
                f"task {name}: several files match {pattern!r} ({names}); choose one with --data {name}=PATH",
            )
    raise DataError(
        data_dir, None, None, f"task {name}: no data file; looked for {', '.join(files)} (or give --data {name}=PATH)"
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prompt_template(name: str) -> str:
    """The task's prompt template as written in its module (recorded in the results)."""
    return _prompt_template(spec_of(name), scoring_task(name))


def _prompt_template(spec: TaskSpec, task: Task) -> str:
    if spec.runner == "agents":
        from dianjin.tasks.ccc_agents import prompt_text

        return prompt_text()
    module = inspect.getmodule(type(task))
    for attr in ("PROMPT", "PROMPTS"):
        value = getattr(module, attr, None)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return json.dumps({str(k): v for k, v in value.items()}, ensure_ascii=False, indent=1)
    return ""


# --- work units ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One response to obtain: `example`, the request's `sample` index, the `item` it counts for
    (statistics group by item) and its `run` (0..K-1: which of the K samples or shuffles)."""

    example: Example
    sample: int
    item: str
    run: int

    @property
    def key(self) -> str:
        return f"{self.example['id']}|{self.sample}"


def _sample_units(task: Task, path: Path, n: int, limit: int | None) -> list[Unit]:
    examples = task.load(str(path))[:limit]
    return [Unit(ex, j, str(ex["id"]), j) for j in range(n) for ex in examples]


def _shuffle_units(task: Task, path: Path, n: int, limit: int | None) -> list[Unit]:
    examples = task.load(str(path), k=n)  # type: ignore[call-arg]  # gpqa: repeat-major, n shuffles
    keep = list(dict.fromkeys(ex["record_id"] for ex in examples))[:limit]
    keep_set = set(keep)
    return [Unit(ex, 0, ex["record_id"], int(ex["repeat"])) for ex in examples if ex["record_id"] in keep_set]


UNIT_BUILDERS: dict[str, Callable[[Task, Path, int, int | None], list[Unit]]] = {
    "samples": _sample_units,
    "shuffles": _shuffle_units,
}


def build_units(name: str, path: Path, n: int, limit: int | None) -> list[Unit]:
    """The work units of a task: K samples (or shuffles) of the first `limit` items, sample-major."""
    return _units(spec_of(name).units, scoring_task(name), path, n, limit)


def _units(kind: str, task: Task, path: Path, n: int, limit: int | None) -> list[Unit]:
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    return UNIT_BUILDERS[kind](task, path, n, limit)


def sampling(name: str, temperature: float | None, top_p: float | None, max_tokens: int | None) -> dict[str, Any]:
    """The task's sampling settings after command-line overrides."""
    spec = spec_of(name)
    return {
        "temperature": spec.temperature if temperature is None else temperature,
        "top_p": spec.top_p if top_p is None else top_p,
        "max_tokens": spec.max_tokens if max_tokens is None else max_tokens,
    }


# --- one task's settings, resolved once ------------------------------------------------------------
@dataclass(frozen=True)
class EvalTask:
    """Everything `dianjin eval` needs of one task (`resolve`): what runs, how it is sampled and scored."""

    name: str
    task: Task  # loads, prompts and scores (the spec's `base`, else the task of the same name)
    files: tuple[str, ...]  # data file patterns under --data-dir (TaskSpec.files)
    units: str  # how --n K becomes work units (a key of UNIT_BUILDERS)
    runner: str  # "chat" (one call per unit) or "agents" (the CCC multi-agent workflow)
    system: bool  # a system of several calls, shown beside the single-call model
    sampling: dict[str, Any]  # temperature, top_p, max_tokens after the command line's overrides
    prompt_template: str  # as written in the task's module (recorded in the results)
    judged: bool  # scored by the judge LLM: the spec says so and a judge is configured
    judge_prompt: str | None  # the task's judge prompt when judged

    @property
    def format_applies(self) -> bool:
        return self.runner == "chat"

    def data_file(self, data_dir: Path | None, overrides: dict[str, str]) -> Path:
        """The data file (see `resolve_data`)."""
        return _find_data(self.name, self.files, data_dir, overrides)

    def build_units(self, path: Path, n: int, limit: int | None) -> list[Unit]:
        """The work units (see `build_units`)."""
        return _units(self.units, self.task, path, n, limit)


def resolve(
    name: str,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    judge: bool = False,
) -> EvalTask:
    """Task `name`'s settings after the command line's overrides; `judge`: a judge endpoint is
    configured. KeyError for a task without eval settings."""
    spec, task = spec_of(name), scoring_task(name)
    judged = spec.judged and judge
    return EvalTask(
        name,
        task,
        spec.files,
        spec.units,
        spec.runner,
        spec.system,
        sampling(name, temperature, top_p, max_tokens),
        _prompt_template(spec, task),
        judged,
        task.judge_template() if judged else None,
    )


__all__ = [
    "TASK_SPECS",
    "EvalTask",
    "TaskSpec",
    "Unit",
    "UNIT_BUILDERS",
    "build_units",
    "file_sha256",
    "prompt_template",
    "resolve",
    "resolve_data",
    "sampling",
    "scoring_task",
    "spec_of",
]
