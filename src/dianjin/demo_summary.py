"""The demo's `summary.json` / `summary.md`: what the recipe did to the model, with its uncertainty.

For each evaluation point (before training, after SFT, after GRPO) the format rate and the accuracy
are pooled over every held-out question of every task (one question, one vote; with `eval.n > 1`
a question's mean over its samples), each with its 95% percentile-bootstrap CI over questions. The
two steps of the recipe are paired comparisons over the questions both points answered: SFT minus
base, GRPO minus SFT, the mean difference with its paired-bootstrap 95% CI (`dianjin.eval.stats`).
A step "helps" when its CI lies above 0, "hurts" when below, and is "no change beyond noise" when
the CI contains 0. Beside the points, the guessing floor: the accuracy a model that follows the format
reaches by guessing uniformly among each question's options (`Task.chance`; 0 for open answers).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from dianjin.eval import stats
from dianjin.eval.summarize import load_rows

POINTS = (("before training", "eval_base"), ("after SFT", "eval_sft"), ("after GRPO", "eval_grpo"))
STEPS = (("SFT - base", "eval_base", "eval_sft"), ("GRPO - SFT", "eval_sft", "eval_grpo"))
METRICS = (("format_rate", "format_ok"), ("accuracy", "correct"))


def item_scores(run_dir: Path, *more: Path) -> dict[str, dict[str, float]]:
    """metric -> {task/item: the question's mean over its samples} from an eval run's samples/ (and
    those of `more` runs of the same questions: every sample of every run counts once)."""
    raw: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m, _ in METRICS}
    for path in sorted(p for d in (run_dir, *more) for p in (d / "samples").glob("*.jsonl")):
        for row in load_rows(path).values():
            key = f"{path.stem}/{row['item']}"
            for metric, field in METRICS:
                raw[metric][key].append(1.0 if row.get(field) is True else 0.0)
    return {m: {k: sum(v) / len(v) for k, v in per.items()} for m, per in raw.items()}


def _ci(values: list[float], n_boot: int) -> dict[str, Any]:
    ci = stats.bootstrap_ci(values, n_boot=n_boot)
    return {"value": sum(values) / len(values) if values else None, "n": len(values), "ci95": list(ci) if ci else None}


def point_stats(scores: dict[str, dict[str, float]], n_boot: int = stats.N_BOOT) -> dict[str, Any]:
    """{metric: {value, n, ci95}} pooled over questions."""
    return {m: _ci(list(scores[m].values()), n_boot) for m, _ in METRICS}


def step_stats(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], n_boot: int = stats.N_BOOT
) -> dict[str, Any]:
    """{metric: {n, mean_a, mean_b, diff, lo, hi, p, verdict}}: after - before over shared questions."""
    out = {}
    for m, _ in METRICS:
        shared = sorted(set(before[m]) & set(after[m]))
        d = stats.paired_bootstrap([before[m][k] for k in shared], [after[m][k] for k in shared], n_boot=n_boot)
        if d is None:
            out[m] = {"n": 0, "verdict": "no shared questions"}
            continue
        verdict = "helps" if d.lo > 0 else "hurts" if d.hi < 0 else "no change beyond noise"
        out[m] = {**d.to_dict(), "verdict": verdict}
    return out


def learning(out: Path, n_boot: int = stats.N_BOOT) -> dict[str, Any]:
    """Points and steps of a finished demo under `out`."""
    scores = {name: item_scores(out / name) for _, name in POINTS}
    return {
        "points": {label: point_stats(scores[name], n_boot) for label, name in POINTS},
        "steps": {label: step_stats(scores[a], scores[b], n_boot) for label, a, b in STEPS},
    }


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Per-task accuracy and format rate from one `dianjin eval` summary (each task's own CI inside)."""
    tasks = summary.get("tasks", {})
    return {
        "average": summary.get("average"),
        "tasks": {
            t: {
                "n": s.get("n"),
                "accuracy": s.get("accuracy"),
                "ci95": s.get("ci95"),
                "format_rate": s.get("format_rate"),
                "chance": s.get("chance"),
            }
            for t, s in tasks.items()
        },
    }


def guessing_floor(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The accuracy of a uniform guess among each question's options (0 for open answers), pooled over
    the questions of one evaluation point's `headline` (one question, one vote) and per task."""
    tasks = {t: s for t, s in evaluation.get("tasks", {}).items() if s.get("chance") is not None and s.get("n")}
    n = sum(s["n"] for s in tasks.values())
    pooled = sum(s["n"] * s["chance"] for s in tasks.values()) / n if n else None
    return {"value": pooled, "n": n, "tasks": {t: s["chance"] for t, s in tasks.items()}}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _with_ci(p: dict[str, Any]) -> str:
    if p.get("value") is None:
        return "-"
    lo, hi = p["ci95"]
    return f"{_pct(p['value'])} [{_pct(lo)}, {_pct(hi)}]"


def _diff(d: dict[str, Any]) -> str:
    if not d.get("n"):
        return "-"
    return f"{100 * d['diff']:+.1f} pts [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] ({d['verdict']})"


def render(s: dict[str, Any]) -> str:
    """summary.md: points with CIs, the guessing floor, paired steps, per-task accuracy, GRPO curve ends,
    seconds per stage."""
    pts, steps, evals = s["learning"]["points"], s["learning"]["steps"], s["evaluations"]
    n = next(iter(pts.values()))["accuracy"]["n"]
    tasks = sorted({t for e in evals.values() for t in e["tasks"]})
    lines = [
        f"# DianJin-R1 demo: {s['out']}",
        "",
        f"model: {s['model']}  ·  data: {s['data']}",
        "",
        f"Held-out questions: {n} (pooled over {', '.join(tasks)}); 95% bootstrap CIs in brackets.",
        "",
        "| point | format rate | accuracy | " + " | ".join(tasks) + " |",
        "|---|---|---|" + "---:|" * len(tasks),
    ]
    for label, p in pts.items():
        cells = [_pct(evals[label]["tasks"].get(t, {}).get("accuracy")) for t in tasks]
        lines.append(
            f"| {label} | {_with_ci(p['format_rate'])} | {_with_ci(p['accuracy'])} | " + " | ".join(cells) + " |"
        )
    floor = s.get("guessing_floor") or {}
    if floor.get("value") is not None:
        cells = [_pct(floor["tasks"].get(t)) for t in tasks]
        lines.append(f"| guessing (uniform over options) | - | {_pct(floor['value'])} | " + " | ".join(cells) + " |")
    lines += ["", "| step (paired, same questions) | format rate | accuracy |", "|---|---|---|"]
    lines += [f"| {label} | {_diff(d['format_rate'])} | {_diff(d['accuracy'])} |" for label, d in steps.items()]
    g = s["grpo"]
    if "reward" in g:
        lines += [
            "",
            f"GRPO ({g['steps']} steps on {s['grpo_data']}): reward {g['reward']['first']:.3f} -> "
            f"{g['reward']['last']:.3f} (mean of the first / last logged steps)",
        ]
    lines += ["", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in s["stages"].items()]
    lines += [
        f"| **total** | **{s['total_seconds']:.1f}** |",
        "",
        f"this invocation: {s['this_run_seconds']:.1f} s  ·  report: {s['report']}",
    ]
    return "\n".join(lines) + "\n"
