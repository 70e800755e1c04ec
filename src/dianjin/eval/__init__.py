"""Evaluation: the paper's table, reproducibly, with confidence intervals.

- `run`: the harness of `dianjin eval run`: any OpenAI-compatible endpoint or a local model, every task,
  resumable, judged where the task needs it, per-sample JSONL, `summary.json` / `summary.md`;
- `cli`: `dianjin eval run | rescore | compare` (a YAML config, key=value overrides, flags);
- `specs`: per task, the data file patterns, pinned sampling settings and how `--n` expands, resolved
  once per run into an `EvalTask` (prompts and scoring from `dianjin.tasks`, never `dianjin.data`);
- `stats`: bootstrap CIs over items, the paired bootstrap, mean@k and unbiased pass@k;
- `summarize`: per-task statistics from sample rows, the Markdown tables, run comparison;
- `paper`: the paper's main table (docs/upstream.md §8.2);
- `report`: `dianjin report`, a static HTML + Markdown report with PNG plots and an error browser.

    from dianjin.eval import EvalConfig, run_eval
    summary = run_eval(EvalConfig(output_dir=Path("runs/eval"), tasks=["cflue"], endpoint=cfg, data_dir=Path("data")))
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalConfig", "compare_runs", "evaluate", "run_eval"]


def __getattr__(name: str) -> Any:  # lazy: `dianjin.eval.stats` must not pull in the client
    if name in ("EvalConfig", "evaluate", "run_eval"):
        from dianjin.eval import run

        return getattr(run, name)
    if name == "compare_runs":
        from dianjin.eval.summarize import compare_runs

        return compare_runs
    raise AttributeError(f"module 'dianjin.eval' has no attribute {name!r}")
