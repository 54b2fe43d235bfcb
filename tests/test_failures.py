"""Failures a person can fix: one line on stderr naming the fix, exit 2, no traceback (the
traceback with --debug); files and folders kindbot makes are its owner's alone; an
interrupted key rotation, interrupted for real, is named and finished."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.app import open_app
from bot.cli import main
from bot.config import Settings
from storage.crypto import new_key
from tests.cli_env import isolate
from tests.conftest import Clock, make_settings
from tests.test_export import ALICE, alice_and_bob, stored

KINDBOT = [sys.executable, "-m", "bot.cli"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


def run(
    *argv: str, cwd: Path, stdin: str = "", umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """`kindbot` as a separate process, with the environment the test set (for the exit code
    and for what reaches the terminal)."""
    return subprocess.run(
        [*KINDBOT, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=cwd,
        timeout=120,
        check=False,
        umask=umask,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kindbot: ")
    assert "Traceback" not in err
    return lines[0]


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run `kindbot argv` in this process; it must exit 2 with one line: that line."""
    assert main(list(argv)) == 2
    return one_line(capsys.readouterr().err)


# -- paths and permissions ----------------------------------------------------------------


def test_data_dir_under_a_file_is_one_line(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "afile" / "data"))
    result = run("chat", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert f"{tmp_path / 'afile'} is a file" in line
    assert "DATA_DIR" in line


def test_debug_shows_the_traceback(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "afile" / "data"))
    for argv in (["--debug", "export", "--user", "x"], ["export", "--user", "x", "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("kindbot: ") and "is a file" in err.splitlines()[0]
        assert "Traceback" in err and "NotADirectoryError" in err
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert main(["export", "--user", "x"]) == 2
    assert "Traceback" in capsys.readouterr().err


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: a 0500 folder, or for root (who writes into
    any folder) /sys, which the kernel keeps read-only even for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o500)
        return folder
    folder = Path("/sys")
    try:
        (folder / "kindbot-probe").mkdir()
    except OSError:
        return folder
    (folder / "kindbot-probe").rmdir()
    pytest.skip("running as root and no folder here refuses root's writes")


@pytest.mark.parametrize("key_from", ["key file", "ENCRYPTION_KEY"])
def test_read_only_data_folder_is_one_line(
    env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key_from: str,
) -> None:
    folder = _read_only_folder(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(folder))
    if key_from == "ENCRYPTION_KEY":
        monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    line = refused(capsys, "export", "--user", "x")
    made = "kindbot.key" if key_from == "key file" else "kindbot.db"
    assert f"permission denied: {folder / made}" in line
    assert "DATA_DIR" in line


def test_database_file_that_cannot_be_opened(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "kindbot.db").mkdir(parents=True)  # a folder where the database file should be
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    line = refused(capsys, "forget", "--user", "x", "--yes")
    assert f"cannot open the SQLite database {env / 'kindbot.db'}" in line
    assert "unable to open database file" in line


def test_unreachable_database_is_one_line(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://kindbot:s3cret@127.0.0.1:1/x")
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    result = run("chat", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "cannot reach the database at postgresql+asyncpg://kindbot:***@127.0.0.1:1/x" in line
    assert "s3cret" not in result.stderr
    assert "DATABASE_URL" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [("nonsense", "not a database URL"), ("mysql+nodriver://h/x", "cannot use")],
)
def test_unusable_database_url_is_one_line(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    says: str,
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    line = refused(capsys, "export", "--user", "x")
    assert says in line and "DATABASE_URL" in line


def test_invalid_settings_are_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_PORT", "99999")
    monkeypatch.setenv("DEFAULT_TIMEZONE", "Mars/Olympus")
    line = refused(capsys, "chat")
    assert "WEBHOOK_PORT" in line and "DEFAULT_TIMEZONE" in line
    monkeypatch.delenv("WEBHOOK_PORT")
    monkeypatch.delenv("DEFAULT_TIMEZONE")
    monkeypatch.setenv("LOW_DISTRESS_THRESHOLD", "8")  # a check across settings
    assert "LOW_DISTRESS_THRESHOLD must be below" in refused(capsys, "doctor")


def test_run_without_a_token_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "TELEGRAM_BOT_TOKEN is not set" in refused(capsys, "run")


# -- keys ---------------------------------------------------------------------------------


def _fill(settings: Settings) -> None:
    async def fill() -> None:
        async with open_app(settings, clock=Clock()) as app:
            await alice_and_bob(app)

    asyncio.run(fill())


def _alice_reads(settings: Settings) -> bool:
    async def read() -> bool:
        async with open_app(settings, clock=Clock()) as app:
            return ALICE["thought"] in str((await stored(app, "alice"))[1])

    return asyncio.run(read())


def test_wrong_key_names_encryption_key(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(make_settings(tmp_path))
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    line = refused(capsys, "export", "--user", "alice")
    assert "ENCRYPTION_KEY does not match the key this database was written with" in line
    monkeypatch.setenv("ENCRYPTION_KEY", "not-a-key")
    assert "ENCRYPTION_KEY is not a valid key" in refused(capsys, "chat")


def test_wrong_key_file_names_the_file(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    _fill(settings)
    settings.key_file.write_text(new_key() + "\n")
    line = refused(capsys, "export", "--user", "alice")
    assert f"the key in {settings.key_file} does not match" in line
    assert "kindbot.key.new" not in line
    settings.key_file.write_text("garbage\n")
    assert f"{settings.key_file} does not hold a valid key" in refused(capsys, "chat")


ROTATE = """
import os, signal, sys
import storage.rotation

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

{patch}
from bot.cli import main
sys.exit(main(["rotate-key"]))
"""


def _rotate_killed(tmp_path: Path, patch: str) -> None:
    """`kindbot rotate-key` in a process killed (SIGKILL: no clean-up runs) at `patch`."""
    script = textwrap.dedent(ROTATE).format(patch=patch)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stderr


def test_rotation_killed_after_its_commit_is_named_and_finished(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    _fill(settings)
    old = settings.key_file.read_text()
    _rotate_killed(tmp_path, "os.replace = die  # between the commit and the rename")
    pending = settings.key_file.with_name("kindbot.key.new")
    assert pending.exists() and settings.key_file.read_text() == old

    line = refused(capsys, "export", "--user", "alice")
    assert f"{pending} is there" in line and "run `kindbot rotate-key` again" in line
    result = run("chat", cwd=tmp_path)  # what a person starting it sees
    assert result.returncode == 2 and "kindbot.key.new" in one_line(result.stderr)

    new = pending.read_text()
    assert main(["rotate-key"]) == 0
    assert "finishing an interrupted rotation" in capsys.readouterr().out
    assert settings.key_file.read_text() == new and not pending.exists()
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    assert _alice_reads(settings)


def test_rotation_killed_before_its_commit_leaves_a_file_to_remove(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    _fill(settings)
    _rotate_killed(tmp_path, "storage.rotation._rotate_table = die  # mid-way")
    pending = settings.key_file.with_name("kindbot.key.new")
    assert pending.exists()
    assert _alice_reads(settings)  # the old key still reads everything: it starts

    assert main(["rotate-key"]) == 2
    err = capsys.readouterr().err
    assert "an earlier rotation was interrupted" in err and f"Remove {pending}" in err
    assert main(["doctor"]) == 1
    assert f"PROBLEM  key check: {pending} is left" in capsys.readouterr().out
    pending.unlink()
    assert main(["rotate-key"]) == 0
    assert _alice_reads(settings)


def test_rotation_failing_after_its_commit_still_moves_the_key(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.db import Database

    settings = make_settings(tmp_path, encryption_key=None)
    _fill(settings)
    old = settings.key_file.read_text()

    async def broken_close(self: Database) -> None:
        await self.engine.dispose()
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(Database, "close", broken_close)
    with pytest.raises(RuntimeError, match="the disk went away"):
        main(["rotate-key"])
    monkeypatch.undo()
    assert settings.key_file.read_text() != old
    assert not settings.key_file.with_name("kindbot.key.new").exists()
    assert _alice_reads(settings)


def test_rotation_failing_before_its_commit_changes_nothing(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.rotation

    settings = make_settings(tmp_path, encryption_key=None)
    _fill(settings)
    old = settings.key_file.read_text()

    async def fail(*args: object, **kwargs: object) -> int:
        raise RuntimeError("mid-way")

    monkeypatch.setattr(storage.rotation, "_rotate_table", fail)
    with pytest.raises(RuntimeError, match="mid-way"):
        main(["rotate-key"])
    assert settings.key_file.read_text() == old
    assert not settings.key_file.with_name("kindbot.key.new").exists()
    monkeypatch.undo()
    assert _alice_reads(settings)


# -- file modes -----------------------------------------------------------------------------


def test_made_folders_key_and_database_are_owner_only(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "a" / "b" / "data"
    monkeypatch.setenv("DATA_DIR", str(data))
    result = run("chat", cwd=tmp_path, stdin="/start\n", umask=0o022)
    assert result.returncode == 0, result.stderr
    for folder in (tmp_path / "a", tmp_path / "a" / "b", data):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    made = [data / "kindbot.key", data / "kindbot.db"]
    made += [
        data / f"kindbot.db-{end}"
        for end in ("wal", "shm")
        if (data / f"kindbot.db-{end}").exists()
    ]
    for file in made:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_export_onto_an_existing_0644_file_ends_0600(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path)
    assert settings.encryption_key
    _fill(settings)
    monkeypatch.setenv("ENCRYPTION_KEY", settings.encryption_key)
    out = tmp_path / "alice.json"
    out.write_text("an older export, much longer than the new one will be" * 1000)
    out.chmod(0o644)
    assert main(["export", "--user", "alice", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"wrote {out} (mode 0600;" in capsys.readouterr().err
    assert ALICE["thought"] in json.dumps(json.loads(out.read_bytes()), ensure_ascii=False)


def test_telegram_out_of_reach_is_one_line() -> None:
    from telegram.error import NetworkError

    from bot.failures import explain

    line = explain(NetworkError("Connection refused"), None)
    assert line is not None and line.startswith("cannot reach Telegram")
    assert "TELEGRAM_API_URL" in line
    assert explain(RuntimeError("a bug"), None) is None  # shown in full, with its traceback
