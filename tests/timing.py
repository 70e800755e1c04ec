"""CPU-time measurement for speed assertions that must not flake on a busy machine."""

import time


def cpu_seconds(fn, repeat: int = 3) -> float:
    """Best-of-`repeat` process CPU time of `fn()` (other processes' load does not count)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best
