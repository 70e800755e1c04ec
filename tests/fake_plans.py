"""What the loopback OpenAI server (`tests/fake_openai.py`) answers and how it misbehaves: the
scripted answers' helpers, which requests fail (`FaultPlan`) and how long replies wait
(`LogNormalDelay`). The fault kinds' actions live with the server (`fake_openai.FAULTS`); their
names are here (`FAULT_KINDS`) so a plan is checked without the server.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

FAULT_KINDS = ("429", "500", "503", "400", "timeout", "malformed", "empty", "drop", "html", "cut", "nested", "length")


_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


def count_tokens(text: str | None) -> int:
    """A deterministic stand-in tokenizer: one token per CJK character, word or punctuation mark."""
    return len(_TOKEN.findall(text or ""))


def last_user(req: dict) -> str:
    for m in reversed(req.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c, ensure_ascii=False)
    return ""


def default_script(req: dict) -> dict:
    """Deterministic echo in the `<think>/<answer>` format, reasoning also in `reasoning_content`."""
    q = last_user(req)
    return {
        "content": f"<think>\nechoing {len(q)} chars\n</think>\n<answer>\necho: {q}\n</answer>",
        "reasoning_content": f"echoing {len(q)} chars",
    }


@dataclass
class FaultPlan:
    """Which requests fail, and how. Deterministic unless `rate` is set.

    fraction: share of distinct request keys faulted (chosen by sha256(seed, key)).
    attempts: how many first receipts of a chosen key are faulted (1 = only the first try).
    rate: if set, each receipt is faulted with this probability (seeded RNG; order-dependent).
    kinds: fault kinds, one picked per key by hash (per receipt when `rate` is set).
    """

    kinds: Sequence[str] = ("429", "500", "timeout", "malformed", "drop")
    fraction: float = 0.2
    attempts: int = 1
    rate: float | None = None
    seed: int = 0
    retry_after: float | None = 0.05  # seconds sent in Retry-After on 429 (None: no header)
    hang: float = 3.0  # how long a "timeout" fault holds the request before closing

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        bad = [k for k in self.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {sorted(FAULT_KINDS)}")
        self._rng = random.Random(self.seed)

    def pick(self, key: str, receipt: int) -> str | None:
        if not self.kinds:
            return None
        if self.rate is not None:
            return self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
        if receipt > self.attempts:
            return None
        h = int.from_bytes(hashlib.sha256(f"{self.seed}:{key}".encode()).digest()[:8], "big")
        if (h % 1_000_000) / 1_000_000 >= self.fraction:
            return None
        return self.kinds[(h // 1_000_000) % len(self.kinds)]

    def to_json(self) -> dict:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


@dataclass
class LogNormalDelay:
    """Per-receipt reply delay: log-normal with this median (seconds) and sigma, capped at `cap`; seeded."""

    median: float = 2.0
    sigma: float = 0.6
    cap: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.median <= 0 or self.sigma < 0 or self.cap <= 0:
            raise ValueError(f"bad LogNormalDelay {self}")
        self._rng = random.Random(self.seed)

    def draw(self) -> float:
        return min(self.cap, self._rng.lognormvariate(math.log(self.median), self.sigma))

    def mean(self) -> float:
        """The mean of the capped distribution (closed form)."""
        mu, s, c = math.log(self.median), self.sigma, self.cap
        if s == 0:
            return min(self.median, c)
        z = (math.log(c) - mu) / s
        return math.exp(mu + s * s / 2) * _phi(z - s) + c * (1 - _phi(z))

    def to_json(self) -> dict:
        return asdict(self)


__all__ = ["FAULT_KINDS", "FaultPlan", "LogNormalDelay", "count_tokens", "default_script", "last_user"]
