"""A lean HTTP/1.1 client for the Bot API, on PTB's public `BaseRequest`.

PTB's stock `HTTPXRequest` spends about a millisecond of CPU on every Bot API call (httpx,
httpcore, anyio and h11: some three thousand Python calls a request), which made it the
largest part of a kindbot worker's CPU per update (bench/http.py). A Bot API call is one small
POST with a JSON answer, so this layer does only that: a JSON body on a kept-alive connection,
the status line and headers read, the body by Content-Length (or chunked), on asyncio streams.
Measured through PTB's `post` on loopback: ~0.14 ms of CPU a call against ~1.5 ms; kindbot's
CPU per update over HTTP halved (bench/http.py: 3.6 ms to 1.8 ms on SQLite).

What it leaves to `HTTPXRequest`, which it holds as a fallback: uploads (multipart, i.e.
charts and exports: rare, and large next to the overhead) and every request when a proxy is
configured in the environment (HTTP(S)_PROXY, honoured by httpx, not here).

Errors are PTB's: a timeout raises `TimedOut`, any other connection failure `NetworkError`;
the status codes are mapped to exceptions by `BaseRequest` as for any request class. A failed
request is never sent again here (a retry is the caller's decision: a sendMessage must not be
doubled), and a connection that failed or was told to close is not reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

KEEP_ALIVE = 5.0  # s an idle connection is kept (httpx's default; servers close idle ones)
MAX_HEADER = 64 * 1024


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return not self.reader.at_eof() and now - self.idle_since < KEEP_ALIVE

    def close(self) -> None:
        self.writer.close()


class _Closed(Exception):
    """The server closed the connection or broke HTTP/1.1: the connection is not reused."""


class LeanRequest(BaseRequest):
    """Bot API calls as JSON POSTs over kept-alive HTTP/1.1 connections (at most `pool_size`
    at once: more callers wait for one, at most `pool_timeout` seconds)."""

    def __init__(
        self,
        *,
        pool_size: int = 8,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the context for https (default: certifi's roots, as httpx uses)."""
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._ssl = tls
        # The stock request class, for what this one does not do (see the module docstring).
        self._fallback = HTTPXRequest(
            connection_pool_size=pool_size,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        self._proxied = bool(urllib.request.getproxies())

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        await self._fallback.initialize()

    async def shutdown(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        await self._fallback.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See `BaseRequest.do_request`."""
        if self._proxied or (request_data is not None and request_data.contains_files):
            return await self._fallback.do_request(
                url, method, request_data, read_timeout, write_timeout, connect_timeout,
                pool_timeout,
            )  # fmt: skip
        read = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        write = self._write_timeout if write_timeout is BaseRequest.DEFAULT_NONE else write_timeout
        connect = (
            self._connect_timeout
            if connect_timeout is BaseRequest.DEFAULT_NONE
            else connect_timeout
        )
        pool = self._pool_timeout if pool_timeout is BaseRequest.DEFAULT_NONE else pool_timeout
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        key = (host, parts.port or (443 if tls else 80), tls)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = request_data.json_payload if request_data is not None else b""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"User-Agent: {self.USER_AGENT}\r\nAccept: application/json\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")

        try:
            async with asyncio.timeout(pool):
                await self._slots.acquire()
        except TimeoutError:
            raise TimedOut(
                "Pool timeout: all connections are busy; the request was not sent"
            ) from None
        try:
            connection = await self._connection(key, connect)
            try:
                async with asyncio.timeout(write):
                    connection.writer.write(head + body)
                    await connection.writer.drain()
                async with asyncio.timeout(read):
                    status, answer, reusable = await _read_response(connection.reader)
            except BaseException as exc:
                connection.close()
                if isinstance(exc, TimeoutError):
                    raise TimedOut(f"Timed out waiting for {host}") from None
                if isinstance(exc, OSError | _Closed | asyncio.IncompleteReadError):
                    raise NetworkError(f"connection to {host} failed ({exc!r})") from None
                raise
            if reusable:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(key, []).append(connection)
            else:
                connection.close()
            return status, answer
        finally:
            self._slots.release()

    async def _connection(self, key: tuple[str, int, bool], within: float | None) -> _Connection:
        """A kept-alive connection to `key` if one is still good, else a new one."""
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recent: the least likely to be closed
            if connection.usable(now):
                return connection
            connection.close()
        host, port, tls = key
        if tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        try:
            async with asyncio.timeout(within):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl if tls else None
                )
        except TimeoutError:
            raise TimedOut(f"Timed out connecting to {host}") from None
        except OSError as exc:
            raise NetworkError(f"cannot connect to {host} ({exc!r})") from None
        return _Connection(reader, writer)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be reused) of one HTTP/1.1 response."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _Closed("response headers too long") from None
    if len(head) > MAX_HEADER:
        raise _Closed("response headers too long")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise _Closed(f"not an HTTP/1.x response: {lines[0][:40]!r}")
    try:
        status = int(rest[:3])
    except ValueError:
        raise _Closed(f"bad status line: {lines[0][:40]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, await _read_chunked(reader), reusable
    length = headers.get("content-length")
    if length is None:  # the body runs to the end of the connection
        return status, await reader.read(), False
    if not length.isdigit():
        raise _Closed("bad Content-Length")
    return status, await reader.readexactly(int(length)), reusable


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Closed("bad chunk size") from None
        if size == 0:
            with contextlib.suppress(asyncio.IncompleteReadError):
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
