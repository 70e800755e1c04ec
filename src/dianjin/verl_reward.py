"""verl custom reward entry points (work wherever `dianjin` is installed, without the train extra).

In a verl GRPO launch:

    custom_reward_function.path=$(python -c "import dianjin.verl_reward as m; print(m.__file__)")
    custom_reward_function.name=compute_score_float    # verl 0.3.x (upstream's) and every later release
    custom_reward_function.name=compute_score          # verl >= 0.4: also logs acc and pred

verl loads this file by path and calls `fn(data_source=, solution_str=, ground_truth=, extra_info=)`
for each response. `data_source` picks the task through the registry (aliases such as "cflue_mcq"
or "dianjin/cflue" work); `extra_info` may carry task fields such as `choices`. The score is
upstream's gated 0/1 reward. `compute_score` returns `{"score", "acc", "pred"}`, which verl >= 0.4
logs; verl 0.3 writes the value straight into a float tensor (`can't assign a dict to a
torch.FloatTensor`), so it needs `compute_score_float`, the same score as a float.
`ENTRY_POINTS` maps `dianjin export verl --verl-style` to the name. From verl 0.7.1 the keys are
`reward.custom_reward_function.path|name`, and verl >= 0.9 ignores the top-level ones (`reward_key`).

`preflight` is what `run_grpo.sh` runs in verl's Python before it starts verl: one exported row per
`data_source` scored through the entry point, so a missing dependency (math-verify for MATH-500
rows) fails in seconds instead of at the first reward call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import get_task

# --verl-style -> custom_reward_function.name (upstream: verl 0.3.x-0.4.0; current: verl >= 0.4.1)
ENTRY_POINTS: dict[str, str] = {"upstream": "compute_score_float", "current": "compute_score"}
# verl 0.4.1 renamed actor.checkpoint.contents to save_contents (the only upstream key it renamed).
CURRENT_SINCE = (0, 4, 1)
# verl 0.7.1 moved custom_reward_function under reward. (its main_ppo still mapped the top-level keys there);
# from 0.9.0 main_ppo no longer maps them, so a top-level custom_reward_function is silently ignored.
REWARD_UNDER_REWARD_SINCE = (0, 7, 1)
# The math-verify install for verl's environment: Hydra's OmegaConf needs antlr4 4.9.3 (with the
# antlr4_13_2 extra it fails with "Could not deserialize ATN").
MATH_VERIFY_FOR_VERL = "math-verify[antlr4_9_3]==0.9.0"


def plain(value: Any) -> Any:
    """`value` with numpy arrays, numpy scalars and tuples made plain lists and numbers (verl 0.3 reads
    parquet with pandas: list columns arrive as numpy arrays, structs as dicts), recursively."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar, without importing numpy
        return plain(value.tolist())
    return value


def decode_extra_info(extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """`extra_info` as written by `dianjin.data.export`: null fields dropped, and the fields listed in
    `json_fields` (non-string task fields such as `choices`, JSON-encoded so every parquet row has
    one schema) decoded. Lists may come as numpy arrays or tuples (verl 0.3's pandas reader)."""
    info = {k: plain(v) for k, v in (extra_info or {}).items() if v is not None}
    json_fields = info.get("json_fields")
    for key in json_fields if isinstance(json_fields, list) else []:
        if isinstance(info.get(key), str):
            info[key] = json.loads(info[key])
    return info


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping | None = None, **_: Any
) -> dict[str, Any]:
    """verl >= 0.4: `{"score": 0.0 | 1.0, "acc": bool, "pred": str}`."""
    example = decode_extra_info(extra_info)
    example["gold"] = plain(ground_truth)
    verdict = get_task(data_source).score(solution_str, example, mode="reward")
    return {"score": float(verdict.reward), "acc": verdict.correct is True, "pred": verdict.pred or ""}


def compute_score_float(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping | None = None, **_: Any
) -> float:
    """verl 0.3.x (upstream's): the same score as a float."""
    return compute_score(data_source, solution_str, ground_truth, extra_info)["score"]


def reference_response(data_source: str, ground_truth: Any, extra_info: Mapping | None = None) -> str:
    """The task's reference answer for a row, rendered as a response in the target format (scores 1.0
    unless the task cannot verify it by rule)."""
    task = get_task(data_source)
    ref = str(task.reference({**decode_extra_info(extra_info), "gold": plain(ground_truth)}))
    return fmt.render("参考答案。", "", ref) if task.boxed else fmt.render("参考答案。", ref)


def version_tuple(version: str) -> tuple[int, ...]:
    """ "0.3.0.post1" -> (0, 3, 0); "0.10.0rc1" -> (0, 10, 0)."""
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def style_problem(style: str, verl_version: str) -> str | None:
    """Why `--verl-style style` does not fit this verl release, or None."""
    new = version_tuple(verl_version) >= CURRENT_SINCE
    if style == "upstream" and new:
        return (
            f"verl {verl_version} renamed actor.checkpoint.contents to save_contents (since 0.4.1): "
            "export with --verl-style current"
        )
    if style == "current" and not new:
        return (
            f"verl {verl_version} predates actor.checkpoint.save_contents (0.4.1) and, before 0.4, rejects "
            "a dict score: export with --verl-style upstream"
        )
    return None


def installed_verl() -> str | None:
    """The version of the verl installed in this Python (from its metadata, without importing it)."""
    from importlib import metadata

    try:
        return metadata.version("verl")
    except metadata.PackageNotFoundError:
        return None


def reward_key(version: str | None = None) -> str:
    """The Hydra key verl reads the custom reward function from: `reward.custom_reward_function` from
    verl 0.7.1 (required from 0.9.0), else `custom_reward_function`. `version`: the installed verl's
    when None (no verl: the top-level key, upstream's)."""
    version = version or installed_verl()
    new = version is not None and version_tuple(version) >= REWARD_UNDER_REWARD_SINCE
    return "reward.custom_reward_function" if new else "custom_reward_function"


def missing_dependency(data_source: str, e: ImportError) -> str:
    hint = f"pip install '{MATH_VERIFY_FOR_VERL}'" if (e.name or "").startswith("math_verify") else "install it"
    return (
        f"the {data_source} reward cannot import {e.name or e}: {hint} in this Python "
        "(in verl's environment math-verify needs the antlr4_9_3 extra, Hydra's antlr)"
    )


def check_row(fn: Callable[..., Any], row: Mapping[str, Any], float_only: bool = False) -> str | None:
    """Score a parquet row's reference answer (must be 1.0) and an unformatted answer (must be 0.0)
    through `fn`, called as verl calls it: None when both hold, else why not. ImportError (a missing
    dependency) propagates."""
    ds, gt, info = row["data_source"], row["reward_model"]["ground_truth"], row.get("extra_info")
    results = [
        fn(data_source=ds, solution_str=text, ground_truth=gt, extra_info=info)
        for text in (reference_response(ds, gt, info), "no answer")
    ]
    if float_only and not all(isinstance(r, float) for r in results):
        return f"{getattr(fn, '__name__', fn)} returned {type(results[0]).__name__}; verl 0.3 needs a float"
    score = [r["score"] if isinstance(r, Mapping) else r for r in results]
    if score != [1.0, 0.0]:
        return (
            f"the reference answer scored {score[0]!r} (expected 1.0), an unformatted one {score[1]!r} (expected 0.0)"
        )
    return None


def preflight(fn_name: str, parquet_files: list[str], style: str | None = None, tries: int = 5) -> int:
    """`run_grpo.sh`'s check in verl's Python: rows of each file, read with pandas as verl 0.3 reads
    them, scored through `fn_name` of the module verl loaded (this file, by path) until one row per
    data_source passes `check_row` (a data_source fails when none of its first `tries` rows does; a
    missing dependency fails at once); and, when verl is installed, that `style` fits its version.
    Prints what failed; returns the exit status."""
    import sys

    import pandas as pd

    fn = globals()[fn_name]
    problems = []
    version = installed_verl()
    if version is None:
        print("preflight: verl is not installed in this Python (its version is not checked)", file=sys.stderr)
    if style and version and (why := style_problem(style, version)):
        problems.append(why)
    done: set[str] = set()
    failed: dict[str, list[str]] = {}
    for path in parquet_files:
        frame = pd.read_parquet(path)
        for i in range(len(frame)):
            row = frame.iloc[i].to_dict()
            ds = row["data_source"]
            if ds in done or len(failed.get(ds, [])) >= tries:
                continue
            try:
                why = check_row(fn, row, float_only=fn_name == ENTRY_POINTS["upstream"])
            except ImportError as e:
                why = missing_dependency(ds, e)
                failed.setdefault(ds, []).extend([why] * tries)
                continue
            if why:
                failed.setdefault(ds, []).append(f"{path} row {i}: {why}")
            else:
                done.add(ds)
    problems += [f"{ds}: {whys[0]}" for ds, whys in failed.items() if ds not in done]
    for p in problems:
        print(f"preflight: {p}", file=sys.stderr)
    if not problems:
        print(f"reward ok: {fn_name} scores {', '.join(sorted(done))}" + (f" (verl {version})" if version else ""))
    return 1 if problems else 0
