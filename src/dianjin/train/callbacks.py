"""Trainer callbacks that write the run directory: `MetricsCallback` (metrics.jsonl, TensorBoard,
one progress line per logging step), `SampleCallback` (samples/step-N.jsonl: completions on held-out
prompts with their verdicts) and `BatchRecorder` (batches.jsonl: the example ids of each step).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from dianjin.files import JsonlAppender, iter_jsonl, write_jsonl
from dianjin.rundir import RunDir
from dianjin.train.generate import generate, score_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger("dianjin.train")
# --- metrics ------------------------------------------------------------------------------------
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
        tasks = [
            f"{k[len('reward/') :]} {v:.2f}" for k, v in row.items() if k.startswith("reward/") and isinstance(v, float)
        ]
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

    def __init__(
        self,
        run: RunDir | None,
        items: list[dict[str, Any]],
        tokenizer: PreTrainedTokenizerBase,
        every: int,
        max_new_tokens: int,
        temperature: float = 0.0,
        stage: str = "sft",
    ):
        self.run, self.items, self.tok, self.every = run, items, tokenizer, every
        self.max_new_tokens, self.temperature, self.stage = max_new_tokens, temperature, stage
        self.done: set[int] = set()

    def dump(self, model: Any, step: int) -> dict[str, Any] | None:
        if step in self.done or not self.items:
            return None
        self.done.add(step)
        gens = generate(
            model,
            self.tok,
            [it["prompt"] for it in self.items],
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=1.0,
        )
        rows = [
            {
                "step": step,
                "id": it["id"],
                "task": it["task"],
                "completion": g[0].text,
                "tokens": g[0].tokens,
                "truncated": g[0].truncated,
                **score_text(g[0].text, it),
            }
            for it, g in zip(self.items, gens)
        ]
        if self.run is None:
            return None
        write_jsonl(self.run.path / "samples" / f"step-{step:06d}.jsonl", rows)
        summary: dict[str, Any] = {
            "step": step,
            "samples/format_rate": sum(r["format_ok"] for r in rows) / len(rows),
            "samples/mean_tokens": sum(r["tokens"] for r in rows) / len(rows),
        }
        graded = [r for r in rows if r["correct"] is not None]
        if graded:
            summary["samples/accuracy"] = sum(r["correct"] is True for r in graded) / len(graded)
        self.run.log(**summary)
        print(
            f"[{self.stage}] samples @ step {step}: "
            + ", ".join(f"{k[8:]} {v:.2f}" for k, v in summary.items() if k != "step"),
            flush=True,
        )
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
        ids = [
            str(f["id"])
            if f.get("id") is not None
            else "#" + hashlib.blake2b(json.dumps(f["input_ids"]).encode(), digest_size=6).hexdigest()
            for f in features
        ]
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
