"""The demo's `sets` stage: train / RL / eval splits per task, from the project's synthetic
generators (`dianjin.data.synthetic`, FinCalc) or cut from the real files under `sets.data_dir`
(eval first, then RL, then train, so the held-out questions never depend on the split sizes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dianjin.config import ConfigError
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, write_jsonl

SYNTHETIC_TASKS = ("cflue", "finqa", "ccc", "fincalc")
SPLITS = ("eval", "rl", "train")  # slices of a real file are taken in this order (eval first)


class DemoError(RuntimeError):
    pass


@dataclass
class SetsConfig:
    """Where the data comes from, and how many items per task each split gets."""

    data_dir: str | None = None  # real files in ../shared/data's layout; None: the project's synthetic sets
    train: dict[str, int] = field(default_factory=lambda: {"fincalc": 200, "cflue": 200, "finqa": 100, "ccc": 100})
    rl: dict[str, int] = field(default_factory=lambda: {"fincalc": 64, "cflue": 64, "finqa": 32})
    eval: dict[str, int] = field(default_factory=lambda: {"fincalc": 40, "cflue": 40, "finqa": 20, "ccc": 20})
    seed: int = 0  # synthetic sets: train uses seed, RL seed + 1, eval seed + 2
    fincalc: dict[str, Any] = field(
        default_factory=dict
    )  # dianjin.data.synthetic.fincalc.generate options: langs, forms, kinds
    system: str | None = None  # system message of the RL pool's prompts (as data.system_prompt)


def write_sets(s: SetsConfig, out: Path) -> dict[str, Any]:
    """Write out/sets/{train,rl,eval}/ in the data-dir layout, and out/sets/rl.jsonl (the RL pool)."""
    from dianjin.data import synthetic
    from dianjin.data.distill import prompt_messages, rl_row
    from dianjin.data.synthetic import fincalc
    from dianjin.tasks import get_task

    counts = {split: getattr(s, split) for split in SPLITS}
    files: dict[str, dict[str, str]] = {split: {} for split in SPLITS}
    sources: dict[str, str] = {}  # task -> the real file it was cut from (the others are generated)
    tasks = sorted({t for c in counts.values() for t in c})
    for task in tasks:
        if task == "fincalc":
            for i, split in enumerate(("train", "rl", "eval")):
                n = counts[split].get(task, 0)
                if n:
                    set_path = out.joinpath("sets", split, "fincalc", "test.jsonl")
                    set_path.parent.mkdir(parents=True, exist_ok=True)
                    fincalc.write_jsonl(fincalc.generate(n, s.seed + i, **_fincalc_options(s.fincalc)), set_path)
                    files[split][task] = str(set_path)
        elif s.data_dir and real_file(s, task) is not None:
            sources[task] = str(real_file(s, task))
            for split, path in slice_real(s, out, task).items():
                files[split][task] = path
        else:  # no data_dir, or no real file for the task (CCC was never released): our synthetic set
            rel, generate, write = synthetic.DEMO_FILES[task]
            for i, split in enumerate(("train", "rl", "eval")):
                n = counts[split].get(task, 0)
                if n:
                    files[split][task] = str(write(generate(n, s.seed + i), out.joinpath("sets", split, rel)))
    rows = []
    for task, path in sorted(files["rl"].items()):
        t = get_task(task)
        rows += [rl_row(ex, prompt_messages(t, ex, s.system), 0) for ex in t.load(path)]
    if rows:
        write_jsonl(out.joinpath("sets", "rl.jsonl"), rows)
    sizes = {split: {t: _count(t, p) for t, p in fs.items()} for split, fs in files.items()}
    print(f"[demo] sets: {json.dumps(sizes)}; real files: {json.dumps(sources) if sources else 'none'}", flush=True)
    return {"files": files, "sizes": sizes, "rl_pool": len(rows), "real": sources}


def _fincalc_options(opts: dict[str, Any]) -> dict[str, Any]:
    unknown = set(opts) - {"langs", "forms", "kinds"}
    if unknown:
        raise ConfigError(f"sets.fincalc: unknown keys {sorted(unknown)} (langs, forms, kinds)")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}


def _count(task: str, path: str) -> int:
    from dianjin.tasks import get_task

    return len(get_task(task).load(path))


def real_file(s: SetsConfig, task: str) -> Path | None:
    """The task's file under sets.data_dir, None when there is none (several matching is an error)."""
    from dianjin.eval.specs import resolve_data

    try:
        return resolve_data(task, Path(s.data_dir), {})  # type: ignore[arg-type]
    except DataError as e:
        if "several files" in str(e):
            raise
        return None


def slice_real(s: SetsConfig, out: Path, task: str) -> dict[str, str]:
    """Cut a real file into eval / rl / train slices (in that order), each in the file's own format.
    A task only evaluated keeps its file (eval limits it)."""
    from dianjin.data.sources import iter_records

    data_dir = Path(s.data_dir)  # type: ignore[arg-type]
    src = real_file(s, task)
    assert src is not None
    wanted = {split: getattr(s, split).get(task, 0) for split in SPLITS}
    if not wanted["rl"] and not wanted["train"]:
        return {"eval": str(src)}
    records = [rec for _, rec in iter_records(src)]
    sliced, start = {}, 0
    for split in SPLITS:
        n = wanted[split]
        if not n:
            continue
        part = records[start : start + n]
        start += n
        if not part:
            raise DemoError(f"sets: {src} has {len(records)} records, too few for the {split} split of {task}")
        dest = out.joinpath("sets", split, src.relative_to(data_dir).as_posix())
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".jsonl":
            write_jsonl(dest, part)
        else:
            atomic_write_json(dest, part)
        sliced[split] = str(dest)
    return sliced
