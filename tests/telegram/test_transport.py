"""LeanRequest against real servers on 127.0.0.1: the fake Bot API through PTB's `Bot`, and a
scripted HTTP server for what Telegram's front end may do (close, chunk, stall)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from telegram import Bot
from telegram.error import Forbidden, NetworkError, RetryAfter, TimedOut

from bot.telegram.transport import LeanRequest
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.loopback import FakeBotServer

OK = json.dumps({"ok": True, "result": True}).encode()


def answer(body: bytes = OK, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    parts = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + parts + b"0\r\n\r\n"


Reply = Callable[[bytes], bytes | None]  # request body -> raw answer; None: hang up unanswered
HANG_UP = b"<then hang up>"  # at the end of a raw answer: the server closes once it is sent


@dataclass
class Scripted:
    """An HTTP/1.1 server answering each request with the next scripted reply."""

    replies: list[Reply]
    connections: int = 0
    bodies: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.bodies.append(body)
                raw = self.replies.pop(0)(body)
                if raw is None:
                    break
                writer.write(raw.removesuffix(HANG_UP))
                await writer.drain()
                if b"Connection: close" in raw or raw.endswith(HANG_UP):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot{TOKEN}/getMe"


@asynccontextmanager
async def scripted(*replies: Reply) -> AsyncIterator[Scripted]:
    server = Scripted(list(replies))
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()


@asynccontextmanager
async def lean(**options: Any) -> AsyncIterator[LeanRequest]:
    request = LeanRequest(**options)
    async with request:
        yield request


async def test_a_bot_talks_to_the_fake_api_over_one_kept_alive_connection() -> None:
    with FakeBotServer(keep_alive=True) as server:
        async with lean() as request, Bot(TOKEN, f"{server.url}/bot", request=request) as bot:
            sent = await bot.send_message(7, "hello")
            assert sent.text == "hello"
            await bot.send_message(7, "again")
    assert [c.method for c in server.api.calls] == ["getMe", "sendMessage", "sendMessage"]
    assert server.api.texts(7) == ["hello", "again"]


async def test_telegram_errors_arrive_as_ptb_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # as kindbot sets it (application.py)
    api = BotAPI()
    api.fail("sendMessage", "forbidden")
    api.fail("sendMessage", "retry_after")
    with FakeBotServer(api, keep_alive=True) as server:
        async with lean() as request:
            bot = Bot(TOKEN, base_url=f"{server.url}/bot", request=request)
            with pytest.raises(Forbidden):
                await bot.send_message(7, "one")
            with pytest.raises(RetryAfter):
                await bot.send_message(7, "two")
            assert (await bot.send_message(7, "three")).text == "three"


async def test_uploads_go_through_the_stock_request_class() -> None:
    with FakeBotServer(keep_alive=True) as server:
        async with lean() as request:
            bot = Bot(TOKEN, base_url=f"{server.url}/bot", request=request)
            await bot.send_document(7, b"a,b\n1,2\n", filename="export.csv")
    assert [c.method for c in server.api.calls] == ["sendDocument"]


async def test_the_connection_is_reused_and_json_is_sent() -> None:
    async with scripted(lambda b: answer(), lambda b: answer()) as server, lean() as request:
        for _ in range(2):
            assert await request.do_request(server.url, "POST") == (200, OK)
    assert server.connections == 1


async def test_connection_close_and_chunked_answers() -> None:
    body = json.dumps({"ok": True, "result": {"id": 1, "text": "x" * 300}}).encode()
    replies: list[Reply] = [
        lambda b: answer(close=True),
        lambda b: chunked(body),
        lambda b: answer(),
    ]
    async with scripted(*replies) as server, lean() as request:
        assert await request.do_request(server.url, "POST") == (200, OK)
        assert await request.do_request(server.url, "POST") == (200, body)
        assert await request.do_request(server.url, "POST") == (200, OK)
    assert server.connections == 2  # a new one after the close; the chunked one was kept


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    replies: list[Reply] = [lambda b: answer() + HANG_UP, lambda b: answer()]
    async with scripted(*replies) as server, lean() as request:
        assert await request.do_request(server.url, "POST") == (200, OK)
        await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        assert await request.do_request(server.url, "POST") == (200, OK)
    assert server.connections == 2


async def test_a_request_the_server_hangs_up_on_fails_and_is_not_sent_again() -> None:
    replies: list[Reply] = [lambda b: answer(), lambda b: None, lambda b: answer()]
    async with scripted(*replies) as server, lean() as request:
        await request.do_request(server.url, "POST")
        with pytest.raises(NetworkError):
            await request.do_request(server.url, "POST")
        assert await request.do_request(server.url, "POST") == (200, OK)
    assert server.connections == 2
    assert len(server.bodies) == 3  # the failed one was sent once


async def test_a_stalled_answer_times_out_and_the_next_request_works() -> None:
    stalled = asyncio.Event()

    def slow(body: bytes) -> bytes | None:
        stalled.set()
        return b""  # nothing written: the client waits for an answer that does not come

    async with scripted(slow, lambda b: answer()) as server, lean(read_timeout=0.2) as request:
        with pytest.raises(TimedOut):
            await request.do_request(server.url, "POST")
        assert stalled.is_set()
        assert await request.do_request(server.url, "POST") == (200, OK)
    assert server.connections == 2


async def test_the_pool_limits_requests_at_once() -> None:
    replies: list[Reply] = [lambda b: answer()] * 3
    async with scripted(*replies) as server, lean(pool_size=1, pool_timeout=None) as request:
        first = asyncio.ensure_future(request.do_request(server.url, "POST"))
        second = asyncio.ensure_future(request.do_request(server.url, "POST"))
        results = await asyncio.gather(first, second)
    assert results == [(200, OK), (200, OK)]
    assert server.connections == 1  # one at a time, on the same connection


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = Scripted([lambda b: answer(), lambda b: answer()])
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=server_side)
    port = listening.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}/bot{TOKEN}/getMe"
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with lean(tls=trusting) as request:
            assert await request.do_request(url, "POST") == (200, OK)
            assert await request.do_request(url, "POST") == (200, OK)
        assert server.connections == 1
        async with lean() as request:  # certifi's roots do not know this certificate
            with pytest.raises(NetworkError):
                await request.do_request(url, "POST")
    finally:
        listening.close()
        await listening.wait_closed()
