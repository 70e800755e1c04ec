"""The three synthetic sets as files in the layout of ../shared/data: cflue/knowledge.json,
finqa/test.json and ccc/ccc.jsonl, each the file `dianjin.eval.specs.resolve_data` picks for its
task. `python -m dianjin.data.synthetic OUT_DIR` (`main`) writes them from the shell."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dianjin.data.synthetic.ccc import ccc_style, write_ccc
from dianjin.data.synthetic.cflue import cflue_style, write_cflue
from dianjin.data.synthetic.common import Record, check_n
from dianjin.data.synthetic.finqa import finqa_style, write_finqa

# task -> (file under out_dir, generator, writer); the file is what `resolve_data` picks for the task.
DEMO_FILES: dict[str, tuple[str, Callable[[int, int], list[Record]], Callable[[list[Record], str | Path], Path]]] = {
    "cflue": ("cflue/knowledge.json", cflue_style, write_cflue),
    "finqa": ("finqa/test.json", finqa_style, write_finqa),
    "ccc": ("ccc/ccc.jsonl", ccc_style, write_ccc),
}


def write_demo_sets(
    out_dir: str | Path, n_cflue: int = 200, n_finqa: int = 100, n_ccc: int = 100, seed: int = 0
) -> dict[str, Path]:
    """Write the three sets under `out_dir` in the layout of ../shared/data; task -> path.

    A count of 0 skips that task (no file written, no key returned).
    """
    counts = {"cflue": n_cflue, "finqa": n_finqa, "ccc": n_ccc}
    out: dict[str, Path] = {}
    for task, (rel, generate, write) in DEMO_FILES.items():
        check_n(counts[task], f"write_demo_sets n_{task}")
        if counts[task]:
            out[task] = write(generate(counts[task], seed), Path(out_dir) / rel)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m dianjin.data.synthetic",
        description="Small synthetic CFLUE-, FinQA- and CCC-style sets (the CPU demo's data).",
    )
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n-cflue", type=int, default=200)
    ap.add_argument("--n-finqa", type=int, default=100)
    ap.add_argument("--n-ccc", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for task, path in write_demo_sets(args.out_dir, args.n_cflue, args.n_finqa, args.n_ccc, args.seed).items():
        print(f"{task}: {path}")
