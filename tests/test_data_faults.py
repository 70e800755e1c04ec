"""Every fault kind is retried in a whole data build: against the loopback server faulting 20% of
all receipts at random (429 with Retry-After 0, 500, a 200 whose body is not JSON, a dropped
connection, and also an HTML page, a body cut mid-way, JSON nested past the recursion limit), the
build's outputs equal the fault-free build's, under several seeds.

    .venv/bin/python -m pytest -q tests/test_data_faults.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from datakit import config, rows, script, without_attempts, write_config, write_data
from fake_openai import FakeOpenAI, FaultPlan

from dianjin.data import build as build_mod

OUTPUTS = ("sft.jsonl", "rl.jsonl")
KINDS = ("429", "500", "malformed", "drop", "html", "cut", "nested")


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory) -> tuple[Path, Path]:
    data = write_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("clean") / "out"
    with FakeOpenAI(script=script) as srv:
        cfg = write_config(out.parent / "clean.yaml", config(srv.base_url, out, data))
        assert build_mod.main(["build", str(cfg)]) == 0
    return data, out


@pytest.mark.parametrize(
    "seed",
    [
        0,  # three seeds: each faults a different 20% of the receipts, retries included
        1,
        2,
    ],
)
def test_random_faults_leave_the_output_unchanged(fault_free, tmp_path, seed):
    data, clean = fault_free
    plan = FaultPlan(kinds=KINDS, rate=0.2, seed=seed, retry_after=0.0)
    with FakeOpenAI(script=script, faults=plan) as srv:
        cfg = write_config(tmp_path / "f.yaml", config(srv.base_url, tmp_path / "out", data))
        assert build_mod.main(["build", str(cfg)]) == 0
        stats = srv.stats()
        assert srv.script_errors == []
    faults = stats["faults"]
    assert sum(faults.values()) >= 0.1 * stats["received"] and len(faults) >= 4, stats  # the plan really faulted
    for name in OUTPUTS:
        assert without_attempts(rows(tmp_path / "out", name)) == without_attempts(rows(clean, name)), name
    ledger = (
        rows(tmp_path / "out", "ledger_history.jsonl") if (tmp_path / "out" / "ledger_history.jsonl").exists() else []
    )
    assert all(not r.get("failed") for r in ledger), ledger
