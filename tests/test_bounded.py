"""`dianjin.tasks.bounded`: calls in worker processes under a time limit, from any thread, no leaks.

    .venv/bin/python -m pytest -q tests/test_bounded.py

The jobs below run in the workers, which import this module by name (workers get the parent's
`sys.path`, which holds tests/ under pytest).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dianjin.tasks import bounded

ME = __name__


def sleep_masked(seconds: float) -> None:
    """Sleep with SIGALRM blocked: stands for a long C-level call that the soft limit cannot interrupt
    (with gmpy2 or python-flint installed, sympy's big-integer work is such a call)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)


def spin(seconds: float) -> int:
    """Busy Python loop (interruptible by the soft limit)."""
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


def alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pool(monkeypatch):
    monkeypatch.setattr(bounded, "GRACE_S", 0.3)  # kill sooner after the soft limit: faster tests
    p = bounded.Pool(size=2)
    yield p
    pids = p.pids()
    p.close()
    assert wait_gone(pids), "workers outlived close()"


@pytest.fixture(scope="module")
def thread():
    with ThreadPoolExecutor(max_workers=2) as ex:
        yield ex


def on(where, thread, fn, *args, **kw):
    """fn(*args, **kw) in the main thread or in a worker thread; returns (result or exception, seconds)."""

    def run():
        start = time.perf_counter()
        try:
            out = fn(*args, **kw)
        except bounded.BoundedError as e:
            out = e
        return out, time.perf_counter() - start

    return run() if where == "main" else thread.submit(run).result(timeout=60)


# --- outcomes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["main", "worker"])
@pytest.mark.parametrize(
    "target, args, soft_s, want",
    [
        ("operator:add", (2, 3), 5.0, 5),  # a value comes back
        ("math:sqrt", (-1,), 5.0, bounded.CallError),  # an exception in the function: CallError with its text
        (f"{ME}:spin", (10.0,), 0.2, bounded.Overrun),  # a Python loop: the soft limit interrupts it
        ("time:sleep", (10.0,), 0.2, bounded.Overrun),  # a blocking call: interrupted as well
        (f"{ME}:sleep_masked", (10.0,), 0.2, bounded.Overrun),  # no signal gets through: the worker is killed
    ],
)
def test_call_outcomes_in_every_thread(pool, thread, where, target, args, soft_s, want):
    pool.call(f"{ME}:spin", 0.0)  # start the worker first: start-up is not part of a call's limit
    got, elapsed = on(where, thread, pool.call, target, *args, soft_s=soft_s)
    if isinstance(want, type):
        assert isinstance(got, want), got
    else:
        assert got == want
    assert elapsed < soft_s + bounded.GRACE_S + 2.0  # bounded (slack for a busy machine, not for a hang)
    assert pool.call("operator:add", 1, 1) == 2  # the pool still works afterwards


def test_soft_limit_keeps_the_worker_hard_limit_replaces_it(pool):
    pool.call("operator:add", 1, 1)
    [pid] = pool.pids()
    with pytest.raises(bounded.Overrun, match="time limit of 0.2 s hit"):
        pool.call("time:sleep", 10.0, soft_s=0.2)
    assert pool.pids() == [pid]  # reused: no start-up cost after a soft time-out
    with pytest.raises(bounded.Overrun, match="worker killed"):
        pool.call(f"{ME}:sleep_masked", 10.0, soft_s=0.2)
    assert not alive(pid)  # killed and reaped, not a zombie
    assert pid not in pool.pids() and len(pool.pids()) == 1  # a replacement is already starting
    assert pool.call("operator:add", 2, 2) == 4


def test_concurrent_calls_share_the_pool(pool, thread):
    with ThreadPoolExecutor(max_workers=6) as ex:
        got = list(ex.map(lambda i: pool.call("operator:mul", i, i), range(30)))
    assert got == [i * i for i in range(30)]
    assert len(pool.pids()) <= pool.size


def test_all_workers_busy_is_an_overrun(pool, thread):
    busy = [thread.submit(pool.call, "time:sleep", 1.5, soft_s=3.0) for _ in range(pool.size)]
    time.sleep(0.3)  # both workers taken
    with pytest.raises(bounded.Overrun, match="busy"):
        pool.call("operator:add", 1, 1, soft_s=0.1)
    assert [f.result() for f in busy] == [None] * pool.size


def test_worker_death_is_an_overrun_and_the_pool_recovers(pool, thread):
    pool.call("operator:add", 1, 1)
    [pid] = pool.pids()
    fut = thread.submit(pool.call, "time:sleep", 5.0, soft_s=10.0)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)  # e.g. the OOM killer
    with pytest.raises(bounded.Overrun, match="died"):
        fut.result(timeout=10)
    assert pool.call("operator:add", 1, 2) == 3


def test_worker_cpu_is_counted(pool):
    before = pool.cpu_seconds
    pool.call(f"{ME}:spin", 0.2)
    assert pool.cpu_seconds - before > 0.05  # the worker's CPU time, not this process's


def test_normal_path_overhead_is_small(pool):
    pool.call("operator:add", 1, 1)
    n, cpu, wall = 300, time.process_time(), time.perf_counter()
    for i in range(n):
        assert pool.call("operator:add", i, 1) == i + 1
    cpu, wall = (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n
    assert cpu < 0.001, f"{cpu * 1e6:.0f} us of this process's CPU per call"
    assert wall < 0.01, f"{wall * 1e6:.0f} us per round trip"


# --- no leaks -----------------------------------------------------------------------------------
def _orphan_script(job: str) -> str:
    """A parent that starts a worker (busy with `job` or idle) and dies without cleaning up."""
    return textwrap.dedent(f"""
        import os, sys, threading, time
        sys.path[:0] = {sys.path!r}
        from dianjin.tasks import bounded
        pool = bounded.Pool(1)
        pool.call("operator:add", 1, 1)
        print(pool.pids()[0], flush=True)
        if {job!r}:
            threading.Thread(target=pool.call, args=({job!r}, 60.0), kwargs={{"soft_s": 60.0}}, daemon=True).start()
            time.sleep(0.5)
        os._exit(0)  # no atexit: the workers must notice on their own
    """)


@pytest.mark.parametrize(
    "job",
    [
        "",  # an idle worker: its stdin closes
        f"{ME}:sleep_masked",  # a busy worker that ignores signals: the parent-pid watchdog
    ],
)
def test_workers_exit_when_the_parent_dies(job):
    out = subprocess.run(
        [sys.executable, "-c", _orphan_script(job)], capture_output=True, text=True, timeout=60, check=False
    )
    pid = int(out.stdout.split()[0])
    assert wait_gone([pid], within=5.0), f"worker {pid} outlived its parent"


def _in_daemon(queue):
    queue.put(bounded.Pool(1).call("operator:add", 40, 2))


def test_works_inside_a_daemonic_process():
    # multiprocessing's own pools refuse to start children here; plain subprocesses do not
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_in_daemon, args=(queue,), daemon=True)
    proc.start()
    try:
        assert queue.get(timeout=60) == 42
    finally:
        proc.join(timeout=10)
