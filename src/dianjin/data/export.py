"""Export: the verified SFT rows and the RL pool in the formats the trainers read, plus a dataset card.

    paths = export.run(output_dir, sft_rows, rl_rows, ExportConfig(formats=["trl", "verl"]))

Formats (`FORMATS`, a registry of writers; each file is written atomically):

- `trl`: `trl/sft.jsonl`, one `{messages, task, id}` per SFT row (TRL's conversational format;
  `datasets.load_dataset("json", data_files=...)` reads it).
- `llamafactory`: one alpaca JSON array per task (`instruction`, `input` (empty), `output`, and
  `system` when a row has a system message) plus `dataset_info.json`, under upstream's dataset
  names (`LF_NAMES`: cflue_mcq_r1 -> CFLUE_MCQ_SFT.json, cflue_oe_r1 -> CFLUE_Open_SFT.json,
  fin_qa_r1 -> Fin-qa_SFT.json, ccc_r1 -> ccc_r1_sft.json; any other task `<task>_r1` ->
  `<task>_r1_sft.json`), columns `prompt=instruction, query=input, response=output`. Deviation:
  upstream's `file_name`s sit under `DianJin-R1/`; ours are relative to the `llamafactory/` folder,
  so `dataset_dir: <output_dir>/llamafactory` works as is.
- `verl`: `verl/train.parquet` and `verl/val.parquet` for GRPO from the RL pool, one row per item:
  `data_source` (the task name, which the `dianjin.verl_reward` entry points resolve),
  `prompt` (chat list), `ability` ("finance"), `reward_model: {style: "rule", ground_truth}`
  (the gold as a string) and `extra_info: {index, split, id, task, json_fields, <task fields>}`.
  Task fields are the RL row's `extra` (choices, qtype, unit, form, ...): strings as they are,
  anything else JSON-encoded and named in `json_fields`, so every row has the same parquet schema
  (`decode_extra_info` turns them back). CFLUE reads its `choices` from the JSON string as it is;
  FinCalc and GPQA read `choices` as a dict, so the reward must decode `json_fields` before
  an option-text answer ("\\boxed{12.34%}" for an MCQ) can be scored.
  The validation split is `val_fraction` of each task, drawn with `seed`.
  `verl_style` picks the reward entry point the rows are checked through (`verl_reward.ENTRY_POINTS`:
  "upstream" -> `compute_score_float`, for verl 0.3.x; "current" -> `compute_score`, verl >= 0.4.1).
  With `check_rewards` (default), every row is checked before it is written: the task's reference
  answer, rendered in the target format, must score 1.0 through that entry point with the row's
  own `ground_truth` and `extra_info`. Rows that cannot (CFLUE_OE needs a judge, which a rule
  reward does not have) are left out and listed in `verl/skipped.jsonl`. Without it, one row per
  `data_source` is still scored (a mismatch is only logged). Either way a reward that cannot import
  what it needs (math-verify for MATH-500) is an error here, not a skipped row or a failure at the
  first reward call of a training run. Parquet files get the permissions of every other output.
- `card`: `README.md`, a dataset card: rows per subset, provenance (teachers, judge, attempts),
  licences (CFLUE is CC BY-NC-SA 4.0, so any export holding CFLUE rows is too), how to train.

`ExportConfig.system`: None keeps each row's own system message (if any); a string replaces it in
every export (the empty string removes it).

`load_alpaca(path)` reads released DianJin-R1-Data files or any LLaMA-Factory alpaca JSON array /
JSONL back into SFT rows, checking each `output` for one think and one answer block (it is
`dianjin.data.sources`' released-data reader, without the `\\boxed{}` requirement).
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dianjin import files as dio
from dianjin import verl_reward
from dianjin.data.sources import released_rows, released_task
from dianjin.errors import DataError
from dianjin.files import atomic_write_json, atomic_write_text, write_jsonl
from dianjin.tasks import get_task
from dianjin.verl_reward import decode_extra_info

log = logging.getLogger("dianjin.data")

Row = dict[str, Any]
Messages = list[dict[str, str]]
Format = Literal["trl", "llamafactory", "verl", "card"]

# task -> (LLaMA-Factory dataset name, file name): upstream's DianJin-R1/src/sft/dataset_info.json.
LF_NAMES: dict[str, tuple[str, str]] = {
    "cflue": ("cflue_mcq_r1", "CFLUE_MCQ_SFT.json"),
    "cflue_oe": ("cflue_oe_r1", "CFLUE_Open_SFT.json"),
    "finqa": ("fin_qa_r1", "Fin-qa_SFT.json"),
    "ccc": ("ccc_r1", "ccc_r1_sft.json"),
}
# Released / upstream file stems (lower case) -> task, for `load_alpaca`.
ALPACA_FILES: dict[str, str] = {
    "cflue_mcq": "cflue",
    "cflue_oe": "cflue_oe",
    "fin_qa": "finqa",
    **{file.rsplit(".", 1)[0].lower(): task for task, (_, file) in LF_NAMES.items()},
    **{name: task for task, (name, _) in LF_NAMES.items()},
}
# extra_info keys the exporter sets itself (a task field of the same name is not copied).
EXTRA_RESERVED = ("index", "split", "id", "task", "json_fields", "gold")

# Subset names in the card and stats (upstream's, where upstream has the subset).
SUBSET_NAMES: dict[str, str] = {
    "cflue": "CFLUE_MCQ",
    "cflue_oe": "CFLUE_OE",
    "finqa": "FinQA",
    "ccc": "CCC",
    "fincalc": "FinCalc",
    "math500": "MATH-500",
    "gpqa": "GPQA",
}
# Licence notes per source task: (HF licence id, note).
LICENCES: dict[str, tuple[str, str]] = {
    "cflue": (
        "cc-by-nc-sa-4.0",
        (
            "CFLUE (aliyun/cflue) is CC BY-NC-SA 4.0: rows built from it, reasoning included, "
            "are NonCommercial and ShareAlike."
        ),
    ),
    "cflue_oe": ("cc-by-nc-sa-4.0", "CFLUE_OE is rewritten from CFLUE (CC BY-NC-SA 4.0) and carries the same licence."),
    "finqa": ("mit", "FinQA (czyssrs/FinQA) is MIT; its report excerpts come from public S&P 500 filings."),
    "ccc": (
        "other",
        "CCC data is whatever dialogue set you supplied (upstream's is proprietary); its licence is yours.",
    ),
    "fincalc": ("mit", "FinCalc is generated by dianjin's own generator (MIT)."),
    "math500": ("mit", "MATH-500 (openai/prm800k split of MATH) is MIT."),
    "gpqa": (
        "cc-by-4.0",
        (
            "GPQA is CC BY 4.0 and its authors ask that it not be posted in plain text online; "
            "do not publish rows built from it."
        ),
    ),
}


def subset_name(task: str) -> str:
    return SUBSET_NAMES.get(task, task)


def lf_name(task: str) -> tuple[str, str]:
    """(LLaMA-Factory dataset name, file name) for a task."""
    return LF_NAMES.get(task, (f"{task}_r1", f"{task}_r1_sft.json"))


@dataclass
class ExportConfig:
    """What `run` writes (a section of the data build config)."""

    formats: list[Format] = field(default_factory=lambda: ["trl", "llamafactory", "verl", "card"])
    system: str | None = None  # None: keep the rows' system messages; "": drop them; text: use it
    val_fraction: float = 0.05  # verl: share of each task held out as val.parquet (0: no val file)
    seed: int = 0  # verl: the validation draw
    ability: str = "finance"  # verl `ability`
    check_rewards: bool = True  # verl: keep only rows whose reference answer scores 1.0
    verl_style: str = "upstream"  # verl: the reward entry point rows are checked through (verl_reward.ENTRY_POINTS)
    name: str = "DianJin-R1-Data (rebuilt with dianjin)"  # card title
    teacher: str | None = None  # card: the teacher model(s), as configured
    judge: str | None = None  # card: the judge model, as configured
    sources: list[str] = field(default_factory=list)  # card: where the examples came from


# --- shared helpers -----------------------------------------------------------------------------------
def with_system(messages: Messages, system: str | None) -> Messages:
    """The messages with their system message kept (None), removed ("") or replaced (text)."""
    if system is None:
        return [dict(m) for m in messages]
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    return ([{"role": "system", "content": system}] if system else []) + rest


def _messages(row: Row, i: int, key: str = "messages") -> Messages:
    msgs = row.get(key)
    if not isinstance(msgs, list) or not msgs:
        raise DataError(
            "sft" if key == "messages" else "rl", i, key, f"row {row.get('id')!r}: expected a non-empty chat list"
        )
    for j, m in enumerate(msgs):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise DataError(
                "sft" if key == "messages" else "rl",
                i,
                f"{key}[{j}]",
                f"row {row.get('id')!r}: expected {{role, content}} strings",
            )
    return msgs


def _row_task(row: Row, i: int, pool: str) -> str:
    try:
        return get_task(str(row.get("task"))).name
    except KeyError as e:
        raise DataError(pool, i, "task", f"row {row.get('id')!r}: {e.args[0]}") from None


# --- TRL ------------------------------------------------------------------------------------------------
def write_trl(
    out: Path, sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig, notes: dict[str, Any]
) -> dict[str, Path]:
    rows = [
        {"messages": with_system(_messages(r, i), cfg.system), "task": r.get("task"), "id": r.get("id")}
        for i, r in enumerate(sft_rows)
    ]
    return {"trl": write_jsonl(out / "trl" / "sft.jsonl", rows)}


# --- LLaMA-Factory ----------------------------------------------------------------------------------------
def alpaca_record(row: Row, i: int, system: str | None) -> dict[str, str]:
    """One SFT row as an alpaca record; the row must be [system?, user, assistant]."""
    msgs = with_system(_messages(row, i), system)
    sys_msgs = [m["content"] for m in msgs if m["role"] == "system"]
    turns = [m for m in msgs if m["role"] != "system"]
    if len(sys_msgs) > 1 or [m["role"] for m in turns] != ["user", "assistant"]:
        raise DataError(
            "sft",
            i,
            "messages",
            f"row {row.get('id')!r}: alpaca needs [system?, user, assistant], got "
            + ", ".join(m["role"] for m in msgs),
        )
    rec = {"instruction": turns[0]["content"], "input": "", "output": turns[1]["content"]}
    if sys_msgs:
        rec["system"] = sys_msgs[0]
    return rec


def write_llamafactory(
    out: Path, sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig, notes: dict[str, Any]
) -> dict[str, Path]:
    by_task: dict[str, list[dict[str, str]]] = defaultdict(list)
    for i, row in enumerate(sft_rows):
        by_task[_row_task(row, i, "sft")].append(alpaca_record(row, i, cfg.system))
    folder = out / "llamafactory"
    info: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    for task, records in by_task.items():
        name, file_name = lf_name(task)
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        if any("system" in r for r in records):  # every record gets the column ("" = template default)
            records = [{**r, "system": r.get("system", "")} for r in records]
            columns["system"] = "system"
        paths[f"llamafactory/{name}"] = atomic_write_json(folder / file_name, records)
        info[name] = {"file_name": file_name, "formatting": "alpaca", "columns": columns}
    paths["llamafactory"] = atomic_write_json(folder / "dataset_info.json", info)
    notes["llamafactory"] = {lf_name(t)[0]: len(records) for t, records in by_task.items()}
    return paths


# --- verl ---------------------------------------------------------------------------------------------------
def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "the verl export writes parquet with pyarrow, which is not installed: "
            "pip install 'dianjin[train]' (datasets brings pyarrow), or drop 'verl' from export.formats"
        ) from None
    return pa


def ground_truth(gold: Any) -> str:
    """The gold as verl's `reward_model.ground_truth` string (numbers as JSON: 0.07879, 12)."""
    return gold if isinstance(gold, str) else json.dumps(gold, ensure_ascii=False)


def encode_extra(extra: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Task fields as strings (non-strings JSON-encoded) and the names of the encoded ones."""
    fields, encoded = {}, []
    for key, value in extra.items():
        if key in EXTRA_RESERVED or value is None:
            continue
        if isinstance(value, str):
            fields[key] = value
        else:
            fields[key] = json.dumps(value, ensure_ascii=False, sort_keys=True)
            encoded.append(key)
    return fields, sorted(encoded)


def verl_row(row: Row, i: int, cfg: ExportConfig) -> Row:
    """One RL-pool row as a verl row (extra_info's index and split are set at the split)."""
    task = _row_task(row, i, "rl")
    if "gold" not in row or row["gold"] is None:
        raise DataError("rl", i, "gold", f"row {row.get('id')!r} has no gold answer")
    fields, encoded = encode_extra(row.get("extra") or {})
    return {
        "data_source": task,
        "prompt": with_system(_messages(row, i, "prompt"), cfg.system),
        "ability": cfg.ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth(row["gold"])},
        "extra_info": {
            "index": 0,
            "split": "",
            "id": str(row.get("id")),
            "task": task,
            "json_fields": encoded,
            **fields,
        },
    }


def reward_entry_point(style: str) -> Callable[..., Any]:
    """The `dianjin.verl_reward` function verl is pointed at for `--verl-style style`."""
    if style not in verl_reward.ENTRY_POINTS:
        raise ValueError(f"unknown verl_style {style!r}; known: {', '.join(verl_reward.ENTRY_POINTS)}")
    return getattr(verl_reward, verl_reward.ENTRY_POINTS[style])


def reward_check(vrow: Row, fn: Callable[..., Any] = verl_reward.compute_score) -> str | None:
    """None when the task's reference answer scores 1.0 through `fn` (a `dianjin.verl_reward` entry
    point, called as verl calls it), else why not. A missing dependency raises RuntimeError."""
    ds, gt, info = vrow["data_source"], vrow["reward_model"]["ground_truth"], vrow["extra_info"]
    try:
        response = verl_reward.reference_response(ds, gt, info)
        result = fn(data_source=ds, solution_str=response, ground_truth=gt, extra_info=info)
        if (result["score"] if isinstance(result, dict) else result) == 1.0:
            return None
        verdict = get_task(ds).score(response, {**decode_extra_info(info), "gold": gt}, mode="reward")  # for the reason
    except ImportError as e:  # the reward would fail the same way in every training step
        raise RuntimeError(verl_reward.missing_dependency(ds, e)) from e
    except Exception as e:  # noqa: BLE001 - a scorer that raises on its own reference is reported, not fatal
        return f"scoring the reference answer raised {type(e).__name__}: {e}"
    return f"the reference answer {verdict.pred!r} scores 0: {verdict.reason}"


def preflight_rows(rows: list[Row], fn: Callable[..., Any]) -> None:
    """Without `check_rewards`: score one row per data_source through `fn` (a missing dependency
    raises RuntimeError; a reference answer that does not score 1.0 is only logged)."""
    firsts = {r["data_source"]: r for r in reversed(rows)}
    for ds, vrow in sorted(firsts.items()):
        why = reward_check(vrow, fn)
        if why:
            log.warning("export: %s row %s: %s (kept: reward check off)", ds, vrow["extra_info"]["id"], why)


def split_rows(rows: list[Row], val_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """(train, val): `val_fraction` of each data_source, at least one when it has two or more rows."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_task[r["data_source"]].append(i)
    rng = random.Random(seed)
    val: set[int] = set()
    for task in sorted(by_task):
        idx = by_task[task]
        k = 0 if val_fraction == 0 or len(idx) < 2 else min(len(idx) - 1, max(1, round(val_fraction * len(idx))))
        val.update(rng.sample(idx, k))
    return [r for i, r in enumerate(rows) if i not in val], [r for i, r in enumerate(rows) if i in val]


def _verl_schema(pa: Any, field_names: list[str]) -> Any:
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    extra = [
        ("index", pa.int64()),
        ("split", pa.string()),
        ("id", pa.string()),
        ("task", pa.string()),
        ("json_fields", pa.list_(pa.string())),
    ] + [(k, pa.string()) for k in field_names]
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(message)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", pa.struct(extra)),
        ]
    )


def write_parquet(path: Path, rows: list[Row], schema: Any) -> Path:
    """Write rows to parquet atomically (temporary file in the same folder, then rename)."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
        os.chmod(tmp, 0o666 & ~dio._UMASK)  # what open() gives, as dianjin.files's writers (mkstemp's is 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_verl(
    out: Path, sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig, notes: dict[str, Any]
) -> dict[str, Path]:
    pa = _pyarrow()
    fn = reward_entry_point(cfg.verl_style)
    rows, skipped = [], []
    for i, r in enumerate(rl_rows):
        vrow = verl_row(r, i, cfg)
        why = reward_check(vrow, fn) if cfg.check_rewards else None
        if why is None:
            rows.append(vrow)
        else:
            skipped.append({"id": vrow["extra_info"]["id"], "task": vrow["data_source"], "reason": why})
    if not cfg.check_rewards:
        preflight_rows(rows, fn)
    if not rows:
        log.warning(
            "export: no RL rows for verl: verl/train.parquet is empty (every item went to SFT, or was left out)"
        )
    train, val = split_rows(rows, cfg.val_fraction, cfg.seed)
    for split, part in (("train", train), ("val", val)):
        for k, vrow in enumerate(part):
            vrow["extra_info"].update(index=k, split=split)
    names = sorted({k for vrow in rows for k in vrow["extra_info"]} - {"index", "split", "id", "task", "json_fields"})
    schema = _verl_schema(pa, names)
    folder = out / "verl"
    paths = {"verl_train": write_parquet(folder / "train.parquet", train, schema)}
    if val:
        paths["verl_val"] = write_parquet(folder / "val.parquet", val, schema)
    if skipped:
        paths["verl_skipped"] = write_jsonl(folder / "skipped.jsonl", skipped)
        log.warning(
            "export: %d RL rows left out of verl (reward check failed), e.g. %s: %s; see %s",
            len(skipped),
            skipped[0]["id"],
            skipped[0]["reason"],
            paths["verl_skipped"],
        )
    notes["verl"] = {
        "train": Counter(r["data_source"] for r in train),
        "val": Counter(r["data_source"] for r in val),
        "skipped": Counter(s["task"] for s in skipped),
    }
    return paths


# --- dataset card ---------------------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card_text(sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig, notes: dict[str, Any]) -> str:
    sft_tasks = Counter(str(r.get("task")) for r in sft_rows)
    rl_tasks = Counter(str(r.get("task")) for r in rl_rows)
    tasks = list(dict.fromkeys([*sft_tasks, *rl_tasks]))
    licences = sorted({LICENCES[t][0] for t in tasks if t in LICENCES})
    licence = "cc-by-nc-sa-4.0" if "cc-by-nc-sa-4.0" in licences else (licences[0] if len(licences) == 1 else "other")
    verl = notes.get("verl", {})
    rows = []
    for t in tasks:
        v = [verl.get(k, {}).get(t, 0) for k in ("train", "val", "skipped")] if verl else ["-", "-", "-"]
        rows.append(
            [subset_name(t), t, sft_tasks.get(t, 0), lf_name(t)[0] if sft_tasks.get(t) else "-", rl_tasks.get(t, 0), *v]
        )
    rows.append(
        [
            "**total**",
            "",
            sum(sft_tasks.values()),
            "",
            sum(rl_tasks.values()),
            *([sum(verl.get(k, {}).values()) for k in ("train", "val", "skipped")] if verl else ["-", "-", "-"]),
        ]
    )
    teachers = Counter(str(r.get("teacher", "unknown")) for r in sft_rows)
    attempts = Counter(r.get("attempts") for r in [*sft_rows, *rl_rows] if isinstance(r.get("attempts"), int))
    lf_datasets = ",".join(lf_name(t)[0] for t in sft_tasks)
    parts = [
        "---",
        f"license: {licence}",
        "language: [" + ", ".join(sorted({"zh", "en"} if tasks else set())) + "]",
        "tags: [finance, reasoning, dianjin-r1]",
        "---",
        f"# {cfg.name}",
        "",
        (
            "Reasoning data in the DianJin-R1 format (`<think>reasoning</think><answer>answer</answer>`, short answers in "
            "`\\boxed{}`), built by `dianjin data build`: items the teacher answered correctly (checked by the task's own "
            "scorer, the same code as the RL reward and evaluation; open answers by the judge) are SFT rows; items it "
            "never answered correctly within the attempt budget form the RL pool with their gold answers "
            "(DianJin-R1, arXiv 2504.15716, Fig. 2)."
        ),
        "",
        "## Subsets",
        "",
        _table(
            ["Subset", "Task", "SFT rows", "LLaMA-Factory name", "RL rows", "verl train", "verl val", "verl left out"],
            rows,
        ),
        "",
        "## Provenance",
        "",
        f"- Teacher (configured): {cfg.teacher or 'not recorded'}; SFT rows by teacher: "
        + (", ".join(f"`{k}` {v}" for k, v in teachers.most_common()) or "none")
        + (
            " (`reference` rows are rendered from the data itself by the offline reference teacher: a baseline, "
            "not distillation)"
            if "reference" in teachers
            else ""
        ),
        f"- Judge (configured): {cfg.judge or 'not recorded'}",
        "- Attempts per item: " + (", ".join(f"{k}: {v}" for k, v in sorted(attempts.items())) or "not recorded"),
    ]
    if cfg.sources:
        parts.append("- Sources: " + "; ".join(cfg.sources))
    parts += ["", "## Licence", ""]
    parts += [f"- {LICENCES[t][1]}" for t in tasks if t in LICENCES]
    parts += [
        "- Teacher and judge outputs are also subject to those models' terms of use.",
        "",
        "## Files and use",
        "",
        "- `trl/sft.jsonl`: `{messages, task, id}` for TRL `SFTTrainer`.",
        (
            f"- `llamafactory/`: alpaca files + `dataset_info.json`; in the LLaMA-Factory config: "
            f"`dataset_dir: llamafactory`, `dataset: {lf_datasets or '-'}`, `template: qwen`."
        ),
        (
            "- `verl/train.parquet`, `verl/val.parquet`: GRPO data; reward: "
            "`custom_reward_function.path=$(python -c 'import dianjin.verl_reward as m; print(m.__file__)')` "
            f"`custom_reward_function.name={verl_reward.ENTRY_POINTS.get(cfg.verl_style, 'compute_score_float')}` "
            "(`compute_score_float` for verl 0.3.x, `compute_score` for verl >= 0.4; from verl 0.7.1 the keys are "
            "`reward.custom_reward_function.*`; in verl's environment "
            f"`pip install '{verl_reward.MATH_VERIFY_FOR_VERL}'`, Hydra's antlr)."
        ),
        "",
    ]
    return "\n".join(parts)


def write_card(
    out: Path, sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig, notes: dict[str, Any]
) -> dict[str, Path]:
    return {"card": atomic_write_text(out / "README.md", card_text(sft_rows, rl_rows, cfg, notes))}


Writer = Callable[[Path, list[Row], list[Row], ExportConfig, dict[str, Any]], dict[str, Path]]
# Written in this order (the card last: it reports what the others wrote).
FORMATS: dict[str, Writer] = {
    "trl": write_trl,
    "llamafactory": write_llamafactory,
    "verl": write_verl,
    "card": write_card,
}


def run(
    output_dir: str | Path, sft_rows: list[Row], rl_rows: list[Row], cfg: ExportConfig | None = None
) -> dict[str, Path]:
    """Write the configured formats under `output_dir`; returns {name: path} of every file written."""
    cfg = cfg or ExportConfig()
    unknown = [f for f in cfg.formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(map(repr, unknown))}; known: {', '.join(FORMATS)}")
    out = Path(output_dir)
    notes: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    for name, writer in FORMATS.items():
        if name in cfg.formats:
            paths.update(writer(out, sft_rows, rl_rows, cfg, notes))
    log.info("export: %d SFT and %d RL rows -> %s", len(sft_rows), len(rl_rows), ", ".join(sorted(paths)))
    return paths


# --- reading alpaca back ------------------------------------------------------------------------------------------
def load_alpaca(path: str | Path, task: str | None = None) -> list[Row]:
    """SFT rows from a released DianJin-R1-Data file or a LLaMA-Factory alpaca JSON array / JSONL.

    The reader of `dianjin.data.sources` (`released_task` + `released_rows`), with this module's file
    names (`ALPACA_FILES`: also the LLaMA-Factory dataset names) and no `\\boxed{}` required, since
    any alpaca export is accepted. The task comes from the file name (`cflue_mcq.json`,
    `CFLUE_MCQ_SFT.json`, ...) unless given. Each record needs non-empty `instruction` and `output`
    strings (`input`, `system` optional, no `history`), and `output` must hold exactly one `<think>`
    block (non-empty) followed by exactly one `<answer>` block. A bad record raises DataError naming
    the file, the line where the record starts and the field. Rows: `{id, task, messages, reasoning,
    answer, attempts: 0, teacher: "released"}`; the id is the record's `id`, else
    `<task>-r1-<sha256(prompt)[:12]>` (`-2`, `-3`, ... for repeats, in file order).
    """
    path = Path(path)
    task_name = released_task(path, task, ALPACA_FILES, arg="task")
    return released_rows(path, task_name, boxed=False).sft_rows


__all__ = [
    "ALPACA_FILES",
    "FORMATS",
    "LF_NAMES",
    "LICENCES",
    "SUBSET_NAMES",
    "ExportConfig",
    "alpaca_record",
    "card_text",
    "decode_extra_info",
    "encode_extra",
    "ground_truth",
    "lf_name",
    "load_alpaca",
    "preflight_rows",
    "reward_check",
    "reward_entry_point",
    "run",
    "split_rows",
    "subset_name",
    "verl_row",
    "with_system",
    "write_parquet",
]
