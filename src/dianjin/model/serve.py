"""Serve a model directory over an OpenAI-compatible API: vLLM on a GPU, else `transformers serve`.

    dianjin serve MODEL_DIR [--engine auto|vllm|transformers] [--host 127.0.0.1] [--port 8901]
                            [--api-key-env NAME] [--served-model-name NAME]
                            [--tensor-parallel-size N] [--max-model-len N] [--dtype auto|float32|bfloat16|float16]
                            [--no-continuous-batching] [--cb-memory FRACTION]

    with serving(model_dir) as base_url:            # tests and the demo; a free port by default
        OpenAI(base_url=base_url, api_key="-").chat.completions.create(model=str(model_dir), ...)

The port must be free before the engine starts, and the process that answers `/health` must be
our child (Linux: the listening socket's owner, from /proc, is in the child's session): another
server on the port would otherwise be evaluated in its place.

The engine runs as a child process in its own session. We wait until its `/health` answers, print
the base URL (`http://HOST:PORT/v1`, alone on stdout), pass SIGINT/SIGTERM on to it, and give it
30 s to shut down before killing its process group. On Linux the child also gets SIGTERM if we die.

Engines (a registry; `auto` picks vLLM when it is importable and a CUDA GPU is present):
* vllm: `vllm serve MODEL_DIR --served-model-name … --tensor-parallel-size … --port …
  [--max-model-len …] [--dtype …]`, upstream's run_vllm.sh options (docs/upstream.md §7.2). The
  served name defaults to MODEL_DIR as given, as upstream's does. The API key travels in the child's
  environment (`VLLM_API_KEY`), never on a command line (visible in `ps`) and never printed.
* transformers: `transformers serve MODEL_DIR --dtype … --continuous-batching [--cb-max-memory-percent …]
  --host … --port …` (transformers 5.24). `--dtype auto` is resolved by `dianjin.model.precision`
  (bfloat16 where the hardware computes it natively, as for `dianjin eval --model-dir`). Continuous
  batching (concurrent requests share a batch; `--no-continuous-batching`: one request at a time) has
  its paged KV cache capped on a CPU: transformers' default there is 60% of the machine's total RAM,
  which got a server killed by the OOM killer, so `--cb-memory` (a fraction of RAM) defaults to 0.05
  on a CPU; on a GPU transformers' own default applies. Capped, it served SmolLM2 2.2x faster than one
  request at a time (docs/benchmarks.md, "Local evaluation"); `dianjin eval run --model-dir` is
  faster still. It pins the model and names it by MODEL_DIR as given; it has no API-key,
  tensor-parallel or context-length options, so `--api-key-env` is refused (we will not pretend to
  protect an open server) and `--tensor-parallel-size`/`--max-model-len`/`--served-model-name` are
  ignored with a warning.
  It runs offline (`HF_HUB_OFFLINE=1`, no update check). Note that it splits `<think>…</think>` into
  `message.reasoning_content` and returns the rest in `content`: rejoin the two with
  `dianjin.answer.join_reasoning` before format checks.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from dianjin.model.precision import DTYPES, check_dtype, resolve_dtype

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0
CPU_CB_MEMORY = 0.05  # transformers serve's paged KV cache on a CPU: this fraction of RAM (its default: 0.6)


class ServeError(RuntimeError):
    """The server could not be configured or started; the message says why."""


@dataclass(frozen=True)
class ServeOptions:
    model_dir: str
    engine: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8901
    api_key_env: str | None = None
    served_model_name: str | None = None
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    startup_timeout: float = 900.0
    dtype: str = "auto"  # dianjin.model.precision: auto, float32, bfloat16, float16
    continuous_batching: bool = True  # transformers engine: requests share batches (False: one at a time)
    cb_memory: float | None = None  # transformers engine: KV cache share of memory (None: 0.05 on a CPU)

    @property
    def model_name(self) -> str:
        """The name clients must send as `model`."""
        return self.served_model_name or self.model_dir

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def vllm_available() -> bool:
    """vLLM importable and a CUDA GPU visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def vllm_command(o: ServeOptions) -> list[str]:
    exe = Path(sys.executable).with_name("vllm")
    head = [str(exe), "serve", o.model_dir] if exe.exists() else [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", o.model_dir]  # fmt: skip
    cmd = head + ["--served-model-name", o.model_name, "--tensor-parallel-size", str(o.tensor_parallel_size),
                  "--host", o.host, "--port", str(o.port)]  # fmt: skip
    if o.max_model_len:
        cmd += ["--max-model-len", str(o.max_model_len)]
    if o.dtype != "auto":
        cmd += ["--dtype", o.dtype]
    if o.cb_memory is not None or not o.continuous_batching:
        log.warning("vLLM always batches continuously and sizes its own KV cache: cb options ignored")
    return cmd


def transformers_command(o: ServeOptions) -> list[str]:
    ignored = {
        "--served-model-name": o.served_model_name not in (None, o.model_dir),
        "--tensor-parallel-size": o.tensor_parallel_size != 1,
        "--max-model-len": o.max_model_len is not None,
    }
    for flag in (f for f, on in ignored.items() if on):
        log.warning("%s is not supported by transformers serve; ignored", flag)
    batching = ["--continuous-batching"] if o.continuous_batching else []
    memory = o.cb_memory if o.cb_memory is not None or cuda_available() else CPU_CB_MEMORY  # None: transformers'
    if batching and memory is not None:
        batching += ["--cb-max-memory-percent", str(memory)]
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", o.model_dir,
            "--dtype", resolve_dtype(o.dtype, o.model_dir), *batching, "--host", o.host, "--port", str(o.port)]  # fmt: skip


# engine -> (command builder, environment variable that carries the API key, or None: no auth)
ENGINES: dict[str, tuple[Callable[[ServeOptions], list[str]], str | None]] = {
    "vllm": (vllm_command, "VLLM_API_KEY"),
    "transformers": (transformers_command, None),
}


def resolve(o: ServeOptions) -> ServeOptions:
    """Check the options and settle the engine (`auto` -> a concrete one)."""
    d = Path(o.model_dir)
    if not (d / "config.json").exists():
        raise ServeError(f"{d}: not a model directory (no config.json)")
    engine = o.engine
    if engine == "auto":
        engine = "vllm" if vllm_available() else "transformers"
    elif engine == "vllm" and not vllm_available():
        raise ServeError("--engine vllm needs vLLM installed and a CUDA GPU; use --engine transformers")
    if engine not in ENGINES:
        raise ServeError(f"unknown engine {engine!r}; choose from {sorted(ENGINES)}")
    try:
        check_dtype(o.dtype)
    except ValueError as e:
        raise ServeError(str(e)) from None
    if o.cb_memory is not None and not 0 < o.cb_memory <= 1:
        raise ServeError(f"--cb-memory must be a fraction in (0, 1], got {o.cb_memory}")
    if o.api_key_env:
        if ENGINES[engine][1] is None:
            raise ServeError(f"--api-key-env: the {engine} engine cannot check API keys; "
                             "serve without a key on 127.0.0.1, or use --engine vllm")  # fmt: skip
        if not os.environ.get(o.api_key_env):
            raise ServeError(f"--api-key-env: environment variable {o.api_key_env} is not set or empty")
    return replace(o, engine=engine)


def child_env(o: ServeOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_TELEMETRY="1")
    key_var = ENGINES[o.engine][1]
    if o.api_key_env and key_var:
        env[key_var] = os.environ[o.api_key_env]
    return env


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """One engine process: `start()`, `wait_healthy()`, `stop()`."""

    def __init__(self, opts: ServeOptions, output: IO | int | None = None):
        self.opts = resolve(opts)
        self.output = output
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        check_port_free(self.opts.host, self.opts.port)
        cmd = ENGINES[self.opts.engine][0](self.opts)
        log.info("starting %s", " ".join(cmd))
        self.proc = subprocess.Popen(
            cmd, env=child_env(self.opts), stdin=subprocess.DEVNULL, stdout=self.output, stderr=self.output,
            start_new_session=True, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
        return self

    def healthy(self) -> bool:
        url = self.opts.base_url.removesuffix("/v1") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, log_file: Path | None = None) -> str:
        """Poll /health until it answers 200; fail fast if the process exits."""
        assert self.proc is not None
        deadline = time.monotonic() + self.opts.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServeError(f"{self.opts.engine} server exited with status {self.proc.returncode} "
                                 f"before it was healthy{_tail(log_file)}")  # fmt: skip
            if self.healthy():
                self._check_ours()
                return self.opts.base_url
            time.sleep(0.25)
        self.stop()
        timeout = self.opts.startup_timeout
        raise ServeError(f"{self.opts.engine} server not healthy after {timeout:.0f} s{_tail(log_file)}")

    def _check_ours(self) -> None:
        """The healthy answer must come from our child (its own session, `start_new_session`): a
        server that took the port after our check would otherwise be evaluated in its place."""
        assert self.proc is not None
        owner = listener_session(self.opts.port)
        if owner is not None and owner != self.proc.pid:
            self.stop()
            raise ServeError(
                f"port {self.opts.port} answers /health but is held by another process (session "
                f"{owner}), not our {self.opts.engine} server; choose another --port"
            )

    def send(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, signum: int | None = signal.SIGTERM, grace: float = SHUTDOWN_GRACE_S) -> int:
        """Send `signum` (None: it was already sent), wait up to `grace` seconds, then kill the
        server's whole process group. Returns its exit status."""
        if self.proc is None:
            return 0
        if signum is not None:
            self.send(signum)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s server did not stop within %.0f s; killing it", self.opts.engine, grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


def check_port_free(host: str, port: int) -> None:
    """ServeError unless `host:port` can be bound now (with SO_REUSEADDR, as the engines bind)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServeError(
                f"port {port} on {host} is already in use ({e.strerror}); another server there would "
                "answer for ours: stop it or choose another --port"
            ) from None


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (Linux /proc/net/tcp and tcp6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(cols[9])
    return inodes


def listener_session(port: int) -> int | None:
    """The session id of the process listening on `port`, or None when /proc cannot tell (not Linux,
    or the socket belongs to another user)."""
    sockets = {f"socket:[{i}]" for i in _listening_inodes(port)}
    if not sockets:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                    with open(f"/proc/{pid}/stat") as f:
                        return int(f.read().rsplit(")", 1)[1].split()[3])  # field 6: session
    return None


def _tail(log_file: Path | None, n: int = 20) -> str:
    if log_file is None or not log_file.exists():
        return ""
    lines = log_file.read_text(errors="replace").splitlines()[-n:]
    return ":\n" + "\n".join(lines) if lines else ""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(model_dir: str | Path, engine: str = "auto", host: str = "127.0.0.1", port: int | None = None,
            **kw: object) -> Iterator[str]:  # fmt: skip
    """Start a server for `model_dir`, yield its base URL once healthy, stop it on exit.

    The engine's output goes to a temporary log file, quoted in the error if it fails to start.
    Clients name the model `str(model_dir)` (or `served_model_name=` with vLLM)."""
    opts = ServeOptions(str(model_dir), engine, host, port or free_port(host), **kw)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="dianjin-serve-") as tmp:
        log_file = Path(tmp) / "server.log"
        with open(log_file, "wb") as out:
            server = Server(opts, output=out).start()
            try:
                yield server.wait_healthy(log_file)
            finally:
                server.stop()


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a file-like object without a descriptor
        return 2


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dianjin serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--engine", default="auto", choices=["auto", *ENGINES])
    ap.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    ap.add_argument("--port", type=int, default=8901)
    ap.add_argument("--api-key-env", metavar="NAME", help="environment variable holding the API key (vLLM)")
    ap.add_argument("--served-model-name", help="model name for clients (vLLM; default: MODEL_DIR)")
    ap.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per model (vLLM)")
    ap.add_argument("--max-model-len", type=int, help="context length (vLLM; default: the model config's)")
    ap.add_argument("--startup-timeout", type=float, default=900.0, help="seconds to wait for /health")
    ap.add_argument("--dtype", default="auto", choices=DTYPES, help="default auto: bfloat16 where native")
    ap.add_argument(
        "--no-continuous-batching", dest="continuous_batching", action="store_false",
        help="transformers: one request at a time",
    )  # fmt: skip
    ap.add_argument("--cb-memory", type=float, help="transformers: KV cache share of memory (default 0.05 on a CPU)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="dianjin serve: %(message)s", stream=sys.stderr)
    opts = ServeOptions(a.model_dir, a.engine, a.host, a.port, a.api_key_env, a.served_model_name,
                        a.tensor_parallel_size, a.max_model_len, a.startup_timeout, a.dtype,
                        a.continuous_batching, a.cb_memory)  # fmt: skip
    try:
        server = Server(opts, output=_stderr_fd())  # our stdout carries only the URL
        check_port_free(opts.host, opts.port)
    except ServeError as e:
        print(f"dianjin serve: error: {e}", file=sys.stderr)
        return 2
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        server.send(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        try:
            url = server.wait_healthy()
        except ServeError as e:
            server.stop(None if stopping else signal.SIGTERM)
            if stopping:  # interrupted during start-up
                return 0
            print(f"dianjin serve: error: {e}", file=sys.stderr)
            return 1
        print(url, flush=True)
        log.info("%s engine serving model %r at %s (Ctrl-C to stop)", server.opts.engine, server.opts.model_name, url)
        proc = server.proc
        assert proc is not None  # set by start()
        while proc.poll() is None and not stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
        if stopping:
            rc = server.stop(None)  # the signal was forwarded; wait (then kill after the grace period)
            log.info("stopped on signal %d; server exit status %d", stopping[0], rc)
            return 0
        print(f"dianjin serve: error: server exited with status {proc.returncode}", file=sys.stderr)
        return proc.returncode or 1
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
        for s, h in old.items():
            signal.signal(s, h)
