"""What an operator can count: kindbot's Prometheus metrics, on a registry of its own.

Every label value comes from a small fixed set written here; a value outside its set is
counted as "other". No metric ever carries what a person wrote, a user id or a chat id, so a
scrape says how the bot is doing and nothing about anyone.

The rest of the code records through the small functions below (`update`, `step`,
`screened`, `crisis_event`, `reminder_sent`, …), one call per site. The registry is not
prometheus_client's global one: `reset()` makes a fresh set (tests start from zero), and
nothing another library registers globally shows up in kindbot's /metrics.

The outbox backlog and whether the database answers are read at scrape time (`refresh`),
not kept up to date by every step: a scrape every 15 s costs one small query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from itertools import product
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage import health
from storage.db import Database

# The label sets. Adding a value is a code change, never something a message can do.
SOURCES: Final = ("polling", "webhook")
UPDATE_OUTCOMES: Final = ("handled", "duplicate", "rejected", "unreadable", "cut_off", "failed")
STEP_OUTCOMES: Final = ("ok", "resumed", "empty", "failed")
CRISIS_LEVELS: Final = ("crisis", "check", "worried", "concern", "sos")
SCREEN_VERDICTS: Final = ("none", "crisis", "check", "worried", "concern")
REMINDER_FAILURES: Final = ("blocked", "rate_limited", "send_failed", "engine")
DATABASES: Final = ("sqlite", "postgresql")
MODES: Final = ("polling", "webhook")
OTHER: Final = "other"

# How long a scrape or a health check waits for the database before calling it down.
DATABASE_TIMEOUT = 2.0

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SCREEN = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_LAG = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def one_of(value: str, allowed: Iterable[str]) -> str:
    """`value` if it is one of `allowed`, else "other": the guard on every label."""
    return value if value in allowed else OTHER


class _Series:
    """A labelled counter with every allowed series made up front: at zero from the first
    scrape (rates work, dashboards show a flat line rather than nothing), and counting is a
    dict lookup instead of prometheus_client's `labels()` (1 µs a count instead of 4, several
    times per update). A value outside its set is counted under "other"."""

    def __init__(
        self, name: str, doc: str, registry: CollectorRegistry, **allowed: tuple[str, ...]
    ) -> None:
        self.counter = Counter(name, doc, list(allowed), registry=registry)
        self.allowed = tuple(allowed.values())
        self.series = {values: self.counter.labels(*values) for values in product(*self.allowed)}

    def inc(self, *values: str) -> None:
        series = self.series.get(values)
        if series is None:
            guarded = (one_of(v, a) for v, a in zip(values, self.allowed, strict=True))
            series = self.counter.labels(*guarded)
        series.inc()


class _DatabaseReadings(Collector):
    """The outbox backlog and the database's answer, as read by the last `refresh`.

    Left out of a scrape when unknown (the database did not answer): a missing series says
    "unknown", where a zero would say "nothing waiting"."""

    def __init__(self) -> None:
        self.up: bool | None = None
        self.backlog: int | None = None

    def collect(self) -> Iterator[Metric]:
        if self.up is not None:
            yield GaugeMetricFamily(
                "kindbot_database_up",
                "1 if the database answered the last scrape's query in time, else 0.",
                value=1.0 if self.up else 0.0,
            )
        if self.backlog is not None:
            yield GaugeMetricFamily(
                "kindbot_outbox_backlog",
                "Replies committed but not yet sent (read from the database at scrape time).",
                value=float(self.backlog),
            )


class Metrics:
    """One full set of kindbot's metrics on its own registry."""

    def __init__(self) -> None:
        # No `*_created` series beside every counter: they double a scrape's size and no
        # dashboard here reads them (a process-wide switch of prometheus_client).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = _Series(
            "kindbot_updates",
            "Telegram updates received, by how they ended.",
            r,
            source=SOURCES,
            outcome=UPDATE_OUTCOMES,
        )
        self.update_errors = Counter(
            "kindbot_update_errors",
            "Updates whose handler failed (the person was told something went wrong).",
            registry=r,
        )
        self.steps = _Series(
            "kindbot_steps",
            "Engine steps run for updates, by outcome.",
            r,
            outcome=STEP_OUTCOMES,
        )
        self.step_seconds = Histogram(
            "kindbot_step_seconds",
            "Time from an update's event to the engine's committed reply (screen included).",
            buckets=_FAST,
            registry=r,
        )
        self.screen_seconds = Histogram(
            "kindbot_screen_seconds",
            "Time the crisis screen took for one message (patterns and model).",
            buckets=_SCREEN,
            registry=r,
        )
        self.screen_verdicts = _Series(
            "kindbot_screen_verdicts",
            "Crisis screen results, by level ('none': nothing found).",
            r,
            level=SCREEN_VERDICTS,
        )
        self.crisis_events = _Series(
            "kindbot_crisis_events",
            "Crisis responses given (a screen hit acted on, or /sos), by level. Counts only.",
            r,
            level=CRISIS_LEVELS,
        )
        self.reminders_sent = Counter(
            "kindbot_reminders_sent", "Reminders delivered to Telegram.", registry=r
        )
        self.reminder_failures = _Series(
            "kindbot_reminder_failures",
            "Reminders given up on, by reason.",
            r,
            kind=REMINDER_FAILURES,
        )
        self.reminder_lag = Histogram(
            "kindbot_reminder_lag_seconds",
            "How late a reminder went out, from its due time to its send.",
            buckets=_LAG,
            registry=r,
        )
        self.info = Info(
            "kindbot", "This kindbot process: version, database kind, mode.", registry=r
        )
        self.readings = _DatabaseReadings()
        r.register(self.readings)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)


_current = Metrics()


def current() -> Metrics:
    """The metrics being recorded now."""
    return _current


def reset() -> Metrics:
    """Start a fresh set (all zero, a new registry); for tests."""
    global _current
    _current = Metrics()
    return _current


# -- recording: one call per site -------------------------------------------------------------
def describe(*, database: str, mode: str) -> None:
    """Name this process in `kindbot_info` (set once at start)."""
    _current.info.info(
        {
            "version": _version(),
            "database": one_of(database, DATABASES),
            "mode": one_of(mode, MODES),
        }
    )


def update(source: str, outcome: str) -> None:
    """An update came in by `source` ("polling", "webhook") and ended with `outcome`:
    "handled", "duplicate" (already running or done here), "rejected" (a request refused:
    wrong secret, too large, not JSON), "unreadable" (JSON PTB cannot read as an update),
    "cut_off" (stopped before it finished: Telegram sends it again) or "failed"."""
    _current.updates.inc(source, outcome)


def update_error() -> None:
    """A handler failed on an update (PTB's error handler ran)."""
    _current.update_errors.inc()


def step(outcome: str, seconds: float) -> None:
    """One engine step for an update: "ok" (a reply to send: a new one, or that of a
    redelivered update none of which was sent yet), "resumed" (a redelivered update whose
    reply was partly sent), "empty" (nothing to send: an update already answered, or one
    that asks for no reply) or "failed" (the person got an apology or offline help)."""
    _current.steps.inc(outcome)
    _current.step_seconds.observe(seconds)


def screened(level: str | None, seconds: float) -> None:
    """The crisis screen read one message in `seconds`; `level` None when nothing was found.
    Safe from any thread (the screen runs in worker threads)."""
    _current.screen_verdicts.inc(level or "none")
    _current.screen_seconds.observe(seconds)


def crisis_event(level: str) -> None:
    """A crisis response was given at `level` ("crisis", "check", "worried", "concern", "sos")."""
    _current.crisis_events.inc(level)


def reminder_sent(lag_seconds: float) -> None:
    """A reminder went out `lag_seconds` after it was due."""
    _current.reminders_sent.inc()
    _current.reminder_lag.observe(max(0.0, lag_seconds))


def reminder_failed(kind: str) -> None:
    """A reminder was given up on: "blocked", "rate_limited", "send_failed" or "engine"."""
    _current.reminder_failures.inc(kind)


# -- reading ----------------------------------------------------------------------------------
async def refresh(db: Database) -> bool:
    """Read the scrape-time gauges from the database; whether it answered in time."""
    readings = _current.readings
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):
            readings.backlog = await health.unsent_replies(db)
    except Exception:  # any failure to answer is "down"; the gauge says so, no log spam
        readings.up, readings.backlog = False, None
        return False
    readings.up = True
    return True


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The current metrics and their content type, in the format the scraper's `Accept`
    header asks for: Prometheus' text format 0.0.4 unless it asks for a newer one or for
    OpenMetrics (prometheus_client's own choice, as in its own HTTP handlers)."""
    encode, content_type = choose_encoder(accept)
    return encode(_current.registry), content_type


def _version() -> str:
    try:
        return version("kindbot")
    except PackageNotFoundError:
        return "unknown"
