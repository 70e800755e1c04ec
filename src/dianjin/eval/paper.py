"""The DianJin-R1 paper's main table (README / paper, docs/upstream.md §8.2), for reports.

Scores are accuracies in percent as published. How they were obtained matters when reading ours
beside them: CFLUE is the letter set in the last `\\boxed{}` (probably N = 3,846, a ModelScope test
split we do not have); FinQA was judged by GPT-4o with an unpublished prompt (1,147 test items);
CCC is a proprietary 200-item set; MATH-500 and GPQA-Diamond came from EvalScope with unpublished
sampling settings. `paper_average(row, tasks)` averages a row over the tasks a run evaluated,
so a partial run is compared like for like (the published "Avg" is over all five).

Every published Avg is the mean of its five scores to rounding, except DeepSeek-V3's: 68.33 is
printed, the five give 69.33 (`PUBLISHED_AVG_ERRATA`). We keep the printed value in the row and
recompute averages ourselves.
"""

from __future__ import annotations

from collections.abc import Iterable

# Benchmarks in the paper's column order; our task names.
PAPER_TASKS: tuple[str, ...] = ("cflue", "finqa", "ccc", "math500", "gpqa")
TASK_LABELS: dict[str, str] = {
    "cflue": "CFLUE",
    "finqa": "FinQA",
    "ccc": "CCC",
    "math500": "MATH-500",
    "gpqa": "GPQA-D",
    "cflue_oe": "CFLUE-OE",
    "fincalc": "FinCalc",
    "ccc_agents": "CCC (multi-agent)",
}

# model -> (CFLUE, FinQA, CCC, MATH, GPQA, Avg), percent.
_ROWS: dict[str, tuple[float, float, float, float, float, float]] = {
    "GPT-4o": (71.68, 79.16, 50.00, 77.93, 39.56, 63.67),
    "DeepSeek-V3": (75.14, 81.34, 57.50, 87.20, 45.45, 68.33),
    "Qwen2.5-7B-Instruct": (69.37, 66.70, 55.00, 71.40, 33.84, 59.26),
    "Qwen2.5-32B-Instruct": (77.95, 79.51, 56.50, 81.00, 44.95, 67.98),
    "Qwen2.5-72B-Instruct": (79.46, 77.94, 55.50, 82.20, 39.90, 67.00),
    "DeepSeek-R1": (86.64, 79.81, 67.50, 94.80, 66.16, 78.98),
    "DeepSeek-R1-Distill-Qwen-7B": (48.39, 66.09, 41.50, 90.20, 45.96, 58.43),
    "DeepSeek-R1-Distill-Qwen-14B": (70.83, 76.63, 50.00, 93.20, 54.55, 69.04),
    "DeepSeek-R1-Distill-Qwen-32B": (78.52, 77.00, 52.00, 95.00, 63.64, 73.23),
    "QwQ-32B": (83.49, 78.38, 52.00, 95.00, 63.64, 74.50),
    "DianJin-R1-7B": (80.32, 77.72, 94.50, 76.60, 37.54, 73.34),
    "DianJin-R1-32B": (86.74, 80.82, 96.00, 88.20, 58.59, 82.07),
}

# model -> {task: accuracy %, ..., "avg": published average}
PAPER_ROWS: dict[str, dict[str, float]] = {
    model: {**dict(zip(PAPER_TASKS, row[:5])), "avg": row[5]} for model, row in _ROWS.items()
}

# model -> the mean of its five published scores, where the printed Avg disagrees with it.
PUBLISHED_AVG_ERRATA: dict[str, float] = {"DeepSeek-V3": 69.33}

# Rows shown beside ours by default: the two DianJin-R1 models and their bases.
DEFAULT_ROWS: tuple[str, ...] = ("Qwen2.5-7B-Instruct", "Qwen2.5-32B-Instruct", "DianJin-R1-7B", "DianJin-R1-32B")

# Paper Table 6 (second-hand, docs/upstream.md §3.3): LLM calls per CCC instance of the multi-agent system.
MULTI_AGENT_CALLS_PER_ITEM = 8.15

SOURCE = "DianJin-R1 (arXiv 2504.15716) main table, aliyun/qwen-dianjin DianJin-R1/README.md"


def paper_average(row: dict[str, float], tasks: Iterable[str]) -> float | None:
    """Mean of a paper row over `tasks` (the paper's tasks among them); None when there are none."""
    tasks = [t for t in tasks if t in PAPER_TASKS]
    if not tasks:
        return None
    return sum(row[t] for t in tasks) / len(tasks)


def label(task: str) -> str:
    """Display name of a task (its own name when unknown)."""
    return TASK_LABELS.get(task, task)


__all__ = [
    "DEFAULT_ROWS",
    "MULTI_AGENT_CALLS_PER_ITEM",
    "PAPER_ROWS",
    "PAPER_TASKS",
    "PUBLISHED_AVG_ERRATA",
    "SOURCE",
    "TASK_LABELS",
    "label",
    "paper_average",
]
