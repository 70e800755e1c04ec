"""The report's PNG plots, drawn with matplotlib's object API (Agg, `Figure`, no pyplot state, so
safe in any thread): `plot_accuracy` draws accuracy per task as grouped bars with 95% CIs, one bar
per evaluation run, with the paper's rows as markers (`accuracy.png`); `plot_curves` draws one
`curve_<panel>.png` per metric panel of `CURVES` (loss, reward and each `rewards/<name>/mean`,
format rate, accuracy, completion length, KL) that has data, one line per training run, a faint
raw line and its moving average when there are many steps; `curve_series` picks a panel's series
out of `metrics.jsonl` rows. `Plot` holds the fonts: DejaVu Sans with a CJK fallback when one of
`CJK_FONTS` is installed (`cjk_font()`); without one, non-ASCII characters in labels are replaced
so no glyph goes missing. `dianjin.eval.report` calls these and re-exports `CURVES` and
`curve_series`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dianjin.eval import paper

if TYPE_CHECKING:
    from dianjin.eval.report import EvalRun, TrainRun

# metric panel -> the metrics.jsonl keys drawn in it (a "*" matches one path segment)
CURVES: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "train/loss"),
    "reward": ("reward", "rewards/*/mean"),
    "format_rate": ("format_rate",),
    "accuracy": ("accuracy",),
    "completion_length": ("completions/mean_length", "completion_length"),
    "kl": ("kl",),
}
CURVE_TITLES = {
    "loss": "Training loss",
    "reward": "Reward",
    "format_rate": "Format rate",
    "accuracy": "Accuracy",
    "completion_length": "Mean completion length (tokens)",
    "kl": "KL divergence",
}
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
SMOOTH_MIN_POINTS = 50


def cjk_font() -> str | None:
    """The first of CJK_FONTS that matplotlib can find, or None. matplotlib lists the system's fonts
    once and caches the list (~/.cache/matplotlib): on a miss, font files installed since are added."""
    from matplotlib import font_manager

    manager = font_manager.fontManager

    def first() -> str | None:
        names = {entry.name for entry in manager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    if (found := first()) is None:
        known = {entry.fname for entry in manager.ttflist}
        for path in sorted(set(font_manager.findSystemFonts()) - known):
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read
                continue
        found = first()
    return found


class Plot:
    """Figures without pyplot: no global state, safe in any thread. `cjk`: a CJK font (`cjk_font()`) or None."""

    def __init__(self, cjk: str | None) -> None:
        self.cjk = cjk
        self.fonts = ["DejaVu Sans"] + ([self.cjk] if self.cjk else [])

    def rc(self) -> Any:
        """Font settings for one figure (DejaVu Sans first, the CJK font as fallback)."""
        import matplotlib

        return matplotlib.rc_context({"font.family": self.fonts})  # a list of families: per-glyph fallback

    def text(self, s: str) -> str:
        """A label that the available fonts can draw."""
        return s if self.cjk else "".join(c if ord(c) < 0x2000 else "?" for c in s)

    def save(self, fig: Any, path: Path) -> None:
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def plot_accuracy(evals: list[EvalRun], paper_rows: list[str], path: Path, plot: Plot) -> bool:
    """Grouped bars, one group per task, with 95% CIs; the paper's rows as markers."""
    from matplotlib.figure import Figure

    tasks: list[str] = []
    for run in evals:
        tasks += [t for t, s in run.summary["tasks"].items() if t not in tasks and s.get("accuracy") is not None]
    if not tasks:
        return False
    tasks.sort(key=lambda t: (paper.PAPER_TASKS.index(t) if t in paper.PAPER_TASKS else 99, t))
    with plot.rc():
        fig = Figure(figsize=(max(6.0, 1.3 * len(tasks) + 2), 4.2))
        ax = fig.subplots()
        width = 0.8 / max(len(evals), 1)
        for i, run in enumerate(evals):
            xs, ys, lo, hi = [], [], [], []
            for j, t in enumerate(tasks):
                s = run.summary["tasks"].get(t) or {}
                if s.get("accuracy") is None:
                    continue
                acc = 100 * s["accuracy"]
                ci = s.get("ci95") or [s["accuracy"], s["accuracy"]]
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(acc)
                lo.append(acc - 100 * ci[0])
                hi.append(100 * ci[1] - acc)
            ax.bar(
                xs,
                ys,
                width * 0.9,
                yerr=[lo, hi],
                capsize=3,
                label=plot.text(run.name),
                alpha=0.85,
                error_kw={"elinewidth": 1.0, "ecolor": "0.35"},
            )
        markers = "D^sv*Pxo"
        for k, model in enumerate(paper_rows):
            row = paper.PAPER_ROWS[model]
            pts = [(j, row[t]) for j, t in enumerate(tasks) if t in row]
            if pts:
                ax.scatter(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker=markers[k % len(markers)],
                    s=40,
                    color="black",
                    facecolors="none" if k % 2 else "black",
                    zorder=5,
                    label=f"{model} (paper)",
                )
        ax.set_xticks(range(len(tasks)), [paper.label(t) for t in tasks])
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title("Accuracy per task, 95% bootstrap CI")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plot.save(fig, path)
    return True


def _match(key: str, pattern: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", "[^/]+"), key) is not None


def curve_series(metrics: list[dict[str, Any]], patterns: Iterable[str]) -> dict[str, tuple[list[float], list[float]]]:
    """key -> (steps, values) for the numeric keys matching `patterns` (a row without `step` uses its index)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, row in enumerate(metrics):
        step = row.get("step", i)
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            continue
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
                continue
            if any(_match(key, p) for p in patterns):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(float(step))
                ys.append(float(value))
    return out


def _moving_average(ys: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= window:
            acc -= ys[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_curves(trains: list[TrainRun], out: Path, plot: Plot) -> list[tuple[str, str]]:
    """One PNG per metric panel that has data: [(panel, file name)]."""
    from matplotlib.figure import Figure

    made = []
    for panel, patterns in CURVES.items():
        series = [(run, key, xs, ys) for run in trains for key, (xs, ys) in curve_series(run.metrics, patterns).items()]
        if not series:
            continue
        with plot.rc():
            fig = Figure(figsize=(7.0, 3.6))
            ax = fig.subplots()
            for run, key, xs, ys in series:
                label = plot.text(run.name if len(series) == 1 else f"{run.name}: {key}")
                if len(ys) >= SMOOTH_MIN_POINTS:
                    line = ax.plot(xs, ys, alpha=0.25, linewidth=0.8)[0]
                    ax.plot(xs, _moving_average(ys, max(5, len(ys) // 25)), color=line.get_color(), label=label)
                else:
                    ax.plot(xs, ys, marker="o" if len(ys) < 20 else None, markersize=3, label=label)
            ax.set_xlabel("step")
            ax.set_title(CURVE_TITLES.get(panel, panel))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            name = f"curve_{panel}.png"
            plot.save(fig, out / name)
        made.append((panel, name))
    return made
