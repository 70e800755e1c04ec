"""Typed configs with overrides, atomic writes, append-only JSONL, run directories."""

import json
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from dianjin.config import ConfigError, load_config, to_dict
from dianjin.files import JsonlAppender, JsonlError, atomic_write_text, read_jsonl
from dianjin.rundir import RunDir


@dataclass
class Endpoint:
    model: str = "m"
    base_url: str | None = None


@dataclass
class Cfg:
    lr: float = 1e-5
    steps: int = 10
    mode: Literal["full", "lora"] = "full"
    teacher: Endpoint = field(default_factory=Endpoint)
    sources: list[dict] = field(default_factory=list)
    output_dir: str = "runs/x"
    KEY_ALIASES: ClassVar[dict[str, str]] = {"out": "output_dir"}


@pytest.mark.parametrize(
    "yaml_text, overrides, check",
    [
        ("", [], lambda c: c.lr == 1e-5 and c.steps == 10),  # defaults
        ("lr: 1e-4\n", [], lambda c: c.lr == 1e-4),  # YAML reads 1e-4 as a string; coerced to float
        ("steps: 5\n", ["steps=7"], lambda c: c.steps == 7),  # overrides beat the file
        ("", ["teacher.model=deepseek-reasoner"], lambda c: c.teacher.model == "deepseek-reasoner"),  # nested key
        (
            "",
            ["sources=[{task: cflue, path: a.json}]"],
            lambda c: c.sources == [{"task": "cflue", "path": "a.json"}],
        ),  # YAML value
        ("lr: 3\n", [], lambda c: c.lr == 3.0 and isinstance(c.lr, float)),  # int accepted for float
        ("out: runs/a\n", [], lambda c: c.output_dir == "runs/a"),  # an old key name still reads (out -> output_dir)
        ("", ["out=runs/b"], lambda c: c.output_dir == "runs/b"),  # ... in an override too
        ("out: runs/a\noutput_dir: runs/a\n", [], lambda c: c.output_dir == "runs/a"),  # both, agreeing
    ],
)
def test_load_config(tmp_path, yaml_text, overrides, check):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    assert check(load_config(Cfg, p, overrides))


@pytest.mark.parametrize(
    "yaml_text, overrides, message",
    [
        ("lrr: 1\n", [], "unknown key(s) lrr"),  # typo is caught, valid keys listed
        ("steps: many\n", [], "steps: expected int"),  # wrong type named with its key
        ("mode: half\n", [], "mode: 'half' is not one of"),  # literal choices
        ("", ["teacher.modle=x"], "unknown key(s) modle"),  # typo in a nested override
        ("", ["novalue"], "expected key.sub=value"),  # malformed override
        ("- a\n- b\n", [], "top level must be a mapping"),  # not a mapping
        ("steps: true\n", [], "steps: expected int"),  # bool is not an int
        ("steps: [1\n", [], "c.yaml: invalid YAML"),  # a syntax error names the file
        (None, [], "c.yaml: cannot read: No such file"),  # a missing file is an error, not a traceback
        ("output_dir: a\n", ["out=b"], "both out and output_dir are set"),  # an old and a new name disagree
    ],
)
def test_config_errors(tmp_path, yaml_text, overrides, message):
    p = tmp_path / "c.yaml"
    if yaml_text is not None:
        p.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(Cfg, p, overrides)


def test_jsonl_partial_tail_is_recovered(tmp_path):
    p = tmp_path / "out.jsonl"
    with JsonlAppender(p) as f:
        f.write({"id": 1})
    with open(p, "a") as f:
        f.write('{"id": 2, "trunc')  # a crash mid-write
    assert read_jsonl(p) == [{"id": 1}]  # the partial line is skipped
    with JsonlAppender(p) as f:  # and dropped before appending
        f.write({"id": 3})
    assert read_jsonl(p) == [{"id": 1}, {"id": 3}]


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(JsonlError, match=r"bad.jsonl:2: invalid JSON"):
        read_jsonl(p)


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_text(tmp_path / "x.txt", "hello")
    assert [q.name for q in tmp_path.iterdir()] == ["x.txt"]


@pytest.mark.parametrize(
    "umask,mode",
    [
        (0o022, 0o644),  # the usual umask: readable by other users (a trainer, a web server), as open() would do
        (0o077, 0o600),  # a private umask is respected
    ],
)
def test_atomic_write_gives_open_permissions(tmp_path, umask, mode):
    import os

    import dianjin.files as dio

    old = dio._UMASK
    dio._UMASK = umask
    try:
        p = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        dio._UMASK = old
    assert os.stat(p).st_mode & 0o777 == mode


def test_rundir(tmp_path):
    cfg = Cfg(teacher=Endpoint(model="t"))
    run = RunDir.create(tmp_path / "run", cfg)
    run.log(step=1, loss=2.0)
    run.log(step=2, loss=1.5)
    assert [m["loss"] for m in run.metrics()] == [2.0, 1.5]
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert "versions" in meta and "git" in meta
    assert load_config(Cfg, tmp_path / "run" / "config.yaml") == cfg  # the resolved config round-trips
    assert to_dict(cfg)["teacher"]["model"] == "t"
