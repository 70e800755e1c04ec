"""The LLM client's bounds on what a server sends back (dianjin.llm.client): gzip and deflate
bodies decoded, a decompression bomb, an endless or dripping body, corrupt encodings and null
content, each from a raw loopback socket that writes exactly those bytes.

    .venv/bin/python -m pytest -q tests/test_client_bounds.py
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import time
import zlib
from collections.abc import Callable

import pytest

from dianjin.llm.client import ChatResult, EndpointConfig, LLMClient

_GOOD = json.dumps(
    {
        "choices": [{"message": {"content": "<answer>压缩 4</answer>"}, "finish_reason": "stop"}],
        "padding": "y" * 100_000,
    }
).encode()


def _gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed in pieces (never held whole): ~1,000:1."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as f:
        block = b"0" * 2**20
        for _ in range(size // len(block)):
            f.write(block)
    return buf.getvalue()


async def _endless(writer):  # chunked, never the last chunk
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 65536
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()


async def _drip(writer):  # a valid head, then one byte a second
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(1)


def _fixed(body: bytes | Callable[[], bytes], encoding: str = "identity"):
    async def reply(writer):
        nonlocal body
        body = body() if callable(body) else body
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n" % (encoding.encode(), len(body))
            + body
        )
        await writer.drain()

    return reply


def _raw_server_call(reply, **kw) -> tuple[list[ChatResult], float]:
    """Serve `reply(writer)` to every request on a raw loopback socket; one client.map of one request."""

    async def go():
        async def handle(reader, writer):
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reply(writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        t0 = time.perf_counter()
        try:
            config = EndpointConfig(**{"base_url": url, "model": "m", "backoff_base": 0.0, "backoff_max": 0.0, **kw})
            async with LLMClient(config, progress=False) as llm:
                return await llm.map([[{"role": "user", "content": "q"}]]), time.perf_counter() - t0
        finally:
            server.close()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "reply, kw, error, max_seconds",
    [
        (_fixed(gzip.compress(_GOOD), "gzip"), {}, None, 5),  # a gzip body is decoded (here, not by the transport)
        (_fixed(zlib.compress(_GOOD), "deflate"), {}, None, 5),  # deflate (zlib-wrapped, as servers send it)
        (_fixed(_GOOD), {}, None, 5),  # no encoding
        (_fixed(lambda: _gzip_bomb(2**28), "gzip"), {"max_retries": 1}, "larger than max_response_bytes", 20),
        # ^ a 260 KB gzip body that inflates to 256 MiB stops at the 16 MiB cap, each attempt
        (_endless, {"max_retries": 0, "max_response_bytes": 2**20}, "larger than max_response_bytes", 20),
        # ^ a body that never ends fails at the cap, long before the timeout
        (_drip, {"max_retries": 0, "timeout": 1.0}, "timed out after 1s", 10),
        # ^ a body trickling forever: the timeout covers the whole exchange, not each read
        (_fixed(b"\x00not gzip", "gzip"), {"max_retries": 0}, "bad gzip body", 5),  # a corrupt gzip body
        (_fixed(_GOOD, "br"), {"max_retries": 0}, "unsupported Content-Encoding", 5),  # we only ask for gzip, deflate
        (
            _fixed(json.dumps({"choices": [{"message": {"content": None}, "finish_reason": "stop"}]}).encode()),
            {"max_retries": 1},
            "message content is null",
            5,
        ),  # content: null is an error, not an answer
    ],
)
def test_responses_are_bounded(reply, kw, error, max_seconds):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (res,), seconds = _raw_server_call(reply, **kw)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    if error is None:
        assert res.ok and res.content, res.error
    else:
        assert res.error and error in res.error, res.error
    assert seconds < max_seconds
    assert grown_mb < 100  # the 256 MiB bomb never exists in memory (peak RSS grows by tens of MB at most)
