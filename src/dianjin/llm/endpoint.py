"""An OpenAI-compatible endpoint as configured (`EndpointConfig`, checked on load) and the error a
request that fails for good raises (`LLMError`). Used by `dianjin.llm.client` and by every stage that
calls a teacher, a judge or a served model (data build, mine, eval, demo).

Keys: `api_key_env` names the environment variable; the key itself is read only by `api_key()`,
never stored in a config, a row, a log or an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from dianjin.errors import DataError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization"}


class LLMError(RuntimeError):
    """A request that failed for good: a non-retryable 4xx, or retries exhausted.

    endpoint: the URL called; status: the last HTTP status (None for timeouts/connection errors);
    body: an excerpt of the last response body; attempts: HTTP attempts made.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        body: str = "",
        attempts: int = 0,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.endpoint, self.status, self.body, self.attempts, self.retryable = (
            endpoint,
            status,
            body,
            attempts,
            retryable,
        )


# --- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointConfig:
    """One OpenAI-compatible endpoint and how to call it. Build with `from_dict` to get checks."""

    base_url: str  # e.g. "https://api.deepseek.com/v1" or "http://127.0.0.1:8000/v1"
    model: str
    api_key_env: str | None = None  # NAME of the env var holding the key (None: no Authorization header)
    auth_header: str = "Authorization"  # sent as "Bearer KEY"; any other name (e.g. Azure's "api-key") gets KEY
    concurrency: int = 64  # HTTP requests in flight
    rps: float | None = None  # requests per second (token bucket); None: unlimited
    burst: int = 1  # token bucket size
    timeout: float = 60.0  # seconds per attempt; R1-style reasoning calls can need 600 (a timeout is paid again)
    max_retries: int = 6  # extra attempts after the first
    backoff_base: float = 0.5  # first backoff in seconds; doubles per attempt, with jitter
    backoff_max: float = 30.0
    temperature: float | None = None  # None: not sent (server default)
    top_p: float | None = None
    max_tokens: int | None = None
    price_in: float = 0.0  # per 1M prompt tokens, for the ledger
    price_out: float = 0.0  # per 1M completion tokens
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into every request body
    headers: dict[str, str] = field(default_factory=dict)  # extra non-secret headers
    cache_salt: str | None = None  # mixed into the cache key (e.g. a checkpoint hash)
    max_response_bytes: int = 16 * 2**20  # a decoded body past this fails the attempt (a real completion is < 1 MB)

    def __post_init__(self) -> None:
        errors = [(name, problem) for name, check in _CHECKS.items() if (problem := check(getattr(self, name)))]
        if errors:
            name, problem = errors[0]
            raise DataError("endpoint config", None, name, problem)
        url = self.base_url.rstrip("/")
        url = url[: -len("/chat/completions")] if url.endswith("/chat/completions") else url
        object.__setattr__(self, "base_url", url)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "endpoint config") -> EndpointConfig:
        """Build from a config mapping; errors name `where` and the field."""
        if not isinstance(data, dict):
            raise DataError(where, None, None, f"expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for name in data:
            if name in ("api_key", "key", "token"):
                raise DataError(
                    where,
                    None,
                    name,
                    "never put an API key in a config: export it and name the "
                    "variable with api_key_env (e.g. api_key_env: DEEPSEEK_API_KEY)",
                )
            if name not in known:
                raise DataError(where, None, name, f"unknown key; known keys: {', '.join(sorted(known))}")
        for name in ("base_url", "model"):
            if name not in data:
                raise DataError(where, None, name, "required")
        try:
            return cls(**data)
        except DataError as e:
            raise DataError(where, None, e.field, e.problem) from None

    def api_key(self) -> str | None:
        """The key from the environment (None when `api_key_env` is None); errors if the variable is unset."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise LLMError(
                f"{self.base_url}: environment variable {self.api_key_env} (api_key_env) is not set",
                endpoint=self.base_url,
            )
        return key


def _check(ok: Callable[[Any], bool], want: str) -> Callable[[Any], str | None]:
    return lambda v: None if ok(v) else f"must be {want}, got {v!r}"


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_env(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _ENV_NAME.match(v):  # do not echo: it may be a pasted key
        return "must be the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), not the key itself"
    return None


def _check_headers(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        return "must be a mapping of strings"
    secret = [k for k in v if k.lower() in _SECRET_HEADERS]
    if secret:  # do not echo the values
        return f"must not carry credentials ({', '.join(secret)}): set api_key_env (and auth_header) instead"
    return None


# field -> check returning a problem string or None
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "base_url": _check(
        lambda v: isinstance(v, str) and re.match(r"^https?://[^/\s]+", v) is not None,
        "an http:// or https:// URL such as http://127.0.0.1:8000/v1",
    ),
    "model": _check(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "api_key_env": _check_env,
    "concurrency": _check(lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "rps": _check(lambda v: v is None or (_num(v) and v > 0), "null or a number > 0"),
    "burst": _check(lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "timeout": _check(lambda v: _num(v) and v > 0, "a number of seconds > 0"),
    "max_retries": _check(lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "backoff_base": _check(lambda v: _num(v) and v >= 0, "a number >= 0"),
    "backoff_max": _check(lambda v: _num(v) and v >= 0, "a number >= 0"),
    "temperature": _check(lambda v: v is None or (_num(v) and 0 <= v <= 2), "null or a number in [0, 2]"),
    "top_p": _check(lambda v: v is None or (_num(v) and 0 < v <= 1), "null or a number in (0, 1]"),
    "max_tokens": _check(lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
    "price_in": _check(lambda v: _num(v) and v >= 0, "a number >= 0 (price per 1M tokens)"),
    "price_out": _check(lambda v: _num(v) and v >= 0, "a number >= 0 (price per 1M tokens)"),
    "extra_body": _check(lambda v: isinstance(v, dict), "a mapping"),
    "auth_header": _check(
        lambda v: isinstance(v, str) and re.match(r"^[A-Za-z0-9-]+$", v) is not None, "an HTTP header name"
    ),
    "headers": _check_headers,
    "cache_salt": _check(lambda v: v is None or isinstance(v, str), "null or a string"),
    "max_response_bytes": _check(lambda v: _int(v) and v >= 1024, "an integer >= 1024 (bytes)"),
}
