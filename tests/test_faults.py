"""Runs that survive faults and misuse.

- A crash cut inside a multi-byte character: the partial last line is dropped as any partial tail,
  so `dianjin eval`, `dianjin report` and `dianjin data build` resume; a complete undecodable line is
  an error naming the file and line.
- One writer per run directory: a second `dianjin eval` / `dianjin data` on a directory in use is
  refused (naming it and the holder's pid); the lock dies with its process; a re-run's ledger adds
  to what the earlier (maybe killed) run paid.
- Clear errors, nothing lost: `dianjin score` on bad lines and missing files; a failed `data build`
  leaves the run directory as it was; empty, unwritable output directories and a corrupt cache are
  one-line errors naming the path; JSON-array sources name the record; URL credentials never reach
  a file.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from evalkit import Script, eval_args, rows_of, write_data
from fake_openai import FakeOpenAI

from dianjin.cli import main as cli
from dianjin.data import build as build_mod
from dianjin.data.sources import load_generic
from dianjin.errors import DataError
from dianjin.files import JsonlAppender, JsonlError, read_jsonl, redact
from dianjin.llm.cache import CacheError, ResponseCache
from dianjin.llm.ledger import Ledger
from dianjin.rundir import RunDirError, RunLock
from dianjin.score import main as score_main

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tests" / "assets"
OFFLINE = str(ROOT / "recipes" / "data_offline.yaml")
SOURCES = (
    f"sources=[{{task: fincalc, n: 2, seed: 0}}, {{task: cflue, path: {ASSETS / 'cflue_sample.json'}}}, "
    f"{{task: ccc, path: {ASSETS / 'ccc_sample.jsonl'}}}]"
)
SKIP = "skip=[decontam, export, stats]"


def cut_inside_a_character(path: Path) -> None:
    """Truncate `path` just after the lead byte of the last multi-byte character of its last line."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    lead = max(i for i in range(start, len(data)) if data[i] >= 0xC0)
    path.write_bytes(data[: lead + 1])
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes()[start:].decode("utf-8")


def offline_build(out: Path, *overrides: str) -> int:
    return build_mod.main(["-q", "build", OFFLINE, f"output_dir={out}", SOURCES, SKIP, *overrides])


# --- 5: a crash cut inside a multi-byte character --------------------------------------------------------
@pytest.mark.parametrize(
    "tail, want, error",
    [
        (b'{"id": 2, "q": "\xe4\xb8', [1], None),  # partial last line cut inside 中: dropped like any partial tail
        (b'{"id": 2, "q": "\xe4\xb8\xad', [1], None),  # partial last line cut after a whole character: dropped
        (b'{"id": 2, "q": "\xe4\xb8\xad"}', [1, 2], None),  # a whole record without its newline: kept
        (b'{"id": 2, "q": "\xe4\xb8"}\n', None, r"x.jsonl:2: not UTF-8"),  # a complete undecodable line: an error
        (b'{"id": 2, "q": "\xe4\xb8"}\n{"id": 3}\n', None, r"x.jsonl:2: not UTF-8"),  # ... also before other lines
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", None, r"x.jsonl:2: unreadable JSON"),  # nested too deep
    ],
)
def test_read_jsonl_tail(tmp_path, tail, want, error):
    p = tmp_path / "x.jsonl"
    p.write_bytes('{"id": 1, "q": "中"}\n'.encode() + tail)
    if error:
        with pytest.raises(JsonlError, match=error):
            read_jsonl(p)
    else:
        assert [r["id"] for r in read_jsonl(p)] == want


def test_appender_drops_a_tail_cut_inside_a_character(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes('{"id": 1, "q": "中"}\n{"id": 2, "q": "文'.encode()[:-2])
    with JsonlAppender(p) as f:
        f.write({"id": 3, "q": "文"})
    assert read_jsonl(p) == [{"id": 1, "q": "中"}, {"id": 3, "q": "文"}]


def test_eval_and_report_resume_after_a_cut_inside_a_character(tmp_path, capsys):
    data = write_data(tmp_path / "data")
    out = tmp_path / "run"
    script = Script(data, tasks=("ccc",))
    with FakeOpenAI(script=script) as srv:
        assert cli(eval_args(srv, data, out, tasks=("ccc",))) == 0
        before = {k: r["correct"] for k, r in rows_of(out, "ccc").items()}
        sent = len(srv.requests)
        cut_inside_a_character(out / "samples" / "ccc.jsonl")  # the Chinese last row, as a crash leaves it
        assert cli(["report", str(out), "--out", str(tmp_path / "report")]) == 0  # reads what is complete
        assert cli(eval_args(srv, data, out, tasks=("ccc",))) == 0  # resumes
        assert len(srv.requests) == sent  # the lost row's answer came from the cache
    assert {k: r["correct"] for k, r in rows_of(out, "ccc").items()} == before
    (out / "samples" / "ccc.jsonl").open("ab").write(b'{"key": "\xe4"}\n')  # a complete undecodable line
    assert cli(eval_args(srv, data, out, tasks=("ccc",))) == 2
    assert f"{out / 'samples' / 'ccc.jsonl'}:6: not UTF-8" in capsys.readouterr().err


def test_data_build_resumes_after_a_cut_inside_a_character(tmp_path):
    out = tmp_path / "out"
    assert offline_build(out) == 0
    sft = (out / "sft.jsonl").read_bytes()
    cut_inside_a_character(out / "distill.log.jsonl")
    assert offline_build(out) == 0
    assert (out / "sft.jsonl").read_bytes() == sft


# --- 6: one writer per run directory; the ledger adds up --------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        "eval",  # dianjin eval: nothing is sent, nothing written
        "data",  # dianjin data build: config.yaml and meta.json stay as they were
    ],
)
def test_second_writer_is_refused(tmp_path, capsys, command):
    data = write_data(tmp_path / "data")
    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.yaml").write_text("sentinel\n")
    with RunLock.acquire(out, "the first writer"), FakeOpenAI(script=Script(data, tasks=("math500",))) as srv:
        if command == "eval":
            assert cli(eval_args(srv, data, out, tasks=("math500",))) == 2
            assert srv.requests == []
        else:
            assert offline_build(out) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use by another writer (pid {os.getpid()}, the first writer" in err
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.yaml"]
    assert (out / "config.yaml").read_text() == "sentinel\n"
    assert offline_build(out) == 0  # released: the next writer gets it


def test_lock_dies_with_its_process(tmp_path):
    code = (
        "import sys, time; from dianjin.rundir import RunLock; RunLock.acquire(sys.argv[1], 'holder'); "
        "print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([proc.stdout], [], [], 30)[0], "the lock holder did not start"  # ~0.2 s when idle
        assert proc.stdout.readline() == "held\n"
        with pytest.raises(RunDirError, match=rf"in use by another writer \(pid {proc.pid}, holder"):
            RunLock.acquire(tmp_path, "second")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    RunLock.acquire(tmp_path, "after the kill").release()  # the kernel released the flock


@pytest.mark.parametrize(
    "earlier, calls, aside",
    [
        (None, 0, False),  # no earlier ledger: from zero
        (
            {"rows": [{"stage": "eval", "model": "m", "calls": 3, "cost": 0.25, "unknown": 1}]},
            3,
            False,
        ),  # a killed run's
        ("{not json", 0, True),  # unreadable: moved aside, from zero
        ({"rows": [{"stage": "eval"}]}, 0, True),  # a row without its model: moved aside
    ],
)
def test_ledger_resume(tmp_path, earlier, calls, aside):
    path = tmp_path / "ledger.json"
    if earlier is not None:
        path.write_text(earlier if isinstance(earlier, str) else json.dumps(earlier))
    led = Ledger.resume(path)
    assert led.total().calls == calls
    led.record("eval", "m", prompt_tokens=10, completion_tokens=5)
    led.save()
    assert json.loads(path.read_text())["total"]["calls"] == calls + 1
    assert (tmp_path / "ledger.json.unreadable").exists() == aside


def test_eval_rerun_adds_to_the_earlier_ledger(tmp_path):
    data = write_data(tmp_path / "data")
    out = tmp_path / "run"
    with FakeOpenAI(script=Script(data, tasks=("math500",))) as srv:
        assert cli(eval_args(srv, data, out, "--limit", "2", tasks=("math500",))) == 0
        first = json.loads((out / "ledger.json").read_text())["total"]
        assert cli(eval_args(srv, data, out, "--limit", "4", tasks=("math500",))) == 0
    total = json.loads((out / "ledger.json").read_text())["total"]
    assert first["calls"] == 2 and total["calls"] == 4  # 2 paid in the first run + 2 in the re-run
    assert total["completion_tokens"] > first["completion_tokens"] > 0


# --- 9: clear errors, nothing lost ------------------------------------------------------------------------
GOOD = json.dumps({"task": "math500", "gold": "5", "response": "<think>x</think><answer>\\boxed{5}</answer>"})


@pytest.mark.parametrize(
    "bad, message",
    [
        (b'{"task": "math500", "gold": "5", "response": "\xe4\xb8"}', "not UTF-8"),  # invalid UTF-8
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # RecursionError in the JSON parser
        (b'{"task": "math500", "gold": ' + b"9" * 5000 + b', "response": "x"}', "digits"),  # int max-str-digits
        (
            b'{"task": "cflue", "gold": "A", "response": "x", "choices": "{{}}"}',
            "not scored: TypeError",
        ),  # scorer fails
        (b'{"task": "math500", "gold": "5"}', "field 'response': missing"),  # a missing field, as before
    ],
)
def test_score_reports_the_line_and_scores_the_rest(tmp_path, capsys, bad, message):
    p = tmp_path / "in.jsonl"
    p.write_bytes(GOOD.encode() + b"\n" + bad + b"\n" + GOOD.encode() + b"\n")
    assert score_main([str(p)]) == 1
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    assert [o.get("score") for o in out] == [1.0, None, 1.0]  # one output line per input line, in order
    assert f"{p}:2" in out[1]["error"] and message in out[1]["error"]
    assert f"{p}:2" in captured.err and "Traceback" not in captured.err


def test_score_missing_file(tmp_path, capsys):
    assert score_main([str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    want = f"dianjin score: {tmp_path / 'nope.jsonl'}: cannot read (No such file or directory)"
    assert err.strip().splitlines() == [want]  # one line, no traceback


UNSET_KEY = "teacher={base_url: 'http://127.0.0.1:9/v1', model: t, api_key_env: DIANJIN_TEST_UNSET_KEY}"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["reference_teacher=false", UNSET_KEY], "DIANJIN_TEST_UNSET_KEY"),  # a needed key is not set
        (["sources=[{task: cflue, path: /nonexistent/x.json}]"], "/nonexistent/x.json does not exist"),  # a source
        (["sources=[{task: nosuch, path: x}]"], "unknown task 'nosuch'"),  # an unknown source kind
        (["sources=[]"], "no sources"),  # nothing to build from
    ],
)
def test_failed_build_leaves_the_run_directory_alone(tmp_path, capsys, overrides, message):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {"config.yaml": "earlier config\n", "meta.json": "{}\n", "ledger.json": '{"rows": []}\n'}
    for name, text in earlier.items():
        (out / name).write_text(text)
    assert offline_build(out, *overrides) == 2
    assert message in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == earlier  # nothing written, not even the lock


@pytest.fixture
def file_in_the_way(tmp_path) -> Path:
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "run"  # cannot be created (works as root too, unlike chmod)


def corrupt_cache(tmp_path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    (out / "cache.sqlite").write_bytes(b"this is not a database, it is a text file " * 100)
    return out


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "output_dir is empty"),  # output_dir= given empty: refused (it would write into the cwd)
        ("unwritable", "cannot create the output directory"),  # a file where the directory should be
        ("corrupt cache", "cache.sqlite: not a usable response cache (file is not a database)"),  # in an LLM stage
    ],
)
def test_build_misuse_is_one_line(tmp_path, capsys, file_in_the_way, case, message):
    if case == "empty":
        rc, where = offline_build(tmp_path, "output_dir="), ""
    elif case == "unwritable":
        rc, where = offline_build(file_in_the_way), str(file_in_the_way)
    else:
        out = corrupt_cache(tmp_path)
        llm = ["reference_teacher=false", "teacher={base_url: 'http://127.0.0.1:9/v1', model: t, max_retries: 0}"]
        rc, where = offline_build(out, *llm), str(out / "cache.sqlite")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dianjin data")]
    assert rc == 2 and len(err) == 1 and message in err[0] and where in err[0], err


@pytest.mark.parametrize(
    "case, message",
    [
        ("unwritable", "cannot create the output directory"),  # a file where the run directory should be
        ("corrupt cache", "cache.sqlite: not a usable response cache (file is not a database)"),  # garbage file
    ],
)
def test_eval_misuse_is_one_line(tmp_path, capsys, file_in_the_way, case, message):
    data = write_data(tmp_path / "data")
    out = file_in_the_way if case == "unwritable" else corrupt_cache(tmp_path)
    with FakeOpenAI(script=Script(data, tasks=("math500",))) as srv:
        assert cli(eval_args(srv, data, out, tasks=("math500",))) == 2
        assert srv.requests == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(out) in err[0], err


def test_corrupt_cache_names_the_file(tmp_path):
    path = corrupt_cache(tmp_path) / "cache.sqlite"
    with pytest.raises(CacheError, match=rf"^{path}: not a usable response cache \(file is not a database\); move"):
        ResponseCache(path)
    ResponseCache(tmp_path / "fresh.sqlite").close()  # a fresh one is fine


RECORD = '{"question": "q%d", "answer": "a"}'


@pytest.mark.parametrize(
    "name, text, where",
    [
        (
            "x.json",
            f"[{RECORD % 0},\n {RECORD % 1},\n" + ' {"question": "", "answer": "a"}]',
            "x.json: record 2 (line 3): field 'question'",
        ),  # a JSON array: the record's index, and its line
        (
            "x.json",
            f"[{RECORD % 0}, {RECORD % 1}, " + '{"question": "q", "answer": ' + "9" * 5000 + "}]",
            "x.json: record 2 (line 1): unreadable JSON",
        ),  # a 5,000-digit number in an array
        (
            "x.json",
            '[{"id": "a", "question": "q", "answer": "a"},\n{"id": "a", "question": "r", "answer": "b"}]',
            "x.json: record 1 (line 2): field 'id': duplicate id 'a' (first: record 0 (line 1))",
        ),  # duplicate ids
        (
            "x.jsonl",
            f"{RECORD % 0}\n{RECORD % 1}\n" + '{"question": "", "answer": "a"}\n',
            "x.jsonl:3: field 'question'",
        ),  # JSONL: the line, as before
        (
            "x.jsonl",
            f"{RECORD % 0}\n" + '{"question": "q", "answer": ' + "9" * 5000 + "}\n",
            "x.jsonl:2: unreadable JSON",
        ),  # a 5,000-digit number in JSONL
    ],
)
def test_sources_name_the_record_or_line(tmp_path, name, text, where):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_generic(tmp_path / name)
    assert str(e.value).startswith(f"{tmp_path / where}")


@pytest.mark.parametrize(
    "text, want",
    [
        ("https://user:pass@api.example.com/v1", "https://***@api.example.com/v1"),  # user and password
        ("http://sk-TOKEN@host:8000/v1/chat", "http://***@host:8000/v1/chat"),  # a token as the user
        ('{"base_url": "https://u:p@ss@h/v1"}', '{"base_url": "https://***@h/v1"}'),  # an unescaped @ in the password
        ("https://h/v1?mail=a@b.c and me@x.org", "https://h/v1?mail=a@b.c and me@x.org"),  # no credentials: unchanged
        ("https://***@h/v1", "https://***@h/v1"),  # already redacted
    ],
)
def test_redact(text, want):
    assert redact(text) == want


def secrets_in(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]


def test_build_files_never_hold_url_credentials(tmp_path, monkeypatch):
    out = tmp_path / "out"
    teacher = "teacher={base_url: 'https://user:s3cret@api.example.com/v1', model: t}"  # unused (reference teacher)
    monkeypatch.setattr(sys, "argv", ["dianjin", "data", "build", OFFLINE, teacher])  # what meta.json records
    assert offline_build(out, teacher) == 0
    assert secrets_in(out) == []
    assert "https://***@api.example.com/v1" in (out / "config.yaml").read_text()
    assert any("***@api.example.com" in a for a in json.loads((out / "meta.json").read_text())["argv"])


def test_eval_files_never_hold_url_credentials(tmp_path, capsys):
    data = write_data(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        "eval",
        "--base-url",
        "http://user:s3cret@127.0.0.1:1/v1",
        "--model",
        "m",
        "--tasks",
        "math500",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--quiet",
        "--limit",
        "2",
        "--max-retries",
        "0",
    ]
    assert cli(args) == 1  # nothing listens there: the requests fail, and their errors name the endpoint
    assert secrets_in(out) == [] and "s3cret" not in capsys.readouterr().err
    assert json.loads((out / "eval.json").read_text())["endpoint"]["base_url"] == "http://***@127.0.0.1:1/v1"
    assert all("http://***@127.0.0.1:1/v1" in r["error"] for r in rows_of(out, "math500").values())
