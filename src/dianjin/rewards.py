"""Rule rewards for GRPO, built on the task scorers (the same code as data verification and eval).

TRL reward functions have the signature `fn(completions, **dataset_columns) -> list[float | None]`.
Dataset rows carry `task` (or verl-style `data_source`) and `gold`, plus whatever the task needs
(`choices`, `question`, ...), either flat or nested as `dianjin data build` writes them: raw
`rl.jsonl` rows keep the task fields under `extra`, which is read as `dianjin grpo` reads it
(`extra` flattened, top-level fields winning), so both give the same verdicts; verl-shaped rows
(`extra_info`, `reward_model.ground_truth`) are read as `dianjin.verl_reward` reads them. Null fields
are dropped, also inside mappings (`datasets` fills a struct column's missing keys with None, e.g. a
four-option `choices` next to a five-option one). Completions may be plain strings or
conversational (`[{"role": "assistant", "content": ..., "reasoning_content"?: ...}]`).

- `dianjin_reward`: upstream's gated reward, 1 iff strict format and correct, else 0
  (upstream `reward_score_cflue.py`, plus the think-before-answer order check it lacks).
- `format_reward`, `accuracy_reward`: the two signals separately, for users who want dual
  rewards (`reward_weights` in GRPOConfig). `accuracy_reward` uses strict extraction when the
  format holds and lenient extraction otherwise.

`None` means "cannot verify" (for example an open-ended item with no judge): TRL ignores it.
`dianjin_reward` also logs diagnostics through TRL's `log_extra`/`log_metric` hooks: the
extracted prediction, the format verdict, and per-task reward, format rate and accuracy.

verl's entry point is `dianjin.verl_reward.compute_score`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dianjin.tasks import Verdict, get_task
from dianjin.tasks.base import Mode
from dianjin.verl_reward import decode_extra_info

RewardFn = Callable[..., list[float | None]]
# Columns TRL adds to reward kwargs that are not dataset fields.
_TRAINER_KWARGS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids", "prompts", "prompt"}


def completion_text(completion: Any) -> tuple[str, str | None]:
    """(content, reasoning_content) of a plain or conversational completion."""
    if isinstance(completion, str):
        return completion, None
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and completion:
        msg = completion[-1]
        if isinstance(msg, dict):
            return str(msg.get("content") or ""), msg.get("reasoning_content") or msg.get("reasoning")
    return "", None


def _no_nulls(value: Any) -> Any:
    """A mapping without its None values (recursively through mappings); anything else as it is."""
    if isinstance(value, Mapping):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    return value


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One dataset row in the shape the task scorers read (see the module docstring): nested `extra`
    (rl.jsonl) and `extra_info` (verl) merged in under the row's own fields, `data_source` as `task`,
    `ground_truth` (or `reward_model.ground_truth`, `answer`, `solution`) as `gold`."""
    row = dict(row)
    extra, info, rm = row.pop("extra", None), row.pop("extra_info", None), row.get("reward_model")
    flat = {
        **(decode_extra_info(info) if isinstance(info, Mapping) else {}),
        **(extra if isinstance(extra, Mapping) else {}),
        **row,
    }
    flat = _no_nulls(flat)
    if "task" not in flat and "data_source" in flat:
        flat["task"] = flat["data_source"]
    if "gold" not in flat and isinstance(rm, Mapping) and rm.get("ground_truth") is not None:
        flat["gold"] = rm["ground_truth"]
    if "gold" not in flat:
        for alt in ("ground_truth", "answer", "solution"):
            if alt in flat:
                flat["gold"] = flat[alt]
                break
    return flat


def _rows(n: int, columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-completion example dicts from TRL's column-wise kwargs."""
    cols = {k: v for k, v in columns.items() if k not in _TRAINER_KWARGS and isinstance(v, (list, tuple))}
    return [flat_row({k: v[i] for k, v in cols.items() if i < len(v)}) for i in range(n)]


def score_completions(completions: Sequence[Any], mode: Mode = "reward", **columns: Any) -> list[Verdict]:
    """Score each completion against its row; raises a clear error when a row lacks task or gold."""
    verdicts = []
    for i, (completion, row) in enumerate(zip(completions, _rows(len(completions), columns))):
        for field in ("task", "gold"):
            if field not in row:
                raise KeyError(f"reward row {i}: missing dataset column '{field}' (or data_source/ground_truth)")
        content, reasoning = completion_text(completion)
        verdicts.append(get_task(row["task"]).score(content, row, mode=mode, reasoning_content=reasoning))
    return verdicts


def _log(verdicts: list[Verdict], columns: dict[str, Any]) -> None:
    log_extra, log_metric = columns.get("log_extra"), columns.get("log_metric")
    if log_extra is not None:
        log_extra("pred", [v.pred for v in verdicts])
        log_extra("format_ok", [v.format_ok for v in verdicts])
    if log_metric is not None and verdicts:
        tasks = columns.get("task") or columns.get("data_source") or ["all"] * len(verdicts)
        groups: dict[str, list[Verdict]] = defaultdict(list)
        for t, v in zip(tasks, verdicts):
            groups[str(t)].append(v)
        log_metric("format_rate", sum(v.format_ok for v in verdicts) / len(verdicts))
        log_metric("accuracy", sum(v.correct is True for v in verdicts) / len(verdicts))
        for t, vs in groups.items():
            log_metric(f"reward/{t}", sum(v.reward for v in vs) / len(vs))


def dianjin_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """Gated reward: 1.0 iff strict format and correct; 0.0 otherwise; None if unverifiable."""
    verdicts = score_completions(completions, mode="reward", **columns)
    _log(verdicts, columns)
    return [None if (v.format_ok and v.correct is None) else v.reward for v in verdicts]


def format_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """1.0 iff the strict format holds (one think, then one answer, a box inside when required)."""
    return [1.0 if v.format_ok else 0.0 for v in score_completions(completions, mode="reward", **columns)]


def accuracy_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """1.0 iff the answer is correct, whatever the format; None if unverifiable."""
    verdicts = score_completions(completions, mode="reward", **columns)
    return [None if v.correct is None else float(v.correct) for v in verdicts]


REWARDS: dict[str, RewardFn] = {"dianjin": dianjin_reward, "format": format_reward, "accuracy": accuracy_reward}


def get_reward(name: str) -> RewardFn:
    if name not in REWARDS:
        raise KeyError(f"unknown reward {name!r}; known: {', '.join(REWARDS)}")
    return REWARDS[name]
