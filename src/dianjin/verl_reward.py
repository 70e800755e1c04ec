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

import json
from typing import Any

from dianjin.tasks import get_task


def decode_extra_info(extra_info: dict[str, Any] | None) -> dict[str, Any]:
    """`extra_info` as written by `dianjin.data.export`: null fields dropped, and the fields listed in
    `json_fields` (non-string task fields such as `choices`, JSON-encoded so every parquet row has
    one schema) decoded."""
    info = {k: v for k, v in (extra_info or {}).items() if v is not None}
    for key in list(info.get("json_fields") or []):
        if isinstance(info.get(key), str):
            info[key] = json.loads(info[key])
    return info


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None) -> dict[str, Any]:
    example = decode_extra_info(extra_info)
    example["gold"] = ground_truth
    verdict = get_task(data_source).score(solution_str, example, mode="reward")
    return {"score": verdict.reward, "acc": verdict.correct is True, "pred": verdict.pred or ""}
