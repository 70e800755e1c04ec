"""A lean HTTP/1.1 keep-alive connection pool for plain-http LLM endpoints (local vLLM, tests).

Why: `httpx2.AsyncClient` costs ~0.6 ms of CPU per request on this box (its client layer ~0.08 ms,
httpcore2 + anyio + h11 the rest; its pool scans every connection per request). At 64 requests in
flight against a server answering in 50 ms, that CPU queueing caps throughput near 80% of
Little's bound (docs/benchmarks.md, "LLM client"). Here each connection is an `asyncio.Protocol`
parsing the response as bytes arrive, with a LIFO idle pool: ~0.05 ms per request.

Scope (everything else goes through httpx2, see `dianjin.client`): `http://` URLs, no proxies,
whole request bodies, responses framed by Content-Length, chunked encoding or connection close,
gzip/deflate bodies decoded. Errors are httpx2's exception types (ConnectError,
RemoteProtocolError, ReadError, DecodingError) so callers handle both paths alike. A connection is
reused only after a complete response; a cancelled request (a timeout) closes its connection.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections import defaultdict
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx2

_MAX_HEAD = 64 * 1024
_WS = " \t\r\n\x0b\x0c"  # what bytes.strip() strips (str.strip() would also strip \x1c-\x1f, \x85, \xa0)


class _Conn(asyncio.Protocol):
    """One TCP connection; at most one request outstanding. Parses the response as bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}  # lower-cased names (latin-1), as in RawResponse
        self.length: int | None = None  # Content-Length, or None
        self.chunked = False
        self.keep_alive = True
        self.head_done = False
        self.body = bytearray()

    # asyncio callbacks --------------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            try:
                self._parse()
            except Exception as e:  # any garbage from the server fails this request, never the loop
                self._fail(e if isinstance(e, httpx2.RemoteProtocolError) else
                           httpx2.RemoteProtocolError(f"bad response: {type(e).__name__}: {e}"))

    def eof_received(self) -> bool | None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.head_done and self.length is None and not self.chunked:  # body framed by close
                self.body += self.buf
                self.buf.clear()
                self.keep_alive = False
                self.waiter.set_result(True)
            else:
                self._fail(httpx2.RemoteProtocolError("Server disconnected without sending a complete response."))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self._fail(httpx2.ReadError(f"connection lost: {exc}") if exc else
                       httpx2.RemoteProtocolError("Server disconnected without sending a response."))

    def _fail(self, exc: Exception) -> None:
        self.waiter.set_exception(exc)  # type: ignore[union-attr]
        self.close()

    # parsing ------------------------------------------------------------------------------------
    def _parse(self) -> None:
        if not self.head_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    raise httpx2.RemoteProtocolError("response head too large")
                return
            # One latin-1 decode of the whole head (byte for byte), then str operations: the header
            # dict is built here, in one pass. Stripping only ASCII whitespace, as bytes.strip() does.
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            parts = lines[0].split(" ", 2)
            try:
                version, self.status = parts[0], int(parts[1].encode("latin-1"))
            except (IndexError, ValueError):
                raise httpx2.RemoteProtocolError(f"bad status line {lines[0][:100].encode('latin-1')!r}") from None
            if 100 <= self.status < 200:  # interim response: skip it and parse the real one
                self.status = 0
                return self._parse()
            self.keep_alive = version == "HTTP/1.1"
            headers = self.headers
            for line in lines[1:]:
                k, _, v = line.partition(":")
                lk, v = k.strip(_WS).lower(), v.strip(_WS)
                headers[lk] = v  # a repeated header keeps its last value
                if lk == "content-length":
                    self.length = int(v.encode("latin-1"))
                elif lk == "transfer-encoding" and "chunked" in v.lower():
                    self.chunked = True
                elif lk == "connection":
                    self.keep_alive = v.lower() != "close" and (self.keep_alive or v.lower() == "keep-alive")
            self.head_done = True
            if self.chunked:
                self.length = None
            elif self.length is None and self.status in (204, 304):
                self.length = 0
        if self.chunked:
            self._parse_chunks()
        elif self.length is not None:
            if len(self.buf) >= self.length:
                self.body += self.buf[: self.length]
                del self.buf[: self.length]
                self.waiter.set_result(True)  # type: ignore[union-attr]

    def _parse_chunks(self) -> None:
        while True:
            end = self.buf.find(b"\r\n")
            if end < 0:
                return
            size_s = bytes(self.buf[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise httpx2.RemoteProtocolError(f"bad chunk size {size_s[:20]!r}") from None
            if size == 0:  # last chunk, then optional trailers and an empty line
                tail = self.buf.find(b"\r\n\r\n", end)
                if tail < 0:
                    return
                del self.buf[: tail + 4]
                self.waiter.set_result(True)  # type: ignore[union-attr]
                return
            if len(self.buf) < end + 2 + size + 2:
                return
            self.body += self.buf[end + 2 : end + 2 + size]
            del self.buf[: end + 2 + size + 2]

    # use ----------------------------------------------------------------------------------------
    async def roundtrip(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        if self.buf:
            self._parse()
        await self.waiter
        self.waiter = None
        return self.status, self.headers, bytes(self.body)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    content: bytes


_DECODERS = {"gzip": lambda b: zlib.decompress(b, 16 + zlib.MAX_WBITS), "deflate": zlib.decompress,
             "identity": lambda b: b}


class Http1Pool:
    """Keep-alive connections per (host, port), reused most-recent first; `await pool.request(...)`."""

    def __init__(self, max_idle: int = 256) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Conn]] = defaultdict(list)
        self._all: set[_Conn] = set()
        self._targets: dict[str, tuple[str, int, bytes, bytes]] = {}

    def _target(self, url: str) -> tuple[str, int, bytes, bytes]:
        t = self._targets.get(url)
        if t is None:
            u = urlsplit(url)
            if u.scheme != "http" or not u.hostname:
                raise httpx2.UnsupportedProtocol(f"Http1Pool only speaks http://, not {url!r}")
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            host_header = u.netloc.rpartition("@")[2]
            t = self._targets[url] = (u.hostname, u.port or 80, path.encode(), host_header.encode())
        return t

    async def _connect(self, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Conn, host, port)
        except OSError as e:
            raise httpx2.ConnectError(f"cannot connect to {host}:{port}: {e}") from e
        self._all.add(conn)
        return conn

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> RawResponse:
        host, port, path, host_header = self._target(url)
        head = [method.encode(), b" ", path, b" HTTP/1.1\r\nHost: ", host_header,
                b"\r\nAccept-Encoding: gzip, deflate\r\nContent-Length: %d\r\n" % len(body)]
        for k, v in headers.items():
            head += [k.encode(), b": ", v.encode(), b"\r\n"]
        head.append(b"\r\n")
        data = b"".join(head) + body
        idle = self._idle[(host, port)]
        conn = None
        while idle:
            c = idle.pop()
            if not c.closed and not c.buf:  # closed by the server, or unexpected bytes: do not reuse
                conn = c
                break
            self._all.discard(c)
        if conn is None:
            conn = await self._connect(host, port)
        try:
            status, hdrs, content = await conn.roundtrip(data)
        except BaseException:  # includes cancellation by a timeout: the connection state is unknown
            conn.close()
            self._all.discard(conn)
            raise
        if conn.keep_alive and not conn.closed and not conn.buf and len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        enc = hdrs.get("content-encoding", "identity").lower()
        if enc not in _DECODERS:
            raise httpx2.DecodingError(f"unsupported Content-Encoding {enc!r}")
        try:
            content = _DECODERS[enc](content)
        except zlib.error as e:
            raise httpx2.DecodingError(f"bad {enc} body: {e}") from None
        return RawResponse(status, hdrs, content)

    async def aclose(self) -> None:
        for c in self._all:
            c.close()
        self._all.clear()
        self._idle.clear()
