"""What the training stages share: configs, devices, data, resume and the final save (generation for
sample dumps is in `train.generate`, the run-directory callbacks in `train.callbacks`).

Data formats read here (written by `dianjin.data`):
* `sft.jsonl` rows `{id, task, messages: [..., user, assistant], ...}` (also TRL's `{messages, task, id}`);
* `rl.jsonl` rows `{id, task, prompt: [chat messages], gold, attempts, extra: {choices, ...}}`;
* plain task examples `{id, task, question, gold, ...}` (e.g. `fincalc.write_jsonl`): the prompt is
  `get_task(task).messages(example)`.
A prompt item is `{"id", "task", "prompt", "example"[, "attempts"]}`, where `example` is what the task
scorer and the rewards read (`extra` flattened, plus id, task, gold) or None when the row has no gold;
`rl_row(item)` turns it back into an rl.jsonl row.

Run directory (one per stage run; `output_dir` of the config):
    config.yaml, meta.json   resolved config; git commit, versions, data fingerprint (sha256 per file)
    metrics.jsonl            one row per logging step: `step` plus TRL's names (loss, grad_norm, reward,
                             rewards/<fn>/mean, reward/<task>, kl, completions/mean_length, ...)
    batches.jsonl            per generation batch (GRPO), or per optimizer step (SFT, `record_batches`): the ids used
    samples/step-NNNNNN.jsonl  sampled completions with their verdicts, every `sample_every` steps
    checkpoint-N/, final/    HF checkpoints (resume picks the last complete one), the final model
    tensorboard/             scalars, when the `tensorboard` package is installed
Only the main process writes; every process generates (ZeRO-3 needs all ranks in `generate`).

Resume: a checkpoint counts when its `trainer_state.json` parses and names its own step (the Trainer
writes that file last, so a SIGKILL mid-save leaves an incomplete directory that is skipped). The
logs are cut back to the checkpoint's step so a resumed run reads as one uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dianjin.errors import DataError
from dianjin.files import iter_jsonl, write_jsonl
from dianjin.model.legacy_config import add_legacy_keys
from dianjin.rundir import RunDir
from dianjin.tasks import get_task
from dianjin.tasks.base import jsonl_records

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("dianjin.train")

Messages = list[dict[str, str]]
ROLES = ("system", "user", "assistant", "tool")
RL_TOP = ("id", "task", "prompt", "gold", "attempts", "extra")  # rl.jsonl keys that are not task fields


# --- configs --------------------------------------------------------------------------------------
@dataclass
class LoraSpec:
    """LoRA instead of a full fine-tune (peft)."""

    r: int = 16  # adapter rank
    alpha: int = 32  # lora_alpha (scale = alpha / r)
    dropout: float = 0.05  # lora_dropout
    target_modules: str | list[str] = "all-linear"  # peft target_modules: "all-linear" or module names


@dataclass
class TrainCommon:
    """Fields shared by `SFTRunConfig` and `GRPORunConfig` (see each for its own defaults)."""

    # --- where ---------------------------------------------------------------------------------
    model: str = ""  # HF model directory (or hub id); GRPO: the SFT model to warm-start from
    data: list[str] = field(default_factory=list)  # training JSONL file(s): sft.jsonl for SFT, rl.jsonl for GRPO
    output_dir: str = ""  # the run directory: config, meta, metrics.jsonl, checkpoint-N/, final/
    sample_data: list[str] = field(
        default_factory=list
    )  # held-out prompts for sample dumps (SFT); [] = first training rows
    # --- optimisation --------------------------------------------------------------------------
    learning_rate: float = 1e-5  # peak learning rate
    num_train_epochs: float = 3.0  # epochs over `data` (ignored when max_steps > 0)
    max_steps: int = -1  # optimizer steps; > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 1  # sequences (SFT) or completions (GRPO) per device per micro-step
    gradient_accumulation_steps: int = 1  # micro-steps per optimizer step (derived when a global batch is set)
    lr_scheduler_type: str = "linear"  # transformers scheduler name: linear, cosine, constant, constant_with_warmup
    warmup_ratio: float = 0.0  # fraction of the steps spent warming up (transformers 5 `warmup_steps` < 1)
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping
    seed: int = 42  # model init/dropout/sampling seed and data order seed
    # --- precision and memory ------------------------------------------------------------------
    bf16: bool | None = None  # None: on when CUDA supports bf16 (never on CPU)
    gradient_checkpointing: bool | None = None  # None: on with CUDA, off on CPU
    deepspeed: str | None = None  # DeepSpeed JSON config path (e.g. ZeRO-3); None: DDP/single process
    dtype: str = "auto"  # weights dtype on load: "auto" (the checkpoint's), "float32" (fp32 master weights
    # under bf16 autocast), "bfloat16" (pure bf16; DeepSpeed keeps fp32 master weights itself)
    attn_implementation: str | None = None  # e.g. "flash_attention_2", "sdpa"; None: transformers' default
    lora: LoraSpec | None = None  # None: full fine-tune
    # with `lora`: final/ is the merged model (adapter in adapter/); False: final/ is the adapter
    merge_lora: bool = True
    # --- logging, samples, checkpoints -----------------------------------------------------------
    logging_steps: int = 1  # optimizer steps between metrics rows / progress lines
    sample_every: int = 0  # steps between sample dumps (SFT: generate on held-out prompts; GRPO: save rollouts); 0: off
    num_samples: int = 8  # SFT: prompts per sample dump
    sample_max_new_tokens: int = 512  # SFT: generation length of sample dumps
    sample_temperature: float = 0.0  # SFT: 0 = greedy sample dumps, else sampling temperature
    # when to write checkpoint-N/ (YAML `no` reads as false: same)
    save_strategy: Literal["steps", "epoch", "no"] | bool = "steps"
    save_steps: int = 500  # steps between checkpoints (save_strategy "steps")
    save_total_limit: int | None = 2  # keep at most this many checkpoints (None: all)
    resume: bool = True  # resume from the last complete checkpoint in output_dir, if any
    report_to: list[str] = field(default_factory=list)  # extra trackers ("wandb", "trackio"); TensorBoard is automatic
    trainer_args: dict[str, Any] = field(default_factory=dict)  # extra TRL config keys, passed as-is (escape hatch)


def check_common(cfg: TrainCommon, where: str) -> None:
    """Errors a user can fix, named by key, before anything heavy happens."""
    if not cfg.model:
        raise DataError(where, None, "model", "required: a model directory")
    if not cfg.data:
        raise DataError(where, None, "data", "required: one or more JSONL files")
    if not cfg.output_dir:
        raise DataError(where, None, "output_dir", "required: the run directory")
    for f in cfg.data + cfg.sample_data:
        if not Path(f).is_file():
            raise DataError(f, None, None, "data file not found")


# --- processes and devices ------------------------------------------------------------------------
def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def divide(total: int, part: int, what: str, where: str) -> int:
    """`total / part` as an exact positive integer, or a config error naming `what`."""
    if part <= 0 or total % part or total // part < 1:
        raise DataError(where, None, what, f"{total} is not a positive multiple of {part}")
    return total // part


def trainer_kwargs(cfg: TrainCommon) -> dict[str, Any]:
    """The TRL config arguments shared by SFT and GRPO (before stage-specific ones and `trainer_args`)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cfg.bf16 if cfg.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    ckpt = cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else cuda
    return dict(
        output_dir=cfg.output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        use_cpu=not cuda,
        activation_checkpointing=ckpt,
        deepspeed=cfg.deepspeed,
        logging_steps=cfg.logging_steps,
        save_strategy=cfg.save_strategy or "no",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to or "none",
        disable_tqdm=True,
        model_init_kwargs=model_init_kwargs(cfg),
    )


def model_init_kwargs(cfg: TrainCommon) -> dict[str, Any]:
    kw: dict[str, Any] = {"dtype": cfg.dtype}
    if cfg.attn_implementation:
        kw["attn_implementation"] = cfg.attn_implementation
    return kw


def peft_config(cfg: TrainCommon) -> Any:
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer, left-padded (batched generation) and with a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(path: str, cfg: TrainCommon | None = None) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, **(model_init_kwargs(cfg) if cfg else {"dtype": "auto"}))


# --- data -----------------------------------------------------------------------------------------
def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is a DataError naming file and line."""
    for n, obj in jsonl_records(path):
        if not isinstance(obj, dict):
            raise DataError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
        yield n, obj


def check_messages(value: Any, path: Any, line: int, name: str) -> Messages:
    """A chat message list with known roles and string content, reduced to {role, content}."""
    if not isinstance(value, list) or not value:
        raise DataError(path, line, name, "expected a non-empty list of chat messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(
                path, line, f"{name}[{i}]", f"expected {{role: {'|'.join(ROLES)}, content: str}}, got {str(m)[:80]}"
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _row_id(obj: dict[str, Any], path: Path, line: int) -> str:
    return str(obj["id"]) if obj.get("id") not in (None, "") else f"{path.name}:{line}"


def load_sft_rows(paths: Iterable[str]) -> list[dict[str, Any]]:
    """SFT rows `{id, task, messages}`; the last message must be the assistant's target."""
    rows: list[dict[str, Any]] = []
    for p in map(Path, paths):
        for line, obj in read_rows(p):
            msgs = check_messages(obj.get("messages"), p, line, "messages")
            if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
                raise DataError(p, line, "messages", "must end with an assistant message after a prompt")
            rows.append({"id": _row_id(obj, p, line), "task": str(obj.get("task") or ""), "messages": msgs})
    if not rows:
        raise DataError(", ".join(map(str, paths)), None, None, "no SFT rows")
    return rows


def _task_or_error(name: Any, path: Path, line: int) -> Any:
    try:
        return get_task(str(name))
    except KeyError as e:
        raise DataError(path, line, "task", str(e.args[0])) from None


def prompt_item(obj: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    """A prompt item from an rl.jsonl row, an sft.jsonl row or a plain task example."""
    rid = _row_id(obj, path, line)
    if "prompt" in obj:  # rl.jsonl
        prompt = check_messages(obj["prompt"], path, line, "prompt")
        extra = obj.get("extra") or {}
        if not isinstance(extra, dict):
            raise DataError(path, line, "extra", "expected a mapping of task fields")
        _task_or_error(obj.get("task"), path, line)
        example = {**extra, **{k: obj[k] for k in ("task", "gold") if k in obj}, "id": rid}
        return {
            "id": rid,
            "task": str(obj["task"]),
            "prompt": prompt,
            "attempts": obj.get("attempts", 0),
            "example": example if obj.get("gold") is not None else None,
        }
    if "messages" in obj:  # sft.jsonl: the prompt is everything before the last assistant turn
        msgs = check_messages(obj["messages"], path, line, "messages")
        prompt = msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs
        sft_example = {k: v for k, v in obj.items() if k != "messages"} if obj.get("gold") is not None else None
        return {"id": rid, "task": str(obj.get("task") or ""), "prompt": prompt, "example": sft_example}
    task = _task_or_error(obj.get("task"), path, line)  # a plain task example
    try:
        prompt = check_messages(task.messages(obj), path, line, "messages()")
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(path, line, None, f"cannot build the {task.name} prompt: {e}") from None
    example = {**obj, "id": rid, "task": task.name}
    return {"id": rid, "task": task.name, "prompt": prompt, "example": example if obj.get("gold") is not None else None}


def rl_row(item: dict[str, Any]) -> dict[str, Any]:
    """The rl.jsonl row of a prompt item that has a gold answer."""
    ex = item["example"]
    return {
        "id": item["id"],
        "task": item["task"],
        "prompt": item["prompt"],
        "gold": ex["gold"],
        "attempts": item.get("attempts", 0),
        "extra": {k: v for k, v in ex.items() if k not in RL_TOP},
    }


def load_prompt_items(paths: Iterable[str], need_gold: bool = False) -> list[dict[str, Any]]:
    items = []
    for p in map(Path, paths):
        for line, obj in read_rows(p):
            item = prompt_item(obj, p, line)
            if need_gold and item["example"] is None:
                raise DataError(p, line, "gold", "missing: RL and mining need rows with a gold answer (rl.jsonl)")
            items.append(item)
    if not items:
        raise DataError(", ".join(map(str, paths)), None, None, "no prompt rows")
    return items


def prompt_length(tokenizer: PreTrainedTokenizerBase, prompt: Messages) -> int:
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    return len(ids)


def drop_long_prompts(
    items: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, max_tokens: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """(kept, dropped ids): prompts over `max_tokens` go, as verl's `filter_overlong_prompts=True` does."""
    if not max_tokens:
        return items, []
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for it in items:
        (kept if prompt_length(tokenizer, it["prompt"]) <= max_tokens else dropped).append(it)
    return kept, [it["id"] for it in dropped]


def sft_dataset(rows: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, assistant_only: bool = True) -> Dataset:
    """TRL pre-tokenized rows `{id, input_ids, labels}`: labels on the assistant turns only (any chat
    template, `dianjin.train.chat`), or on every token with `assistant_only=False`."""
    from datasets import Dataset

    from dianjin.train.chat import TemplateError, tokenize_rows

    try:
        return Dataset.from_list(tokenize_rows(tokenizer, rows, assistant_only))
    except TemplateError as e:
        raise DataError(getattr(tokenizer, "name_or_path", "tokenizer"), None, "chat_template", str(e)) from None


def file_fingerprint(paths: Iterable[str]) -> dict[str, Any]:
    """sha256 and size of each file, and one sha256 over all of them (in the given order)."""
    files, total = {}, hashlib.sha256()
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        files[str(p)] = {"sha256": h.hexdigest(), "bytes": os.path.getsize(p)}
        total.update(h.digest())
    return {"sha256": total.hexdigest(), "files": files}


# --- run directory, resume ------------------------------------------------------------------------
_CKPT = re.compile(r"checkpoint-(\d+)")


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    best: tuple[int, Path] | None = None
    for d in Path(output_dir).glob("checkpoint-*"):
        m = _CKPT.fullmatch(d.name)
        if not m or not d.is_dir():
            continue
        try:
            step = json.loads((d / "trainer_state.json").read_text())["global_step"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: incomplete checkpoint (no readable trainer_state.json), skipped", d)
            continue
        if step == int(m.group(1)) and (best is None or step > best[0]):
            best = (step, d)
    return best[1] if best else None


def trim_logs(run_dir: Path, step: int, names: Iterable[str] = ("metrics.jsonl", "batches.jsonl")) -> None:
    """Keep only log rows at or before `step` (a resumed run repeats the steps after its checkpoint)."""
    for name in names:
        p = run_dir / name
        if p.exists():
            write_jsonl(p, [r for r in iter_jsonl(p) if int(r.get("step", 0)) <= step])


def start_run(cfg: TrainCommon, stage: str, where: str) -> tuple[RunDir | None, Path | None]:
    """Create/refresh the run directory (main process only) and find the checkpoint to resume from."""
    out = Path(cfg.output_dir)
    ckpt = last_checkpoint(out) if out.is_dir() else None
    if ckpt is not None and not cfg.resume:
        raise DataError(
            where,
            None,
            "resume",
            f"{out} already holds {ckpt.name}; set resume=true to continue it or choose a new output_dir",
        )
    if not is_main_process():
        return None, ckpt
    data = file_fingerprint(cfg.data)
    old = out / "meta.json"
    if ckpt is not None and old.exists():
        before = json.loads(old.read_text()).get("data", {}).get("sha256")
        if before and before != data["sha256"]:
            log.warning(
                "%s: the training data changed since this run started (sha256 %s -> %s)",
                out,
                before[:12],
                data["sha256"][:12],
            )
    run = RunDir.create(
        out, cfg, stage=stage, data=data, world_size=world_size(), resumed_from=str(ckpt) if ckpt else None
    )
    trim_logs(out, int(ckpt.name.split("-")[1]) if ckpt else 0)
    if ckpt:
        print(f"[{stage}] resuming from {ckpt}", flush=True)
    return run, ckpt


def save_final(trainer: Any, tokenizer: PreTrainedTokenizerBase, cfg: TrainCommon, stage: str) -> Path:
    """Save `output_dir/final` (merged with LoRA, the adapter then in `adapter/`); return its path."""
    out = Path(cfg.output_dir)
    final = out / "final"
    merge = cfg.lora is not None and cfg.merge_lora
    trainer.save_model(str(out / "adapter" if merge else final))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        if merge:
            from dianjin.model.merge import merge_lora

            tokenizer.save_pretrained(out / "adapter")
            merge_lora(out / "adapter", cfg.model, final, force=True, say=lambda m: print(f"[{stage}] {m}", flush=True))
        else:
            tokenizer.save_pretrained(final)
        if (final / "config.json").exists():  # a full model, not an adapter only
            add_legacy_keys(final)
        print(f"[{stage}] final model: {final}", flush=True)
    trainer.accelerator.wait_for_everyone()
    return final


# --- command line --------------------------------------------------------------------------------
def config_main(
    name: str, cls: type, run: Callable[[Any, str], Any], what: str, example: str, argv: list[str] | None
) -> int:
    """`dianjin NAME CONFIG.yaml [key=value ...]`: load `cls` from the YAML and overrides, then `run`
    it; a config or data error is one line on stderr and exit status 2."""
    p = argparse.ArgumentParser(prog=f"dianjin {name}", description=f"{what} (see {run.__module__})")
    p.add_argument("config", help=f"YAML recipe (fields: {cls.__module__}.{cls.__name__})")
    p.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {example}")
    args = p.parse_args(argv)
    from dianjin.config import ConfigError, load_config

    try:
        run(load_config(cls, args.config, args.overrides), args.config)
    except (ConfigError, DataError) as e:
        print(f"dianjin {name}: error: {e}", file=sys.stderr)
        return 2
    return 0
