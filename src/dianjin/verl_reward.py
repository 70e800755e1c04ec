"""verl custom reward entry point (works wherever `dianjin` is installed, without the train extra).

In a verl GRPO launch:

    custom_reward_function.path=$(python -c "import dianjin.verl_reward as m; print(m.__file__)")
    custom_reward_function.name=compute_score

verl loads this file by path and calls `compute_score(data_source, solution_str, ground_truth,
extra_info)` for each response. `data_source` picks the task through the registry (aliases such
as "cflue_mcq" or "dianjin/cflue" work); `extra_info` may carry task fields such as `choices`.
The score is upstream's gated 0/1 reward; `acc` and `pred` are for verl's logs.
"""

from __future__ import annotations

from typing import Any

from dianjin.tasks import get_task


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None) -> dict[str, Any]:
    example = dict(extra_info or {})
    example["gold"] = ground_truth
    verdict = get_task(data_source).score(solution_str, example, mode="reward")
    return {"score": verdict.reward, "acc": verdict.correct is True, "pred": verdict.pred or ""}
