"""The real webhook server (PTB's, on tornado): only Telegram's secret token gets in."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from typing import Any

from bot.app import App
from tests.telegram.fakes import harness

SECRET = "s3cret-Token_1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def post(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(update).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_requests_without_the_right_secret_are_refused(app: App) -> None:
    port = free_port()
    async with harness(app) as h:
        updater = h.application.updater
        assert updater is not None
        await h.application.start()
        await updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url="https://bot.example.org/hook",
            secret_token=SECRET,
        )
        try:
            url = f"http://127.0.0.1:{port}/hook"
            (set_webhook,) = h.api.sent("setWebhook")
            assert set_webhook.params["secret_token"] == SECRET
            missing = await asyncio.to_thread(post, url, h.updates.text(7, "/start"), None)
            wrong = await asyncio.to_thread(post, url, h.updates.text(7, "/start"), "guess")
            assert (missing, wrong) == (403, 403)
            await asyncio.sleep(0.05)
            assert h.api.texts(7) == []
            ok = await asyncio.to_thread(post, url, h.updates.text(7, "/start"), SECRET)
            assert ok == 200
            await asyncio.wait_for(h.application.update_queue.join(), timeout=10)
            assert len(h.api.texts(7)) == 3
        finally:
            await updater.stop()
            await h.application.stop()
