"""Synthetic data the project writes itself: CFLUE-, FinQA- and CCC-style sets (the CPU demo's data)
and FinCalc questions. Data tools, not tasks: the task modules (`dianjin.tasks.*`) read these
records exactly as they read the real files.

The demo must run on a fresh clone with no data directory, and the real CFLUE file is
CC BY-NC-SA (it cannot ship with an MIT project) while the CCC set was never released. So we
generate stand-ins from templates and small phrase tables (package data: tables/*.json), in each
benchmark's REAL file schema, so the task loaders (`get_task(name).load(path)`), the data pipeline
and `dianjin eval run --data-dir` read them unchanged. When a real data directory is given, the real
files are used instead; these sets only exercise the pipeline, they measure nothing about finance.

Every generator is deterministic: record i depends only on (seed, i)
(`random.Random(f"<set>:{seed}:{i}")`), and kinds (and languages / labels) cycle so every kind
appears in the first few records. One module per set:

- `cflue`: `cflue_style(n, seed)`, CFLUE knowledge.json records; `write_cflue` (JSON array).
- `finqa`: `finqa_style(n, seed)`, FinQA records; `write_finqa` (JSON array); `human_answer`.
- `ccc`: `ccc_style(n, seed)`, CCC dialogues; `write_ccc` (JSONL).
- `fincalc`: `generate(n, seed, langs, forms, kinds)`, FinCalc examples; `write_jsonl`; `reasoning`.
- `demo_files`: `write_demo_sets(out_dir, n_cflue, n_finqa, n_ccc, seed)` and `DEMO_FILES`, the
  sets in the layout of ../shared/data; `python -m dianjin.data.synthetic OUT_DIR` does the same.
- `common`: what the generators share (bilingual wording, number formats, distractors, tables).
- Helpers split off, re-exported by the module they serve: `cflue_calcs` (CFLUE's calculation
  questions, `CALCS`), `fincalc_formulas` (FinCalc's formulas) and `fincalc_problems` (FinCalc's
  question generators, answer display).
"""

from dianjin.data.synthetic import ccc, cflue, fincalc, finqa
from dianjin.data.synthetic.ccc import ccc_style, write_ccc
from dianjin.data.synthetic.cflue import cflue_style, write_cflue
from dianjin.data.synthetic.demo_files import DEMO_FILES, main, write_demo_sets
from dianjin.data.synthetic.finqa import finqa_style, human_answer, write_finqa

__all__ = [
    "DEMO_FILES",
    "ccc",
    "ccc_style",
    "cflue",
    "cflue_style",
    "fincalc",
    "finqa",
    "finqa_style",
    "human_answer",
    "main",
    "write_ccc",
    "write_cflue",
    "write_demo_sets",
    "write_finqa",
]
