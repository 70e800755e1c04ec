"""`dianjin serve`: a real `transformers serve` on a tiny model that was taught one answer, queried with
the `openai` client; the CLI's URL line, signal forwarding and clean shutdown; engine selection and the
vLLM command line (no vLLM here: it is checked as argv)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from dianjin.answer import join_reasoning, parse_strict
from dianjin.model import serve
from dianjin.model.serve import ServeError, ServeOptions, resolve, serving
from dianjin.model.tiny import build_tiny

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "营业收入从100亿元增长到120亿元，增长率是多少？"
REASONING = "(120-100)/100=20%"
ANSWER = "<answer>\\boxed{20\\%}</answer>"


@pytest.fixture(scope="module")
def taught(tmp_path_factory) -> Path:
    """A tiny model fine-tuned (~70 steps, < 1 s) to answer QUESTION with <think>REASONING</think>ANSWER."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = build_tiny(tmp_path_factory.mktemp("serve") / "tiny")
    tok, model = AutoTokenizer.from_pretrained(d), AutoModelForCausalLM.from_pretrained(d)
    msgs = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": f"<think>{REASONING}</think>{ANSWER}"},
    ]
    enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["assistant_masks"] == 0, -100)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = model(input_ids=enc["input_ids"], labels=labels).loss
        if loss.item() < 0.005:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(d)
    return d


def test_openai_client_gets_reasoning_and_answer(taught):
    from openai import OpenAI

    with serving(taught, engine="transformers") as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == [str(taught)]
        msgs = [{"role": "user", "content": QUESTION}]
        r = client.chat.completions.create(model=str(taught), messages=msgs, max_tokens=48)
        msg = r.choices[0].message
        reasoning = (msg.model_extra or {}).get("reasoning_content")
        assert (reasoning, msg.content, r.choices[0].finish_reason) == (REASONING, ANSWER, "stop")
        full = join_reasoning(msg.content, reasoning)
        assert full == f"<think>{REASONING}</think>{ANSWER}" and parse_strict(full).boxed == "20\\%"
        # streaming: reasoning and answer deltas arrive separately and add up to the same
        stream = client.chat.completions.create(model=str(taught), messages=msgs, max_tokens=48, stream=True)
        think, text = "", ""
        for chunk in stream:
            if chunk.choices:
                delta = chunk.choices[0].delta
                think += (delta.model_extra or {}).get("reasoning_content") or ""
                text += delta.content or ""
        assert (think, text) == (REASONING, ANSWER)
    with pytest.raises(OSError):  # stopped: the port no longer answers
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=1).close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])  # Ctrl-C; a supervisor
def test_cli_prints_url_forwards_signal_and_exits_cleanly(taught, signum):
    import urllib.request

    port = serve.free_port()
    cmd = [sys.executable, "-m", "dianjin.cli", "serve", str(taught), "--engine", "transformers", "--port", str(port)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cli = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = cli.stdout.readline().strip()  # blocks until healthy
        assert url == f"http://127.0.0.1:{port}/v1"
        with urllib.request.urlopen(url + "/models", timeout=5) as r:
            assert str(taught) in r.read().decode()
        engine = psutil.Process(cli.pid).children()
        assert len(engine) == 1 and "transformers.cli.transformers" in " ".join(engine[0].cmdline())
        cli.send_signal(signum)
        assert cli.wait(timeout=40) == 0
        err = cli.stderr.read()
        assert "Application shutdown complete" in err and f"stopped on signal {int(signum)}" in err
        assert not engine[0].is_running() or engine[0].status() == psutil.STATUS_ZOMBIE
    finally:
        if cli.poll() is None:
            cli.kill()


def _fake_vllm(monkeypatch, available: bool) -> None:
    monkeypatch.setattr(serve, "vllm_available", lambda: available)


@pytest.mark.parametrize(
    "engine,vllm_ok,want",
    [
        ("auto", False, "transformers"),  # CPU box / no vLLM: transformers serve
        ("auto", True, "vllm"),  # vLLM importable and a GPU present
        ("transformers", True, "transformers"),  # an explicit engine wins
        ("vllm", True, "vllm"),  # explicit vLLM where it works
    ],
)
def test_engine_choice(tmp_path, monkeypatch, engine, vllm_ok, want):
    (tmp_path / "config.json").write_text("{}")
    _fake_vllm(monkeypatch, vllm_ok)
    assert resolve(ServeOptions(str(tmp_path), engine)).engine == want


def test_vllm_command_has_upstream_options_and_keeps_the_key_off_argv(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    _fake_vllm(monkeypatch, True)
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    o = resolve(ServeOptions(str(tmp_path), "auto", "127.0.0.1", 8901, "MY_KEY", "dj-r1", 4, 8192))
    cmd = serve.vllm_command(o)
    tail = cmd[cmd.index("--served-model-name") :]
    assert tail == ["--served-model-name", "dj-r1", "--tensor-parallel-size", "4", "--host", "127.0.0.1",
                    "--port", "8901", "--max-model-len", "8192"]  # fmt: skip
    assert str(tmp_path) in cmd[:5] and not any("secret" in c for c in cmd)
    assert serve.child_env(o)["VLLM_API_KEY"] == "sk-secret-123"
    assert resolve(ServeOptions(str(tmp_path), "vllm")).model_name == str(tmp_path)  # upstream: name = path


@pytest.mark.parametrize(
    "engine,vllm_ok,key_env,key,fragment",
    [
        ("vllm", False, None, None, "--engine vllm needs vLLM installed and a CUDA GPU"),  # no vLLM/GPU
        ("transformers", False, "MY_KEY", "sk-secret-123", "cannot check API keys"),  # no silent open server
        ("vllm", True, "MY_KEY", None, "environment variable MY_KEY is not set"),  # names the variable
    ],
)
def test_refusals(tmp_path, monkeypatch, capsys, engine, vllm_ok, key_env, key, fragment):
    (tmp_path / "config.json").write_text("{}")
    _fake_vllm(monkeypatch, vllm_ok)
    monkeypatch.delenv("MY_KEY", raising=False)
    if key:
        monkeypatch.setenv("MY_KEY", key)
    argv = [str(tmp_path), "--engine", engine] + (["--api-key-env", key_env] if key_env else [])
    assert serve.main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "secret" not in err


@pytest.mark.slow  # starts a real `transformers serve`
def test_not_a_model_dir_and_early_exit(tmp_path):
    with pytest.raises(ServeError, match="no config.json"):
        resolve(ServeOptions(str(tmp_path / "nope"), "transformers"))
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    t0 = time.monotonic()
    with pytest.raises(ServeError, match="exited with status .* before it was healthy"):
        with serving(tmp_path, engine="transformers"):
            pass
    assert time.monotonic() - t0 < 60


# --- the server we evaluate is ours ---------------------------------------------------------------
class _Health(__import__("http.server").server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def squatter():
    """Another HTTP server on 127.0.0.1 that answers /health 200 (as a forgotten server would)."""
    import http.server
    import threading

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_port_in_use_is_refused_before_starting(tmp_path, squatter, capsys):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ServeError, match=f"port {squatter} on 127.0.0.1 is already in use"):
        with serving(tmp_path, engine="transformers", port=squatter):
            pass
    assert serve.main([str(tmp_path), "--engine", "transformers", "--port", str(squatter)]) == 2
    assert "already in use" in capsys.readouterr().err


def test_healthy_answer_from_another_process_is_refused(tmp_path, squatter):
    """The race the port check cannot close: the port is taken between our check and our child's
    bind. /health answers 200, but the listener is not in our child's session."""
    (tmp_path / "config.json").write_text("{}")
    assert serve.listener_session(squatter) == os.getsid(0)  # /proc finds the listener: this process
    server = serve.Server(ServeOptions(str(tmp_path), "transformers", port=squatter, startup_timeout=10))
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    with pytest.raises(ServeError, match="held by another process"):
        server.wait_healthy()
    assert server.proc.poll() is not None  # our child was stopped


@pytest.mark.parametrize(
    "cuda,over,want",
    [
        (False, {}, ["--dtype", "float32", "--continuous-batching", "--cb-max-memory-percent", "0.05"]),  # CPU: capped
        (False, {"cb_memory": 0.2}, ["--dtype", "float32", "--continuous-batching", "--cb-max-memory-percent", "0.2"]),
        (False, {"continuous_batching": False}, ["--dtype", "float32"]),  # one request at a time
        (True, {}, ["--dtype", "float32", "--continuous-batching"]),  # a GPU: transformers' own cache size
        (
            False,
            {"dtype": "bfloat16"},
            ["--dtype", "bfloat16", "--continuous-batching", "--cb-max-memory-percent", "0.05"],
        ),
    ],
)
def test_transformers_command_dtype_and_batching(tmp_path, monkeypatch, cuda, over, want):
    (tmp_path / "config.json").write_text('{"dtype": "float32"}')
    monkeypatch.setattr(serve, "cuda_available", lambda: cuda)
    monkeypatch.setattr(serve, "resolve_dtype", lambda name, _d: "float32" if name == "auto" else name)  # no bf16 CPU
    o = resolve(ServeOptions(str(tmp_path), "transformers", "127.0.0.1", 8901, **over))
    cmd = serve.transformers_command(o)
    assert cmd[cmd.index(str(tmp_path)) + 1 : cmd.index("--host")] == want


@pytest.mark.parametrize(
    "over,fragment",
    [
        ({"dtype": "fp8"}, "unknown dtype 'fp8'"),  # names the choices
        ({"cb_memory": 0.0}, "--cb-memory must be a fraction in (0, 1]"),  # an empty cache would serve nothing
        ({"cb_memory": 60.0}, "--cb-memory must be a fraction in (0, 1]"),  # a percent, not a fraction
    ],
)
def test_dtype_and_cache_refusals(tmp_path, over, fragment):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ServeError) as e:
        resolve(ServeOptions(str(tmp_path), "transformers", **over))
    assert fragment in str(e.value)


def test_vllm_command_passes_an_explicit_dtype_only(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    _fake_vllm(monkeypatch, True)
    assert "--dtype" not in serve.vllm_command(resolve(ServeOptions(str(tmp_path), "vllm")))  # vLLM's own auto
    cmd = serve.vllm_command(resolve(ServeOptions(str(tmp_path), "vllm", dtype="float32")))
    assert cmd[cmd.index("--dtype") + 1] == "float32"
