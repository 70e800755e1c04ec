"""GRPO step overhead: `dianjin grpo` (dianjin.train.grpo.run) against a bare TRL GRPOTrainer script.

    .venv/bin/python bench/bench_grpo.py [--steps 10] [--repeat 5] [--threads 1] [--workdir DIR] [--keep] [--json OUT]

1. Setup, in a temporary directory: the tiny model (dianjin.model.tiny) warm-started by a short `dianjin sft`
   (recipes/tiny_sft.yaml, 100 steps) so that rollouts end with EOS and get rewards, as in real use; the
   FinCalc RL prompts (`dianjin.data.fincalc_rows`).
2. Two arms on the same model, data and settings (recipes/tiny_grpo.yaml: 4 prompts x 8 rollouts per step,
   64-token completions, beta 0.001 with a reference model, format + accuracy rewards, HF generation):
   - dianjin: `dianjin.train.grpo.run(cfg)`, i.e. what `dianjin grpo recipes/tiny_grpo.yaml` runs, with
     everything on: run directory, metrics.jsonl, progress lines, rollout ids and sample dumps, the
     gated monitor reward at weight 0 (per-task reward, format rate, accuracy), JSON example columns;
   - bare TRL: the script a TRL user writes: tokenizer + Dataset.from_list + GRPOConfig with the same
     values + `dianjin.rewards.format_reward` / `accuracy_reward` on plain columns, `trainer.train()`.
   The bare GRPOConfig is written out literally; before timing, the script checks that every setting
   that changes the work (batch geometry, lengths, sampling, loss, seed, precision) equals the one
   `dianjin.train.grpo.grpo_args` builds, and after, that both arms generated the same number of tokens.
3. Each run is a fresh process (`--child`, so neither arm inherits the other's heap, caches or threads);
   each arm runs `--repeat` times, alternating (A B, then B A, ...), after one warm-up run of each;
   checkpoints are off in both (save_strategy "no"). Timed: `trainer.train()`'s wall time (the training
   loop with all callbacks, not the model loading) / steps; TRL's own `step_time` (training_step only:
   generation, rewards, loss) is shown too, as is each arm's whole call (setup, train, final save).
   tokens/s = TRL's num_input_tokens_seen (prompt + completion tokens) / train wall time. The process's
   CPU time per step is shown too: on a shared machine it moves less with other jobs' load than wall time.
   Medians over the repeats, and the median of the ratios of adjacent (paired) runs.
   Also timed: the two places where the arms run different code (reward functions, trainer callbacks),
   whose difference per step is the overhead with the machine's noise taken out.
Exit status 1 if dianjin's step time is more than 5% above bare TRL's, as the median ratio of paired runs
(on a shared VM a run's speed drifts by +-10%; adjacent runs see the same conditions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET = 0.05  # dianjin's step time may be at most 5% above bare TRL's
# GRPOConfig fields that change the work done per step: both arms must agree on all of them.
SAME = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "steps_per_generation",
    "generation_batch_size",
    "num_generations",
    "max_completion_length",
    "temperature",
    "top_p",
    "top_k",
    "beta",
    "loss_type",
    "scale_rewards",
    "epsilon",
    "num_iterations",
    "learning_rate",
    "lr_scheduler_type",
    "max_steps",
    "seed",
    "bf16",
    "use_cpu",
    "use_vllm",
    "mask_truncated_completions",
    "max_grad_norm",
    "weight_decay",
    "gradient_checkpointing",
    "reward_weights_len",
    "save_strategy",
    "logging_steps",
)

TIMES: list[dict[str, Any]] = []  # one entry per trainer.train() call, filled by the wrapper below


def timed_train() -> None:
    """Wrap GRPOTrainer.train (used by both arms) to record its wall and CPU time and TRL's logs, and time the
    two places where the arms run different code: the reward functions (TRL's `_calculate_rewards`: dianjin's
    adapters, monitor reward and rollout recorder vs the bare reward functions) and the trainer callbacks
    (dianjin's metrics/progress callback vs TRL's printer). Everything else is the same TRL code on the same data."""
    from transformers.trainer_callback import CallbackHandler
    from trl import GRPOTrainer

    spent = {"rewards": 0.0, "callbacks": 0.0}

    def timed(cls: type, name: str, key: str) -> None:
        inner = getattr(cls, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t

        setattr(cls, name, wrapper)

    timed(GRPOTrainer, "_calculate_rewards", "rewards")
    timed(CallbackHandler, "call_event", "callbacks")
    train = GRPOTrainer.train

    def wrapper(self, *args, **kwargs):
        spent.update(rewards=0.0, callbacks=0.0)
        t0, c0 = time.perf_counter(), time.process_time()
        out = train(self, *args, **kwargs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        logs = [h for h in self.state.log_history if "step_time" in h]
        TIMES.append(
            {
                "wall": wall,
                "cpu": cpu,
                "steps": self.state.global_step,
                "tokens": self.state.num_input_tokens_seen,
                "rewards": spent["rewards"],
                "callbacks": spent["callbacks"],
                "step_time": statistics.median(h["step_time"] for h in logs) if logs else float("nan"),
                "reward": statistics.mean(h["reward"] for h in logs if "reward" in h) if logs else float("nan"),
            }
        )
        return out

    GRPOTrainer.train = wrapper  # type: ignore[method-assign]


# --- setup ---------------------------------------------------------------------------------------------
def setup(work: Path) -> tuple[Path, Path]:
    """(SFT model dir, rl.jsonl): the tiny model after a short SFT, and the demo RL prompts."""
    from dianjin.config import load_config
    from dianjin.data.fincalc_rows import write_rows
    from dianjin.model.tiny import build_tiny
    from dianjin.train import sft

    data = work / "data"
    draw: dict[str, Any] = {"forms": ["mcq"], "langs": ["en", "zh"]}
    build_tiny(work / "base")
    write_rows(data / "sft.jsonl", "sft", 400, 0, **draw)
    scfg = load_config(
        sft.SFTRunConfig,
        ROOT / "recipes" / "tiny_sft.yaml",
        [
            f"model={work / 'base'}",
            f"data=[{data / 'sft.jsonl'}]",
            "sample_data=[]",
            f"output_dir={work / 'sft'}",
            "max_steps=100",
            "sample_every=0",
            "save_strategy=no",
            "logging_steps=50",
        ],
    )
    final = sft.run(scfg)
    return final, write_rows(data / "rl.jsonl", "rl", 64, 1, **draw)


def grpo_config(model: Path, rl: Path, out: Path, steps: int) -> Any:
    from dianjin.config import load_config
    from dianjin.train.grpo import GRPORunConfig

    return load_config(
        GRPORunConfig,
        ROOT / "recipes" / "tiny_grpo.yaml",
        [f"model={model}", f"data=[{rl}]", f"output_dir={out}", f"max_steps={steps}", "save_strategy=no"],
    )


# --- the two arms ----------------------------------------------------------------------------------------
def run_dianjin(model: Path, rl: Path, out: Path, steps: int) -> None:
    from dianjin.train import grpo

    grpo.run(grpo_config(model, rl, out, steps))


def bare_args(out: Path, steps: int) -> Any:
    """GRPOConfig as a TRL user writes it for recipes/tiny_grpo.yaml (values copied by hand)."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out),
        max_steps=steps,
        learning_rate=3e-4,
        lr_scheduler_type="constant",
        warmup_steps=0.0,
        per_device_train_batch_size=32,
        gradient_accumulation_steps=1,
        num_generations=8,
        max_completion_length=64,
        temperature=0.8,
        top_p=1.0,
        beta=0.001,
        loss_type="bnpo",
        scale_rewards="group",
        epsilon=0.2,
        num_iterations=1,
        reward_weights=[1.0, 1.0],
        seed=42,
        data_seed=42,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_vllm=False,
        model_init_kwargs={"dtype": "auto"},
    )


def run_bare(model: Path, rl: Path, out: Path, steps: int) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    from dianjin.rewards import accuracy_reward, format_reward

    tok = AutoTokenizer.from_pretrained(model)
    tok.padding_side = "left"
    rows = [json.loads(line) for line in rl.read_text(encoding="utf-8").splitlines() if line.strip()]
    ds = Dataset.from_list(
        [
            {
                "prompt": r["prompt"],
                "task": r["task"],
                "gold": r["gold"],
                "form": r["extra"].get("form"),
                "unit": r["extra"].get("unit"),
                "choices": r["extra"].get("choices"),
            }
            for r in rows
        ]
    )
    trainer = GRPOTrainer(
        model=str(model),
        reward_funcs=[format_reward, accuracy_reward],
        args=bare_args(out, steps),
        train_dataset=ds,
        processing_class=tok,
    )
    trainer.train()


ARMS = {"dianjin": run_dianjin, "bare TRL": run_bare}


def check_same_settings(model: Path, rl: Path, work: Path, steps: int) -> None:
    """Every work-changing GRPOConfig value of the bare script equals dianjin's."""
    from dianjin.train.grpo import grpo_args

    ours = grpo_args(grpo_config(model, rl, work / "check", steps))
    bare = bare_args(work / "check", steps)

    def get(a: Any, k: str) -> Any:
        return len(a.reward_weights) if k == "reward_weights_len" else getattr(a, k)

    diff = {k: (get(ours, k), get(bare, k)) for k in SAME if get(ours, k) != get(bare, k)}
    # dianjin adds its gated monitor reward at weight 0: same weighted reward, one more scorer call per completion
    if diff.get("reward_weights_len") == (3, 2) and list(ours.reward_weights) == [1.0, 1.0, 0.0]:
        diff.pop("reward_weights_len")
    if diff:
        raise SystemExit(f"the arms' settings differ (dianjin, bare): {diff}")


# --- main ------------------------------------------------------------------------------------------------
ARM_KEYS = {"dianjin": "dianjin", "bare": "bare TRL"}


def child(args: argparse.Namespace) -> int:
    """One timed run of one arm, in this fresh process; the record goes to --result as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    timed_train()
    t0 = time.perf_counter()
    ARMS[ARM_KEYS[args.child]](args.model, args.rl, args.out, args.steps)
    rec = {**TIMES[-1], "call": time.perf_counter() - t0}
    args.result.write_text(json.dumps(rec))
    return 0


def run_child(arm: str, model: Path, rl: Path, out: Path, steps: int, threads: int) -> dict[str, Any]:
    result = out.with_suffix(".json")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        arm,
        "--model",
        str(model),
        "--rl",
        str(rl),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--threads",
        str(threads),
        "--result",
        str(result),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{arm} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    rec = json.loads(result.read_text())
    shutil.rmtree(out, ignore_errors=True)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="GRPO steps per run (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per arm (default %(default)s)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default %(default)s: steadier on a shared box)"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="work directory (a finished setup there is reused)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    for name in ("--child", "--model", "--rl", "--out", "--result"):  # internal: one run in a child process
        ap.add_argument(name, default=None, help=argparse.SUPPRESS, type=str if name == "--child" else Path)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_grpo_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        model, rl = work / "sft" / "final", work / "data" / "rl.jsonl"
        if not (model.is_dir() and rl.is_file()):
            model, rl = setup(work)
        print(
            f"setup: {time.perf_counter() - t0:.1f} s (tiny model + 100-step SFT warm start + RL prompts)", flush=True
        )
        check_same_settings(model, rl, work, args.steps)
        arms = list(ARM_KEYS)
        order = [a for i in range(args.repeat) for a in (arms if i % 2 == 0 else arms[::-1])]
        results: dict[str, list[dict[str, Any]]] = {ARM_KEYS[a]: [] for a in arms}
        for k, arm in enumerate(arms + order):  # the first two are warm-up runs (page cache, compiled regexes)
            rec = run_child(arm, model, rl, work / "runs" / f"{k:02d}-{arm}", args.steps, args.threads)
            if k >= 2:
                results[ARM_KEYS[arm]].append(rec)
            print(
                f"{'warm-up' if k < 2 else 'run'} {ARM_KEYS[arm]}: {rec['wall'] / rec['steps'] * 1000:.0f} ms/step, "
                f"{rec['tokens'] / rec['wall']:.0f} tok/s, TRL step_time {rec['step_time'] * 1000:.0f} ms, "
                f"reward {rec['reward']:.3f}, tokens {rec['tokens']}",
                flush=True,
            )
        return report(results, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> int:
    med = {
        name: {
            "ms_per_step": statistics.median(r["wall"] / r["steps"] * 1000 for r in rs),
            "cpu_ms_per_step": statistics.median(r["cpu"] / r["steps"] * 1000 for r in rs),
            "tokens_per_s": statistics.median(r["tokens"] / r["wall"] for r in rs),
            "trl_step_time_ms": statistics.median(r["step_time"] * 1000 for r in rs),
            "rewards_ms_per_step": statistics.median(r["rewards"] / r["steps"] * 1000 for r in rs),
            "callbacks_ms_per_step": statistics.median(r["callbacks"] / r["steps"] * 1000 for r in rs),
            "call_s": statistics.median(r["call"] for r in rs),
            "tokens": sorted({r["tokens"] for r in rs}),
            "runs_ms_per_step": [round(r["wall"] / r["steps"] * 1000, 1) for r in rs],
        }
        for name, rs in results.items()
    }
    ours, bare = med["dianjin"], med["bare TRL"]
    overhead = ours["ms_per_step"] / bare["ms_per_step"] - 1
    cpu_overhead = ours["cpu_ms_per_step"] / bare["cpu_ms_per_step"] - 1
    # runs come in adjacent pairs (A B, B A, ...): the median of the pairs' ratios cancels slow drift of the machine
    # the per-step time the arms spend in code that differs (rewards + callbacks), relative to bare TRL's step
    attributed = (
        ours["rewards_ms_per_step"]
        + ours["callbacks_ms_per_step"]
        - bare["rewards_ms_per_step"]
        - bare["callbacks_ms_per_step"]
    ) / bare["ms_per_step"]
    paired = statistics.median(a["wall"] / b["wall"] for a, b in zip(results["dianjin"], results["bare TRL"])) - 1
    same_work = ours["tokens"] == bare["tokens"]
    print(
        f"\nGRPO, tiny model, {args.steps} steps per run, {args.repeat} runs per arm (medians), torch threads {args.threads}"
    )
    print(
        "| arm | ms/step | CPU ms/step | tokens/s | TRL step_time ms | rewards ms/step | callbacks ms/step "
        "| whole call s | ms/step per run | tokens per run |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for name, m in med.items():
        print(
            f"| {name} | {m['ms_per_step']:.0f} | {m['cpu_ms_per_step']:.0f} | {m['tokens_per_s']:.0f} | {m['trl_step_time_ms']:.0f} | "
            f"{m['rewards_ms_per_step']:.1f} | {m['callbacks_ms_per_step']:.1f} | "
            f"{m['call_s']:.1f} | {', '.join(map(str, m['runs_ms_per_step']))} | {', '.join(map(str, m['tokens']))} |"
        )
    print(
        f"\noverhead of dianjin per step (target <= {TARGET * 100:.0f}%): {paired * 100:+.1f}% median of paired runs "
        f"(the gate); {overhead * 100:+.1f}% between the arms' medians, {cpu_overhead * 100:+.1f}% in CPU time; "
        f"{attributed * 100:+.2f}% measured in the code that differs; "
        f"same tokens generated in both arms: {same_work}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "arms": med,
                    "overhead": overhead,
                    "cpu_overhead": cpu_overhead,
                    "paired_overhead": paired,
                    "attributed_overhead": attributed,
                    "same_work": same_work,
                    "steps": args.steps,
                    "repeat": args.repeat,
                    "threads": args.threads,
                },
                indent=2,
            )
        )
    return 0 if paired <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
