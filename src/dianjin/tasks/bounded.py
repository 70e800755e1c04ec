"""Run a function in a worker process under a time limit, from any thread (MATH-500's math-verify calls).

Why: sympy can run for hours on a short answer (`(99999!)!`, a big multinomial expansion) and a
thread cannot be interrupted from outside; math-verify's own time limits use `signal.alarm`, which
works only in the main thread, and verl's reward loop scores in executor threads. So such calls go
to a small pool of worker processes:

    bounded.call("dianjin.tasks.math500:verify_job", gold, pred, soft_s=3.0)

- soft limit: in the worker, a SIGALRM timer interrupts the call after `soft_s`; the worker answers
  "over time" and is reused.
- hard limit: when no answer arrives `GRACE_S` later (a long C-level call that never checks for
  signals, e.g. gmpy2's big-integer arithmetic, which sympy uses when it is installed, keeps the
  handler from running), the worker is killed and reaped, and a fresh one is started at once.
- `Overrun` is raised when a limit is hit, the worker dies, no worker frees up within the hard limit,
  or one cannot start (STARTUP_S, which also covers the worker's first import of the target's
  module and does not count against the call's limit). `CallError` carries an exception raised by
  the function itself.

Workers are plain subprocesses (`sys.executable`, the parent's `sys.path`), not multiprocessing: no
fork of a threaded parent, and they work inside daemonic processes. Nothing leaks: workers are
killed at exit, exit on their own when the parent's pipe closes or the parent dies (a watchdog
thread polls the parent pid), and a forked child starts with an empty pool. Each worker caps its
address space (`MEMORY_BYTES`), ignores SIGINT (Ctrl-C is the parent's to handle) and sends stray
prints to stderr. The cost on the normal path is one pipe round trip (tens of microseconds).
Arguments and results must be picklable; targets are "module:function" names. Each process that
scores has its own pool of up to `MAX_WORKERS` (env DIANJIN_BOUNDED_WORKERS; ~65 MB each).
"""

from __future__ import annotations

import atexit
import importlib
import math
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from typing import Any

MAX_WORKERS = int(os.environ.get("DIANJIN_BOUNDED_WORKERS") or 0) or min(4, os.cpu_count() or 1)
SOFT_S = 3.0  # default time limit of one call
GRACE_S = 1.0  # how long after the soft limit a worker is killed
STARTUP_S = 60.0  # interpreter start plus the target module's import, on a busy machine
MEMORY_BYTES = 4 << 30  # RLIMIT_AS of a worker: a runaway computation fails instead of swapping the host
_HEADER = struct.Struct("!I")
_BOOT = "from dianjin.tasks.bounded import _serve; _serve()"


class BoundedError(RuntimeError):
    """A bounded call gave no result; the message says why."""


class Overrun(BoundedError):
    """The time limit was hit, or the worker died or could not start."""


class CallError(BoundedError):
    """The function raised in the worker (the message is its type and text)."""


# --- worker side --------------------------------------------------------------------------------
class _Overtime(BaseException):
    """Raised by the worker's SIGALRM handler (BaseException, so `except Exception` in the callee
    does not swallow it)."""


_armed = False


def _on_alarm(signum: int, frame: Any) -> None:
    if _armed:
        raise _Overtime


def _run(target: str, args: tuple, soft_s: float) -> Any:
    global _armed
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, max(soft_s, 0.001))  # 0 would disarm it
    try:
        return fn(*args)
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


def _watch_parent(ppid: int) -> None:
    while os.getppid() == ppid:
        time.sleep(1.0)
    os._exit(1)


def _serve() -> None:
    """A worker's main loop: read (kind, ...) requests on stdin, answer on the original stdout."""
    out = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _on_alarm)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ImportError, ValueError, OSError):
        pass
    reader = os.fdopen(0, "rb", buffering=0)
    while True:
        header = _read_exact(reader, _HEADER.size)
        if header is None:
            return  # the parent closed the pipe
        body = _read_exact(reader, _HEADER.unpack(header)[0])
        if body is None:
            return
        kind, *rest = pickle.loads(body)
        cpu = time.process_time()
        try:
            if kind == "import":
                importlib.import_module(rest[0])
                status, value = "ok", None
            else:
                status, value = "ok", _run(*rest)
        except _Overtime:
            status, value = "overtime", None
        except BaseException as e:  # noqa: BLE001 - reported to the caller, the worker lives on
            status, value = "error", f"{type(e).__name__}: {e}"[:500]
        try:
            reply = pickle.dumps((status, value, time.process_time() - cpu), pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - an unpicklable result
            reply = pickle.dumps(("error", f"unpicklable result: {e}"[:500], 0.0))
        try:
            _write_all(out, _HEADER.pack(len(reply)) + reply)
        except OSError:
            return  # the parent is gone


def _read_exact(reader: Any, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = reader.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- parent side --------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    """The parent's environment, with its import path (so a worker imports what the parent can)."""
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if os.path.exists(p)))
    return env


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env(), bufsize=0
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are PIPEs
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.modules: set[str] = set()
        self.pending = 0  # replies to imports sent ahead (by `Pool._replace`), not read yet
        self._buf = bytearray()
        self._poll = select.poll()
        self._poll.register(self.stdout.fileno(), select.POLLIN)

    def send(self, request: tuple | bytes) -> None:
        data = request if isinstance(request, bytes) else pickle.dumps(request, pickle.HIGHEST_PROTOCOL)
        _write_all(self.stdin.fileno(), _HEADER.pack(len(data)) + data)

    def _fill(self, n: int, deadline: float) -> None:
        """Read until `n` bytes are buffered (a whole reply usually comes in one read)."""
        fd = self.stdout.fileno()
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if self._poll.poll(math.ceil(left * 1000)):
                chunk = os.read(fd, max(n - len(self._buf), 65536))
                if not chunk:
                    raise EOFError
                self._buf += chunk

    def recv(self, deadline: float) -> tuple[str, Any, float]:
        self._fill(_HEADER.size, deadline)
        end = _HEADER.size + _HEADER.unpack_from(self._buf)[0]
        self._fill(end, deadline)
        reply = pickle.loads(self._buf[_HEADER.size : end])
        del self._buf[:end]
        return reply

    def load(self, module: str) -> None:
        """Make sure the worker has imported `module` (answers to earlier imports first); limit STARTUP_S."""
        deadline = time.monotonic() + STARTUP_S
        if module not in self.modules:
            self.send(("import", module))
            self.pending += 1
            self.modules.add(module)
        while self.pending:
            status, value, _ = self.recv(deadline)
            self.pending -= 1
            if status != "ok":
                raise CallError(f"worker could not import: {value}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.stdin, self.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class Pool:
    """Up to `size` worker processes, started on demand and reused; safe to share between threads."""

    def __init__(self, size: int = MAX_WORKERS):
        self.size = size
        self._reset()
        self.cpu_seconds = 0.0  # CPU time the calls took inside the workers (for benchmarks and tests)
        _POOLS.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._modules: set[str] = set()
        self._pid = os.getpid()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._cond:
            return sorted(w.proc.pid for w in self._workers)

    def call(self, target: str, *args: Any, soft_s: float = SOFT_S) -> Any:
        """`module.function(*args)` in a worker; at most `soft_s` (+ GRACE_S) seconds once it runs."""
        module = target.partition(":")[0]
        request = pickle.dumps(("call", target, args, soft_s), pickle.HIGHEST_PROTOCOL)  # bad arguments fail here
        worker = self._checkout(time.monotonic() + soft_s + GRACE_S)
        try:
            try:
                worker.load(module)
            except TimeoutError:
                raise Overrun(f"worker did not start within {STARTUP_S:g} s") from None
            worker.send(request)
            status, value, cpu = worker.recv(time.monotonic() + soft_s + GRACE_S)
        except TimeoutError:
            self._drop(worker, replace=True)
            raise Overrun(f"no answer within {soft_s + GRACE_S:g} s (worker killed)") from None
        except (OSError, EOFError, pickle.UnpicklingError):
            self._drop(worker, replace=True)
            raise Overrun("worker process died") from None
        except BaseException:  # an import that failed, a KeyboardInterrupt: the worker's state is unknown
            self._drop(worker, replace=False)
            raise
        with self._cond:
            self._modules.add(module)
            self.cpu_seconds += cpu
        self._checkin(worker)
        if status == "overtime":
            raise Overrun(f"time limit of {soft_s:g} s hit")
        if status == "error":
            raise CallError(value)
        return value

    def _checkout(self, deadline: float) -> _Worker:
        with self._cond:
            if self._pid != os.getpid():
                self._reset()  # a forked child: the workers are the parent's
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.proc.poll() is None:
                        return worker
                    self._workers.discard(worker)
                    worker.kill()
                if len(self._workers) < self.size:
                    try:
                        worker = _Worker()
                    except OSError as e:  # no interpreter to run, no processes left
                        raise Overrun(f"cannot start a worker: {e}") from None
                    self._workers.add(worker)
                    return worker
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise Overrun(f"all {self.size} workers busy")

    def _checkin(self, worker: _Worker) -> None:
        with self._cond:
            if worker in self._workers:
                self._idle.append(worker)
            self._cond.notify()

    def _drop(self, worker: _Worker, replace: bool) -> None:
        worker.kill()
        with self._cond:
            self._workers.discard(worker)
            if replace and len(self._workers) < self.size and self._pid == os.getpid():
                self._replace()
            self._cond.notify()

    def _replace(self) -> None:
        """Start a worker and send it the imports now, so its start-up overlaps other work."""
        try:
            worker = _Worker()
        except OSError:
            return  # the next call starts one (or says why it cannot)
        try:
            for module in sorted(self._modules):
                worker.send(("import", module))
                worker.modules.add(module)
                worker.pending += 1
        except OSError:
            worker.kill()
            return
        self._workers.add(worker)
        self._idle.insert(0, worker)  # the hot workers are used first

    def close(self) -> None:
        """Kill every worker (later calls start new ones)."""
        with self._cond:
            workers = list(self._workers) if self._pid == os.getpid() else []
            self._reset()
        for worker in workers:
            worker.kill()


_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
_DEFAULT = Pool()


def call(target: str, *args: Any, soft_s: float = SOFT_S) -> Any:
    """`Pool.call` on the shared pool."""
    return _DEFAULT.call(target, *args, soft_s=soft_s)


def default_pool() -> Pool:
    """The shared pool (for its `cpu_seconds`, `pids` and `close`)."""
    return _DEFAULT


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


def _forget_all() -> None:
    for pool in list(_POOLS):
        pool._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all)
