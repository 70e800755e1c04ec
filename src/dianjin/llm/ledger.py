"""Bookkeeping for LLM calls: a cost ledger per (stage, model), and a throttled progress line.

Ledger: paid calls, cache hits, failures, truncations, retries, prompt/completion tokens and the
estimated cost (config prices are per 1M tokens) for each stage and model. Cache hits cost nothing
and add no tokens: the ledger says what *this* run paid. `table()` renders it for the terminal,
`save(path)` writes JSON (atomically); with `path=` it also autosaves every few seconds, so a killed
run leaves a recent ledger behind, and `Ledger.resume(path)` starts from that one: a re-run adds to
what earlier (maybe killed) runs paid instead of replacing it.

Progress: one line on stderr, `stage: 812/1000 done, 3 failed, 64 in flight, 12 cached, 410.2/s,
ETA 0:00:01`, redrawn in place at most 4 times a second on a terminal, and printed as a new line at
most every 10 s otherwise (so CI logs stay short). Both are thread-safe.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

from dianjin.files import atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class LedgerRow:
    calls: int = 0  # successful paid HTTP calls
    cached: int = 0  # answered from the cache (or shared with an identical in-flight request)
    failed: int = 0  # requests that ended in an error
    truncated: int = 0  # answers cut at max_tokens (finish_reason "length"), paid
    retries: int = 0  # extra HTTP attempts
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # estimated, in the config's currency (USD by convention)
    latency: float = 0.0  # summed seconds of successful attempts

    def add(self, other: LedgerRow) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class Ledger:
    """`record(...)` per finished request; `rows[(stage, model)]`, `total()`, `table()`, `save()`."""

    def __init__(self, path: str | Path | None = None, autosave_every: float = 5.0):
        self.path = Path(path) if path is not None else None
        self.autosave_every = autosave_every
        self.rows: dict[tuple[str, str], LedgerRow] = {}
        self._lock = threading.Lock()
        self._saved = time.monotonic()

    def record(
        self,
        stage: str,
        model: str,
        *,
        cached: bool = False,
        failed: bool = False,
        truncated: bool = False,
        attempts: int = 1,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency: float = 0.0,
        price_in: float = 0.0,
        price_out: float = 0.0,
    ) -> None:
        paid = not cached and not failed
        with self._lock:
            row = self.rows.get((stage, model))
            if row is None:
                row = self.rows[(stage, model)] = LedgerRow()
            row.cached += cached
            row.failed += failed
            row.retries += max(0, attempts - 1) if not cached else 0
            if paid:
                row.calls += 1
                row.truncated += truncated
                row.prompt_tokens += prompt_tokens
                row.completion_tokens += completion_tokens
                row.cost += (prompt_tokens * price_in + completion_tokens * price_out) / 1e6
                row.latency += latency
            due = self.path is not None and time.monotonic() - self._saved > self.autosave_every
        if due:
            self.save()

    def total(self) -> LedgerRow:
        out = LedgerRow()
        with self._lock:
            for row in self.rows.values():
                out.add(row)
        return out

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            rows = [{"stage": s, "model": m, **asdict(r)} for (s, m), r in sorted(self.rows.items())]
        return {"rows": rows, "total": asdict(self.total())}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the ledger as JSON (to `path` or the ledger's own path), atomically."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("Ledger.save: no path given and the ledger has none")
        atomic_write_json(target, self.to_json())
        self._saved = time.monotonic()
        return target

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        led = cls()
        names = {f.name for f in fields(LedgerRow)}
        for r in data.get("rows", []):
            led.rows[(r["stage"], r["model"])] = LedgerRow(**{k: v for k, v in r.items() if k in names})
        return led

    @classmethod
    def resume(cls, path: str | Path, autosave_every: float = 5.0) -> Ledger:
        """A ledger saving to `path` that starts from the totals already saved there (by an earlier run,
        maybe killed); an unreadable file is moved aside to `path.unreadable` (with a warning)."""
        led = cls(path, autosave_every)
        path = Path(path)
        if path.exists():
            try:
                led.rows = cls.load(path).rows
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                aside = path.with_name(path.name + ".unreadable")
                log.warning("%s: unreadable ledger (%s); moved to %s, counting from zero", path, e, aside.name)
                os.replace(path, aside)
        return led

    def table(self) -> str:
        """A plain-text table, one row per (stage, model) plus a total."""
        head = ["stage", "model", "calls", "cached", "failed", "trunc", "retries", "prompt_tok", "compl_tok", "cost"]
        with self._lock:
            items = sorted(self.rows.items())
        body = [
            [
                s,
                m,
                r.calls,
                r.cached,
                r.failed,
                r.truncated,
                r.retries,
                r.prompt_tokens,
                r.completion_tokens,
                f"{r.cost:.4f}",
            ]
            for (s, m), r in items
        ]
        t = self.total()
        body.append(
            [
                "TOTAL",
                "",
                t.calls,
                t.cached,
                t.failed,
                t.truncated,
                t.retries,
                t.prompt_tokens,
                t.completion_tokens,
                f"{t.cost:.4f}",
            ]
        )
        cells = [head] + [[str(c) for c in row] for row in body]
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]

        def fmt(row: list[str]) -> str:  # names left-aligned, numbers right-aligned
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        lines = [fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]]
        return "\n".join(lines)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """A throttled one-line progress report; `start()`/`finish(ok, cached)` around each item. An answer
    cut at max_tokens is done (it is an answer) and also counted as truncated; `failed` is an error."""

    def __init__(
        self,
        total: int,
        desc: str = "llm",
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        min_interval: float = 0.25,
        line_interval: float = 10.0,
    ):
        self.total, self.desc = total, desc
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled if enabled is not None else True
        self.interval = min_interval if self.tty else line_interval
        self.done = self.failed = self.inflight = self.cached = self.truncated = 0
        self.t0 = time.monotonic()
        self._last = self.t0  # first line after one interval: short runs print only the final line
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        with self._lock:
            self.inflight += 1
        self._maybe_render()

    def finish(self, ok: bool, cached: bool = False, was_inflight: bool = True, truncated: bool = False) -> None:
        with self._lock:
            self.inflight -= was_inflight
            self.done += ok
            self.failed += not ok
            self.cached += cached
            self.truncated += ok and truncated
        self._maybe_render()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        finished = self.done + self.failed
        rate = finished / elapsed
        eta = _hms((self.total - finished) / rate) if rate > 0 and finished < self.total else "-"
        cut = f" ({self.truncated} truncated)" if self.truncated else ""
        return (
            f"{self.desc}: {self.done}/{self.total} done{cut}, {self.failed} failed, {self.inflight} in flight, "
            f"{self.cached} cached, {rate:.1f}/s, ETA {eta}"
        )

    def _maybe_render(self, force: bool = False) -> None:
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and not self._closed:
            self._maybe_render(force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()
        self._closed = True
