"""Per-task statistics from scored sample rows, the Markdown results table, and run comparison.

Scores: a sample scores 1 when its verdict is correct, else 0 (wrong, no answer, truncated, a
failed request, or unverifiable). Items are questions: an item's score is the mean over its K
samples, accuracy is the mean over items (= mean@K), and the 95% CI is a bootstrap over items.
A task whose samples are all unverifiable (e.g. CFLUE-OE without a judge) has accuracy None.

Accuracies are fractions in [0, 1] in JSON; the Markdown shows percent, like the paper.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dianjin.eval import paper, stats
from dianjin.files import atomic_write_json, atomic_write_text, iter_jsonl


def sample_score(row: dict[str, Any]) -> float:
    return 1.0 if row.get("correct") is True else 0.0


def per_item(rows: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """item -> the scores of its samples, in run order."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        out[str(r["item"])].append((int(r.get("run", 0)), sample_score(r)))
    return {k: [s for _, s in sorted(v)] for k, v in out.items()}


def _mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def task_stats(
    rows: list[dict[str, Any]], *, expected: int, n_runs: int, format_applies: bool = True, n_boot: int = stats.N_BOOT
) -> dict[str, Any]:
    """Statistics of one task's rows (one per finished unit); `expected` is the number of units."""
    items = per_item(rows)
    means = stats.item_means(items.values())
    verified = [r for r in rows if r.get("correct") is not None]
    acc = stats.mean_at_k(items.values()) if verified else None
    ci = stats.bootstrap_ci(means, n_boot=n_boot) if verified else None
    by_run: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        by_run[int(r.get("run", 0))].append(sample_score(r))
    run_accs = [_mean(by_run[k]) for k in sorted(by_run)]
    out: dict[str, Any] = {
        "n": len(items),
        "samples": len(rows),
        "accuracy": acc,
        "ci95": list(ci) if ci else None,
        "k": n_runs,
        "correct": sum(1 for r in rows if r.get("correct") is True),
        "wrong": sum(1 for r in rows if r.get("correct") is False and not r.get("error")),
        "unverified": sum(1 for r in rows if r.get("correct") is None and not r.get("error")),
        "errors": sum(1 for r in rows if r.get("error")),
        "truncated": sum(1 for r in rows if r.get("finish_reason") == "length"),
        "missing": max(0, expected - len(rows)),
        "format_rate": _mean([float(bool(r.get("format_ok"))) for r in rows]) if format_applies and rows else None,
        "calls_per_item": _mean([float(r.get("calls", 1)) for r in rows if not r.get("error")]),
        "tokens_per_item": _mean([float(_tokens(r)) for r in rows if not r.get("error")]),
        "completion_tokens_per_item": _mean(
            [
                float(r["tokens"]["completion"])
                for r in rows
                if not r.get("error") and "completion" in (r.get("tokens") or {})
            ]
        ),
        "latency_mean": _mean(
            [float(r["latency"]) for r in rows if r.get("latency") is not None and not r.get("error")]
        ),
    }
    if n_runs > 1 and verified:
        out["mean_at_k"] = acc
        out["pass_at_k"] = {str(k): stats.pass_at_k(items.values(), k) for k in sorted({1, n_runs})}
        out["run_accuracies"] = run_accs
        out["std_over_runs"] = statistics.pstdev([a for a in run_accs if a is not None]) if len(run_accs) > 1 else 0.0
    rule = [r for r in rows if "rule_correct" in r]
    if rule:
        out["accuracy_rule"] = _mean([1.0 if r["rule_correct"] is True else 0.0 for r in rule])
    judged = [r for r in rows if r.get("judge") is not None]
    if judged:
        out["judge_calls"] = len(judged)
    return out


def _tokens(row: dict[str, Any]) -> int:
    """Prompt + completion tokens of a row (a multi-agent row stores only its `total`)."""
    t = row.get("tokens") or {}
    if "total" in t:
        return int(t["total"])
    return int(t.get("prompt", 0)) + int(t.get("completion", 0))


def average(task_summaries: dict[str, dict[str, Any]], systems: set[str]) -> tuple[float | None, list[str]]:
    """Mean accuracy over the evaluated tasks (not the multi-agent systems) that have one."""
    tasks = [t for t, s in task_summaries.items() if t not in systems and s.get("accuracy") is not None]
    return (_mean([task_summaries[t]["accuracy"] for t in tasks]), tasks)


# --- Markdown -------------------------------------------------------------------------------------
def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def _acc_cell(s: dict[str, Any] | None) -> str:
    if not s or s.get("accuracy") is None:
        return "–"
    ci = s.get("ci95")
    return f"{pct(s['accuracy'])} [{pct(ci[0], 1)}, {pct(ci[1], 1)}]" if ci else pct(s["accuracy"])


def results_table(runs: Sequence[tuple[str, dict[str, Any]]], paper_rows: Sequence[str] = paper.DEFAULT_ROWS) -> str:
    """Accuracy per task (95% CI) for each run, the average, then the paper's rows on the same tasks."""
    systems = {t for _, s in runs for t, ts in s["tasks"].items() if ts.get("system")}
    tasks: list[str] = []
    for _, s in runs:
        tasks += [t for t in s["tasks"] if t not in tasks and t not in systems]
    tasks.sort(key=lambda t: (paper.PAPER_TASKS.index(t) if t in paper.PAPER_TASKS else 99, t))
    head = "| model | " + " | ".join(paper.label(t) for t in tasks) + " | Avg |"
    lines = [head, "|---|" + "---:|" * (len(tasks) + 1)]
    for name, s in runs:
        cells = [_acc_cell(s["tasks"].get(t)) for t in tasks]
        lines.append(f"| **{name}** (ours) | " + " | ".join(cells) + f" | {pct(s.get('average'))} |")
    paper_tasks = [t for t in tasks if t in paper.PAPER_TASKS]
    for model in paper_rows:
        row = paper.PAPER_ROWS[model]
        cells = [f"{row[t]:.2f}" if t in row else "–" for t in tasks]
        avg = paper.paper_average(row, paper_tasks)
        lines.append(f"| {model} (paper) | " + " | ".join(cells) + f" | {'–' if avg is None else f'{avg:.2f}'} |")
    return "\n".join(lines)


def _ci_cell(s: dict[str, Any]) -> str:
    ci = s.get("ci95")
    return "–" if not ci else f"{pct(ci[0])}–{pct(ci[1])}"


def _num(x: float | None, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def details_table(summary: dict[str, Any]) -> str:
    """One line per task: n, samples, accuracy, CI, the guessing floor, mean@k, pass@k, format rate,
    failures, cost."""
    head = (
        "| task | items | samples | acc % | 95% CI | guess % | mean@k | pass@k | format % | unverified | errors | "
        "truncated | missing | calls/item | tokens/item |"
    )
    lines = [head, "|---|" + "---:|" * 14]
    for t, s in summary["tasks"].items():
        pk = s.get("pass_at_k") or {}
        pass_k = ", ".join(f"@{k} {pct(v)}" for k, v in pk.items()) or "–"
        lines.append(
            f"| {paper.label(t)} | {s['n']} | {s['samples']} | {pct(s.get('accuracy'))} | "
            f"{_ci_cell(s)} | {pct(s.get('chance'))} | {pct(s.get('mean_at_k'))} | {pass_k} | "
            f"{pct(s.get('format_rate'), 1)} | {s['unverified']} | {s['errors']} | {s['truncated']} | "
            f"{s['missing']} | {_num(s.get('calls_per_item'), 2)} | {_num(s.get('tokens_per_item'), 0)} |"
        )
    return "\n".join(lines)


def ccc_table(summary: dict[str, Any]) -> str | None:
    """The paper's CCC comparison: one call vs the multi-agent workflow (accuracy, calls, tokens)."""
    single, multi = summary["tasks"].get("ccc"), summary["tasks"].get("ccc_agents")
    if not single or not multi:
        return None
    settings = summary.get("settings", {})
    lines = ["| system | model | acc % | 95% CI | calls/item | tokens/item |", "|---|---|---:|---:|---:|---:|"]
    for label, s, model in (
        ("single call", single, settings.get("model")),
        ("multi-agent workflow", multi, settings.get("agents_model") or settings.get("model")),
    ):
        lines.append(
            f"| {label} | {model} | {pct(s.get('accuracy'))} | {_ci_cell(s)} | "
            f"{_num(s.get('calls_per_item'), 2)} | {_num(s.get('tokens_per_item'), 0)} |"
        )
    lines.append(
        f"\nPaper (Table 6, second-hand): the multi-agent system makes {paper.MULTI_AGENT_CALLS_PER_ITEM} "
        "calls per item; DianJin-R1 makes one."
    )
    return "\n".join(lines)


def markdown(summary: dict[str, Any], name: str | None = None) -> str:
    """The run's `summary.md`."""
    st = summary.get("settings", {})
    name = name or st.get("model") or "model"
    parts = [
        f"# Evaluation: {name}",
        "",
        f"Endpoint model `{st.get('model')}`; tasks {', '.join(summary['tasks'])}; {summary.get('created', '')}.",
        "",
        "Accuracy in percent with a 95% bootstrap confidence interval over items; the average is over "
        "our tasks (multi-agent systems excluded), and the paper's rows are averaged over the same tasks.",
        "",
        results_table([(name, summary)]),
        "",
        "## Per task",
        "",
        details_table(summary),
    ]
    ccc = ccc_table(summary)
    if ccc:
        parts += ["", "## CCC: single call vs multi-agent workflow", "", ccc]
    parts += ["", "## Settings", ""]
    for t, ts in st.get("tasks", {}).items():
        parts.append(
            f"- **{paper.label(t)}**: `{ts.get('data')}` (sha256 {str(ts.get('data_sha256'))[:12]}), "
            f"n={ts.get('n')}, limit={ts.get('limit')}, temperature={ts.get('temperature')}, "
            f"top_p={ts.get('top_p')}, max_tokens={ts.get('max_tokens')}"
            + (f", judge `{ts['judge_model']}`" if ts.get("judge_model") else "")
        )
    parts += ["", f"Paper numbers: {paper.SOURCE}.", ""]
    return "\n".join(parts)


# --- comparison -------------------------------------------------------------------------------------
def load_rows(path: Path) -> dict[str, dict[str, Any]]:
    """A samples file as key -> row; a later row for the same key replaces an earlier one."""
    rows: dict[str, dict[str, Any]] = {}
    if path.exists():
        for r in iter_jsonl(path):
            rows[str(r.get("key"))] = r
    return rows


def compare_runs(run_a: Path, run_b: Path, *, n_boot: int = stats.N_BOOT) -> dict[str, Any]:
    """Per task, over the items both runs scored: B - A with a paired bootstrap CI."""
    out: dict[str, Any] = {"a": str(run_a), "b": str(run_b), "tasks": {}}
    names_a = {p.stem for p in (run_a / "samples").glob("*.jsonl")}
    names_b = {p.stem for p in (run_b / "samples").glob("*.jsonl")}
    if not names_a or not names_b:
        raise FileNotFoundError(f"no samples/*.jsonl in {run_a if not names_a else run_b}")
    for task in sorted(names_a & names_b):
        ia = per_item(load_rows(run_a / "samples" / f"{task}.jsonl").values())
        ib = per_item(load_rows(run_b / "samples" / f"{task}.jsonl").values())
        shared = sorted(set(ia) & set(ib))
        a = [sum(ia[k]) / len(ia[k]) for k in shared]
        b = [sum(ib[k]) / len(ib[k]) for k in shared]
        d = stats.paired_bootstrap(a, b, n_boot=n_boot)
        out["tasks"][task] = {
            "only_a": len(set(ia) - set(ib)),
            "only_b": len(set(ib) - set(ia)),
            **(d.to_dict() if d else {"n": 0}),
        }
    return out


def compare_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"A = `{result['a']}`, B = `{result['b']}`; B − A in points, paired bootstrap 95% CI over shared items.",
        "",
        "| task | items | A % | B % | B − A | 95% CI | p |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, d in result["tasks"].items():
        if not d.get("n"):
            lines.append(f"| {paper.label(t)} | 0 | – | – | – | – | – |")
            continue
        lines.append(
            f"| {paper.label(t)} | {d['n']} | {pct(d['mean_a'])} | {pct(d['mean_b'])} | "
            f"{100 * d['diff']:+.2f} | [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] | {d['p']:.3f} |"
        )
    return "\n".join(lines)


def write_comparison(run_a: Path, run_b: Path, out: Path | None = None) -> str:
    """`dianjin eval compare A B [--output-dir DIR]`: the comparison's Markdown, also written with its JSON
    to DIR/compare.md and DIR/compare.json when `out` is given."""
    result = compare_runs(run_a, run_b)
    text = compare_markdown(result)
    if out is not None:
        atomic_write_json(out / "compare.json", result)
        atomic_write_text(out / "compare.md", text + "\n")
    return text


__all__ = [
    "average",
    "ccc_table",
    "compare_markdown",
    "compare_runs",
    "details_table",
    "load_rows",
    "markdown",
    "pct",
    "per_item",
    "results_table",
    "sample_score",
    "task_stats",
    "write_comparison",
]
