"""The webhook server: only Telegram gets in, and its 200 means "handled".

PTB's own webhook answers 200 as soon as an update is queued (a crash before the handler ran
loses it), reads bodies up to 100 MB before it checks the secret, and logs an update it cannot
read in full. Here the secret token is checked from the headers before any of the body is
read, a body is at most `max_body` bytes, and the answer comes after the update was handled,
so Telegram sends again whatever was not.

The answers:
- 403: the secret token is wrong or missing (nothing of the body is read);
- 413: the body is larger than `max_body` (said by Content-Length, or counted as it streams);
- 400: the body is not a JSON object;
- 200: an object PTB cannot read as an Update. One line says so, without its content; Telegram
  would send the same bytes again and again, and they would never become readable;
- 200: an update, once handled, whether its handler succeeded or not (a failure was already
  answered by the error handler);
- 503: the server is stopping, or the update was cut off by the stop: Telegram sends it again.

An update Telegram sends again while it is still being handled here (we were slow to answer)
waits for the same handling instead of running twice. Nothing of an update is ever logged.

Given the database (`monitoring`), the server also answers GET `/healthz` and `/metrics`
(`bot.monitoring`), without the secret: they say nothing about anyone. The webhook's own
path is matched first, so a WEBHOOK_URL ending in /metrics still reaches the webhook.
Every update is counted by outcome in `kindbot_updates_total{source="webhook"}`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Any

import tornado.httputil
import tornado.web
from telegram import Update
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer

from bot import metrics
from bot.monitoring import Endpoint, listen_socket
from bot.monitoring import routes as monitoring_routes
from bot.telegram.handlers import UPDATES
from bot.telegram.polling import AnyApplication, process
from storage.db import Database

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookServer:
    """Receives Telegram's POSTs on `path`, handles each update, then answers."""

    def __init__(
        self,
        application: AnyApplication,
        *,
        listen: str,
        port: int,
        path: str,
        secret: str,
        url: str | None = None,
        max_body: int = 1 << 20,
        max_connections: int = 40,
        allowed_updates: Sequence[str] | None = UPDATES,
        drain: float = 30.0,
        monitoring: Database | None = None,
    ) -> None:
        self.application = application
        self.listen = listen
        self.path = "/" + path.lstrip("/")
        self.url = url  # given to setWebhook on start; None leaves Telegram's setting alone
        self.max_body = max_body
        self.max_connections = max_connections
        self.allowed_updates = list(allowed_updates) if allowed_updates is not None else None
        self.drain = drain  # how long `stop` waits for requests being handled
        self.monitoring = monitoring  # the database /healthz asks; None: no such routes
        self._secret = secret.encode()
        self._port = port
        self._server: HTTPServer | None = None
        self._handling: dict[int, asyncio.Task[bool]] = {}
        self._requests: set[asyncio.Future[None]] = set()
        self.closing = False

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when asked for port 0)."""
        return self._port

    async def start(self) -> None:
        """Listen, then tell Telegram where to send updates (and with which secret)."""
        if self._server is not None:
            raise RuntimeError("the webhook server was started already")
        routes: list[Any] = [(re.escape(self.path), _UpdateHandler, {"server": self})]
        if self.monitoring is not None:
            routes += monitoring_routes(self.monitoring)
        web = tornado.web.Application(routes, log_function=_log_request)
        # The limit for any path; ours raises it per request, to answer 413 itself.
        server = HTTPServer(
            web, max_body_size=self.max_body, body_timeout=60, idle_connection_timeout=120
        )
        sock = listen_socket(self.listen, self._port)
        server.add_sockets([sock])
        self._server = server
        self._port = int(sock.getsockname()[1])
        if self.url is None:
            return
        try:
            await self.application.bot.set_webhook(
                url=self.url,
                secret_token=self._secret.decode(),
                allowed_updates=self.allowed_updates,
                max_connections=self.max_connections,
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop accepting, let requests being handled finish (at most `drain` seconds; the
        rest are cut off and answered 503), then close every connection. The webhook stays
        set: Telegram keeps sending to the URL, to whoever serves it next."""
        server, self._server = self._server, None
        if server is None:
            return
        self.closing = True
        server.stop()
        busy = self._requests | set(self._handling.values())
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.drain)
            if late:
                log.warning("%d webhook request(s) still running at stop: cut off", len(late))
                for task in self._handling.values():
                    task.cancel()
                if self._requests:
                    await asyncio.wait(self._requests, timeout=5)  # their 503s
        await server.close_all_connections()

    def refusal(self, request: tornado.httputil.HTTPServerRequest) -> int | None:
        """The status that refuses a request from its headers alone, or None to read on."""
        if self.closing:
            return 503
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return 403
        length = request.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit():
                return 400
            if int(length) > self.max_body:
                return 413
        return None

    async def receive(self, body: bytes | bytearray) -> int:
        """Read an update from the body, handle it to the end; the status to answer with."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            metrics.update("webhook", "rejected")
            return 400
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:
            log.warning("webhook: an update PTB cannot read (%s), dropped", type(exc).__name__)
            metrics.update("webhook", "unreadable")
            return 200
        task = self._handling.get(update.update_id)
        if task is None:  # not a retry of one we are handling still
            task = asyncio.create_task(
                process(self.application, update), name=f"update:{update.update_id}"
            )
            self._handling[update.update_id] = task
            task.add_done_callback(partial(self._done, update.update_id))
        else:
            metrics.update("webhook", "duplicate")
        await asyncio.wait({task})
        return 503 if task.cancelled() else 200

    def _done(self, update_id: int, task: asyncio.Task[bool]) -> None:
        if self._handling.get(update_id) is task:
            del self._handling[update_id]
        ended = "cut_off" if task.cancelled() else "handled" if task.result() else "failed"
        metrics.update("webhook", ended)

    def opened(self) -> asyncio.Future[None]:
        """A request was let in: `stop` waits for it until its answer is written."""
        request = asyncio.get_running_loop().create_future()
        self._requests.add(request)
        request.add_done_callback(self._requests.discard)
        return request


@tornado.web.stream_request_body
class _UpdateHandler(tornado.web.RequestHandler):
    """One POST from Telegram; the body is counted as it arrives, never beyond the limit."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, server: WebhookServer) -> None:
        self.server = server
        self.body = bytearray()
        self.request_done: asyncio.Future[None] | None = None
        self.refused = False

    def prepare(self) -> None:
        status = self.server.refusal(self.request)
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            # Refused: the connection closes as the answer goes out, so tornado reads no
            # further whatever the size (and has no "Content-Length too long" to log).
            # Let in: tornado stays above our limit, so that we count and answer 413.
            limit = 1 << 62 if status is not None else 2 * self.server.max_body
            connection.set_max_body_size(limit)
        if status is not None:
            self.refuse(status)
        else:
            self.request_done = self.server.opened()

    def data_received(self, chunk: bytes) -> None:
        if self.refused:
            return
        if len(self.body) + len(chunk) > self.server.max_body:
            self.refuse(413)
            return
        self.body += chunk

    def refuse(self, status: int) -> None:
        metrics.update("webhook", "rejected")
        self.refused = True
        self.body.clear()
        self.send_error(status)

    async def post(self) -> None:
        if self.refused:
            return
        self.set_status(await self.server.receive(self.body))
        self.body.clear()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()  # the status says it all; no page

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not isinstance(value, tornado.web.HTTPError):  # never the request, never its body
            log.error("webhook request failed (%s)", typ.__name__ if typ else "unknown")

    def on_finish(self) -> None:
        self._settle()

    def on_connection_close(self) -> None:
        self._settle()

    def _settle(self) -> None:
        if self.request_done is not None and not self.request_done.done():
            self.request_done.set_result(None)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """One short line for a refused request, nothing for an answered update."""
    status = handler.get_status()
    if status >= 400 and not isinstance(handler, Endpoint):  # probes are not logged
        log.info("webhook answered %d to a %s request", status, handler.request.method)
