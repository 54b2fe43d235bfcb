"""`/healthz` and `/metrics` over HTTP, for operators, their probes and Prometheus.

- `/healthz`: 200 `{"status": "ok"}` while the process runs and the database answers a query
  on kindbot's own tables within `metrics.DATABASE_TIMEOUT`; 503 `{"status": "unavailable"}`
  otherwise. No auth, no content: a load balancer or a container runtime asks it.
- `/metrics`: `bot.metrics` in Prometheus' text format.

Served as extra routes of the webhook server, or in polling mode by `MonitoringServer`, a
small tornado server of its own (bound to 127.0.0.1 unless METRICS_HOST says otherwise).
Neither endpoint is logged: a probe every few seconds would bury the lines that matter.
"""

from __future__ import annotations

import socket
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer

from bot import metrics
from storage.db import Database

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def listen_socket(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on `host`:`port` (port 0: the system picks).

    socket.create_server closes the socket when binding fails (tornado's bind_sockets leaves
    it to the garbage collector), and sets SO_REUSEADDR. An empty host or "0.0.0.0" listens
    on every IPv4 address, "::" on every address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    sock.setblocking(False)
    return sock


class Endpoint(tornado.web.RequestHandler):
    """A GET (or a probe's HEAD) an operator's tool makes; the database to ask is given per
    route."""

    SUPPORTED_METHODS: tuple[str, ...] = ("GET", "HEAD")

    def initialize(self, db: Database) -> None:
        self.db = db

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()  # the status says it all; never a traceback page


class HealthHandler(Endpoint):
    async def get(self) -> None:
        up = await metrics.refresh(self.db)
        self.set_status(200 if up else 503)
        self.finish({"status": "ok" if up else "unavailable"})

    async def head(self) -> None:
        """The same check, the status alone (load balancers' probes often send HEAD)."""
        up = await metrics.refresh(self.db)
        self.set_status(200 if up else 503)
        self.finish()


class MetricsHandler(Endpoint):
    SUPPORTED_METHODS = ("GET",)

    async def get(self) -> None:
        await metrics.refresh(self.db)  # the backlog and database_up gauges, read now
        body, content_type = metrics.exposition(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.finish(body)


def routes(db: Database) -> list[tuple[str, type[Endpoint], dict[str, Any]]]:
    """The two endpoints, for any tornado Application."""
    return [
        (HEALTH_PATH, HealthHandler, {"db": db}),
        (METRICS_PATH, MetricsHandler, {"db": db}),
    ]


def quiet(handler: tornado.web.RequestHandler) -> None:
    """Tornado's request log, off."""


class MonitoringServer:
    """`/healthz` and `/metrics` on a port of their own (polling mode has no web server)."""

    def __init__(self, db: Database, *, host: str, port: int) -> None:
        self.db = db
        self.host = host
        self._port = port
        self._server: HTTPServer | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when asked for port 0)."""
        return self._port

    def start(self) -> None:
        """Listen; an OSError (the port is taken, the address unknown) goes to the caller."""
        if self._server is not None:
            raise RuntimeError("the monitoring server was started already")
        sock = listen_socket(self.host, self._port)
        web = tornado.web.Application(routes(self.db), log_function=quiet)
        server = HTTPServer(web, idle_connection_timeout=60)
        server.add_sockets([sock])
        self._server = server
        self._port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        await server.close_all_connections()
