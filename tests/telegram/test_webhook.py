"""Our webhook server: only Telegram's secret gets in, bodies are small, and the 200 comes
once the update was handled (so Telegram sends again whatever was not)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.telegram.handlers import UPDATES
from bot.telegram.polling import AnyApplication
from bot.telegram.webhook import SECRET_HEADER, WebhookServer
from bot.testing.botapi import BotAPI
from bot.testing.harness import FakeRequest, harness
from bot.testing.updates import Updates
from tests.telegram.test_polling import WAIT, Gated, gated_application, until

SECRET = "s3cret-Token_1"
WORDS = "my-very-own-unmistakable-thought"  # what a person wrote: never in any log


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(
    application: AnyApplication, **options: Any
) -> AsyncIterator[tuple[WebhookServer, httpx.AsyncClient]]:
    """A started webhook server on a free port, and a client that POSTs to it."""
    options = {"listen": "127.0.0.1", "port": 0, "path": "/hook", "secret": SECRET, **options}
    server = WebhookServer(application, **options)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=WAIT, trust_env=False) as client:
            yield server, client
    finally:
        await server.stop()


@asynccontextmanager
async def gated(**options: Any) -> AsyncIterator[tuple[Gated, WebhookServer, httpx.AsyncClient]]:
    handler = Gated()
    async with (
        gated_application(handler, request=FakeRequest(BotAPI())) as application,
        serving(application, **options) as (server, client),
    ):
        yield handler, server, client


async def post(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, secret: str | None = SECRET
) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/hook", content=content, headers=headers)
    return response.status_code


async def raw_status(port: int, head: str, body: bytes = b"") -> int:
    """Send a request by hand (headers may promise a body that never comes); its status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), WAIT)
        return int(line.split()[1])
    finally:
        writer.close()


def head(secret: str, length: int | None = None, chunked: bool = False) -> str:
    lines = ["POST /hook HTTP/1.1", "Host: bot", "Content-Type: application/json"]
    lines.append(f"{SECRET_HEADER}: {secret}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return "\n".join(lines) + "\n"


async def test_requests_without_the_right_secret_are_refused() -> None:
    updates = Updates()
    async with gated() as (handler, _, client):
        assert await post(client, updates.text(7, "/start"), secret=None) == 403
        assert await post(client, updates.text(7, "/start"), secret="guess") == 403
        assert await post(client, updates.text(7, "/start"), secret=SECRET + "x") == 403
        assert handler.started == []
        assert await post(client, updates.text(7, "/start")) == 200
        assert len(handler.finished) == 1


async def test_the_secret_and_the_size_are_checked_before_the_body_is_read() -> None:
    """95 MB promised, a few bytes sent: the answer comes without waiting for the rest."""
    async with gated() as (handler, server, _):
        promised = 95 * 1024 * 1024
        assert await raw_status(server.port, head("guess", promised), b'{"update_id"') == 403
        assert await raw_status(server.port, head(SECRET, promised), b'{"update_id"') == 413
        assert await raw_status(server.port, head(SECRET, (1 << 20) + 1)) == 413
        assert handler.started == []


async def test_a_streamed_body_over_the_limit_is_refused() -> None:
    chunk = b"x" * 600
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
    async with gated(max_body=1000) as (handler, server, _):
        assert await raw_status(server.port, head(SECRET, chunked=True), chunks) == 413
        assert handler.started == []


async def test_what_is_not_a_json_object_is_400() -> None:
    async with gated() as (handler, _, client):
        assert await post(client, b"{not json") == 400
        assert await post(client, b"[1, 2]") == 400
        assert await post(client, b"\xff\xfe") == 400
        assert await post(client, b"") == 400
        assert handler.started == []


async def test_an_update_ptb_cannot_read_is_200_and_one_line_without_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreadable = {"update_id": 5, "message": {"text": WORDS, "chat": "not an object"}}
    with caplog.at_level(logging.DEBUG):
        async with gated() as (handler, _, client):
            assert await post(client, unreadable) == 200
    assert handler.started == []
    (line,) = [r for r in caplog.records if r.name == "bot.telegram.webhook"]
    assert "cannot read" in line.getMessage()
    assert "\n" not in line.getMessage()
    assert line.exc_info is None
    assert not logged(caplog, WORDS)


async def test_the_200_comes_only_after_the_handler_finished() -> None:
    update = Updates().text(7, "hold on")
    async with gated() as (handler, _, client):
        handler.hold(update)
        answer = asyncio.create_task(post(client, update))
        await until(lambda: update["update_id"] in handler.started)
        await asyncio.sleep(0.1)
        assert not answer.done()
        handler.release(update)
        assert await asyncio.wait_for(answer, WAIT) == 200
        assert handler.finished == [update["update_id"]]


async def test_an_update_sent_again_while_being_handled_is_handled_once() -> None:
    update = Updates().text(7, "slow to answer")
    async with gated() as (handler, _, client):
        handler.hold(update)
        first = asyncio.create_task(post(client, update))
        await until(lambda: update["update_id"] in handler.started)
        again = asyncio.create_task(post(client, update))  # Telegram's retry
        await asyncio.sleep(0.1)
        assert not first.done() and not again.done()
        handler.release(update)
        assert list(await asyncio.gather(first, again)) == [200, 200]
    assert handler.started == [update["update_id"]]


async def test_stop_lets_a_running_update_finish_and_answer() -> None:
    update = Updates().text(7, "almost done")
    handler = Gated()
    async with gated_application(handler, request=FakeRequest(BotAPI())) as application:
        server = WebhookServer(
            application, listen="127.0.0.1", port=0, path="hook", secret=SECRET, drain=WAIT
        )
        await server.start()
        url = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=url, timeout=WAIT, trust_env=False) as client:
            handler.hold(update)
            answer = asyncio.create_task(post(client, update))
            await until(lambda: update["update_id"] in handler.started)
            stopping = asyncio.create_task(server.stop())
            await asyncio.sleep(0.1)
            assert not stopping.done()
            handler.release(update)
            assert await asyncio.wait_for(answer, WAIT) == 200
            await asyncio.wait_for(stopping, WAIT)


async def test_nothing_a_person_wrote_reaches_any_log(caplog: pytest.LogCaptureFixture) -> None:
    updates = Updates()
    with caplog.at_level(logging.DEBUG):
        async with gated() as (handler, _, client):
            assert await post(client, updates.text(7, WORDS)) == 200
            assert await post(client, updates.text(7, WORDS), secret="guess") == 403
            assert await post(client, b'{"update_id": 3, "message": "' + WORDS.encode()) == 400
            assert await post(client, {"message": {"text": WORDS}}) == 200  # unreadable
    assert len(handler.finished) == 1
    assert caplog.records  # the check below looked at something
    assert not logged(caplog, WORDS)


def logged(caplog: pytest.LogCaptureFixture, words: str) -> bool:
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.args)
        if words in text:
            return True
    return words in caplog.text


async def test_kindbot_answers_before_the_200_and_sets_its_webhook(app: App) -> None:
    async with harness(app) as h:
        url = "https://bot.example.org/kindbot/hook"
        async with serving(h.application, path="/hook", url=url) as (_, client):
            (hook,) = h.api.sent("setWebhook")
            assert hook.params["url"] == url
            assert hook.params["secret_token"] == SECRET
            assert hook.params["allowed_updates"] == UPDATES
            assert await post(client, h.updates.text(7, "/start")) == 200
            assert len(h.api.texts(7)) == 3  # all sent by the time Telegram hears 200
        assert not h.api.sent("deleteWebhook")  # Telegram keeps the URL across restarts


async def test_a_taken_port_is_an_error_and_leaves_no_socket_open() -> None:
    """The port's OSError reaches the caller, and the socket that failed to bind is closed
    there and then (not left to the garbage collector, which warns about it)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with gated_application(Gated(), request=FakeRequest(BotAPI())) as application:
            server = WebhookServer(
                application, listen="127.0.0.1", port=port, path="/hook", secret=SECRET
            )
            with warnings.catch_warnings():
                warnings.simplefilter("error", ResourceWarning)
                with pytest.raises(OSError):
                    await server.start()
                gc.collect()
            await server.stop()  # nothing was started: a no-op
