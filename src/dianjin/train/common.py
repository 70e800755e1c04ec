"""What the training stages share: configs, data, generation, run-directory logging, resume, demo data.

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
    batches.jsonl            per optimizer step (SFT) or generation batch (GRPO): the example ids used
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
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal

from transformers import TrainerCallback

from dianjin import answer as fmt
from dianjin.io import JsonlAppender, iter_jsonl, write_jsonl
from dianjin.legacy_config import add_legacy_keys
from dianjin.rundir import RunDir
from dianjin.tasks import get_task
from dianjin.tasks.base import DataError, jsonl_records

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
class DemoSpec:
    """CPU demo setup (no downloads): build what is missing before the stage runs."""

    build_model: bool = True  # SFT only: build the tiny model (dianjin.tiny) at `model` if that directory is missing
    n: int = 400  # fincalc items in each missing training file; sample/held-out files get n // 10 (at least 8)
    seed: int = 0  # fincalc seed of training files; `sample_data` files use seed + 1 (held out)
    forms: list[str] = field(default_factory=lambda: ["open", "mcq"])  # fincalc forms to draw
    langs: list[str] = field(default_factory=lambda: ["en", "zh"])  # fincalc languages to draw
    kinds: list[str] | None = None  # fincalc kinds (None: all)
    prompt: Literal["task", "question"] = "task"  # the task's chat prompt, or the bare question (shorter, faster)


@dataclass
class TrainCommon:
    """Fields shared by `SFTRunConfig` and `GRPORunConfig` (see each for its own defaults)."""

    # --- where ---------------------------------------------------------------------------------
    model: str = ""  # HF model directory (or hub id); GRPO: the SFT model to warm-start from
    data: list[str] = field(default_factory=list)  # training JSONL file(s): sft.jsonl for SFT, rl.jsonl for GRPO
    output_dir: str = ""  # the run directory: config, meta, metrics.jsonl, checkpoint-N/, final/
    sample_data: list[str] = field(default_factory=list)  # held-out prompts for sample dumps (SFT); [] = first training rows
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
    merge_lora: bool = True  # with `lora`: final/ is the merged model (adapter in adapter/); False: final/ is the adapter
    # --- logging, samples, checkpoints -----------------------------------------------------------
    logging_steps: int = 1  # optimizer steps between metrics rows / progress lines
    sample_every: int = 0  # steps between sample dumps (SFT: generate on held-out prompts; GRPO: save rollouts); 0: off
    num_samples: int = 8  # SFT: prompts per sample dump
    sample_max_new_tokens: int = 512  # SFT: generation length of sample dumps
    sample_temperature: float = 0.0  # SFT: 0 = greedy sample dumps, else sampling temperature
    save_strategy: Literal["steps", "epoch", "no"] | bool = "steps"  # when to write checkpoint-N/ (YAML `no` reads as false: same)
    save_steps: int = 500  # steps between checkpoints (save_strategy "steps")
    save_total_limit: int | None = 2  # keep at most this many checkpoints (None: all)
    resume: bool = True  # resume from the last complete checkpoint in output_dir, if any
    report_to: list[str] = field(default_factory=list)  # extra trackers ("wandb", "trackio"); TensorBoard is automatic
    demo: DemoSpec | None = None  # CPU demo: build the tiny model / fincalc data when missing
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
        output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed, data_seed=cfg.seed, bf16=bf16, use_cpu=not cuda, activation_checkpointing=ckpt,
        deepspeed=cfg.deepspeed, logging_steps=cfg.logging_steps, save_strategy=cfg.save_strategy or "no",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, report_to=cfg.report_to or "none",
        disable_tqdm=True, model_init_kwargs=model_init_kwargs(cfg),
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

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")


def load_tokenizer(path: str) -> "PreTrainedTokenizerBase":
    """The model's tokenizer, left-padded (batched generation) and with a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(path: str, cfg: TrainCommon | None = None) -> "PreTrainedModel":
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
            raise DataError(path, line, f"{name}[{i}]", f"expected {{role: {'|'.join(ROLES)}, content: str}}, got {str(m)[:80]}")
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
        return {"id": rid, "task": str(obj["task"]), "prompt": prompt, "attempts": obj.get("attempts", 0),
                "example": example if obj.get("gold") is not None else None}
    if "messages" in obj:  # sft.jsonl: the prompt is everything before the last assistant turn
        msgs = check_messages(obj["messages"], path, line, "messages")
        prompt = msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs
        example = {k: v for k, v in obj.items() if k != "messages"} if obj.get("gold") is not None else None
        return {"id": rid, "task": str(obj.get("task") or ""), "prompt": prompt, "example": example}
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
    return {"id": item["id"], "task": item["task"], "prompt": item["prompt"], "gold": ex["gold"],
            "attempts": item.get("attempts", 0), "extra": {k: v for k, v in ex.items() if k not in RL_TOP}}


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


def prompt_length(tokenizer: "PreTrainedTokenizerBase", prompt: Messages) -> int:
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    return len(ids)


def drop_long_prompts(items: list[dict[str, Any]], tokenizer: "PreTrainedTokenizerBase",
                      max_tokens: int | None) -> tuple[list[dict[str, Any]], list[str]]:
    """(kept, dropped ids): prompts over `max_tokens` go, as verl's `filter_overlong_prompts=True` does."""
    if not max_tokens:
        return items, []
    kept, dropped = [], []
    for it in items:
        (kept if prompt_length(tokenizer, it["prompt"]) <= max_tokens else dropped).append(it)
    return kept, [it["id"] for it in dropped]


def sft_dataset(rows: list[dict[str, Any]], tokenizer: "PreTrainedTokenizerBase", assistant_only: bool = True) -> "Dataset":
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
        raise DataError(where, None, "resume", f"{out} already holds {ckpt.name}; set resume=true to continue "
                        "it or choose a new output_dir")
    if not is_main_process():
        return None, ckpt
    data = file_fingerprint(cfg.data)
    old = out / "meta.json"
    if ckpt is not None and old.exists():
        before = json.loads(old.read_text()).get("data", {}).get("sha256")
        if before and before != data["sha256"]:
            log.warning("%s: the training data changed since this run started (sha256 %s -> %s)", out,
                        before[:12], data["sha256"][:12])
    run = RunDir.create(out, cfg, stage=stage, data=data, world_size=world_size(),
                        resumed_from=str(ckpt) if ckpt else None)
    trim_logs(out, int(ckpt.name.split("-")[1]) if ckpt else 0)
    if ckpt:
        print(f"[{stage}] resuming from {ckpt}", flush=True)
    return run, ckpt


def save_final(trainer: Any, tokenizer: "PreTrainedTokenizerBase", cfg: TrainCommon, stage: str) -> Path:
    """Save `output_dir/final` (merged with LoRA, the adapter then in `adapter/`); return its path."""
    out = Path(cfg.output_dir)
    final = out / "final"
    merge = cfg.lora is not None and cfg.merge_lora
    trainer.save_model(str(out / "adapter" if merge else final))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        if merge:
            from dianjin.merge import merge_lora

            tokenizer.save_pretrained(out / "adapter")
            merge_lora(out / "adapter", cfg.model, final, force=True, say=lambda m: print(f"[{stage}] {m}", flush=True))
        else:
            tokenizer.save_pretrained(final)
        if (final / "config.json").exists():  # a full model, not an adapter only
            add_legacy_keys(final)
        print(f"[{stage}] final model: {final}", flush=True)
    trainer.accelerator.wait_for_everyone()
    return final


# --- generation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    text: str  # decoded completion (special tokens dropped; <think>/<answer> are normal tokens and stay)
    tokens: int  # completion tokens up to and including the end-of-sequence token
    truncated: bool  # stopped at max_new_tokens without an end-of-sequence token


def generate(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", prompts: list[Messages], *,
             max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0, k: int = 1,
             batch_size: int = 8) -> list[list[Generation]]:
    """`k` completions per chat prompt with HF `generate`, batched with left padding.
    temperature 0 is greedy (then k should be 1)."""
    import torch

    eos = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    eos.discard(None)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    out: list[list[Generation]] = []
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                     for p in prompts[i : i + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.no_grad():
                seqs = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=k,
                                      pad_token_id=tokenizer.pad_token_id, **sampling)
            new = seqs[:, enc["input_ids"].shape[1] :].tolist()  # [b*k, T_new]
            for j in range(0, len(new), k):
                out.append([_one(ids, eos, tokenizer) for ids in new[j : j + k]])
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def _one(ids: list[int], eos: set[int], tokenizer: "PreTrainedTokenizerBase") -> Generation:
    end = next((n for n, t in enumerate(ids) if t in eos), None)
    body = ids if end is None else ids[:end]
    return Generation(tokenizer.decode(body, skip_special_tokens=True), len(ids) if end is None else end + 1, end is None)


def score_text(text: str, item: dict[str, Any]) -> dict[str, Any]:
    """Strict-format verdict of one completion; correctness too when the item has a gold answer."""
    task = None
    try:
        task = get_task(item["task"]) if item.get("task") else None
    except KeyError:
        pass
    if task is not None and item.get("example") is not None:
        v = task.score(text, item["example"], mode="reward")
        return {"format_ok": v.format_ok, "correct": v.correct, "pred": v.pred}
    ok = fmt.parse_strict(text, require_boxed=task.boxed if task else True).ok
    return {"format_ok": ok, "correct": None, "pred": None}


# --- callbacks ------------------------------------------------------------------------------------
# progress-line label -> (metric key, format); shown when present in the logged row
PROGRESS: dict[str, tuple[str, str]] = {
    "loss": ("loss", "{:.4f}"),
    "grad": ("grad_norm", "{:.3f}"),
    "lr": ("learning_rate", "{:.2e}"),
    "reward": ("reward", "{:.3f}"),
    "fmt": ("format_rate", "{:.2f}"),
    "acc": ("accuracy", "{:.2f}"),
    "zero-std": ("frac_reward_zero_std", "{:.2f}"),
    "len": ("completions/mean_length", "{:.0f}"),
    "clip": ("completions/clipped_ratio", "{:.2f}"),
    "kl": ("kl", "{:.4f}"),
    "tok-acc": ("mean_token_accuracy", "{:.3f}"),
}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


class MetricsCallback(TrainerCallback):
    """Each logging step: a `metrics.jsonl` row, TensorBoard scalars (if installed), one progress line."""

    def __init__(self, run: RunDir | None, stage: str):
        self.run, self.stage = run, stage
        self.t0, self.step0 = time.perf_counter(), 0
        self.tb = None
        if run is not None:
            from transformers.integrations import is_tensorboard_available

            if is_tensorboard_available():
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run.path / "tensorboard"))

    def on_train_begin(self, args, state, control, **kw):
        self.t0, self.step0 = time.perf_counter(), state.global_step

    def on_log(self, args, state, control, logs=None, **kw):
        if self.run is None or not logs:
            return
        row = {"step": state.global_step, **{k: _jsonable(v) for k, v in logs.items()}}
        self.run.log(**row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self.tb.add_scalar(k, v, state.global_step)
            self.tb.flush()
        print(self.line(row, state.max_steps), flush=True)

    def line(self, row: dict[str, Any], max_steps: int) -> str:
        step = row["step"]
        if "train_runtime" in row:  # the Trainer's summary at the end
            loss = f", mean loss {row['train_loss']:.4f}" if isinstance(row.get("train_loss"), float) else ""
            return f"[{self.stage}] done: step {step}/{max_steps} in {row['train_runtime']:.1f} s{loss}"
        parts = [f"[{self.stage}] step {step}/{max_steps}"]
        for label, (key, spec) in PROGRESS.items():
            if isinstance(row.get(key), (int, float)):
                parts.append(f"{label} {spec.format(row[key])}")
        tasks = [f"{k[len('reward/'):]} {v:.2f}" for k, v in row.items() if k.startswith("reward/") and isinstance(v, float)]
        if tasks:
            parts.append("by task: " + ", ".join(tasks))
        done = step - self.step0
        if done > 0:
            per = (time.perf_counter() - self.t0) / done
            parts.append(f"{per:.2f} s/step, eta {_hms(per * max(max_steps - step, 0))}")
        return " | ".join(parts)

    def on_train_end(self, args, state, control, **kw):
        if self.tb is not None:
            self.tb.close()


def _hms(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SampleCallback(TrainerCallback):
    """Generate on fixed held-out prompts at the start, every `every` steps and at the end; save
    `samples/step-NNNNNN.jsonl` and log `samples/format_rate` (and `samples/accuracy` with golds)."""

    def __init__(self, run: RunDir | None, items: list[dict[str, Any]], tokenizer: "PreTrainedTokenizerBase",
                 every: int, max_new_tokens: int, temperature: float = 0.0, stage: str = "sft"):
        self.run, self.items, self.tok, self.every = run, items, tokenizer, every
        self.max_new_tokens, self.temperature, self.stage = max_new_tokens, temperature, stage
        self.done: set[int] = set()

    def dump(self, model: Any, step: int) -> dict[str, Any] | None:
        if step in self.done or not self.items:
            return None
        self.done.add(step)
        gens = generate(model, self.tok, [it["prompt"] for it in self.items], max_new_tokens=self.max_new_tokens,
                        temperature=self.temperature, top_p=1.0)
        rows = [{"step": step, "id": it["id"], "task": it["task"], "completion": g[0].text, "tokens": g[0].tokens,
                 "truncated": g[0].truncated, **score_text(g[0].text, it)} for it, g in zip(self.items, gens)]
        if self.run is None:
            return None
        write_jsonl(self.run.path / "samples" / f"step-{step:06d}.jsonl", rows)
        summary: dict[str, Any] = {"step": step, "samples/format_rate": sum(r["format_ok"] for r in rows) / len(rows),
                                   "samples/mean_tokens": sum(r["tokens"] for r in rows) / len(rows)}
        graded = [r for r in rows if r["correct"] is not None]
        if graded:
            summary["samples/accuracy"] = sum(r["correct"] is True for r in graded) / len(graded)
        self.run.log(**summary)
        print(f"[{self.stage}] samples @ step {step}: " + ", ".join(
            f"{k[8:]} {v:.2f}" for k, v in summary.items() if k != "step"), flush=True)
        return summary

    def on_train_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 0:
            self.dump(model, 0)

    def on_step_end(self, args, state, control, model=None, **kw):
        if self.every and state.global_step % self.every == 0:
            self.dump(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kw):
        self.dump(model, state.global_step)


def _digest(x: Any) -> str:
    return hashlib.blake2b(x.detach().cpu().numpy().tobytes(), digest_size=12).hexdigest()


class BatchRecorder(TrainerCallback):
    """Which examples each optimizer step trained on, as `batches.jsonl` rows `{step, ids}`.

    The collator wrapper notes each batch's ids under a digest of its `input_ids`; a forward
    pre-hook on the model looks the digest up when the batch is really trained on. So the record
    is what was used, whatever the prefetching, gradient accumulation or resume skipping. Rows
    without an id (packed sequences) are named by a digest of their tokens. Main process only:
    other ranks train on other ids.
    """

    def __init__(self, run: RunDir | None, collator: Any):
        self.run, self.inner = run, collator
        self.pending: dict[str, deque[list[str]]] = defaultdict(deque)
        self.step_ids: list[str] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        ids = [str(f["id"]) if f.get("id") is not None else "#" + hashlib.blake2b(
            json.dumps(f["input_ids"]).encode(), digest_size=6).hexdigest() for f in features]
        self.pending[_digest(batch["input_ids"])].append(ids)
        return batch

    def attach(self, model: Any) -> None:
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        x = kwargs.get("input_ids", args[0] if args else None)
        if not module.training or x is None:
            return
        q = self.pending.get(_digest(x))
        if q:
            self.step_ids.extend(q.popleft())

    def on_step_end(self, args, state, control, **kw):
        if self.run is not None:
            with JsonlAppender(self.run.path / "batches.jsonl") as f:
                f.write({"step": state.global_step, "ids": self.step_ids})
        self.step_ids = []


def read_batches(run_dir: str | Path) -> list[dict[str, Any]]:
    p = Path(run_dir) / "batches.jsonl"
    return list(iter_jsonl(p)) if p.exists() else []


# --- CPU demo data --------------------------------------------------------------------------------
def demo_examples(spec: DemoSpec, n: int, seed: int) -> list[dict[str, Any]]:
    from dianjin.tasks import fincalc

    return fincalc.generate(n, seed, langs=tuple(spec.langs), forms=tuple(spec.forms),
                            kinds=tuple(spec.kinds) if spec.kinds else None)


def demo_prompt(ex: dict[str, Any], prompt: str = "task") -> Messages:
    """The task's chat prompt, or (prompt="question") the bare question: ~110 instead of ~300 tokens."""
    if prompt == "question":
        options = "\n".join(f"{k}. {v}" for k, v in (ex.get("choices") or {}).items())
        return [{"role": "user", "content": f"{ex['question']}\n{options}".strip()}]
    return get_task(ex["task"]).messages(ex)


DEMO_REASONING = {"en": "Recall the formula, substitute the numbers and compute.", "zh": "先写出公式，再代入数据计算。"}


def demo_sft_row(ex: dict[str, Any], prompt: str = "task") -> dict[str, Any]:
    """A short target in the DianJin format: a fixed sentence of reasoning, then the boxed answer.
    A tiny model learns the format from it in about a hundred steps (it cannot learn the arithmetic)."""
    target = fmt.render(DEMO_REASONING.get(ex.get("lang", "en"), DEMO_REASONING["en"]), "", ex["gold"])
    return {"id": ex["id"], "task": ex["task"], "messages": demo_prompt(ex, prompt) + [{"role": "assistant", "content": target}]}


def demo_rl_row(ex: dict[str, Any], prompt: str = "task") -> dict[str, Any]:
    return {"id": ex["id"], "task": ex["task"], "prompt": demo_prompt(ex, prompt), "gold": ex["gold"],
            "attempts": 0, "extra": {k: v for k, v in ex.items() if k not in RL_TOP}}


DEMO_ROWS = {"sft": demo_sft_row, "rl": demo_rl_row}


def prepare_demo(spec: DemoSpec | None, *, model: str | None, data: list[str], data_format: str,
                 sample_data: list[str] = ()) -> None:
    """Write the fincalc demo files that are missing (training files in `data_format`, held-out ones
    in rl format) and build the tiny model at `model` when asked and missing. Main process only."""
    if spec is None or not is_main_process():
        return
    todo = [(p, data_format, spec.n, spec.seed) for p in data]
    todo += [(p, "rl", max(8, spec.n // 10), spec.seed + 1) for p in sample_data]
    for path, kind, n, seed in todo:
        if not Path(path).exists():
            write_jsonl(path, [DEMO_ROWS[kind](ex, spec.prompt) for ex in demo_examples(spec, n, seed)])
            print(f"demo: wrote {n} fincalc {kind} rows to {path}", flush=True)
    if model is not None and spec.build_model and not Path(model).exists():
        from dianjin.tiny import build_tiny

        build_tiny(model)
        print(f"demo: built the tiny model at {model}", flush=True)


def main_first() -> Any:
    """A context in which the main process runs first (demo files, dataset caches), the others after
    it; a no-op in a single process. Uses accelerate's shared state, which the Trainer reuses."""
    if world_size() == 1:
        return contextlib.nullcontext()
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available()).main_process_first()


# --- command line --------------------------------------------------------------------------------
def config_main(name: str, cls: type, run: Callable[[Any, str], Any], what: str, example: str,
                argv: list[str] | None) -> int:
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
