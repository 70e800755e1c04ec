"""One command surface: every command that writes a directory takes `--output-dir`, and keeps `--out`
as an alias where it had it; the `dianjin` registry knows every command.

    .venv/bin/python -m pytest -q tests/test_cli.py
"""

from __future__ import annotations

import importlib

import pytest

from dianjin.cli import COMMANDS


@pytest.mark.parametrize(
    "module, argv",
    [
        ("dianjin.model.gguf", ["gguf", "m.gguf"]),  # dianjin model gguf FILE
        ("dianjin.model.gguf", ["smollm2"]),  # dianjin model smollm2
        ("dianjin.model.merge", ["fsdp", "ckpt", "--base", "b"]),  # dianjin merge fsdp CKPT
        ("dianjin.model.merge", ["lora", "adapter", "--base", "b"]),  # dianjin merge lora ADAPTER
        ("dianjin.train.export_cmd", ["verl", "--data", "d", "--model", "m"]),  # dianjin export verl
        ("dianjin.train.export_cmd", ["llamafactory", "--data", "d", "--model", "m"]),  # dianjin export llamafactory
        ("dianjin.eval.report", ["runs/eval"]),  # dianjin report RUN_DIR...
    ],
)
@pytest.mark.parametrize("flag", ["--output-dir", "--out"])  # the name, and the alias it had before
def test_output_dir_flag_and_its_alias(module, argv, flag):
    parser = importlib.import_module(module).build_parser()
    assert str(parser.parse_args([*argv, flag, "OUT"]).out) == "OUT"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_has_a_main(name):
    module, help_line = COMMANDS[name]
    assert callable(importlib.import_module(module).main) and help_line
