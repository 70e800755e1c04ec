"""`dianjin report`: a static HTML report (and Markdown) of evaluation and training runs.

    dianjin report RUN_DIR... --output-dir DIR [--paper-rows MODEL,...] [--max-per-task N] [--include-correct]

Each RUN_DIR is an evaluation run (`summary.json`, `samples/*.jsonl` from `dianjin eval`), a
training run (`metrics.jsonl` from SFT/GRPO), or a folder holding such runs one level down.
DIR gets:

- `index.html`: one self-contained page (no network): accuracy per task with 95% CIs beside the
  paper's numbers, the CCC single-call vs multi-agent comparison, training curves, and an error
  browser: every wrong, unverified or failed sample's question, reasoning and answer, filterable by
  run, task and verdict (and a text search) with a little inline JavaScript. The URL hash sets the
  filters (`index.html#task=cflue&verdict=wrong&q=text`; `&open=1` expands the samples shown).
  Chinese reads as is: UTF-8, and a CSS font stack with CJK fallbacks (Noto/Source Han, PingFang,
  YaHei, WenQuanYi);
- `report.md`: the same tables, the plots, and error counts (the browser is HTML only);
- PNG plots (`dianjin.eval.plots`: matplotlib, Agg, no pyplot state): `accuracy.png` and
  `curve_<metric>.png` for loss, reward (and each `rewards/<name>/mean`), format rate, accuracy,
  completion length and KL, one line per training run (a faint raw line and its moving average
  when there are many steps).
  Plot labels use a CJK font when one is installed (e.g. Debian's fonts-wqy-microhei); without one,
  non-ASCII characters in run names are replaced so no glyph goes missing.

Every model-generated string is HTML-escaped: a response containing `<script>` is shown, not run.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dianjin.eval import paper, summarize
from dianjin.eval.plots import CURVES, Plot, curve_series, plot_accuracy, plot_curves
from dianjin.eval.plots import cjk_font as _cjk_font  # looked up at each make_report (tests patch it here)
from dianjin.files import atomic_write_text, iter_jsonl

VERDICTS = ("wrong", "unverified", "error", "correct")
TEXT_CHARS = 6000  # tail of the reasoning / response shown per sample


# --- reading runs ------------------------------------------------------------------------------------
@dataclass
class EvalRun:
    name: str
    path: Path
    summary: dict[str, Any]


@dataclass
class TrainRun:
    name: str
    path: Path
    metrics: list[dict[str, Any]] = field(default_factory=list)


def _is_eval(p: Path) -> bool:
    return (p / "summary.json").is_file()


def _is_train(p: Path) -> bool:
    return (p / "metrics.jsonl").is_file()


def find_runs(paths: Iterable[Path]) -> tuple[list[EvalRun], list[TrainRun]]:
    """Evaluation and training runs in `paths` (or one level below a path that is neither)."""
    evals: list[EvalRun] = []
    trains: list[TrainRun] = []
    for p in paths:
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: not a directory")
        found = (
            [p]
            if (_is_eval(p) or _is_train(p))
            else sorted(c for c in p.iterdir() if c.is_dir() and (_is_eval(c) or _is_train(c)))
        )
        if not found:
            raise FileNotFoundError(
                f"{p}: no summary.json (eval run) or metrics.jsonl (training run) here or one level down"
            )
        for run in found:
            name = run.name if run == p else f"{p.name}/{run.name}"
            if _is_eval(run):
                evals.append(EvalRun(name, run, json.loads((run / "summary.json").read_text(encoding="utf-8"))))
            if _is_train(run):
                trains.append(TrainRun(name, run, list(iter_jsonl(run / "metrics.jsonl"))))
    return evals, trains


def verdict_of(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "error"
    return {True: "correct", False: "wrong"}.get(row.get("correct"), "unverified")  # type: ignore[arg-type]


def error_rows(run: EvalRun, *, max_per_task: int, include_correct: bool) -> list[dict[str, Any]]:
    """The run's samples to browse: not correct (and correct ones if asked), at most N per task."""
    out = []
    for task in run.summary.get("tasks", {}):
        rows = summarize.load_rows(run.path / "samples" / f"{task}.jsonl").values()
        picked = [r for r in rows if include_correct or verdict_of(r) != "correct"]
        out += [{**r, "_task": task, "_run": run.name} for r in picked[:max_per_task]]
    return out


# --- HTML ----------------------------------------------------------------------------------------------
CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans CJK SC", "Source Han Sans SC",
       "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "Noto Sans", sans-serif;
       margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #1f2328; line-height: 1.5; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.paper td { color: var(--muted); }
img { max-width: 100%; border: 1px solid var(--line); margin: 0.5rem 0; }
.filters { position: sticky; top: 0; background: #fff; padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
.filters select, .filters input { margin-right: 0.8rem; font: inherit; }
details.sample { border: 1px solid var(--line); border-radius: 6px; margin: 0.4rem 0; padding: 0.3rem 0.6rem; }
details.sample summary { cursor: pointer; }
.badge { display: inline-block; padding: 0 0.4rem; border-radius: 4px; color: #fff; font-size: 0.8rem; }
.badge.wrong, .badge.error { background: var(--bad); } .badge.unverified { background: var(--warn); }
.badge.correct { background: var(--ok); }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 0.5rem; border-radius: 4px;
      font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Noto Sans Mono CJK SC", "WenQuanYi Micro Hei Mono",
      monospace; font-size: 0.85rem; max-height: 28rem; overflow: auto; }
.muted { color: var(--muted); }
"""

# Installed first, so an error anywhere later is recorded on <html data-js-errors="...">.
JS_GUARD = """
window.addEventListener('error', function (e) {
  var el = document.documentElement;
  el.setAttribute('data-js-errors', (el.getAttribute('data-js-errors') || '') + String(e.message) + ';');
});
"""

JS_FILTER = """
(function () {
  var samples = Array.prototype.slice.call(document.querySelectorAll('details.sample'));
  var sel = {run: document.getElementById('f-run'), task: document.getElementById('f-task'),
             verdict: document.getElementById('f-verdict')};
  var search = document.getElementById('f-text');
  var count = document.getElementById('f-count');
  var openAll = false;
  function apply() {
    var q = search.value.trim().toLowerCase();
    var shown = 0;
    samples.forEach(function (el) {
      var ok = ['run', 'task', 'verdict'].every(function (k) {
        return !sel[k].value || el.getAttribute('data-' + k) === sel[k].value;
      }) && (!q || el.textContent.toLowerCase().indexOf(q) >= 0);
      el.hidden = !ok;
      if (ok) { shown += 1; if (openAll) { el.open = true; } }
    });
    count.textContent = shown + ' / ' + samples.length;
  }
  function fromHash() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    ['run', 'task', 'verdict'].forEach(function (k) {
      if (params.has(k)) { sel[k].value = params.get(k); }
    });
    if (params.has('q')) { search.value = params.get('q'); }
    openAll = params.get('open') === '1';
  }
  ['run', 'task', 'verdict'].forEach(function (k) { sel[k].addEventListener('change', apply); });
  search.addEventListener('input', apply);
  window.addEventListener('hashchange', function () { fromHash(); apply(); });
  fromHash();
  apply();
  document.documentElement.setAttribute('data-ready', '1');
})();
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _tail(text: Any, n: int = TEXT_CHARS) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else "……" + s[-n:]


def _html_results(evals: list[EvalRun], paper_rows: list[str]) -> str:
    systems = {t for r in evals for t, s in r.summary["tasks"].items() if s.get("system")}
    tasks: list[str] = []
    for r in evals:
        tasks += [t for t in r.summary["tasks"] if t not in tasks and t not in systems]
    tasks.sort(key=lambda t: (paper.PAPER_TASKS.index(t) if t in paper.PAPER_TASKS else 99, t))
    head = "".join(f"<th>{esc(paper.label(t))}</th>" for t in tasks)
    lines = [f"<table><thead><tr><th>model</th>{head}<th>Avg</th></tr></thead><tbody>"]
    for r in evals:
        cells = []
        for t in tasks:
            s = r.summary["tasks"].get(t) or {}
            ci = s.get("ci95")
            if s.get("accuracy") is None:
                cells.append("<td>–</td>")
                continue
            ci_text = (
                f" <span class='muted'>[{summarize.pct(ci[0], 1)}, {summarize.pct(ci[1], 1)}]</span>" if ci else ""
            )
            cells.append(f"<td><b>{summarize.pct(s['accuracy'])}</b>{ci_text}</td>")
        model = (r.summary.get("settings") or {}).get("model") or ""
        lines.append(
            f"<tr><td>{esc(r.name)} <span class='muted'>{esc(model)}</span></td>{''.join(cells)}"
            f"<td>{summarize.pct(r.summary.get('average'))}</td></tr>"
        )
    paper_tasks = [t for t in tasks if t in paper.PAPER_TASKS]
    for m in paper_rows:
        row = paper.PAPER_ROWS[m]
        paper_cells = "".join(f"<td>{row[t]:.2f}</td>" if t in row else "<td>–</td>" for t in tasks)
        avg = paper.paper_average(row, paper_tasks)
        avg_text = "–" if avg is None else f"{avg:.2f}"
        lines.append(f"<tr class='paper'><td>{esc(m)} (paper)</td>{paper_cells}<td>{avg_text}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _md_table_to_html(md: str) -> str:
    """A simple pipe table (as `summarize` writes them) as HTML; other lines as paragraphs."""
    out, rows = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
            continue
        if rows:
            out.append(_rows_html(rows))
            rows = []
        if line.strip():
            out.append(f"<p class='muted'>{esc(line)}</p>")
    if rows:
        out.append(_rows_html(rows))
    return "\n".join(out)


def _rows_html(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{esc(c.replace('**', ''))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{esc(c.replace('**', ''))}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sample_html(r: dict[str, Any]) -> str:
    v = verdict_of(r)
    task = r["_task"]
    reasoning = r.get("reasoning")
    response = r.get("response")
    parts = [
        f"<details class='sample' data-run='{esc(r['_run'])}' data-task='{esc(task)}' data-verdict='{v}'>",
        f"<summary><span class='badge {v}'>{v}</span> <b>{esc(paper.label(task))}</b> "
        f"<code>{esc(r.get('id'))}</code> #{esc(r.get('sample', 0))} · gold <b>{esc(r.get('gold'))}</b> · "
        f"pred <b>{esc(r.get('pred'))}</b> <span class='muted'>{esc(r['_run'])}</span></summary>",
        f"<p class='muted'>{esc(r.get('reason'))}"
        + (f" · finish_reason {esc(r.get('finish_reason'))}" if r.get("finish_reason") not in (None, "stop") else "")
        + (f" · error: {esc(r.get('error'))}" if r.get("error") else "")
        + "</p>",
        "<h4>Question</h4>",
        f"<pre lang='zh-CN'>{esc(_tail(r.get('question')))}</pre>",
    ]
    if reasoning:
        parts += ["<h4>Reasoning</h4>", f"<pre lang='zh-CN'>{esc(_tail(reasoning))}</pre>"]
    parts += ["<h4>Answer</h4>", f"<pre lang='zh-CN'>{esc(_tail(response))}</pre>"]
    if r.get("judge"):
        parts += ["<h4>Judge</h4>", f"<pre lang='zh-CN'>{esc(_tail(r.get('judge'), 2000))}</pre>"]
    parts.append("</details>")
    return "\n".join(parts)


def _options(values: Iterable[str], labels: dict[str, str] | None = None) -> str:
    return "<option value=''>all</option>" + "".join(
        f"<option value='{esc(v)}'>{esc((labels or {}).get(v, v))}</option>" for v in values
    )


def render_html(
    evals: list[EvalRun],
    trains: list[TrainRun],
    samples: list[dict[str, Any]],
    paper_rows: list[str],
    accuracy_png: bool,
    curves: list[tuple[str, str]],
) -> str:
    body = ["<h1>DianJin-R1 evaluation report</h1>"]
    if evals:
        body += [
            "<h2>Accuracy per task</h2>",
            "<p class='muted'>Percent, with a 95% bootstrap confidence interval over items. Paper rows: "
            f"{esc(paper.SOURCE)}; averaged over the same tasks.</p>",
            _html_results(evals, paper_rows),
        ]
        if accuracy_png:
            body.append("<img src='accuracy.png' alt='accuracy per task with confidence intervals'>")
        for r in evals:
            body += [f"<h3>{esc(r.name)}: per task</h3>", _md_table_to_html(summarize.details_table(r.summary))]
            ccc = summarize.ccc_table(r.summary)
            if ccc:
                body += [f"<h3>{esc(r.name)}: CCC single call vs multi-agent workflow</h3>", _md_table_to_html(ccc)]
    if curves:
        body += ["<h2>Training curves</h2>", "<p class='muted'>" + ", ".join(esc(t.name) for t in trains) + "</p>"]
        body += [f"<img src='{esc(name)}' alt='{esc(panel)}'>" for panel, name in curves]
    if evals:
        runs = sorted({s["_run"] for s in samples})
        tasks = sorted({s["_task"] for s in samples})
        body += [
            "<h2>Error browser</h2>",
            "<div class='filters'>"
            f"run <select id='f-run'>{_options(runs)}</select>"
            f"task <select id='f-task'>{_options(tasks, {t: paper.label(t) for t in tasks})}</select>"
            f"verdict <select id='f-verdict'>{_options(VERDICTS)}</select>"
            "search <input id='f-text' type='search' placeholder='id, 文本…'>"
            "<span id='f-count' class='muted'></span></div>",
        ]
        body += [_sample_html(s) for s in samples] or ["<p>No wrong samples.</p>"]
    js = JS_FILTER if evals else "document.documentElement.setAttribute('data-ready', '1');"
    script = f"<script>{js}</script>"
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>DianJin-R1 report</title>\n<style>{CSS}</style>\n<script>{JS_GUARD}</script>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n{script}\n</body>\n</html>\n"
    )


# --- Markdown ----------------------------------------------------------------------------------------------
def render_markdown(
    evals: list[EvalRun],
    trains: list[TrainRun],
    samples: list[dict[str, Any]],
    paper_rows: list[str],
    accuracy_png: bool,
    curves: list[tuple[str, str]],
) -> str:
    parts = ["# DianJin-R1 evaluation report", ""]
    if evals:
        parts += [
            "## Accuracy per task",
            "",
            "Percent with a 95% bootstrap CI over items; paper rows averaged over the same tasks.",
            "",
            summarize.results_table([(r.name, r.summary) for r in evals], paper_rows),
            "",
        ]
        if accuracy_png:
            parts += ["![accuracy per task](accuracy.png)", ""]
        for r in evals:
            parts += [f"### {r.name}", "", summarize.details_table(r.summary), ""]
            ccc = summarize.ccc_table(r.summary)
            if ccc:
                parts += ["CCC, single call vs multi-agent workflow:", "", ccc, ""]
    if curves:
        parts += ["## Training curves", "", "Runs: " + ", ".join(t.name for t in trains), ""]
        parts += [f"![{panel}]({name})" for panel, name in curves] + [""]
    if evals:
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for s in samples:
            c = counts.setdefault((s["_run"], s["_task"]), {v: 0 for v in VERDICTS})
            c[verdict_of(s)] += 1
        parts += [
            "## Samples in the error browser (index.html)",
            "",
            "| run | task | " + " | ".join(VERDICTS) + " |",
            "|---|---|" + "---:|" * len(VERDICTS),
        ]
        parts += [
            f"| {run} | {paper.label(task)} | " + " | ".join(str(c[v]) for v in VERDICTS) + " |"
            for (run, task), c in sorted(counts.items())
        ]
        parts.append("")
    return "\n".join(parts)


# --- entry points --------------------------------------------------------------------------------------------
def make_report(
    runs: list[Path],
    out: Path,
    *,
    paper_rows: list[str] | None = None,
    max_per_task: int = 500,
    include_correct: bool = False,
) -> Path:
    """Write DIR/index.html, DIR/report.md and the PNG plots; returns the HTML path."""
    paper_rows = list(paper.DEFAULT_ROWS if paper_rows is None else paper_rows)
    unknown = [m for m in paper_rows if m not in paper.PAPER_ROWS]
    if unknown:
        raise KeyError(f"unknown paper rows {unknown}; known: {', '.join(paper.PAPER_ROWS)}")
    evals, trains = find_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    plot = Plot(_cjk_font())
    accuracy_png = bool(evals) and plot_accuracy(evals, paper_rows, out / "accuracy.png", plot)
    curves = plot_curves(trains, out, plot)
    samples = [s for r in evals for s in error_rows(r, max_per_task=max_per_task, include_correct=include_correct)]
    atomic_write_text(out / "index.html", render_html(evals, trains, samples, paper_rows, accuracy_png, curves))
    atomic_write_text(out / "report.md", render_markdown(evals, trains, samples, paper_rows, accuracy_png, curves))
    return out / "index.html"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dianjin report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="eval run dirs, training run dirs, or folders holding them")
    ap.add_argument(
        "--output-dir",
        "--out",
        dest="out",
        type=Path,
        required=True,
        help="output folder (index.html, report.md, *.png); --out: alias",
    )
    ap.add_argument(
        "--paper-rows", help=f"comma-separated paper models to show (default: {','.join(paper.DEFAULT_ROWS)})"
    )
    ap.add_argument("--max-per-task", type=int, default=500, help="samples per task in the error browser")
    ap.add_argument("--include-correct", action="store_true", help="also list correct samples in the browser")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = [m.strip() for m in args.paper_rows.split(",") if m.strip()] if args.paper_rows else None
    try:
        path = make_report(
            args.runs, args.out, paper_rows=rows, max_per_task=args.max_per_task, include_correct=args.include_correct
        )
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"dianjin report: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_name('report.md')}", file=sys.stderr)
    return 0


__all__ = ["CURVES", "EvalRun", "TrainRun", "curve_series", "find_runs", "main", "make_report", "verdict_of"]
