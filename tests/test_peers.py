"""verl as it runs: a `dianjin export verl` through verl's OWN code, in virtualenvs of its own.

Opt-in (marker `peers`, skipped otherwise): `pytest -m peers tests/test_peers.py`, or set DIANJIN_PEERS=1.
Each peer gets a virtualenv under $DIANJIN_PEERS_CACHE (default ~/.cache/dianjin-peers/), built on first
use (pip, from PyPI: 1-2 minutes each) and reused while its pins are unchanged. verl goes in with
`--no-deps` plus only what verl's Hydra config, `RLHFDataset` and reward manager import (`Peer.pins`),
under a constraint that keeps this venv's torch: torch itself is linked in from this venv (CPU is
enough). `dianjin` is importable there through a .pth file pointing at this checkout's src/ (what
`pip install --no-deps -e` does), with math-verify's antlr4_9_3 extra, as docs/training.md says.

For each peer (verl version, export style):
1. `dianjin export verl --verl-style STYLE` of rows of every rule-scored task, with a tiny tokenizer
   (`dianjin.model.tiny`, config written the way transformers 4.x reads it) as the model;
2. `run_grpo.sh` with PYTHON = a stand-in that runs the peer's Python for the reward preflight and records
   the `-m verl.trainer.main_ppo` arguments instead of training;
3. in the peer's Python (`DRIVER`): verl's Hydra config composed from those arguments (plus the other
   style's checkpoint key, which verl must reject), verl's `RLHFDataset` on the exported parquet, and
   verl's reward path with the custom reward function verl resolves from the config: 0.3.x
   `main_ppo.get_custom_reward_fn` + `NaiveRewardManager` on a `DataProto`; >= 0.9 the trainer's
   `RewardLoopWorker` (without Ray). Each row is scored with right and wrong responses, tokenized and
   decoded by verl as rollouts are;
4. here: every row's reward is the expected float, every data_source and exported row came through.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from exportkit import rl_row
from taskdata import CFLUE, FINQA, reference_reply

from dianjin import answer as fmt
from dianjin.cli import main as cli_main
from dianjin.data.synthetic import fincalc
from dianjin.tasks import get_task

pytestmark = [pytest.mark.peers, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DIANJIN_PEERS_CACHE", Path.home() / ".cache" / "dianjin-peers"))


@pytest.fixture(autouse=True)
def _opt_in(request):
    """Skipped unless asked for: `-m peers` (not `-m "not peers"`) or DIANJIN_PEERS=1."""
    expr = request.config.getoption("markexpr") or ""
    if os.environ.get("DIANJIN_PEERS") != "1" and ("peers" not in expr or "not peers" in expr):
        pytest.skip(
            "opt-in: pytest -m peers, or DIANJIN_PEERS=1 (builds verl virtualenvs under ~/.cache/dianjin-peers)"
        )


@dataclass(frozen=True)
class Peer:
    verl: str
    style: str  # dianjin export verl --verl-style
    pins: tuple[str, ...]  # installed with their dependencies, after verl with --no-deps

    @property
    def venv(self) -> Path:
        digest = hashlib.sha256(json.dumps([self.verl, *self.pins, torch_version()]).encode()).hexdigest()[:10]
        return CACHE / f"verl-{self.verl}-{digest}"


COMMON = ("omegaconf==2.3.1", "hydra-core==1.3.8", "math-verify[antlr4_9_3]==0.9.0", "pyyaml")
PEERS = [
    # upstream's verl (April 2025) and what it ran with: transformers 4.51, tensordict <= 0.6.2, pandas 2, numpy 1
    Peer(
        "0.3.0.post1",
        "upstream",
        (
            "transformers==4.51.3",
            "tensordict==0.6.2",
            "pandas==2.2.3",
            "numpy==1.26.4",
            "pyarrow==19.0.1",
            "ray==2.44.1",
            "codetiming==1.4.0",
            "torchdata==0.11.0",
            *COMMON,
        ),
    ),
    # a current verl: transformers >= 5.5.3, < 5.11; tensordict 0.8-0.10; datasets reads the parquet
    Peer(
        "0.9.1",
        "current",
        (
            "transformers==5.10.4",
            "tensordict==0.10.0",
            "pandas==3.1.1",
            "numpy==2.4.6",
            "pyarrow==26.0.1",
            "ray==2.60.0",
            "datasets==5.2.0",
            "pillow==13.0.0",
            "aiohttp==3.14.5",
            "codetiming==1.4.0",
            *COMMON,
        ),
    ),
]


def torch_version() -> str:
    import torch

    return torch.__version__


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ensure_venv(peer: Peer) -> Path:
    """The peer's Python, building its virtualenv first unless a complete one is cached."""
    pytest.importorskip("torch")
    py = peer.venv / "bin" / "python"
    if (peer.venv / ".ready").exists():
        return py
    shutil.rmtree(peer.venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", str(peer.venv)])
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    import torch

    dist = f"torch-{torch.__version__}.dist-info"
    for name in ("torch", "torchgen", "functorch", dist):  # this venv's torch (CPU), not a 2 GB download
        if (ours / name).exists():
            (site / name).symlink_to(ours / name)
    constraints = peer.venv / "constraints.txt"
    constraints.write_text(f"torch=={torch.__version__}\n")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "--no-deps", f"verl=={peer.verl}"])
    run([*pip, "-c", str(constraints), *peer.pins])
    (site / "dianjin_checkout.pth").write_text(str(ROOT / "src") + "\n")  # as pip install --no-deps -e
    (peer.venv / ".ready").write_text(json.dumps({"verl": peer.verl, "pins": peer.pins}) + "\n")
    return py


# --- the exported data -----------------------------------------------------------------------------------
MATH = [
    {"id": f"math-{i}", "task": "math500", "question": f"What is {i} + 1/2?", "gold": f"{i}+\\frac{{1}}{{2}}"}
    for i in (1, 2)
]
GPQA = {
    "id": "gpqa-1",
    "task": "gpqa",
    "question": "A photon of which energy ...?",
    "gold": "C",
    "choices": {"A": "1 eV", "B": "2 eV", "C": "3 eV", "D": "4 eV"},
}


def examples() -> list[dict]:
    ccc = get_task("ccc").load(str(ROOT / "tests" / "assets" / "ccc_sample.jsonl"))[:2]
    return [
        *CFLUE,
        *fincalc.generate(2, 3, forms=("open",)),
        *fincalc.generate(2, 4, forms=("mcq",)),
        FINQA,
        *MATH,
        GPQA,
        *ccc,
    ]


def responses(ex: dict) -> list[tuple[str, float]]:
    """(response, expected reward): the reference answer, the right option's text for an MCQ (only right when
    the reward decoded `choices` from extra_info), and a wrong answer."""
    out = [(reference_reply(ex), 1.0)]
    if ex.get("form") == "mcq" or ex["task"] == "gpqa":
        out.append((fmt.render("逐步推理。", "", ex["choices"][ex["gold"]]), 1.0))
    if ex["task"] == "ccc":
        wrong = fmt.render(
            "逐步推理。", "最终结果为：客服未违规。" if ex["gold"] == "violation" else "最终结果为：客服违规。"
        )
    elif ex.get("choices"):
        wrong = fmt.render("逐步推理。", "", "A" if ex["gold"] != "A" else "B")
    else:
        wrong = fmt.render("逐步推理。", "", "-98765.4")
    return [*out, (wrong, 0.0), ("no answer", 0.0)]


def tiny_tokenizer(out: Path) -> Path:
    """dianjin's tiny tokenizer, its config in the shape transformers 4.x and 5.x both read."""
    from dianjin.model.tiny import build_tokenizer

    build_tokenizer(out)
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": cfg["eos_token"],
                "pad_token": cfg["pad_token"],
                "bos_token": None,
                "additional_special_tokens": cfg.get("extra_special_tokens") or ["<|im_start|>"],
                "model_max_length": cfg["model_max_length"],
                "padding_side": "left",
                "chat_template": (out / "chat_template.jinja").read_text(),
            },
            ensure_ascii=False,
        )
    )
    return out


FAKE_PYTHON = """#!/usr/bin/env bash
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "verl.trainer.main_ppo" ]; then
  shift 2
  printf '%s\\n' "$@" > "$RECORD"
  exit 0
fi
exec "$PEER_PYTHON" "$@"
"""

# Runs in the peer's Python: argv = spec.json, out.json.
DRIVER = r"""
import json, os, re, sys, time
t0 = time.time()
spec = json.load(open(sys.argv[1]))
import numpy as np
import torch
import transformers
import verl
from hydra import compose, initialize_config_dir
from verl import DataProto
from verl.utils.tokenizer import hf_tokenizer

version = tuple(int(x) for x in re.findall(r"\d+", verl.__version__)[:3])
config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def config(overrides):
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


cfg = config(spec["overrides"])  # what main_ppo's @hydra.main builds from run_grpo.sh's arguments
try:
    config(spec["overrides"] + [spec["other_style_key"]])
    other_rejected = None
except Exception as e:  # Hydra: the key is not in verl's config
    other_rejected = f"{type(e).__name__}: {str(e).splitlines()[0]}"
tok = hf_tokenizer(cfg.actor_rollout_ref.model.path)
if version < (0, 4, 1):  # upstream's verl: ray_trainer._create_dataloader, main_ppo's reward_fn
    from verl.trainer.main_ppo import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
    from verl.workers.reward_manager import NaiveRewardManager

    dataset = RLHFDataset(parquet_files=cfg.data.train_files, tokenizer=tok, processor=None,
                          prompt_key=cfg.data.prompt_key, image_key=cfg.data.get("image_key", "images"),
                          max_prompt_length=cfg.data.max_prompt_length, filter_prompts=True,
                          return_raw_chat=cfg.data.get("return_raw_chat", False),
                          truncation=cfg.data.get("truncation", "error"),
                          filter_overlong_prompts=cfg.data.filter_overlong_prompts)
    fn = get_custom_reward_fn(cfg)
    manager = NaiveRewardManager(tokenizer=tok, num_examine=0, compute_score=fn)

    def score(data):
        tensor = manager(data)  # the reward at each response's last token, as verl 0.3's trainer gets it
        return [(float(row.sum()), "tensor") for row in tensor]
elif version >= (0, 9, 0):  # the trainer's reward loop worker (RewardLoopManager runs it as a Ray actor)
    from verl.experimental.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.dataset.rl_dataset import collate_fn

    dataset = create_rl_dataset(cfg.data.train_files, cfg.data, tok, None, is_train=True)
    worker = RewardLoopWorker(cfg)

    def score(data):
        outs = worker.loop.run_until_complete(worker.compute_score_batch(data))
        return [(o["reward_score"], type(o["reward_score"]).__name__) for o in outs]
else:
    sys.exit(f"no driver for verl {verl.__version__} (0.3.x and >= 0.9 only)")

items = [dataset[i] for i in range(len(dataset))]
rows = [(item, text, expected) for item in items for text, expected in spec["responses"][item["extra_info"]["id"]]]
prompts = []
for item, _, _ in rows:
    if "input_ids" in item:  # verl 0.3 tokenizes in the dataset (left-padded)
        prompts.append(item["input_ids"][item["attention_mask"].bool()].tolist())
    else:  # later verl renders the chat in the agent loop
        text = tok.apply_chat_template(list(item["raw_prompt"]), add_generation_prompt=True, tokenize=False)
        prompts.append(tok(text, add_special_tokens=False)["input_ids"])
answers = [tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for _, text, _ in rows]
P, R, pad = max(map(len, prompts)), max(map(len, answers)), tok.pad_token_id
prompt_ids = torch.tensor([[pad] * (P - len(p)) + p for p in prompts])
prompt_mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p in prompts])
response_ids = torch.tensor([a + [pad] * (R - len(a)) for a in answers])
response_mask = torch.tensor([[1] * len(a) + [0] * (R - len(a)) for a in answers])
mask = torch.cat([prompt_mask, response_mask], dim=1)
non_tensors = {k: v for k, v in collate_fn([r[0] for r in rows]).items() if isinstance(v, np.ndarray)}
data = DataProto.from_dict(tensors={"prompts": prompt_ids, "responses": response_ids, "input_ids": torch.cat([prompt_ids, response_ids], 1),
                                    "attention_mask": mask, "position_ids": torch.clamp(mask.cumsum(-1) - 1, min=0)},
                           non_tensors=non_tensors)
scores = score(data)
key = cfg.reward.custom_reward_function if "reward" in cfg and "custom_reward_function" in cfg.reward else cfg.custom_reward_function
json.dump({"verl": verl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
           "numpy": np.__version__, "dataset_rows": len(dataset), "other_style_rejected": other_rejected,
           "reward_function": [key.path, key.name], "seconds": round(time.time() - t0, 1),
           "rows": [{"id": item["extra_info"]["id"], "data_source": item["data_source"], "expected": expected,
                     "reward": s, "kind": kind} for (item, _, expected), (s, kind) in zip(rows, scores)]},
          open(sys.argv[2], "w"), indent=1)
"""

CHECKPOINT_KEYS = {
    "upstream": "actor_rollout_ref.actor.checkpoint.save_contents=['model']",  # the other style's key
    "current": "actor_rollout_ref.actor.checkpoint.contents=['model']",
}


@pytest.mark.parametrize("peer", PEERS, ids=[f"verl-{p.verl}-{p.style}" for p in PEERS])
def test_verl_runs_our_export(peer, tmp_path):
    start = time.time()
    py = ensure_venv(peer)
    built = time.time() - start
    exs = examples()
    rl = [rl_row(ex) for ex in exs]
    (tmp_path / "rl.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rl), encoding="utf-8")
    model = tiny_tokenizer(tmp_path / "tok")
    assert (
        cli_main(
            [
                "export",
                "verl",
                "--data",
                str(tmp_path / "rl.jsonl"),
                "--model",
                str(model),
                "--out",
                str(tmp_path / "out"),
                "--verl-style",
                peer.style,
                "--val-fraction",
                "0",
                "--n-gpus",
                "1",
                "--tp",
                "1",
                "--n",
                "1",
                "--train-batch-size",
                "4",
                "--mini-batch-size",
                "4",
                "--micro-batch-size",
                "4",
            ]
        )
        == 0
    )
    # run_grpo.sh with the peer's Python: its preflight for real, verl's launch recorded
    (tmp_path / "python").write_text(FAKE_PYTHON)
    (tmp_path / "python").chmod(0o755)
    env = {**os.environ, "PYTHON": str(tmp_path / "python"), "PEER_PYTHON": str(py), "RECORD": str(tmp_path / "argv")}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        ["bash", str(tmp_path / "out" / "run_grpo.sh"), "data.max_prompt_length=4096"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"(verl {peer.verl})" in proc.stdout  # the preflight ran in verl's Python and checked its version
    overrides = (tmp_path / "argv").read_text().splitlines()
    spec = {
        "overrides": overrides,
        "other_style_key": CHECKPOINT_KEYS[peer.style],
        "responses": {ex["id"]: responses(ex) for ex in exs},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False))
    (tmp_path / "driver.py").write_text(DRIVER)
    drive = subprocess.run(
        [str(py), str(tmp_path / "driver.py"), str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
        env={k: v for k, v in env.items() if k != "PYTHON"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert drive.returncode == 0, drive.stdout[-4000:] + drive.stderr[-8000:]
    out = json.loads((tmp_path / "out.json").read_text())
    print(
        json.dumps({k: v for k, v in out.items() if k != "rows"}),
        f"venv build {built:.0f} s, total {time.time() - start:.0f} s",
    )

    assert out["verl"] == peer.verl
    assert out["dataset_rows"] == len(exs)  # no row filtered out (every prompt fits) or lost
    assert out["other_style_rejected"], "verl accepted the other style's checkpoint key"
    assert out["reward_function"] == [
        str((ROOT / "src" / "dianjin" / "verl_reward.py").resolve()),
        "compute_score_float" if peer.style == "upstream" else "compute_score",
    ]
    assert {r["data_source"] for r in out["rows"]} == {ex["task"] for ex in exs}
    wrong = [r for r in out["rows"] if r["reward"] != r["expected"] or not isinstance(r["reward"], float)]
    assert not wrong, wrong
    assert len(out["rows"]) == sum(len(responses(ex)) for ex in exs)
