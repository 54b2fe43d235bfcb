"""/healthz and /metrics: served by the webhook server or, in polling mode, a small server of
their own; counters move with real updates through the real Application; and no label ever
carries what a person wrote or who they are."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot import metrics
from bot.app import App, open_app
from bot.monitoring import MonitoringServer
from bot.telegram.application import build_application, start_monitoring
from bot.telegram.webhook import SECRET_HEADER
from bot.testing.botapi import TOKEN
from bot.testing.harness import harness
from bot.testing.loopback import FakeBotServer
from bot.testing.updates import Updates
from storage.crypto import new_key
from tests.conftest import Clock, fresh_pg_schema, make_settings
from tests.telegram.test_polling import WAIT, polling, until
from tests.telegram.test_run import environment, kindbot_run, stop
from tests.telegram.test_webhook import SECRET, free_port, gated, post, serving

# What a person writes and who they are: neither may appear anywhere in a scrape.
WORDS = "zebracorn-marmalade-thought"
PERSON = 7310957246

# Every label kindbot's own metrics may carry, and the values each may take.
ALLOWED = {
    "source": set(metrics.SOURCES),
    "outcome": set(metrics.UPDATE_OUTCOMES) | set(metrics.STEP_OUTCOMES),
    "level": set(metrics.CRISIS_LEVELS) | set(metrics.SCREEN_VERDICTS),
    "kind": set(metrics.REMINDER_FAILURES),
    "database": set(metrics.DATABASES),
    "mode": set(metrics.MODES),
    "version": {version("kindbot"), "unknown"},
    "le": None,  # histogram buckets: numbers written here
}


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    """Every test counts from zero (the process may have counted other tests' updates)."""
    metrics.reset()


def scraped(body: str) -> dict[str, float]:
    """Every sample of a scrape as `name{label="value",...}` -> value."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def info(database: str, mode: str) -> str:
    """The `kindbot_info` sample's key in `scraped`."""
    return f'kindbot_info{{database="{database}",mode="{mode}",version="{version("kindbot")}"}}'


def labels_of_kindbot(body: str) -> Iterator[tuple[str, str]]:
    for family in text_string_to_metric_families(body):
        if family.name.startswith("kindbot"):
            for sample in family.samples:
                yield from sample.labels.items()


# -- the webhook server ------------------------------------------------------------------------
async def test_webhook_server_serves_health_and_counts_a_real_update(app: App) -> None:
    async with harness(app) as h, serving(h.application, monitoring=app.db) as (_, client):
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        assert health.headers["Cache-Control"] == "no-store"
        before = scraped((await client.get("/metrics")).text)
        assert before['kindbot_updates_total{outcome="handled",source="webhook"}'] == 0
        assert await post(client, h.updates.text(7, "/start")) == 200
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = scraped(response.text)
    assert after['kindbot_updates_total{outcome="handled",source="webhook"}'] == 1
    assert after['kindbot_steps_total{outcome="ok"}'] == 1
    assert after["kindbot_step_seconds_count"] == 1
    assert after["kindbot_database_up"] == 1
    assert after["kindbot_outbox_backlog"] == 0  # the reply was sent before the 200
    assert after["process_resident_memory_bytes"] > 0


async def test_refused_duplicate_and_unreadable_posts_are_counted(app: App) -> None:
    async with harness(app) as h, serving(h.application, monitoring=app.db) as (_, client):
        update = h.updates.text(7, "/start")
        assert await post(client, update, secret="guess") == 403
        assert await post(client, b"[1, 2]") == 400
        assert await post(client, {"message": {"text": "no update id"}}) == 200
        assert await post(client, update) == 200
        assert await post(client, update) == 200  # Telegram again: the engine has seen it
        after = scraped((await client.get("/metrics")).text)
    assert after['kindbot_updates_total{outcome="rejected",source="webhook"}'] == 2
    assert after['kindbot_updates_total{outcome="unreadable",source="webhook"}'] == 1
    assert after['kindbot_updates_total{outcome="handled",source="webhook"}'] == 2
    assert after['kindbot_steps_total{outcome="ok"}'] == 1
    assert after['kindbot_steps_total{outcome="empty"}'] == 1  # answered before: nothing again


def count(name: str, **labels: str) -> float | None:
    """One sample of the current metrics, read through the registry."""
    return metrics.current().registry.get_sample_value(name, labels)


async def test_telegram_sending_again_while_an_update_runs_is_a_duplicate() -> None:
    update = Updates().text(7, "slow to answer")
    async with gated() as (handler, _, client):
        handler.hold(update)
        first = asyncio.create_task(post(client, update))
        await until(lambda: update["update_id"] in handler.started)
        again = asyncio.create_task(post(client, update))  # Telegram's retry
        await until(lambda: count("kindbot_updates_total", **WEBHOOK_DUPLICATE) == 1)
        assert count("kindbot_updates_total", source="webhook", outcome="handled") == 0
        handler.release(update)
        assert list(await asyncio.gather(first, again)) == [200, 200]
    assert count("kindbot_updates_total", source="webhook", outcome="handled") == 1


WEBHOOK_DUPLICATE = {"source": "webhook", "outcome": "duplicate"}


async def test_a_reply_telegram_did_not_take_is_the_outbox_backlog(app: App) -> None:
    async with harness(app) as h, serving(h.application, monitoring=app.db) as (_, client):
        update = h.updates.text(7, "/start")
        h.api.fail("network:sendMessage", "network", times=50)
        assert await post(client, update) == 200
        stuck = scraped((await client.get("/metrics")).text)
        h.api.failures.clear()
        assert await post(client, update) == 200  # Telegram again: the reply goes out now
        cleared = scraped((await client.get("/metrics")).text)
    assert stuck["kindbot_outbox_backlog"] == 1
    assert cleared["kindbot_outbox_backlog"] == 0
    assert len(h.api.texts(7)) >= 3
    assert stuck['kindbot_steps_total{outcome="ok"}'] == 1
    assert cleared["kindbot_update_errors_total"] == 1  # the send failed in the handler


async def test_the_endpoints_leave_the_webhook_path_and_its_secret_alone(app: App) -> None:
    async with (
        harness(app) as h,
        serving(h.application, monitoring=app.db, path="/metrics") as (_, client),
    ):
        # a WEBHOOK_URL ending in /metrics: the webhook wins, with its secret
        update = json.dumps(h.updates.text(7, "/start")).encode()
        refused = await client.post("/metrics", content=update, headers={SECRET_HEADER: "guess"})
        assert refused.status_code == 403
        taken = await client.post("/metrics", content=update, headers={SECRET_HEADER: SECRET})
        assert taken.status_code == 200
        assert len(h.api.texts(7)) == 3
        assert (await client.get("/metrics")).status_code == 405  # POSTs only
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.post("/healthz", content=b"{}")).status_code == 405
    async with harness(app) as h, serving(h.application) as (_, client):
        assert (await client.get("/healthz")).status_code == 404  # no database given: no route


async def test_no_label_carries_words_or_a_user_id(app: App) -> None:
    async with harness(app) as h, serving(h.application, monitoring=app.db) as (_, client):
        assert await post(client, h.updates.text(PERSON, "/start")) == 200
        assert await post(client, h.updates.text(PERSON, f"/{WORDS}")) == 200
        assert await post(client, h.updates.text(PERSON, f"i want to die {WORDS}")) == 200
        assert await post(client, h.updates.edited(PERSON, f"{WORDS} edited")) == 200
        assert await post(client, {"update_id": 9, "message": {"text": WORDS}}) == 200
        body = (await client.get("/metrics")).text
        health = (await client.get("/healthz")).text
    samples = scraped(body)
    # the checks below looked at real traffic: the screen and a crisis event were counted
    assert samples['kindbot_crisis_events_total{level="crisis"}'] >= 1
    assert samples["kindbot_screen_seconds_count"] >= 2
    assert sum(v for k, v in samples.items() if k.startswith("kindbot_updates_total")) == 5
    for body_text in (body, health):
        assert WORDS not in body_text
        assert str(PERSON) not in body_text
    for name, value in labels_of_kindbot(body):
        assert name in ALLOWED, name
        allowed = ALLOWED[name]
        if allowed is None:
            float(value)  # a bucket bound
        else:
            assert value in allowed, (name, value)


# -- the database gone -------------------------------------------------------------------------
def drop_tables(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for (name,) in names:
            conn.execute(f'DROP TABLE "{name}"')


@asynccontextmanager
async def sqlite_app(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[App, Any]]:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, semantic_screen=False)

    async def lose() -> None:
        # kindbot's tables dropped by another connection to the file, as PostgreSQL's schema
        # below: SQLite still opens the file, and nothing of kindbot is in it.
        await asyncio.to_thread(drop_tables, tmp_path / "data" / "kindbot.db")

    async with open_app(settings, clock=clock) as app:
        yield app, lose


@asynccontextmanager
async def postgres_app(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[App, Any]]:
    async with fresh_pg_schema() as (url, schema):
        settings = make_settings(
            tmp_path, telegram_bot_token=TOKEN, database_url=url, semantic_screen=False
        )
        admin = create_async_engine(url)

        async def lose() -> None:
            # kindbot's schema dropped: PostgreSQL still answers, kindbot's tables are gone
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))  # for the cleanup

        try:
            async with open_app(settings, clock=clock, schema=schema) as app:
                yield app, lose
        finally:
            await admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_healthz_is_503_when_the_database_is_gone(
    kind: str, tmp_path: Path, clock: Clock
) -> None:
    opened = sqlite_app if kind == "sqlite" else postgres_app
    async with opened(tmp_path, clock) as (app, lose):
        server = MonitoringServer(app.db, host="127.0.0.1", port=0)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=WAIT, trust_env=False) as client:
                assert (await client.get("/healthz")).status_code == 200
                probe = await client.head("/healthz")  # a load balancer's probe
                assert (probe.status_code, probe.content) == (200, b"")
                await lose()
                health = await client.get("/healthz")
                assert health.status_code == 503
                assert health.json() == {"status": "unavailable"}
                assert (await client.head("/healthz")).status_code == 503
                scrape = await client.get("/metrics")  # still served: it says the database
                samples = scraped(scrape.text)
        finally:
            await server.stop()
    assert scrape.status_code == 200
    assert samples["kindbot_database_up"] == 0
    assert "kindbot_outbox_backlog" not in samples  # unknown, not zero


@pytest.mark.postgres
async def test_healthz_is_503_when_the_database_does_not_answer_in_time(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "DATABASE_TIMEOUT", 0.3)
    async with postgres_app(tmp_path, clock) as (app, _):
        server = MonitoringServer(app.db, host="127.0.0.1", port=0)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with (
                httpx.AsyncClient(base_url=base, timeout=WAIT, trust_env=False) as client,
                app.db.engine.connect() as blocker,
            ):
                await blocker.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))
                assert (await client.get("/healthz")).status_code == 503
                await blocker.rollback()
                assert (await client.get("/healthz")).status_code == 200
        finally:
            await server.stop()


# -- polling mode ------------------------------------------------------------------------------
async def test_polling_mode_serves_them_on_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    with FakeBotServer() as fake:
        api = fake.api
        settings = make_settings(
            tmp_path,
            telegram_bot_token=TOKEN,
            telegram_api_url=fake.url,
            metrics_port=port,
            semantic_screen=False,
        )
        async with open_app(settings) as app:
            monitor = start_monitoring(app.db, settings)
            assert monitor is not None
            assert monitor.port == port
            try:
                async with (
                    build_application(app) as application,
                    polling(application),
                    httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}", timeout=WAIT, trust_env=False
                    ) as client,
                ):
                    start = Updates().text(7, "/start")
                    api.push_update(start)
                    await until(lambda: api.confirmed > start["update_id"])
                    assert (await client.get("/healthz")).status_code == 200
                    samples = scraped((await client.get("/metrics")).text)
            finally:
                await monitor.stop()
    assert samples['kindbot_updates_total{outcome="handled",source="polling"}'] == 1
    assert samples['kindbot_steps_total{outcome="ok"}'] == 1


async def test_a_taken_port_is_one_warning_and_the_bot_runs_on(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = app.settings.model_copy(update={"metrics_port": port})
        with caplog.at_level(logging.WARNING):
            assert start_monitoring(app.db, settings) is None
    assert "METRICS_PORT" in caplog.text
    off = app.settings.model_copy(update={"metrics_port": 0})
    assert start_monitoring(app.db, off) is None
    webhook = app.settings.model_copy(update={"webhook_url": "https://x.example/hook"})
    assert start_monitoring(app.db, webhook) is None  # the webhook server has them


def test_kindbot_run_in_polling_mode_answers_healthz(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(new_key())  # read by `environment`
    port = free_port()
    with FakeBotServer() as fake:
        api = fake.api
        env = environment(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=fake.url,
            METRICS_PORT=str(port),
            SEMANTIC_SCREEN="false",
        )
        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: bool(api.sent("setMyCommands")), 30)
            update = Updates().text(7, "/start")
            api.push_update(update)
            api.wait_for(lambda: api.confirmed > update["update_id"])
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                health = client.get("/healthz")
                samples = scraped(client.get("/metrics").text)
            assert stop(process) == 0
    assert health.status_code == 200
    assert samples['kindbot_updates_total{outcome="handled",source="polling"}'] == 1
    assert samples[info("sqlite", "polling")] == 1
    assert health.json() == {"status": "ok"}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_failed_step_and_crisis_help_without_the_database_are_counted(
    kind: str, tmp_path: Path, clock: Clock
) -> None:
    opened = sqlite_app if kind == "sqlite" else postgres_app
    async with opened(tmp_path, clock) as (app, lose), harness(app) as h:
        await h.say(7, "/start")
        await lose()
        help_given = await h.say(7, "i want to die")
    assert help_given  # crisis help from memory, though the step could not run
    samples = scraped(metrics.exposition()[0].decode())
    assert samples['kindbot_steps_total{outcome="failed"}'] == 1
    assert samples['kindbot_steps_total{outcome="ok"}'] == 1
    assert samples['kindbot_crisis_events_total{level="crisis"}'] == 1
    assert samples['kindbot_screen_verdicts_total{level="crisis"}'] == 1


def test_kindbot_run_with_a_webhook_answers_them_on_the_webhook_port(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(new_key())  # read by `environment`
    port = free_port()
    with FakeBotServer() as fake:
        env = environment(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=fake.url,
            WEBHOOK_URL="https://bot.example.org/kindbot/hook",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET=SECRET,
            SEMANTIC_SCREEN="false",
        )
        with kindbot_run(tmp_path, env) as process:
            fake.api.wait_for(lambda: bool(fake.api.sent("setWebhook")), 30)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                fake.api.wait_for(lambda: _answers(client, "/healthz"))  # setWebhook came first
                health = client.get("/healthz")
                samples = scraped(client.get("/metrics").text)
            assert stop(process) == 0
    assert health.status_code == 200
    assert samples[info("sqlite", "webhook")] == 1


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.TransportError:
        return False
