"""The HTTP mechanics under `dianjin.llm.client`: which failures are retried and how long to wait
(Retry-After, exponential backoff with jitter), the per-endpoint token bucket, and reading a streamed
body with a cap on its decoded size (gzip bombs and never-ending bodies alike).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from dianjin.llm.endpoint import EndpointConfig

RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
MAX_RETRY_AFTER = 600.0  # never sleep longer than this on a server's say-so


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date); None if absent or bad."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def backoff(cfg: EndpointConfig, attempt: int, after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: at least Retry-After, else exponential with jitter."""
    if after is not None:
        return min(after, MAX_RETRY_AFTER) * (1 + 0.1 * random.random())
    base = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1))
    return random.uniform(base / 2, base)


class TokenBucket:
    """Rate limit by reservation: each caller takes a token (the level may go negative) and sleeps
    until its token would have been there. Fair, lock-free on one event loop, any loop."""

    def __init__(self, rate: float, burst: int = 1):
        self.rate, self.burst = float(rate), float(burst)
        self.level, self.t = float(burst), time.monotonic()

    def reserve(self) -> float:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        self.level -= 1
        return 0.0 if self.level >= 0 else -self.level / self.rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


_BUCKETS: dict[tuple[str, float, int], TokenBucket] = {}


_DECOMPRESSORS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(),
    "identity": lambda: None,
}


class _TooLarge(ValueError):
    pass


async def read_capped(resp: httpx2.Response, limit: int) -> bytes:
    """The decoded body of a streamed response, or `_TooLarge` as soon as it would pass `limit` bytes.

    Decoded here, from the raw stream, with a bounded `decompress(max_length=...)`: a small gzip body
    that inflates to gigabytes stops at `limit`, and so does a body that never ends.
    """
    enc = resp.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if enc not in _DECOMPRESSORS:
        raise httpx2.DecodingError(f"unsupported Content-Encoding {enc!r}")
    d = _DECOMPRESSORS[enc]()
    out = bytearray()
    too_large = _TooLarge(f"response body larger than max_response_bytes={limit}")
    try:
        async for raw in resp.aiter_raw():
            chunk = raw if d is None else d.decompress(raw, limit + 1 - len(out))
            out += chunk
            if len(out) > limit or (d is not None and d.unconsumed_tail):
                raise too_large
        if d is not None:
            out += d.flush()
    except zlib.error as e:
        raise httpx2.DecodingError(f"bad {enc} body: {e}") from None
    if len(out) > limit:
        raise too_large
    return bytes(out)
