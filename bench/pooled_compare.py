"""Two eval runs of the same questions, pooled over every task: format rate and accuracy of each
with its 95% bootstrap CI, and B − A with its paired-bootstrap CI (the statistics of the demo's
`summary.md`, `dianjin.demo_summary`, applied to any two run directories).

    .venv/bin/python bench/pooled_compare.py RUN_A RUN_B
    .venv/bin/python bench/pooled_compare.py RUN_A1,RUN_A2 RUN_B1,RUN_B2   # several eval runs per model

A question counts once: with several samples per question (`--n`, or several runs of the same model
and questions, comma-separated), its mean over all of them. Used in
docs/benchmarks.md for `make demo-real`'s SFT model against its GRPO model (two and three samples
each), and for the bfloat16 against float32 evaluation of the SFT model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dianjin.demo_summary import METRICS, item_scores, point_stats, step_stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", help="eval run directory of model A (several: comma-separated)")
    ap.add_argument("run_b", help="eval run directory of model B (several: comma-separated)")
    args = ap.parse_args(argv)
    sides = [[Path(p) for p in runs.split(",")] for runs in (args.run_a, args.run_b)]
    empty = [str(d) for side in sides for d in side if not any((d / "samples").glob("*.jsonl"))]
    if empty:
        ap.error(f"no eval samples (samples/*.jsonl) in {', '.join(empty)}")
    a, b = (item_scores(*side) for side in sides)
    print("| run | questions | " + " | ".join(m for m, _ in METRICS) + " |")
    print("|---|---:|" + "---|" * len(METRICS))
    for run, scores in ((args.run_a, a), (args.run_b, b)):
        st = point_stats(scores)
        cells = [f"{100 * s['value']:.1f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]" for s in st.values()]
        print(f"| {run} | {st[METRICS[0][0]]['n']} | " + " | ".join(cells) + " |")
    steps = step_stats(a, b)
    cells = [f"{100 * d['diff']:+.1f} pts [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]" for d in steps.values()]
    print(f"| B − A (paired) | {steps[METRICS[0][0]]['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
