"""`kindbot doctor`: all ok on a fresh setup, each problem on its own line with its fix,
exit 1 on any problem (2 when it cannot start), and nothing created or changed."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.app import open_app
from bot.cli import main
from bot.config import REPO_ROOT, Settings
from bot.engine.events import Text, UserRef
from storage.crypto import new_key
from tests.cli_env import isolate
from tests.conftest import Clock, make_settings
from tests.reminder_fakes import make_person


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


def doctor(capsys: pytest.CaptureFixture[str], code: int) -> list[str]:
    """Run `kindbot doctor`; its exit code must be `code`; the lines it printed."""
    assert main(["doctor"]) == code
    return capsys.readouterr().out.splitlines()


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("PROBLEM")]


def start(settings: Settings) -> None:
    """Start kindbot once: database, key file, a person with a reminder."""

    async def go() -> None:
        async with open_app(settings, clock=Clock()) as app:
            await make_person(app, "1", now=Clock().now)

    asyncio.run(go())


def by_hand(settings: Settings, sql: str) -> None:
    """Change the SQLite file the way a person with the sqlite3 shell would."""
    with closing(sqlite3.connect(settings.data_dir / "kindbot.db")) as conn, conn:
        conn.execute(sql)


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p): (p.stat().st_mode, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_all_ok_before_the_first_start_and_nothing_made(
    env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = doctor(capsys, 0)
    assert all(line.startswith("ok ") for line in lines), lines
    assert any("made and migrated on first start" in line for line in lines)
    assert not env.exists()


def test_all_ok_on_a_fresh_setup_and_nothing_changed(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start(make_settings(tmp_path, encryption_key=None))
    before = snapshot(env)
    lines = doctor(capsys, 0)
    assert all(line.startswith("ok ") for line in lines), lines
    checks = [line.split(":")[0].split(maxsplit=1)[1] for line in lines]
    for check in ("settings", "dialogs", "helplines", "data dir", "key", "database"):
        assert check in checks
    assert "ok       key check: the key in" in "\n".join(lines)
    assert snapshot(env) == before  # no -wal, no -shm, no migration, no key check written


def test_file_modes_open_to_others(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    start(settings)
    env.chmod(0o755)
    settings.key_file.chmod(0o644)
    (env / "kindbot.db").chmod(0o644)
    found = "\n".join(problems(doctor(capsys, 1)))
    assert f"data dir: {env} is mode 0755 (others may look inside): chmod 700 {env}" in found
    key_file = settings.key_file
    assert f"key: {key_file} is mode 0644 (others may read it): chmod 600 {key_file}" in found
    assert f"chmod 600 {env / 'kindbot.db'}" in found


def test_wrong_key_and_pending_rotation(
    env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    start(settings)
    right = settings.key_file.read_text()
    pending = settings.key_file.with_name("kindbot.key.new")

    pending.write_text(new_key())  # left by a rotation that never committed
    [line] = problems(doctor(capsys, 1))
    assert f"key check: {pending} is left from a `kindbot rotate-key` interrupted" in line

    pending.write_text(right)  # as if the rotation committed and the rename never happened
    settings.key_file.write_text(new_key())
    [line] = problems(doctor(capsys, 1))
    assert f"{pending} reads the database" in line and "run `kindbot rotate-key`" in line

    pending.unlink()
    [line] = problems(doctor(capsys, 1))
    assert f"the key in {settings.key_file} does not match the key this database" in line

    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    [line] = problems(doctor(capsys, 1))
    assert "key check: ENCRYPTION_KEY does not match" in line
    monkeypatch.setenv("ENCRYPTION_KEY", "short")
    assert "key: ENCRYPTION_KEY is not a valid key" in problems(doctor(capsys, 1))[0]


def test_schema_behind_or_ahead(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    start(settings)
    by_hand(settings, "UPDATE alembic_version SET version_num = '0004'")
    [line] = problems(doctor(capsys, 1))
    assert "database: schema at revision 0004, this kindbot expects" in line
    assert "start kindbot once (it migrates on start)" in line
    by_hand(settings, "UPDATE alembic_version SET version_num = '0999_future'")
    [line] = problems(doctor(capsys, 1))
    assert "0999_future, which this kindbot does not know" in line


def test_due_times(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    start(settings)
    by_hand(settings, "UPDATE reminder_schedules SET next_due_utc = '2026-03-02T20:00:00Z'")
    lines = doctor(capsys, 0)
    assert "ok       due times: 1 stored in another text form" in "\n".join(lines)

    by_hand(settings, "UPDATE reminder_schedules SET next_due_utc = 'soon'")
    [line] = problems(doctor(capsys, 1))
    assert "due times: reminder schedule(s) 1: the due time is not a time;" in line

    by_hand(settings, "UPDATE reminder_schedules SET timezone = 'Nowhere'")
    [line] = problems(doctor(capsys, 1))
    assert "own time or zone cannot be read either" in line


def test_settings_telegram_and_webhook(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not a token")
    monkeypatch.setenv("WEBHOOK_URL", "http://bot.example.org/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    found = problems(doctor(capsys, 1))
    assert any("telegram: TELEGRAM_BOT_TOKEN does not look like a bot token" in p for p in found)
    assert any("webhook: WEBHOOK_URL must start with https://" in p for p in found)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:" + "A" * 35)
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.delenv("WEBHOOK_SECRET")
    [line] = problems(doctor(capsys, 1))
    assert "WEBHOOK_SECRET is required" in line
    monkeypatch.setenv("MAX_TEXT_CHARS", "5")
    assert main(["doctor"]) == 2  # it cannot even start
    err = capsys.readouterr().err.strip()
    assert err.startswith("kindbot: invalid setting MAX_TEXT_CHARS") and "\n" not in err


def test_broken_dialogs_unreachable_database_and_impossible_data_dir(
    env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "dialogs"
    shutil.copytree(REPO_ROOT / "dialogs", root)
    reframe = root / "en" / "reframe.yaml"
    reframe.write_text(reframe.read_text().replace("    next: feeling\n", "    next: feelin\n"))
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DIALOGS_DIR", str(root))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "afile" / "data"))
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/x")
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    found = problems(doctor(capsys, 1))
    checks = [line.split(":")[0].split(maxsplit=1)[1] for line in found]
    assert checks == ["dialogs", "data dir", "database"], found
    assert "unknown state 'feelin'" in found[0] and "kindbot dialogs check" in found[0]
    assert f"{tmp_path / 'afile'} is a file" in found[1]
    assert "cannot reach the database at postgresql+asyncpg://postgres@127.0.0.1:1/x" in found[2]


def test_replies_left_unsent_are_counted_never_shown(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    start(settings)
    assert any("no reply waiting" in line for line in doctor(capsys, 0))

    async def crash_before_send() -> None:
        async with open_app(settings, clock=Clock()) as app:
            await app.engine.reply(UserRef("telegram", "1"), Text("a secret thought"), seq=9)

    asyncio.run(crash_before_send())
    lines = doctor(capsys, 0)
    assert any("1 reply waiting since" in line for line in lines), lines
    assert "secret" not in "\n".join(lines)
