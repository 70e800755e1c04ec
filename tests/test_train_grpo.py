"""GRPO stage: from the tiny SFT model, GRPO steps have non-zero gradients and the mean
reward of the last steps beats the first on a learnable fincalc subset; the logs carry TRL's and the
rewards module's metrics; reward plans, batch geometry and the reward adapter behave. CPU, no downloads.

The learnable subset: MCQ questions whose gold letter is always C. The SFT model writes the format
but picks letters at random; with the dual rewards (format + accuracy) GRPO learns to answer C.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dianjin import answer as fmt
from dianjin.config import from_dict, load_config
from dianjin.data.fincalc_rows import examples, rl_row
from dianjin.errors import DataError
from dianjin.files import iter_jsonl, write_jsonl
from dianjin.train.common import drop_long_prompts, load_prompt_items, load_tokenizer
from dianjin.train.grpo import GRPORunConfig, RewardAdapter, batch_geometry, reward_plan, run, vllm_wanted

STEPS = 16


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, tiny_sft) -> Path:
    root = tiny_sft
    exs = [e for e in examples(200, 7, forms=["mcq"], langs=["en"]) if e["gold"] == "C"][:16]
    data = root / "data" / "rl_c.jsonl"
    write_jsonl(data, [rl_row(e, "question") for e in exs])
    out = tmp_path_factory.mktemp("grpo") / "run"
    cfg = from_dict(
        GRPORunConfig,
        {
            "model": str(root / "sft" / "final"),
            "data": [str(data)],
            "output_dir": str(out),
            "rewards": {"format": 1.0, "accuracy": 1.0},
            "learning_rate": 3e-4,
            "max_steps": STEPS,
            "per_device_train_batch_size": 32,
            "num_generations": 8,
            "prompts_per_generation": None,
            "prompts_per_update": None,
            "temperature": 0.8,
            "top_p": 1.0,
            "max_completion_length": 64,
            "beta": 0.001,
            "logging_steps": 1,
            "save_strategy": "no",
            "sample_every": 8,
        },
    )
    run(cfg)
    return out


def rows(out: Path) -> list[dict]:
    return [m for m in iter_jsonl(out / "metrics.jsonl") if "reward" in m]


def test_gradients_flow(grpo_run):
    grads = [m["grad_norm"] for m in rows(grpo_run)]
    assert len(grads) == STEPS and all(g > 0 for g in grads)  # the loss is ~0 by construction; the gradient is not


def test_reward_rises(grpo_run):
    rewards = [m["reward"] for m in rows(grpo_run)]
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    assert last > first, rewards
    acc = [m["rewards/accuracy/mean"] for m in rows(grpo_run)]
    assert sum(acc[-4:]) > sum(acc[:4])  # it is the answers that improve, not only the format


@pytest.mark.parametrize(
    "key",
    [
        "loss",
        "grad_norm",
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "kl",  # TRL's core metrics (kl: beta > 0)
        "rewards/format/mean",
        "rewards/accuracy/mean",  # one per reward function
        "rewards/dianjin/mean",  # the gated monitor, added at weight 0
        "reward/fincalc",
        "format_rate",
        "accuracy",  # logged by the rewards module through log_metric
        "completions/mean_length",
        "completions/clipped_ratio",  # lengths and truncation
    ],
)
def test_logged(grpo_run, key):
    assert all(key in m for m in rows(grpo_run))


def test_rollout_samples_and_ids(grpo_run):
    data_ids = {it["id"] for it in load_prompt_items(load_config(GRPORunConfig, grpo_run / "config.yaml").data)}
    for step in (0, 8):
        samples = list(iter_jsonl(grpo_run / "samples" / f"step-{step:06d}.jsonl"))
        assert len(samples) == 32
        for s in samples:  # the recorded verdict agrees with the parser
            assert s["format_ok"] == fmt.parse_strict(s["completion"]).ok
    batches = list(iter_jsonl(grpo_run / "batches.jsonl"))
    assert [b["step"] for b in batches] == list(range(1, STEPS + 1))  # one rollout batch per step here
    assert all(len(b["ids"]) == 4 and set(b["ids"]) <= data_ids for b in batches)  # 32 completions = 4 prompts x 8


# --- reward plan, batch geometry, adapter -------------------------------------------------------
@pytest.mark.parametrize(
    "rewards, monitor, plan",
    [
        ({"dianjin": 1.0}, True, [("dianjin", 1.0)]),  # upstream's gated reward alone
        (
            {"format": 1.0, "accuracy": 1.0},
            True,
            [("format", 1.0), ("accuracy", 1.0), ("dianjin", 0.0)],
        ),  # dual + monitor
        ({"format": 0.5, "accuracy": 1.0}, False, [("format", 0.5), ("accuracy", 1.0)]),  # weights kept, no monitor
    ],
)
def test_reward_plan(rewards, monitor, plan):
    assert reward_plan(GRPORunConfig(rewards=rewards, monitor_gated=monitor)) == plan


@pytest.mark.parametrize("rewards", [{"bleu": 1.0}, {}])  # unknown name; no reward at all
def test_reward_plan_errors(rewards):
    with pytest.raises(DataError, match="rewards"):
        reward_plan(GRPORunConfig(rewards=rewards))


@pytest.mark.parametrize(
    "per_device, procs, per_gen, per_update, expect",
    [
        (8, 8, 1024, 256, {"gradient_accumulation_steps": 32, "steps_per_generation": 128}),  # upstream, 8 GPUs
        (8, 1, 1024, 256, {"gradient_accumulation_steps": 256, "steps_per_generation": 1024}),  # same batch on 1 GPU
        (16, 2, None, None, {"gradient_accumulation_steps": 1, "steps_per_generation": None}),  # TRL's own fields
        (16, 1, 64, 3, None),  # 3 prompts x 8 = 24 completions: not whole micro-batches of 16
        (8, 1, 24, 16, None),  # 24 prompts per rollout batch: not a whole number of 16-prompt updates
    ],
)
def test_batch_geometry(per_device, procs, per_gen, per_update, expect):
    cfg = GRPORunConfig(
        per_device_train_batch_size=per_device, prompts_per_generation=per_gen, prompts_per_update=per_update
    )
    if expect is None:
        with pytest.raises(DataError, match="prompts_per"):
            batch_geometry(cfg, procs)
    else:
        assert batch_geometry(cfg, procs) == expect


def test_defaults_follow_upstream():
    c = GRPORunConfig()
    assert (c.num_generations, c.temperature, c.top_p, c.learning_rate, c.beta) == (8, 0.6, 0.95, 1e-6, 0.001)
    assert (c.max_prompt_length, c.max_completion_length, c.rewards, c.epsilon) == (1024, 4096, {"dianjin": 1.0}, 0.2)


@pytest.mark.parametrize(
    "use_vllm, expect",
    [
        (None, False),  # auto without CUDA -> HF generation
        (False, False),  # forced off
        (True, True),  # forced on (vllm must then import at train time)
    ],
)
def test_vllm_choice(use_vllm, expect):
    import torch

    if use_vllm is None and torch.cuda.is_available():
        pytest.skip("auto picks vLLM on a CUDA machine when it is installed")
    assert vllm_wanted(GRPORunConfig(use_vllm=use_vllm)) is expect


def _c(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_adapter_scores_rows_of_different_tasks():
    mcq = {
        "id": "m",
        "task": "fincalc",
        "gold": "B",
        "form": "mcq",
        "choices": {"A": "1", "B": "2", "C": "3", "D": "4"},
    }
    num = {"id": "n", "task": "fincalc", "gold": "12.50", "form": "open", "unit": "%"}  # other keys than mcq's
    cflue = {"id": "c", "task": "cflue", "gold": "AC", "choices": {"A": "x", "B": "y", "C": "z", "D": "w"}}
    good = "<think>ok</think><answer>\\boxed{%s}</answer>"
    comps = [_c(good % "B"), _c(good % "12.5"), _c(good % "A,C"), _c("B")]  # last: right letter, no format
    metrics: dict[str, list[float]] = {}
    out = RewardAdapter("dianjin")(
        comps,
        [json.dumps(r) for r in (mcq, num, cflue, mcq)],
        log_metric=lambda k, v: metrics.setdefault(k, []).append(v),
    )
    assert out == [1.0, 1.0, 1.0, 0.0]
    mean = {k: sum(v) / len(v) for k, v in metrics.items()}  # TRL averages what was logged in a step
    assert mean["reward/fincalc"] == pytest.approx(2 / 3) and mean["reward/cflue"] == 1.0
    assert mean["format_rate"] == 0.75 and mean["accuracy"] == 1.0
    assert RewardAdapter("accuracy")(comps, [json.dumps(r) for r in (mcq, num, cflue, mcq)]) == [1.0, 1.0, 1.0, 1.0]


def test_overlong_prompts_are_dropped(grpo_run):
    cfg = load_config(GRPORunConfig, grpo_run / "config.yaml")
    items = load_prompt_items(cfg.data, need_gold=True)
    tok = load_tokenizer(cfg.model)
    lengths = [
        len(tok.apply_chat_template(it["prompt"], add_generation_prompt=True, return_dict=False)) for it in items
    ]
    limit = sorted(lengths)[len(lengths) // 2]  # the median: some prompts on each side
    kept, dropped = drop_long_prompts(items, tok, limit)
    assert [it["id"] for it in kept] == [it["id"] for it, n in zip(items, lengths) if n <= limit]
    assert sorted(dropped) == sorted(it["id"] for it, n in zip(items, lengths) if n > limit) and dropped


def test_rows_without_gold_are_refused(tmp_path):
    p = tmp_path / "rl.jsonl"
    p.write_text(json.dumps({"id": "x", "task": "fincalc", "prompt": [{"role": "user", "content": "q"}]}) + "\n")
    with pytest.raises(DataError, match="gold"):
        load_prompt_items([p], need_gold=True)
