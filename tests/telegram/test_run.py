"""`kindbot run` as a subprocess against a fake Bot API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.app import open_app
from bot.config import Settings
from bot.reminders.store import set_schedule
from bot.testing.botapi import TOKEN
from bot.testing.loopback import FakeBotServer
from bot.testing.updates import Updates
from storage import repo
from storage.crypto import new_key
from storage.models import ReminderSchedule, utcnow
from tests.telegram.test_webhook import SECRET, free_port

STARTUP = 30.0  # seconds; generous for a loaded machine, normally ~2


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        ENCRYPTION_KEY=(tmp_path / "key").read_text() if (tmp_path / "key").exists() else "",
        LOG_LEVEL="INFO",
        **extra,
    )
    return env


@pytest.fixture
def key(tmp_path: Path) -> str:
    value = new_key()
    (tmp_path / "key").write_text(value)
    return value


@contextmanager
def kindbot_run(tmp_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "kindbot.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=STARTUP)


def run_once(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=environment(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=STARTUP,
        check=False,
    )


@pytest.mark.parametrize(
    ("token", "says"),
    [("", "TELEGRAM_BOT_TOKEN is not set"), ("12345", "does not look like a bot token")],
)
def test_a_missing_or_malformed_token_is_one_line_and_exit_2(
    tmp_path: Path, key: str, token: str, says: str
) -> None:
    result = run_once(tmp_path, TELEGRAM_BOT_TOKEN=token)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_a_token_telegram_refuses_is_one_line_and_exit_2(tmp_path: Path, key: str) -> None:
    with FakeBotServer() as server:
        server.api.fail("getMe", "unauthorized")
        result = run_once(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url)
    assert result.returncode == 2
    assert "does not accept TELEGRAM_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_webhook_needs_a_secret(tmp_path: Path, key: str) -> None:
    result = run_once(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, WEBHOOK_URL="https://x.example/hook")
    assert result.returncode == 2
    assert "WEBHOOK_SECRET" in result.stderr


def test_polling_and_a_sigkill_mid_dialog(tmp_path: Path, key: str) -> None:
    updates = Updates()
    with FakeBotServer() as server:
        api = server.api
        env = environment(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url)

        def push(update: dict[str, Any]) -> None:
            api.push_update(update)
            api.wait_for(lambda: api.confirmed > update["update_id"])

        def press(label: str) -> None:
            offer = next(c for c in reversed(api.sent()) if label in c.labels)
            push(updates.press(7, offer.data_for(label), offer))

        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: bool(api.sent("setMyCommands")), STARTUP)
            commands = api.sent("setMyCommands")[0].params["commands"]
            names = [c["command"] for c in commands]
            assert names[0] == "reframe"  # what helps first (bot_commands' MENU_FIRST)
            assert {"start", "help", "cancel"} <= set(names)
            push(updates.text(7, "/start"))
            api.wait_for(lambda: len(api.texts(7)) == 3)
            press("Yes, that's okay")
            api.wait_for(lambda: any("Skip" in c.labels for c in api.sent()))
            press("Skip")
            api.wait_for(lambda: any("Work with a harsh thought" in c.labels for c in api.sent()))
            press("Work with a harsh thought")
            api.wait_for(lambda: len(api.texts(7)) == 9)  # the first-time note, the question
            push(updates.text(7, "I never get anything right"))
            api.wait_for(lambda: "I never get anything right" in api.texts(7)[-1])
            process.kill()  # SIGKILL, mid-dialog
            process.wait(timeout=10)

        with kindbot_run(tmp_path, env) as process:
            answer = updates.text(7, "tired")
            answer["message"]["date"] += 30  # sent after reading the question, not with the thought
            push(answer)
            api.wait_for(lambda: api.sent()[-1].labels[:2] == ["0", "1"])  # the rating
            assert stop(process) == 0


def test_webhook_with_its_secret(tmp_path: Path, key: str) -> None:
    updates = Updates()
    port = free_port()
    with FakeBotServer() as server:
        api = server.api
        env = environment(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=server.url,
            WEBHOOK_URL=f"https://bot.example.org/kindbot/{port}",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET=SECRET,
        )
        url = f"http://127.0.0.1:{port}/kindbot/{port}"

        def post(update: dict[str, Any], secret: str | None = SECRET) -> int:
            headers = {"Content-Type": "application/json"}
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = secret
            body = json.dumps(update).encode()
            request = urllib.request.Request(url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status: int = response.status
                    return status
            except urllib.error.HTTPError as exc:
                return exc.code

        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: bool(api.sent("setWebhook")), STARTUP)
            api.wait_for(lambda: listening(port))  # setWebhook comes just before serving
            (hook,) = api.sent("setWebhook")
            assert hook.params["url"] == f"https://bot.example.org/kindbot/{port}"
            assert hook.params["secret_token"] == SECRET
            assert post(updates.text(7, "/start"), secret="wrong") == 403
            assert post(updates.text(7, "/start"), secret=None) == 403
            assert post(updates.text(7, "/start")) == 200
            api.wait_for(lambda: len(api.texts(7)) == 3)
            assert stop(process) == 0


def due_reflections(tmp_path: Path, key: str, people: list[str]) -> None:
    """Consented Telegram people, each with an evening reflection that fell due 2 min ago."""

    async def prepare() -> None:
        settings = Settings(data_dir=tmp_path / "data", encryption_key=key, _env_file=None)
        async with open_app(settings) as app, app.db.session() as session:
            now = utcnow()
            for person in people:
                user, _ = await repo.get_or_create_user(
                    session, channel="telegram", external_id=person
                )
                user.consented_at = now
                assert user.id is not None
                await set_schedule(
                    session,
                    user_id=user.id,
                    kind="reflection",
                    local_time="21:00",
                    timezone="Europe/Berlin",
                    now=now,
                )
            await session.execute(
                update(ReminderSchedule).values(next_due_utc=now - timedelta(minutes=2))
            )
            await session.commit()

    asyncio.run(prepare())


def test_kindbot_run_sends_a_due_reflection_once_across_a_restart(tmp_path: Path, key: str) -> None:
    """The dispatcher runs inside `kindbot run`: a due evening reflection goes out, once."""
    due_reflections(tmp_path, key, ["9"])
    with FakeBotServer() as server:
        api = server.api
        env = environment(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=server.url,
            REMINDER_POLL_SECONDS="0.2",
        )
        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: bool(api.texts(9)), STARTUP)
            assert "today" in api.texts(9)[0]  # the evening reflection's question
            assert stop(process) == 0
        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: len(api.sent("setMyCommands")) >= 2, STARTUP)
            time.sleep(1.0)  # several dispatcher ticks
            assert stop(process) == 0
        assert len(api.texts(9)) == 1


def test_sigkill_mid_broadcast_then_restart_sends_every_reminder(tmp_path: Path, key: str) -> None:
    """A worker killed while sending: after a restart every due reminder goes out, and a
    person gets a second copy only if theirs was in flight at the kill."""
    people = [str(100 + n) for n in range(40)]

    due_reflections(tmp_path, key, people)
    with FakeBotServer() as server:
        api = server.api
        env = environment(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=server.url,
            REMINDER_POLL_SECONDS="0.2",
            REMINDER_RATE_LIMIT="8",
            REMINDER_LEASE_SECONDS="5",
        )

        def reached() -> set[int]:
            return {c.chat_id for c in api.sent()}

        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: len(reached()) >= 8, STARTUP)
            process.kill()  # SIGKILL, mid-broadcast
            process.wait(timeout=10)
        sent_before = len(reached())
        assert sent_before < len(people)
        with kindbot_run(tmp_path, env) as process:
            api.wait_for(lambda: len(reached()) == len(people), STARTUP + 30)
            time.sleep(1.0)
            assert stop(process) == 0
        per_person = [len(api.texts(int(p))) for p in people]
        assert min(per_person) >= 1
        duplicates = sum(per_person) - len(people)
        assert duplicates <= 2, per_person  # at most what was in flight at the kill
