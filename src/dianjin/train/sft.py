"""Stage 1, SFT: `dianjin sft CONFIG.yaml [key=value ...]` runs TRL's SFTTrainer on `sft.jsonl`.

    dianjin sft recipes/tiny_sft.yaml                                              # CPU demo stage (after make demo)
    torchrun --nproc_per_node 8 -m dianjin.train.sft recipes/sft_qwen2.5_7b.yaml   # 1 node x 8 GPUs (DDP/DeepSpeed)
    accelerate launch --config_file ACC.yaml -m dianjin.train.sft CONFIG.yaml

Upstream (LLaMA-Factory `qwen2.5_sft.yaml`, docs/upstream.md §5): full fine-tune,
lr 1e-5, 3 epochs, linear schedule, warmup 0.03, effective batch 128 (1 x 16 x 8 GPUs), cutoff 16,384,
bf16, ZeRO-3, loss on the response only, no packing. Those are the defaults of `SFTRunConfig`;
`global_batch_size` keeps the effective batch at 128 on any number of processes by deriving
`gradient_accumulation_steps`. Loss on *assistant* tokens, the same tokens LLaMA-Factory trains on for
a single-turn chat: each reply and its end-of-turn token, found by rendering the model's own chat
template with and without the turn (`dianjin.train.chat`), so any template works, with or without
`{% generation %}` marks (SmolLM2, Llama 3, Qwen2.5, ...). Rows reach TRL tokenized, with labels.
The system prompt is whatever the data rows carry (the data stage adds it), or the template's default.

The run directory gets config, meta (commit, versions, data sha256), metrics.jsonl, batches.jsonl
(ids trained on per step, with `record_batches: true`), sample dumps, checkpoints and `final/` (the merged model with LoRA;
the adapter goes to `adapter/`). Re-running the same command resumes from the last complete checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dianjin.train.common import (
    TrainCommon,
    check_common,
    config_main,
    divide,
    load_prompt_items,
    load_sft_rows,
    load_tokenizer,
    peft_config,
    save_final,
    sft_dataset,
    start_run,
    trainer_kwargs,
    world_size,
)


@dataclass
class SFTRunConfig(TrainCommon):
    """`dianjin sft` config. Shared fields (model, data, output_dir, optimisation, precision,
    logging, resume, trainer_args) are documented on `TrainCommon`; defaults here are upstream's."""

    learning_rate: float = 1e-5  # upstream 1e-5
    num_train_epochs: float = 3.0  # upstream 3 epochs
    lr_scheduler_type: str = "linear"  # upstream linear decay
    warmup_ratio: float = 0.03  # upstream warmup 3% of the steps
    per_device_train_batch_size: int = 1  # upstream 1 sequence per GPU per micro-step
    logging_steps: int = 10  # upstream logs every 10 steps
    save_strategy: Literal["steps", "epoch", "no"] | bool = "epoch"  # upstream saves each epoch
    global_batch_size: int | None = 128  # sequences per optimizer step over all processes (upstream 128);
    # derives gradient_accumulation_steps = global / (per_device * processes); None: use gradient_accumulation_steps
    max_length: int = 16384  # tokens per sequence (upstream cutoff_len); longer rows are truncated
    packing: bool = False  # pack rows into max_length blocks (TRL bfd packing); upstream does not pack
    assistant_only_loss: bool = True  # loss on each assistant reply and its end-of-turn token only (any chat
    # template: dianjin.train.chat); false: on every token
    record_batches: bool = False  # batches.jsonl: the ids each optimizer step trained on (a digest of every
    # micro-batch, a device-to-host copy per forward: for checking data order and resume, off by default)


def sample_items(cfg: SFTRunConfig, rows: list[dict]) -> list[dict]:
    """Prompts for sample dumps: `sample_data` if given, else the first training rows."""
    if cfg.sample_data:
        return load_prompt_items(cfg.sample_data)[: cfg.num_samples]
    return [
        {"id": r["id"], "task": r["task"], "prompt": r["messages"][:-1], "example": None}
        for r in rows[: cfg.num_samples]
    ]


def run(cfg: SFTRunConfig, where: str = "config") -> Path:
    """Train; return the final model directory."""
    check_common(cfg, where)
    ga = cfg.gradient_accumulation_steps
    if cfg.global_batch_size:
        ga = divide(cfg.global_batch_size, cfg.per_device_train_batch_size * world_size(), "global_batch_size", where)
    run_dir, ckpt = start_run(cfg, "sft", where)

    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from dianjin.train.callbacks import BatchRecorder, MetricsCallback, SampleCallback

    tok = load_tokenizer(cfg.model)
    rows = load_sft_rows(cfg.data)
    args = SFTConfig(
        **{
            **trainer_kwargs(cfg),
            "gradient_accumulation_steps": ga,
            "max_length": cfg.max_length,
            "packing": cfg.packing,
            "assistant_only_loss": False,  # labels come with the rows (sft_dataset)
            "remove_unused_columns": False,  # keep `id` for batches.jsonl; TRL's collator ignores it
            **cfg.trainer_args,
        }
    )
    trainer = SFTTrainer(
        model=cfg.model,
        args=args,
        train_dataset=sft_dataset(rows, tok, cfg.assistant_only_loss),
        processing_class=tok,
        peft_config=peft_config(cfg),
    )  # tokenises on the main process first (TRL does that)
    if cfg.record_batches:
        recorder = BatchRecorder(run_dir, trainer.data_collator)
        trainer.data_collator = recorder
        recorder.attach(trainer.model)
        trainer.add_callback(recorder)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(MetricsCallback(run_dir, "sft"))
    if cfg.sample_every > 0:
        trainer.add_callback(
            SampleCallback(
                run_dir,
                sample_items(cfg, rows),
                tok,
                cfg.sample_every,
                cfg.sample_max_new_tokens,
                cfg.sample_temperature,
                "sft",
            )
        )
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return save_final(trainer, tok, cfg, "sft")


def main(argv: list[str] | None = None) -> int:
    return config_main("sft", SFTRunConfig, run, "SFT with TRL on sft.jsonl", "max_steps=10 lora.r=8", argv)


if __name__ == "__main__":
    sys.exit(main())
