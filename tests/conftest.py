"""Shared test fixtures and markers."""

from __future__ import annotations

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
