"""The fake Bot API over loopback HTTP, and Telegram's side of a webhook.

`FakeBotServer` serves a `BotAPI` on 127.0.0.1 (a free port) for a bot in another process:
polling through getUpdates, or TELEGRAM_API_URL for a webhook bot's replies.
`WebhookPusher` delivers updates to a webhook bot the way Telegram does: POSTed with the
secret header, again until a 200 comes.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import sys
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from bot.testing.botapi import BotAPI, Dropped
from bot.testing.updates import chat_of


class _QuietServer(ThreadingHTTPServer):
    """A client that went away mid-request (a bot killed on purpose) is not an error. The
    backlog is deep: a bot opens a connection per request, and with the default 5 a burst
    overflows it and some connects wait a second for the kernel's SYN retry."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_RUN = re.compile(r"^/run(\d+)/")


class FakeBotServer:
    """The same fake over HTTP: POST /bot<token>/<method>, on 127.0.0.1 and a free port.

    `keep_alive` answers in HTTP/1.1 and keeps connections open, as Telegram does: a bot then
    pays for a connection once, not per request (bench/http.py measures a bot's CPU that way).
    Off (what the tests were written against), each request gets a connection of its own.
    """

    def __init__(self, api: BotAPI | None = None, *, keep_alive: bool = False) -> None:
        self.api = api or BotAPI()
        fake = self.api

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            # An answer leaves in one write, with no Nagle wait: headers and body written
            # apart would hold the body for the client's delayed ACK (~40 ms a request).
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    params = json.loads(body or "{}")
                elif "multipart" in kind:
                    params = {}  # files: the call is recorded, its content is not needed
                else:
                    params = dict(parse_qsl(body, keep_blank_values=True))
                run = _RUN.match(self.path)  # "/run<N>/bot…": which process asks (crash tests)
                if run is not None:
                    params["_caller"] = int(run.group(1))
                try:
                    status, answer = fake.answer(self.path.rsplit("/", 1)[-1], params)
                except Dropped:
                    self.close_connection = True
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeBotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class WebhookPusher:
    """Telegram's side of a webhook: each update POSTed to `url` with the secret header, again
    every `retry` seconds until the bot answers 200. Chats are served side by side, each in
    order: a chat's next update waits until the one before it is confirmed.

    `on_answer(update, status)` may say False to a 200: the answer was lost on the way (the
    update counts as unconfirmed and is delivered again).
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        retry: float = 0.25,
        on_answer: Callable[[dict[str, Any], int], bool] | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry = retry
        self.on_answer = on_answer
        self.confirmed: set[int] = set()
        self.attempts: defaultdict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._chats: dict[int, queue.SimpleQueue[dict[str, Any] | None]] = {}
        self._threads: list[threading.Thread] = []

    def push_update(self, update: dict[str, Any]) -> None:
        chat = chat_of(update)
        with self._lock:
            waiting = self._chats.get(chat)
            if waiting is None:
                waiting = self._chats[chat] = queue.SimpleQueue()
                thread = threading.Thread(target=self._serve, args=(waiting,), daemon=True)
                self._threads.append(thread)
                thread.start()
        waiting.put(update)

    def is_confirmed(self, update_id: int) -> bool:
        with self._lock:
            return update_id in self.confirmed

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for waiting in self._chats.values():
                waiting.put(None)
        for thread in self._threads:
            thread.join(timeout=15)

    def _serve(self, waiting: queue.SimpleQueue[dict[str, Any] | None]) -> None:
        while (update := waiting.get()) is not None and not self._stopped.is_set():
            self._deliver(update)

    def _post(self, update: dict[str, Any]) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": self.secret,
        }
        request = urllib.request.Request(self.url, json.dumps(update).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status: int = response.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError, http.client.HTTPException):  # refused, reset, unanswered
            return 0

    def _deliver(self, update: dict[str, Any]) -> None:
        update_id = int(update["update_id"])
        while not self._stopped.is_set():
            with self._lock:
                self.attempts[update_id] += 1
            status = self._post(update)
            if status == 200 and (self.on_answer is None or self.on_answer(update, status)):
                with self._lock:
                    self.confirmed.add(update_id)
                return
            self._stopped.wait(self.retry)
