"""Stage 2, GRPO: `dianjin grpo CONFIG.yaml [key=value ...]` runs TRL's GRPOTrainer with the dianjin rewards.

    dianjin grpo recipes/tiny_grpo.yaml                                              # CPU demo stage (after tiny_mine)
    torchrun --nproc_per_node 8 -m dianjin.train.grpo recipes/grpo_qwen2.5_7b.yaml   # 1 node x 8 GPUs
    accelerate launch --config_file ACC.yaml -m dianjin.train.grpo CONFIG.yaml

Defaults are upstream's verl `grpo.sh` (docs/upstream.md §6.1): 8 rollouts per prompt at
temperature 0.6 / top_p 0.95, lr 1e-6 (constant), KL in the loss with the k3 ("low_var_kl") estimator
and beta 0.001 (TRL's `beta`: its per-token KL is exp(ref-logp) - (ref-logp) - 1, i.e. k3), clip 0.2,
group-normalised advantages, prompts <= 1,024 and responses <= 4,096 tokens, 1,024 prompts per
rollout batch and 256 per optimizer step (4 updates per batch), 15 epochs. `prompts_per_generation`
and `prompts_per_update` are given in prompts, as upstream does, and turned into TRL's
`steps_per_generation` / `gradient_accumulation_steps` for the actual number of processes.
Note TRL counts *optimizer* steps: upstream's 60 steps are 240 TRL steps.

Deviations and choices:
* loss_type "bnpo": token-mean over each micro-batch, as verl's token-mean aggregation of that era
  does; TRL's default "dapo" normalises over the whole accumulated batch instead.
* Prompts longer than `max_prompt_length` are dropped before training (verl `filter_overlong_prompts`);
  TRL has no prompt limit of its own. The count is printed; the ids go to dropped_prompts.json.
* Rewards: `rewards` maps names in `dianjin.rewards.REWARDS` to weights: `{dianjin: 1}` is upstream's
  gated 0/1 reward; `{format: 1, accuracy: 1}` the paper's "dual" signals. With `monitor_gated` the
  gated reward is added at weight 0 when absent, so per-task reward (`reward/<task>`), `format_rate`
  and `accuracy` are always logged (the rewards module logs them through TRL's `log_metric`).
* Rollouts come from vLLM (colocated) when `use_vllm` is unset, vllm imports and CUDA is present;
  otherwise from HF `generate`.
Rollout samples (with verdicts) are saved every `sample_every` steps and the ids of every rollout
batch go to batches.jsonl.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dianjin.errors import DataError
from dianjin.files import JsonlAppender, atomic_write_json, write_jsonl
from dianjin.rewards import REWARDS, completion_text, get_reward
from dianjin.rundir import RunDir
from dianjin.train.common import (
    TrainCommon,
    check_common,
    config_main,
    divide,
    drop_long_prompts,
    load_prompt_items,
    load_tokenizer,
    peft_config,
    save_final,
    start_run,
    trainer_kwargs,
    world_size,
)
from dianjin.train.generate import score_text

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")  # TRL 1.16


@dataclass
class GRPORunConfig(TrainCommon):
    """`dianjin grpo` config. Shared fields are documented on `TrainCommon`; defaults here are upstream's."""

    learning_rate: float = 1e-6  # upstream actor lr 1e-6
    num_train_epochs: float = 15.0  # upstream total_epochs 15
    lr_scheduler_type: str = "constant"  # verl's default: constant lr, no warmup
    per_device_train_batch_size: int = 8  # completions per device per micro-step (upstream micro batch 8)
    save_steps: int = 50  # upstream save_freq 50 (note: TRL steps are optimizer steps)
    # --- rewards ---------------------------------------------------------------------------------
    rewards: dict[str, float] = field(default_factory=lambda: {"dianjin": 1.0})  # reward name -> weight
    # (names: dianjin = gated format-and-correct 0/1, format, accuracy; {format: 1, accuracy: 1} = dual)
    monitor_gated: bool = True  # add the gated reward at weight 0 when absent, for per-task/format/accuracy logs
    # --- rollouts --------------------------------------------------------------------------------
    num_generations: int = 8  # rollouts per prompt (upstream n=8)
    temperature: float = 0.6  # rollout temperature (upstream 0.6)
    top_p: float = 0.95  # rollout top_p (upstream 0.95)
    max_prompt_length: int | None = 1024  # prompts with more tokens are dropped (upstream filter_overlong_prompts)
    max_completion_length: int = 4096  # rollout length cap (upstream max_response_length)
    # prompts per rollout batch over all processes (upstream train_batch_size);
    prompts_per_generation: int | None = 1024
    # None: TRL's steps_per_generation below
    prompts_per_update: int | None = 256  # prompts per optimizer step (upstream ppo_mini_batch_size);
    # None: use gradient_accumulation_steps
    # TRL micro-steps per rollout batch, used when prompts_per_generation is None
    steps_per_generation: int | None = None
    # --- loss ------------------------------------------------------------------------------------
    beta: float = 0.001  # KL coefficient in the loss, k3 estimator (upstream kl_loss_coef, low_var_kl); 0: no ref model
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = "bnpo"  # TRL loss
    scale_rewards: Literal["group", "batch", "none"] = "group"  # advantage std-normalisation (upstream: per group)
    mask_truncated_completions: bool = False  # drop truncated rollouts from the loss (DAPO); upstream keeps them
    epsilon: float = 0.2  # clip range (upstream clip_ratio 0.2)
    epsilon_high: float | None = None  # upper clip (DAPO clip-higher); None: = epsilon
    num_iterations: int = 1  # passes over each rollout batch (upstream ppo_epochs 1)
    # --- generation engine -----------------------------------------------------------------------
    use_vllm: bool | None = None  # None: vLLM when it imports and CUDA is available, else HF generate
    vllm_mode: Literal["colocate", "server"] = "colocate"  # colocate: vLLM inside the training processes
    vllm_gpu_memory_utilization: float = 0.6  # upstream gpu_memory_utilization 0.6 (colocate)
    vllm_tensor_parallel_size: int = 1  # upstream used 4 (colocate: must divide the processes per node)


# --- rewards --------------------------------------------------------------------------------------
def reward_plan(cfg: GRPORunConfig, where: str = "config") -> list[tuple[str, float]]:
    """(reward name, weight) in TRL order; the gated monitor last at weight 0 when asked for."""
    unknown = [n for n in cfg.rewards if n not in REWARDS]
    if unknown or not cfg.rewards:
        raise DataError(where, None, "rewards", f"unknown or no reward names {unknown}; known: {', '.join(REWARDS)}")
    plan = [(n, float(w)) for n, w in cfg.rewards.items()]
    if cfg.monitor_gated and "dianjin" not in cfg.rewards:
        plan.append(("dianjin", 0.0))
    return plan


class RolloutRecorder:
    """Saves rollout ids (batches.jsonl) and, every `every` steps, the rollouts with their verdicts."""

    def __init__(self, run: RunDir | None, every: int):
        self.run, self.every, self.last_bucket = run, every, -1

    def __call__(self, step: int, rows: list[dict[str, Any]], completions: list[Any]) -> None:
        """`step`: optimizer steps done when the batch was generated (the policy's age). batches.jsonl
        names the first step that trains on it (step + 1), as SFT's rows do; samples/ the policy's step."""
        if self.run is None:
            return
        ids = list(dict.fromkeys(str(r.get("id")) for r in rows))  # each prompt once, in order
        with JsonlAppender(self.run.path / "batches.jsonl") as f:
            f.write({"step": step + 1, "ids": ids})
        if self.every <= 0 or step // self.every <= self.last_bucket:
            return
        self.last_bucket = step // self.every
        out = []
        for row, comp in zip(rows, completions):
            text = completion_text(comp)[0]
            item = {"id": row.get("id"), "task": row.get("task"), "example": row}
            out.append(
                {
                    "step": step,
                    "id": row.get("id"),
                    "task": row.get("task"),
                    "completion": text,
                    **score_text(text, item),
                }
            )
        write_jsonl(self.run.path / "samples" / f"step-{step:06d}.jsonl", out)


class RewardAdapter:
    """A `dianjin.rewards` function as a TRL reward over our dataset, whose `example_json` column holds
    each row's scoring fields (task, gold and the task's extras, which differ between tasks and so
    cannot share Arrow columns). Rows are scored one at a time, so the metrics the reward logs
    (format_rate, accuracy, reward/<task>) average over completions, whatever the mix of tasks."""

    def __init__(self, name: str, recorder: RolloutRecorder | None = None):
        self.fn, self.__name__, self.recorder = get_reward(name), name, recorder

    def __call__(
        self,
        completions: list[Any],
        example_json: list[str],
        trainer_state: Any = None,
        log_extra: Any = None,
        log_metric: Any = None,
        **_: Any,
    ) -> list[float | None]:
        rows = [json.loads(s) for s in example_json]
        out: list[float | None] = []
        for comp, row in zip(completions, rows):
            cols = {k: [v] for k, v in row.items()}
            out.extend(self.fn([comp], log_extra=log_extra, log_metric=log_metric, **cols))
        if self.recorder is not None:
            self.recorder(getattr(trainer_state, "global_step", 0), rows, completions)
        return out


# --- data and batch geometry ----------------------------------------------------------------------
def rl_dataset(items: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": it["prompt"],
                "id": it["id"],
                "task": it["task"],
                "example_json": json.dumps(it["example"], ensure_ascii=False),
            }
            for it in items
        ]
    )


def batch_geometry(cfg: GRPORunConfig, processes: int, where: str = "config") -> dict[str, int | None]:
    """TRL's gradient_accumulation_steps and steps_per_generation from prompts per update/generation."""
    per_micro = cfg.per_device_train_batch_size * processes  # completions per micro-step, all processes
    ga = cfg.gradient_accumulation_steps
    if cfg.prompts_per_update:
        ga = divide(cfg.prompts_per_update * cfg.num_generations, per_micro, "prompts_per_update", where)
    spg = cfg.steps_per_generation
    if cfg.prompts_per_generation:
        spg = divide(cfg.prompts_per_generation * cfg.num_generations, per_micro, "prompts_per_generation", where)
        divide(spg, ga, "prompts_per_generation", where)  # whole optimizer steps per rollout batch
    gen_batch = per_micro * (spg or ga)
    divide(gen_batch, cfg.num_generations, "num_generations", where)  # whole groups per rollout batch
    return {"gradient_accumulation_steps": ga, "steps_per_generation": spg}


def vllm_wanted(cfg: GRPORunConfig) -> bool:
    if cfg.use_vllm is not None:
        return cfg.use_vllm
    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def grpo_args(cfg: GRPORunConfig, where: str = "config") -> Any:
    from trl import GRPOConfig

    plan = reward_plan(cfg, where)
    use_vllm = vllm_wanted(cfg)
    vllm = (
        {
            "vllm_mode": cfg.vllm_mode,
            "vllm_gpu_memory_utilization": cfg.vllm_gpu_memory_utilization,
            "vllm_tensor_parallel_size": cfg.vllm_tensor_parallel_size,
        }
        if use_vllm
        else {}
    )
    return GRPOConfig(
        **{
            **trainer_kwargs(cfg),
            **batch_geometry(cfg, world_size(), where),
            "num_generations": cfg.num_generations,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_completion_length": cfg.max_completion_length,
            "beta": cfg.beta,
            "loss_type": cfg.loss_type,
            "scale_rewards": cfg.scale_rewards,
            "mask_truncated_completions": cfg.mask_truncated_completions,
            "epsilon": cfg.epsilon,
            "epsilon_high": cfg.epsilon_high,
            "num_iterations": cfg.num_iterations,
            "reward_weights": [w for _, w in plan],
            "use_vllm": use_vllm,
            **vllm,
            **cfg.trainer_args,
        }
    )


# --- run ------------------------------------------------------------------------------------------
def run(cfg: GRPORunConfig, where: str = "config") -> Path:
    """Train; return the final model directory."""
    check_common(cfg, where)
    args = grpo_args(cfg, where)
    tok = load_tokenizer(cfg.model)
    items, dropped = drop_long_prompts(load_prompt_items(cfg.data, need_gold=True), tok, cfg.max_prompt_length)
    if not items:
        raise DataError(where, None, "max_prompt_length", f"every prompt is longer than {cfg.max_prompt_length} tokens")
    run_dir, ckpt = start_run(cfg, "grpo", where)
    if dropped:
        print(f"[grpo] dropped {len(dropped)} prompts over {cfg.max_prompt_length} tokens", flush=True)
    if run_dir is not None:
        atomic_write_json(run_dir.path / "dropped_prompts.json", dropped)

    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOTrainer

    from dianjin.train.callbacks import MetricsCallback

    # TRL turns activation checkpointing off and on around every rollout by transformers 5's old
    # names: three FutureWarnings a step that the user cannot act on
    warnings.filterwarnings("ignore", message=r"`\w*gradient_checkpointing\w*` is deprecated", category=FutureWarning)
    recorder = RolloutRecorder(run_dir, cfg.sample_every)
    funcs = [RewardAdapter(name, recorder if i == 0 else None) for i, (name, _) in enumerate(reward_plan(cfg, where))]
    # list(funcs): a list[RewardAdapter] is not a list of TRL's reward-function union (list is invariant)
    trainer = GRPOTrainer(
        model=cfg.model,
        reward_funcs=list(funcs),
        args=args,
        train_dataset=rl_dataset(items),
        processing_class=tok,
        peft_config=peft_config(cfg),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(MetricsCallback(run_dir, "grpo"))
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return save_final(trainer, tok, cfg, "grpo")


def main(argv: list[str] | None = None) -> int:
    return config_main(
        "grpo", GRPORunConfig, run, "GRPO with TRL on rl.jsonl", "max_steps=10 rewards={format: 1, accuracy: 1}", argv
    )


if __name__ == "__main__":
    sys.exit(main())
